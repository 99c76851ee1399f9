//! Privileged: the Python Docker SDK (docker-py 7) drives `berth daemon`
//! through `tests/sdk/scenarios.py`. The SDK lives in a venv that
//! `scripts/setup-host.sh` makes (package registries are for set-up, not
//! for tests); `BERTH_PYTHON` names another interpreter that has it.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use common::daemon::Daemon;

/// The interpreter with the SDK.
fn python() -> String {
    let p = std::env::var("BERTH_PYTHON")
        .unwrap_or_else(|_| "/var/cache/berth/python/bin/python".to_owned());
    assert!(
        std::path::Path::new(&p).exists(),
        "{p} is missing: run scripts/setup-host.sh (it makes the venv with the docker SDK)"
    );
    p
}

/// Runs one SDK script against a new daemon; it prints "ok" when every
/// assertion held.
fn run_script(name: &str) {
    run_script_with(name, &[]);
}

/// Runs one SDK script with more arguments after the socket and tarball.
fn run_script_with(name: &str, args: &[&str]) {
    let d = Daemon::start();
    let tar = d.busybox_tar();
    let script = format!("{}/tests/sdk/{name}", env!("CARGO_MANIFEST_DIR"));
    let out = std::process::Command::new(python())
        .arg(script)
        .arg(d.socket())
        .arg(&tar)
        .args(args)
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "ok\n",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_python_sdk_runs_its_scenarios_against_berth() {
    run_script("scenarios.py");
}

#[test]
fn the_python_sdk_builds_images_on_berth() {
    run_script("build.py");
}

#[test]
fn the_python_sdk_execs_copies_mounts_and_manages_on_berth() {
    run_script("breadth.py");
}

#[test]
fn the_python_sdk_logs_in_pushes_and_pulls_through_berth() {
    let reg = common::registry::LocalRegistry::with_login("sdk", "pa55");
    run_script_with("registry.py", &[&reg.addr, "sdk", "pa55"]);
}
