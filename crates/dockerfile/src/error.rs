//! The errors of this crate. A [`ParseError`] prints as Docker prints a
//! Dockerfile error: `Dockerfile:LINE:COLUMN: message`, then the line as
//! written and a caret under the culprit.

use thiserror::Error;

/// A Dockerfile (or an `ONBUILD` trigger) that cannot be parsed: where, why,
/// and the line itself.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("Dockerfile:{line}:{column}: {message}\n{}", snippet(*.line, *.column, .source_line))]
pub struct ParseError {
    /// 1-based line of the culprit.
    pub line: usize,
    /// 1-based column of the culprit, in characters.
    pub column: usize,
    /// What is wrong, lowercase, naming the culprit.
    pub message: String,
    /// The culprit's line as written, without its line ending.
    pub source_line: String,
}

impl ParseError {
    /// The numbered line and the caret under the culprit (what follows the
    /// first line of the error's display).
    pub fn snippet(&self) -> String {
        snippet(self.line, self.column, &self.source_line)
    }
}

/// A word whose variables cannot be expanded: an unterminated `${` or
/// quote, a bad substitution, or `${VAR:?message}` with `VAR` unset.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{message}")]
pub struct ExpandError {
    pub message: String,
}

impl ExpandError {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }
}

/// The numbered line and a caret under `column`. The caret's padding copies
/// the line's tabs so that it lands under the culprit however tabs render.
fn snippet(line: usize, column: usize, source: &str) -> String {
    let number = line.to_string();
    let width = number.len().max(4);
    let pad: String = source
        .chars()
        .take(column.saturating_sub(1))
        .map(|c| if c == '\t' { '\t' } else { ' ' })
        .collect();
    format!(
        "{number:>width$} | {source}\n{blank:width$} | {pad}^",
        blank = ""
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displays_like_docker_with_a_caret() {
        let error = ParseError {
            line: 3,
            column: 1,
            message: "unknown instruction: FORM (did you mean FROM?)".into(),
            source_line: "FORM busybox".into(),
        };
        assert_eq!(
            error.to_string(),
            "Dockerfile:3:1: unknown instruction: FORM (did you mean FROM?)\n   3 | FORM busybox\n     | ^"
        );
    }

    #[test]
    fn caret_follows_tabs_and_wide_line_numbers() {
        let error = ParseError {
            line: 12345,
            column: 3,
            message: "m".into(),
            source_line: "\tab".into(),
        };
        assert_eq!(
            error.to_string(),
            "Dockerfile:12345:3: m\n12345 | \tab\n      | \t ^"
        );
    }

    #[test]
    fn expand_error_displays_its_message() {
        assert_eq!(
            ExpandError::new("VAR: must be set").to_string(),
            "VAR: must be set"
        );
    }
}
