//! The shell patterns of `${VAR#pat}`, `${VAR%pat}` and `${VAR/pat/repl}`
//! (<https://pubs.opengroup.org/onlinepubs/9699919799/utilities/V3_chap02.html#tag_18_13>,
//! without bracket expressions), matched as BuildKit matches them: it turns
//! a pattern into a Go regular expression, so `?` and `*` do not match a
//! newline, and `*` takes the longest (`##`, `%%`, `/`) or the shortest
//! (`#`, `%`) text that lets the rest of the pattern match.
//!
//! Matching is a table over (pattern token, position): no backtracking, no
//! recursion, `O(tokens × length)` whatever the input.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    Literal(char),
    /// `?`
    One,
    /// `*`
    Many,
}

#[derive(Debug)]
struct Pattern {
    tokens: Vec<Token>,
    greedy: bool,
}

fn compile(pattern: &[char], greedy: bool) -> Result<Pattern, String> {
    let mut tokens = Vec::new();
    let mut i = 0;
    while let Some(&c) = pattern.get(i) {
        i += 1;
        let token = match c {
            '*' => Token::Many,
            '?' => Token::One,
            // `\}` and `\/` protect the delimiters of `${…}`: the backslash
            // is not part of the pattern.
            '\\' if matches!(pattern.get(i), Some('}' | '/')) => continue,
            '\\' => match pattern.get(i) {
                Some(&e @ ('*' | '?' | '\\')) => {
                    i += 1;
                    Token::Literal(e)
                }
                Some(e) => return Err(format!("invalid escape '\\{e}'")),
                None => return Err("invalid escape '\\' at the end".into()),
            },
            c => Token::Literal(c),
        };
        tokens.push(token);
    }
    Ok(Pattern { tokens, greedy })
}

impl Pattern {
    /// For every start position in `value`, where the preferred match
    /// starting there ends (`None`: no match starts there). Built from the
    /// last token back: `ends[j]` of a token is the end of the preferred
    /// match of the tokens from it on.
    fn match_ends(&self, value: &[char]) -> Vec<Option<usize>> {
        let n = value.len();
        let mut next: Vec<Option<usize>> = (0..=n).map(Some).collect();
        for token in self.tokens.iter().rev() {
            next = match *token {
                Token::Literal(c) => Self::step(value, &next, |v| v == c),
                Token::One => Self::step(value, &next, |v| v != '\n'),
                Token::Many => self.star(value, &next),
            };
        }
        next
    }

    fn step(
        value: &[char],
        next: &[Option<usize>],
        accepts: impl Fn(char) -> bool,
    ) -> Vec<Option<usize>> {
        let mut row = vec![None; value.len() + 1];
        for (j, &v) in value.iter().enumerate() {
            if accepts(v) {
                row[j] = next[j + 1];
            }
        }
        row
    }

    /// A `*` at `j` may stop anywhere up to the next newline: greedy, the
    /// furthest stop from which the rest matches; lazy, the nearest.
    fn star(&self, value: &[char], next: &[Option<usize>]) -> Vec<Option<usize>> {
        let n = value.len();
        let mut row = vec![None; n + 1];
        let mut best = None;
        for j in (0..=n).rev() {
            if j == n || value[j] == '\n' {
                best = None;
            }
            if next[j].is_some() && (!self.greedy || best.is_none()) {
                best = next[j];
            }
            row[j] = best;
        }
        row
    }
}

/// `${VAR#pat}` (lazy) and `${VAR##pat}` (greedy).
pub(crate) fn trim_prefix(pattern: &str, value: &str, greedy: bool) -> Result<String, String> {
    let pattern: Vec<char> = pattern.chars().collect();
    let value: Vec<char> = value.chars().collect();
    Ok(trim_prefix_chars(&pattern, &value, greedy)?
        .iter()
        .collect())
}

fn trim_prefix_chars<'v>(
    pattern: &[char],
    value: &'v [char],
    greedy: bool,
) -> Result<&'v [char], String> {
    let compiled = compile(pattern, greedy)?;
    Ok(match compiled.match_ends(value)[0] {
        Some(end) => &value[end..],
        None => value,
    })
}

/// `${VAR%pat}` and `${VAR%%pat}`: a prefix trim of the reversed value by
/// the reversed pattern, as BuildKit does it (escapes stay before the
/// character they escape).
pub(crate) fn trim_suffix(pattern: &str, value: &str, greedy: bool) -> Result<String, String> {
    let pattern = reverse_pattern(&pattern.chars().collect::<Vec<_>>());
    let value: Vec<char> = value.chars().rev().collect();
    Ok(trim_prefix_chars(&pattern, &value, greedy)?
        .iter()
        .rev()
        .collect())
}

fn reverse_pattern(pattern: &[char]) -> Vec<char> {
    let mut out = Vec::with_capacity(pattern.len());
    let mut i = 0;
    while let Some(&c) = pattern.get(i) {
        match pattern.get(i + 1) {
            Some(&escaped) if c == '\\' => {
                out.push(escaped);
                out.push('\\');
                i += 2;
            }
            _ => {
                out.push(c);
                i += 1;
            }
        }
    }
    out.reverse();
    out
}

/// `${VAR/pat/repl}` (first match) and `${VAR//pat/repl}` (every match,
/// as Go's `Regexp.ReplaceAllString`: an empty match right after a match is
/// skipped, and `$0`/`${0}` in the replacement stand for the match).
pub(crate) fn replace(
    pattern: &str,
    value: &str,
    replacement: &str,
    all: bool,
) -> Result<String, String> {
    let pattern: Vec<char> = pattern.chars().collect();
    let value: Vec<char> = value.chars().collect();
    let ends = compile(&pattern, true)?.match_ends(&value);
    let first_from = |from: usize| (from..ends.len()).find_map(|s| ends[s].map(|e| (s, e)));
    if !all {
        let Some((start, end)) = first_from(0) else {
            return Ok(value.iter().collect());
        };
        let mut out: String = value[..start].iter().collect();
        out.push_str(replacement);
        out.extend(&value[end..]);
        return Ok(out);
    }
    let mut out = String::new();
    let (mut last_end, mut search) = (0, 0);
    while let Some((start, end)) = first_from(search) {
        out.extend(&value[last_end..start]);
        if end > last_end || start == 0 {
            let matched: String = value[start..end].iter().collect();
            out.push_str(&expand_template(replacement, &matched));
        }
        last_end = end;
        search = if search + 1 > end { search + 1 } else { end };
    }
    out.extend(&value[last_end.min(value.len())..]);
    Ok(out)
}

/// Go's `Regexp.Expand` for a pattern whose only group is the whole match:
/// `$$` is `$`, `$0` and `${0}` the match, any other `$name` nothing; a `$`
/// that starts no name stays.
fn expand_template(template: &str, matched: &str) -> String {
    let mut out = String::new();
    let mut rest = template;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
            continue;
        }
        match template_name(after) {
            Some((name, tail)) => {
                if name == "0" {
                    out.push_str(matched);
                }
                rest = tail;
            }
            None => {
                out.push('$');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

fn template_name(text: &str) -> Option<(&str, &str)> {
    let (braced, body) = match text.strip_prefix('{') {
        Some(body) => (true, body),
        None => (false, text),
    };
    let len = body
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(body.len());
    if len == 0 {
        return None;
    }
    let (name, tail) = body.split_at(len);
    if braced {
        return tail.strip_prefix('}').map(|tail| (name, tail));
    }
    Some((name, tail))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_lazy_and_greedy() {
        assert_eq!(trim_prefix("*x*y", "xxyy", false).unwrap(), "y");
        assert_eq!(trim_prefix("*", "xxyy", false).unwrap(), "xxyy");
        assert_eq!(trim_prefix("*x", "xxyy", true).unwrap(), "yy");
        assert_eq!(trim_prefix("", "xxyy", true).unwrap(), "xxyy");
        assert_eq!(trim_prefix("?\\?", "???y", false).unwrap(), "?y");
        assert_eq!(trim_prefix("z", "xxyy", false).unwrap(), "xxyy");
    }

    #[test]
    fn regex_specials_are_literal() {
        let pattern = "()[]{\\}^$.\\*\\?|\\\\";
        assert_eq!(trim_prefix(pattern, "()[]{}^$.*?|\\x", false).unwrap(), "x");
    }

    #[test]
    fn suffix_reverses_pattern_and_value() {
        assert_eq!(trim_suffix("\\**", "xx**", true).unwrap(), "xx");
        assert_eq!(trim_suffix("\\**\\*", "a***yy*", true).unwrap(), "a");
        assert_eq!(trim_suffix("x", "xxyy", false).unwrap(), "xxyy");
        assert_eq!(trim_suffix(".*", "file.tar.gz", false).unwrap(), "file.tar");
        assert_eq!(trim_suffix(".*", "file.tar.gz", true).unwrap(), "file");
    }

    #[test]
    fn reverse_pattern_keeps_escapes_paired() {
        let rev = |p: &str| {
            reverse_pattern(&p.chars().collect::<Vec<_>>())
                .into_iter()
                .collect::<String>()
        };
        assert_eq!(rev("a\\*c"), "c\\*a");
        assert_eq!(rev("\\\\\\ab"), "b\\a\\\\");
        assert_eq!(rev("ab\\"), "\\ba");
        assert_eq!(rev("👽\\🚀🖖"), "🖖\\🚀👽");
    }

    #[test]
    fn wildcards_stop_at_newlines() {
        assert_eq!(trim_prefix("*b", "a\nb", true).unwrap(), "a\nb");
        assert_eq!(trim_prefix("a?b", "a\nb", true).unwrap(), "a\nb");
    }

    #[test]
    fn invalid_escapes() {
        assert_eq!(
            trim_prefix("\\x", "v", true).unwrap_err(),
            "invalid escape '\\x'"
        );
        assert!(trim_prefix("\\", "v", true).is_err());
        assert!(trim_prefix("\\\\\\", "v", true).is_err());
    }

    #[test]
    fn replace_first_and_all() {
        assert_eq!(
            replace("\\*/", "/foo*/*/*.txt", ".", false).unwrap(),
            "/foo.*/*.txt"
        );
        assert_eq!(
            replace("\\*/", "/foo*/*/*.txt", ".", true).unwrap(),
            "/foo..*.txt"
        );
        assert_eq!(
            replace("/tmp", "/tmp/tmp/bar.txt", "", true).unwrap(),
            "/bar.txt"
        );
        assert_eq!(
            replace("/?/", "/a/foo/b/c.txt", "/", true).unwrap(),
            "/foo/c.txt"
        );
        assert_eq!(replace("", "xxyy", "ww", false).unwrap(), "wwxxyy");
        assert_eq!(replace("", "xxyy", "", true).unwrap(), "xxyy");
        assert_eq!(replace("", "ab", "-", true).unwrap(), "-a-b-");
        assert_eq!(replace("x*", "axxb", "-", true).unwrap(), "a-");
        assert_eq!(replace("x?", "axxbxc", "-", true).unwrap(), "a-b-");
    }

    #[test]
    fn replace_all_expands_go_templates() {
        assert_eq!(replace("o", "foo", "[$0]", true).unwrap(), "f[o][o]");
        assert_eq!(replace("o", "foo", "${0}$$$x$", true).unwrap(), "fo$$o$$");
        assert_eq!(replace("o", "foo", "$0", false).unwrap(), "f$0o");
    }
}
