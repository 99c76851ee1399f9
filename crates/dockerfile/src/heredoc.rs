//! Here-documents (<https://docs.docker.com/reference/dockerfile/#here-documents>):
//! which words of a `RUN`, `COPY` or `ADD` line (also under `ONBUILD`, not
//! in JSON form) open one, as BuildKit's parser decides it
//! (frontend/dockerfile/parser/parser.go: heredocsFromLine, ParseHeredoc).

use crate::expand::{lex, Mode};
use crate::flags;
use crate::json::{parse_string_array, JsonArray};
use crate::span::Span;
use crate::words::split_first;

/// A heredoc that a line opens: `<<EOF`, `<<-EOF`, `<<"EOF"`, `3<<EOF`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Opener {
    /// The delimiter, unquoted.
    pub name: String,
    /// `<<-`: leading tabs are stripped from the body and the terminator.
    pub chomp: bool,
    /// No part of the delimiter was quoted.
    pub expand: bool,
    /// The word as written on the line.
    pub word: String,
}

/// The heredocs `line` opens, in order.
pub(crate) fn openers(line: &str) -> Result<Vec<Opener>, String> {
    if !may_open(line) {
        return Ok(Vec::new());
    }
    let mode = Mode {
        raw_quotes: true,
        raw_escapes: true,
        keep_unset: true,
        ..Mode::default()
    };
    // BuildKit lexes with `\` whatever `# escape=` says, and a line that
    // does not lex (an open quote) opens no heredoc.
    let Ok(lexed) = lex(line, '\\', &|_| None, mode) else {
        return Ok(Vec::new());
    };
    lexed
        .words
        .iter()
        .filter_map(|word| opener(word).transpose())
        .collect()
}

/// Only shell-form `RUN`, `COPY` and `ADD` (bare or as an `ONBUILD`
/// trigger) have heredocs.
fn may_open(line: &str) -> bool {
    let (keyword, rest) = split_first(Span::new(line, 0));
    let (keyword, rest) = match keyword.text.eq_ignore_ascii_case("onbuild") {
        true => split_first(flags::extract(rest).1),
        false => (keyword, rest),
    };
    let accepts = ["run", "copy", "add"]
        .iter()
        .any(|k| keyword.text.eq_ignore_ascii_case(k));
    let (_, args) = flags::extract(rest);
    accepts && parse_string_array(args.trim().text) == JsonArray::NotJson
}

/// The heredoc a word opens, if it does: `^(\d*)<<(-?)([^<]*)$`, where the
/// delimiter must lex as one word.
pub(crate) fn opener(word: &str) -> Result<Option<Opener>, String> {
    let digits = word.bytes().take_while(u8::is_ascii_digit).count();
    let Some(rest) = word[digits..].strip_prefix("<<") else {
        return Ok(None);
    };
    let (chomp, rest) = match rest.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, rest),
    };
    if rest.is_empty() || rest.contains('<') {
        return Ok(None);
    }
    let plain = Mode {
        keep_unset: true,
        ..Mode::default()
    };
    let names = lex(rest, '\\', &|_| None, plain)
        .map_err(|e| e.message)?
        .words;
    let [name] = names.as_slice() else {
        return Ok(None);
    };
    let raw_mode = Mode {
        raw_quotes: true,
        ..plain
    };
    let raw = lex(rest, '\\', &|_| None, raw_mode)
        .map_err(|e| e.message)?
        .words;
    let [raw_name] = raw.as_slice() else {
        return Err(format!(
            "internal lexing of heredoc produced inconsistent results: {rest}"
        ));
    };
    // Quotes that lexing removed mean the delimiter was quoted.
    let quotes = |s: &str| s.chars().filter(|c| matches!(c, '\'' | '"')).count();
    Ok(Some(Opener {
        name: name.clone(),
        chomp,
        expand: quotes(name) == quotes(raw_name),
        word: word.to_string(),
    }))
}

/// `<<-`: the leading tabs of every line go.
pub(crate) fn chomp(content: &str) -> String {
    content
        .split_inclusive('\n')
        .map(|line| line.trim_start_matches('\t'))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(line: &str) -> Vec<(String, bool, bool)> {
        openers(line)
            .unwrap()
            .into_iter()
            .map(|o| (o.name, o.chomp, o.expand))
            .collect()
    }

    fn one(name: &str, chomp: bool, expand: bool) -> Vec<(String, bool, bool)> {
        vec![(name.to_string(), chomp, expand)]
    }

    #[test]
    fn openers_of_run_copy_add() {
        assert_eq!(names("RUN <<EOF"), one("EOF", false, true));
        assert_eq!(names("run cat <<-END > /x"), one("END", true, true));
        assert_eq!(names("COPY <<\"EOF\" /dst"), one("EOF", false, false));
        assert_eq!(
            names("ADD --chmod=644 <<'EOF' /dst"),
            one("EOF", false, false)
        );
        assert_eq!(names("RUN 3<<EOF cat /dev/fd/3"), one("EOF", false, true));
        assert_eq!(names("ONBUILD RUN <<E\"O\"F"), one("EOF", false, false));
        let two = names("RUN <<A <<-B");
        assert_eq!(
            two,
            vec![("A".into(), false, true), ("B".into(), true, true)]
        );
    }

    #[test]
    fn no_openers() {
        for line in [
            "RUN echo '<<EOF'",
            "RUN echo \"<<EOF\"",
            "RUN cat<<EOF",
            "RUN echo <<",
            "RUN [\"cat\", \"<<EOF\"]",
            "CMD cat <<EOF",
            "ENV A=<<EOF",
            "RUN echo 'open <<EOF",
            "RUN x <<a<b",
            "ONBUILD CMD <<EOF",
        ] {
            assert_eq!(names(line), vec![], "{line}");
        }
    }

    #[test]
    fn chomp_strips_leading_tabs_only() {
        assert_eq!(chomp("\t\ta\n \tb\n\tc\td\n"), "a\n \tb\nc\td\n");
    }
}
