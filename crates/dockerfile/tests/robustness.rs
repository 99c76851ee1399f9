//! Fuzz-style robustness: thousands of random and mutated inputs, from a
//! deterministic PRNG. `parse` must never panic, an error must point at a
//! line and column of the input, and expanding every word of a parsed file
//! must not panic either.

mod common;

use berth_dockerfile::*;

/// xorshift64*: small, deterministic, good enough to explore inputs.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        let n = u64::try_from(n.max(1)).unwrap_or(1);
        usize::try_from(self.next() % n).unwrap_or(0)
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

const FRAGMENTS: &[&str] = &[
    "FROM ",
    "RUN ",
    "COPY ",
    "ADD ",
    "ENV ",
    "ARG ",
    "LABEL ",
    "ONBUILD ",
    "HEALTHCHECK ",
    "CMD ",
    "SHELL ",
    "EXPOSE ",
    "VOLUME ",
    "WORKDIR ",
    "USER ",
    "STOPSIGNAL ",
    "MAINTAINER ",
    "ENTRYPOINT ",
    "FORM ",
    "from ",
    "--mount=type=cache,target=/x ",
    "--mount=",
    "--mount=type=secret,id=a,required ",
    "--mount=\"a,b\" ",
    "--from=",
    "--chmod=7 ",
    "--link ",
    "--",
    "--interval=1s ",
    "--retries=-1 ",
    "--platform=$P ",
    "--x ",
    "\"",
    "'",
    "\\",
    "`",
    "$",
    "${",
    "}",
    ":-",
    ":?",
    "#",
    "##",
    "%",
    "/",
    "//",
    "<<EOF",
    "<<-EOF",
    "<<\"E\"",
    "<<'Q'",
    "EOF",
    "\tEOF",
    "E",
    "Q",
    "\n",
    "\n",
    "\n",
    "\r\n",
    " ",
    " ",
    "\t",
    "[",
    "]",
    "[\"a\"]",
    "\"a\",",
    ",",
    "1",
    "null",
    "{",
    "}",
    ":",
    " AS ",
    " as x",
    "# escape=`\n",
    "# syntax=x\n",
    "# check=a\n",
    "\u{feff}",
    "é",
    "😀",
    "\u{a0}",
    "=",
    "a=b ",
    "NONE",
    "CMD",
    "\\\n",
    "`\n",
    "*",
    "?",
    "x",
    "/app",
    "0755",
];

fn token_soup(rng: &mut Rng) -> String {
    let len = rng.below(40);
    (0..len).map(|_| rng.pick(FRAGMENTS)).collect()
}

/// Random characters, control characters and all.
fn noise(rng: &mut Rng) -> String {
    const CHARS: &[char] = &[
        'a', 'Z', '0', ' ', '\t', '\n', '\r', '\0', '\u{b}', '\\', '`', '"', '\'', '$', '{', '}',
        '[', ']', '<', '-', '=', '#', ',', 'é', '😀', '\u{2028}', '\u{feff}',
    ];
    let len = rng.below(60);
    (0..len).map(|_| CHARS[rng.below(CHARS.len())]).collect()
}

fn boundary(text: &str, rng: &mut Rng) -> usize {
    let bounds: Vec<usize> = text
        .char_indices()
        .map(|(i, _)| i)
        .chain([text.len()])
        .collect();
    bounds[rng.below(bounds.len())]
}

/// A corpus file with a few random edits on character boundaries.
fn mutate(rng: &mut Rng) -> String {
    let mut text = common::ALL[rng.below(common::ALL.len())].to_string();
    for _ in 0..1 + rng.below(4) {
        let (a, b) = (boundary(&text, rng), boundary(&text, rng));
        let (start, end) = (a.min(b), a.max(b));
        match rng.below(5) {
            0 => text.replace_range(start..end, ""),
            1 => {
                let piece = text[start..end].to_string();
                text.insert_str(end, &piece);
            }
            2 => text.insert_str(start, rng.pick(FRAGMENTS)),
            3 => text.truncate(end),
            _ => text.replace_range(start..end, &token_soup(rng)),
        }
    }
    text
}

/// The input's lines, as the parser counts them.
fn source_lines(text: &str) -> Vec<&str> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut lines: Vec<&str> = text
        .split('\n')
        .map(|l| l.trim_end_matches(['\r', '\n']))
        .collect();
    if text.is_empty() || text.ends_with('\n') {
        lines.pop();
    }
    lines
}

fn check_error(input: &str, error: &ParseError) {
    let lines = source_lines(input);
    assert!(
        error.line >= 1 && error.line <= lines.len().max(1),
        "line {} of {}: {input:?}",
        error.line,
        lines.len()
    );
    let line = lines.get(error.line - 1).copied().unwrap_or_default();
    assert_eq!(error.source_line, line, "{input:?}");
    assert!(
        error.column >= 1 && error.column <= line.chars().count() + 1,
        "column {}: {input:?}",
        error.column
    );
    assert!(!error.message.is_empty());
    assert!(error
        .to_string()
        .starts_with(&format!("Dockerfile:{}:{}: ", error.line, error.column)));
}

fn words(kind: &Kind) -> Vec<String> {
    let command = |c: &Command| match c {
        Command::Exec(argv) => argv.clone(),
        Command::Shell(line) => vec![line.clone()],
    };
    match kind {
        Kind::Run(run) => {
            let mut all = command(&run.command);
            all.extend(run.mounts.iter().flat_map(|m| {
                [m.target.clone()]
                    .into_iter()
                    .chain(m.source.clone())
                    .chain(m.id.clone())
            }));
            all
        }
        Kind::Copy(c) | Kind::Add(c) => c
            .sources
            .iter()
            .cloned()
            .chain([c.dest.clone()])
            .chain(c.chown.clone())
            .chain(c.exclude.clone())
            .collect(),
        Kind::Env(pairs) | Kind::Label(pairs) => pairs
            .iter()
            .flat_map(|p| [p.key.clone(), p.value.clone()])
            .collect(),
        Kind::Arg(args) => args
            .iter()
            .flat_map(|a| [a.name.clone()].into_iter().chain(a.default.clone()))
            .collect(),
        Kind::Workdir(s) | Kind::User(s) | Kind::StopSignal(s) | Kind::Maintainer(s) => {
            vec![s.clone()]
        }
        Kind::Expose(list) | Kind::Volume(list) | Kind::Shell(list) => list.clone(),
        Kind::Cmd(c) | Kind::Entrypoint(c) => command(c),
        Kind::Healthcheck(Healthcheck::Check { command: c, .. }) => command(c),
        Kind::Healthcheck(Healthcheck::None) => vec![],
        Kind::Onbuild(trigger) => words(&trigger.kind),
    }
}

fn heredocs(kind: &Kind) -> Vec<String> {
    match kind {
        Kind::Run(run) => run.heredocs.iter().map(|h| h.content.clone()).collect(),
        Kind::Copy(c) | Kind::Add(c) => c.heredocs.iter().map(|h| h.content.clone()).collect(),
        Kind::Onbuild(trigger) => heredocs(&trigger.kind),
        _ => vec![],
    }
}

fn expand_everything(file: &Dockerfile) {
    let lookup = |name: &str| {
        name.len()
            .is_multiple_of(2)
            .then(|| format!("v a l*{name}"))
    };
    let escape = file.directives.escape;
    let stage_words = file
        .stages
        .iter()
        .flat_map(|s| [s.base.clone()].into_iter().chain(s.platform.clone()));
    let all = file.stages.iter().flat_map(|s| &s.instructions);
    for word in stage_words.chain(all.clone().flat_map(|i| words(&i.kind))) {
        let _ = expand::expand(&word, escape, &lookup);
        let _ = expand::expand_words(&word, escape, &lookup);
    }
    for body in all.flat_map(|i| heredocs(&i.kind)) {
        let _ = expand::expand_heredoc(&body, '\\', &lookup);
    }
}

fn exercise(input: &str) -> bool {
    match parse(input) {
        Ok(file) => {
            expand_everything(&file);
            true
        }
        Err(error) => {
            check_error(input, &error);
            false
        }
    }
}

#[test]
fn random_and_mutated_inputs_never_panic() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut parsed = 0;
    let total = 6_000;
    for round in 0..total {
        let input = match round % 3 {
            0 => token_soup(&mut rng),
            1 => mutate(&mut rng),
            _ => noise(&mut rng),
        };
        parsed += usize::from(exercise(&input));
    }
    // The mutations keep enough files valid to exercise expansion too.
    assert!(parsed > total / 20, "only {parsed} of {total} parsed");
}

#[test]
fn prefixed_soup_starts_with_a_stage() {
    let mut rng = Rng(42);
    for _ in 0..3_000 {
        let input = format!("FROM base AS x\n{}", token_soup(&mut rng));
        exercise(&input);
    }
}

#[test]
fn single_instructions_never_panic() {
    let mut rng = Rng(7);
    for round in 0..3_000 {
        let input = if round % 2 == 0 {
            token_soup(&mut rng)
        } else {
            noise(&mut rng)
        };
        for escape in ['\\', '`'] {
            if let Err(error) = parse_instruction(&input, escape) {
                check_error(&input, &error);
            }
        }
    }
}

#[test]
fn every_prefix_of_the_corpus_parses_or_fails_cleanly() {
    for text in common::ALL {
        for (i, _) in text.char_indices() {
            exercise(&text[..i]);
        }
    }
}
