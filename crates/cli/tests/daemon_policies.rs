//! Privileged: restart policies (on-failure:N, always, unless-stopped, at
//! daemon start) and bind and tmpfs mounts through `berth daemon`, judged
//! by the real `docker` CLI.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use common::daemon::Daemon;

fn inspect(d: &Daemon, format: &str, name: &str) -> String {
    d.ok(&["inspect", "-f", format, name]).trim().to_owned()
}

/// Polls until `inspect -f format` gives `want` (the policy got there).
fn wait_inspect(d: &Daemon, format: &str, name: &str, want: &str) {
    while inspect(d, format, name) != want {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn on_failure_restarts_up_to_its_maximum() {
    let d = Daemon::start();
    d.import_busybox();
    d.ok(&[
        "run",
        "-d",
        "--name",
        "flaky",
        "--restart",
        "on-failure:2",
        "busybox:test",
        "sh",
        "-c",
        "echo run; exit 3",
    ]);
    wait_inspect(
        &d,
        "{{.State.Status}} {{.RestartCount}} {{.State.ExitCode}}",
        "flaky",
        "exited 2 3",
    );
    assert_eq!(
        d.ok(&["logs", "flaky"]),
        "run\nrun\nrun\n",
        "1 run + 2 restarts"
    );
    // A clean exit is not a failure.
    d.ok(&[
        "run",
        "-d",
        "--name",
        "fine",
        "--restart",
        "on-failure",
        "busybox:test",
        "true",
    ]);
    assert_eq!(d.ok(&["wait", "fine"]).trim(), "0");
    assert_eq!(
        inspect(&d, "{{.State.Status}} {{.RestartCount}}", "fine"),
        "exited 0"
    );
}

#[test]
fn always_restarts_until_stopped_and_again_when_the_daemon_starts() {
    let mut d = Daemon::start();
    d.import_busybox();
    for (name, policy) in [("keeper", "always"), ("quiet", "unless-stopped")] {
        d.ok(&[
            "run",
            "-d",
            "--name",
            name,
            "--restart",
            policy,
            "busybox:test",
            "sh",
            "-c",
            "echo up; sleep 0.1",
        ]);
        // Exits 0 every time and comes back.
        wait_inspect(&d, "{{ge .RestartCount 2}}", name, "true");
        d.ok(&["stop", "-t", "1", name]);
        assert!(inspect(&d, "{{.State.Status}}", name) == "exited");
    }
    // Restarting or exited: rm -f removes it either way.
    // Again and again: a removal racing a restart in progress must win
    // cleanly (no "device busy", nothing left mounted).
    for _ in 0..10 {
        d.ok(&[
            "run",
            "-d",
            "--name",
            "gone",
            "--restart",
            "always",
            "busybox:test",
            "true",
        ]);
        wait_inspect(&d, "{{ge .RestartCount 1}}", "gone", "true");
        d.ok(&["rm", "-f", "gone"]);
    }
    d.kill9();
    d.restart();
    // The next daemon starts "always" again; "unless-stopped" stays down.
    wait_inspect(&d, "{{ge .RestartCount 3}}", "keeper", "true");
    assert_eq!(inspect(&d, "{{.State.Status}}", "quiet"), "exited");
    d.ok(&["rm", "-f", "keeper", "quiet"]);
}

#[test]
fn bad_policies_are_refused_before_anything_is_created() {
    let d = Daemon::start();
    d.import_busybox();
    let err = d.fails(&[
        "run",
        "-d",
        "--restart",
        "always",
        "--rm",
        "busybox:test",
        "true",
    ]);
    assert!(
        err.contains("--restart and --rm") || err.contains("Conflicting options"),
        "{err}"
    );
    let (status, _, body) = d.http_json(
        "POST",
        "/containers/create",
        r#"{"Image":"busybox:test","Cmd":["true"],"HostConfig":{"RestartPolicy":{"Name":"sometimes"}}}"#,
    );
    assert!(
        status.contains("400") && body.contains("invalid restart policy"),
        "{status} {body}"
    );
    let (status, _, body) = d.http_json(
        "POST",
        "/containers/create",
        r#"{"Image":"busybox:test","Cmd":["true"],"HostConfig":{"RestartPolicy":{"Name":"always","MaximumRetryCount":3}}}"#,
    );
    assert!(
        status.contains("400") && body.contains("maximum retry count"),
        "{status} {body}"
    );
    assert_eq!(d.ok(&["ps", "-aq"]).trim(), "");
}

#[test]
fn binds_and_tmpfs_mount_where_asked() {
    let d = Daemon::start();
    d.import_busybox();
    let host = d.dir.path().join("shared");
    std::fs::create_dir_all(&host).unwrap();
    std::fs::write(host.join("in"), "from host\n").unwrap();
    let fresh = d.dir.path().join("made/by/run");
    let rw = format!("{}:/data", host.display());
    let ro = format!("{}:/ro:ro", host.display());
    let new = format!("{}:/new", fresh.display());
    let out = d.docker(&[
        "run",
        "--name",
        "mnt",
        "-v",
        &rw,
        "-v",
        &ro,
        "-v",
        &new,
        "--tmpfs",
        "/scratch:size=1m",
        "busybox:test",
        "sh",
        "-c",
        "cat /data/in; echo out > /data/out; grep ' /scratch ' /proc/mounts; \
         touch /ro/x 2>/dev/null || echo ro refused; touch /new/y",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.starts_with("from host\n"), "{text}");
    assert!(
        text.contains("tmpfs /scratch tmpfs rw,nosuid,nodev,noexec"),
        "{text}"
    );
    assert!(text.contains("size=1024k"), "{text}");
    assert!(text.contains("ro refused"), "{text}");
    assert_eq!(std::fs::read_to_string(host.join("out")).unwrap(), "out\n");
    assert!(!host.join("x").exists());
    assert!(fresh.join("y").exists(), "a missing source is created");
    let mounts = inspect(
        &d,
        "{{range .Mounts}}{{.Destination}}={{.RW}} {{end}}",
        "mnt",
    );
    assert_eq!(mounts, "/data=true /new=true /ro=false");
    let err = d.fails(&[
        "run",
        "--rm",
        "-v",
        "/a:/x",
        "-v",
        "/b:/x",
        "busybox:test",
        "true",
    ]);
    assert!(err.contains("Duplicate mount point"), "{err}");
    d.ok(&["rm", "mnt"]);
}
