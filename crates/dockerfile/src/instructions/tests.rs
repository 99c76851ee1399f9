//! Each instruction, through `parse_instruction` (and `parse` for `FROM`):
//! the typed result, and Docker's errors with their line and column.

use std::time::Duration;

use crate::ast::*;
use crate::{parse, parse_instruction};

fn kind(text: &str) -> Kind {
    parse_instruction(text, '\\')
        .unwrap_or_else(|e| panic!("{text}: {e}"))
        .kind
}

/// (column, message) of the error of a one-line instruction.
fn error(text: &str) -> (usize, String) {
    let e = parse_instruction(text, '\\').unwrap_err();
    assert_eq!(e.line, 1, "{text}");
    assert_eq!(e.source_line, text.lines().next().unwrap_or_default());
    (e.column, e.message)
}

fn err(column: usize, message: &str) -> (usize, String) {
    (column, message.to_string())
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn run(text: &str) -> Run {
    match kind(text) {
        Kind::Run(run) => run,
        other => panic!("{other:?}"),
    }
}

fn copy(text: &str) -> Copy {
    match kind(text) {
        Kind::Copy(copy) | Kind::Add(copy) => copy,
        other => panic!("{other:?}"),
    }
}

fn plain_copy(sources: &[&str], dest: &str) -> Copy {
    Copy {
        sources: strings(sources),
        dest: dest.into(),
        from: None,
        chown: None,
        chmod: None,
        link: false,
        parents: false,
        exclude: vec![],
        keep_git_dir: false,
        checksum: None,
        heredocs: vec![],
    }
}

#[test]
fn run_shell_and_exec_forms() {
    assert_eq!(
        run("RUN echo  \"hi\" ").command,
        Command::Shell("echo  \"hi\"".into())
    );
    assert_eq!(
        run("run [\"echo\", \"hi\"]").command,
        Command::Exec(strings(&["echo", "hi"]))
    );
    assert_eq!(run("RUN [ \"a\" ]").command, Command::Exec(strings(&["a"])));
    // Not valid JSON: shell form, as Docker does.
    assert_eq!(
        run("RUN [echo, hi]").command,
        Command::Shell("[echo, hi]".into())
    );
    assert_eq!(
        run("RUN [\"a\"] && b").command,
        Command::Shell("[\"a\"] && b".into())
    );
    assert_eq!(
        error("RUN [\"a\", 1]"),
        err(
            5,
            "when using JSON array syntax, arrays must be comprised of strings only"
        )
    );
}

#[test]
fn run_flags() {
    let r = run("RUN --mount=type=secret,id=tok --mount=target=/src --network=none --security=insecure make");
    assert_eq!(r.command, Command::Shell("make".into()));
    assert_eq!(r.mounts.len(), 2);
    assert_eq!(
        (r.mounts[0].kind, r.mounts[0].id.as_deref()),
        (MountKind::Secret, Some("tok"))
    );
    assert_eq!(
        (r.mounts[1].kind, r.mounts[1].target.as_str()),
        (MountKind::Bind, "/src")
    );
    assert_eq!(r.network.as_deref(), Some("none"));
    assert_eq!(r.security.as_deref(), Some("insecure"));
    assert_eq!(
        run("RUN --network=host -- --version").command,
        Command::Shell("--version".into())
    );
}

#[test]
fn run_flag_errors_point_at_the_flag() {
    assert_eq!(error("RUN --foo=bar make"), err(5, "unknown flag: --foo"));
    assert_eq!(
        error("RUN --network=bridge make"),
        err(5, "unsupported network mode \"bridge\"")
    );
    assert_eq!(
        error("RUN --security=root make"),
        err(5, "unsupported security mode \"root\"")
    );
    assert_eq!(
        error("RUN --network=host --network=none x"),
        err(20, "duplicate flag specified: --network")
    );
    assert_eq!(
        error("RUN --mount=type=cache,target=/a --mount=type=cache make"),
        err(34, "invalid mount target \"\": a cache mount needs target=")
    );
    assert_eq!(
        error("RUN --mount=type=cache,target=/x,mode=8 make"),
        err(5, "invalid value 8 for mode")
    );
}

#[test]
fn run_heredocs() {
    let r = run("RUN <<EOF\napt-get update\n  apt-get install -y x\nEOF");
    assert_eq!(r.command, Command::Shell("<<EOF".into()));
    assert_eq!(
        r.heredocs,
        vec![Heredoc {
            name: "EOF".into(),
            content: "apt-get update\n  apt-get install -y x\n".into(),
            expand: true
        }]
    );
    let r = run("RUN python3 <<'PY' > /out\nprint('$HOME')\nPY");
    assert_eq!(r.command, Command::Shell("python3 <<'PY' > /out".into()));
    assert!(!r.heredocs[0].expand);
    assert_eq!(r.heredocs[0].content, "print('$HOME')\n");
    let r = run("RUN <<A <<-B cat /dev/fd/0\na1\nA\n\t\tb1\n\tb2\n\tB");
    let bodies: Vec<(&str, &str)> = r
        .heredocs
        .iter()
        .map(|h| (h.name.as_str(), h.content.as_str()))
        .collect();
    assert_eq!(bodies, vec![("A", "a1\n"), ("B", "b1\nb2\n")]);
    // Exec form has no heredocs: `<<EOF` is just an argument.
    let r = run("RUN [\"cat\", \"<<EOF\"]");
    assert!(r.heredocs.is_empty());
}

#[test]
fn cmd_and_entrypoint() {
    assert_eq!(
        kind("CMD [\"nginx\", \"-g\", \"daemon off;\"]"),
        Kind::Cmd(Command::Exec(strings(&["nginx", "-g", "daemon off;"])))
    );
    assert_eq!(
        kind("CMD echo $HOME"),
        Kind::Cmd(Command::Shell("echo $HOME".into()))
    );
    assert_eq!(
        kind("ENTRYPOINT []"),
        Kind::Entrypoint(Command::Exec(vec![]))
    );
    assert_eq!(
        kind("ENTRYPOINT"),
        Kind::Entrypoint(Command::Shell(String::new()))
    );
    assert_eq!(
        error("CMD --verbose run"),
        err(5, "unknown flag: --verbose")
    );
}

#[test]
fn shell_needs_json() {
    assert_eq!(
        kind("SHELL [\"/bin/bash\", \"-o\", \"pipefail\", \"-c\"]"),
        Kind::Shell(strings(&["/bin/bash", "-o", "pipefail", "-c"]))
    );
    assert_eq!(
        error("SHELL /bin/bash -c"),
        err(7, "SHELL requires the arguments to be in JSON form")
    );
    assert_eq!(
        error("SHELL []"),
        err(1, "SHELL requires at least one argument")
    );
    assert_eq!(
        error("SHELL"),
        err(1, "SHELL requires at least one argument")
    );
    assert_eq!(
        error("SHELL [1]"),
        err(
            7,
            "when using JSON array syntax, arrays must be comprised of strings only"
        )
    );
}

#[test]
fn healthcheck() {
    assert_eq!(
        kind("HEALTHCHECK NONE"),
        Kind::Healthcheck(Healthcheck::None)
    );
    assert_eq!(
        kind("healthcheck none"),
        Kind::Healthcheck(Healthcheck::None)
    );
    let check = kind("HEALTHCHECK --interval=30s --timeout=500ms --start-period=1m30s --start-interval=1h --retries=3 CMD curl -f http://localhost/");
    assert_eq!(
        check,
        Kind::Healthcheck(Healthcheck::Check {
            command: Command::Shell("curl -f http://localhost/".into()),
            interval: Some(Duration::from_secs(30)),
            timeout: Some(Duration::from_millis(500)),
            start_period: Some(Duration::from_secs(90)),
            start_interval: Some(Duration::from_secs(3600)),
            retries: Some(3),
        })
    );
    let Kind::Healthcheck(Healthcheck::Check {
        command,
        interval,
        retries,
        ..
    }) = kind("HEALTHCHECK --interval=0s --retries=0 cmd [\"true\"]")
    else {
        panic!("not a check");
    };
    assert_eq!(
        (command, interval, retries),
        (Command::Exec(strings(&["true"])), None, None)
    );
}

#[test]
fn healthcheck_errors() {
    assert_eq!(
        error("HEALTHCHECK"),
        err(1, "HEALTHCHECK requires at least one argument")
    );
    assert_eq!(
        error("HEALTHCHECK NONE x"),
        err(18, "HEALTHCHECK NONE takes no arguments")
    );
    assert_eq!(
        error("HEALTHCHECK --retries=3 NONE"),
        err(
            13,
            "HEALTHCHECK NONE takes no options, but --retries=3 was given"
        )
    );
    assert_eq!(
        error("HEALTHCHECK TEST x"),
        err(13, "unknown type \"TEST\" in HEALTHCHECK (try CMD)")
    );
    assert_eq!(
        error("HEALTHCHECK CMD"),
        err(13, "missing command after HEALTHCHECK CMD")
    );
    assert_eq!(
        error("HEALTHCHECK CMD []"),
        err(13, "missing command after HEALTHCHECK CMD")
    );
    assert_eq!(
        error("HEALTHCHECK --interval=10 CMD x"),
        err(13, "--interval: time: missing unit in duration \"10\"")
    );
    assert_eq!(
        error("HEALTHCHECK --timeout=abc CMD x"),
        err(13, "--timeout: time: invalid duration \"abc\"")
    );
    assert_eq!(
        error("HEALTHCHECK --timeout=1us CMD x"),
        err(13, "interval \"timeout\" cannot be less than 1ms")
    );
    assert_eq!(
        error("HEALTHCHECK --interval=-5s CMD x"),
        err(13, "interval \"interval\" cannot be less than 1ms")
    );
    assert_eq!(
        error("HEALTHCHECK --retries=-1 CMD x"),
        err(13, "--retries cannot be negative (-1)")
    );
    assert_eq!(
        error("HEALTHCHECK --retries=x CMD x"),
        err(
            13,
            "invalid --retries value \"x\": invalid digit found in string"
        )
    );
    assert_eq!(
        error("HEALTHCHECK --interval CMD x"),
        err(13, "missing a value on flag: --interval")
    );
    assert_eq!(
        error("HEALTHCHECK --mount=x CMD x"),
        err(13, "unknown flag: --mount")
    );
}

#[test]
fn copy_sources_and_destination() {
    assert_eq!(copy("COPY a b /dst/"), plain_copy(&["a", "b"], "/dst/"));
    assert_eq!(
        copy("COPY [\"my file\", \"/my dir/\"]"),
        plain_copy(&["my file"], "/my dir/")
    );
    // Without JSON, quotes do not group words (the builder's expansion would then fail).
    assert_eq!(copy("COPY \"a b\" /c"), plain_copy(&["\"a", "b\""], "/c"));
    let c = copy("COPY --from=build --chown=app:app --chmod=0755 --link --parents --exclude=*.md --exclude=tmp src /dst");
    assert_eq!(
        c,
        Copy {
            from: Some("build".into()),
            chown: Some("app:app".into()),
            chmod: Some("0755".into()),
            link: true,
            parents: true,
            exclude: strings(&["*.md", "tmp"]),
            ..plain_copy(&["src"], "/dst")
        }
    );
    let a = copy("ADD --keep-git-dir=true --checksum=sha256:abc --link=false https://x/y.tgz /");
    assert_eq!(
        a,
        Copy {
            keep_git_dir: true,
            checksum: Some("sha256:abc".into()),
            ..plain_copy(&["https://x/y.tgz"], "/")
        }
    );
    assert!(matches!(kind("ADD a b"), Kind::Add(_)));
}

#[test]
fn copy_heredocs_become_inline_files() {
    let c = copy("COPY <<EOF <<\"RAW\" ./file /dst/\nhello $NAME\nEOF\nraw $X\nRAW");
    assert_eq!(c.sources, strings(&["./file"]));
    assert_eq!(
        c.heredocs,
        vec![
            Heredoc {
                name: "EOF".into(),
                content: "hello $NAME\n".into(),
                expand: true
            },
            Heredoc {
                name: "RAW".into(),
                content: "raw $X\n".into(),
                expand: false
            },
        ]
    );
    let c = copy("COPY <<-EOF /script.sh\n\t#!/bin/sh\n\techo hi\n\tEOF");
    assert_eq!(c.heredocs[0].content, "#!/bin/sh\necho hi\n");
}

#[test]
fn copy_errors() {
    let only_one = "COPY requires at least two arguments, but only one was provided. Destination could not be determined";
    assert_eq!(error("COPY onlyone"), err(1, only_one));
    assert_eq!(error("COPY"), err(1, only_one));
    assert_eq!(error("COPY [\"a\"]"), err(1, only_one));
    assert_eq!(
        error("ADD x"),
        err(1, "ADD requires at least two arguments, but only one was provided. Destination could not be determined")
    );
    assert_eq!(
        error("COPY a <<EOF\nx\nEOF"),
        err(8, "COPY cannot accept a heredoc as a destination")
    );
    assert_eq!(
        error("COPY --keep-git-dir a b"),
        err(6, "unknown flag: --keep-git-dir")
    );
    assert_eq!(error("ADD --from=x a b"), err(5, "unknown flag: --from"));
    assert_eq!(
        error("COPY --link=maybe a b"),
        err(6, "expecting boolean value for flag --link, not: maybe")
    );
    assert_eq!(
        error("COPY --chown a b"),
        err(6, "missing a value on flag: --chown")
    );
}

fn kv(pairs: &[(&str, &str)]) -> Vec<KeyValue> {
    pairs
        .iter()
        .map(|(k, v)| KeyValue {
            key: k.to_string(),
            value: v.to_string(),
        })
        .collect()
}

#[test]
fn env_forms() {
    assert_eq!(
        kind("ENV A=1 B=\"two words\" C= D=a\\ b"),
        Kind::Env(kv(&[
            ("A", "1"),
            ("B", "\"two words\""),
            ("C", ""),
            ("D", "a\\ b")
        ]))
    );
    // Legacy form: one pair, the value is the rest of the line.
    assert_eq!(
        kind("ENV PATH /usr/local/bin:$PATH  and more"),
        Kind::Env(kv(&[("PATH", "/usr/local/bin:$PATH  and more")]))
    );
    assert_eq!(
        kind("ENV X \"quoted value\""),
        Kind::Env(kv(&[("X", "\"quoted value\"")]))
    );
}

#[test]
fn env_errors() {
    assert_eq!(error("ENV"), err(1, "ENV requires at least one argument"));
    assert_eq!(error("ENV ONLYNAME"), err(1, "ENV must have two arguments"));
    assert_eq!(error("ENV A=1 =2"), err(9, "ENV names can not be blank"));
    assert_eq!(
        error("ENV A=1 B"),
        err(
            9,
            "syntax error - can't find = in \"B\". must be of the form: name=value"
        )
    );
    assert_eq!(error("ENV --x=1 A=1"), err(5, "unknown flag: --x"));
}

#[test]
fn label_keeps_the_raw_words() {
    assert_eq!(
        kind("LABEL \"com.example.vendor\"=\"ACME Inc\" version=1.0 description='a b'"),
        Kind::Label(kv(&[
            ("\"com.example.vendor\"", "\"ACME Inc\""),
            ("version", "1.0"),
            ("description", "'a b'")
        ]))
    );
    assert_eq!(
        kind("LABEL maintainer someone@example.com"),
        Kind::Label(kv(&[("maintainer", "someone@example.com")]))
    );
    assert_eq!(
        error("LABEL"),
        err(1, "LABEL requires at least one argument")
    );
    assert_eq!(error("LABEL =x"), err(7, "LABEL names can not be blank"));
}

#[test]
fn arg_declarations() {
    assert_eq!(
        kind("ARG A B=2 C=\"x y\" D="),
        Kind::Arg(vec![
            ArgDecl {
                name: "A".into(),
                default: None
            },
            ArgDecl {
                name: "B".into(),
                default: Some("2".into())
            },
            ArgDecl {
                name: "C".into(),
                default: Some("\"x y\"".into())
            },
            ArgDecl {
                name: "D".into(),
                default: Some(String::new())
            },
        ])
    );
    assert_eq!(error("ARG"), err(1, "ARG requires at least one argument"));
    assert_eq!(error("ARG A =1"), err(7, "ARG names can not be blank"));
}

#[test]
fn single_argument_instructions_take_the_rest_of_the_line() {
    assert_eq!(
        kind("WORKDIR /path with spaces/$DIR"),
        Kind::Workdir("/path with spaces/$DIR".into())
    );
    assert_eq!(kind("USER app:app"), Kind::User("app:app".into()));
    assert_eq!(
        kind("STOPSIGNAL SIGTERM"),
        Kind::StopSignal("SIGTERM".into())
    );
    assert_eq!(
        kind("MAINTAINER Jane Doe <jane@example.com>"),
        Kind::Maintainer("Jane Doe <jane@example.com>".into())
    );
    for (text, name) in [
        ("WORKDIR", "WORKDIR"),
        ("USER  ", "USER"),
        ("STOPSIGNAL", "STOPSIGNAL"),
        ("MAINTAINER", "MAINTAINER"),
    ] {
        assert_eq!(
            error(text),
            err(1, &format!("{name} requires exactly one argument"))
        );
    }
}

#[test]
fn expose_and_volume() {
    assert_eq!(
        kind("EXPOSE 80 443/tcp ${PORT}/udp"),
        Kind::Expose(strings(&["80", "443/tcp", "${PORT}/udp"]))
    );
    assert_eq!(
        kind("VOLUME /data /logs"),
        Kind::Volume(strings(&["/data", "/logs"]))
    );
    assert_eq!(
        kind("VOLUME [\"/data\", \" /with space \"]"),
        Kind::Volume(strings(&["/data", "/with space"]))
    );
    assert_eq!(
        error("EXPOSE"),
        err(1, "EXPOSE requires at least one argument")
    );
    assert_eq!(
        error("VOLUME"),
        err(1, "VOLUME requires at least one argument")
    );
    assert_eq!(
        error("VOLUME []"),
        err(1, "VOLUME requires at least one argument")
    );
    assert_eq!(
        error("VOLUME [\"/a\", \" \"]"),
        err(8, "VOLUME specified can not be an empty string")
    );
}

#[test]
fn onbuild_parses_its_trigger() {
    let Kind::Onbuild(trigger) = kind("ONBUILD COPY --chown=app . /app") else {
        panic!("not onbuild");
    };
    assert_eq!(trigger.original, "COPY --chown=app . /app");
    assert_eq!(
        trigger.location,
        Location {
            start_line: 1,
            end_line: 1
        }
    );
    assert_eq!(
        trigger.kind,
        Kind::Copy(Copy {
            chown: Some("app".into()),
            ..plain_copy(&["."], "/app")
        })
    );
    let Kind::Onbuild(trigger) = kind("ONBUILD RUN <<EOF\nmake\nEOF") else {
        panic!("not onbuild");
    };
    assert_eq!(trigger.original, "RUN <<EOF");
    assert!(matches!(&trigger.kind, Kind::Run(r) if r.heredocs[0].content == "make\n"));
}

#[test]
fn onbuild_errors() {
    assert_eq!(
        error("ONBUILD"),
        err(1, "ONBUILD requires at least one argument")
    );
    assert_eq!(
        error("ONBUILD ONBUILD RUN x"),
        err(9, "chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed")
    );
    assert_eq!(
        error("ONBUILD from alpine"),
        err(9, "FROM isn't allowed as an ONBUILD trigger")
    );
    assert_eq!(
        error("onbuild MAINTAINER me"),
        err(9, "MAINTAINER isn't allowed as an ONBUILD trigger")
    );
    assert_eq!(
        error("ONBUILD RUM make"),
        err(9, "unknown instruction: RUM (did you mean RUN?)")
    );
    assert_eq!(error("ONBUILD COPY x"), err(9, "COPY requires at least two arguments, but only one was provided. Destination could not be determined"));
    assert_eq!(error("ONBUILD --x RUN y"), err(9, "unknown flag: --x"));
}

#[test]
fn unknown_instructions_get_a_suggestion_in_their_case() {
    assert_eq!(
        error("FORM busybox"),
        err(1, "unknown instruction: FORM (did you mean FROM?)")
    );
    assert_eq!(
        error("  cpy a b"),
        err(3, "unknown instruction: cpy (did you mean copy?)")
    );
    assert_eq!(
        error("WORKDIRECTORY /x"),
        err(1, "unknown instruction: WORKDIRECTORY")
    );
}

fn stage_of(text: &str) -> Stage {
    parse(text)
        .unwrap_or_else(|e| panic!("{text}: {e}"))
        .stages
        .remove(0)
}

#[test]
fn from_lines() {
    let s = stage_of("FROM --platform=$BUILDPLATFORM golang:1.22 AS Build-Env.1");
    assert_eq!(s.name.as_deref(), Some("build-env.1"));
    assert_eq!(s.base, "golang:1.22");
    assert_eq!(s.platform.as_deref(), Some("$BUILDPLATFORM"));
    assert_eq!(
        s.original,
        "FROM --platform=$BUILDPLATFORM golang:1.22 AS Build-Env.1"
    );
    let s = stage_of("from scratch");
    assert_eq!(
        (s.name, s.base.as_str(), s.platform),
        (None, "scratch", None)
    );
    assert_eq!(stage_of("FROM a as b").name.as_deref(), Some("b"));
}

fn parse_error(text: &str) -> (usize, usize, String) {
    let e = parse(text).unwrap_err();
    (e.line, e.column, e.message)
}

#[test]
fn from_errors() {
    let invalid =
        "invalid name for build stage: \"1st\", name can't start with a number or contain symbols";
    assert_eq!(parse_error("FROM a AS 1st"), (1, 11, invalid.to_string()));
    assert_eq!(
        parse_error("FROM a AS x/y").2,
        "invalid name for build stage: \"x/y\", name can't start with a number or contain symbols"
    );
    assert_eq!(
        parse_error("FROM a b"),
        (1, 1, "FROM requires either one or three arguments".into())
    );
    assert_eq!(
        parse_error("FROM a TO b"),
        (1, 1, "FROM requires either one or three arguments".into())
    );
    assert_eq!(
        parse_error("FROM"),
        (1, 1, "FROM requires either one or three arguments".into())
    );
    assert_eq!(
        parse_error("FROM --arch=arm64 a"),
        (1, 6, "unknown flag: --arch".into())
    );
}

#[test]
fn parse_instruction_wants_exactly_one_instruction() {
    let e = parse_instruction("FROM alpine", '\\').unwrap_err();
    assert_eq!(
        (e.line, e.column, e.message.as_str()),
        (
            1,
            1,
            "FROM starts a build stage, it is not an instruction of one"
        )
    );
    let e = parse_instruction("RUN a\nRUN b", '\\').unwrap_err();
    assert_eq!(
        (e.line, e.column, e.message.as_str()),
        (2, 1, "only one instruction was expected")
    );
    let e = parse_instruction("", '\\').unwrap_err();
    assert_eq!((e.line, e.message.as_str()), (1, "no instruction to parse"));
    let i = parse_instruction("# a comment\n  RUN a \\\n  b", '\\').unwrap();
    assert_eq!(
        (i.original.as_str(), i.location),
        (
            "RUN a   b",
            Location {
                start_line: 2,
                end_line: 3
            }
        )
    );
    let i = parse_instruction("RUN a `\nb", '`').unwrap();
    assert_eq!(
        i.kind,
        Kind::Run(Run {
            command: Command::Shell("a b".into()),
            mounts: vec![],
            network: None,
            security: None,
            heredocs: vec![]
        })
    );
}
