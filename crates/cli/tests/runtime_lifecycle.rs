//! Privileged: the lifecycle verbs of `berth runtime` as containerd drives
//! them: create/start/state/kill/delete, run, exec, pause, ps, list, hooks,
//! fds (terminals are in runtime_terminal.rs).

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::io::Read;
use std::process::Stdio;

use common::{assert_nothing_left, read, wait_exit, Berth, Bundle};
use serde_json::json;

#[test]
fn exit_codes_propagate() {
    let berth = Berth::new();
    for (script, want) in [("exit 0", 0), ("exit 7", 7), ("exit 255", 255)] {
        let bundle = Bundle::new("exit", script);
        let (code, _, err) = berth.run(&bundle);
        assert_eq!(code, want, "{script}: {err}");
        assert_nothing_left(&berth, &bundle);
    }
}

#[test]
fn create_start_state_kill_delete() {
    let berth = Berth::new();
    let script = "trap 'echo got-term; exit 42' TERM; echo ready; while true; do sleep 0.05; done";
    let bundle = Bundle::new("lifecycle", script);
    let pid = berth.create(&bundle);
    let state = berth.state(&bundle.id);
    assert_eq!(state["status"], "created");
    assert_eq!(state["pid"], pid);
    assert_eq!(state["id"], bundle.id.as_str());
    assert_eq!(
        state["bundle"],
        bundle.path().canonicalize().unwrap().to_str().unwrap()
    );

    berth.ok(&["start", &bundle.id]);
    assert_eq!(berth.status(&bundle.id), "running");
    // Starting twice is refused, and says why.
    let again = berth.output(&["start", &bundle.id]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("running"));
    // Deleting a running container needs --force.
    let del = berth.output(&["delete", &bundle.id]);
    assert!(!del.status.success());
    assert!(
        String::from_utf8_lossy(&del.stderr).contains("--force"),
        "{del:?}"
    );

    while !read(&bundle.path().join("stdout")).contains("ready") {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    berth.ok(&["kill", &bundle.id, "TERM"]);
    assert_eq!(wait_exit(pid), 42);
    assert_eq!(read(&bundle.path().join("stdout")), "ready\ngot-term\n");
    assert_eq!(berth.status(&bundle.id), "stopped");
    assert_eq!(berth.state(&bundle.id)["pid"], 0);
    berth.ok(&["delete", &bundle.id]);
    assert_nothing_left(&berth, &bundle);
    // Now it is gone.
    let gone = berth.output(&["state", &bundle.id]);
    assert!(String::from_utf8_lossy(&gone.stderr).contains("does not exist"));
}

/// `run` in the background of the test, as a supervisor would start it.
fn spawn_run(berth: &Berth, bundle: &Bundle) -> std::process::Child {
    bundle.write();
    let child = berth
        .bundle_cmd("run", bundle, &[])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    berth.wait_status(&bundle.id, "running");
    child
}

#[test]
fn foreground_run_forwards_signals() {
    let berth = Berth::new();
    let bundle = Bundle::new(
        "fwd",
        "trap 'echo got-int; exit 5' INT; echo ready; while true; do sleep 0.05; done",
    );
    let mut child = spawn_run(&berth, &bundle);
    let mut stdout = child.stdout.take().unwrap();
    let mut ready = [0u8; 6];
    stdout.read_exact(&mut ready).unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap()),
        nix::sys::signal::SIGINT,
    )
    .unwrap();
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(5));
    assert_eq!(rest, "got-int\n");
    assert_nothing_left(&berth, &bundle);
}

#[test]
fn foreground_run_reports_a_kill_as_128_plus_signal() {
    let berth = Berth::new();
    let bundle = Bundle::new("fgkill", "sleep 1000");
    let child = spawn_run(&berth, &bundle);
    berth.ok(&["kill", &bundle.id, "KILL"]);
    assert_eq!(child.wait_with_output().unwrap().status.code(), Some(137));
    assert_nothing_left(&berth, &bundle);
}

#[test]
fn kill_all_reaches_every_process() {
    let berth = Berth::new();
    let bundle = Bundle::new("killall", "sleep 1000 & sleep 1000 & wait");
    let pid = berth.start_new(&bundle);
    while berth.pids(&bundle.id).len() < 3 {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    berth.ok(&["kill", "--all", &bundle.id, "KILL"]);
    assert_eq!(wait_exit(pid), 137);
    berth.ok(&["delete", &bundle.id]);
    assert_nothing_left(&berth, &bundle);
}

#[test]
fn ps_list_exec_pause_resume() {
    let berth = Berth::new();
    let bundle = Bundle::new("ops", "sleep 1000");
    let pid = berth.start_new(&bundle);

    let pids = berth.pids(&bundle.id);
    assert_eq!(pids, [pid]);
    let table = berth.ok(&["ps", &bundle.id]);
    assert!(table.lines().any(|l| l.contains("sleep 1000")), "{table}");

    let list = berth.ok(&["list"]);
    assert!(list.starts_with("ID"), "{list}");
    assert!(
        list.contains(&bundle.id) && list.contains("running"),
        "{list}"
    );
    assert_eq!(berth.ok(&["list", "-q"]).trim(), bundle.id);
    let listed: serde_json::Value =
        serde_json::from_str(&berth.ok(&["list", "--format", "json"])).unwrap();
    assert_eq!(listed[0]["pid"], pid);

    // exec joins the pid namespace: it sees the init as pid 1.
    let out = berth.ok(&[
        "exec",
        &bundle.id,
        "sh",
        "-c",
        "cat /proc/1/cmdline | tr '\\0' ' '; echo; exit 0",
    ]);
    assert_eq!(out, "sleep 1000 \n");
    let failing = berth.output(&["exec", "--env", "X=3", &bundle.id, "sh", "-c", "exit $X"]);
    assert_eq!(failing.status.code(), Some(3));

    berth.ok(&["pause", &bundle.id]);
    assert_eq!(berth.status(&bundle.id), "paused");
    let freezer = bundle.cgroup("freezer").join("freezer.state");
    assert_eq!(read(&freezer).trim(), "FROZEN");
    berth.ok(&["resume", &bundle.id]);
    assert_eq!(berth.status(&bundle.id), "running");
    assert_eq!(read(&freezer).trim(), "THAWED");

    berth.ok(&["delete", "--force", &bundle.id]);
    assert_eq!(wait_exit(pid), 137);
    assert_nothing_left(&berth, &bundle);
}

#[test]
fn detached_exec_writes_its_pid_file() {
    let berth = Berth::new();
    let bundle = Bundle::new("execd", "sleep 1000");
    berth.start_new(&bundle);
    let pid_file = bundle.path().join("exec.pid");
    let process = bundle.path().join("process.json");
    std::fs::write(
        &process,
        json!({"args": ["sleep", "999"], "cwd": "/", "env": ["PATH=/bin"], "user": {"uid": 0, "gid": 0}}).to_string(),
    )
    .unwrap();
    // The detached process keeps the stdio it is given: not our pipes.
    let status = berth
        .cmd()
        .args([
            "exec",
            "--detach",
            "--pid-file",
            pid_file.to_str().unwrap(),
            "--process",
            process.to_str().unwrap(),
            &bundle.id,
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let exec_pid: i32 = read(&pid_file).trim().parse().unwrap();
    let pids = berth.pids(&bundle.id);
    assert!(pids.contains(&exec_pid), "{pids:?} lacks {exec_pid}");
    let cmdline = std::fs::read_to_string(format!("/proc/{exec_pid}/cmdline")).unwrap();
    assert_eq!(cmdline, "sleep\u{0}999\u{0}");
    berth.ok(&["delete", "--force", &bundle.id]);
    assert_nothing_left(&berth, &bundle);
}

#[test]
fn hooks_run_with_the_container_state() {
    let berth = Berth::new();
    let mut bundle = Bundle::new("hooks", "echo payload");
    let log = bundle.path().join("hooks.log");
    let hook = |name: &str| json!({"path": common::BUSYBOX, "args": ["sh", "-c", format!("echo {name} >> {}; cat >> {}; echo >> {}", log.display(), log.display(), log.display())]});
    // startContainer runs inside the container: its path is the
    // container's, and it leaves its mark in the container's /tmp.
    let in_container =
        json!({"path": "/bin/sh", "args": ["sh", "-c", "echo $$ > /tmp/start-hook"]});
    bundle.config["hooks"] = json!({
        "prestart": [hook("prestart")],
        "createRuntime": [hook("createRuntime")],
        "startContainer": [in_container],
        "poststart": [hook("poststart")],
        "poststop": [hook("poststop")],
    });
    let (code, out, err) = berth.run(&bundle);
    assert_eq!((code, out.as_str()), (0, "payload\n"), "{err}");
    let text = read(&log);
    let lines: Vec<&str> = text.lines().collect();
    let names: Vec<&str> = lines.iter().step_by(2).copied().collect();
    assert_eq!(
        names,
        ["prestart", "createRuntime", "poststart", "poststop"],
        "{text}"
    );
    // It ran in the container's pid namespace (a child of its init), where
    // pids start at 1, not in the host's.
    let hook_pid: u32 = read(&bundle.rootfs().join("tmp/start-hook"))
        .trim()
        .parse()
        .unwrap();
    assert!(hook_pid < 10, "startContainer hook ran as pid {hook_pid}");
    let state: serde_json::Value = serde_json::from_str(lines[1]).unwrap();
    assert_eq!(state["id"], bundle.id.as_str());
    assert!(state["pid"].as_i64().unwrap() > 0);
}

#[test]
fn run_detached_returns_while_the_container_runs() {
    let berth = Berth::new();
    let bundle = Bundle::new("detach", "sleep 1000");
    bundle.write();
    nix::sys::prctl::set_child_subreaper(true).unwrap();
    let status = berth
        .bundle_cmd("run", &bundle, &["--detach"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let state = berth.state(&bundle.id);
    assert_eq!(state["status"], "running");
    let pid = i32::try_from(state["pid"].as_i64().unwrap()).unwrap();
    berth.ok(&["kill", &bundle.id, "KILL"]);
    assert_eq!(wait_exit(pid), 137);
    berth.ok(&["delete", &bundle.id]);
    assert_nothing_left(&berth, &bundle);
}

#[test]
fn no_pivot_still_isolates_the_root() {
    let berth = Berth::new();
    let bundle = Bundle::new("nopivot", "echo $$; ls / | tr '\\n' ' '");
    bundle.write();
    let out = berth
        .bundle_cmd("run", &bundle, &["--no-pivot"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("1\n"), "{text}");
    // The container's own root, not the host's.
    assert!(
        text.contains("bin") && !text.contains("boot") && !text.contains("home"),
        "{text}"
    );
    assert_nothing_left(&berth, &bundle);
}

#[test]
fn spec_and_features_describe_the_runtime() {
    let berth = Berth::new();
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().to_str().unwrap();
    berth.ok(&["spec", "--bundle", bundle]);
    let spec: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("config.json")).unwrap()).unwrap();
    assert_eq!(spec["process"]["terminal"], true);
    assert_eq!(spec["root"]["path"], "rootfs");
    // An existing config is never overwritten.
    let again = berth.output(&["spec", "--bundle", bundle]);
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("exists"));

    let features: serde_json::Value = serde_json::from_str(&berth.ok(&["features"])).unwrap();
    assert_eq!(features["ociVersionMin"], "1.0.0");
    assert_eq!(features["linux"]["cgroup"]["v1"], true);
    assert_eq!(features["linux"]["seccomp"]["enabled"], true);
    let namespaces = features["linux"]["namespaces"].as_array().unwrap();
    assert!(namespaces.contains(&json!("user")));
}

#[test]
fn default_cgroup_path_is_under_berth() {
    let berth = Berth::new();
    let mut bundle = Bundle::new("defcg", "sleep 1000");
    bundle.config["linux"]["cgroupsPath"] = serde_json::Value::Null;
    berth.create(&bundle);
    let cgroup = std::path::Path::new(common::CGROUP_V1)
        .join("pids/berth")
        .join(&bundle.id);
    assert!(
        cgroup.join("cgroup.procs").exists(),
        "{} missing",
        cgroup.display()
    );
    berth.ok(&["delete", "--force", &bundle.id]);
    assert!(!cgroup.exists(), "{} left behind", cgroup.display());
    // The shared parent stays, as runc leaves its parents; remove it if empty.
    for controller in std::fs::read_dir(common::CGROUP_V1).unwrap().flatten() {
        let _ = std::fs::remove_dir(controller.path().join("berth"));
    }
}

#[test]
fn a_signal_to_a_created_container_keeps_it_created() {
    let berth = Berth::new();
    let bundle = Bundle::new("sigcreated", "echo started");
    let pid = berth.create(&bundle);
    // SIGWINCH's default action is to ignore it: the init lives on, and so
    // does the created state.
    berth.ok(&["kill", &bundle.id, "WINCH"]);
    assert_eq!(berth.status(&bundle.id), "created");
    berth.ok(&["start", &bundle.id]);
    assert_eq!(wait_exit(pid), 0);
    assert_eq!(read(&bundle.path().join("stdout")), "started\n");
    berth.ok(&["delete", &bundle.id]);
    assert_nothing_left(&berth, &bundle);
}

/// `--preserve-fds N` hands fds 3.. 3+N-1 to the container; others close.
#[test]
fn preserve_fds_passes_exactly_the_extra_fds() {
    let berth = Berth::new();
    let secret = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(secret.path(), "passed-through\n").unwrap();
    let run = |preserve: &str| {
        let bundle = Bundle::new("fds", "cat <&3");
        bundle.write();
        // The host shell opens fd 3, then becomes berth.
        let script = format!(
            "exec 3<{} && exec {} runtime --root {} run --preserve-fds {preserve} --bundle {} {}",
            secret.path().display(),
            env!("CARGO_BIN_EXE_berth"),
            berth.root.path().display(),
            bundle.path().display(),
            bundle.id
        );
        let out = std::process::Command::new("/bin/sh")
            .args(["-c", &script])
            .output()
            .unwrap();
        assert_nothing_left(&berth, &bundle);
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    assert_eq!(run("1"), (Some(0), "passed-through\n".to_string()));
    let (code, out) = run("0");
    assert_ne!(code, Some(0));
    assert_eq!(out, "");
}
