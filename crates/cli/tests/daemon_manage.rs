//! Privileged: running containers managed through `berth daemon` —
//! stats (numbers that are the cgroup's, one sample and a stream), top,
//! pause freezing a busy loop, update of live limits, rename, container
//! prune — judged by the docker CLI, the berth CLI, raw HTTP and the
//! cgroup files themselves.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;

use common::daemon::Daemon;

fn cgroup(controller: &str, id: &str, file: &str) -> PathBuf {
    PathBuf::from(format!("/sys/fs/cgroup/{controller}/berth/{id}/{file}"))
}

fn read(p: &PathBuf) -> String {
    std::fs::read_to_string(p).unwrap().trim().to_owned()
}

fn run(d: &Daemon, name: &str, args: &[&str]) -> String {
    let mut all = vec!["run", "-d", "--name", name];
    all.extend(args);
    d.ok(&all).trim().to_owned()
}

fn json(d: &Daemon, path: &str) -> serde_json::Value {
    let (status, headers, body) = d.http("GET", path);
    assert!(status.contains("200"), "{status} {body}");
    let body = if headers.contains("transfer-encoding: chunked") {
        dechunk(&body)
    } else {
        body
    };
    serde_json::from_str(&body).unwrap()
}

/// The body of a chunked HTTP/1.1 answer.
fn dechunk(mut raw: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = raw.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap();
        if n == 0 {
            break;
        }
        out.push_str(&rest[..n]);
        raw = &rest[n + 2..];
    }
    out
}

#[test]
fn stats_are_the_cgroups_numbers() {
    let d = Daemon::start();
    d.import_busybox();
    let id = run(
        &d,
        "pids3",
        &[
            "-m",
            "64m",
            "--pids-limit",
            "50",
            "busybox:test",
            "sh",
            "-c",
            "sleep 1000 & sleep 1000 & wait",
        ],
    );
    // Three processes once the shell has forked both.
    let procs = cgroup("pids", &id, "pids.current");
    while read(&procs) != "3" {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let s = json(&d, "/containers/pids3/stats?stream=0&one-shot=1");
    assert_eq!(s["pids_stats"]["current"], 3);
    assert_eq!(s["pids_stats"]["limit"], 50);
    assert_eq!(s["memory_stats"]["limit"], 64 << 20);
    assert_eq!(s["name"], "/pids3");
    assert_eq!(s["id"], id.as_str());
    assert_eq!(
        s["preread"], "0001-01-01T00:00:00Z",
        "one-shot: no baseline"
    );
    let usage = s["cpu_stats"]["cpu_usage"]["total_usage"].as_u64().unwrap();
    assert!(
        usage > 0
            && usage
                <= read(&cgroup("cpuacct", &id, "cpuacct.usage"))
                    .parse::<u64>()
                    .unwrap()
    );
    assert!(s["cpu_stats"]["system_cpu_usage"].as_u64().unwrap() > 0);
    assert!(s["cpu_stats"]["online_cpus"].as_u64().unwrap() >= 1);
    // The docker CLI's table: the limit and the pids.
    let table = d.ok(&[
        "stats",
        "--no-stream",
        "--format",
        "{{.Name}} {{.MemUsage}} {{.PIDs}}",
        "pids3",
    ]);
    assert!(
        table.starts_with("pids3 ") && table.contains(" / 64MiB 3"),
        "{table}"
    );
    let table = d.berth_ok(&[
        "stats",
        "--no-stream",
        "--format",
        "{{.Name}} {{.PIDs}}",
        "pids3",
    ]);
    assert_eq!(table, "pids3 3\n");
}

#[test]
fn a_stats_stream_carries_each_samples_baseline_and_ends_with_the_container() {
    let d = Daemon::start();
    d.import_busybox();
    run(
        &d,
        "busy",
        &["busybox:test", "sh", "-c", "while true; do :; done"],
    );
    let mut s = std::os::unix::net::UnixStream::connect(d.socket()).unwrap();
    write!(
        s,
        "GET /containers/busy/stats HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut r = BufReader::new(s);
    let mut docs = Vec::new();
    let mut line = String::new();
    while docs.len() < 2 {
        line.clear();
        r.read_line(&mut line).unwrap();
        if line.trim_start().starts_with('{') {
            docs.push(serde_json::from_str::<serde_json::Value>(line.trim()).unwrap());
        }
    }
    assert_eq!(docs[1]["precpu_stats"], docs[0]["cpu_stats"]);
    assert_eq!(docs[1]["preread"], docs[0]["read"]);
    let (a, b) = (
        docs[0]["cpu_stats"]["cpu_usage"]["total_usage"]
            .as_u64()
            .unwrap(),
        docs[1]["cpu_stats"]["cpu_usage"]["total_usage"]
            .as_u64()
            .unwrap(),
    );
    assert!(b > a, "a busy loop uses CPU: {a} then {b}");
    d.ok(&["kill", "busy"]);
    // The stream ends: the rest reads to its end.
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut r, &mut rest).unwrap();
}

#[test]
fn top_lists_only_the_containers_processes() {
    let d = Daemon::start();
    d.import_busybox();
    // `; true`: the shell stays (it would exec its last command).
    run(
        &d,
        "topped",
        &["busybox:test", "sh", "-c", "sleep 1001 & sleep 1002; true"],
    );
    let mut out = String::new();
    for _ in 0..500 {
        out = d.ok(&["top", "topped"]);
        if out.contains("sleep 1001") && out.contains("sleep 1002") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].starts_with("UID") && lines[0].contains("PID"),
        "{out}"
    );
    assert_eq!(lines.len(), 4, "sh and two sleeps: {out}");
    assert!(!out.contains("berth daemon"), "{out}");
    let custom = json(&d, "/containers/topped/top?ps_args=-o%20pid,comm");
    assert_eq!(custom["Titles"], serde_json::json!(["PID", "COMMAND"]));
    assert_eq!(custom["Processes"].as_array().unwrap().len(), 3);
    let berth = d.berth_ok(&["top", "topped"]);
    assert_eq!(berth.lines().count(), 4, "{berth}");
}

#[test]
fn pause_freezes_a_busy_loop_and_unpause_thaws_it() {
    let d = Daemon::start();
    d.import_busybox();
    let id = run(
        &d,
        "spin",
        &["busybox:test", "sh", "-c", "while true; do :; done"],
    );
    let usage = || {
        read(&cgroup("cpuacct", &id, "cpuacct.usage"))
            .parse::<u64>()
            .unwrap()
    };
    d.ok(&["pause", "spin"]);
    assert_eq!(read(&cgroup("freezer", &id, "freezer.state")), "FROZEN");
    let frozen = usage();
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert_eq!(usage(), frozen, "no CPU time while frozen");
    assert!(d.ok(&["ps"]).contains("(Paused)"));
    assert_eq!(
        d.ok(&[
            "inspect",
            "-f",
            "{{.State.Status}} {{.State.Paused}} {{.State.Running}}",
            "spin"
        ]),
        "paused true true\n"
    );
    assert_eq!(d.ok(&["ps", "-q", "-f", "status=paused"]).trim(), &id[..12]);
    let err = d.fails(&["pause", "spin"]);
    assert!(err.contains("is already paused"), "{err}");
    let err = d.fails(&["exec", "spin", "true"]);
    assert!(
        err.contains("is paused, unpause the container before exec"),
        "{err}"
    );
    d.ok(&["unpause", "spin"]);
    assert_eq!(read(&cgroup("freezer", &id, "freezer.state")), "THAWED");
    let thawed = usage();
    while usage() == thawed {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let err = d.fails(&["unpause", "spin"]);
    assert!(err.contains("is not paused"), "{err}");
    // A paused container still goes with rm -f (SIGKILL thaws it).
    d.ok(&["pause", "spin"]);
    d.ok(&["rm", "-f", "spin"]);
    d.berth_ok(&[
        "run",
        "-d",
        "--name",
        "spin2",
        "busybox:test",
        "sleep",
        "1000",
    ]);
    d.berth_ok(&["pause", "spin2"]);
    assert!(d.berth_ok(&["ps"]).contains("(Paused)"));
    d.berth_ok(&["unpause", "spin2"]);
}

#[test]
fn update_changes_live_limits_and_the_policy() {
    let d = Daemon::start();
    d.import_busybox();
    let id = run(&d, "lim", &["-m", "64m", "busybox:test", "sleep", "1000"]);
    d.ok(&[
        "update",
        "-m",
        "128m",
        "--memory-swap",
        "256m",
        "--cpus",
        "0.5",
        "--pids-limit",
        "77",
        "--restart",
        "on-failure:3",
        "lim",
    ]);
    assert_eq!(
        read(&cgroup("memory", &id, "memory.limit_in_bytes")),
        (128u64 << 20).to_string()
    );
    assert_eq!(read(&cgroup("cpu", &id, "cpu.cfs_quota_us")), "50000");
    assert_eq!(read(&cgroup("pids", &id, "pids.max")), "77");
    let hc = d.ok(&["inspect", "-f", "{{.HostConfig.Memory}} {{.HostConfig.NanoCpus}} {{.HostConfig.RestartPolicy.Name}}:{{.HostConfig.RestartPolicy.MaximumRetryCount}}", "lim"]);
    assert_eq!(hc, format!("{} 500000000 on-failure:3\n", 128u64 << 20));
    let err = d.fails(&["update", "--restart", "bogus", "lim"]);
    assert!(err.contains("invalid restart policy"), "{err}");
    // A stopped container takes the change for its next start.
    d.ok(&["stop", "-t", "0", "lim"]);
    d.berth_ok(&["update", "-m", "96m", "lim"]);
    d.ok(&["start", "lim"]);
    assert_eq!(
        read(&cgroup("memory", &id, "memory.limit_in_bytes")),
        (96u64 << 20).to_string()
    );
}

#[test]
fn rename_and_prune_follow_docker() {
    let d = Daemon::start();
    d.import_busybox();
    run(&d, "old-name", &["busybox:test", "sleep", "1000"]);
    run(&d, "taken", &["busybox:test", "sleep", "1000"]);
    d.ok(&["rename", "old-name", "new-name"]);
    assert_eq!(
        d.ok(&["inspect", "-f", "{{.Name}}", "new-name"]),
        "/new-name\n"
    );
    let err = d.fails(&["rename", "new-name", "taken"]);
    assert!(err.contains("is already in use"), "{err}");
    d.berth_ok(&["rename", "new-name", "newer"]);
    d.ok(&[
        "run",
        "--name",
        "done1",
        "-l",
        "keep=yes",
        "busybox:test",
        "true",
    ]);
    d.ok(&["run", "--name", "done2", "busybox:test", "true"]);
    d.ok(&["create", "--name", "fresh", "busybox:test", "true"]);
    let out = d.ok(&["container", "prune", "-f", "--filter", "label!=keep=yes"]);
    assert!(out.contains("Deleted Containers:"), "{out}");
    let mut left: Vec<String> = d
        .ok(&["ps", "-a", "--format", "{{.Names}}"])
        .lines()
        .map(str::to_owned)
        .collect();
    left.sort();
    assert_eq!(left, ["done1", "newer", "taken"]);
    let out = d.berth_ok(&["container", "prune", "-f"]);
    assert!(out.contains("Deleted Containers:"), "{out}");
    let mut left: Vec<String> = d
        .ok(&["ps", "-a", "--format", "{{.Names}}"])
        .lines()
        .map(str::to_owned)
        .collect();
    left.sort();
    assert_eq!(left, ["newer", "taken"], "running ones stay");
}

#[test]
fn commit_makes_an_image_that_runs_with_the_changes() {
    let d = Daemon::start();
    d.import_busybox();
    let id = run(
        &d,
        "src",
        &[
            "-e",
            "FOO=bar",
            "-w",
            "/tmp",
            "busybox:test",
            "sh",
            "-c",
            "echo data > /made; rm /etc/group; sleep 1000",
        ],
    );
    while !d.ok(&["exec", "src", "ls", "/"]).contains("made") {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    // A running container, paused for the copy (the default).
    let image = d.ok(&[
        "commit",
        "-a",
        "Ann <ann@example.com>",
        "-m",
        "first",
        "-c",
        "CMD [\"cat\", \"/made\"]",
        "-c",
        "ENV X=1",
        "src",
        "committed:1",
    ]);
    assert!(image.starts_with("sha256:"), "{image}");
    assert_eq!(
        d.ok(&["inspect", "-f", "{{.State.Status}}", "src"]),
        "running\n",
        "unpaused after"
    );
    assert_eq!(d.ok(&["run", "--rm", "committed:1"]), "data\n");
    let out = d.ok(&[
        "run",
        "--rm",
        "committed:1",
        "sh",
        "-c",
        "echo $FOO $X; pwd; ls /etc",
    ]);
    assert_eq!(
        out, "bar 1\n/tmp\npasswd\n",
        "env and workdir kept, the deletion a whiteout"
    );
    let meta = d.ok(&[
        "inspect",
        "-f",
        "{{.Author}}|{{.Comment}}|{{json .Config.Cmd}}|{{len .RootFS.Layers}}",
        "committed:1",
    ]);
    assert_eq!(meta, "Ann <ann@example.com>|first|[\"cat\",\"/made\"]|2\n");
    let history = d.ok(&[
        "history",
        "--no-trunc",
        "--format",
        "{{.CreatedBy}}|{{.Comment}}",
        "committed:1",
    ]);
    assert!(
        history.starts_with("sh -c echo data > /made; rm /etc/group; sleep 1000|first\n"),
        "{history}"
    );
    // A stopped container, through berth; its files stay its own.
    d.ok(&["stop", "-t", "0", "src"]);
    let image2 = d.berth_ok(&[
        "commit",
        "-c",
        "ENTRYPOINT [\"echo\"]",
        "src",
        "committed:2",
    ]);
    assert!(image2.starts_with("sha256:"));
    assert_eq!(d.ok(&["run", "--rm", "committed:2", "hi"]), "hi\n");
    assert!(std::path::Path::new(&format!(
        "{}/data/containers/{id}/upper/made",
        d.dir.path().display()
    ))
    .exists());
    let err = d.fails(&["commit", "-c", "BOGUS x", "src"]);
    assert!(err.to_lowercase().contains("bogus"), "{err}");
    let err = d.fails(&["commit", "nosuch"]);
    assert!(err.contains("No such container"), "{err}");
}
