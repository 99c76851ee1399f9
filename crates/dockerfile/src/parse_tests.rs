//! Whole files: stages, meta `ARG`s, directives, locations and errors.

use super::*;
use crate::ast::{ArgDecl, Command, Directives, Heredoc, KeyValue, Run};

fn parse_ok(text: &str) -> Dockerfile {
    parse(text).unwrap_or_else(|e| panic!("{e}"))
}

fn parse_err(text: &str) -> ParseError {
    parse(text).unwrap_err()
}

fn shell_run(command: &str) -> Kind {
    Kind::Run(Run {
        command: Command::Shell(command.into()),
        mounts: vec![],
        network: None,
        security: None,
        heredocs: vec![],
    })
}

#[test]
fn stages_meta_args_and_locations() {
    let file = parse_ok("ARG VERSION=1.0 OTHER\nARG LAST\nFROM base:$VERSION AS build\nRUN make\n\nFROM scratch\nCOPY --from=build /out /\n");
    assert_eq!(file.directives, Directives::default());
    assert_eq!(
        file.meta_args,
        vec![
            ArgDecl {
                name: "VERSION".into(),
                default: Some("1.0".into())
            },
            ArgDecl {
                name: "OTHER".into(),
                default: None
            },
            ArgDecl {
                name: "LAST".into(),
                default: None
            },
        ]
    );
    assert_eq!(file.stages.len(), 2);
    let build = &file.stages[0];
    assert_eq!(
        (build.name.as_deref(), build.base.as_str()),
        (Some("build"), "base:$VERSION")
    );
    assert_eq!(
        build.location,
        Location {
            start_line: 3,
            end_line: 3
        }
    );
    assert_eq!(
        build.instructions,
        vec![Instruction {
            location: Location {
                start_line: 4,
                end_line: 4
            },
            original: "RUN make".into(),
            kind: shell_run("make")
        }]
    );
    assert_eq!(
        file.stages[1].location,
        Location {
            start_line: 6,
            end_line: 6
        }
    );
    assert_eq!(
        file.stages[1].instructions[0].original,
        "COPY --from=build /out /"
    );
}

#[test]
fn only_arg_may_come_before_from() {
    let e = parse_err("ARG A\n  ENV B=1\nFROM x");
    assert_eq!((e.line, e.column), (2, 3));
    assert_eq!(
        e.message,
        "no build stage in current context (only ARG may come before the first FROM)"
    );
    assert_eq!(e.to_string(), "Dockerfile:2:3: no build stage in current context (only ARG may come before the first FROM)\n   2 |   ENV B=1\n     |   ^");
}

#[test]
fn files_without_stages() {
    let e = parse_err("");
    assert_eq!(
        (e.line, e.column, e.message.as_str(), e.source_line.as_str()),
        (1, 1, "file with no instructions", "")
    );
    let e = parse_err("# just a comment\n\n");
    assert_eq!(
        (e.line, e.message.as_str()),
        (2, "file with no instructions")
    );
    let e = parse_err("ARG A\nARG B");
    assert_eq!(
        (e.line, e.message.as_str()),
        (2, "dockerfile contains no stages to build")
    );
}

#[test]
fn instructions_are_case_insensitive_and_indented() {
    let file = parse_ok("from alpine\n   run echo hi\n\tWorkDir /app");
    let kinds: Vec<&Kind> = file.stages[0]
        .instructions
        .iter()
        .map(|i| &i.kind)
        .collect();
    assert_eq!(
        kinds,
        vec![&shell_run("echo hi"), &Kind::Workdir("/app".into())]
    );
}

#[test]
fn escape_directive_changes_continuations_and_word_escapes() {
    let file = parse_ok(
        "# escape=`\nFROM mcr.microsoft.com/windows\nRUN dir c:\\ `\n    /b\nENV A=x` y B=c:\\",
    );
    assert_eq!(file.directives.escape, '`');
    let instructions = &file.stages[0].instructions;
    assert_eq!(instructions[0].kind, shell_run("dir c:\\     /b"));
    assert_eq!(
        instructions[0].location,
        Location {
            start_line: 3,
            end_line: 4
        }
    );
    let pairs = vec![
        KeyValue {
            key: "A".into(),
            value: "x` y".into(),
        },
        KeyValue {
            key: "B".into(),
            value: "c:\\".into(),
        },
    ];
    assert_eq!(instructions[1].kind, Kind::Env(pairs));
}

#[test]
fn a_directive_after_a_comment_is_a_comment() {
    let file = parse_ok("# hello\n# escape=`\nFROM a\nRUN a \\\n b");
    assert_eq!(file.directives.escape, '\\');
    assert_eq!(file.stages[0].instructions[0].kind, shell_run("a  b"));
}

#[test]
fn bom_and_crlf() {
    let file = parse_ok("\u{feff}# syntax=x\r\nFROM a\r\nRUN b \\\r\n  c\r\n");
    assert_eq!(file.directives.syntax.as_deref(), Some("x"));
    assert_eq!(file.stages[0].instructions[0].kind, shell_run("b   c"));
}

#[test]
fn whitespace_after_the_escape_still_continues() {
    let file = parse_ok("FROM a\nRUN a \\   \n  b");
    assert_eq!(file.stages[0].instructions[0].kind, shell_run("a   b"));
}

#[test]
fn errors_on_continuation_lines_point_at_their_line() {
    let e = parse_err("FROM a\nRUN \\\n  --mount=type=nope,target=/x \\\n  make");
    assert_eq!((e.line, e.column), (3, 3));
    assert_eq!(e.message, "unsupported mount type \"nope\"");
    assert_eq!(e.source_line, "  --mount=type=nope,target=/x \\");
    let e = parse_err("FROM a\nCOPY \\\n  --from=a \\\n\n# c\n  --bogus=1 a b");
    assert_eq!(
        (e.line, e.column, e.message.as_str()),
        (6, 3, "unknown flag: --bogus")
    );
}

#[test]
fn heredoc_instruction_spans_its_bodies() {
    let file = parse_ok("FROM a\nRUN <<EOF\necho $HOME\nEOF\nCMD x");
    let run = &file.stages[0].instructions[0];
    assert_eq!(
        run.location,
        Location {
            start_line: 2,
            end_line: 4
        }
    );
    assert_eq!(run.original, "RUN <<EOF");
    let Kind::Run(r) = &run.kind else {
        panic!("not run")
    };
    assert_eq!(
        r.heredocs,
        vec![Heredoc {
            name: "EOF".into(),
            content: "echo $HOME\n".into(),
            expand: true
        }]
    );
    assert_eq!(
        file.stages[0].instructions[1].location,
        Location {
            start_line: 5,
            end_line: 5
        }
    );
}

#[test]
fn unterminated_heredoc_is_reported_at_the_opening_line() {
    let e = parse_err("FROM a\nRUN <<EOF\necho hi\n");
    assert_eq!(
        (e.line, e.column, e.message.as_str()),
        (2, 5, "unterminated heredoc: missing terminator EOF")
    );
    assert_eq!(
        e.to_string(),
        "Dockerfile:2:5: unterminated heredoc: missing terminator EOF\n   2 | RUN <<EOF\n     |     ^"
    );
}

#[test]
fn unknown_instruction_display() {
    let e = parse_err("FROM busybox\n\nFORM busybox");
    assert_eq!(e.to_string(), "Dockerfile:3:1: unknown instruction: FORM (did you mean FROM?)\n   3 | FORM busybox\n     | ^");
}

#[test]
fn onbuild_in_a_stage() {
    let file = parse_ok("FROM a\nONBUILD RUN echo \\\n  hi");
    let onbuild = &file.stages[0].instructions[0];
    assert_eq!(onbuild.original, "ONBUILD RUN echo   hi");
    let Kind::Onbuild(trigger) = &onbuild.kind else {
        panic!("not onbuild")
    };
    assert_eq!(
        (trigger.original.as_str(), &trigger.kind),
        ("RUN echo   hi", &shell_run("echo   hi"))
    );
    assert_eq!(
        trigger.location,
        Location {
            start_line: 2,
            end_line: 3
        }
    );
}
