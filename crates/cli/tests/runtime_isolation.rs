//! Privileged: what a process sees from inside a berth container, asserted
//! from inside it (namespaces, mounts, capabilities, seccomp, users).
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use common::{assert_nothing_left, Berth, Bundle};
use serde_json::json;

#[test]
fn the_process_is_pid_1() {
    let berth = Berth::new();
    let bundle = Bundle::new("pid1", "echo $$; ps -o pid | wc -l");
    let (code, out, err) = berth.run(&bundle);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "1");
    // header, sh, ps and wc: nothing of the host is visible.
    assert!(lines[1].trim().parse::<u32>().unwrap() <= 4, "{out}");
    assert_nothing_left(&berth, &bundle);
}

#[test]
fn hostname_is_isolated() {
    let berth = Berth::new();
    let host_before = nix::unistd::gethostname().unwrap();
    let mut bundle = Bundle::new("uts", "hostname; hostname changed-inside; hostname");
    bundle.config["hostname"] = json!("box-one");
    bundle.config["process"]["capabilities"]["bounding"]
        .as_array_mut()
        .unwrap()
        .push(json!("CAP_SYS_ADMIN"));
    for set in ["effective", "permitted"] {
        bundle.config["process"]["capabilities"][set]
            .as_array_mut()
            .unwrap()
            .push(json!("CAP_SYS_ADMIN"));
    }
    bundle.config["linux"]["seccomp"] = serde_json::Value::Null;
    let (code, out, err) = berth.run(&bundle);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "box-one\nchanged-inside\n");
    assert_eq!(nix::unistd::gethostname().unwrap(), host_before);
}

#[test]
fn mounts_do_not_leak_either_way() {
    let berth = Berth::new();
    let host_mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let script = "mount -t tmpfs inner /mnt && grep -c ' /mnt ' /proc/self/mountinfo; \
                  grep -c berth-host-marker /proc/self/mountinfo; sleep 0";
    let mut bundle = Bundle::new("mnt", script);
    grant(&mut bundle, "CAP_SYS_ADMIN");
    bundle.config["linux"]["seccomp"] = serde_json::Value::Null;
    let (code, out, err) = berth.run(&bundle);
    // The container saw its own mount and none of the host's tmpfs markers.
    assert_eq!(out, "1\n0\n", "exit {code}: {err}");
    let after = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !after.contains(" inner "),
        "container mount leaked to the host"
    );
    assert_eq!(count_mounts(&host_mounts), count_mounts(&after));
}

fn count_mounts(mountinfo: &str) -> usize {
    mountinfo.lines().count()
}

/// Adds a capability to the bounding, effective and permitted sets.
pub fn grant(bundle: &mut Bundle, cap: &str) {
    for set in ["bounding", "effective", "permitted"] {
        bundle.config["process"]["capabilities"][set]
            .as_array_mut()
            .unwrap()
            .push(json!(cap));
    }
}

#[test]
fn effective_capabilities_are_dockers_defaults() {
    let berth = Berth::new();
    let bundle = Bundle::new(
        "caps",
        "grep -E '^(Cap(Eff|Prm|Bnd|Inh|Amb)|NoNewPrivs)' /proc/self/status",
    );
    let (code, out, err) = berth.run(&bundle);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("CapEff:\t00000000a80425fb"), "{out}");
    assert!(out.contains("CapBnd:\t00000000a80425fb"), "{out}");
    assert!(out.contains("CapInh:\t0000000000000000"), "{out}");
    assert!(out.contains("CapAmb:\t0000000000000000"), "{out}");
    // Docker leaves no_new_privileges off by default.
    assert!(out.contains("NoNewPrivs:\t0"), "{out}");
}

#[test]
fn seccomp_denies_with_eperm() {
    let berth = Berth::new();
    // unshare(CLONE_NEWUSER) needs no capability, so only seccomp stops it.
    let script = "grep ^Seccomp: /proc/self/status; unshare -U true && echo allowed || echo denied";
    let with = Bundle::new("seccomp", script);
    let (_, out, err) = berth.run(&with);
    assert_eq!(out, "Seccomp:\t2\ndenied\n", "{err}");
    assert!(err.contains("Operation not permitted"), "{err}");

    let mut without = Bundle::new("noseccomp", script);
    without.config["linux"]["seccomp"] = serde_json::Value::Null;
    let (_, out, err) = berth.run(&without);
    assert_eq!(out, "Seccomp:\t0\nallowed\n", "{err}");
}

#[test]
fn a_custom_seccomp_rule_applies() {
    let berth = Berth::new();
    let mut bundle = Bundle::new("seccomp-mkdir", "mkdir /tmp/d && echo made || echo refused");
    bundle.config["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]
    });
    let (_, out, err) = berth.run(&bundle);
    assert_eq!(out, "refused\n");
    assert!(err.contains("Operation not permitted"), "{err}");
}

/// The cached seccomp programs of a state root (`<root>/.seccomp`).
fn cached_programs(berth: &Berth) -> Vec<std::path::PathBuf> {
    let dir = berth.root.path().join(".seccomp");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "bpf"))
        .collect();
    files.sort();
    files
}

fn denying(id: &str, syscalls: &[&str]) -> Bundle {
    let mut b = Bundle::new(id, "mkdir /tmp/d && echo made || echo refused");
    b.config["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": syscalls, "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]
    });
    b
}

/// A profile is compiled once per state root: the program is stored
/// under `.seccomp` and reused, and a cache file is trusted only for the
/// exact profile it was made for.
#[test]
fn compiled_seccomp_programs_are_cached_and_checked() {
    use std::os::unix::fs::MetadataExt;
    let berth = Berth::new();
    let (_, out, err) = berth.run(&denying("cache-a", &["mkdir", "mkdirat"]));
    assert_eq!(out, "refused\n", "{err}");
    let files = cached_programs(&berth);
    assert_eq!(files.len(), 1, "{files:?}");
    let first = std::fs::metadata(&files[0]).unwrap();
    let program_a = std::fs::read(&files[0]).unwrap();
    // Run again: the same file, not rewritten.
    let (_, out, err) = berth.run(&denying("cache-a2", &["mkdir", "mkdirat"]));
    assert_eq!(out, "refused\n", "{err}");
    let again = std::fs::metadata(&files[0]).unwrap();
    assert_eq!(
        (first.ino(), first.mtime_nsec()),
        (again.ino(), again.mtime_nsec())
    );

    // Another profile (mkdir allowed) gets a file of its own.
    let (_, out, err) = berth.run(&denying("cache-b", &["rmdir"]));
    assert_eq!(out, "made\n", "{err}");
    let both = cached_programs(&berth);
    assert_eq!(both.len(), 2, "{both:?}");
    let file_b = both.iter().find(|f| **f != files[0]).unwrap();
    // Profile b's file put where profile a's is looked up: its key does
    // not match, so a's own program is compiled again (mkdir refused).
    std::fs::copy(file_b, &files[0]).unwrap();
    let (_, out, err) = berth.run(&denying("cache-a3", &["mkdir", "mkdirat"]));
    assert_eq!(out, "refused\n", "{err}");
    assert_eq!(std::fs::read(&files[0]).unwrap(), program_a);
    // A damaged file is not loaded either.
    std::fs::write(&files[0], b"berth-seccomp-bpf 1\n\x05\0\0\0junk").unwrap();
    let (code, out, err) = berth.run(&denying("cache-a4", &["mkdir", "mkdirat"]));
    assert_eq!((code, out.as_str()), (0, "refused\n"), "{err}");
    assert_eq!(std::fs::read(&files[0]).unwrap(), program_a);
}

#[test]
fn readonly_rootfs_refuses_writes() {
    let berth = Berth::new();
    let mut bundle = Bundle::new("ro", "touch /newfile; echo $?; touch /tmp/x; echo $?");
    bundle.config["root"]["readonly"] = json!(true);
    let (_, out, err) = berth.run(&bundle);
    assert_eq!(out, "1\n1\n", "{err}");
    assert!(err.contains("Read-only file system"), "{err}");
    assert!(!bundle.rootfs().join("newfile").exists());
}

#[test]
fn masked_paths_read_empty_and_readonly_paths_refuse_writes() {
    let berth = Berth::new();
    // Masked files the host has content in (this kernel has no /proc/kcore).
    for file in ["/proc/timer_list", "/proc/interrupts"] {
        assert!(
            !std::fs::read(file).unwrap().is_empty(),
            "{file} empty on the host"
        );
    }
    let script = "wc -c < /proc/timer_list; wc -c < /proc/interrupts; ls /sys/firmware | wc -l; \
                  echo 1 > /proc/sys/kernel/domainname && echo wrote || echo refused";
    let bundle = Bundle::new("masked", script);
    let (_, out, err) = berth.run(&bundle);
    assert_eq!(out, "0\n0\n0\nrefused\n", "{err}");
}

#[test]
fn user_namespace_maps_root_to_an_unprivileged_uid() {
    let berth = Berth::new();
    let mut bundle = Bundle::new(
        "userns",
        "cat /proc/self/uid_map; id -u; stat -c %u /proc/1",
    );
    bundle.config["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "user"}));
    bundle.config["linux"]["uidMappings"] =
        json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    bundle.config["linux"]["gidMappings"] =
        json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    let pid = berth.create(&bundle);
    // Seen from the host, the container's root is uid 100000.
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let uid_line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    assert_eq!(
        uid_line.split_whitespace().nth(1),
        Some("100000"),
        "{uid_line}"
    );
    berth.ok(&["start", &bundle.id]);
    let code = common::wait_exit(pid);
    let out = common::read(&bundle.path().join("stdout"));
    assert_eq!(code, 0, "{}", common::read(&bundle.path().join("stderr")));
    let fields: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(fields, ["0", "100000", "65536", "0", "0"]);
    berth.ok(&["delete", &bundle.id]);
    assert_nothing_left(&berth, &bundle);
}

#[test]
fn no_host_fd_leaks_into_the_container() {
    use nix::fcntl::{open, OFlag};
    use nix::sys::stat::Mode;
    let berth = Berth::new();
    // The CVE-2024-21626 shape: a host directory fd inherited by the runtime.
    let leaked = open(
        "/sys/fs/cgroup",
        OFlag::O_RDONLY | OFlag::O_DIRECTORY,
        Mode::empty(),
    )
    .unwrap();
    let bundle = Bundle::new(
        "fds",
        // ls becomes pid 1 itself: a shell would hold pipe fds of its own
        // while building a pipeline. ls's own fd 3 is its directory handle.
        "readlink /proc/self/cwd; exec ls /proc/self/fd",
    );
    let (code, out, err) = berth.run(&bundle);
    nix::unistd::close(leaked).unwrap();
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "/\n0\n1\n2\n3\n");
}

#[test]
fn process_settings_apply() {
    let berth = Berth::new();
    let script = "id; pwd; echo $GREETING; ulimit -n; cat /proc/self/oom_score_adj; \
                  grep ^NoNewPrivs /proc/self/status; cat /proc/sys/net/ipv4/ip_forward";
    let mut bundle = Bundle::new("process", script);
    std::fs::create_dir_all(bundle.rootfs().join("work")).unwrap();
    let p = &mut bundle.config["process"];
    p["user"] = json!({"uid": 1000, "gid": 1000, "additionalGids": [10, 20]});
    p["cwd"] = json!("/work");
    p["env"] = json!(["PATH=/bin", "GREETING=hello"]);
    p["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "soft": 512, "hard": 512}]);
    p["oomScoreAdj"] = json!(500);
    p["noNewPrivileges"] = json!(true);
    bundle.config["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1"});
    let (code, out, err) = berth.run(&bundle);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    // As with runc: the supplementary groups are exactly additionalGids.
    assert_eq!(lines[0], "uid=1000 gid=1000 groups=10,20");
    assert_eq!(
        &lines[1..],
        ["/work", "hello", "512", "500", "NoNewPrivs:\t1", "1"]
    );
}

/// The container's root must not lift its own limits through cgroupfs
/// (vendored libcontainer patch 1).
#[test]
fn cgroup_files_are_read_only() {
    let berth = Berth::new();
    let script = "echo 1 > /sys/fs/cgroup/pids/pids.max && echo wrote || echo refused; \
                  mkdir /sys/fs/cgroup/extra && echo made || echo refused";
    let mut bundle = Bundle::new("cgro", script);
    bundle.config["linux"]["resources"]["pids"] = json!({"limit": 100});
    let (_, out, err) = berth.run(&bundle);
    assert_eq!(out, "refused\nrefused\n", "{err}");
    assert!(err.contains("Read-only file system"), "{err}");
}

/// An explicit `false` must behave like an absent field: seccomp still
/// loads (vendored libcontainer patch 2).
#[test]
fn explicit_no_new_privileges_false_keeps_seccomp() {
    let berth = Berth::new();
    let mut bundle = Bundle::new(
        "nnpfalse",
        "grep -E '^(NoNewPrivs|Seccomp):' /proc/self/status",
    );
    bundle.config["process"]["noNewPrivileges"] = json!(false);
    let (code, out, err) = berth.run(&bundle);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "NoNewPrivs:\t0\nSeccomp:\t2\n");
}
