//! Privileged: attaching to containers through `berth daemon`, judged by
//! the real `docker` CLI — foreground `docker run` (stdout and stderr kept
//! apart, the exit code), `-i` with stdin, `-t` with a terminal sized like
//! the client's, `docker attach`, `docker start -a -i` — and the raw API
//! (logs replay, resize errors).

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use common::daemon::Daemon;

#[test]
fn foreground_run_streams_stdout_and_stderr_apart_and_exits_with_the_code() {
    let d = Daemon::start();
    d.import_busybox();
    let out = d.docker(&[
        "run",
        "--rm",
        "busybox:test",
        "sh",
        "-c",
        "echo out; echo err >&2; echo more; exit 3",
    ]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "out\nmore\n");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "err\n");
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(d.ok(&["ps", "-aq"]).trim(), "", "--rm removed it");
}

#[test]
fn run_with_stdin_feeds_the_container_and_closes_it_at_the_end() {
    let d = Daemon::start();
    d.import_busybox();
    let input: Vec<u8> = (0..2000)
        .map(|i| format!("line {i}\n"))
        .collect::<String>()
        .into();
    let out = d.docker_with_input(
        &[
            "run",
            "-i",
            "--rm",
            "busybox:test",
            "sh",
            "-c",
            "cat; echo done",
        ],
        &input,
    );
    let mut expected = input.clone();
    expected.extend_from_slice(b"done\n");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout.len(), expected.len());
    assert!(out.stdout == expected, "stdin came back whole, then EOF");
}

#[test]
fn run_with_a_tty_gets_a_terminal_of_the_clients_size() {
    let d = Daemon::start();
    d.import_busybox();
    // script(1) gives the docker CLI a terminal of its own.
    let inner =
        "stty cols 123 rows 45; docker run -t --rm busybox:test sh -c 'stty size; tty; echo $TERM'";
    let out = d
        .command("script", &["-qec", inner, "/dev/null"])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    // Line ends pass through two terminals: count lines, not CRs.
    let text = String::from_utf8_lossy(&out.stdout).replace('\r', "");
    assert!(text.contains("45 123\n"), "{text:?}");
    assert!(text.contains("/dev/pts/0\n"), "{text:?}");
    assert!(text.contains("xterm\n"), "{text:?}");
    assert!(out.status.success());
}

#[test]
fn docker_attach_and_start_attach_reach_stdin_and_output() {
    let d = Daemon::start();
    d.import_busybox();
    d.ok(&[
        "run",
        "-d",
        "-i",
        "--name",
        "reader",
        "busybox:test",
        "sh",
        "-c",
        "read l; echo \"got $l\"; exit 4",
    ]);
    let out = d.docker_with_input(&["attach", "reader"], b"hi\n");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "got hi\n");
    assert_eq!(out.status.code(), Some(4));
    d.ok(&[
        "create",
        "-i",
        "--name",
        "once",
        "busybox:test",
        "sh",
        "-c",
        "read l; echo \"got $l\"",
    ]);
    let out = d.docker_with_input(&["start", "-a", "-i", "once"], b"x\n");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "got x\n");
    assert!(out.status.success());
    // Started again, attached again: a new run, the same stdin rules.
    let out = d.docker_with_input(&["start", "-a", "-i", "once"], b"y\n");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "got y\n");
}

#[test]
fn the_api_replays_logs_on_attach_and_checks_resizes() {
    let d = Daemon::start();
    d.import_busybox();
    let id = d.ok(&["create", "--name", "said", "busybox:test", "echo", "said"]);
    let id = id.trim();
    let (status, _, _) = d.http("POST", &format!("/containers/{id}/resize?h=10&w=10"));
    assert!(status.contains("409"), "not running: {status}");
    d.ok(&["start", "-a", "said"]);
    let (status, headers, body) = d.http(
        "POST",
        &format!("/v1.41/containers/{id}/attach?logs=1&stream=0&stdout=1"),
    );
    assert!(status.contains("200"), "{status}");
    assert!(
        headers.contains("application/vnd.docker.raw-stream"),
        "{headers}"
    );
    assert_eq!(
        dechunk(&body).as_bytes(),
        b"\x01\x00\x00\x00\x00\x00\x00\x05said\n"
    );
    d.ok(&["run", "-d", "--name", "up", "busybox:test", "sleep", "100"]);
    let (status, _, body) = d.http("POST", "/containers/up/resize?h=10&w=10");
    assert!(
        status.contains("409") && body.contains("without -t"),
        "{status} {body}"
    );
    let (status, _, body) = d.http("POST", "/containers/up/resize?h=-1&w=10");
    assert!(
        status.contains("400") && body.contains("invalid h"),
        "{status} {body}"
    );
    let (status, _, _) = d.http("POST", "/containers/nosuch/attach?stream=1&stdout=1");
    assert!(status.contains("404"), "{status}");
    d.ok(&["rm", "-f", "up"]);
}

/// The payload of an HTTP/1.1 chunked body.
fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap();
        if n == 0 {
            break;
        }
        out.push_str(&rest[..n]);
        body = &rest[n + 2..];
    }
    out
}

#[test]
fn logs_follow_until_the_exit_with_tail_and_timestamps() {
    let d = Daemon::start();
    d.import_busybox();
    d.ok(&[
        "run",
        "-d",
        "--name",
        "talker",
        "busybox:test",
        "sh",
        "-c",
        "echo first; echo oops >&2; sleep 0.3; echo second",
    ]);
    // Follows while the container runs; ends when it exits.
    let out = d.docker(&["logs", "-f", "talker"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "first\nsecond\n");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "oops\n");
    assert_eq!(d.ok(&["logs", "--tail", "1", "talker"]), "second\n");
    let stamped = d.ok(&["logs", "-t", "talker"]);
    let first = stamped.lines().next().unwrap();
    let (time, text) = first.split_once(' ').unwrap();
    assert_eq!(text, "first");
    assert!(
        time.ends_with('Z') && time.len() == 30,
        "RFC 3339 with nanoseconds: {time}"
    );
    d.ok(&["rm", "talker"]);
}
