//! Instruction flags (`COPY --from=build`, `RUN --mount=…`), as BuildKit
//! reads them (frontend/dockerfile/parser/split_command.go and
//! instructions/bflag.go): words starting with `--` at the head of the
//! arguments, up to the first other word or a bare `--`. Quotes in a flag
//! word are removed and `\` escapes the next character.

use crate::span::{Fault, Span, Word};
use crate::suggest::suggest;

/// How a flag takes its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FlagKind {
    /// `--link`, `--link=true|false`.
    Bool,
    /// `--from=x`, once.
    String,
    /// `--mount=x`, any number of times.
    Strings,
}

/// The flags an instruction accepts.
pub(crate) type Spec = [(&'static str, FlagKind)];

#[derive(Debug, Clone, PartialEq, Eq)]
enum Value {
    Bool(bool),
    String(Word),
    Strings(Vec<Word>),
}

/// The flags given, checked against a [`Spec`].
#[derive(Debug, Default)]
pub(crate) struct Flags {
    given: Vec<(&'static str, Value)>,
}

impl Flags {
    fn get(&self, name: &str) -> Option<&Value> {
        self.given.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    pub fn bool(&self, name: &str) -> bool {
        matches!(self.get(name), Some(Value::Bool(true)))
    }

    pub fn string(&self, name: &str) -> Option<&Word> {
        match self.get(name) {
            Some(Value::String(word)) => Some(word),
            _ => None,
        }
    }

    pub fn strings(&self, name: &str) -> &[Word] {
        match self.get(name) {
            Some(Value::Strings(words)) => words,
            _ => &[],
        }
    }
}

/// Splits the flag words off the head of `rest`: the flags, and the
/// arguments after them.
pub(crate) fn extract(rest: Span<'_>) -> (Vec<Word>, Span<'_>) {
    let mut flags = Vec::new();
    let mut pos = 0;
    loop {
        let skipped = rest.from(pos).trim_start();
        pos = skipped.at - rest.at;
        if !skipped.text.starts_with("--") {
            return (flags, skipped);
        }
        let (text, len) = read_flag(skipped.text);
        pos += len;
        if text == "--" {
            return (flags, rest.from(pos).trim_start());
        }
        flags.push(Word {
            text,
            at: skipped.at,
        });
    }
}

/// One flag word, unquoted and unescaped, and its length as written.
fn read_flag(text: &str) -> (String, usize) {
    let mut word = String::new();
    let mut quote = None;
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match (quote, c) {
            (None, c) if c.is_whitespace() => return (word, i),
            (None, '\'' | '"') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (_, '\\') => match chars.next() {
                Some((_, escaped)) => word.push(escaped),
                // A trailing backslash is dropped and closes any quote.
                None => break,
            },
            (_, c) => word.push(c),
        }
    }
    (word, text.len())
}

/// Checks the flag words against what the instruction accepts.
pub(crate) fn parse(words: &[Word], spec: &Spec) -> Result<Flags, Fault> {
    let mut flags = Flags::default();
    for word in words {
        let body = word.text.get(2..).unwrap_or_default();
        let (name, value) = match body.split_once('=') {
            Some((name, value)) => (name, Some(value)),
            None => (body, None),
        };
        let Some(&(known, kind)) = spec.iter().find(|(n, _)| *n == name) else {
            return Err(word.fault(unknown(name, spec)));
        };
        flags.set(known, kind, value, word)?;
    }
    Ok(flags)
}

fn unknown(name: &str, spec: &Spec) -> String {
    let names: Vec<&str> = spec.iter().map(|(n, _)| *n).collect();
    match suggest(name, &names, true) {
        Some(near) => format!("unknown flag: --{name} (did you mean --{near}?)"),
        None => format!("unknown flag: --{name}"),
    }
}

impl Flags {
    fn set(
        &mut self,
        name: &'static str,
        kind: FlagKind,
        value: Option<&str>,
        word: &Word,
    ) -> Result<(), Fault> {
        let seen = self.given.iter().position(|(n, _)| *n == name);
        if seen.is_some() && kind != FlagKind::Strings {
            return Err(word.fault(format!("duplicate flag specified: --{name}")));
        }
        let missing = || word.fault(format!("missing a value on flag: --{name}"));
        let at = word.at;
        let value = match (kind, value) {
            (FlagKind::Bool, None) => Value::Bool(true),
            (FlagKind::Bool, Some("")) => return Err(missing()),
            (FlagKind::Bool, Some(v)) => Value::Bool(parse_bool(name, v, word)?),
            (_, None) => return Err(missing()),
            (FlagKind::String, Some(v)) => Value::String(Word { text: v.into(), at }),
            (FlagKind::Strings, Some(v)) => {
                let mut all = match seen.map(|i| self.given.remove(i)) {
                    Some((_, Value::Strings(all))) => all,
                    _ => Vec::new(),
                };
                all.push(Word { text: v.into(), at });
                Value::Strings(all)
            }
        };
        self.given.push((name, value));
        Ok(())
    }
}

fn parse_bool(name: &str, value: &str, word: &Word) -> Result<bool, Fault> {
    match value.to_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(word.fault(format!(
            "expecting boolean value for flag --{name}, not: {value}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: &Spec = &[
        ("from", FlagKind::String),
        ("link", FlagKind::Bool),
        ("mount", FlagKind::Strings),
    ];

    fn texts(words: &[Word]) -> Vec<&str> {
        words.iter().map(|w| w.text.as_str()).collect()
    }

    #[test]
    fn extracts_leading_flags_only() {
        let (flags, rest) = extract(Span::new(" --from=a  --link src --x dst", 3));
        assert_eq!(texts(&flags), vec!["--from=a", "--link"]);
        assert_eq!((flags[0].at, flags[1].at), (4, 14));
        assert_eq!((rest.text, rest.at), ("src --x dst", 21));
    }

    #[test]
    fn flags_unquote_and_unescape() {
        let (flags, rest) = extract(Span::new(r#"--chown="a b" --x='y'\ z cmd"#, 0));
        assert_eq!(texts(&flags), vec!["--chown=a b", "--x=y z"]);
        assert_eq!(rest.text, "cmd");
    }

    #[test]
    fn double_dash_ends_flags() {
        let (flags, rest) = extract(Span::new("--link -- --not-a-flag x", 0));
        assert_eq!(texts(&flags), vec!["--link"]);
        assert_eq!(rest.text, "--not-a-flag x");
        let (flags, rest) = extract(Span::new("--", 0));
        assert!(flags.is_empty() && rest.is_empty());
        let (flags, rest) = extract(Span::new("--only", 0));
        assert_eq!((texts(&flags), rest.text), (vec!["--only"], ""));
    }

    #[test]
    fn parses_against_the_spec() {
        let (words, _) = extract(Span::new(
            "--from=build --link=FALSE --mount=a --mount=b x",
            0,
        ));
        let flags = parse(&words, SPEC).unwrap();
        assert_eq!(flags.string("from").map(|w| w.text.as_str()), Some("build"));
        assert!(!flags.bool("link"));
        assert_eq!(texts(flags.strings("mount")), vec!["a", "b"]);
        assert_eq!(flags.strings("mount")[1].at, 36);
    }

    #[test]
    fn flag_errors() {
        let error = |line: &str| {
            let (words, _) = extract(Span::new(line, 0));
            parse(&words, SPEC).unwrap_err()
        };
        assert_eq!(error("--bogus x"), Fault::new(0, "unknown flag: --bogus"));
        assert_eq!(
            error("--link --form=x y").message,
            "unknown flag: --form (did you mean --from?)"
        );
        assert_eq!(error("--link --form=x y").at, 7);
        assert_eq!(
            error("--from=a --from=b x").message,
            "duplicate flag specified: --from"
        );
        assert_eq!(error("--from x").message, "missing a value on flag: --from");
        assert_eq!(
            error("--link= x").message,
            "missing a value on flag: --link"
        );
        assert_eq!(
            error("--link=yes x").message,
            "expecting boolean value for flag --link, not: yes"
        );
        assert_eq!(
            error("--mount x").message,
            "missing a value on flag: --mount"
        );
    }
}
