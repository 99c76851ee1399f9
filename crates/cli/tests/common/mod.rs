//! Shared fixtures for the privileged runtime tests: busybox bundles made
//! from Debian's static busybox, a `berth runtime` with its own state root,
//! and checks that nothing is left behind.
#![allow(dead_code)] // each test binary uses a different part of this module
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

pub mod daemon;
pub mod registry;
pub mod token;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::{json, Value};

pub const BUSYBOX: &str = "/bin/busybox";

/// The cgroup v1 hierarchies the tests look into.
pub const CGROUP_V1: &str = "/sys/fs/cgroup";

/// Fails loudly, not silently, where the tests cannot run.
pub fn require_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "the runtime tests need root (namespaces, mounts, cgroups): run them as root"
    );
    assert!(
        Path::new(BUSYBOX).exists(),
        "{BUSYBOX} is missing: apt-get install busybox-static"
    );
}

/// A unique container id for this test process.
pub fn unique_id(name: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!(
        "{name}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// A bundle directory with a busybox rootfs and an editable config.
#[derive(Debug)]
pub struct Bundle {
    pub dir: tempfile::TempDir,
    pub config: Value,
    pub id: String,
}

impl Bundle {
    /// Docker's default spec (berth's `docker_spec`) running `script` with sh.
    pub fn new(name: &str, script: &str) -> Self {
        require_root();
        let dir = tempfile::Builder::new()
            .prefix("berth-bundle-")
            .tempdir()
            .unwrap();
        make_rootfs(&dir.path().join("rootfs"));
        let id = unique_id(name);
        let spec =
            berth_runtime::defaults::docker_spec(vec!["sh".into(), "-c".into(), script.into()]);
        let mut config = serde_json::to_value(spec).unwrap();
        config["linux"]["cgroupsPath"] = json!(format!("/berth-test-{id}"));
        Self { dir, config, id }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn rootfs(&self) -> PathBuf {
        self.dir.path().join("rootfs")
    }

    /// Writes config.json (call after editing `config`).
    pub fn write(&self) {
        std::fs::write(
            self.dir.path().join("config.json"),
            serde_json::to_vec_pretty(&self.config).unwrap(),
        )
        .unwrap();
    }

    /// The cgroup directory of this container in one v1 hierarchy.
    pub fn cgroup(&self, controller: &str) -> PathBuf {
        let path = self.config["linux"]["cgroupsPath"].as_str().unwrap();
        Path::new(CGROUP_V1)
            .join(controller)
            .join(path.trim_start_matches('/'))
    }
}

/// rootfs with busybox, its applets as symlinks, and the usual mount points.
pub fn make_rootfs(rootfs: &Path) {
    let bin = rootfs.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::copy(BUSYBOX, bin.join("busybox")).unwrap();
    let list = Command::new(BUSYBOX).arg("--list").output().unwrap();
    for applet in String::from_utf8(list.stdout).unwrap().lines() {
        if applet != "busybox" {
            std::os::unix::fs::symlink("busybox", bin.join(applet)).unwrap();
        }
    }
    for dir in ["proc", "dev", "sys", "tmp", "mnt", "etc", "root"] {
        std::fs::create_dir_all(rootfs.join(dir)).unwrap();
    }
    std::fs::write(rootfs.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
    std::fs::write(rootfs.join("etc/group"), "root:x:0:\n").unwrap();
}

/// `berth runtime` with a private state root.
#[derive(Debug)]
pub struct Berth {
    pub root: tempfile::TempDir,
}

impl Default for Berth {
    fn default() -> Self {
        Self::new()
    }
}

impl Berth {
    pub fn new() -> Self {
        let root = tempfile::Builder::new()
            .prefix("berth-state-")
            .tempdir()
            .unwrap();
        Self { root }
    }

    pub fn cmd(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_berth"));
        cmd.arg("runtime").arg("--root").arg(self.root.path());
        cmd
    }

    /// Runs `berth runtime ARGS` with captured output.
    pub fn output(&self, args: &[&str]) -> Output {
        self.cmd().args(args).stdin(Stdio::null()).output().unwrap()
    }

    /// Runs it and insists on success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.output(args);
        assert!(
            out.status.success(),
            "berth runtime {args:?} failed ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// `berth runtime VERB FLAGS --bundle DIR ID` on the config.json as it
    /// is on disk (call `bundle.write()` first); stdio is the caller's to set.
    pub fn bundle_cmd(&self, verb: &str, bundle: &Bundle, flags: &[&str]) -> Command {
        let mut cmd = self.cmd();
        cmd.arg(verb)
            .args(flags)
            .arg("--bundle")
            .arg(bundle.path())
            .arg(&bundle.id);
        cmd
    }

    /// `run` in the foreground: (exit code, stdout, stderr).
    pub fn run(&self, bundle: &Bundle) -> (i32, String, String) {
        bundle.write();
        let out = self
            .bundle_cmd("run", bundle, &[])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// `create` with stdout/stderr sent to files in the bundle; returns the
    /// init's pid. The test process becomes the init's subreaper, so
    /// [`wait_exit`] can collect its status.
    pub fn create(&self, bundle: &Bundle) -> i32 {
        bundle.write();
        nix::sys::prctl::set_child_subreaper(true).unwrap();
        let stdout = std::fs::File::create(bundle.path().join("stdout")).unwrap();
        let stderr = std::fs::File::create(bundle.path().join("stderr")).unwrap();
        let pid_file = bundle.path().join("init.pid");
        let status = self
            .bundle_cmd(
                "create",
                bundle,
                &["--pid-file", pid_file.to_str().unwrap()],
            )
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .status()
            .unwrap();
        assert!(
            status.success(),
            "create failed: {}",
            read(&bundle.path().join("stderr"))
        );
        std::fs::read_to_string(pid_file)
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    }

    /// `create` then `start`; returns the init's pid.
    pub fn start_new(&self, bundle: &Bundle) -> i32 {
        let pid = self.create(bundle);
        self.ok(&["start", &bundle.id]);
        pid
    }

    /// Host pids of the container's processes (`ps --format json`).
    pub fn pids(&self, id: &str) -> Vec<i32> {
        serde_json::from_str(&self.ok(&["ps", "--format", "json", id])).unwrap()
    }

    /// The container's state JSON.
    pub fn state(&self, id: &str) -> Value {
        serde_json::from_str(&self.ok(&["state", id])).unwrap()
    }

    pub fn status(&self, id: &str) -> String {
        self.state(id)["status"].as_str().unwrap().to_owned()
    }

    /// Waits until `status` is reached (the state may not exist yet),
    /// checking between short sleeps; fails after a minute (a hang, not a
    /// slow machine).
    pub fn wait_status(&self, id: &str, status: &str) {
        for _ in 0..6000 {
            let out = self.output(&["state", id]);
            let state: Option<Value> = serde_json::from_slice(&out.stdout).ok();
            if state.is_some_and(|s| s["status"] == status) {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        panic!("{id} never reached {status}");
    }
}

/// A failed test must not leave containers running: they would hold the
/// test harness's pipes open and hang it.
impl Drop for Berth {
    fn drop(&mut self) {
        let Ok(out) = self.cmd().args(["list", "-q"]).output() else {
            return;
        };
        for id in String::from_utf8_lossy(&out.stdout).lines() {
            let _ = self.cmd().args(["delete", "--force", id]).output();
        }
    }
}

/// Collects the exit status of a container init this process is subreaper of.
pub fn wait_exit(pid: i32) -> i32 {
    use nix::sys::wait::{waitpid, WaitStatus};
    loop {
        match waitpid(nix::unistd::Pid::from_raw(pid), None).unwrap() {
            WaitStatus::Exited(_, code) => return code,
            WaitStatus::Signaled(_, sig, _) => return 128 + sig as i32,
            _ => continue,
        }
    }
}

pub fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// Asserts that nothing of `bundle`'s container survives: no state dir, no
/// cgroup in any v1 hierarchy, no mount under the bundle.
pub fn assert_nothing_left(berth: &Berth, bundle: &Bundle) {
    let state_dir = berth.root.path().join(&bundle.id);
    assert!(
        !state_dir.exists(),
        "state dir {} left behind",
        state_dir.display()
    );
    for controller in [
        "memory", "pids", "cpu", "cpuset", "devices", "freezer", "blkio",
    ] {
        let cg = bundle.cgroup(controller);
        assert!(!cg.exists(), "cgroup {} left behind", cg.display());
    }
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let bundle_path = bundle.path().to_str().unwrap();
    assert!(
        !mounts.contains(bundle_path),
        "mounts under {bundle_path} left behind:\n{mounts}"
    );
}
