//! Privileged: containers through `berth daemon`, judged by the real
//! `docker` CLI: run -d, ps, logs, inspect, stop, kill, wait, rm, Docker's
//! errors, and a daemon killed with SIGKILL while containers run.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::io::{BufRead, BufReader, Write};

use common::daemon::Daemon;

/// Polls `docker logs` until `text` appears (the container reached a point).
fn wait_for_log(d: &Daemon, name: &str, text: &str) {
    while !d.ok(&["logs", name]).contains(text) {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

#[test]
fn run_detached_then_logs_stop_wait_and_rm() {
    let d = Daemon::start();
    d.import_busybox();
    let id = d.ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "-e",
        "GREETING=hi",
        "busybox:test",
        "sh",
        "-c",
        "echo $GREETING; echo oops >&2; sleep 100",
    ]);
    let id = id.trim();
    assert_eq!(id.len(), 64);
    let ps = d.ok(&["ps", "--format", "{{.Names}} {{.Status}}"]);
    assert!(ps.starts_with("web Up"), "{ps}");
    assert_eq!(
        d.ok(&["inspect", "-f", "{{.State.Status}} {{.Name}}", "web"])
            .trim(),
        "running /web"
    );
    // logs: stdout and stderr kept apart (wait for the second line first).
    let mut logs = d.docker(&["logs", "web"]);
    while !String::from_utf8_lossy(&logs.stderr).contains("oops") {
        std::thread::sleep(std::time::Duration::from_millis(10));
        logs = d.docker(&["logs", "web"]);
    }
    assert_eq!(String::from_utf8_lossy(&logs.stdout), "hi\n");
    assert_eq!(String::from_utf8_lossy(&logs.stderr), "oops\n");
    // sh as pid 1 ignores SIGTERM: stop ends with SIGKILL after the timeout.
    d.ok(&["stop", "-t", "1", "web"]);
    assert_eq!(d.ok(&["wait", "web"]).trim(), "137");
    assert_eq!(
        d.ok(&[
            "inspect",
            "-f",
            "{{.State.Status}} {{.State.ExitCode}}",
            &id[..12]
        ])
        .trim(),
        "exited 137"
    );
    assert_eq!(d.ok(&["ps", "-q"]).trim(), "", "not running any more");
    assert_eq!(
        d.ok(&["ps", "-aq", "--filter", "exited=137"]).trim(),
        &id[..12]
    );
    d.ok(&["rm", "web"]);
    assert_eq!(d.ok(&["ps", "-aq"]).trim(), "");
    assert_eq!(d.mounts_under(), 0, "mounts left");
    assert!(
        !std::path::Path::new("/sys/fs/cgroup/memory/berth")
            .join(id)
            .exists(),
        "cgroup left"
    );
}

#[test]
fn exit_codes_kill_and_restart() {
    let d = Daemon::start();
    d.import_busybox();
    d.ok(&[
        "run",
        "-d",
        "--name",
        "three",
        "busybox:test",
        "sh",
        "-c",
        "exit 3",
    ]);
    assert_eq!(d.ok(&["wait", "three"]).trim(), "3");
    d.ok(&[
        "run",
        "-d",
        "--name",
        "trap",
        "busybox:test",
        "sh",
        "-c",
        "trap 'exit 9' USR1; echo armed; while true; do sleep 0.05; done",
    ]);
    // An init ignores signals it has no handler for: wait for the trap.
    wait_for_log(&d, "trap", "armed");
    d.ok(&["kill", "-s", "USR1", "trap"]);
    assert_eq!(d.ok(&["wait", "trap"]).trim(), "9");
    d.ok(&["restart", "-t", "0", "three"]);
    assert_eq!(d.ok(&["wait", "three"]).trim(), "3");
    let err = d.fails(&["kill", "three"]);
    assert!(err.contains("is not running"), "{err}");
    d.ok(&["rm", "three", "trap"]);
    assert_eq!(d.mounts_under(), 0, "mounts left");
}

#[test]
fn bad_requests_get_dockers_errors_and_create_nothing() {
    let d = Daemon::start();
    d.import_busybox();
    // The CLI answers a 404 by pulling, from a registry not there.
    let err = d.fails(&["run", "-d", "127.0.0.1:1/nosuch:image", "true"]);
    assert!(
        err.contains("Unable to find image") && err.contains("Connection refused"),
        "{err}"
    );
    d.ok(&[
        "run",
        "-d",
        "--name",
        "taken",
        "busybox:test",
        "sleep",
        "100",
    ]);
    let err = d.fails(&["run", "-d", "--name", "taken", "busybox:test", "true"]);
    assert!(
        err.contains("The container name \"/taken\" is already in use"),
        "{err}"
    );
    let err = d.fails(&["rm", "taken"]);
    assert!(err.contains("cannot remove a running container"), "{err}");
    assert!(d
        .fails(&["run", "-d", "-m", "1k", "busybox:test", "true"])
        .contains("Minimum memory limit"));
    assert!(d
        .fails(&[
            "run",
            "-d",
            "--cap-add",
            "NOT_A_CAP",
            "busybox:test",
            "true"
        ])
        .contains("unknown capability"));
    assert!(d
        .fails(&["run", "-d", "--name", "-bad", "busybox:test", "true"])
        .contains("Invalid container name"));
    assert!(d
        .fails(&["logs", "nosuch"])
        .contains("No such container: nosuch"));
    assert_eq!(
        d.ok(&["ps", "-aq"]).lines().count(),
        1,
        "failed creates left nothing"
    );
    d.ok(&["rm", "-f", "taken"]);
    assert_eq!(d.ok(&["ps", "-aq"]).trim(), "");
    assert_eq!(d.mounts_under(), 0, "mounts left");
}

#[test]
fn containers_outlive_a_daemon_killed_with_sigkill() {
    let mut d = Daemon::start();
    d.import_busybox();
    let long = d
        .ok(&[
            "run",
            "-d",
            "--name",
            "long",
            "busybox:test",
            "sh",
            "-c",
            "echo before; sleep 100",
        ])
        .trim()
        .to_owned();
    let quits = d
        .ok(&[
            "run",
            "-d",
            "--name",
            "quits",
            "busybox:test",
            "sh",
            "-c",
            "trap 'exit 4' TERM; echo armed; while true; do sleep 0.05; done",
        ])
        .trim()
        .to_owned();
    // While no daemon runs, one container exits (told through its shim).
    wait_for_log(&d, "quits", "armed");
    d.kill9();
    let mut s = std::os::unix::net::UnixStream::connect(d.shim_socket(&quits)).unwrap();
    writeln!(s, r#"{{"op":"kill","signal":15}}"#).unwrap();
    let mut line = String::new();
    BufReader::new(&s).read_line(&mut line).unwrap();
    assert!(line.contains("\"ok\""), "{line}");
    d.restart();
    assert_eq!(
        d.ok(&["wait", "quits"]).trim(),
        "4",
        "the exit while the daemon was down is recorded"
    );
    assert_eq!(
        d.ok(&["inspect", "-f", "{{.State.Status}}", &long]).trim(),
        "running"
    );
    assert!(d.ok(&["logs", "long"]).contains("before"));
    d.ok(&["stop", "-t", "1", "long"]);
    assert_eq!(
        d.ok(&[
            "inspect",
            "-f",
            "{{.State.Status}} {{.State.ExitCode}}",
            "long"
        ])
        .trim(),
        "exited 137"
    );
    d.ok(&["rm", "long", "quits"]);
    assert_eq!(d.mounts_under(), 0, "mounts left");
}

#[test]
fn sigterm_stops_the_daemon_even_with_a_wait_open() {
    let mut d = Daemon::start();
    d.import_busybox();
    d.ok(&[
        "run",
        "-d",
        "--name",
        "sleeper",
        "busybox:test",
        "sleep",
        "100",
    ]);
    // `docker wait` holds a request open until the container exits.
    let mut waiting = std::process::Command::new("docker")
        .args(["wait", "sleeper"])
        .env("DOCKER_HOST", format!("unix://{}", d.socket().display()))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    while !d.http("GET", "/containers/json").2.contains("sleeper") {
        std::thread::yield_now();
    }
    let pid = nix::unistd::Pid::from_raw(i32::try_from(d.child.id()).unwrap());
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let status = d.child.wait().unwrap();
    assert!(status.success(), "the daemon exits cleanly: {status}");
    assert!(!d.socket().exists(), "its socket is removed");
    let _ = waiting.wait();
    d.restart();
    assert_eq!(
        d.ok(&["inspect", "-f", "{{.State.Status}}", "sleeper"])
            .trim(),
        "running"
    );
    d.ok(&["rm", "-f", "sleeper"]);
}

#[test]
fn auto_remove_deletes_the_container_when_it_exits() {
    let d = Daemon::start();
    d.import_busybox();
    let id = d.ok(&["run", "-d", "--rm", "busybox:test", "sh", "-c", "exit 2"]);
    // `docker wait` on a removed container: its exit code, or gone already.
    let _ = d.docker(&["wait", id.trim()]);
    while !d.ok(&["ps", "-aq"]).trim().is_empty() {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(
        !d.dir
            .path()
            .join("data/containers")
            .join(id.trim())
            .exists(),
        "its files are gone"
    );
    assert_eq!(d.mounts_under(), 0, "mounts left");
}

#[test]
fn a_waiter_for_removal_gets_the_exit_code_of_an_auto_removed_container() {
    let d = Daemon::start();
    d.import_busybox();
    let body =
        r#"{"Image":"busybox:test","Cmd":["sh","-c","exit 5"],"HostConfig":{"AutoRemove":true}}"#;
    let (status, _, created) = d.http_json("POST", "/containers/create?name=gone", body);
    assert!(status.contains("201"), "{status} {created}");
    // docker run --rm: wait for removal first, then start.
    std::thread::scope(|s| {
        let waiter = s.spawn(|| d.http("POST", "/containers/gone/wait?condition=removed"));
        while !d.http("GET", "/containers/gone/json").0.contains("200") {
            std::thread::yield_now();
        }
        let (status, _, _) = d.http("POST", "/containers/gone/start");
        assert!(status.contains("204"), "{status}");
        let (status, _, body) = waiter.join().unwrap();
        assert!(status.contains("200"), "{status}");
        assert!(body.contains(r#""StatusCode":5"#), "{body}");
    });
    assert!(d.http("GET", "/containers/gone/json").0.contains("404"));
}

#[test]
fn a_failed_start_of_an_auto_removed_container_ends_run_and_leaves_nothing() {
    let d = Daemon::start();
    d.import_busybox();
    // The CLI waits for the removal before the start: the failure must
    // remove the container, or `run --rm` never returns.
    let out = d.docker(&["run", "--rm", "busybox:test", "/nonexistent"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("/nonexistent"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(d.ok(&["ps", "-aq"]), "");
    assert_eq!(d.mounts_under(), 0);
    // Without --rm it stays, its exit code saying the start failed.
    let out = d.docker(&["run", "--name", "broken", "busybox:test", "/nonexistent"]);
    assert!(!out.status.success());
    assert_eq!(
        d.ok(&["inspect", "-f", "{{.State.ExitCode}}", "broken"]),
        "128\n"
    );
    d.ok(&["rm", "broken"]);
}

#[test]
fn privileged_containers_get_the_hosts_devices_and_capabilities() {
    let d = Daemon::start();
    d.import_busybox();
    let script = "grep CapEff /proc/self/status; cat /sys/fs/cgroup/devices/devices.list; \
                  ls /dev | wc -l; stat -c '%t:%T' /dev/loop0 2>/dev/null || echo none";
    let plain = d.ok(&["run", "--rm", "busybox:test", "sh", "-c", script]);
    let privileged = d.ok(&[
        "run",
        "--rm",
        "--privileged",
        "busybox:test",
        "sh",
        "-c",
        script,
    ]);
    let host = std::fs::read_to_string("/proc/self/status").unwrap();
    let host_caps = host
        .lines()
        .find_map(|l| l.strip_prefix("CapPrm:"))
        .unwrap()
        .trim();
    let lines: Vec<&str> = privileged.lines().collect();
    // Every capability the host grants (CAP_SYS_RESOURCE is not on these
    // VMs: asking for it made the start fail), every device allowed.
    assert_eq!(lines[0], format!("CapEff:\t{host_caps}"), "{privileged}");
    assert_eq!(lines[1], "a *:* rwm", "{privileged}");
    let count = |l: &str| l.trim().parse::<usize>().unwrap();
    let plain_lines: Vec<&str> = plain.lines().collect();
    assert_eq!(plain_lines[0], "CapEff:\t00000000a80425fb");
    let devices = |l: &[&str]| count(l[l.len() - 2]);
    assert!(
        devices(&lines) > devices(&plain_lines),
        "{privileged} vs {plain}"
    );
    if std::path::Path::new("/dev/loop0").exists() {
        assert_eq!(lines[3], "7:0", "the host's loop device");
        assert_eq!(plain_lines[plain_lines.len() - 1], "none");
    }
}

/// The super-block options of the mount at `path`.
fn mount_options(path: &std::path::Path) -> Option<String> {
    let path = path.to_str().unwrap();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .find(|l| l.split(' ').nth(4) == Some(path))
        .and_then(|l| l.rsplit(' ').next().map(str::to_owned))
}

#[test]
fn only_roots_that_die_with_their_container_skip_syncing() {
    let d = Daemon::start();
    d.import_busybox();
    let rootfs = |id: &str| {
        d.dir
            .path()
            .join("data/containers")
            .join(id.trim())
            .join("rootfs")
    };
    let gone = d.ok(&["run", "-d", "--rm", "busybox:test", "sleep", "1000"]);
    let kept = d.ok(&["run", "-d", "busybox:test", "sleep", "1000"]);
    let opts = mount_options(&rootfs(&gone)).expect("the --rm root is mounted");
    assert!(opts.contains("volatile"), "{opts}");
    let opts = mount_options(&rootfs(&kept)).expect("the root is mounted");
    // A kept container's fsyncs must reach the disk.
    assert!(!opts.contains("volatile"), "{opts}");
    d.ok(&["rm", "-f", gone.trim(), kept.trim()]);
    // A build step's root becomes a layer, synced when committed.
    let ctx = tempfile::tempdir().unwrap();
    std::fs::write(
        ctx.path().join("Dockerfile"),
        "FROM busybox:test\nRUN grep ' / / ' /proc/self/mountinfo > /root-mount\n",
    )
    .unwrap();
    let out = d
        .command("docker", &["build", "-q", "-t", "steps:1"])
        .arg(ctx.path())
        .env("DOCKER_BUILDKIT", "0")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let root = d.ok(&["run", "--rm", "steps:1", "cat", "/root-mount"]);
    assert!(root.contains("volatile"), "{root}");
    assert_eq!(d.mounts_under(), 0, "mounts left");
}

#[test]
fn an_auto_removed_container_survives_its_restart_with_its_files() {
    let d = Daemon::start();
    d.import_busybox();
    let id = d.ok(&[
        "run",
        "-d",
        "--rm",
        "--name",
        "again",
        "busybox:test",
        "sh",
        "-c",
        "echo start >> /starts; exec sleep 1000",
    ]);
    d.ok(&["restart", "-t", "0", "again"]);
    // Its volatile root was mounted again over the same upper.
    let starts = d.ok(&["exec", "again", "cat", "/starts"]);
    assert_eq!(starts, "start\nstart\n");
    assert_eq!(
        d.ok(&["inspect", "-f", "{{.State.Running}}", "again"])
            .trim(),
        "true"
    );
    // A stop still ends it, as --rm asks.
    d.ok(&["stop", "-t", "0", "again"]);
    while !d.ok(&["ps", "-aq"]).trim().is_empty() {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(!d
        .dir
        .path()
        .join("data/containers")
        .join(id.trim())
        .exists());
    assert_eq!(d.mounts_under(), 0, "mounts left");
}
