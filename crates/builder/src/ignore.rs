//! The two path-matching languages of a Docker build context, matched
//! exactly as Docker matches them.
//!
//! * `.dockerignore`
//!   (<https://docs.docker.com/build/concepts/context/#dockerignore-files>),
//!   as `github.com/moby/patternmatcher` implements it: the file is read
//!   like `ignorefile.ReadAll` reads it, each pattern is checked with Go's
//!   `filepath.Match`, translated into the regular expression patternmatcher
//!   compiles, and matched against the path and each of its parent
//!   directories (`MatchesOrParentMatches`). The last matching pattern
//!   decides; a `!` exception re-includes. [`Dockerignore::can_skip_dir`] is
//!   BuildKit's rule (fsutil) for pruning the walk. `COPY --exclude` uses
//!   the same matcher through [`Dockerignore::from_patterns`].
//! * `COPY`/`ADD` source wildcards: Go's `path/filepath.Match`
//!   (<https://pkg.go.dev/path/filepath#Match>), in [`glob_match`] and
//!   [`has_wildcards`].
//!
//! Docker sends the Dockerfile and the `.dockerignore` file to the builder
//! even when `.dockerignore` excludes them, because the build needs them;
//! only `COPY`/`ADD` leave them out. That rule is the caller's:
//! [`Dockerignore::is_excluded`] answers for the patterns alone.
//!
//! Because Docker hands the translated pattern to Go's `regexp`, a few
//! characters mean there what they mean in a regular expression: `\d`,
//! `\w`, `\s`, `\b` and `\A`/`\z`, `[[:digit:]]`, a bare `^` (start of
//! text), and `*`/`?` inside `[...]` (`[*]` matches `]`, not `*`). These
//! are reproduced. The regular-expression escapes `\p{…}`, `\x..`, octal
//! and `\Q…\E` are refused ([`IgnoreError::Unsupported`]). A pattern whose
//! regular expression Go rejects is refused when it is parsed
//! ([`IgnoreError::BadRegex`]); Docker fails the build when the walk first
//! evaluates it. `[!…]` is not a negation, neither in Docker nor in Go.

/// Why a pattern was refused. The pattern is quoted as it was written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IgnoreError {
    /// An exception with nothing to except: a `!` alone.
    #[error("illegal exclusion pattern {pattern:?}: write the path to re-include after the `!`")]
    EmptyException { pattern: String },
    /// A malformed pattern: Go's `filepath.ErrBadPattern`.
    #[error("syntax error in pattern {pattern:?}: {reason}")]
    BadPattern {
        pattern: String,
        reason: &'static str,
    },
    /// A valid glob whose regular expression in Docker's matcher is invalid.
    #[error("invalid pattern {pattern:?}: Docker reads it as a regular expression and {reason}")]
    BadRegex { pattern: String, reason: String },
    /// A regular-expression escape Docker's matcher accepts and berth does not.
    #[error("unsupported pattern {pattern:?}: it contains {construct}, which Docker reads as a regular expression; escape or remove it")]
    Unsupported {
        pattern: String,
        construct: &'static str,
    },
}

/// The patterns of a `.dockerignore` file (or of `COPY --exclude`), in order.
#[derive(Debug, Clone, Default)]
pub struct Dockerignore {
    patterns: Vec<Pattern>,
}

impl Dockerignore {
    /// Reads a `.dockerignore` file: one pattern a line, `#` in the first
    /// column starts a comment, a leading `/` is dropped.
    pub fn parse(text: &str) -> Result<Self, IgnoreError> {
        let patterns = read_lines(text)
            .into_iter()
            .filter_map(|line| Pattern::new(&line.pattern, line.written).transpose())
            .collect::<Result<_, _>>()?;
        Ok(Self { patterns })
    }

    /// Patterns as patternmatcher's `New` takes them (`COPY --exclude`):
    /// trimmed and cleaned, blank ones skipped, no comments, a leading `/`
    /// kept.
    pub fn from_patterns(patterns: &[&str]) -> Result<Self, IgnoreError> {
        let patterns = patterns
            .iter()
            .filter_map(|written| Pattern::new(written, written).transpose())
            .collect::<Result<_, _>>()?;
        Ok(Self { patterns })
    }

    /// Whether `path` (relative to the context root, '/'-separated, no
    /// leading "./" or "/", already clean) is excluded from the context.
    pub fn is_excluded(&self, path: &str) -> bool {
        // patternmatcher's own helpers never exclude the root: excluding
        // everything makes no sense.
        if path.is_empty() || path == "." {
            return false;
        }
        let parents = ParentDirs::of(path);
        let mut excluded = false;
        for pattern in &self.patterns {
            // Only a pattern pointing the other way can change the answer.
            if pattern.exception != excluded {
                continue;
            }
            if pattern.matches(path) || parents.iter().any(|dir| pattern.matches(dir)) {
                excluded = !pattern.exception;
            }
        }
        excluded
    }

    /// Whether a walk may skip the directory `dir` entirely: it is excluded
    /// and no exception can re-include anything below it. BuildKit's rule:
    /// any exception with a wildcard (after a trailing `/**` or `/*`) could
    /// match anywhere, so nothing is skipped; otherwise `dir` is kept when
    /// an exception lies inside it.
    pub fn can_skip_dir(&self, dir: &str) -> bool {
        if !self.is_excluded(dir) {
            return false;
        }
        let dir_slash = format!("{dir}/");
        self.patterns
            .iter()
            .filter(|pattern| pattern.exception)
            .all(|exception| {
                let stem = exception.stem();
                !stem.contains(PATTERN_CHARS) && !format!("{stem}/").starts_with(&dir_slash)
            })
    }

    /// Whether there are no patterns at all (only blank lines and comments).
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }
}

/// The characters that make fsutil treat an exception as a wildcard.
const PATTERN_CHARS: &[char] = &['*', '[', ']', '?', '^', '\\'];

/// Whether a source pattern contains wildcard characters (`*`, `?`, `[`) —
/// Docker only globs those. A `\` escapes the next character.
pub fn has_wildcards(pattern: &str) -> bool {
    let mut bytes = pattern.bytes();
    while let Some(byte) = bytes.next() {
        match byte {
            b'\\' => {
                bytes.next();
            }
            b'*' | b'?' | b'[' => return true,
            _ => {}
        }
    }
    false
}

/// filepath.Match: whether `name` matches `pattern` entirely. Err on a
/// malformed pattern (ErrBadPattern).
pub fn glob_match(pattern: &str, name: &str) -> Result<bool, IgnoreError> {
    glob::matches(pattern.as_bytes(), name.as_bytes()).map_err(|reason| IgnoreError::BadPattern {
        pattern: pattern.to_owned(),
        reason,
    })
}

/// One `.dockerignore` line as `ignorefile.ReadAll` hands it on.
#[derive(Debug)]
struct Line<'a> {
    /// The line as written, trimmed: what errors quote.
    written: &'a str,
    pattern: String,
}

/// `ignorefile.ReadAll`: comments and blank lines dropped, each pattern
/// cleaned and made relative (a leading `/` removed, after any `!`).
fn read_lines(text: &str) -> Vec<Line<'_>> {
    let mut lines = Vec::new();
    for (index, line) in text.split('\n').enumerate() {
        let mut line = line.strip_suffix('\r').unwrap_or(line);
        // Only the first line may start with a UTF-8 byte-order mark.
        if index == 0 {
            line = line.strip_prefix('\u{feff}').unwrap_or(line);
        }
        // The `#` is tested before trimming: "  # x" is a pattern.
        if line.starts_with('#') {
            continue;
        }
        let written = line.trim();
        if !written.is_empty() {
            lines.push(Line {
                written,
                pattern: relative_pattern(written),
            });
        }
    }
    lines
}

fn relative_pattern(line: &str) -> String {
    let (exception, body) = match line.strip_prefix('!') {
        Some(body) => (true, body.trim()),
        None => (false, line),
    };
    let mut pattern = if body.is_empty() {
        String::new()
    } else {
        clean(body)
    };
    // A lone "/" stays: it is the root, not a relative path.
    if pattern.len() > 1 && pattern.starts_with('/') {
        pattern.remove(0);
    }
    if exception {
        pattern.insert(0, '!');
    }
    pattern
}

/// Go's `filepath.Clean` on '/'-separated paths: no empty or `.`
/// elements, `..` folded where it can be, "." for nothing.
fn clean(path: &str) -> String {
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." if parts.last().is_some_and(|last| *last != "..") => {
                parts.pop();
            }
            // Above the root is the root; above a relative path stays "..".
            ".." if rooted => {}
            _ => parts.push(part),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_owned(),
        (false, false) => joined,
    }
}

/// The parent directories of a path, outermost first, as
/// `MatchesOrParentMatches` builds them from `filepath.Dir`.
struct ParentDirs {
    dir: String,
}

impl ParentDirs {
    fn of(path: &str) -> Self {
        let dir = match path.rfind('/') {
            Some(slash) => clean(&path[..=slash]),
            None => ".".to_owned(),
        };
        Self { dir }
    }

    fn iter(&self) -> impl Iterator<Item = &str> {
        let dir = self.dir.as_str();
        let has_parents = dir != ".";
        let prefixes = dir.match_indices('/').map(move |(slash, _)| &dir[..slash]);
        prefixes
            .chain(std::iter::once(dir))
            .filter(move |_| has_parents)
    }
}

/// One compiled pattern (patternmatcher's `Pattern`).
#[derive(Debug, Clone)]
struct Pattern {
    exception: bool,
    /// The cleaned pattern without its `!`.
    text: String,
    matcher: Matcher,
}

/// patternmatcher's match types: plain string tests where they suffice.
#[derive(Debug, Clone)]
enum Matcher {
    /// No wildcard at all: the path equals the pattern.
    Exact,
    /// A literal followed by a final `**`: a string prefix.
    Prefix,
    /// A leading `**` followed by a literal: a string suffix.
    Suffix,
    /// `**/*LITERAL` (`**/*.log`, the commonest wildcard pattern): the
    /// last path component ends with the literal. The program answers for
    /// a path with a newline, which its `.*` does not cross.
    NameSuffix {
        suffix: String,
        program: regex::Program,
    },
    Regex(regex::Program),
}

impl Pattern {
    /// `None` for a blank pattern, which patternmatcher skips.
    fn new(raw: &str, written: &str) -> Result<Option<Self>, IgnoreError> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Ok(None);
        }
        let cleaned = clean(trimmed);
        let (exception, text) = match cleaned.strip_prefix('!') {
            Some("") => {
                return Err(IgnoreError::EmptyException {
                    pattern: written.to_owned(),
                })
            }
            Some(rest) => (true, rest.to_owned()),
            None => (false, cleaned),
        };
        // patternmatcher's syntax check is whatever filepath.Match rejects.
        glob::matches(text.as_bytes(), b".").map_err(|reason| IgnoreError::BadPattern {
            pattern: written.to_owned(),
            reason,
        })?;
        let matcher = Matcher::compile(&text).map_err(|fault| fault.naming(written))?;
        Ok(Some(Self {
            exception,
            text,
            matcher,
        }))
    }

    fn matches(&self, path: &str) -> bool {
        match &self.matcher {
            Matcher::Exact => path == self.text,
            Matcher::Prefix => self
                .text
                .strip_suffix("**")
                .is_some_and(|prefix| path.starts_with(prefix)),
            // Go slices off two bytes; `get` fails just where Go's slice
            // would split a character and match nothing.
            Matcher::Suffix => self.text.get(2..).is_some_and(|suffix| {
                // `**/foo` also matches "foo" itself.
                path.ends_with(suffix) || suffix.strip_prefix('/') == Some(path)
            }),
            Matcher::NameSuffix { suffix, program } => {
                if path.contains('\n') {
                    program.is_match(path)
                } else {
                    path.rsplit('/')
                        .next()
                        .unwrap_or(path)
                        .ends_with(suffix.as_str())
                }
            }
            Matcher::Regex(program) => program.is_match(path),
        }
    }

    /// fsutil's `patternWithoutTrailingGlob`.
    fn stem(&self) -> &str {
        let text = self.text.strip_suffix("/**").unwrap_or(&self.text);
        text.strip_suffix("/*").unwrap_or(text)
    }
}

impl Matcher {
    fn compile(text: &str) -> Result<Self, regex::Fault> {
        let (kind, source) = translate(text);
        Ok(match kind {
            Kind::Exact => Self::Exact,
            Kind::Prefix => Self::Prefix,
            Kind::Suffix => Self::Suffix,
            Kind::Regex => {
                let program = regex::Program::parse(&source)?;
                match name_suffix(text) {
                    Some(suffix) => Self::NameSuffix { suffix, program },
                    None => Self::Regex(program),
                }
            }
        })
    }
}

/// The literal of a `**/*LITERAL` pattern (no wildcard, escape, class or
/// `/` in it): its regex, `^(.*/)?[^/]*LITERAL$`, asks only that the last
/// component end with it.
fn name_suffix(text: &str) -> Option<String> {
    let literal = text.strip_prefix("**/*")?;
    (!literal.contains(['*', '?', '[', ']', '\\', '/'])).then(|| literal.to_owned())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Exact,
    Prefix,
    Suffix,
    Regex,
}

/// patternmatcher's `compile`: the regular expression for a cleaned
/// pattern and the cheapest match type that answers the same.
fn translate(pattern: &str) -> (Kind, String) {
    let mut regex = String::from("^");
    let mut kind = Kind::Exact;
    // Go's text/scanner skips a byte-order mark at the start.
    let mut chars = pattern
        .strip_prefix('\u{feff}')
        .unwrap_or(pattern)
        .chars()
        .peekable();
    let mut first = true;
    while let Some(c) = chars.next() {
        match c {
            '*' if chars.next_if_eq(&'*').is_some() => {
                // `**/` is `**`.
                chars.next_if_eq(&'/');
                kind = if chars.peek().is_some() {
                    regex.push_str("(.*/)?");
                    Kind::Regex
                } else if kind == Kind::Exact {
                    Kind::Prefix
                } else {
                    regex.push_str(".*");
                    Kind::Regex
                };
                if first {
                    kind = Kind::Suffix;
                }
            }
            '*' | '?' => {
                regex.push_str(if c == '*' { "[^/]*" } else { "[^/]" });
                kind = Kind::Regex;
            }
            // Regex syntax with no meaning in a glob; note `^` is not here.
            '.' | '+' | '(' | ')' | '|' | '{' | '}' | '$' => {
                regex.push('\\');
                regex.push(c);
            }
            '\\' => {
                regex.push('\\');
                if let Some(escaped) = chars.next() {
                    regex.push(escaped);
                    kind = Kind::Regex;
                }
            }
            '[' | ']' => {
                regex.push(c);
                kind = Kind::Regex;
            }
            _ => regex.push(c),
        }
        first = false;
    }
    if kind == Kind::Regex {
        regex.push('$');
    }
    (kind, regex)
}

/// The part of Go's `regexp` (RE2 syntax, Perl flags) that patternmatcher's
/// translations can reach, matched by a bit-state backtracker: each
/// (instruction, position) pair is tried at most once, so matching is
/// linear in pattern × path whatever the pattern.
mod regex {
    use super::IgnoreError;

    /// Why a translated pattern cannot be matched.
    #[derive(Debug)]
    pub(super) enum Fault {
        /// Go's `regexp` rejects it too.
        Invalid(String),
        Unsupported(&'static str),
    }

    impl Fault {
        pub(super) fn naming(self, pattern: &str) -> IgnoreError {
            let pattern = pattern.to_owned();
            match self {
                Self::Invalid(reason) => IgnoreError::BadRegex { pattern, reason },
                Self::Unsupported(construct) => IgnoreError::Unsupported { pattern, construct },
            }
        }
    }

    fn invalid(reason: impl Into<String>) -> Fault {
        Fault::Invalid(reason.into())
    }

    /// A compiled regular expression.
    #[derive(Debug, Clone)]
    pub(super) struct Program {
        insts: Vec<Inst>,
    }

    #[derive(Debug, Clone)]
    enum Inst {
        /// Consume one character of the set.
        Char(Set),
        Assert(Assertion),
        /// Try the first branch, then the second.
        Split(usize, usize),
        Jump(usize),
        Match,
    }

    #[derive(Debug, Clone, Copy)]
    enum Assertion {
        BeginText,
        EndText,
        WordBoundary,
        NotWordBoundary,
    }

    impl Assertion {
        fn holds(self, text: &[char], pos: usize) -> bool {
            let word_before = pos > 0 && text.get(pos - 1).is_some_and(|c| is_word(*c));
            let word_after = text.get(pos).is_some_and(|c| is_word(*c));
            match self {
                Self::BeginText => pos == 0,
                Self::EndText => pos == text.len(),
                Self::WordBoundary => word_before != word_after,
                Self::NotWordBoundary => word_before == word_after,
            }
        }
    }

    /// Go's word characters are ASCII only.
    fn is_word(c: char) -> bool {
        c.is_ascii_alphanumeric() || c == '_'
    }

    /// A character class.
    #[derive(Debug, Clone)]
    struct Set {
        negated: bool,
        items: Vec<Item>,
    }

    impl Set {
        fn of(item: Item) -> Self {
            Self {
                negated: false,
                items: vec![item],
            }
        }

        /// `.`: Go's default flags leave out the newline.
        fn any_but_newline() -> Self {
            Self {
                negated: true,
                items: vec![Item::Range('\n', '\n')],
            }
        }

        fn contains(&self, c: char) -> bool {
            self.items.iter().any(|item| item.contains(c)) != self.negated
        }
    }

    #[derive(Debug, Clone, Copy)]
    enum Item {
        Range(char, char),
        /// A Perl or POSIX class; `true` when negated (`\D`, `[:^digit:]`).
        Named(Named, bool),
    }

    impl Item {
        fn contains(self, c: char) -> bool {
            match self {
                Self::Range(lo, hi) => (lo..=hi).contains(&c),
                Self::Named(named, negated) => named.contains(c) != negated,
            }
        }
    }

    /// Go's Perl (`\d`, `\s`, `\w`) and POSIX classes, all ASCII.
    #[derive(Debug, Clone, Copy)]
    enum Named {
        Alnum,
        Alpha,
        Ascii,
        Blank,
        Cntrl,
        Digit,
        Graph,
        Lower,
        Print,
        Punct,
        /// POSIX `[:space:]` includes `\v`, Perl `\s` does not.
        Space,
        PerlSpace,
        Upper,
        Word,
        Xdigit,
    }

    impl Named {
        fn contains(self, c: char) -> bool {
            match self {
                Self::Alnum => c.is_ascii_alphanumeric(),
                Self::Alpha => c.is_ascii_alphabetic(),
                Self::Ascii => c.is_ascii(),
                Self::Blank => c == ' ' || c == '\t',
                Self::Cntrl => c.is_ascii_control(),
                Self::Digit => c.is_ascii_digit(),
                Self::Graph => c.is_ascii_graphic(),
                Self::Lower => c.is_ascii_lowercase(),
                Self::Print => c.is_ascii_graphic() || c == ' ',
                Self::Punct => c.is_ascii_punctuation(),
                Self::Space => c.is_ascii_whitespace() || c == '\x0b',
                Self::PerlSpace => c.is_ascii_whitespace(),
                Self::Upper => c.is_ascii_uppercase(),
                Self::Word => is_word(c),
                Self::Xdigit => c.is_ascii_hexdigit(),
            }
        }

        fn posix(name: &str) -> Option<Self> {
            Some(match name {
                "alnum" => Self::Alnum,
                "alpha" => Self::Alpha,
                "ascii" => Self::Ascii,
                "blank" => Self::Blank,
                "cntrl" => Self::Cntrl,
                "digit" => Self::Digit,
                "graph" => Self::Graph,
                "lower" => Self::Lower,
                "print" => Self::Print,
                "punct" => Self::Punct,
                "space" => Self::Space,
                "upper" => Self::Upper,
                "word" => Self::Word,
                "xdigit" => Self::Xdigit,
                _ => return None,
            })
        }

        /// `\d`, `\D`, `\s`, `\S`, `\w`, `\W`.
        fn perl(letter: char) -> Option<Item> {
            let named = match letter.to_ascii_lowercase() {
                'd' => Self::Digit,
                's' => Self::PerlSpace,
                'w' => Self::Word,
                _ => return None,
            };
            Some(Item::Named(named, letter.is_ascii_uppercase()))
        }
    }

    /// A parsed regular expression, before compilation.
    #[derive(Debug)]
    enum Node {
        Set(Set),
        Assert(Assertion),
        Group(Vec<Node>),
        Star(Box<Node>),
        Optional(Box<Node>),
    }

    impl Program {
        pub(super) fn parse(source: &str) -> Result<Self, Fault> {
            let mut parser = Parser {
                chars: source.chars().collect(),
                pos: 0,
            };
            let nodes = parser.sequence(false)?;
            let mut insts = Vec::new();
            nodes.iter().for_each(|node| emit(node, &mut insts));
            insts.push(Inst::Match);
            Ok(Self { insts })
        }

        /// Whether the expression matches from the start of `path`; the
        /// translation anchors both ends itself (`^…$`).
        pub(super) fn is_match(&self, path: &str) -> bool {
            let text: Vec<char> = path.chars().collect();
            let width = text.len() + 1;
            let mut visited = vec![false; self.insts.len() * width];
            let mut stack = vec![(0, 0)];
            while let Some((pc, pos)) = stack.pop() {
                let Some(seen) = visited.get_mut(pc * width + pos) else {
                    continue;
                };
                if std::mem::replace(seen, true) {
                    continue;
                }
                match self.insts.get(pc) {
                    Some(Inst::Match) => return true,
                    Some(Inst::Char(set)) if text.get(pos).is_some_and(|c| set.contains(*c)) => {
                        stack.push((pc + 1, pos + 1));
                    }
                    Some(Inst::Assert(assertion)) if assertion.holds(&text, pos) => {
                        stack.push((pc + 1, pos));
                    }
                    // The first branch is popped, so tried, first.
                    Some(Inst::Split(first, second)) => {
                        stack.extend([(*second, pos), (*first, pos)])
                    }
                    Some(Inst::Jump(target)) => stack.push((*target, pos)),
                    // A failed character or assertion ends this thread.
                    _ => {}
                }
            }
            false
        }
    }

    fn emit(node: &Node, insts: &mut Vec<Inst>) {
        match node {
            Node::Set(set) => insts.push(Inst::Char(set.clone())),
            Node::Assert(assertion) => insts.push(Inst::Assert(*assertion)),
            Node::Group(nodes) => nodes.iter().for_each(|node| emit(node, insts)),
            Node::Optional(inner) => {
                let split = insts.len();
                insts.push(Inst::Jump(0)); // patched below
                emit(inner, insts);
                insts[split] = Inst::Split(split + 1, insts.len());
            }
            Node::Star(inner) => {
                let split = insts.len();
                insts.push(Inst::Jump(0)); // patched below
                emit(inner, insts);
                insts.push(Inst::Jump(split));
                insts[split] = Inst::Split(split + 1, insts.len());
            }
        }
    }

    struct Parser {
        chars: Vec<char>,
        pos: usize,
    }

    impl Parser {
        fn peek_at(&self, offset: usize) -> Option<char> {
            self.chars.get(self.pos + offset).copied()
        }

        fn bump(&mut self) -> Option<char> {
            let c = self.peek_at(0)?;
            self.pos += 1;
            Some(c)
        }

        fn sequence(&mut self, in_group: bool) -> Result<Vec<Node>, Fault> {
            let mut nodes = Vec::new();
            loop {
                let node = match self.bump() {
                    None if in_group => return Err(invalid("has a missing closing )")),
                    None => return Ok(nodes),
                    Some(')') if in_group => return Ok(nodes),
                    Some(op @ ('*' | '?')) => repeat(op, nodes.pop())?,
                    Some('(') => Node::Group(self.sequence(true)?),
                    Some('[') => Node::Set(self.class()?),
                    Some('.') => Node::Set(Set::any_but_newline()),
                    Some('^') => Node::Assert(Assertion::BeginText),
                    Some('$') => Node::Assert(Assertion::EndText),
                    Some('\\') => self.escape()?,
                    // The translation escapes these; they cannot occur.
                    Some(')' | '+' | '|' | '{') => {
                        return Err(Fault::Unsupported("a regex operator"))
                    }
                    Some(c) => Node::Set(Set::of(Item::Range(c, c))),
                };
                nodes.push(node);
            }
        }

        /// After a `\` outside a class.
        fn escape(&mut self) -> Result<Node, Fault> {
            let c = self.bump().ok_or_else(|| invalid("ends in a backslash"))?;
            let assertion = match c {
                'A' => Assertion::BeginText,
                'z' => Assertion::EndText,
                'b' => Assertion::WordBoundary,
                'B' => Assertion::NotWordBoundary,
                'Q' => return Err(Fault::Unsupported("a \\Q…\\E literal")),
                _ => return Ok(Node::Set(Set::of(self.class_escape(c)?))),
            };
            Ok(Node::Assert(assertion))
        }

        /// An escape that is a class item: a Perl class or one character.
        fn class_escape(&mut self, c: char) -> Result<Item, Fault> {
            if let Some(item) = Named::perl(c) {
                return Ok(item);
            }
            let c = escaped_char(c)?;
            Ok(Item::Range(c, c))
        }

        /// After the `[`: Go's `parseClass`.
        fn class(&mut self) -> Result<Set, Fault> {
            let negated = self.peek_at(0) == Some('^');
            if negated {
                self.pos += 1;
            }
            let mut items = Vec::new();
            // A `]` right after `[` or `[^` is a member, not the end.
            let mut first = true;
            loop {
                match self.peek_at(0) {
                    None => return Err(invalid("has a missing closing ]")),
                    Some(']') if !first => break,
                    _ => first = false,
                }
                items.push(self.class_item()?);
            }
            self.pos += 1;
            Ok(Set { negated, items })
        }

        fn class_item(&mut self) -> Result<Item, Fault> {
            if let Some(item) = self.posix_class()? {
                return Ok(item);
            }
            if self.peek_at(0) == Some('\\') {
                if let Some(item) = self.peek_at(1).and_then(Named::perl) {
                    self.pos += 2;
                    return Ok(item);
                }
            }
            let lo = self.class_char()?;
            // `-` before the closing `]` is a member, not a range.
            if self.peek_at(0) != Some('-') || matches!(self.peek_at(1), None | Some(']')) {
                return Ok(Item::Range(lo, lo));
            }
            self.pos += 1;
            let hi = self.class_char()?;
            if hi < lo {
                return Err(invalid(format!(
                    "`{lo}-{hi}` is an invalid character class range"
                )));
            }
            Ok(Item::Range(lo, hi))
        }

        /// `[:name:]` or `[:^name:]`. Like Go, the closing `:]` is searched
        /// for in the rest of the expression; without one, `[` is a member.
        fn posix_class(&mut self) -> Result<Option<Item>, Fault> {
            let opens = self.peek_at(0) == Some('[') && self.peek_at(1) == Some(':');
            if !opens || self.peek_at(2).is_none() {
                return Ok(None);
            }
            let rest = &self.chars[self.pos + 2..];
            let Some(close) = rest.windows(2).position(|pair| pair == [':', ']']) else {
                return Ok(None);
            };
            let name: String = rest[..close].iter().collect();
            let (negated, bare) = match name.strip_prefix('^') {
                Some(bare) => (true, bare),
                None => (false, name.as_str()),
            };
            let named = Named::posix(bare).ok_or_else(|| {
                invalid(format!("`[:{name}:]` is an invalid character class range"))
            })?;
            self.pos += close + 4;
            Ok(Some(Item::Named(named, negated)))
        }

        fn class_char(&mut self) -> Result<char, Fault> {
            match self.bump() {
                None => Err(invalid("has a missing closing ]")),
                Some('\\') => match self.bump() {
                    None => Err(invalid("ends in a backslash")),
                    Some(c) => escaped_char(c),
                },
                Some(c) => Ok(c),
            }
        }
    }

    fn repeat(op: char, atom: Option<Node>) -> Result<Node, Fault> {
        let atom = match atom {
            None => return Err(invalid(format!("has a missing argument to `{op}`"))),
            Some(Node::Star(_) | Node::Optional(_)) => {
                return Err(invalid(format!("has an invalid nested repetition `{op}`")))
            }
            Some(atom) => Box::new(atom),
        };
        Ok(if op == '*' {
            Node::Star(atom)
        } else {
            Node::Optional(atom)
        })
    }

    /// Go's `parseEscape`: the character a single-character escape stands for.
    fn escaped_char(c: char) -> Result<char, Fault> {
        Ok(match c {
            'a' => '\x07',
            'f' => '\x0c',
            'n' => '\n',
            'r' => '\r',
            't' => '\t',
            'v' => '\x0b',
            '0'..='7' => return Err(Fault::Unsupported("an octal escape")),
            'x' => return Err(Fault::Unsupported("a hexadecimal escape `\\x`")),
            'p' | 'P' => return Err(Fault::Unsupported("a Unicode class escape `\\p`")),
            // Escaped ASCII punctuation is itself, letters and digits are not.
            c if c.is_ascii() && !c.is_ascii_alphanumeric() => c,
            c => return Err(invalid(format!("`\\{c}` is an invalid escape sequence"))),
        })
    }
}

/// Go's `path/filepath.Match` on Unix (Go 1.16 and later, which reports a
/// malformed pattern even when the name does not match), on bytes as Go
/// does: a `*` steps over a name byte by byte.
mod glob {
    /// Why a pattern is malformed.
    pub(super) type Syntax = &'static str;

    const UNTERMINATED: Syntax = "unterminated character class";
    const UNESCAPED: Syntax = "`-` and `]` must be escaped with `\\` inside a character class";
    const TRAILING_BACKSLASH: Syntax = "the pattern ends in a backslash";
    const INVALID_UTF8: Syntax = "invalid UTF-8 in a character class";

    pub(super) fn matches(mut pattern: &[u8], mut name: &[u8]) -> Result<bool, Syntax> {
        'chunks: while !pattern.is_empty() {
            let (star, chunk, rest) = scan_chunk(pattern);
            pattern = rest;
            if star && chunk.is_empty() {
                // A trailing `*` takes the rest of the name, unless it has a `/`.
                return Ok(!name.contains(&b'/'));
            }
            // The last chunk must use up the name; an earlier one is
            // committed where it first matches (Go does not backtrack).
            if let Some(after) = match_chunk(chunk, name)? {
                if after.is_empty() || !pattern.is_empty() {
                    name = after;
                    continue;
                }
            }
            if star {
                let mut skipped = 0;
                while name.get(skipped).is_some_and(|byte| *byte != b'/') {
                    skipped += 1;
                    let Some(after) = match_chunk(chunk, &name[skipped..])? else {
                        continue;
                    };
                    if pattern.is_empty() && !after.is_empty() {
                        continue;
                    }
                    name = after;
                    continue 'chunks;
                }
            }
            validate(pattern)?;
            return Ok(false);
        }
        Ok(name.is_empty())
    }

    /// Reports a malformed rest of the pattern, as Go does before it
    /// answers "no match".
    fn validate(mut pattern: &[u8]) -> Result<(), Syntax> {
        while !pattern.is_empty() {
            let (_, chunk, rest) = scan_chunk(pattern);
            match_chunk(chunk, b"")?;
            pattern = rest;
        }
        Ok(())
    }

    /// Splits off the leading stars and the run up to the next star that is
    /// not inside a class.
    fn scan_chunk(pattern: &[u8]) -> (bool, &[u8], &[u8]) {
        let stars = pattern.iter().take_while(|byte| **byte == b'*').count();
        let pattern = &pattern[stars..];
        let mut in_class = false;
        let mut end = 0;
        while let Some(byte) = pattern.get(end) {
            match byte {
                b'\\' if end + 1 < pattern.len() => end += 1,
                b'[' => in_class = true,
                b']' => in_class = false,
                b'*' if !in_class => break,
                _ => {}
            }
            end += 1;
        }
        (stars > 0, &pattern[..end], &pattern[end..])
    }

    /// Matches a star-free chunk against the start of `s`: the rest of `s`
    /// when it matches. After a mismatch the chunk is still parsed to the
    /// end, so a malformed chunk is always reported.
    fn match_chunk<'a>(mut chunk: &[u8], mut s: &'a [u8]) -> Result<Option<&'a [u8]>, Syntax> {
        let mut failed = false;
        while let Some((&op, rest)) = chunk.split_first() {
            failed |= s.is_empty();
            chunk = rest;
            match op {
                b'[' => {
                    let c = (!failed).then(|| {
                        let (c, width) = decode(s);
                        s = &s[width..];
                        c
                    });
                    let (accepted, rest) = class(chunk, c)?;
                    chunk = rest;
                    failed |= !accepted;
                }
                b'?' if !failed => {
                    // `?` never matches the separator.
                    failed = s.first() == Some(&b'/');
                    s = &s[decode(s).1..];
                }
                b'?' => {}
                b'\\' => {
                    let (&literal, rest) = chunk.split_first().ok_or(TRAILING_BACKSLASH)?;
                    chunk = rest;
                    literal_byte(literal, &mut s, &mut failed);
                }
                literal => literal_byte(literal, &mut s, &mut failed),
            }
        }
        Ok((!failed).then_some(s))
    }

    fn literal_byte(literal: u8, s: &mut &[u8], failed: &mut bool) {
        if let Some((&byte, rest)) = s.split_first().filter(|_| !*failed) {
            *failed = byte != literal;
            *s = rest;
        }
    }

    /// After the `[`: whether `c` is accepted, and the chunk after the `]`.
    /// `c` is `None` once the chunk has failed; the class is still parsed.
    fn class(mut chunk: &[u8], c: Option<char>) -> Result<(bool, &[u8]), Syntax> {
        let negated = chunk.first() == Some(&b'^');
        if negated {
            chunk = &chunk[1..];
        }
        let mut matched = false;
        let mut ranges = 0;
        loop {
            if ranges > 0 {
                if let Some(rest) = chunk.strip_prefix(b"]") {
                    return Ok((matched != negated, rest));
                }
            }
            let (lo, rest) = class_char(chunk)?;
            let (hi, rest) = match rest.strip_prefix(b"-") {
                Some(rest) => class_char(rest)?,
                None => (lo, rest),
            };
            chunk = rest;
            matched |= c.is_some_and(|c| (lo..=hi).contains(&c));
            ranges += 1;
        }
    }

    /// Go's `getEsc`: one possibly escaped class character, which must be
    /// followed by more of the class.
    fn class_char(chunk: &[u8]) -> Result<(char, &[u8]), Syntax> {
        let chunk = match chunk.split_first() {
            None => return Err(UNTERMINATED),
            Some((b'-' | b']', _)) => return Err(UNESCAPED),
            Some((b'\\', [])) => return Err(TRAILING_BACKSLASH),
            Some((b'\\', escaped)) => escaped,
            Some(_) => chunk,
        };
        let (c, width) = decode(chunk);
        if c == char::REPLACEMENT_CHARACTER && width == 1 {
            return Err(INVALID_UTF8);
        }
        match &chunk[width..] {
            [] => Err(UNTERMINATED),
            rest => Ok((c, rest)),
        }
    }

    /// Go's `utf8.DecodeRune`: U+FFFD of width 1 for a byte that does not
    /// start a character (a star may step into the middle of one).
    fn decode(s: &[u8]) -> (char, usize) {
        let width = match s.first() {
            None => return (char::REPLACEMENT_CHARACTER, 0),
            Some(byte) if *byte < 0x80 => 1,
            Some(byte) if *byte >> 5 == 0b110 => 2,
            Some(byte) if *byte >> 4 == 0b1110 => 3,
            Some(byte) if *byte >> 3 == 0b11110 => 4,
            Some(_) => 0,
        };
        s.get(..width)
            .and_then(|bytes| std::str::from_utf8(bytes).ok())
            .and_then(|text| text.chars().next())
            .map_or((char::REPLACEMENT_CHARACTER, 1), |c| (c, width))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matcher(patterns: &[&str]) -> Dockerignore {
        Dockerignore::from_patterns(patterns).unwrap_or_else(|err| panic!("{patterns:?}: {err}"))
    }

    fn excluded(patterns: &[&str], path: &str) -> bool {
        matcher(patterns).is_excluded(path)
    }

    /// patternmatcher's `MatchesExact`: the pattern alone, no parent dirs.
    fn exact(pattern: &str, path: &str) -> bool {
        matcher(&[pattern]).patterns[0].matches(path)
    }

    #[derive(Clone, Copy, PartialEq, Debug)]
    enum Want {
        Fail,
        /// Matches the path itself.
        Exact,
        /// Matches only through a parent directory.
        Inexact,
    }
    use Want::{Exact as E, Fail as F, Inexact as I};

    /// moby/patternmatcher TestMatches (the Unix cases).
    const MOBY_MATCHES: &[(&str, &str, Want)] = &[
        ("**", "file", E),
        ("**", "file/", E),
        ("**/", "file", E),
        ("**/", "file/", E),
        ("**", "/", E),
        ("**/", "/", E),
        ("**", "dir/file", E),
        ("**/", "dir/file", E),
        ("**", "dir/file/", E),
        ("**/", "dir/file/", E),
        ("**/**", "dir/file", E),
        ("**/**", "dir/file/", E),
        ("dir/**", "dir/file", E),
        ("dir/**", "dir/file/", E),
        ("dir/**", "dir/dir2/file", E),
        ("dir/**", "dir/dir2/file/", E),
        ("**/dir", "dir", E),
        ("**/dir", "dir/file", I),
        ("**/dir2/*", "dir/dir2/file", E),
        ("**/dir2/*", "dir/dir2/file/", I),
        ("**/dir2/**", "dir/dir2/dir3/file", E),
        ("**/dir2/**", "dir/dir2/dir3/file/", E),
        ("**file", "file", E),
        ("**file", "dir/file", E),
        ("**/file", "dir/file", E),
        ("**file", "dir/dir/file", E),
        ("**/file", "dir/dir/file", E),
        ("**/file*", "dir/dir/file", E),
        ("**/file*", "dir/dir/file.txt", E),
        ("**/file*txt", "dir/dir/file.txt", E),
        ("**/file*.txt", "dir/dir/file.txt", E),
        ("**/file*.txt*", "dir/dir/file.txt", E),
        ("**/**/*.txt", "dir/dir/file.txt", E),
        ("**/**/*.txt2", "dir/dir/file.txt", F),
        ("**/*.txt", "file.txt", E),
        ("**/**/*.txt", "file.txt", E),
        ("a**/*.txt", "a/file.txt", E),
        ("a**/*.txt", "a/dir/file.txt", E),
        ("a**/*.txt", "a/dir/dir/file.txt", E),
        ("a/*.txt", "a/dir/file.txt", F),
        ("a/*.txt", "a/file.txt", E),
        ("a/*.txt**", "a/file.txt", E),
        ("a[b-d]e", "ae", F),
        ("a[b-d]e", "ace", E),
        ("a[b-d]e", "aae", F),
        ("a[^b-d]e", "aze", E),
        (".*", ".foo", E),
        (".*", "foo", F),
        ("abc.def", "abcdef", F),
        ("abc.def", "abc.def", E),
        ("abc.def", "abcZdef", F),
        ("abc?def", "abcZdef", E),
        ("abc?def", "abcdef", F),
        ("**/foo/bar", "foo/bar", E),
        ("**/foo/bar", "dir/foo/bar", E),
        ("**/foo/bar", "dir/dir2/foo/bar", E),
        ("abc/**", "abc", F),
        ("abc/**", "abc/def", E),
        ("abc/**", "abc/def/ghi", E),
        ("**/.foo", ".foo", E),
        ("**/.foo", "bar.foo", F),
        ("a(b)c/def", "a(b)c/def", E),
        ("a(b)c/def", "a(b)c/xyz", F),
        ("a.|)$(}+{bc", "a.|)$(}+{bc", E),
        (
            "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
            "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
            E,
        ),
        (
            "dist/*.whl",
            "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
            E,
        ),
        (r"a\\", r"a\", E),
        (r"a\*b", "a*b", E),
    ];

    #[test]
    fn moby_matches_exact_and_through_parents() {
        for &(pattern, path, want) in MOBY_MATCHES {
            let case = format!("pattern {pattern:?} path {path:?}");
            assert_eq!(exact(pattern, path), want == E, "exact: {case}");
            assert_eq!(excluded(&[pattern], path), want != F, "or parents: {case}");
        }
    }

    #[test]
    fn moby_multi_pattern_cases() {
        let whl = "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl";
        let exact_whl = format!("!{whl}");
        let cases: &[(&[&str], &str, bool)] = &[
            (&["**", "!util/docker/web"], "util/docker/web/foo", false),
            (
                &["**", "!util/docker/web", "util/docker/web/foo"],
                "util/docker/web/foo",
                true,
            ),
            (&["**", &exact_whl], whl, false),
            (&["**", "!dist/*.whl"], whl, false),
        ];
        for &(patterns, path, want) in cases {
            assert_eq!(excluded(patterns, path), want, "{patterns:?} {path:?}");
        }
    }

    #[test]
    fn exclusion_ordering_last_match_wins() {
        let cases: &[(&[&str], &str, bool)] = &[
            (&["*"], "fileutils.go", true),
            (&["*.go"], "fileutils.go", true),
            (&["!fileutils.go", "*.go"], "fileutils.go", true),
            (&["*.go", "!fileutils.go"], "fileutils.go", false),
            (&["docs", "!docs/README.md"], "docs/README.md", false),
            (&["docs/", "!docs/README.md"], "docs/README.md", false),
            (&["docs/*", "!docs/README.md"], "docs/README.md", false),
            (&["docs", "!docs/README.md"], "docs/other.md", true),
            (&["docs", "  !docs/README.md  "], "docs/README.md", false),
            (&[], "any/path/there", false),
            (&["*.go"], ".", false),
            (&["docs", "", "  "], "docs/a", true),
        ];
        for &(patterns, path, want) in cases {
            assert_eq!(excluded(patterns, path), want, "{patterns:?} {path:?}");
        }
    }

    /// moby/patternmatcher TestMatch: Go's filepath.Match table run through
    /// the ignore matcher (so "a*" also excludes "ab/c" through "ab").
    #[test]
    fn moby_filepath_table_through_ignore_matcher() {
        let cases: &[(&str, &str, bool)] = &[
            ("abc", "abc", true),
            ("*", "abc", true),
            ("*c", "abc", true),
            ("a*", "a", true),
            ("a*", "abc", true),
            ("a*", "ab/c", true),
            ("a*/b", "abc/b", true),
            ("a*/b", "a/c/b", false),
            ("a*b*c*d*e*/f", "axbxcxdxe/f", true),
            ("a*b*c*d*e*/f", "axbxcxdxexxx/f", true),
            ("a*b*c*d*e*/f", "axbxcxdxe/xxx/f", false),
            ("a*b*c*d*e*/f", "axbxcxdxexxx/fff", false),
            ("a*b?c*x", "abxbbxdbxebxczzx", true),
            ("a*b?c*x", "abxbbxdbxebxczzy", false),
            ("ab[c]", "abc", true),
            ("ab[b-d]", "abc", true),
            ("ab[e-g]", "abc", false),
            ("ab[^c]", "abc", false),
            ("ab[^b-d]", "abc", false),
            ("ab[^e-g]", "abc", true),
            (r"a\*b", "a*b", true),
            (r"a\*b", "ab", false),
            ("a?b", "a☺b", true),
            ("a[^a]b", "a☺b", true),
            ("a???b", "a☺b", false),
            ("a[^a][^a][^a]b", "a☺b", false),
            ("[a-ζ]*", "α", true),
            ("*[a-ζ]", "A", false),
            ("a?b", "a/b", false),
            ("a*b", "a/b", false),
            (r"[\]a]", "]", true),
            (r"[\-]", "-", true),
            (r"[x\-]", "x", true),
            (r"[x\-]", "-", true),
            (r"[x\-]", "z", false),
            (r"[\-x]", "x", true),
            (r"[\-x]", "-", true),
            (r"[\-x]", "a", false),
            ("*x", "xxx", true),
        ];
        for &(pattern, path, want) in cases {
            assert_eq!(excluded(&[pattern], path), want, "{pattern:?} {path:?}");
        }
    }

    const MALFORMED: &[&str] = &[
        "[]a]", "[-]", "[x-]", "[-x]", r"\", "[a-b-c]", "[", "[^", "[^bc", "a[", "a/b[", r"a[\",
    ];

    #[test]
    fn malformed_patterns_are_refused_naming_the_pattern() {
        for &pattern in MALFORMED {
            let err = Dockerignore::from_patterns(&["ok", pattern]).unwrap_err();
            assert!(
                matches!(&err, IgnoreError::BadPattern { pattern: p, .. } if p == pattern),
                "{pattern:?}: {err:?}"
            );
            assert!(err.to_string().contains(&format!("{pattern:?}")), "{err}");
        }
    }

    #[test]
    fn lone_exclamation_is_an_error() {
        for patterns in [&["!"][..], &["docs", "  !  "][..]] {
            let err = Dockerignore::from_patterns(patterns).unwrap_err();
            assert!(
                matches!(err, IgnoreError::EmptyException { .. }),
                "{patterns:?}"
            );
        }
        // ReadAll keeps "!/" as "!/"; patternmatcher cleans it to "!".
        for text in ["!", "! ", "!/", "a\n!\n"] {
            let err = Dockerignore::parse(text).unwrap_err();
            assert!(
                matches!(err, IgnoreError::EmptyException { .. }),
                "{text:?}"
            );
        }
    }

    /// moby/patternmatcher TestCompile: match type and regular expression.
    #[test]
    fn translation_matches_patternmatcher_compile() {
        let cases: &[(&str, Kind, &str)] = &[
            ("*", Kind::Regex, "^[^/]*$"),
            ("file*", Kind::Regex, "^file[^/]*$"),
            ("*file", Kind::Regex, "^[^/]*file$"),
            ("a*/b", Kind::Regex, "^a[^/]*/b$"),
            ("**", Kind::Suffix, ""),
            ("**/**", Kind::Regex, "^(.*/)?.*$"),
            ("dir/**", Kind::Prefix, ""),
            ("**/dir", Kind::Suffix, ""),
            ("**/dir2/*", Kind::Regex, "^(.*/)?dir2/[^/]*$"),
            ("**/dir2/**", Kind::Regex, "^(.*/)?dir2/.*$"),
            ("**file", Kind::Suffix, ""),
            ("**/file*txt", Kind::Regex, "^(.*/)?file[^/]*txt$"),
            ("**/**/*.txt", Kind::Regex, r"^(.*/)?(.*/)?[^/]*\.txt$"),
            ("a[b-d]e", Kind::Regex, "^a[b-d]e$"),
            (".*", Kind::Regex, r"^\.[^/]*$"),
            ("abc.def", Kind::Exact, ""),
            ("abc?def", Kind::Regex, "^abc[^/]def$"),
            ("**/foo/bar", Kind::Suffix, ""),
            ("a(b)c/def", Kind::Exact, ""),
            ("a.|)$(}+{bc", Kind::Exact, ""),
            (
                "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
                Kind::Exact,
                "",
            ),
        ];
        for &(pattern, want_kind, want_regex) in cases {
            let (kind, regex) = translate(&clean(pattern));
            assert_eq!(kind, want_kind, "kind of {pattern:?}");
            if kind == Kind::Regex {
                assert_eq!(regex, want_regex, "regex of {pattern:?}");
            }
        }
    }

    /// `**/*LITERAL` is answered without the regex, and the same way.
    #[test]
    fn name_suffix_patterns_match_as_their_regex_does() {
        let patterns = ["**/*.log", "**/*", "**/*~", "**/*.tar.gz", "**/*é"];
        let paths = [
            "a.log",
            "x/y/a.log",
            "x/.log",
            ".log",
            "a.log/b",
            "a.logx",
            "dir.log/file",
            "a\nb/c.log",
            "a\nb.log",
            "x/a\n.log",
            "b.tar.gz",
            "deep/er/b.tar.gz",
            "b.tar",
            "café",
            "x/caf",
            "",
            "q~",
        ];
        for pattern in patterns {
            let cleaned = clean(pattern);
            let compiled = Pattern::new(pattern, pattern).unwrap().unwrap();
            assert!(
                matches!(compiled.matcher, Matcher::NameSuffix { .. }),
                "{pattern}"
            );
            let (_, source) = translate(&cleaned);
            let program = regex::Program::parse(&source).unwrap();
            for path in paths {
                assert_eq!(
                    compiled.matches(path),
                    program.is_match(path),
                    "{pattern} on {path:?}"
                );
            }
        }
        for other in ["**/*.lo?", "**/*a/b", "**/x*.log", "*.log", "**/*[ab]"] {
            let compiled = Pattern::new(other, other).unwrap().unwrap();
            assert!(
                !matches!(compiled.matcher, Matcher::NameSuffix { .. }),
                "{other}"
            );
        }
    }

    /// moby/patternmatcher ignorefile TestReadAll.
    #[test]
    fn read_all_normalizes_lines() {
        let content = "test1\n/test2\n/a/file/here\n\nlastfile\n# this is a comment\n! /inverted/abs/path\n!\n! ";
        let got: Vec<String> = read_lines(content).into_iter().map(|l| l.pattern).collect();
        let want = [
            "test1",
            "test2",
            "a/file/here",
            "lastfile",
            "!inverted/abs/path",
            "!",
            "!",
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn read_all_details() {
        let cases: &[(&str, &[&str])] = &[
            ("\u{feff}# bom then comment\nx", &["x"]),
            ("a\r\nb\r\n", &["a", "b"]),
            // `#` counts only in the first column.
            ("  # not a comment", &["# not a comment"]),
            ("./a/../b", &["b"]),
            ("/", &["/"]),
            ("!./x/", &["!x"]),
            ("dir//sub/", &["dir/sub"]),
            ("\n\n   \n", &[]),
        ];
        for &(text, want) in cases {
            let got: Vec<String> = read_lines(text).into_iter().map(|l| l.pattern).collect();
            assert_eq!(got, want, "read {text:?}");
        }
    }

    #[test]
    fn parse_drops_leading_slash_but_from_patterns_keeps_it() {
        let parsed = Dockerignore::parse("/secret\n!/secret/ok").unwrap();
        assert!(parsed.is_excluded("secret/key"), "parse: /secret");
        assert!(!parsed.is_excluded("secret/ok"), "parse: !/secret/ok");
        let raw = matcher(&["/secret"]);
        assert!(!raw.is_excluded("secret"), "from_patterns keeps the slash");
        assert!(raw.is_excluded("/secret"), "from_patterns: /secret itself");
    }

    #[test]
    fn clean_is_go_filepath_clean() {
        let cases = [
            ("", "."),
            (".", "."),
            ("a/", "a"),
            ("./a/../b", "b"),
            ("a/../..", ".."),
            ("../a/..", ".."),
            ("/..", "/"),
            ("/a/../../b", "/b"),
            ("a//b/./c/", "a/b/c"),
            ("!a/../b", "b"),
            ("!/", "!"),
        ];
        for (path, want) in cases {
            assert_eq!(clean(path), want, "clean({path:?})");
        }
    }

    #[test]
    fn dockerignore_docs_examples() {
        let ignore = Dockerignore::parse("# comment\n*/temp*\n*/*/temp*\ntemp?\n").unwrap();
        let cases = [
            ("somedir/temporary.txt", true),
            ("somedir/temp", true),
            ("somedir/subdir/temporary.txt", true),
            ("tempa", true),
            ("tempb", true),
            ("temp", false),
            ("temporary.txt", false),
            ("a/b/c/temp", false),
            ("comment", false),
        ];
        for (path, want) in cases {
            assert_eq!(
                ignore.is_excluded(path),
                want,
                "docs temp example: {path:?}"
            );
        }

        let go = Dockerignore::parse("**/*.go").unwrap();
        for (path, want) in [
            ("main.go", true),
            ("cmd/berth/main.go", true),
            ("main.go.txt", false),
        ] {
            assert_eq!(go.is_excluded(path), want, "**/*.go: {path:?}");
        }

        let readme = Dockerignore::parse("*.md\n!README.md").unwrap();
        for (path, want) in [
            ("CHANGELOG.md", true),
            ("README.md", false),
            ("docs/guide.md", false),
        ] {
            assert_eq!(readme.is_excluded(path), want, "*.md !README.md: {path:?}");
        }

        let secret_last = Dockerignore::parse("*.md\n!README*.md\nREADME-secret.md").unwrap();
        let secret_first = Dockerignore::parse("*.md\nREADME-secret.md\n!README*.md").unwrap();
        let cases = [
            ("README.md", false, false),
            ("README-x.md", false, false),
            ("README-secret.md", true, false),
            ("other.md", true, true),
        ];
        for (path, last, first) in cases {
            assert_eq!(secret_last.is_excluded(path), last, "secret last: {path:?}");
            assert_eq!(
                secret_first.is_excluded(path),
                first,
                "secret first: {path:?}"
            );
        }
    }

    #[test]
    fn double_star_cases() {
        let cases: &[(&str, &str, bool)] = &[
            ("**", "anything/at/all", true),
            ("dir/**", "dir", false),
            ("dir/**", "dir/a/b", true),
            ("a/**/b", "a/b", true),
            ("a/**/b", "a/x/b", true),
            ("a/**/b", "a/x/y/b", true),
            ("a/**/b", "a/x/y/b/inner", true),
            ("a/**/b", "a/xb", false),
            ("a/**/b", "b", false),
            ("**/node_modules", "node_modules/x", true),
            ("**/node_modules", "web/node_modules/x/y", true),
            ("**/node_modules", "web/my_node_modules", false),
            // A leading `**` without `/` is a plain string suffix.
            ("**file", "dir/myfile", true),
            ("a**", "abc/def", true),
        ];
        for &(pattern, path, want) in cases {
            assert_eq!(excluded(&[pattern], path), want, "{pattern:?} {path:?}");
        }
    }

    #[test]
    fn regular_expression_quirks_of_docker() {
        let cases: &[(&str, &str, bool)] = &[
            // `[*]` becomes `[[^/]*]`: a class of `[`, `^`, `/`, repeated, then `]`.
            ("[*]", "]", true),
            ("[*]", "[]", true),
            ("[*]", "*", false),
            ("[?]", "^]", true),
            ("[?]", "?", false),
            // `!` does not negate a class.
            ("[!a]", "!", true),
            ("[!a]", "a", true),
            ("[!a]", "b", false),
            (r"a\d", "a7", true),
            (r"a\d", "ad", false),
            (r"a\D", "ad", true),
            (r"x\sy*", "x y", true),
            // The `*` still becomes `[^/]*`: only the escape is a regex.
            (r"\w\w\w", "a_1", true),
            (r"\w\w\w", "a-1", false),
            (r"[\d]x*", "5x", true),
            ("[[:digit:]]x*", "5x", true),
            ("[[:digit:]]x*", "ax", false),
            ("[[:^digit:]]x*", "ax", true),
            ("[[:space:]]*", "\x0b", true),
            (r"[\s]*", "\x0b", false),
            (r"a\tb*", "a\tb", true),
            (r"foo\bar", "foobar", false),
            (r"a\bb*", "a b", false),
            (r"\Ax*", "xx", true),
            (r"x*\z", "xx", true),
            // A bare `^` is literal in an exact pattern, an anchor in a regex.
            ("a^b", "a^b", true),
            ("a^b*", "a^b", false),
            // `.` (from `**`) stops at a newline, `[^/]` (from `*`) does not.
            ("*", "a\nb", true),
            ("a?**", "ab\nc", false),
            ("a?**", "abc/d", true),
            ("[a-z]*.txt", "notes.txt", true),
            ("[a-z]*.txt", "Notes.txt", false),
            ("\u{feff}*.go", "a.go", true),
        ];
        for &(pattern, path, want) in cases {
            assert_eq!(excluded(&[pattern], path), want, "{pattern:?} {path:?}");
        }
    }

    #[test]
    fn patterns_go_regexp_rejects_are_refused() {
        let cases = [
            "[z-a]",
            "[Local-Only]/",
            r"src\main",
            r"a\1",
            "[[:foo:]]",
            r"[a-\d]",
            r"[\A]",
        ];
        for pattern in cases {
            let err = Dockerignore::from_patterns(&[pattern]).unwrap_err();
            assert!(
                matches!(
                    err,
                    IgnoreError::BadRegex { .. } | IgnoreError::Unsupported { .. }
                ),
                "{pattern:?}: {err:?}"
            );
        }
        for pattern in ["[z-a]", "[Local-Only]/", r"src\main", "[[:foo:]]"] {
            let err = Dockerignore::from_patterns(&[pattern]).unwrap_err();
            assert!(
                matches!(err, IgnoreError::BadRegex { .. }),
                "{pattern:?}: {err:?}"
            );
        }
    }

    #[test]
    fn unsupported_regex_escapes_are_refused() {
        for pattern in [r"\x41", r"\pL", r"a\Qb", r"\0", r"[\pL]"] {
            let err = Dockerignore::from_patterns(&[pattern]).unwrap_err();
            assert!(
                matches!(err, IgnoreError::Unsupported { .. }),
                "{pattern:?}: {err:?}"
            );
            assert!(err.to_string().contains(&format!("{pattern:?}")), "{err}");
        }
    }

    #[test]
    fn root_is_never_excluded() {
        let all = matcher(&["*", "**"]);
        assert!(!all.is_excluded(""), "empty path");
        assert!(!all.is_excluded("."), "dot");
        assert!(all.is_excluded("x"), "a file");
    }

    #[test]
    fn is_empty_when_only_comments_and_blanks() {
        assert!(
            Dockerignore::parse("# c\n\n   \n").unwrap().is_empty(),
            "comments"
        );
        assert!(Dockerignore::default().is_empty(), "default");
        assert!(!Dockerignore::parse("x").unwrap().is_empty(), "one pattern");
    }

    #[test]
    fn can_skip_dir_cases() {
        let cases: &[(&[&str], &str, bool)] = &[
            (&["node_modules"], "node_modules", true),
            (&["**"], "any/dir", true),
            (&["build", "vendor", "!vendor/keep.txt"], "build", true),
            (&["build", "vendor", "!vendor/keep.txt"], "vendor", false),
            // Not excluded: never skipped.
            (&["build", "vendor", "!vendor/keep.txt"], "src", false),
            (&["a", "!a/b/c"], "a/b", false),
            (&["a", "!a/b/c"], "a/x", true),
            // The slash keeps `ab` from looking like it is inside `a`.
            (&["a", "!ab/c"], "a", true),
            (&["vendor", "!vendor/*"], "vendor", false),
            (&["build", "!vendor/**"], "build", true),
            (&["logs", "!logs/*"], "logs", false),
            // A wildcard exception could match anywhere: no pruning at all.
            (&["build", "!**/*.keep"], "build", false),
            (&["build", "!vendor/*/x"], "build", false),
            (&["build", r"!a\[x\]"], "build", false),
            (&["build", "!a^b"], "build", false),
        ];
        for &(patterns, dir, want) in cases {
            assert_eq!(
                matcher(patterns).can_skip_dir(dir),
                want,
                "{patterns:?} {dir:?}"
            );
        }
    }

    /// Go's path/filepath TestMatch.
    #[test]
    fn go_filepath_match_table() {
        let cases: &[(&str, &str, bool)] = &[
            ("abc", "abc", true),
            ("*", "abc", true),
            ("*c", "abc", true),
            ("a*", "a", true),
            ("a*", "abc", true),
            ("a*", "ab/c", false),
            ("a*/b", "abc/b", true),
            ("a*/b", "a/c/b", false),
            ("a*b*c*d*e*/f", "axbxcxdxe/f", true),
            ("a*b*c*d*e*/f", "axbxcxdxexxx/f", true),
            ("a*b*c*d*e*/f", "axbxcxdxe/xxx/f", false),
            ("a*b*c*d*e*/f", "axbxcxdxexxx/fff", false),
            ("a*b?c*x", "abxbbxdbxebxczzx", true),
            ("a*b?c*x", "abxbbxdbxebxczzy", false),
            ("ab[c]", "abc", true),
            ("ab[b-d]", "abc", true),
            ("ab[e-g]", "abc", false),
            ("ab[^c]", "abc", false),
            ("ab[^b-d]", "abc", false),
            ("ab[^e-g]", "abc", true),
            (r"a\*b", "a*b", true),
            (r"a\*b", "ab", false),
            ("a?b", "a☺b", true),
            ("a[^a]b", "a☺b", true),
            ("a???b", "a☺b", false),
            ("a[^a][^a][^a]b", "a☺b", false),
            ("[a-ζ]*", "α", true),
            ("*[a-ζ]", "A", false),
            ("a?b", "a/b", false),
            ("a*b", "a/b", false),
            (r"[\]a]", "]", true),
            (r"[\-]", "-", true),
            (r"[x\-]", "x", true),
            (r"[x\-]", "-", true),
            (r"[x\-]", "z", false),
            (r"[\-x]", "x", true),
            (r"[\-x]", "-", true),
            (r"[\-x]", "a", false),
            ("*x", "xxx", true),
        ];
        for &(pattern, name, want) in cases {
            assert_eq!(
                glob_match(pattern, name),
                Ok(want),
                "Match({pattern:?}, {name:?})"
            );
        }
    }

    #[test]
    fn go_filepath_match_bad_patterns() {
        let cases: &[(&str, &str)] = &[
            ("[]a]", "]"),
            ("[-]", "-"),
            ("[x-]", "x"),
            ("[x-]", "-"),
            ("[x-]", "z"),
            ("[-x]", "x"),
            ("[-x]", "-"),
            ("[-x]", "a"),
            (r"\", "a"),
            ("[a-b-c]", "a"),
            ("[", "a"),
            ("[^", "a"),
            ("[^bc", "a"),
            ("a[", "a"),
            ("a[", "ab"),
            ("a[", "x"),
            ("a/b[", "x"),
            (r"a[\", "x"),
        ];
        for &(pattern, name) in cases {
            let err = glob_match(pattern, name).unwrap_err();
            assert!(
                matches!(&err, IgnoreError::BadPattern { pattern: p, .. } if p == pattern),
                "Match({pattern:?}, {name:?}): {err:?}"
            );
        }
    }

    #[test]
    fn go_filepath_match_details() {
        let cases: &[(&str, &str, bool)] = &[
            ("", "", true),
            ("", "a", false),
            ("*", "", true),
            ("**", "ab", true),
            ("**", "a/b", false),
            ("*/*", "a/b", true),
            ("*/*.txt", "dir/a.txt", true),
            (r"a\?", "a?", true),
            (r"a\?", "ab", false),
            // A class does not exclude the separator.
            ("a[^x]b", "a/b", true),
            // A star steps over bytes: "€" is three, and `??` takes the last two.
            ("*??", "€", true),
            ("??", "€", false),
            ("[!a]", "!", true),
            ("[!a]", "b", false),
        ];
        for &(pattern, name, want) in cases {
            assert_eq!(
                glob_match(pattern, name),
                Ok(want),
                "Match({pattern:?}, {name:?})"
            );
        }
    }

    #[test]
    fn has_wildcards_cases() {
        let cases = [
            ("*.txt", true),
            ("a?c", true),
            ("[ab]", true),
            ("plain/path", false),
            (r"a\*b", false),
            (r"a\[b", false),
            (r"a\\*", true),
            ("{a,b}", false),
            ("]", false),
            ("", false),
        ];
        for (pattern, want) in cases {
            assert_eq!(has_wildcards(pattern), want, "has_wildcards({pattern:?})");
        }
    }

    #[test]
    fn long_patterns_match_in_linear_time() {
        let pattern = "a*a*a*a*a*a*a*a*a*a*a*a*b";
        let path = "a".repeat(2000);
        assert!(!excluded(&[pattern], &path), "no b at the end");
        assert!(excluded(&[pattern], &format!("{path}b")), "b at the end");
    }
}
