//! Privileged: the builder through the daemon, judged by the `docker` and
//! `berth` CLIs — the cache (every step hit on a rebuild; a changed file
//! invalidates exactly the steps from the COPY that reads it; unrelated
//! files and mtimes invalidate nothing), failures (no tag moved, nothing
//! left running or mounted, completed steps kept), cancellation,
//! concurrent stages, cache mounts across builds, bad input, `berth
//! build`'s flags, intermediate images and `builder prune`.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::Stdio;

use common::daemon::Daemon;

/// A context directory with these files.
fn context(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (p, c) in files {
        write(dir.path(), p, c);
    }
    dir
}

fn write(dir: &Path, path: &str, content: &str) {
    let p = dir.join(path);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, content).unwrap();
}

/// `docker build` (the classic builder API); returns (success, stdout, stderr).
fn docker_build(d: &Daemon, args: &[&str], ctx: &Path) -> (Option<i32>, String, String) {
    let mut all: Vec<&str> = vec!["build"];
    all.extend(args);
    let ctx = ctx.display().to_string();
    all.push(&ctx);
    let out = d
        .command("docker", &all)
        .env("DOCKER_BUILDKIT", "0")
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn built(d: &Daemon, args: &[&str], ctx: &Path) -> String {
    let (code, out, err) = docker_build(d, args, ctx);
    assert_eq!(code, Some(0), "build failed: {out}{err}");
    out
}

fn image_id(d: &Daemon, name: &str) -> String {
    d.ok(&["image", "inspect", "--format", "{{.Id}}", name])
        .trim()
        .to_owned()
}

/// The step numbers that came from the cache.
fn cached_steps(out: &str) -> Vec<usize> {
    let mut step = 0;
    let mut hits = Vec::new();
    for line in out.lines() {
        if let Some(rest) = line.strip_prefix("Step ") {
            step = rest.split('/').next().unwrap().parse().unwrap();
        } else if line == " ---> Using cache" {
            hits.push(step);
        }
    }
    hits
}

const CACHED: &str = "FROM busybox:test
COPY a.txt /a.txt
RUN cat /a.txt > /a.copy
COPY b.txt /b.txt
RUN cat /b.txt > /b.copy
CMD [\"cat\", \"/a.copy\", \"/b.copy\"]
";

#[test]
fn the_cache_reuses_exactly_what_did_not_change() {
    let d = Daemon::start();
    d.import_busybox();
    let ctx = context(&[
        ("Dockerfile", CACHED),
        ("a.txt", "A\n"),
        ("b.txt", "B\n"),
        ("unrelated.txt", "x"),
    ]);
    let first = built(&d, &["-t", "cached:1"], ctx.path());
    assert!(cached_steps(&first).is_empty(), "{first}");
    let id = image_id(&d, "cached:1");

    let again = built(&d, &["-t", "cached:1"], ctx.path());
    assert_eq!(cached_steps(&again), [2, 3, 4, 5, 6], "{again}");
    assert_eq!(image_id(&d, "cached:1"), id);

    // Neither a file no step reads nor a new mtime invalidates anything.
    write(ctx.path(), "unrelated.txt", "changed");
    let f = std::fs::File::options()
        .write(true)
        .open(ctx.path().join("a.txt"))
        .unwrap();
    f.set_modified(std::time::SystemTime::UNIX_EPOCH).unwrap();
    let untouched = built(&d, &["-t", "cached:1"], ctx.path());
    assert_eq!(cached_steps(&untouched), [2, 3, 4, 5, 6], "{untouched}");
    assert_eq!(image_id(&d, "cached:1"), id);

    // b.txt changes: the steps before its COPY hit, the rest run again.
    write(ctx.path(), "b.txt", "B2\n");
    let changed = built(&d, &["-t", "cached:1"], ctx.path());
    assert_eq!(cached_steps(&changed), [2, 3], "{changed}");
    assert_ne!(image_id(&d, "cached:1"), id);
    let out = d.ok(&["run", "--rm", "cached:1"]);
    assert_eq!(out, "A\nB2\n");

    // --no-cache runs everything.
    let fresh = built(&d, &["--no-cache", "-t", "cached:2"], ctx.path());
    assert!(cached_steps(&fresh).is_empty(), "{fresh}");

    // Another Dockerfile sharing the prefix shares its steps.
    write(
        ctx.path(),
        "Other.Dockerfile",
        "FROM busybox:test\nCOPY a.txt /a.txt\nRUN cat /a.txt > /a.copy\nRUN echo other\n",
    );
    let other = built(
        &d,
        &[
            "-f",
            &ctx.path().join("Other.Dockerfile").display().to_string(),
        ],
        ctx.path(),
    );
    assert_eq!(cached_steps(&other), [2, 3], "{other}");
}

#[test]
fn a_failing_run_moves_no_tag_leaves_nothing_and_keeps_what_completed() {
    let d = Daemon::start();
    d.import_busybox();
    let ctx = context(&[("Dockerfile", "FROM busybox:test\nRUN echo one > /one\n")]);
    built(&d, &["-t", "keep:1"], ctx.path());
    let id = image_id(&d, "keep:1");
    write(
        ctx.path(),
        "Dockerfile",
        "FROM busybox:test\nRUN echo one > /one\nRUN echo two > /two\nRUN echo about to fail; exit 3\n",
    );
    let (code, out, err) = docker_build(&d, &["-t", "keep:1"], ctx.path());
    assert_eq!(
        code,
        Some(3),
        "docker exits with the RUN's code: {out}{err}"
    );
    assert!(out.contains("about to fail"), "{out}");
    assert!(
        err.contains(
            "The command '/bin/sh -c echo about to fail; exit 3' returned a non-zero code: 3"
        ),
        "{err}"
    );
    assert_eq!(image_id(&d, "keep:1"), id, "the tag moved");
    assert_eq!(d.ok(&["ps", "-aq"]), "", "a step's container is left");
    assert_eq!(d.mounts_under(), 0, "a mount is left");
    // What completed is cached: the same steps again hit.
    write(
        ctx.path(),
        "Dockerfile",
        "FROM busybox:test\nRUN echo one > /one\nRUN echo two > /two\n",
    );
    let again = built(&d, &[], ctx.path());
    assert_eq!(cached_steps(&again), [2, 3], "{again}");
}

#[test]
fn independent_stages_build_at_the_same_time() {
    let d = Daemon::start();
    d.import_busybox();
    // Each stage waits for the other's mark in a shared cache mount: built
    // one after the other, the first would give up.
    let wait = |me: &str, other: &str| {
        format!(
            "RUN --mount=type=cache,id=sync,target=/sync touch /sync/{me} && \
             for i in $(seq 600); do [ -f /sync/{other} ] && exit 0; sleep 0.1; done; exit 1"
        )
    };
    let df = format!(
        "FROM busybox:test AS left\n{}\nRUN echo left > /left\n\
         FROM busybox:test AS right\n{}\nRUN echo right > /right\n\
         FROM busybox:test\nCOPY --from=left /left /left\nCOPY --from=right /right /right\n",
        wait("left", "right"),
        wait("right", "left")
    );
    let ctx = context(&[("Dockerfile", &df)]);
    built(&d, &["-t", "stages:1"], ctx.path());
    let out = d.ok(&["run", "--rm", "stages:1", "cat", "/left", "/right"]);
    assert_eq!(out, "left\nright\n");
}

#[test]
fn cache_mounts_persist_between_builds_and_stay_out_of_images() {
    let d = Daemon::start();
    d.import_busybox();
    let ctx = context(&[(
        "Dockerfile",
        "FROM busybox:test\nRUN --mount=type=cache,target=/var/cache/app echo warm > /var/cache/app/state\n",
    )]);
    built(&d, &[], ctx.path());
    write(
        ctx.path(),
        "Dockerfile",
        "FROM busybox:test\nRUN --mount=type=cache,target=/var/cache/app cp /var/cache/app/state /seen\n",
    );
    built(&d, &["-t", "mounts:1"], ctx.path());
    assert_eq!(d.ok(&["run", "--rm", "mounts:1", "cat", "/seen"]), "warm\n");
    let listing = d.ok(&["run", "--rm", "mounts:1", "ls", "-A", "/var/cache/app"]);
    assert_eq!(listing, "", "the cache's content reached the image");
}

#[test]
fn cancelling_a_build_kills_its_step_and_tags_nothing() {
    let d = Daemon::start();
    d.import_busybox();
    let ctx = context(&[(
        "Dockerfile",
        "FROM busybox:test\nRUN echo started; sleep 600\n",
    )]);
    let mut child = d
        .berth_command(&[
            "build",
            "--progress=plain",
            "-t",
            "cancelled:1",
            &ctx.path().display().to_string(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    assert!(lines.any(|l| l.unwrap() == "started"), "the step never ran");
    assert_ne!(d.ok(&["ps", "-aq"]), "", "the step has no container");
    // Ctrl-C: the client goes, the daemon stops the build.
    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap());
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).unwrap();
    child.wait().unwrap();
    let gone = (0..300).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(100));
        d.ok(&["ps", "-aq"]).is_empty()
    });
    assert!(gone, "the cancelled step's container is still there");
    assert!(d
        .fails(&["image", "inspect", "cancelled:1"])
        .contains("o such image"));
    assert_eq!(d.mounts_under(), 0, "a mount is left");
}

#[test]
fn bad_input_is_refused_with_a_precise_error_before_anything_runs() {
    let d = Daemon::start();
    d.import_busybox();
    let cases: &[(&str, &str)] = &[
        ("FROM busybox:test\nRUN echo hi\nFORM x\n", "dockerfile parse error line 3: unknown instruction: FORM"),
        ("FROM busybox:test AS a\nCOPY --from=b /x /x\nFROM busybox:test AS b\nCOPY --from=a /y /y\n", "circular dependency detected on stage"),
        ("FROM 127.0.0.1:1/nosuch/image:v1\n", "127.0.0.1:1/v2/nosuch/image/manifests/v1 (127.0.0.1:1): io: Connection refused"),
        ("FROM busybox:test\nCOPY ../../etc/passwd /p\n", "forbidden path outside the build context"),
        ("FROM busybox:test\nCOPY missing.txt /m\n", "file not found in build context"),
        ("FROM busybox:test\nCOPY --from=1 /x /x\n", "refers to current or future build stage"),
        ("ENV A=1\nFROM busybox:test\n", "no build stage in current context"),
    ];
    for (df, want) in cases {
        let ctx = context(&[("Dockerfile", df)]);
        let out = d.berth(&["build", "-t", "bad:1", &ctx.path().display().to_string()]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "built: {df}");
        assert!(err.contains(want), "{df:?}: {err}");
    }
    // A parse error shows the line and a caret under the culprit.
    let ctx = context(&[("Dockerfile", "FROM busybox:test\n  RUNN echo\n")]);
    let out = d.berth(&["build", &ctx.path().display().to_string()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("   2 |   RUNN echo\n     |   ^"), "{err}");
    let err = d.berth(&[
        "build",
        "--target",
        "nope",
        &ctx.path().display().to_string(),
    ]);
    assert!(!err.status.success());
    assert!(d
        .fails(&["image", "inspect", "bad:1"])
        .contains("o such image"));
    assert_eq!(d.ok(&["ps", "-aq"]), "");
    let missing = d.berth(&["build", "/nonexistent/context"]);
    assert!(String::from_utf8_lossy(&missing.stderr).contains("not found"));
}

/// A tar of one Dockerfile, then `padding` zero bytes past its end (Python's
/// tarfile pads to 10 KiB records; any client may send more).
fn padded_context(dockerfile: &str, padding: usize) -> Vec<u8> {
    let mut tar = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(dockerfile.len() as u64);
    header.set_mode(0o644);
    header.set_cksum();
    tar.append_data(&mut header, "Dockerfile", dockerfile.as_bytes())
        .unwrap();
    let mut body = tar.into_inner().unwrap();
    body.resize(body.len() + padding, 0);
    body
}

#[test]
fn an_error_is_answered_after_the_whole_context_is_read() {
    use std::io::{Read, Write};
    let d = Daemon::start();
    // A parse error is found after the archive's first end block; the
    // daemon answered it at once and closed the connection under a client
    // still sending (the docker CLI printed "write: broken pipe").
    let body = padded_context("FROM scratch\nENV\n", 4 << 20);
    for query in ["", "&buildargs=not-json"] {
        let mut s = std::os::unix::net::UnixStream::connect(d.socket()).unwrap();
        write!(
            s,
            "POST /v1.41/build?t=x{query} HTTP/1.1\r\nHost: berth\r\n\
             Content-Type: application/x-tar\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .unwrap();
        s.write_all(&body).expect("the daemon reads the whole body");
        let mut answer = vec![0; 4096];
        let n = s.read(&mut answer).unwrap();
        let answer = String::from_utf8_lossy(&answer[..n]);
        assert!(answer.starts_with("HTTP/1.1 400"), "{query}: {answer}");
        let want = if query.is_empty() {
            "ENV requires at least one argument"
        } else {
            "invalid buildargs"
        };
        assert!(answer.contains(want), "{answer}");
    }
}

#[test]
fn berth_build_takes_dockers_flags_and_hides_intermediate_images() {
    let d = Daemon::start();
    d.import_busybox();
    let ctx = context(&[
        ("docker/Dockerfile.dev", "FROM busybox:test AS base\nARG WHO\nRUN echo \"hi $WHO\" > /who\nFROM base AS extra\nRUN echo extra > /extra\n"),
        ("ignored/big.bin", "x"),
        (".dockerignore", "ignored\n"),
    ]);
    let dir = ctx.path().display().to_string();
    let file = ctx
        .path()
        .join("docker/Dockerfile.dev")
        .display()
        .to_string();
    let id = d.berth_ok(&[
        "build",
        "-q",
        "-f",
        &file,
        "--build-arg",
        "WHO=berth",
        "--label",
        "team=core",
        "--target",
        "base",
        "-t",
        "flags:1",
        "-t",
        "flags:2",
        &dir,
    ]);
    let id = id.trim();
    assert!(id.starts_with("sha256:") && id.len() == 71, "{id}");
    assert_eq!(image_id(&d, "flags:1"), id);
    assert_eq!(image_id(&d, "flags:2"), id);
    assert_eq!(
        d.ok(&["run", "--rm", "flags:1", "cat", "/who"]),
        "hi berth\n"
    );
    assert!(d
        .fails(&["run", "--rm", "flags:1", "cat", "/extra"])
        .contains("No such file"));
    assert_eq!(
        d.ok(&[
            "image",
            "inspect",
            "--format",
            "{{index .Config.Labels \"team\"}}",
            "flags:1"
        ])
        .trim(),
        "core"
    );
    // Intermediate step images show with -a only; rmi takes them along.
    let listed = d.ok(&["images", "-q"]);
    let all = d.ok(&["images", "-aq"]);
    // busybox:test, flags:1 and flags:2 (one row per tag).
    assert_eq!(listed.lines().count(), 3, "{listed}");
    assert!(all.lines().count() > 3, "{all}");
    d.ok(&["rmi", "flags:2"]);
    let removed = d.ok(&["rmi", "flags:1"]);
    assert!(removed.matches("Deleted:").count() >= 2, "{removed}");
    assert_eq!(d.ok(&["images", "-aq"]).lines().count(), 1);
    // A build context outside the context dir is sent along with it.
    let outside = PathBuf::from(&dir)
        .parent()
        .unwrap()
        .join("Outside.Dockerfile");
    std::fs::write(&outside, "FROM busybox:test\nRUN echo out > /out\n").unwrap();
    d.berth_ok(&[
        "build",
        "-f",
        &outside.display().to_string(),
        "-t",
        "outside:1",
        &dir,
    ]);
    std::fs::remove_file(&outside).unwrap();
    assert_eq!(d.ok(&["run", "--rm", "outside:1", "cat", "/out"]), "out\n");
}

#[test]
fn builder_prune_forgets_the_cache_and_keeps_tagged_images() {
    let d = Daemon::start();
    d.import_busybox();
    let ctx = context(&[(
        "Dockerfile",
        "FROM busybox:test\nRUN echo a > /a\nRUN --mount=type=cache,target=/c echo b > /c/b\n",
    )]);
    built(&d, &["-t", "pruned:1"], ctx.path());
    let id = image_id(&d, "pruned:1");
    let cache_row = |d: &Daemon| {
        let df = d.ok(&["system", "df"]);
        let row = df
            .lines()
            .find(|l| l.starts_with("Build Cache"))
            .unwrap_or_default()
            .to_owned();
        row.split_whitespace()
            .nth(2)
            .unwrap_or_default()
            .parse::<usize>()
            .unwrap_or(usize::MAX)
    };
    assert_eq!(
        cache_row(&d),
        2,
        "two RUN steps: {}",
        d.ok(&["system", "df"])
    );
    let out = d.ok(&["builder", "prune", "-af"]);
    assert!(out.contains("Total reclaimed space"), "{out}");
    assert_eq!(image_id(&d, "pruned:1"), id, "prune removed a tagged image");
    assert_eq!(cache_row(&d), 0, "{}", d.ok(&["system", "df"]));
    let again = built(&d, &[], ctx.path());
    assert!(
        cached_steps(&again).is_empty(),
        "the cache survived its prune: {again}"
    );
}

#[test]
fn copy_never_reads_outside_the_context_through_symlinks() {
    let d = Daemon::start();
    d.import_busybox();
    let ctx = context(&[
        ("Dockerfile", "FROM busybox:test\nCOPY link /got\n"),
        ("inside.txt", "inside\n"),
    ]);
    let secret = ctx
        .path()
        .parent()
        .unwrap()
        .join(format!("berth-secret-{}", std::process::id()));
    std::fs::write(&secret, "host secret\n").unwrap();
    // An absolute link to a host file resolves inside the context: nothing there.
    std::os::unix::fs::symlink(&secret, ctx.path().join("link")).unwrap();
    let (code, out, err) = docker_build(&d, &["-t", "links:1"], ctx.path());
    assert_ne!(code, Some(0), "{out}");
    assert!(err.contains("file not found in build context"), "{err}");
    // A relative link that climbs out stops at the context's root.
    std::fs::remove_file(ctx.path().join("link")).unwrap();
    std::os::unix::fs::symlink("../../../../inside.txt", ctx.path().join("link")).unwrap();
    built(&d, &["-t", "links:1"], ctx.path());
    assert_eq!(d.ok(&["run", "--rm", "links:1", "cat", "/got"]), "inside\n");
    std::fs::remove_file(&secret).unwrap();
}

#[test]
fn heredocs_run_as_scripts_and_become_files() {
    let d = Daemon::start();
    d.import_busybox();
    let df = "FROM busybox:test
ARG WHO=heredoc
RUN <<EOF
echo first > /script.out
echo second >> /script.out
EOF
RUN cat > /fed.txt <<DATA
fed ${WHO}
DATA
COPY <<EOF /etc/greeting
hello ${WHO}
EOF
COPY <<-'RAW' <<TWO /docs/
\tkept $WHO
\tRAW
two
TWO
";
    let ctx = context(&[("Dockerfile", df)]);
    built(&d, &["-t", "heredoc:1"], ctx.path());
    let cat = |p: &str| d.ok(&["run", "--rm", "heredoc:1", "cat", p]);
    assert_eq!(cat("/script.out"), "first\nsecond\n");
    assert_eq!(cat("/fed.txt"), "fed heredoc\n");
    assert_eq!(cat("/etc/greeting"), "hello heredoc\n");
    assert_eq!(
        cat("/docs/RAW"),
        "kept $WHO\n",
        "a quoted delimiter expands nothing"
    );
    assert_eq!(cat("/docs/TWO"), "two\n");
}

/// An HTTP server on 127.0.0.1 answering every request with the current
/// `body` (a file the test may change).
fn file_server(body: std::sync::Arc<std::sync::Mutex<String>>) -> String {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for s in listener.incoming() {
            let Ok(mut s) = s else { return };
            let mut req = [0u8; 2048];
            let _ = s.read(&mut req);
            let b = body.lock().unwrap().clone();
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{b}",
                b.len()
            );
        }
    });
    format!("http://{addr}")
}

#[test]
fn add_downloads_urls_and_caches_them_by_content() {
    let d = Daemon::start();
    d.import_busybox();
    let body = std::sync::Arc::new(std::sync::Mutex::new("#!/bin/sh\necho v1\n".to_owned()));
    let base = file_server(body.clone());
    let df = format!(
        "FROM busybox:test\nADD {base}/dl/tool.sh /opt/\nRUN stat -c %a /opt/tool.sh > /mode\n"
    );
    let ctx = context(&[("Dockerfile", &df)]);
    built(&d, &["-t", "url:1"], ctx.path());
    assert_eq!(
        d.ok(&["run", "--rm", "url:1", "cat", "/opt/tool.sh"]),
        "#!/bin/sh\necho v1\n"
    );
    assert_eq!(d.ok(&["run", "--rm", "url:1", "cat", "/mode"]), "600\n");
    let again = built(&d, &["-t", "url:1"], ctx.path());
    assert_eq!(
        cached_steps(&again),
        [2, 3],
        "same content, same key: {again}"
    );
    *body.lock().unwrap() = "#!/bin/sh\necho v2\n".to_owned();
    let changed = built(&d, &["-t", "url:1"], ctx.path());
    assert!(cached_steps(&changed).is_empty(), "{changed}");
    // A server nobody runs: a clear error, nothing built.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    write(
        ctx.path(),
        "Dockerfile",
        &format!("FROM busybox:test\nADD http://127.0.0.1:{port}/x.tar /x\n"),
    );
    let (code, _, err) = docker_build(&d, &["-t", "url:2"], ctx.path());
    assert_eq!(code, Some(1));
    assert!(
        err.contains(&format!(
            "ADD failed: failed to GET http://127.0.0.1:{port}/x.tar"
        )),
        "{err}"
    );
}

#[test]
fn cache_from_reuses_the_steps_of_a_loaded_image() {
    let first = Daemon::start();
    first.import_busybox();
    let ctx = context(&[("Dockerfile", CACHED), ("a.txt", "A\n"), ("b.txt", "B\n")]);
    built(&first, &["-t", "shipped:1"], ctx.path());
    let saved = first.docker(&["save", "shipped:1", "busybox:test"]).stdout;
    let layers = |d: &Daemon, name: &str| {
        d.ok(&[
            "image",
            "inspect",
            "--format",
            "{{json .RootFS.Layers}}",
            name,
        ])
    };
    let want = layers(&first, "shipped:1");
    drop(first);
    // Other machines: the base and the shipped image loaded, no cache.
    let load = || {
        let d = Daemon::start();
        let out = d.docker_with_input(&["load"], &saved);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        d
    };
    let without = load();
    let plain = built(&without, &["-t", "plain:1"], ctx.path());
    assert!(cached_steps(&plain).is_empty(), "{plain}");
    drop(without);
    let d = load();
    let ctx_arg = ctx.path().display().to_string();
    let args = [
        "build",
        "--progress=plain",
        "--cache-from",
        "shipped:1",
        "-t",
        "reused:1",
        &ctx_arg,
    ];
    let out = d.berth_ok(&args);
    assert_eq!(cached_steps(&out), [2, 3, 4, 5, 6], "{out}");
    assert_eq!(
        layers(&d, "reused:1"),
        want,
        "restored steps have the shipped layers"
    );
    assert_eq!(d.ok(&["run", "--rm", "reused:1"]), "A\nB\n");
}

#[test]
fn copy_link_writes_a_layer_of_its_own() {
    let d = Daemon::start();
    d.import_busybox();
    let df = "FROM busybox:test\nRUN ln -s /etc /linked\nCOPY a.txt /linked/plain.txt\nCOPY --link a.txt /linked/linked.txt\n";
    let ctx = context(&[("Dockerfile", df), ("a.txt", "A\n")]);
    built(&d, &["-t", "link:1"], ctx.path());
    let ls = |p: &str| d.ok(&["run", "--rm", "link:1", "ls", p]);
    // Without --link the copy follows the image's symlink; with it, the
    // layer knows nothing of the image below and holds a directory.
    assert_eq!(ls("/etc/plain.txt"), "/etc/plain.txt\n");
    assert_eq!(ls("/linked/linked.txt"), "/linked/linked.txt\n");
    let etc = d.ok(&["run", "--rm", "link:1", "ls", "/etc"]);
    assert!(!etc.contains("linked.txt"), "{etc}");
}

#[test]
fn a_daemon_killed_during_a_step_removes_the_step_when_it_comes_back() {
    let mut d = Daemon::start();
    d.import_busybox();
    let ctx = context(&[(
        "Dockerfile",
        "FROM busybox:test\nRUN echo started; sleep 600\n",
    )]);
    let ctx_arg = ctx.path().display().to_string();
    let mut child = d
        .berth_command(&["build", "--progress=plain", "-t", "orphan:1", &ctx_arg])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    assert!(lines.any(|l| l.unwrap() == "started"), "the step never ran");
    d.kill9();
    child.wait().unwrap();
    d.restart();
    assert_eq!(
        d.ok(&["ps", "-aq"]),
        "",
        "the interrupted step's container is left"
    );
    assert_eq!(d.mounts_under(), 0, "a mount is left");
    assert!(d
        .fails(&["image", "inspect", "orphan:1"])
        .contains("o such image"));
}

#[test]
fn docker_build_takes_a_dockerfile_from_outside_the_context() {
    // The docker CLI sends such a Dockerfile appended to the context,
    // with no end blocks (nor padding after its last entry).
    let d = Daemon::start();
    d.import_busybox();
    let ctx = context(&[("me.txt", "inside\n")]);
    let outside = context(&[("Dockerfile.out", "FROM busybox:test\nCOPY me.txt /me.txt\n")]);
    let file = outside.path().join("Dockerfile.out").display().to_string();
    built(&d, &["-t", "outside:1", "-f", &file], ctx.path());
    let got = d.ok(&["run", "--rm", "outside:1", "cat", "/me.txt"]);
    assert_eq!(got, "inside\n");
}
