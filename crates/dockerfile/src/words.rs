//! How BuildKit's parser cuts an instruction's arguments into words
//! (frontend/dockerfile/parser/line_parsers.go): before any expansion, so
//! quotes and escapes stay in the words as written.

use crate::span::{Span, Word};

/// The separators of Go's `[\t\v\f\r ]+`, which splits keywords and
/// whitespace-delimited arguments (other Unicode spaces do not).
pub(crate) fn is_separator(c: char) -> bool {
    matches!(c, '\t' | '\u{b}' | '\u{c}' | '\r' | ' ')
}

/// Splits on runs of [`is_separator`] (`EXPOSE`, `FROM`, `COPY` without
/// JSON): quotes mean nothing here.
pub(crate) fn split_whitespace(span: Span<'_>) -> Vec<Word> {
    let span = span.trim();
    let mut words = Vec::new();
    let mut start = None;
    for (i, c) in span.text.char_indices() {
        match (is_separator(c), start) {
            (true, Some(s)) => {
                words.push(span.slice(s, i).word());
                start = None;
            }
            (false, None) => start = Some(i),
            _ => {}
        }
    }
    if let Some(s) = start {
        words.push(span.from(s).word());
    }
    words
}

/// The first word and the rest, split at the first run of separators: the
/// keyword of an instruction, the type of a `HEALTHCHECK`.
pub(crate) fn split_first(span: Span<'_>) -> (Span<'_>, Span<'_>) {
    let span = span.trim();
    match span.text.find(is_separator) {
        Some(i) => (span.slice(0, i), span.from(i).trim_start()),
        None => (span, span.from(span.text.len())),
    }
}

/// What a word scanner is inside of.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    Spaces,
    Word,
    Quote(char),
}

/// Words separated by Unicode whitespace, where quoted parts may hold
/// spaces (`ENV`, `LABEL`, `ARG`). Quotes and escapes are kept as written;
/// only an escape at the very end is dropped, as BuildKit's parseWords does.
pub(crate) fn parse_words(span: Span<'_>, escape: char) -> Vec<Word> {
    let text = span.text;
    let mut words = Vec::new();
    let mut word = String::new();
    let mut start = 0;
    let mut phase = Phase::Spaces;
    let mut blank_ok = false;
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if phase == Phase::Spaces {
            if c.is_whitespace() {
                continue;
            }
            phase = Phase::Word;
            start = i;
        }
        let at_end = chars.peek().is_none();
        match phase {
            Phase::Word if c.is_whitespace() => {
                if blank_ok || !word.is_empty() {
                    words.push(Word {
                        text: std::mem::take(&mut word),
                        at: span.at + start,
                    });
                }
                phase = Phase::Spaces;
                blank_ok = false;
                continue;
            }
            Phase::Word if c == '\'' || c == '"' => {
                phase = Phase::Quote(c);
                blank_ok = true;
            }
            Phase::Word if c == escape => {
                if at_end {
                    continue;
                }
                word.push(c);
                let Some((_, next)) = chars.next() else { break };
                word.push(next);
                continue;
            }
            Phase::Quote(q) if c == q => phase = Phase::Word,
            Phase::Quote(q) if c == escape && q != '\'' => {
                if at_end {
                    phase = Phase::Word;
                    continue;
                }
                word.push(c);
                let Some((_, next)) = chars.next() else { break };
                word.push(next);
                continue;
            }
            _ => {}
        }
        word.push(c);
    }
    if phase != Phase::Spaces && (blank_ok || !word.is_empty()) {
        words.push(Word {
            text: word,
            at: span.at + start,
        });
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(words: Vec<Word>) -> Vec<String> {
        words.into_iter().map(|w| w.text).collect()
    }

    #[test]
    fn whitespace_split_ignores_quotes_and_keeps_offsets() {
        let words = split_whitespace(Span::new("  \"a b\"\t c ", 10));
        assert_eq!(
            words,
            vec![
                Word {
                    text: "\"a".into(),
                    at: 12
                },
                Word {
                    text: "b\"".into(),
                    at: 15
                },
                Word {
                    text: "c".into(),
                    at: 19
                },
            ]
        );
    }

    #[test]
    fn split_first_takes_the_keyword() {
        let (kw, rest) = split_first(Span::new(" RUN  echo hi ", 0));
        assert_eq!((kw.text, kw.at), ("RUN", 1));
        assert_eq!((rest.text, rest.at), ("echo hi", 6));
        let (kw, rest) = split_first(Span::new("CMD", 0));
        assert_eq!((kw.text, rest.text), ("CMD", ""));
    }

    #[test]
    fn parse_words_keeps_quotes_and_escapes() {
        let words = parse_words(Span::new(r#"a="b c" d='e f' g\ h i\"#, 0), '\\');
        assert_eq!(texts(words), vec![r#"a="b c""#, "d='e f'", r"g\ h", "i"]);
    }

    #[test]
    fn parse_words_keeps_empty_quoted_words_and_offsets() {
        let words = parse_words(Span::new(r#"  "" x"#, 4), '\\');
        assert_eq!(
            words,
            vec![
                Word {
                    text: "\"\"".into(),
                    at: 6
                },
                Word {
                    text: "x".into(),
                    at: 9
                }
            ]
        );
    }

    #[test]
    fn parse_words_escape_inside_double_quotes_only() {
        let words = parse_words(Span::new(r#"a="x\" y" b='p\' q"#, 0), '\\');
        assert_eq!(texts(words), vec![r#"a="x\" y""#, r"b='p\'", "q"]);
    }

    #[test]
    fn parse_words_with_backtick_escape() {
        let words = parse_words(Span::new("a=b` c d", 0), '`');
        assert_eq!(texts(words), vec!["a=b` c", "d"]);
    }
}
