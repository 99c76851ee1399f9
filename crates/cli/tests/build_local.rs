//! Privileged: `berth build` of a directory on the daemon's machine, read
//! in place by the daemon (no tar). The cache keys are the tar's: a
//! context built by `docker build` (a tar) is all cache hits for `berth
//! build` and back; an edit invalidates from the COPY that reads it, a
//! touch of mtimes nothing; `.dockerignore` holds; a bind mount of the
//! context sees what a tar would hold, read-only; a directory the daemon sees differently (the client in
//! another mount namespace) makes the CLI send the tar after all.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::path::Path;

use common::daemon::Daemon;

fn write(dir: &Path, path: &str, content: &str) {
    let p = dir.join(path);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, content).unwrap();
}

/// `berth build` with `args`; returns its stdout (which must succeed).
fn berth_build(d: &Daemon, args: &[&str], ctx: &Path) -> String {
    let mut all = vec!["build", "--progress", "plain"];
    all.extend(args);
    let ctx = ctx.display().to_string();
    all.push(&ctx);
    d.berth_ok(&all)
}

fn docker_build(d: &Daemon, args: &[&str], ctx: &Path) -> String {
    let mut all = vec!["build"];
    all.extend(args);
    let ctx = ctx.display().to_string();
    all.push(&ctx);
    let out = d
        .command("docker", &all)
        .env("DOCKER_BUILDKIT", "0")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).unwrap()
}

fn hits(out: &str) -> usize {
    out.matches("Using cache").count()
}

const DOCKERFILE: &str = "FROM busybox:test\n\
    COPY conf /etc/app/\n\
    RUN cat /etc/app/a.conf > /seen\n\
    COPY src /src\n\
    RUN ls /src > /listing\n";

fn project(dir: &Path) {
    write(dir, "Dockerfile", DOCKERFILE);
    write(dir, ".dockerignore", "src/*.log\n");
    write(dir, "conf/a.conf", "alpha\n");
    write(dir, "src/main.c", "int main() {}\n");
    write(dir, "src/debug.log", "excluded\n");
}

#[test]
fn a_context_read_in_place_keys_the_cache_as_its_tar_does() {
    let d = Daemon::start();
    d.import_busybox();
    let ctx = tempfile::tempdir().unwrap();
    project(ctx.path());
    // Built from the tar first: the in-place build hits every step.
    docker_build(&d, &["-t", "app:tar"], ctx.path());
    let out = berth_build(&d, &["-t", "app:local"], ctx.path());
    assert_eq!(hits(&out), 4, "{out}");
    let id = |t: &str| d.ok(&["image", "inspect", "-f", "{{.Id}}", t]);
    assert_eq!(id("app:tar"), id("app:local"));
    // An edit: the steps from the COPY reading it run again.
    write(ctx.path(), "src/main.c", "int main() { return 1; }\n");
    let out = berth_build(&d, &["-t", "app:local"], ctx.path());
    assert_eq!(hits(&out), 2, "{out}");
    // The same edit through the tar: all hits, so the keys agree again.
    let out = docker_build(&d, &["-t", "app:tar"], ctx.path());
    assert_eq!(hits(&out), 4, "{out}");
    // New mtimes alone (and an excluded file's edit) change nothing.
    let later = std::time::SystemTime::now() + std::time::Duration::from_secs(60);
    for f in ["conf/a.conf", "src/main.c"] {
        let file = std::fs::File::options()
            .write(true)
            .open(ctx.path().join(f))
            .unwrap();
        file.set_modified(later).unwrap();
    }
    write(ctx.path(), "src/debug.log", "still excluded\n");
    let out = berth_build(&d, &["-t", "app:local"], ctx.path());
    assert_eq!(hits(&out), 4, "{out}");
    let listing = d.ok(&["run", "--rm", "app:local", "cat", "/listing"]);
    assert_eq!(listing, "main.c\n", ".dockerignore holds in place");
    // An edit that keeps the size and puts the mtime back is still seen:
    // the ctime moved.
    let path = ctx.path().join("conf/a.conf");
    let before = std::fs::metadata(&path).unwrap().modified().unwrap();
    std::fs::write(&path, "gamma\n").unwrap();
    let file = std::fs::File::options().write(true).open(&path).unwrap();
    file.set_modified(before).unwrap();
    let out = berth_build(&d, &["-t", "app:local"], ctx.path());
    assert_eq!(hits(&out), 0, "{out}");
    assert_eq!(
        d.ok(&["run", "--rm", "app:local", "cat", "/seen"]),
        "gamma\n"
    );
}

#[test]
fn a_bind_mount_of_an_in_place_context_is_a_copy() {
    let d = Daemon::start();
    d.import_busybox();
    let ctx = tempfile::tempdir().unwrap();
    write(
        ctx.path(),
        "Dockerfile",
        "FROM busybox:test\n\
         RUN --mount=type=bind,target=/ctx \
             ls /ctx/data > /listing && ! touch /ctx/data/new 2>/dev/null\n",
    );
    write(ctx.path(), ".dockerignore", "data/secret\n");
    write(ctx.path(), "data/keep.txt", "kept\n");
    write(ctx.path(), "data/secret", "hidden\n");
    berth_build(&d, &["-t", "bind:1"], ctx.path());
    assert_eq!(
        d.ok(&["run", "--rm", "bind:1", "cat", "/listing"]),
        "keep.txt\n"
    );
    assert!(
        !ctx.path().join("data/new").exists(),
        "the step wrote there"
    );
}

#[test]
fn a_client_seeing_another_directory_sends_the_tar() {
    let d = Daemon::start();
    d.import_busybox();
    let real = tempfile::tempdir().unwrap();
    let seen = tempfile::tempdir().unwrap();
    write(
        real.path(),
        "Dockerfile",
        "FROM busybox:test\nCOPY who /who\n",
    );
    write(real.path(), "who", "the daemon's view\n");
    write(
        seen.path(),
        "Dockerfile",
        "FROM busybox:test\nCOPY who /who\n",
    );
    write(seen.path(), "who", "the client's view\n");
    // The client runs in a mount namespace where the path holds another
    // directory: the daemon refuses the name, the CLI sends its tar.
    let berth = env!("CARGO_BIN_EXE_berth");
    let script = format!(
        "mount --bind {} {} && exec {berth} build -q -t ns:1 {}",
        seen.path().display(),
        real.path().display(),
        real.path().display()
    );
    let out = std::process::Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", &script])
        .env("BERTH_HOST", format!("unix://{}", d.socket().display()))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        d.ok(&["run", "--rm", "ns:1", "cat", "/who"]),
        "the client's view\n"
    );
    // The refusal itself, as the API answers it.
    use std::os::unix::fs::MetadataExt as _;
    let ino = std::fs::metadata(real.path()).unwrap().ino() + 1;
    let dev = std::fs::metadata(real.path()).unwrap().dev();
    let remote = format!("berth-local:{dev}:{ino}:{}", real.path().display());
    let (status, _, body) = d.http("POST", &format!("/build?remote={remote}"));
    assert!(status.contains("400"), "{status} {body}");
    assert!(body.contains("not the client's"), "{body}");
}

#[test]
fn the_daemon_reads_the_directory_not_the_client() {
    use std::os::unix::fs::PermissionsExt as _;
    let d = Daemon::start();
    d.import_busybox();
    let ctx = tempfile::tempdir().unwrap();
    write(
        ctx.path(),
        "Dockerfile",
        "FROM busybox:test\nCOPY sealed /sealed\n",
    );
    write(
        ctx.path(),
        "sealed",
        "only root with DAC override reads this\n",
    );
    let sealed = ctx.path().join("sealed");
    std::fs::set_permissions(&sealed, std::fs::Permissions::from_mode(0o000)).unwrap();
    // The client keeps uid 0 (the socket is root's) but loses the
    // capabilities that read a mode-000 file; the daemon has them.
    let client = |send_tar: bool| {
        let mut c = std::process::Command::new("setpriv");
        c.args([
            "--bounding-set=-dac_override,-dac_read_search",
            "--inh-caps=-dac_override,-dac_read_search",
            "--",
            env!("CARGO_BIN_EXE_berth"),
            "build",
            "-q",
            "-t",
            "sealed:1",
        ])
        .arg(ctx.path())
        .env("BERTH_HOST", format!("unix://{}", d.socket().display()));
        if send_tar {
            c.env("BERTH_BUILD_SEND_CONTEXT", "1");
        }
        c.output().unwrap()
    };
    let tar = client(true);
    assert!(!tar.status.success(), "the client read the file: {tar:?}");
    let local = client(false);
    assert!(local.status.success(), "{local:?}");
    assert_eq!(
        d.ok(&["run", "--rm", "sealed:1", "cat", "/sealed"]),
        "only root with DAC override reads this\n"
    );
}
