//! Privileged: terminals. A pty master handed over --console-socket (for
//! create and for exec, as containerd asks), and the pty a foreground `run`
//! relays itself when no socket is given.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::io::Read;
use std::os::fd::OwnedFd;
use std::process::Stdio;

use berth_runtime::console::ConsoleSocket;
use common::{assert_nothing_left, read, wait_exit, Berth, Bundle};
use serde_json::json;

#[test]
fn a_terminal_arrives_over_the_console_socket() {
    let berth = Berth::new();
    let mut bundle = Bundle::new("tty", "[ -t 0 ] && [ -t 1 ] && echo is-a-tty; tty");
    bundle.config["process"]["terminal"] = json!(true);
    bundle.write();
    let console = ConsoleSocket::bind(bundle.path(), &bundle.id).unwrap();
    let socket = console.path().to_path_buf();
    let receiver = std::thread::spawn(move || console.receive_master().unwrap());
    nix::sys::prctl::set_child_subreaper(true).unwrap();
    let status = berth
        .bundle_cmd(
            "create",
            &bundle,
            &["--console-socket", socket.to_str().unwrap()],
        )
        .stdin(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let master = receiver.join().unwrap();
    let pid = i32::try_from(berth.state(&bundle.id)["pid"].as_i64().unwrap()).unwrap();
    berth.ok(&["start", &bundle.id]);
    assert_eq!(wait_exit(pid), 0);
    let text = read_pty(master);
    assert!(text.contains("is-a-tty"), "{text:?}");
    assert!(
        text.contains("/dev/pts/") || text.contains("/dev/console"),
        "{text:?}"
    );
    berth.ok(&["delete", &bundle.id]);
    assert_nothing_left(&berth, &bundle);
}

/// Everything the pty master holds (EIO marks the end once the slave closed).
fn read_pty(master: OwnedFd) -> String {
    let mut file = std::fs::File::from(master);
    let mut out = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(_) => break,
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// runc's foreground behaviour: `process.terminal` without --console-socket
/// gets a pty that the runtime relays to its own stdio.
#[test]
fn run_relays_a_terminal_without_a_console_socket() {
    use std::io::Write;
    let berth = Berth::new();
    let mut bundle = Bundle::new(
        "fgtty",
        "[ -t 0 ] && [ -t 1 ] && echo is-a-tty; read x; echo got-$x; exit 3",
    );
    bundle.config["process"]["terminal"] = json!(true);
    bundle.write();
    let mut child = berth
        .bundle_cmd("run", &bundle, &[])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"abc\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(3));
    // The pty turns \n into \r\n and echoes the input.
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("is-a-tty\r\n") && text.contains("got-abc\r\n"),
        "{text:?}"
    );
    assert_nothing_left(&berth, &bundle);
    // Only the state root's seccomp cache stays (shared by containers).
    let leftovers: Vec<_> = std::fs::read_dir(berth.root.path())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name() != ".seccomp")
        .collect();
    assert!(leftovers.is_empty(), "console socket left: {leftovers:?}");
}

/// containerd's `exec -t`: a detached exec whose pty master arrives over
/// the console socket.
#[test]
fn exec_with_a_terminal_over_the_console_socket() {
    let berth = Berth::new();
    let bundle = Bundle::new("exectty", "sleep 1000");
    berth.start_new(&bundle);
    let console = ConsoleSocket::bind(bundle.path(), "exec").unwrap();
    let socket = console.path().to_path_buf();
    let receiver = std::thread::spawn(move || console.receive_master().unwrap());
    let pid_file = bundle.path().join("exec.pid");
    let status = berth
        .cmd()
        .args([
            "exec",
            "--detach",
            "--tty",
            "--console-socket",
            socket.to_str().unwrap(),
            "--pid-file",
            pid_file.to_str().unwrap(),
            &bundle.id,
            "sh",
            "-c",
            "[ -t 0 ] && echo exec-has-a-tty",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let master = receiver.join().unwrap();
    let exec_pid: i32 = read(&pid_file).trim().parse().unwrap();
    assert_eq!(wait_exit(exec_pid), 0);
    let text = read_pty(master);
    assert!(text.contains("exec-has-a-tty"), "{text:?}");
    berth.ok(&["delete", "--force", &bundle.id]);
    assert_nothing_left(&berth, &bundle);
}
