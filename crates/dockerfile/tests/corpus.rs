//! Realistic multi-stage Dockerfiles, parsed end to end: the stages, the
//! typed instructions and where they are.

mod common;

use std::time::Duration;

use berth_dockerfile::*;

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
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

fn arg(name: &str, default: Option<&str>) -> ArgDecl {
    ArgDecl {
        name: name.into(),
        default: default.map(String::from),
    }
}

fn mount(kind: MountKind, target: &str, readonly: bool) -> Mount {
    Mount {
        kind,
        target: target.into(),
        source: None,
        from: None,
        id: None,
        readonly,
        sharing: Sharing::Shared,
        mode: None,
        uid: None,
        gid: None,
        size: None,
        required: false,
    }
}

fn copy(sources: &[&str], dest: &str) -> Copy {
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

fn run(command: &str, mounts: Vec<Mount>) -> Kind {
    Kind::Run(Run {
        command: Command::Shell(command.into()),
        mounts,
        network: None,
        security: None,
        heredocs: vec![],
    })
}

fn kinds(stage: &Stage) -> Vec<Kind> {
    stage.instructions.iter().map(|i| i.kind.clone()).collect()
}

fn lines(stage: &Stage) -> Vec<(usize, usize)> {
    stage
        .instructions
        .iter()
        .map(|i| (i.location.start_line, i.location.end_line))
        .collect()
}

#[test]
fn go_service() {
    let file = parse(common::GO_SERVICE).unwrap();
    assert_eq!(
        file.directives,
        Directives {
            syntax: Some("docker/dockerfile:1.7".into()),
            escape: '\\',
            check: Some("error=true".into())
        }
    );
    assert_eq!(
        file.meta_args,
        vec![
            arg("GO_VERSION", Some("1.22")),
            arg("ALPINE_VERSION", Some("3.19"))
        ]
    );
    let [build, runtime] = file.stages.as_slice() else {
        panic!("two stages")
    };

    assert_eq!(build.name.as_deref(), Some("build"));
    assert_eq!(build.base, "golang:${GO_VERSION}-alpine${ALPINE_VERSION}");
    assert_eq!(build.platform.as_deref(), Some("$BUILDPLATFORM"));
    assert_eq!(
        build.location,
        Location {
            start_line: 7,
            end_line: 7
        }
    );
    assert_eq!(
        kinds(build),
        vec![
            Kind::Workdir("/src".into()),
            Kind::Env(kv(&[("CGO_ENABLED", "0"), ("GOFLAGS", "\"-trimpath -mod=readonly\"")])),
            Kind::Copy(copy(&["go.mod", "go.sum"], "./")),
            run(
                "go mod download",
                vec![
                    mount(MountKind::Cache, "/go/pkg/mod", false),
                    Mount { sharing: Sharing::Locked, ..mount(MountKind::Cache, "/root/.cache/go-build", false) },
                ]
            ),
            Kind::Arg(vec![arg("TARGETOS", None), arg("TARGETARCH", None)]),
            run(
                "GOOS=$TARGETOS GOARCH=$TARGETARCH go build -ldflags=\"-s -w\" -o /out/app ./cmd/app",
                vec![mount(MountKind::Bind, ".", true), mount(MountKind::Cache, "/root/.cache/go-build", false)]
            ),
        ]
    );
    assert_eq!(
        lines(build),
        vec![(8, 8), (9, 10), (11, 11), (12, 14), (15, 15), (16, 19)]
    );
    assert_eq!(
        build.instructions[1].original,
        "ENV CGO_ENABLED=0     GOFLAGS=\"-trimpath -mod=readonly\""
    );

    assert_eq!(runtime.name.as_deref(), Some("runtime"));
    assert_eq!(runtime.base, "gcr.io/distroless/static:nonroot");
    assert_eq!(
        kinds(runtime),
        vec![
            Kind::Label(kv(&[
                ("org.opencontainers.image.title", "\"app\""),
                ("org.opencontainers.image.source", "https://example.com/app"),
            ])),
            Kind::Copy(Copy {
                from: Some("build".into()),
                chown: Some("nonroot:nonroot".into()),
                ..copy(&["/out/app"], "/usr/local/bin/app")
            }),
            Kind::User("nonroot:nonroot".into()),
            Kind::Expose(strings(&["8080/tcp"])),
            Kind::Healthcheck(Healthcheck::Check {
                command: Command::Exec(strings(&["/usr/local/bin/app", "healthcheck"])),
                interval: Some(Duration::from_secs(30)),
                timeout: Some(Duration::from_secs(3)),
                start_period: None,
                start_interval: None,
                retries: Some(3),
            }),
            Kind::Entrypoint(Command::Exec(strings(&["/usr/local/bin/app"]))),
            Kind::Cmd(Command::Exec(strings(&["serve", "--addr=:8080"]))),
        ]
    );
    assert_eq!(
        runtime.instructions.last().map(|i| i.location.end_line),
        Some(29)
    );
}

#[test]
fn node_app_with_heredocs_and_crlf() {
    let file = parse(common::NODE_APP).unwrap();
    assert_eq!(file.directives, Directives::default());
    let [deps, app] = file.stages.as_slice() else {
        panic!("two stages")
    };
    assert_eq!(
        (deps.name.as_deref(), app.name.as_deref()),
        (Some("deps"), None)
    );
    assert_eq!(
        kinds(deps),
        vec![
            Kind::Workdir("/app".into()),
            Kind::Copy(copy(&["package.json", "package-lock.json"], "./")),
            run(
                "npm ci --omit=dev",
                vec![mount(MountKind::Cache, "/root/.npm", false)]
            ),
        ]
    );
    assert_eq!(
        kinds(app),
        vec![
            Kind::Env(kv(&[("NODE_ENV", "production")])),
            Kind::Workdir("/app".into()),
            Kind::Run(Run {
                command: Command::Shell("<<EOF".into()),
                mounts: vec![],
                network: None,
                security: None,
                heredocs: vec![Heredoc {
                    name: "EOF".into(),
                    content: "set -eux\napt-get update\napt-get install -y --no-install-recommends tini\n".into(),
                    expand: true,
                }],
            }),
            Kind::Copy(Copy { from: Some("deps".into()), ..copy(&["/app/node_modules"], "./node_modules") }),
            Kind::Copy(Copy {
                chmod: Some("0755".into()),
                heredocs: vec![Heredoc {
                    name: "SCRIPT".into(),
                    content: "#!/bin/sh\nexec node server.js \"$@\"\n".into(),
                    expand: false,
                }],
                ..copy(&[], "/usr/local/bin/start")
            }),
            Kind::Copy(copy(&["."], ".")),
            Kind::Run(Run {
                command: Command::Shell("node scripts/check.js".into()),
                mounts: vec![Mount {
                    id: Some("npmrc".into()),
                    required: true,
                    ..mount(MountKind::Secret, "/root/.npmrc", true)
                }],
                network: Some("none".into()),
                security: None,
                heredocs: vec![],
            }),
            Kind::StopSignal("SIGTERM".into()),
            Kind::Volume(strings(&["/app/data"])),
            Kind::Entrypoint(Command::Exec(strings(&["tini", "--"]))),
            Kind::Cmd(Command::Shell("start".into())),
        ]
    );
    assert_eq!(
        lines(app),
        vec![
            (7, 7),
            (8, 8),
            (9, 13),
            (14, 14),
            (15, 18),
            (19, 19),
            (20, 22),
            (23, 23),
            (24, 24),
            (25, 25),
            (26, 26)
        ]
    );
    assert_eq!(
        app.instructions[4].original,
        "COPY --chmod=0755 <<-'SCRIPT' /usr/local/bin/start"
    );
}

#[test]
fn windows_backtick_escape() {
    let file = parse(common::WINDOWS).unwrap();
    assert_eq!(file.directives.escape, '`');
    let [stage] = file.stages.as_slice() else {
        panic!("one stage")
    };
    assert_eq!(
        kinds(stage),
        vec![
            Kind::Shell(strings(&["powershell", "-Command", "$ErrorActionPreference = 'Stop';"])),
            run(
                "Invoke-WebRequest -Uri https://example.com/tool.zip -OutFile C:\\tool.zip ;     Expand-Archive C:\\tool.zip -DestinationPath C:\\tool",
                vec![]
            ),
            Kind::Workdir("C:\\tool".into()),
            Kind::Env(kv(&[("PATH", "\"C:\\tool;C:\\Windows\\system32\"")])),
            Kind::Cmd(Command::Exec(strings(&["C:\\tool\\tool.exe"]))),
        ]
    );
    assert_eq!(lines(stage), vec![(3, 3), (4, 5), (6, 6), (7, 7), (8, 8)]);
    // The builder expands with the file's escape: backslashes stay.
    let path = expand::expand(
        "\"C:\\tool;C:\\Windows\\system32\"",
        file.directives.escape,
        &|_| None,
    )
    .unwrap();
    assert_eq!(path, "C:\\tool;C:\\Windows\\system32");
}

#[test]
fn python_base_with_triggers() {
    let file = parse(common::PYTHON_BASE).unwrap();
    let [base] = file.stages.as_slice() else {
        panic!("one stage")
    };
    assert_eq!(base.name.as_deref(), Some("base"));
    let trigger = |line: usize, original: &str, kind: Kind| {
        Kind::Onbuild(Box::new(Instruction {
            location: Location {
                start_line: line,
                end_line: line,
            },
            original: original.into(),
            kind,
        }))
    };
    assert_eq!(
        kinds(base),
        vec![
            Kind::Maintainer("Jane Doe <jane@example.com>".into()),
            Kind::Env(kv(&[("PYTHONDONTWRITEBYTECODE", "1")])),
            Kind::Env(kv(&[
                ("PIP_NO_CACHE_DIR", "1"),
                ("PIP_DISABLE_PIP_VERSION_CHECK", "on")
            ])),
            run("pip install --upgrade pip", vec![]),
            trigger(
                6,
                "COPY requirements.txt /app/",
                Kind::Copy(copy(&["requirements.txt"], "/app/"))
            ),
            trigger(
                7,
                "RUN pip install -r /app/requirements.txt",
                run("pip install -r /app/requirements.txt", vec![])
            ),
            trigger(
                8,
                "ADD --chown=app . /app",
                Kind::Add(Copy {
                    chown: Some("app".into()),
                    ..copy(&["."], "/app")
                })
            ),
            Kind::Healthcheck(Healthcheck::None),
        ]
    );
    // A trigger as stored in an image config parses back to the same.
    let Kind::Onbuild(stored) = &base.instructions[5].kind else {
        panic!("onbuild")
    };
    let reparsed = parse_instruction(&stored.original, '\\').unwrap();
    assert_eq!(reparsed.kind, stored.kind);
}

#[test]
fn c_toolchain() {
    let file = parse(common::C_TOOLCHAIN).unwrap();
    assert_eq!(
        file.directives.syntax.as_deref(),
        Some("docker/dockerfile:1-labs")
    );
    let [toolchain, test] = file.stages.as_slice() else {
        panic!("two stages")
    };
    assert_eq!(
        kinds(toolchain),
        vec![
            Kind::Run(Run {
                command: Command::Shell(
                    "apt-get update && apt-get install -y build-essential".into()
                ),
                mounts: vec![
                    Mount {
                        size: Some(512 << 20),
                        ..mount(MountKind::Tmpfs, "/tmp", false)
                    },
                    Mount {
                        required: true,
                        ..mount(MountKind::Ssh, "", true)
                    },
                ],
                network: None,
                security: Some("insecure".into()),
                heredocs: vec![],
            }),
            Kind::Add(Copy {
                checksum: Some(
                    "sha256:24454f830cdb571e2c4ad15481119c43b3cafd48dd869a9b2945d1036d1dc68d"
                        .into()
                ),
                ..copy(&["https://example.com/src.tar.gz"], "/src/")
            }),
            Kind::Add(Copy {
                keep_git_dir: true,
                ..copy(
                    &["https://github.com/moby/buildkit.git#v0.13.0"],
                    "/buildkit"
                )
            }),
            Kind::Copy(Copy {
                parents: true,
                exclude: strings(&["*.o"]),
                ..copy(&["src/**/*.c"], "/build/")
            }),
        ]
    );
    assert_eq!(
        (test.name.as_deref(), test.base.as_str()),
        (Some("test"), "toolchain")
    );
    assert_eq!(kinds(test), vec![run("make -C /build test", vec![])]);
    assert_eq!(
        test.location,
        Location {
            start_line: 11,
            end_line: 11
        }
    );
}

#[test]
fn every_instruction_keeps_its_keyword() {
    for text in common::ALL {
        let file = parse(text).unwrap();
        for instruction in file.stages.iter().flat_map(|s| &s.instructions) {
            let keyword = instruction.kind.keyword();
            assert!(
                instruction.original.to_uppercase().starts_with(keyword),
                "{keyword}: {}",
                instruction.original
            );
        }
    }
}
