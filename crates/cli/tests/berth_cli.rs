//! Privileged: the `berth` CLI as a client of `berth daemon` — the same
//! scenarios as with the docker CLI (run in the foreground and detached,
//! stdin, a terminal, ps/logs/inspect/stop/wait/rm, images, save | load,
//! tag/rmi, events), docker's output and exit codes, and a daemon started
//! by the CLI itself when none answers.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::daemon::{output_with_input, unix_now, Daemon};

fn image(d: &Daemon) {
    let tar = d.busybox_tar();
    let id = d.berth_ok(&["import", tar.to_str().unwrap(), "busybox:test"]);
    assert!(id.starts_with("sha256:") && id.trim().len() == 71, "{id}");
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn containers_run_list_log_stop_and_go() {
    let d = Daemon::start();
    image(&d);
    let out = d.berth(&[
        "run",
        "--rm",
        "busybox:test",
        "sh",
        "-c",
        "echo out; echo err >&2; exit 3",
    ]);
    assert_eq!(
        (text(&out.stdout), text(&out.stderr)),
        ("out\n".into(), "err\n".into())
    );
    assert_eq!(out.status.code(), Some(3));
    let id = d.berth_ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "-e",
        "X=1",
        "-l",
        "tier=front",
        "busybox:test",
        "sh",
        "-c",
        "echo $X; sleep 100",
    ]);
    assert_eq!(id.trim().len(), 64, "{id}");
    let table = d.berth_ok(&["ps"]);
    let mut lines = table.lines();
    let header = lines.next().unwrap();
    assert!(
        header.starts_with("CONTAINER ID   IMAGE          COMMAND"),
        "{table}"
    );
    let row = lines.next().unwrap();
    assert!(
        row.starts_with(&id[..12]) && row.ends_with("web"),
        "{table}"
    );
    assert!(
        row.contains("\"sh -c 'echo $X; sle…\"") && row.contains("Up "),
        "{table}"
    );
    let json: serde_json::Value =
        serde_json::from_str(d.berth_ok(&["ps", "--format", "json"]).trim()).unwrap();
    assert_eq!(
        (json["Names"].as_str(), json["State"].as_str()),
        (Some("web"), Some("running"))
    );
    let picked = d.berth_ok(&[
        "ps",
        "-a",
        "--filter",
        "label=tier=front",
        "--format",
        "{{.Names}}",
    ]);
    assert_eq!(picked, "web\n");
    assert_eq!(d.berth_ok(&["ps", "-q"]).trim(), &id[..12]);
    while d.berth_ok(&["logs", "web"]) != "1\n" {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let status = d.berth_ok(&["inspect", "-f", "{{.State.Status}} {{.Name}}", "web"]);
    assert_eq!(status, "running /web\n");
    assert_eq!(d.berth_ok(&["stop", "-t", "1", "web"]), "web\n");
    assert_eq!(d.berth_ok(&["wait", "web"]), "137\n");
    assert!(d.berth_ok(&["ps", "-a"]).contains("Exited (137)"));
    assert_eq!(d.berth_ok(&["rm", "web"]), "web\n");
    assert_eq!(d.berth_ok(&["ps", "-aq"]), "");
}

#[test]
fn stdin_and_a_terminal_reach_the_container() {
    let d = Daemon::start();
    image(&d);
    let out = output_with_input(
        d.berth_command(&[
            "run",
            "-i",
            "--rm",
            "busybox:test",
            "sh",
            "-c",
            "cat; echo done",
        ]),
        b"hello\n",
    );
    assert_eq!(text(&out.stdout), "hello\ndone\n");
    d.berth_ok(&[
        "create",
        "-i",
        "--name",
        "once",
        "busybox:test",
        "sh",
        "-c",
        "read l; echo \"got $l\"",
    ]);
    let out = output_with_input(d.berth_command(&["start", "-a", "-i", "once"]), b"x\n");
    assert_eq!(text(&out.stdout), "got x\n");
    let berth = env!("CARGO_BIN_EXE_berth");
    let inner =
        format!("stty cols 91 rows 33; {berth} run -t --rm busybox:test sh -c 'stty size; tty'");
    let out = Command::new("script")
        .args(["-qec", &inner, "/dev/null"])
        .env("BERTH_HOST", format!("unix://{}", d.socket().display()))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let shown = text(&out.stdout).replace('\r', "");
    assert!(
        shown.contains("33 91\n") && shown.contains("/dev/pts/0\n"),
        "{shown:?}"
    );
    d.berth_ok(&["rm", "once"]);
}

#[test]
fn images_save_load_tag_and_events() {
    let d = Daemon::start();
    let since = d.berth_ok(&["version"]); // the daemon answers
    assert!(since.contains("Server: berth"), "{since}");
    let t0 = unix_now();
    image(&d);
    let images = d.berth_ok(&["images"]);
    assert!(
        images.starts_with("REPOSITORY   TAG       IMAGE ID"),
        "{images}"
    );
    assert!(
        images
            .lines()
            .nth(1)
            .unwrap()
            .starts_with("busybox      test      "),
        "{images}"
    );
    let archive = d.dir.path().join("saved.tar");
    d.berth_ok(&["save", "-o", archive.to_str().unwrap(), "busybox:test"]);
    let out = d.berth_ok(&["rmi", "busybox:test"]);
    assert!(
        out.starts_with("Untagged: busybox:test\nDeleted: sha256:"),
        "{out}"
    );
    assert_eq!(
        d.berth_ok(&["load", "-i", archive.to_str().unwrap()]),
        "Loaded image: busybox:test\n"
    );
    // A pipe between two clients: the save streams while the load reads.
    let mut save = d
        .berth_command(&["save", "busybox:test"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let load = d
        .berth_command(&["load"])
        .stdin(save.stdout.take().unwrap())
        .output()
        .unwrap();
    assert!(save.wait().unwrap().success());
    assert_eq!(text(&load.stdout), "Loaded image: busybox:test\n");
    d.berth_ok(&["tag", "busybox:test", "busybox:v2"]);
    assert_eq!(
        d.berth_ok(&["images", "-q"]).lines().count(),
        1,
        "one image, two tags"
    );
    assert_eq!(d.berth_ok(&["rmi", "busybox:v2"]), "Untagged: busybox:v2\n");
    let events = d.berth_ok(&[
        "events",
        "--since",
        &t0,
        "--until",
        &unix_now(),
        "--filter",
        "type=image",
        "--format",
        "{{.Action}} {{.Actor.Attributes.name}}",
    ]);
    assert!(
        events.contains("import busybox:test\n") && events.contains("untag busybox:v2\n"),
        "{events}"
    );
}

#[test]
fn failures_read_and_exit_like_dockers() {
    let d = Daemon::start();
    image(&d);
    // Not here, and its registry (nothing listens on port 1) is not there.
    let out = d.berth(&["run", "127.0.0.1:1/nosuch:image", "true"]);
    assert_eq!(out.status.code(), Some(125));
    let err = text(&out.stderr);
    assert!(err.contains("Unable to find image '127.0.0.1:1/nosuch:image' locally"));
    assert!(err.contains("Connection refused"), "{err}");
    d.berth_ok(&[
        "run",
        "-d",
        "--name",
        "taken",
        "busybox:test",
        "sleep",
        "100",
    ]);
    let out = d.berth(&["run", "--name", "taken", "busybox:test", "true"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(
        text(&out.stderr).contains(
            "Error response from daemon: Conflict. The container name \"/taken\" is already in use"
        ),
        "{}",
        text(&out.stderr)
    );
    let out = d.berth(&["rm", "taken"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("cannot remove a running container"));
    let out = d.berth(&["run", "-m", "12x", "busybox:test", "true"]);
    assert!(
        text(&out.stderr).contains("invalid size: '12x'"),
        "{}",
        text(&out.stderr)
    );
    let out = d.berth(&["logs", "nosuch"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("No such container: nosuch"));
    let out = d.berth(&["-H", "unix:///nonexistent/berth.sock", "ps"]);
    assert!(text(&out.stderr)
        .contains("Cannot connect to the berth daemon at unix:///nonexistent/berth.sock"));
    d.berth_ok(&["rm", "-f", "taken"]);
}

/// With no daemon on the default socket, the CLI starts one. Run in a
/// private mount namespace with fresh /run and /var/lib, so the default
/// paths are the test's own; the daemon is ended through its pid file.
#[test]
fn the_cli_starts_a_daemon_when_none_answers() {
    let d = Daemon::start();
    let tar = d.busybox_tar();
    let berth = env!("CARGO_BIN_EXE_berth");
    let script = format!(
        "set -e; mount -t tmpfs tmpfs /run; mount -t tmpfs tmpfs /var/lib; \
         {berth} import {tar} busybox:auto >/dev/null; \
         {berth} run --rm busybox:auto echo hello from an auto-started daemon; \
         test -S /run/berth/berth.sock; pid=$(cat /run/berth/berth.pid); \
         kill $pid; while kill -0 $pid 2>/dev/null; do sleep 0.05; done; echo stopped",
        tar = tar.display()
    );
    let out = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", &script])
        .env_remove("BERTH_HOST")
        .output()
        .unwrap();
    assert_eq!(
        text(&out.stdout),
        "hello from an auto-started daemon\nstopped\n",
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn export_writes_the_containers_filesystem_with_its_changes() {
    let d = Daemon::start();
    image(&d);
    d.berth_ok(&[
        "run",
        "--name",
        "changed",
        "busybox:test",
        "sh",
        "-c",
        "echo data > /tmp/file; rm /bin/true",
    ]);
    let tar = d.dir.path().join("export.tar");
    d.berth_ok(&["export", "-o", tar.to_str().unwrap(), "changed"]);
    let listing = Command::new("tar").arg("-tf").arg(&tar).output().unwrap();
    let names = text(&listing.stdout);
    assert!(
        names
            .lines()
            .any(|l| l.trim_start_matches("./") == "tmp/file"),
        "{names}"
    );
    assert!(
        names
            .lines()
            .any(|l| l.trim_start_matches("./") == "bin/sh"),
        "{names}"
    );
    assert!(
        !names
            .lines()
            .any(|l| l.trim_start_matches("./") == "bin/true"),
        "deleted files stay deleted: {names}"
    );
    let member = names
        .lines()
        .find(|l| l.trim_start_matches("./") == "tmp/file")
        .unwrap();
    let file = Command::new("tar")
        .arg("-xOf")
        .arg(&tar)
        .arg(member)
        .output()
        .unwrap();
    assert_eq!(text(&file.stdout), "data\n");
    // Its changes: 5 bytes of file (and a whiteout, which weighs nothing).
    let size = d.berth_ok(&["ps", "-a", "-s", "--format", "{{.Size}}"]);
    assert!(size.starts_with("5B (virtual 1.98MB)"), "{size}");
    let size = d.ok(&["ps", "-a", "-s", "--format", "{{.Size}}"]);
    assert!(size.starts_with("5B (virtual 1.98MB)"), "{size}");
    // The docker CLI gets the same stream.
    let via_docker = d.docker(&["export", "changed"]);
    assert!(via_docker.status.success());
    assert_eq!(via_docker.stdout, std::fs::read(&tar).unwrap());
    d.berth_ok(&["rm", "changed"]);
    let err = d.berth(&["export", "-o", tar.to_str().unwrap(), "nosuch"]);
    assert!(text(&err.stderr).contains("No such container: nosuch"));
}

#[test]
fn ctrl_p_ctrl_q_detaches_and_the_container_keeps_running() {
    let d = Daemon::start();
    image(&d);
    let berth = env!("CARGO_BIN_EXE_berth");
    let inner = format!("{berth} run -it --name det busybox:test sh -c 'echo ready; sleep 100'");
    let mut child = Command::new("script")
        .args(["-qec", &inner, "/dev/null"])
        .env("BERTH_HOST", format!("unix://{}", d.socket().display()))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // Keys typed once the session runs (before raw mode, the terminal
    // would take Ctrl-Q as flow control).
    let mut out = child.stdout.take().unwrap();
    let mut seen = Vec::new();
    while !String::from_utf8_lossy(&seen).contains("ready") {
        let mut buf = [0u8; 256];
        let n = std::io::Read::read(&mut out, &mut buf).unwrap();
        assert!(n > 0, "the session ended early: {}", text(&seen));
        seen.extend_from_slice(&buf[..n]);
    }
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"\x10\x11").unwrap();
    assert!(
        child.wait().unwrap().success(),
        "detaching is not a failure"
    );
    drop(stdin);
    assert_eq!(
        d.berth_ok(&["inspect", "-f", "{{.State.Status}}", "det"]),
        "running\n"
    );
    d.berth_ok(&["rm", "-f", "det"]);
}
