//! Privileged: `berth shim` supervising a container on its own — the
//! start-up handshake, json-file logs, the exit status file, the control
//! socket (state, kill, wait, start, attach, resize), stdin, a TTY, and
//! cleanup.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, ChildStdout, Command, Stdio};

use common::{assert_nothing_left, Berth, Bundle};
use serde_json::Value;

struct Shim {
    child: Child,
    dir: tempfile::TempDir,
    handshake: String,
    /// The daemon's end of the handshake pipe, held until the start.
    pipe: Option<BufReader<ChildStdout>>,
}

fn shim_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("berth-shim-")
        .tempdir()
        .unwrap()
}

impl Shim {
    /// Spawned and started.
    fn spawn(berth: &Berth, bundle: &Bundle) -> Self {
        let mut shim = Self::created(berth, bundle, shim_dir(), &[]);
        shim.start();
        shim
    }

    /// Spawned: the container is created, waiting for `start`.
    fn created(berth: &Berth, bundle: &Bundle, dir: tempfile::TempDir, flags: &[&str]) -> Self {
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
            .args(flags)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap();
        let mut handshake = String::new();
        let mut pipe = BufReader::new(child.stdout.take().unwrap());
        pipe.read_line(&mut handshake).unwrap();
        Self {
            child,
            dir,
            handshake,
            pipe: Some(pipe),
        }
    }

    fn start(&mut self) {
        if self.handshake.starts_with("created ") {
            assert_eq!(self.ask(r#"{"op":"start"}"#)["result"], "ok");
        }
        self.pipe = None;
    }

    /// An attached connection (after its `ok`).
    fn attach(&self, request: &str) -> UnixStream {
        let mut s = UnixStream::connect(self.socket()).unwrap();
        writeln!(s, "{request}").unwrap();
        let mut answer = Vec::new();
        let mut byte = [0u8];
        while byte[0] != b'\n' {
            std::io::Read::read_exact(&mut s, &mut byte).unwrap();
            answer.push(byte[0]);
        }
        assert_eq!(answer, b"{\"result\":\"ok\"}\n");
        s
    }

    fn pid(&self) -> i32 {
        self.handshake
            .strip_prefix("created ")
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
    let mut shim = Shim::created(&berth, &bundle, dir, &[]);
    assert!(
        shim.handshake.starts_with("error setting up supervision"),
        "{}",
        shim.handshake
    );
    assert_eq!(shim.child.wait().unwrap().code(), Some(1));
    assert_nothing_left(&berth, &bundle);
}

/// Splits Docker's multiplexed stream into (stream, bytes) frames.
fn frames(mut raw: &[u8]) -> Vec<(u8, String)> {
    let mut out = Vec::new();
    while raw.len() >= 8 {
        let len = u32::from_be_bytes(raw[4..8].try_into().unwrap()) as usize;
        out.push((
            raw[0],
            String::from_utf8_lossy(&raw[8..8 + len]).into_owned(),
        ));
        raw = &raw[8 + len..];
    }
    assert!(raw.is_empty(), "a truncated frame");
    out
}

#[test]
fn attached_before_start_a_client_gets_all_output_and_feeds_stdin() {
    let berth = Berth::new();
    let bundle = Bundle::new("shim-attach", "echo first; cat; echo done >&2");
    bundle.write();
    let mut shim = Shim::created(&berth, &bundle, shim_dir(), &["--stdin", "--stdin-once"]);
    let mut out_only = shim.attach(r#"{"op":"attach","stdin":false,"stdout":true,"stderr":false}"#);
    let mut both = shim.attach(r#"{"op":"attach","stdin":true,"stdout":true,"stderr":true}"#);
    shim.start();
    both.write_all(b"hello\n").unwrap();
    // End of input: with StdinOnce the container's stdin closes, cat ends.
    both.shutdown(std::net::Shutdown::Write).unwrap();
    let mut raw = Vec::new();
    std::io::Read::read_to_end(&mut both, &mut raw).unwrap();
    let got = frames(&raw);
    let text = |stream: u8| -> String {
        got.iter()
            .filter(|(s, _)| *s == stream)
            .map(|(_, t)| t.as_str())
            .collect()
    };
    assert_eq!(text(1), "first\nhello\n", "{got:?}");
    assert_eq!(text(2), "done\n", "{got:?}");
    let mut raw = Vec::new();
    std::io::Read::read_to_end(&mut out_only, &mut raw).unwrap();
    assert!(frames(&raw).iter().all(|(s, _)| *s == 1), "stdout only");
    assert_eq!(shim.child.wait().unwrap().code(), Some(0));
    let log = shim.log();
    assert!(
        log.contains(&("stdout".into(), "hello\n".into())),
        "{log:?}"
    );
    assert_nothing_left(&berth, &bundle);
}

#[test]
fn a_tty_container_streams_raw_output_takes_input_and_resizes() {
    let berth = Berth::new();
    let mut bundle = Bundle::new("shim-tty", "read line; stty size; echo \"got $line\"");
    bundle.config["process"]["terminal"] = serde_json::json!(true);
    bundle.write();
    let mut shim = Shim::created(&berth, &bundle, shim_dir(), &["--tty", "--stdin"]);
    let mut conn = shim.attach(r#"{"op":"attach","stdin":true,"stdout":true,"stderr":true}"#);
    assert_eq!(
        shim.ask(r#"{"op":"resize","height":30,"width":100}"#)["result"],
        "ok"
    );
    shim.start();
    conn.write_all(b"hi\n").unwrap();
    let mut raw = Vec::new();
    std::io::Read::read_to_end(&mut conn, &mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw);
    // A terminal: no frame headers, CRLF line ends, the input echoed.
    assert!(text.contains("30 100\r\n"), "{text:?}");
    assert!(text.contains("got hi\r\n"), "{text:?}");
    assert!(!raw.starts_with(&[1, 0, 0, 0]), "raw, not multiplexed");
    assert_eq!(shim.child.wait().unwrap().code(), Some(0));
    let log = shim.log();
    assert!(log.iter().all(|(s, _)| s == "stdout"), "{log:?}");
    assert_nothing_left(&berth, &bundle);
}

#[test]
fn resizing_without_a_tty_is_refused() {
    let berth = Berth::new();
    let bundle = Bundle::new("shim-notty", "true");
    bundle.write();
    let mut shim = Shim::created(&berth, &bundle, shim_dir(), &[]);
    let answer = shim.ask(r#"{"op":"resize","height":30,"width":100}"#);
    assert_eq!(answer["result"], "error");
    assert!(answer["message"].as_str().unwrap().contains("without -t"));
    shim.start();
    assert_eq!(shim.child.wait().unwrap().code(), Some(0));
    assert_nothing_left(&berth, &bundle);
}

#[test]
fn a_daemon_that_dies_before_the_start_leaves_no_container() {
    let berth = Berth::new();
    let bundle = Bundle::new("shim-orphan", "echo never");
    bundle.write();
    let mut shim = Shim::created(&berth, &bundle, shim_dir(), &[]);
    assert!(shim.pid() > 0);
    // The daemon's end of the pipe closes without a start.
    shim.pipe = None;
    assert_eq!(shim.child.wait().unwrap().code(), Some(1));
    assert!(shim.log().is_empty(), "the container never ran");
    assert!(!shim.dir.path().join("exit.json").exists());
    assert_nothing_left(&berth, &bundle);
}
