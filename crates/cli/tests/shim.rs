//! Privileged: `berth shim` supervising a container on its own — the
//! start-up handshake, json-file logs, the exit status file, the control
//! socket (state, kill, wait), and cleanup.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use common::{assert_nothing_left, Berth, Bundle};
use serde_json::Value;

struct Shim {
    child: Child,
    dir: tempfile::TempDir,
    handshake: String,
}

impl Shim {
    fn spawn(berth: &Berth, bundle: &Bundle) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("berth-shim-")
            .tempdir()
            .unwrap();
        Self::spawn_in(berth, bundle, dir)
    }

    fn spawn_in(berth: &Berth, bundle: &Bundle, dir: tempfile::TempDir) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_berth"))
            .arg("shim")
            .args(["--id", &bundle.id])
            .arg("--bundle")
            .arg(bundle.path())
            .arg("--runtime-root")
            .arg(berth.root.path())
            .arg("--dir")
            .arg(dir.path())
            .arg("--log-path")
            .arg(dir.path().join("container.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap();
        let mut handshake = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut handshake)
            .unwrap();
        Self {
            child,
            dir,
            handshake,
        }
    }

    fn pid(&self) -> i32 {
        self.handshake
            .strip_prefix("ready ")
            .unwrap_or_else(|| panic!("handshake: {}", self.handshake))
            .trim()
            .parse()
            .unwrap()
    }

    fn log(&self) -> Vec<(String, String)> {
        std::fs::read_to_string(self.dir.path().join("container.log"))
            .unwrap_or_default()
            .lines()
            .map(|l| {
                let v: Value = serde_json::from_str(l).unwrap();
                (
                    v["stream"].as_str().unwrap().to_owned(),
                    v["log"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("control.sock")
    }

    fn ask(&self, request: &str) -> Value {
        let mut s = UnixStream::connect(self.socket()).unwrap();
        writeln!(s, "{request}").unwrap();
        let mut line = String::new();
        BufReader::new(s).read_line(&mut line).unwrap();
        serde_json::from_str(&line).unwrap()
    }

    fn exit_file(&self) -> Value {
        serde_json::from_slice(&std::fs::read(self.dir.path().join("exit.json")).unwrap()).unwrap()
    }
}

#[test]
fn output_goes_to_a_json_file_log_and_the_exit_status_is_recorded() {
    let berth = Berth::new();
    let bundle = Bundle::new("shim-out", "echo out; echo err >&2; printf partial; exit 3");
    bundle.write();
    let mut shim = Shim::spawn(&berth, &bundle);
    assert!(shim.pid() > 0);
    let status = shim.child.wait().unwrap();
    assert_eq!(
        status.code(),
        Some(3),
        "the shim exits with the container's code"
    );
    let log = shim.log();
    assert!(log.contains(&("stdout".into(), "out\n".into())), "{log:?}");
    assert!(log.contains(&("stderr".into(), "err\n".into())), "{log:?}");
    assert!(
        log.contains(&("stdout".into(), "partial".into())),
        "{log:?}"
    );
    assert_eq!(shim.exit_file()["exit_code"], 3);
    assert!(!shim.socket().exists(), "control socket removed");
    assert_nothing_left(&berth, &bundle);
}

#[test]
fn the_control_socket_reports_kills_and_waits() {
    let berth = Berth::new();
    let bundle = Bundle::new(
        "shim-ctl",
        "trap 'exit 7' TERM; echo up; while true; do sleep 0.1; done",
    );
    bundle.write();
    let mut shim = Shim::spawn(&berth, &bundle);
    let pid = shim.pid();
    // An init ignores signals it has no handler for: kill only once the
    // trap is set (the script prints "up" after setting it).
    while !shim.log().contains(&("stdout".into(), "up\n".into())) {
        std::thread::yield_now();
    }
    let state = shim.ask(r#"{"op":"state"}"#);
    assert_eq!(
        state,
        serde_json::json!({"result": "state", "pid": pid, "running": true})
    );
    // A waiter connected before the kill hears the exit.
    let mut waiter = UnixStream::connect(shim.socket()).unwrap();
    writeln!(waiter, r#"{{"op":"wait"}}"#).unwrap();
    let bad = shim.ask(r#"{"op":"kill","signal":999}"#);
    assert_eq!(bad["result"], "error");
    assert!(bad["message"]
        .as_str()
        .unwrap()
        .contains("invalid signal 999"));
    assert_eq!(shim.ask(r#"{"op":"kill","signal":15}"#)["result"], "ok");
    let mut line = String::new();
    BufReader::new(&mut waiter).read_line(&mut line).unwrap();
    let exited: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(exited["result"], "exited");
    assert_eq!(exited["exit_code"], 7, "the trap ran: {exited}");
    assert_eq!(shim.child.wait().unwrap().code(), Some(7));
    assert_eq!(shim.exit_file()["exit_code"], 7);
    assert!(shim.log().contains(&("stdout".into(), "up\n".into())));
    assert_nothing_left(&berth, &bundle);
}

#[test]
fn a_bad_bundle_is_reported_in_the_handshake_and_leaves_nothing() {
    let berth = Berth::new();
    let mut bundle = Bundle::new("shim-bad", "true");
    bundle.config["process"]["capabilities"]["bounding"] = serde_json::json!(["CAP_NOT_A_THING"]);
    bundle.write();
    let mut shim = Shim::spawn(&berth, &bundle);
    assert!(shim.handshake.starts_with("error "), "{}", shim.handshake);
    assert!(
        shim.handshake.contains("CAP_NOT_A_THING"),
        "{}",
        shim.handshake
    );
    assert_eq!(shim.child.wait().unwrap().code(), Some(1));
    assert_nothing_left(&berth, &bundle);
}

#[test]
fn a_failure_after_create_deletes_the_waiting_init() {
    let berth = Berth::new();
    let bundle = Bundle::new("shim-late", "true");
    bundle.write();
    let dir = tempfile::Builder::new()
        .prefix("berth-shim-")
        .tempdir()
        .unwrap();
    // A directory where the control socket goes: binding it fails after the
    // container was created.
    std::fs::create_dir(dir.path().join("control.sock")).unwrap();
    let mut shim = Shim::spawn_in(&berth, &bundle, dir);
    assert!(
        shim.handshake.starts_with("error setting up supervision"),
        "{}",
        shim.handshake
    );
    assert_eq!(shim.child.wait().unwrap().code(), Some(1));
    assert_nothing_left(&berth, &bundle);
}
