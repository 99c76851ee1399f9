//! From text to logical lines, as BuildKit's parser reads a Dockerfile
//! (frontend/dockerfile/parser/parser.go, directives.go):
//!
//! - parser directives (`# syntax=`, `# escape=`, `# check=`) are read
//!   from the top until the first line that is not one;
//! - a line whose first non-blank character is `#` is a comment; blank
//!   lines are skipped;
//! - an escape character at the end of a line (spaces and tabs may follow
//!   it) continues the instruction on the next line; comment lines and
//!   blank lines inside a continuation are skipped; the pieces are joined
//!   as they are (only the first line loses its indentation);
//! - heredoc bodies follow the line that opens them, one after the other.
//!
//! A UTF-8 byte order mark and CRLF line endings are accepted.

use crate::ast::{Directives, Heredoc};
use crate::error::ParseError;
use crate::heredoc::{self, Opener};
use crate::span::Fault;

/// The physical lines of a text, without their line endings.
#[derive(Debug)]
pub(crate) struct Source<'a> {
    lines: Vec<&'a str>,
}

impl<'a> Source<'a> {
    pub fn new(text: &'a str) -> Self {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut lines: Vec<&str> = text
            .split('\n')
            .map(|l| l.trim_end_matches(['\r', '\n']))
            .collect();
        // The text after a final newline is not a line.
        if text.is_empty() || text.ends_with('\n') {
            lines.pop();
        }
        Self { lines }
    }

    pub fn len(&self) -> usize {
        self.lines.len()
    }

    pub fn line(&self, index: usize) -> &'a str {
        self.lines.get(index).copied().unwrap_or_default()
    }

    /// An error at a byte of a line (0-based index).
    pub fn error(&self, index: usize, byte: usize, message: impl Into<String>) -> ParseError {
        let line = self.line(index);
        let column = line.char_indices().take_while(|(i, _)| *i < byte).count() + 1;
        ParseError {
            line: index + 1,
            column,
            message: message.into(),
            source_line: line.to_string(),
        }
    }

    /// An error about the whole text, on its last line.
    pub fn error_at_end(&self, message: impl Into<String>) -> ParseError {
        self.error(self.len().saturating_sub(1), 0, message)
    }
}

/// One instruction's text, continuation lines joined, with where each of
/// its bytes comes from.
#[derive(Debug)]
pub(crate) struct Logical {
    pub text: String,
    /// (line index, byte in that line) of each byte of `text`.
    origins: Vec<(usize, usize)>,
    /// First and last line index (the last one of the continuation).
    pub start: usize,
    pub end: usize,
}

impl Logical {
    fn new(start: usize) -> Self {
        Self {
            text: String::new(),
            origins: Vec::new(),
            start,
            end: start,
        }
    }

    fn push(&mut self, index: usize, byte: usize, piece: &str) {
        self.origins
            .extend((0..piece.len()).map(|i| (index, byte + i)));
        self.text.push_str(piece);
    }

    /// Places a fault on its source line.
    pub fn error(&self, source: &Source<'_>, fault: Fault) -> ParseError {
        let (index, byte) = self
            .origins
            .get(fault.at)
            .copied()
            .or_else(|| self.origins.last().map(|&(index, byte)| (index, byte + 1)))
            .unwrap_or((self.start, 0));
        source.error(index, byte, fault.message)
    }

    /// The offset of the keyword (the first non-blank byte).
    pub fn keyword_at(&self) -> usize {
        self.text.len() - self.text.trim_start().len()
    }
}

/// An instruction as read: its logical line and its heredoc bodies.
#[derive(Debug)]
pub(crate) struct RawInstruction {
    pub logical: Logical,
    pub heredocs: Vec<Heredoc>,
    /// The last line index, heredoc terminators included.
    pub end: usize,
}

/// Reads the parser directives at the top of the text.
pub(crate) fn directives(source: &Source<'_>) -> Result<Directives, ParseError> {
    let mut directives = Directives::default();
    let mut seen: Vec<String> = Vec::new();
    for index in 0..source.len() {
        let line = source.line(index);
        let Some(found) = Directive::read(line) else {
            break;
        };
        let key = found.key.to_ascii_lowercase();
        if !matches!(key.as_str(), "syntax" | "escape" | "check") {
            break;
        }
        if seen.contains(&key) {
            return Err(source.error(
                index,
                found.key_at,
                format!("only one {key} parser directive can be used"),
            ));
        }
        match key.as_str() {
            "escape" => {
                directives.escape =
                    escape_token(found.value).map_err(|m| source.error(index, found.value_at, m))?
            }
            "syntax" => directives.syntax = Some(found.value.to_string()),
            _ => directives.check = Some(found.value.to_string()),
        }
        seen.push(key);
    }
    Ok(directives)
}

/// `# key = value`: `^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$` on the
/// line without its indentation.
struct Directive<'a> {
    key: &'a str,
    key_at: usize,
    value: &'a str,
    value_at: usize,
}

impl<'a> Directive<'a> {
    fn read(line: &'a str) -> Option<Self> {
        let is_space = |c: char| matches!(c, ' ' | '\t' | '\n' | '\u{c}' | '\r');
        let body = line.trim_start().strip_prefix('#')?;
        let key_part = body.trim_start_matches(is_space);
        let key_at = line.len() - key_part.len();
        let key_len = key_part
            .find(|c: char| !c.is_ascii_alphanumeric())
            .unwrap_or(key_part.len());
        let key = &key_part[..key_len];
        if !key.starts_with(|c: char| c.is_ascii_alphabetic()) {
            return None;
        }
        let value_part = key_part[key_len..]
            .trim_start_matches(is_space)
            .strip_prefix('=')?;
        let value_part = value_part.trim_start_matches(is_space);
        let value = value_part.trim_end_matches(is_space);
        (!value.is_empty()).then(|| Self {
            key,
            key_at,
            value,
            value_at: line.len() - value_part.len(),
        })
    }
}

fn escape_token(value: &str) -> Result<char, String> {
    match value {
        "\\" => Ok('\\'),
        "`" => Ok('`'),
        _ => Err(format!(
            "invalid escape token '{value}' does not match ` or \\"
        )),
    }
}

/// Reads instructions one by one.
#[derive(Debug)]
pub(crate) struct Reader<'s, 'a> {
    source: &'s Source<'a>,
    next: usize,
    escape: char,
}

impl<'s, 'a> Reader<'s, 'a> {
    pub fn new(source: &'s Source<'a>, escape: char) -> Self {
        Self {
            source,
            next: 0,
            escape,
        }
    }

    fn take_line(&mut self) -> Option<(usize, &'a str)> {
        let index = self.next;
        (index < self.source.len()).then(|| {
            self.next += 1;
            (index, self.source.line(index))
        })
    }

    /// The next logical line, comments and blank lines skipped.
    fn logical(&mut self) -> Option<Logical> {
        loop {
            let (index, line) = self.take_line()?;
            let text = line.trim_start();
            if text.starts_with('#') {
                continue;
            }
            let (piece, continued) = trim_continuation(text, self.escape);
            if !continued && piece.is_empty() {
                continue;
            }
            let mut logical = Logical::new(index);
            logical.push(index, line.len() - text.len(), piece);
            if continued {
                self.continuation(&mut logical);
            }
            if !logical.text.trim().is_empty() {
                return Some(logical);
            }
        }
    }

    /// Appends lines up to one that does not end in the escape character;
    /// comment and blank lines in between are skipped. Continuation lines
    /// keep their indentation, as in BuildKit.
    fn continuation(&mut self, logical: &mut Logical) {
        while let Some((index, line)) = self.take_line() {
            logical.end = index;
            if is_comment(line) || line.trim().is_empty() {
                continue;
            }
            let (piece, continued) = trim_continuation(line, self.escape);
            logical.push(index, 0, piece);
            if !continued {
                return;
            }
        }
    }

    fn instruction(&mut self) -> Option<Result<RawInstruction, ParseError>> {
        let logical = self.logical()?;
        let openers = match heredoc::openers(&logical.text) {
            Ok(openers) => openers,
            Err(message) => {
                return Some(Err(
                    logical.error(self.source, Fault::new(logical.keyword_at(), message))
                ))
            }
        };
        let mut raw = RawInstruction {
            end: logical.end,
            heredocs: Vec::with_capacity(openers.len()),
            logical,
        };
        for opener in &openers {
            match self.body(opener) {
                Some(heredoc) => raw.heredocs.push(heredoc),
                None => return Some(Err(self.unterminated(&raw.logical, opener))),
            }
            raw.end = self.next.saturating_sub(1);
        }
        Some(Ok(raw))
    }

    /// The body of a heredoc, up to its terminator line; `None` if the
    /// text ends first.
    fn body(&mut self, opener: &Opener) -> Option<Heredoc> {
        let mut content = String::new();
        loop {
            let (_, line) = self.take_line()?;
            let candidate = if opener.chomp {
                line.trim_start_matches('\t')
            } else {
                line
            };
            if candidate == opener.name {
                break;
            }
            content.push_str(line);
            content.push('\n');
        }
        if opener.chomp {
            content = heredoc::chomp(&content);
        }
        Some(Heredoc {
            name: opener.name.clone(),
            content,
            expand: opener.expand,
        })
    }

    fn unterminated(&self, logical: &Logical, opener: &Opener) -> ParseError {
        let at = logical
            .text
            .find(&opener.word)
            .unwrap_or_else(|| logical.keyword_at());
        let message = format!("unterminated heredoc: missing terminator {}", opener.name);
        logical.error(self.source, Fault::new(at, message))
    }
}

impl Iterator for Reader<'_, '_> {
    type Item = Result<RawInstruction, ParseError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.instruction()
    }
}

fn is_comment(line: &str) -> bool {
    line.trim_start().starts_with('#')
}

/// Removes a continuation escape from the end of a line: the escape
/// character, then only spaces and tabs, and not itself escaped.
fn trim_continuation(line: &str, escape: char) -> (&str, bool) {
    let Some(before) = line.trim_end_matches([' ', '\t']).strip_suffix(escape) else {
        return (line, false);
    };
    if before.ends_with(escape) && !before.is_empty() {
        return (line, false);
    }
    (before, true)
}

#[cfg(test)]
#[path = "lines_tests.rs"]
mod tests;
