//! Lines, continuations, heredoc bodies and parser directives.

use super::*;

/// (text, first line, last line) of each instruction, 1-based.
fn logical_lines(text: &str, escape: char) -> Vec<(String, usize, usize)> {
    let source = Source::new(text);
    Reader::new(&source, escape)
        .map(|raw| {
            let raw = raw.unwrap();
            (raw.logical.text, raw.logical.start + 1, raw.end + 1)
        })
        .collect()
}

fn line(text: &str, start: usize, end: usize) -> (String, usize, usize) {
    (text.to_string(), start, end)
}

#[test]
fn source_lines_drop_bom_and_line_endings() {
    let source = Source::new("\u{feff}FROM a\r\nRUN b\r\n\r\nlast");
    assert_eq!(
        (0..source.len())
            .map(|i| source.line(i))
            .collect::<Vec<_>>(),
        vec!["FROM a", "RUN b", "", "last"]
    );
    assert_eq!(Source::new("").len(), 0);
    assert_eq!(Source::new("\n").len(), 1);
}

#[test]
fn comments_and_blank_lines_are_skipped() {
    let text = "# comment\n\n   \n  # indented comment\nFROM a\n\t RUN b # not a comment\n";
    assert_eq!(
        logical_lines(text, '\\'),
        vec![line("FROM a", 5, 5), line("RUN b # not a comment", 6, 6)]
    );
}

#[test]
fn continuations_join_lines_as_they_are() {
    let text = "RUN a \\\n    b \\  \t\n# comment in between\n\n  \n    c\nRUN d";
    assert_eq!(
        logical_lines(text, '\\'),
        vec![line("RUN a     b     c", 1, 6), line("RUN d", 7, 7)]
    );
}

#[test]
fn an_escaped_escape_does_not_continue() {
    let text = "RUN echo \\\\\nRUN x";
    assert_eq!(
        logical_lines(text, '\\'),
        vec![line("RUN echo \\\\", 1, 1), line("RUN x", 2, 2)]
    );
    // A lone escape on a line continues, contributing nothing.
    assert_eq!(
        logical_lines("RUN a \\\n\\\nb", '\\'),
        vec![line("RUN a b", 1, 3)]
    );
}

#[test]
fn a_continuation_at_the_end_of_the_text_ends_the_instruction() {
    assert_eq!(
        logical_lines("RUN a \\\n# only a comment", '\\'),
        vec![line("RUN a ", 1, 2)]
    );
    assert_eq!(logical_lines("\\", '\\'), vec![]);
}

#[test]
fn backtick_escape_continues_and_backslash_is_plain() {
    let text = "RUN dir c:\\ `\n  /w";
    assert_eq!(
        logical_lines(text, '`'),
        vec![line("RUN dir c:\\   /w", 1, 2)]
    );
}

#[test]
fn heredoc_bodies_follow_their_line() {
    let text = "RUN <<A <<B \\\n  && true\na\nA\nb\nB\nRUN next";
    let source = Source::new(text);
    let raws: Vec<RawInstruction> = Reader::new(&source, '\\').map(Result::unwrap).collect();
    assert_eq!(raws.len(), 2);
    assert_eq!(raws[0].logical.text, "RUN <<A <<B   && true");
    assert_eq!((raws[0].logical.end, raws[0].end), (1, 5));
    let bodies: Vec<(&str, &str)> = raws[0]
        .heredocs
        .iter()
        .map(|h| (h.name.as_str(), h.content.as_str()))
        .collect();
    assert_eq!(bodies, vec![("A", "a\n"), ("B", "b\n")]);
    assert_eq!(raws[1].logical.text, "RUN next");
}

#[test]
fn heredoc_bodies_are_verbatim() {
    let text = "COPY <<EOF /x\r\n# not a comment\r\n\r\n  indented \\\r\n\tEOF\r\nEOF\r\n";
    let source = Source::new(text);
    let raw = Reader::new(&source, '\\').next().unwrap().unwrap();
    assert_eq!(
        raw.heredocs[0].content,
        "# not a comment\n\n  indented \\\n\tEOF\n"
    );
    assert_eq!(raw.end, 5);
}

#[test]
fn unterminated_heredoc_points_at_its_opener() {
    let source = Source::new("FROM a\nRUN cat <<EOF <<END\nx\nEOF\ny");
    let error = Reader::new(&source, '\\').find_map(Result::err).unwrap();
    assert_eq!((error.line, error.column), (2, 15));
    assert_eq!(
        error.message,
        "unterminated heredoc: missing terminator END"
    );
    assert_eq!(error.source_line, "RUN cat <<EOF <<END");
}

fn directives_of(text: &str) -> Result<Directives, ParseError> {
    directives(&Source::new(text))
}

#[test]
fn directives_at_the_top() {
    let d = directives_of(
        "# syntax=docker/dockerfile:1.7\n#ESCAPE = `\n#  check=skip=all;error=true  \nFROM a",
    )
    .unwrap();
    assert_eq!(d.syntax.as_deref(), Some("docker/dockerfile:1.7"));
    assert_eq!(d.escape, '`');
    assert_eq!(d.check.as_deref(), Some("skip=all;error=true"));
    assert_eq!(directives_of("\u{feff}# escape=`").unwrap().escape, '`');
}

#[test]
fn directives_stop_at_the_first_other_line() {
    for text in [
        "# comment\n# escape=`",
        "\n# escape=`",
        "FROM a\n# escape=`",
        "# unknown=x\n# escape=`",
        "# escape\n# escape=`",
    ] {
        assert_eq!(directives_of(text).unwrap().escape, '\\', "{text:?}");
    }
}

#[test]
fn directive_errors() {
    let e = directives_of("# escape=`\n# Escape=\\").unwrap_err();
    assert_eq!(
        (e.line, e.column, e.message.as_str()),
        (2, 3, "only one escape parser directive can be used")
    );
    let e = directives_of("# syntax=a\n# syntax=b").unwrap_err();
    assert_eq!(e.message, "only one syntax parser directive can be used");
    let e = directives_of("# escape=x").unwrap_err();
    assert_eq!(
        (e.line, e.column, e.message.as_str()),
        (1, 10, "invalid escape token 'x' does not match ` or \\")
    );
}
