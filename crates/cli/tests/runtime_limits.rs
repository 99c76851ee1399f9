//! Privileged: cgroup limits on this machine's cgroup v1 hierarchies, seen
//! through the kernel's own files and through what the workload suffers.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::os::unix::fs::MetadataExt;

use common::{assert_nothing_left, read, wait_exit, Berth, Bundle};
use serde_json::json;

const MIB: i64 = 1024 * 1024;

#[test]
fn memory_limit_oom_kills_a_hog() {
    let berth = Berth::new();
    // Doubles a shell string until the kernel kills the shell.
    let mut bundle = Bundle::new("oom", "x=0123456789abcdef; while true; do x=$x$x; done");
    bundle.config["linux"]["resources"]["memory"] = json!({"limit": 32 * MIB, "swap": 32 * MIB});
    let pid = berth.create(&bundle);
    assert_eq!(
        read(&bundle.cgroup("memory").join("memory.limit_in_bytes")).trim(),
        (32 * MIB).to_string()
    );
    berth.ok(&["start", &bundle.id]);
    assert_eq!(wait_exit(pid), 137, "not killed by SIGKILL");
    // The cgroup records the kill (read before delete removes it).
    let oom = read(&bundle.cgroup("memory").join("memory.oom_control"));
    let kills: u64 = oom
        .lines()
        .find_map(|l| l.strip_prefix("oom_kill "))
        .expect("kernel reports oom_kill")
        .parse()
        .unwrap();
    assert!(kills >= 1, "{oom}");
    berth.ok(&["delete", &bundle.id]);
    assert_nothing_left(&berth, &bundle);
}

#[test]
fn pids_limit_stops_a_fork_bomb() {
    let berth = Berth::new();
    // An inner shell forks until refused (and then gives up); the outer one
    // reads the count with builtins only, as the limit leaves no room to fork.
    let script = "sh -c 'i=0; while [ $i -lt 40 ]; do sleep 1000 & i=$((i+1)); done'; \
                  read n < /sys/fs/cgroup/pids/pids.current; echo $n";
    let mut bundle = Bundle::new("pids", script);
    bundle.config["linux"]["resources"]["pids"] = json!({"limit": 10});
    let (_, out, err) = berth.run(&bundle);
    assert!(err.contains("can't fork"), "no fork was refused: {err}");
    let count: u32 = out.trim().parse().unwrap_or_else(|_| panic!("{out}"));
    assert!(count <= 10, "{count} processes under a limit of 10");
    assert_nothing_left(&berth, &bundle);
}

#[test]
fn cpu_memory_and_pids_settings_reach_the_kernel() {
    let berth = Berth::new();
    let mut bundle = Bundle::new("cgset", "sleep 1000");
    bundle.config["linux"]["resources"]["memory"] =
        json!({"limit": 64 * MIB, "swap": 96 * MIB, "reservation": 16 * MIB});
    bundle.config["linux"]["resources"]["cpu"] =
        json!({"shares": 512, "quota": 50000, "period": 100000, "cpus": "0", "mems": "0"});
    bundle.config["linux"]["resources"]["pids"] = json!({"limit": 77});
    let dev = std::fs::metadata("/").unwrap().dev();
    let (major, minor) = (nix::sys::stat::major(dev), nix::sys::stat::minor(dev));
    bundle.config["linux"]["resources"]["blockIO"] =
        json!({"throttleReadBpsDevice": [{"major": major, "minor": minor, "rate": 1048576}]});
    berth.create(&bundle);
    let file = |controller: &str, name: &str| {
        read(&bundle.cgroup(controller).join(name))
            .trim()
            .to_owned()
    };
    assert_eq!(
        file("memory", "memory.limit_in_bytes"),
        (64 * MIB).to_string()
    );
    assert_eq!(
        file("memory", "memory.soft_limit_in_bytes"),
        (16 * MIB).to_string()
    );
    if bundle
        .cgroup("memory")
        .join("memory.memsw.limit_in_bytes")
        .exists()
    {
        assert_eq!(
            file("memory", "memory.memsw.limit_in_bytes"),
            (96 * MIB).to_string()
        );
    }
    assert_eq!(file("cpu", "cpu.shares"), "512");
    assert_eq!(file("cpu", "cpu.cfs_quota_us"), "50000");
    assert_eq!(file("cpu", "cpu.cfs_period_us"), "100000");
    assert_eq!(file("cpuset", "cpuset.cpus"), "0");
    assert_eq!(file("pids", "pids.max"), "77");
    assert_eq!(
        file("blkio", "blkio.throttle.read_bps_device"),
        format!("{major}:{minor} 1048576")
    );
    berth.ok(&["delete", "--force", &bundle.id]);
    assert_nothing_left(&berth, &bundle);
}

#[test]
fn update_changes_a_running_containers_limits() {
    let berth = Berth::new();
    let mut bundle = Bundle::new("update", "sleep 1000");
    bundle.config["linux"]["resources"]["pids"] = json!({"limit": 50});
    berth.start_new(&bundle);
    let resources = bundle.path().join("resources.json");
    std::fs::write(
        &resources,
        json!({"memory": {"limit": 48 * MIB}}).to_string(),
    )
    .unwrap();
    berth.ok(&[
        "update",
        "--resources",
        resources.to_str().unwrap(),
        &bundle.id,
        "--pids-limit",
        "20",
        "--cpu-quota",
        "20000",
        "--cpu-shares",
        "256",
        "--cpuset-cpus",
        "0",
    ]);
    let file = |controller: &str, name: &str| {
        read(&bundle.cgroup(controller).join(name))
            .trim()
            .to_owned()
    };
    assert_eq!(file("pids", "pids.max"), "20");
    assert_eq!(
        file("memory", "memory.limit_in_bytes"),
        (48 * MIB).to_string()
    );
    assert_eq!(file("cpu", "cpu.cfs_quota_us"), "20000");
    assert_eq!(file("cpu", "cpu.shares"), "256");
    assert_eq!(file("cpuset", "cpuset.cpus"), "0");
    // A bad value is refused by the kernel, reported, and changes nothing.
    let bad = berth.output(&["update", &bundle.id, "--cpuset-cpus", "99"]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("update cgroup"));
    assert_eq!(file("cpuset", "cpuset.cpus"), "0");
    berth.ok(&["delete", "--force", &bundle.id]);
    assert_nothing_left(&berth, &bundle);
}

/// A device node the spec creates, on a major no driver claims: the device
/// cgroup answers EPERM before the kernel can answer ENXIO.
#[test]
fn device_rules_govern_access() {
    let berth = Berth::new();
    let outcome = |allow: bool| {
        let mut bundle = Bundle::new("devices", "cat /dev/x42");
        bundle.config["linux"]["devices"] =
            json!([{"path": "/dev/x42", "type": "c", "major": 42, "minor": 0, "fileMode": 438}]);
        if allow {
            bundle.config["linux"]["resources"]["devices"]
                .as_array_mut()
                .unwrap()
                .push(json!({"allow": true, "type": "c", "major": 42, "minor": 0, "access": "rw"}));
        }
        let (code, _, err) = berth.run(&bundle);
        assert_ne!(code, 0);
        err
    };
    let denied = outcome(false);
    assert!(denied.contains("Operation not permitted"), "{denied}");
    let allowed = outcome(true);
    assert!(allowed.contains("No such device"), "{allowed}");
}
