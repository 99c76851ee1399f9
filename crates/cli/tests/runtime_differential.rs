//! Privileged, differential: the same bundle under `berth runtime` and under
//! runc (driven through berth's `Runc` oracle) must look the same from
//! inside: namespaces, capabilities, seccomp mode, mounts, devices, limits.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use berth_runtime::{CreateOptions, Runc, Runtime};
use common::{Berth, Bundle};
use serde_json::json;

const RUNC: &str = "/usr/sbin/runc";

/// Everything observable that the two runtimes should agree on. Mount
/// options are reduced to ro/rw: kernels print size= and similar
/// differently for equivalent requests.
const PROBE: &str = r#"
echo "pid=$$ host=$(hostname) uid=$(id)"
grep -E '^(Cap|NoNewPrivs|Seccomp:)' /proc/self/status
echo "cwd=$(pwd) umask=$(umask)"
env | sort
ulimit -a | sort
cat /proc/self/oom_score_adj
awk '{ split($4, o, ","); print $2, $3, o[1] }' /proc/self/mounts | sort
ls -ln /dev | awk 'NR > 1 { print $1, $3, $4, $5, $6, $NF }' | sort
ls /proc/self/fd | sort | tr '\n' ' '; echo
touch /proc/sys/kernel/x 2>&1 | sed 's/.*: //'
wc -c < /proc/timer_list
"#;

/// What `PROBE` prints under runc.
fn under_runc(bundle: &Bundle) -> (i32, String) {
    let root = tempfile::tempdir().unwrap();
    let runc = Runc::new(RUNC, root.path());
    // runc's stdio is this test's: the probe writes to a bind-mounted dir.
    let out_dir = bundle.path().join("out");
    std::fs::create_dir_all(&out_dir).unwrap();
    // Writable for a probe that runs as an unprivileged uid.
    std::fs::set_permissions(
        &out_dir,
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .unwrap();
    std::fs::create_dir_all(bundle.rootfs().join("out")).unwrap();
    let mut config = bundle.config.clone();
    config["process"]["args"] = json!(["sh", "-c", format!("({PROBE}) > /out/probe.out 2>&1")]);
    config["mounts"].as_array_mut().unwrap().push(json!({
        "destination": "/out", "type": "bind", "source": out_dir, "options": ["rbind", "rw"]
    }));
    std::fs::write(bundle.path().join("config.json"), config.to_string()).unwrap();
    let id = format!("{}-runc", bundle.id);
    let opts = CreateOptions {
        bundle: bundle.path().to_path_buf(),
        ..CreateOptions::default()
    };
    let code = runc.run(&id, &opts, false).unwrap();
    let out = std::fs::read_to_string(out_dir.join("probe.out")).unwrap();
    let without_out_mount = out
        .lines()
        .filter(|l| !l.starts_with("/out "))
        .collect::<Vec<_>>();
    (code, without_out_mount.join("\n") + "\n")
}

fn under_berth(bundle: &Bundle) -> (i32, String) {
    let berth = Berth::new();
    let mut probe = Bundle::new("diff-berth", "");
    probe.config = bundle.config.clone();
    probe.config["process"]["args"] = json!(["sh", "-c", PROBE]);
    std::fs::remove_dir_all(probe.rootfs()).unwrap();
    common::make_rootfs(&probe.rootfs());
    let (code, out, err) = berth.run(&probe);
    (code, out + &err)
}

/// Where berth is deliberately stricter than runc 1.1 (runc line, berth line).
const KNOWN: [(&str, &str); 1] = [
    // berth also remounts the cgroup v1 tmpfs read-only (vendor patch 1).
    ("/sys/fs/cgroup tmpfs rw", "/sys/fs/cgroup tmpfs ro"),
];

fn assert_same(bundle: &Bundle) {
    assert!(
        std::path::Path::new(RUNC).exists(),
        "{RUNC} missing: apt-get install runc"
    );
    let (runc_code, runc_out) = under_runc(bundle);
    let (berth_code, berth_out) = under_berth(bundle);
    assert_eq!(runc_code, 0, "runc failed:\n{runc_out}");
    assert_eq!(berth_code, 0, "berth failed:\n{berth_out}");
    let runc_lines: Vec<&str> = runc_out
        .lines()
        .map(|l| KNOWN.iter().find(|(r, _)| *r == l).map_or(l, |(_, b)| b))
        .collect();
    let berth_lines: Vec<&str> = berth_out.lines().collect();
    let only_runc: Vec<&&str> = runc_lines
        .iter()
        .filter(|l| !berth_lines.contains(l))
        .collect();
    let only_berth: Vec<&&str> = berth_lines
        .iter()
        .filter(|l| !runc_lines.contains(l))
        .collect();
    assert!(
        only_runc.is_empty() && only_berth.is_empty(),
        "runc and berth differ\nonly under runc: {only_runc:#?}\nonly under berth: {only_berth:#?}"
    );
}

#[test]
fn docker_default_spec_looks_the_same() {
    let bundle = Bundle::new("diff", "");
    assert_same(&bundle);
}

#[test]
fn a_restricted_spec_looks_the_same() {
    let mut bundle = Bundle::new("diff-restricted", "");
    let p = &mut bundle.config["process"];
    p["user"] = json!({"uid": 1000, "gid": 1000, "additionalGids": [5]});
    p["env"] = json!(["PATH=/bin", "A=1"]);
    p["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "soft": 256, "hard": 512}]);
    p["noNewPrivileges"] = json!(true);
    p["capabilities"] =
        json!({"bounding": ["CAP_KILL"], "effective": ["CAP_KILL"], "permitted": ["CAP_KILL"]});
    bundle.config["hostname"] = json!("restricted");
    bundle.config["root"]["readonly"] = json!(true);
    assert_same(&bundle);
}
