//! Variable expansion of Dockerfile words, as BuildKit's `shell.Lex`
//! (frontend/dockerfile/shell/lex.go) does it
//! (<https://docs.docker.com/reference/dockerfile/#environment-replacement>):
//!
//! - `$VAR` and `${VAR}`; an unset variable expands to nothing;
//! - `${VAR:-word}` / `${VAR-word}` (default if unset — or empty, with `:`),
//!   `${VAR:+word}` / `${VAR+word}` (alternative if set), `${VAR:?msg}` /
//!   `${VAR?msg}` (error if unset — or empty, with `:`);
//! - `${VAR#pat}`, `${VAR##pat}`, `${VAR%pat}`, `${VAR%%pat}` (remove the
//!   shortest/longest matching prefix/suffix), `${VAR/pat/repl}` and
//!   `${VAR//pat/repl}` (replace the first/every match), with `*` and `?`
//!   patterns ([`crate::pattern`]);
//! - single quotes keep everything literal, double quotes keep spaces but
//!   expand `$`; the escape character (`\` or `` ` ``) escapes the next
//!   character; quotes and escapes are removed from the result.
//!
//! Variables are found through a `lookup` function, so that the caller
//! decides what is set (build arguments, the stage's `ENV`) and how names
//! compare.

use crate::error::ExpandError;
use crate::pattern;

/// Expands one word: the text with its variables replaced and its quotes
/// and escapes removed; spaces stay (BuildKit's `ProcessWord`).
pub fn expand(
    word: &str,
    escape: char,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, ExpandError> {
    Ok(lex(word, escape, lookup, Mode::default())?.word)
}

/// Expands a line and splits it into words at unquoted whitespace, also
/// whitespace that a variable's value brings; quoted text stays one word
/// (BuildKit's `ProcessWords`). Empty words are dropped.
pub fn expand_words(
    word: &str,
    escape: char,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<String>, ExpandError> {
    Ok(lex(word, escape, lookup, Mode::default())?.words)
}

/// Expands the body of a heredoc whose delimiter was not quoted
/// (`COPY <<EOF`): variables expand, quotes are ordinary characters and
/// stay. As in BuildKit, the escape character still escapes the character
/// after it (`\$HOME` gives `$HOME`, and `\n` gives `n`), so the builder
/// passes `\` here, as BuildKit does whatever `# escape=` says.
pub fn expand_heredoc(
    body: &str,
    escape: char,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, ExpandError> {
    let mode = Mode {
        skip_quotes: true,
        ..Mode::default()
    };
    Ok(lex(body, escape, lookup, mode)?.word)
}

/// BuildKit's lexer switches, for the parser's own raw uses (finding
/// heredoc words on a line).
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Mode {
    /// Keep quote characters in the result (`RawQuotes`).
    pub raw_quotes: bool,
    /// Keep escape characters in the result (`RawEscapes`).
    pub raw_escapes: bool,
    /// Quotes are ordinary characters (`SkipProcessQuotes`).
    pub skip_quotes: bool,
    /// An unset variable stays as written (`SkipUnsetEnv`).
    pub keep_unset: bool,
}

/// A lexed word: whole, and split into words.
#[derive(Debug)]
pub(crate) struct Lexed {
    pub word: String,
    pub words: Vec<String>,
}

pub(crate) fn lex(
    word: &str,
    escape: char,
    lookup: &dyn Fn(&str) -> Option<String>,
    mode: Mode,
) -> Result<Lexed, ExpandError> {
    let mut lexer = Lexer {
        chars: word.chars().collect(),
        pos: 0,
        escape,
        mode,
        raw_escapes: mode.raw_escapes,
        depth: 0,
        lookup,
    };
    let (word, words) = lexer.until(None, mode.raw_escapes)?;
    Ok(Lexed { word, words })
}

const MISSING_BRACE: &str = "syntax error: missing '}'";

/// Nested `${…}` beyond this depth is refused: it bounds the recursion a
/// hostile word can cause.
const MAX_DEPTH: usize = 64;

struct Lexer<'a> {
    chars: Vec<char>,
    pos: usize,
    escape: char,
    mode: Mode,
    /// Escapes are kept inside `${VAR#…}` and `${VAR/…}` patterns, whatever
    /// the mode, so that `\*` still means a literal star there.
    raw_escapes: bool,
    depth: usize,
    lookup: &'a dyn Fn(&str) -> Option<String>,
}

/// Splits the result into words as it is built (BuildKit's wordsStruct).
#[derive(Default)]
struct Words {
    word: String,
    words: Vec<String>,
    in_word: bool,
}

impl Words {
    fn add_char(&mut self, c: char) {
        if !c.is_whitespace() {
            self.add_raw_char(c);
        } else if self.in_word && !self.word.is_empty() {
            self.words.push(std::mem::take(&mut self.word));
            self.in_word = false;
        }
    }

    fn add_raw_char(&mut self, c: char) {
        self.word.push(c);
        self.in_word = true;
    }

    /// A variable's value: its whitespace splits words.
    fn add_expanded(&mut self, text: &str) {
        text.chars().for_each(|c| self.add_char(c));
    }

    /// Quoted text: one word, spaces and all.
    fn add_raw(&mut self, text: &str) {
        self.word.push_str(text);
        self.in_word = true;
    }

    fn finish(mut self) -> Vec<String> {
        if !self.word.is_empty() {
            self.words.push(self.word);
        }
        self.words
    }
}

impl Lexer<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek();
        if c.is_some() {
            self.pos += 1;
        }
        c
    }

    fn get(&self, name: &str) -> Option<String> {
        (self.lookup)(name)
    }

    /// Lexes up to `stop` (consumed) or the end (BuildKit's processStopOn).
    fn until(
        &mut self,
        stop: Option<char>,
        raw_escapes: bool,
    ) -> Result<(String, Vec<String>), ExpandError> {
        let saved = std::mem::replace(&mut self.raw_escapes, raw_escapes);
        let result = self.until_inner(stop);
        self.raw_escapes = saved;
        result
    }

    fn until_inner(&mut self, stop: Option<char>) -> Result<(String, Vec<String>), ExpandError> {
        let mut result = String::new();
        let mut words = Words::default();
        while let Some(c) = self.peek() {
            if Some(c) == stop {
                self.pos += 1;
                return Ok((result, words.finish()));
            }
            match c {
                '$' => {
                    let value = self.dollar()?;
                    result.push_str(&value);
                    words.add_expanded(&value);
                }
                '\'' | '"' if !self.mode.skip_quotes => {
                    let text = if c == '\'' {
                        self.single_quoted()?
                    } else {
                        self.double_quoted()?
                    };
                    result.push_str(&text);
                    words.add_raw(&text);
                }
                _ => {
                    if !self.ordinary(&mut result, &mut words) {
                        break;
                    }
                }
            }
        }
        match stop {
            Some(s) => Err(ExpandError::new(format!(
                "unexpected end of statement while looking for matching {s}"
            ))),
            None => Ok((result, words.finish())),
        }
    }

    /// A character outside quotes and `$`. False for an escape character
    /// at the very end, which is dropped.
    fn ordinary(&mut self, result: &mut String, words: &mut Words) -> bool {
        let Some(c) = self.next() else { return false };
        if c != self.escape {
            result.push(c);
            words.add_char(c);
            return true;
        }
        if self.raw_escapes {
            result.push(c);
            words.add_raw_char(c);
        }
        match self.next() {
            Some(escaped) => {
                result.push(escaped);
                words.add_raw_char(escaped);
                true
            }
            None => false,
        }
    }

    /// `'…'`: everything literal; a single quote cannot be escaped inside.
    fn single_quoted(&mut self) -> Result<String, ExpandError> {
        self.pos += 1;
        let mut out = String::new();
        if self.mode.raw_quotes {
            out.push('\'');
        }
        loop {
            match self.next() {
                None => {
                    return Err(ExpandError::new(
                        "unexpected end of statement while looking for matching single-quote",
                    ))
                }
                Some('\'') => {
                    if self.mode.raw_quotes {
                        out.push('\'');
                    }
                    return Ok(out);
                }
                Some(c) => out.push(c),
            }
        }
    }

    /// `"…"`: `$` expands; the escape character escapes only `"`, `$` and
    /// itself, and stays before anything else (as in sh).
    fn double_quoted(&mut self) -> Result<String, ExpandError> {
        self.pos += 1;
        let mut out = String::new();
        if self.mode.raw_quotes {
            out.push('"');
        }
        loop {
            match self.peek() {
                None => {
                    return Err(ExpandError::new(
                        "unexpected end of statement while looking for matching double-quote",
                    ))
                }
                Some('"') => {
                    self.pos += 1;
                    if self.mode.raw_quotes {
                        out.push('"');
                    }
                    return Ok(out);
                }
                Some('$') => {
                    let value = self.dollar()?;
                    out.push_str(&value);
                }
                Some(c) => {
                    self.pos += 1;
                    self.double_quoted_char(c, &mut out);
                }
            }
        }
    }

    fn double_quoted_char(&mut self, c: char, out: &mut String) {
        if c != self.escape {
            out.push(c);
            return;
        }
        if self.raw_escapes {
            out.push(c);
        }
        match self.peek() {
            // Dropped: the caller then reports the missing quote.
            None => {}
            Some(e) if e == '"' || e == '$' || e == self.escape => {
                self.pos += 1;
                out.push(e);
            }
            Some(_) => out.push(c),
        }
    }

    /// `$NAME`, `${…}`, or a lone `$`.
    fn dollar(&mut self) -> Result<String, ExpandError> {
        self.pos += 1;
        if self.peek() != Some('{') {
            let name = self.name();
            if name.is_empty() {
                return Ok("$".into());
            }
            return Ok(match self.get(&name) {
                Some(value) => value,
                None if self.mode.keep_unset => format!("${name}"),
                None => String::new(),
            });
        }
        self.pos += 1;
        match self.peek() {
            None => return Err(ExpandError::new(MISSING_BRACE)),
            Some('{' | '}' | ':') => {
                return Err(ExpandError::new("syntax error: bad substitution"))
            }
            Some(_) => {}
        }
        if self.depth >= MAX_DEPTH {
            return Err(ExpandError::new(
                "syntax error: substitutions nested too deeply",
            ));
        }
        self.depth += 1;
        let result = self.braced();
        self.depth -= 1;
        result
    }

    /// After `${`: the name, then `}` or a modifier.
    fn braced(&mut self) -> Result<String, ExpandError> {
        let name = self.name();
        match self.next() {
            Some('}') => Ok(match self.get(&name) {
                Some(value) => value,
                None if self.mode.keep_unset => format!("${{{name}}}"),
                None => String::new(),
            }),
            Some(':') => {
                let op = self.next();
                self.modifier(&name, true, op)
            }
            Some(op @ ('+' | '-' | '?' | '#' | '%')) => self.modifier(&name, false, Some(op)),
            Some('/') => self.replace(&name),
            None => Err(ExpandError::new(MISSING_BRACE)),
            Some(c) => Err(ExpandError::new(format!(
                "unsupported modifier ({c}) in substitution"
            ))),
        }
    }

    /// The word after a modifier, up to `stop`; `at_end` replaces the
    /// error when the text ran out.
    fn operand(
        &mut self,
        stop: char,
        raw_escapes: bool,
        at_end: &str,
    ) -> Result<String, ExpandError> {
        match self.until(Some(stop), raw_escapes) {
            Ok((word, _)) => Ok(word),
            Err(_) if self.peek().is_none() => Err(ExpandError::new(at_end)),
            Err(e) => Err(e),
        }
    }

    /// `${NAME[:]op word}` for op `-`, `+`, `?`, `#`, `%`.
    fn modifier(
        &mut self,
        name: &str,
        colon: bool,
        op: Option<char>,
    ) -> Result<String, ExpandError> {
        let word = self.operand('}', matches!(op, Some('#' | '%')), MISSING_BRACE)?;
        let value = self.get(name);
        let spelled = format!(
            "{}{}",
            if colon { ":" } else { "" },
            op.map(String::from).unwrap_or_default()
        );
        if value.is_none() && self.mode.keep_unset {
            return Ok(format!("${{{name}{spelled}{word}}}"));
        }
        // With `:`, an empty value counts as unset.
        let null = value.as_deref().is_none_or(|v| colon && v.is_empty());
        match op {
            Some('-') => Ok(if null {
                word
            } else {
                value.unwrap_or_default()
            }),
            Some('+') => Ok(if null { String::new() } else { word }),
            Some('?') => required(name, value, null, &word),
            Some(c @ ('#' | '%')) => trim(c, &word, &value.unwrap_or_default()),
            _ => Err(ExpandError::new(format!(
                "unsupported modifier ({spelled}) in substitution"
            ))),
        }
    }

    /// `${NAME/pat/repl}` and `${NAME//pat/repl}`.
    fn replace(&mut self, name: &str) -> Result<String, ExpandError> {
        let all = self.peek() == Some('/');
        if all {
            self.pos += 1;
        }
        let pat = self.operand('/', true, "syntax error: missing '/' in ${}")?;
        let replacement = self.operand('}', true, MISSING_BRACE)?;
        let value = self.get(name);
        if value.is_none() && self.mode.keep_unset {
            return Ok(format!("${{{name}/{pat}/{replacement}}}"));
        }
        pattern::replace(&pat, &value.unwrap_or_default(), &replacement, all)
            .map_err(|e| invalid_pattern(&pat, &e))
    }

    /// A variable name: digits (a positional parameter), one special
    /// parameter character, or letters, digits and `_`.
    fn name(&mut self) -> String {
        match self.peek() {
            Some(c) if c.is_ascii_digit() => return self.take_while(|c| c.is_ascii_digit()),
            Some(c) if is_special_parameter(c) => {
                self.pos += 1;
                return c.to_string();
            }
            _ => {}
        }
        self.take_while(|c| c.is_alphanumeric() || c == '_')
    }

    fn take_while(&mut self, accept: impl Fn(char) -> bool) -> String {
        let mut taken = String::new();
        while let Some(c) = self.peek().filter(|&c| accept(c)) {
            taken.push(c);
            self.pos += 1;
        }
        taken
    }
}

/// <https://pubs.opengroup.org/onlinepubs/009695399/utilities/xcu_chap02.html#tag_02_05_02>
fn is_special_parameter(c: char) -> bool {
    matches!(c, '@' | '*' | '#' | '?' | '-' | '$' | '!' | '0')
}

/// `${NAME?msg}` / `${NAME:?msg}`.
fn required(
    name: &str,
    value: Option<String>,
    null: bool,
    message: &str,
) -> Result<String, ExpandError> {
    let default = match value {
        None => "is not allowed to be unset",
        Some(_) if null => "is not allowed to be empty",
        Some(value) => return Ok(value),
    };
    let message = if message.is_empty() { default } else { message };
    Err(ExpandError::new(format!("{name}: {message}")))
}

/// `#`/`%` remove the shortest prefix/suffix; doubled, the longest.
fn trim(op: char, word: &str, value: &str) -> Result<String, ExpandError> {
    let (greedy, pat) = match word.strip_prefix(op) {
        Some(pat) => (true, pat),
        None => (false, word),
    };
    let trimmed = if op == '%' {
        pattern::trim_suffix(pat, value, greedy)
    } else {
        pattern::trim_prefix(pat, value, greedy)
    };
    trimmed.map_err(|e| invalid_pattern(pat, &e))
}

fn invalid_pattern(pat: &str, reason: &str) -> ExpandError {
    ExpandError::new(format!("invalid pattern ({pat}) in substitution: {reason}"))
}

#[cfg(test)]
#[path = "expand_tests.rs"]
mod tests;
