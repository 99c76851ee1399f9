//! Privileged: bad input gets a precise error (on stderr and as a JSON log
//! line), a non-zero exit, and leaves no state, cgroup or mount behind.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::process::Stdio;

use common::{assert_nothing_left, Berth, Bundle};
use serde_json::{json, Value};

/// Runs `create` with a JSON log; returns (exit code, stderr, log lines).
fn create_logged(berth: &Berth, bundle: &Bundle) -> (i32, String, Vec<Value>) {
    let log = bundle.path().join("runtime.log");
    let out = berth
        .bundle_cmd(
            "create",
            bundle,
            &["--log", log.to_str().unwrap(), "--log-format", "json"],
        )
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let lines = std::fs::read_to_string(&log)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("log line {l:?}: {e}")))
        .collect();
    (
        out.status.code().unwrap(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        lines,
    )
}

/// The error is on stderr and is the last JSON log line, at level error.
fn assert_reported(bundle: &Bundle, code: i32, stderr: &str, log: &[Value], needle: &str) {
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains(needle), "stderr lacks {needle:?}: {stderr}");
    let last = log.last().expect("an error line in the JSON log");
    assert_eq!(last["level"], "error");
    assert!(last["msg"].as_str().unwrap().contains(needle), "{last}");
    assert!(last["time"].is_string());
    let _ = bundle;
}

#[test]
fn malformed_config_is_refused_with_its_position() {
    let berth = Berth::new();
    let bundle = Bundle::new("badjson", "true");
    bundle.write();
    std::fs::write(
        bundle.path().join("config.json"),
        "{\"ociVersion\": \"1.0.2\", \"process\": [",
    )
    .unwrap();
    let (code, stderr, log) = create_logged(&berth, &bundle);
    assert_reported(&bundle, code, &stderr, &log, "config.json");
    assert!(stderr.contains("line 1"), "{stderr}");
    assert_nothing_left(&berth, &bundle);
}

#[test]
fn spec_violations_name_the_field() {
    let berth = Berth::new();
    type Edit = fn(&mut Bundle);
    let cases: [(&str, Edit, &str); 5] = [
        (
            "missing rootfs",
            |b| b.config["root"]["path"] = json!("nowhere"),
            "root.path",
        ),
        (
            "unknown capability",
            |b| {
                b.config["process"]["capabilities"]["bounding"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!("CAP_TELEPORT"))
            },
            "CAP_TELEPORT",
        ),
        (
            "unknown syscall",
            |b| {
                b.config["linux"]["seccomp"]["syscalls"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!({"names": ["warp_drive"], "action": "SCMP_ACT_ALLOW"}))
            },
            "warp_drive",
        ),
        (
            "relative cwd",
            |b| b.config["process"]["cwd"] = json!("work"),
            "process.cwd",
        ),
        (
            "empty args",
            |b| b.config["process"]["args"] = json!([]),
            "process.args",
        ),
    ];
    for (what, edit, needle) in cases {
        let mut bundle = Bundle::new("bad", "true");
        edit(&mut bundle);
        bundle.write();
        let (code, stderr, log) = create_logged(&berth, &bundle);
        assert_reported(&bundle, code, &stderr, &log, needle);
        assert!(stderr.contains("invalid bundle"), "{what}: {stderr}");
        assert_nothing_left(&berth, &bundle);
    }
}

#[test]
fn a_failure_inside_the_container_init_cleans_up() {
    let berth = Berth::new();
    let mut bundle = Bundle::new("noexec", "true");
    bundle.config["process"]["args"] = json!(["/bin/does-not-exist"]);
    bundle.write();
    let (code, stderr, log) = create_logged(&berth, &bundle);
    assert_reported(&bundle, code, &stderr, &log, "does-not-exist");
    assert_nothing_left(&berth, &bundle);
}

#[test]
fn a_duplicate_id_is_refused_and_the_first_container_survives() {
    let berth = Berth::new();
    let bundle = Bundle::new("dup", "sleep 1000");
    berth.create(&bundle);
    let (code, stderr, log) = create_logged(&berth, &bundle);
    assert_reported(&bundle, code, &stderr, &log, "already exists");
    assert_eq!(berth.status(&bundle.id), "created");
    berth.ok(&["delete", &bundle.id]);
    assert_nothing_left(&berth, &bundle);
}

#[test]
fn unknown_containers_and_bad_arguments() {
    let berth = Berth::new();
    let cases: [(&[&str], &str); 6] = [
        (&["state", "ghost"], "container ghost does not exist"),
        (&["start", "ghost"], "does not exist"),
        (&["kill", "ghost", "KILL"], "does not exist"),
        (&["delete", "ghost"], "does not exist"),
        (&["state", "../etc"], "invalid container id"),
        (
            &["--systemd-cgroup", "state", "x"],
            "--systemd-cgroup is not supported",
        ),
    ];
    for (args, needle) in cases {
        let out = berth.output(args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
    }
    // runc's behaviour: forced delete of nothing is fine.
    berth.ok(&["delete", "--force", "ghost"]);
    // A malformed command line is a usage error.
    assert_eq!(berth.output(&["create"]).status.code(), Some(2));
    assert_eq!(berth.output(&["frobnicate"]).status.code(), Some(2));
}

#[test]
fn kill_with_a_bad_signal_changes_nothing() {
    let berth = Berth::new();
    let bundle = Bundle::new("badsig", "sleep 1000");
    berth.create(&bundle);
    let out = berth.output(&["kill", &bundle.id, "SIGFLY"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("invalid signal") && stderr.contains("SIGFLY"),
        "{stderr}"
    );
    assert_eq!(berth.status(&bundle.id), "created");
    berth.ok(&["delete", &bundle.id]);
    assert_nothing_left(&berth, &bundle);
}
