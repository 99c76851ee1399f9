//! Privileged: `exec` through `berth daemon`, judged by the real `docker`
//! CLI, the `berth` CLI and the raw API — output streams kept apart, exit
//! codes, stdin, user/env/workdir, a terminal sized like the client's,
//! detached execs, the container's namespaces and cgroup, privileged
//! capabilities, and Docker's errors (a stopped container, a missing
//! command, an exec started twice).

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use common::daemon::Daemon;

/// A daemon with `busybox:test` and a running container `box`.
fn with_box() -> (Daemon, String) {
    let d = Daemon::start();
    d.import_busybox();
    let id = d
        .ok(&[
            "run",
            "-d",
            "--name",
            "box",
            "-h",
            "boxhost",
            "busybox:test",
            "sleep",
            "1000",
        ])
        .trim()
        .to_owned();
    (d, id)
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn exec_streams_stdout_and_stderr_apart_and_exits_with_the_code() {
    let (d, _) = with_box();
    let out = d.docker(&["exec", "box", "sh", "-c", "echo out; echo err >&2; exit 7"]);
    assert_eq!(text(&out.stdout), "out\n");
    assert_eq!(text(&out.stderr), "err\n");
    assert_eq!(out.status.code(), Some(7));
    let out = d.docker_with_input(
        &["exec", "-i", "box", "sh", "-c", "cat; echo end"],
        b"fed\n",
    );
    assert_eq!(
        text(&out.stdout),
        "fed\nend\n",
        "stdin ends with the client's"
    );
    let out = d.ok(&[
        "exec",
        "-u",
        "1000:1001",
        "-w",
        "/tmp",
        "-e",
        "FOO=bar",
        "box",
        "sh",
        "-c",
        "id -u; id -g; pwd; echo $FOO; echo $PATH",
    ]);
    assert_eq!(
        out,
        "1000\n1001\n/tmp\nbar\n/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n"
    );
}

#[test]
fn exec_joins_the_containers_namespaces_and_cgroup() {
    let (d, id) = with_box();
    let out = d.ok(&[
        "exec",
        "box",
        "sh",
        "-c",
        "hostname; cat /proc/1/cmdline | tr '\\0' ' '; echo; grep :memory: /proc/self/cgroup",
    ]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "boxhost", "uts namespace");
    assert_eq!(
        lines[1], "sleep 1000 ",
        "pid namespace: its pid 1 is the container's"
    );
    assert!(
        lines[2].ends_with(":memory:/"),
        "cgroup namespace: {}",
        lines[2]
    );
    // The container's own processes see the exec's (same pid namespace).
    let ps = d.ok(&["exec", "box", "ps", "-o", "pid,args"]);
    assert!(ps.lines().any(|l| l.trim() == "1 sleep 1000"), "{ps}");
    // Seen from the host, the exec is in the container's cgroups.
    let (_, _, body) = d.http_json(
        "POST",
        "/containers/box/exec",
        r#"{"Cmd":["sleep","1000"]}"#,
    );
    let exec: serde_json::Value = serde_json::from_str(&body).unwrap();
    let exec = exec["Id"].as_str().unwrap().to_owned();
    d.http_json("POST", &format!("/exec/{exec}/start"), r#"{"Detach":true}"#);
    let info: serde_json::Value =
        serde_json::from_str(&d.http("GET", &format!("/exec/{exec}/json")).2).unwrap();
    let pid = info["Pid"].as_i64().unwrap().to_string();
    for controller in ["memory", "pids", "cpu"] {
        let procs = std::fs::read_to_string(format!(
            "/sys/fs/cgroup/{controller}/berth/{id}/cgroup.procs"
        ))
        .unwrap();
        assert!(
            procs.lines().any(|p| p == pid),
            "{controller}: {pid} not in {procs}"
        );
    }
}

#[test]
fn exec_with_a_tty_is_sized_like_the_client() {
    let (d, _) = with_box();
    // script(1) gives the CLIs a terminal of their own. berth's CLI sends
    // the size with the exec (as the docker CLI does from API 1.42): the
    // terminal has it before the process runs. The docker CLI at API 1.41
    // resizes once the exec runs: the process waits for the size.
    let berth = env!("CARGO_BIN_EXE_berth");
    for (cli, size) in [
        (berth, "stty size"),
        // (busybox's `stty size` exits 0 on a 0x0 terminal: test its output)
        (
            "docker",
            "i=0; until [ -n \"$(stty size 2>/dev/null)\" ] || [ $i -ge 3000 ]; do i=$((i+1)); sleep 0.01; done; stty size",
        ),
    ] {
        let inner = format!(
            "stty cols 101 rows 33; {cli} exec -it box sh -c '{size}; tty; echo $TERM; exit 3'"
        );
        let out = d
            .command("script", &["-qec", &inner, "/dev/null"])
            .env("BERTH_HOST", format!("unix://{}", d.socket().display()))
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        let text = text(&out.stdout).replace('\r', "");
        assert!(text.contains("33 101\n"), "{cli}: {text:?}");
        assert!(text.contains("/dev/pts/"), "{cli}: {text:?}");
        assert!(text.contains("xterm\n"), "{cli}: {text:?}");
        assert_eq!(out.status.code(), Some(3), "{cli}: {text:?}");
    }
}

#[test]
fn detached_execs_run_on_and_record_their_end() {
    let (d, id) = with_box();
    d.ok(&["exec", "-d", "box", "sh", "-c", "echo detached > /tmp/mark"]);
    // A foreground exec after it: the file is there once the detached
    // one has run (poll: it runs on its own).
    let mut seen = String::new();
    for _ in 0..200 {
        seen = d.ok(&[
            "exec",
            "box",
            "sh",
            "-c",
            "cat /tmp/mark 2>/dev/null || true",
        ]);
        if !seen.is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(seen, "detached\n");
    // A long one is listed in the container's ExecIDs, running, with a pid.
    let (status, _, body) = d.http_json(
        "POST",
        "/containers/box/exec",
        r#"{"Cmd":["sleep","1000"]}"#,
    );
    assert!(status.contains("201"), "{status}");
    let exec: serde_json::Value = serde_json::from_str(&body).unwrap();
    let exec = exec["Id"].as_str().unwrap().to_owned();
    let (status, _, _) = d.http_json("POST", &format!("/exec/{exec}/start"), r#"{"Detach":true}"#);
    assert!(status.contains("200"), "{status}");
    let inspect = |d: &Daemon| -> serde_json::Value {
        serde_json::from_str(&d.http("GET", &format!("/exec/{exec}/json")).2).unwrap()
    };
    let running = inspect(&d);
    assert_eq!(running["Running"], true);
    assert_eq!(running["ContainerID"], id.as_str());
    assert!(running["Pid"].as_i64().unwrap() > 0);
    assert_eq!(running["ProcessConfig"]["entrypoint"], "sleep");
    assert_eq!(running["ExitCode"], serde_json::Value::Null);
    let ids = d.ok(&["inspect", "-f", "{{json .ExecIDs}}", "box"]);
    assert!(ids.contains(&exec), "{ids}");
    // Starting it again is Docker's conflict.
    let (status, _, body) =
        d.http_json("POST", &format!("/exec/{exec}/start"), r#"{"Detach":true}"#);
    assert!(status.contains("409"), "{status} {body}");
    assert!(body.contains("is already running"), "{body}");
    // The container's end takes it along.
    d.ok(&["stop", "-t", "1", "box"]);
    let ended = inspect(&d);
    assert_eq!(ended["Running"], false);
    assert!(ended["ExitCode"].is_i64(), "{ended}");
}

#[test]
fn privileged_execs_get_every_capability_the_host_allows() {
    let (d, _) = with_box();
    let caps = |args: &[&str]| {
        let mut all = vec!["exec"];
        all.extend(args);
        all.extend(["box", "sh", "-c", "grep CapEff /proc/self/status"]);
        d.ok(&all)
    };
    assert_eq!(
        caps(&[]),
        "CapEff:\t00000000a80425fb\n",
        "Docker's default set"
    );
    let host = std::fs::read_to_string("/proc/self/status").unwrap();
    let host_prm = host
        .lines()
        .find_map(|l| l.strip_prefix("CapPrm:"))
        .unwrap()
        .trim()
        .to_owned();
    assert_eq!(caps(&["--privileged"]), format!("CapEff:\t{host_prm}\n"));
}

#[test]
fn exec_errors_are_dockers() {
    let (d, id) = with_box();
    let out = d.docker(&["exec", "box", "/no/such/command"]);
    assert_eq!(out.status.code(), Some(126), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("OCI runtime exec failed"),
        "{}",
        text(&out.stdout)
    );
    let err = d.fails(&["exec", "nosuch", "true"]);
    assert!(err.contains("No such container: nosuch"), "{err}");
    // An exec resized before it starts is fine (the CLI races its start).
    let (_, _, body) = d.http_json(
        "POST",
        "/containers/box/exec",
        r#"{"Cmd":["true"],"Tty":true}"#,
    );
    let exec: serde_json::Value = serde_json::from_str(&body).unwrap();
    let exec = exec["Id"].as_str().unwrap().to_owned();
    let (status, _, _) = d.http("POST", &format!("/exec/{exec}/resize?h=10&w=20"));
    assert!(status.contains("200"), "{status}");
    let (status, _, body) = d.http("GET", "/exec/nosuch/json");
    assert!(
        status.contains("404") && body.contains("No such exec instance"),
        "{status} {body}"
    );
    let (status, _, body) = d.http_json("POST", "/containers/box/exec", r#"{"Cmd":[]}"#);
    assert!(
        status.contains("400") && body.contains("No exec command specified"),
        "{body}"
    );
    // A container that puts a FIFO where its passwd was cannot hang the
    // daemon's user lookup: the exec fails at once.
    d.ok(&[
        "exec",
        "box",
        "sh",
        "-c",
        "rm /etc/passwd && mkfifo /etc/passwd",
    ]);
    // (Resolved when the exec starts: the failure comes in the stream.)
    let out = d.docker(&["exec", "-u", "nobody", "box", "true"]);
    assert_eq!(out.status.code(), Some(126));
    assert!(
        text(&out.stdout).contains("unable to find user nobody"),
        "{}",
        text(&out.stdout)
    );
    d.ok(&["stop", "-t", "1", "box"]);
    let err = d.fails(&["exec", "box", "true"]);
    assert!(
        err.contains(&format!("Container {id} is not running")),
        "{err}"
    );
}

#[test]
fn berth_exec_follows_docker() {
    let (d, _) = with_box();
    let out = d.berth(&["exec", "box", "sh", "-c", "echo out; echo err >&2; exit 5"]);
    assert_eq!(text(&out.stdout), "out\n");
    assert_eq!(text(&out.stderr), "err\n");
    assert_eq!(out.status.code(), Some(5));
    let out = common::daemon::output_with_input(
        d.berth_command(&[
            "exec",
            "-i",
            "-e",
            "X=1",
            "-w",
            "/etc",
            "box",
            "sh",
            "-c",
            "cat; echo $X; pwd",
        ]),
        b"typed\n",
    );
    assert_eq!(text(&out.stdout), "typed\n1\n/etc\n");
    assert_eq!(d.berth_ok(&["exec", "-d", "box", "true"]), "");
    let out = d.berth(&["exec", "box", "/no/such/command"]);
    assert_eq!(out.status.code(), Some(126));
    let out = d.berth(&["exec", "nosuch", "true"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("Error response from daemon: No such container: nosuch"));
}
