//! The exec form's JSON arrays (`["executable", "arg"]`), read as BuildKit
//! reads them with Go's encoding/json (<https://www.rfc-editor.org/rfc/rfc8259>):
//! the whole text must be one valid JSON value, an array; it then must hold
//! strings only. Text that is not valid JSON is not an error: the
//! instruction is in shell form.

/// What the arguments of an instruction are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum JsonArray {
    /// Not a JSON array: shell form.
    NotJson,
    /// A valid JSON array with something other than a string in it.
    NotStrings,
    Strings(Vec<String>),
}

/// Docker's error for [`JsonArray::NotStrings`].
pub(crate) const NOT_STRINGS: &str =
    "when using JSON array syntax, arrays must be comprised of strings only";

/// Go's encoding/json refuses deeper nesting; so do we (and it bounds the
/// work a hostile line can cause).
const MAX_DEPTH: usize = 10_000;

pub(crate) fn parse_string_array(text: &str) -> JsonArray {
    let text = text.trim_start();
    if !text.starts_with('[') {
        return JsonArray::NotJson;
    }
    let mut parser = Parser { text, pos: 0 };
    let Some(items) = parser.array_of_strings() else {
        return JsonArray::NotJson;
    };
    parser.whitespace();
    if parser.pos != text.len() {
        return JsonArray::NotJson;
    }
    match items.into_iter().collect::<Option<Vec<String>>>() {
        Some(strings) => JsonArray::Strings(strings),
        None => JsonArray::NotStrings,
    }
}

struct Parser<'a> {
    text: &'a str,
    pos: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.pos).copied()
    }

    fn eat(&mut self, byte: u8) -> Option<()> {
        (self.peek() == Some(byte)).then(|| self.pos += 1)
    }

    fn whitespace(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    /// The top-level array: each element a string (`Some`) or any other
    /// valid value (`None`).
    fn array_of_strings(&mut self) -> Option<Vec<Option<String>>> {
        self.eat(b'[')?;
        self.whitespace();
        let mut items = Vec::new();
        if self.eat(b']').is_some() {
            return Some(items);
        }
        loop {
            self.whitespace();
            if self.peek() == Some(b'"') {
                items.push(Some(self.string()?));
            } else {
                self.skip_value()?;
                items.push(None);
            }
            self.whitespace();
            match self.peek()? {
                b',' => self.pos += 1,
                b']' => {
                    self.pos += 1;
                    return Some(items);
                }
                _ => return None,
            }
        }
    }

    /// Checks one value of any kind. Iterative: nesting is kept on a stack
    /// of the closing brackets still expected.
    fn skip_value(&mut self) -> Option<()> {
        let mut open: Vec<u8> = Vec::new();
        loop {
            self.whitespace();
            match self.peek()? {
                b'[' | b'{' if open.len() >= MAX_DEPTH => return None,
                b'[' => {
                    self.pos += 1;
                    self.whitespace();
                    if self.eat(b']').is_none() {
                        open.push(b']');
                        continue;
                    }
                }
                b'{' => {
                    self.pos += 1;
                    self.whitespace();
                    if self.eat(b'}').is_none() {
                        open.push(b'}');
                        self.key()?;
                        continue;
                    }
                }
                _ => self.scalar()?,
            }
            if self.close(&mut open)? {
                return Some(());
            }
        }
    }

    /// After a value: closes what it completes. `Some(true)` once nothing
    /// is open; `Some(false)` when another element or member follows.
    fn close(&mut self, open: &mut Vec<u8>) -> Option<bool> {
        loop {
            let Some(&closing) = open.last() else {
                return Some(true);
            };
            self.whitespace();
            match self.peek()? {
                b',' => {
                    self.pos += 1;
                    if closing == b'}' {
                        self.key()?;
                    }
                    return Some(false);
                }
                byte if byte == closing => {
                    self.pos += 1;
                    open.pop();
                }
                _ => return None,
            }
        }
    }

    /// An object member's `"key":`.
    fn key(&mut self) -> Option<()> {
        self.whitespace();
        self.string()?;
        self.whitespace();
        self.eat(b':')
    }

    fn scalar(&mut self) -> Option<()> {
        match self.peek()? {
            b'"' => self.string().map(drop),
            b't' => self.literal("true"),
            b'f' => self.literal("false"),
            b'n' => self.literal("null"),
            b'-' | b'0'..=b'9' => self.number(),
            _ => None,
        }
    }

    fn literal(&mut self, word: &str) -> Option<()> {
        self.text[self.pos..]
            .starts_with(word)
            .then(|| self.pos += word.len())
    }

    fn digits(&mut self) -> usize {
        let start = self.pos;
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.pos += 1;
        }
        self.pos - start
    }

    /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`
    fn number(&mut self) -> Option<()> {
        let _ = self.eat(b'-');
        if self.eat(b'0').is_none() && self.digits() == 0 {
            return None;
        }
        if self.eat(b'.').is_some() && self.digits() == 0 {
            return None;
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.pos += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            if self.digits() == 0 {
                return None;
            }
        }
        Some(())
    }

    /// A string, decoded. Control characters must be escaped; a `\u`
    /// escape that is half a surrogate pair decodes to U+FFFD, as in Go.
    fn string(&mut self) -> Option<String> {
        self.eat(b'"')?;
        let mut out = String::new();
        loop {
            let c = self.text[self.pos..].chars().next()?;
            self.pos += c.len_utf8();
            match c {
                '"' => return Some(out),
                '\\' => out.push(self.escape()?),
                c if u32::from(c) < 0x20 => return None,
                c => out.push(c),
            }
        }
    }

    fn escape(&mut self) -> Option<char> {
        let byte = self.peek()?;
        self.pos += 1;
        Some(match byte {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => return self.unicode_escape(),
            _ => return None,
        })
    }

    fn unicode_escape(&mut self) -> Option<char> {
        let first = self.hex4()?;
        if !(0xD800..0xE000).contains(&first) {
            return char::from_u32(first);
        }
        // A high surrogate joins the low one that follows it, if any.
        if first < 0xDC00 && self.text[self.pos..].starts_with("\\u") {
            let saved = self.pos;
            self.pos += 2;
            if let Some(second @ 0xDC00..=0xDFFF) = self.hex4() {
                let code = 0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00);
                return char::from_u32(code);
            }
            self.pos = saved;
        }
        Some('\u{fffd}')
    }

    fn hex4(&mut self) -> Option<u32> {
        let digits = self.text.get(self.pos..self.pos + 4)?;
        let value = u32::from_str_radix(digits, 16).ok()?;
        if !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        self.pos += 4;
        Some(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(items: &[&str]) -> JsonArray {
        JsonArray::Strings(items.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn string_arrays() {
        assert_eq!(
            parse_string_array(r#"["a", "b c"]"#),
            strings(&["a", "b c"])
        );
        assert_eq!(parse_string_array(" [ ] "), strings(&[]));
        assert_eq!(
            parse_string_array(r#"["\"q\"\\\/\n\t\u00e9"]"#),
            strings(&["\"q\"\\/\n\té"])
        );
        assert_eq!(
            parse_string_array(r#"["\ud83d\ude00", "\ud800x"]"#),
            strings(&["😀", "\u{fffd}x"])
        );
        assert_eq!(parse_string_array("[\"é\"]\n"), strings(&["é"]));
    }

    #[test]
    fn valid_json_with_other_values_is_not_strings() {
        for text in [
            r#"["a", 1]"#,
            "[null]",
            r#"[["x"]]"#,
            r#"[{"a": [1, {"b": null}]}, "x"]"#,
            "[-0.5e+3, true, false]",
            "[{}]",
            "[[]]",
        ] {
            assert_eq!(parse_string_array(text), JsonArray::NotStrings, "{text}");
        }
    }

    #[test]
    fn invalid_json_is_shell_form() {
        for text in [
            "echo hi",
            "[",
            "[\"a\"",
            "[\"a\",]",
            "[\"a\"] x",
            "['a']",
            "[01]",
            "[1.]",
            "[\"\t\"]",
            "[\"\\x\"]",
            "[\"\\u12\"]",
            "[{\"a\" 1}]",
            "[{1: 2}]",
            "[tru]",
            "[\"a\" \"b\"]",
            "",
        ] {
            assert_eq!(parse_string_array(text), JsonArray::NotJson, "{text:?}");
        }
    }

    #[test]
    fn deep_nesting_is_bounded_not_recursive() {
        let deep = format!("[{}{}]", "[".repeat(20_000), "]".repeat(20_000));
        assert_eq!(parse_string_array(&deep), JsonArray::NotJson);
        let ok = format!("[{}{}]", "[".repeat(500), "]".repeat(500));
        assert_eq!(parse_string_array(&ok), JsonArray::NotStrings);
    }
}
