//! Fuzzes `parse` (and `parse_instruction`): no input may panic; an error
//! must point at a line of the input; every word of a parsed file is then
//! expanded, which must not panic either.

#![no_main]

use berth_dockerfile::{expand, parse, parse_instruction, Command, Dockerfile, Healthcheck, Kind};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match parse(text) {
        Ok(file) => expand_all(&file),
        Err(error) => {
            assert!(error.line >= 1 && error.line <= text.lines().count().max(1));
            let _ = error.to_string();
        }
    }
    let _ = parse_instruction(text, '\\');
    let _ = parse_instruction(text, '`');
});

fn expand_all(file: &Dockerfile) {
    let escape = file.directives.escape;
    let lookup = |name: &str| name.len().is_multiple_of(2).then(|| format!("a b*{name}"));
    for stage in &file.stages {
        for word in std::iter::once(&stage.base).chain(&stage.platform) {
            expand_word(word, escape, &lookup);
        }
        for instruction in &stage.instructions {
            expand_kind(&instruction.kind, escape, &lookup);
        }
    }
}

fn expand_word(word: &str, escape: char, lookup: &dyn Fn(&str) -> Option<String>) {
    let _ = expand::expand(word, escape, lookup);
    let _ = expand::expand_words(word, escape, lookup);
}

fn command_words(command: &Command) -> Vec<&str> {
    match command {
        Command::Exec(argv) => argv.iter().map(String::as_str).collect(),
        Command::Shell(line) => vec![line.as_str()],
    }
}

fn expand_kind(kind: &Kind, escape: char, lookup: &dyn Fn(&str) -> Option<String>) {
    let words: Vec<&str> = match kind {
        Kind::Run(run) => {
            for heredoc in &run.heredocs {
                let _ = expand::expand_heredoc(&heredoc.content, '\\', lookup);
            }
            let mounts = run
                .mounts
                .iter()
                .flat_map(|m| std::iter::once(m.target.as_str()).chain(m.source.as_deref()));
            command_words(&run.command)
                .into_iter()
                .chain(mounts)
                .collect()
        }
        Kind::Copy(copy) | Kind::Add(copy) => {
            for heredoc in &copy.heredocs {
                let _ = expand::expand_heredoc(&heredoc.content, '\\', lookup);
            }
            copy.sources
                .iter()
                .chain([&copy.dest])
                .chain(&copy.chown)
                .chain(&copy.exclude)
                .map(String::as_str)
                .collect()
        }
        Kind::Env(pairs) | Kind::Label(pairs) => pairs
            .iter()
            .flat_map(|p| [p.key.as_str(), p.value.as_str()])
            .collect(),
        Kind::Arg(args) => args
            .iter()
            .flat_map(|a| std::iter::once(a.name.as_str()).chain(a.default.as_deref()))
            .collect(),
        Kind::Workdir(s) | Kind::User(s) | Kind::StopSignal(s) | Kind::Maintainer(s) => {
            vec![s.as_str()]
        }
        Kind::Expose(list) | Kind::Volume(list) | Kind::Shell(list) => {
            list.iter().map(String::as_str).collect()
        }
        Kind::Cmd(command) | Kind::Entrypoint(command) => command_words(command),
        Kind::Healthcheck(Healthcheck::Check { command, .. }) => command_words(command),
        Kind::Healthcheck(Healthcheck::None) => Vec::new(),
        Kind::Onbuild(trigger) => return expand_kind(&trigger.kind, escape, lookup),
    };
    for word in words {
        expand_word(word, escape, lookup);
    }
}
