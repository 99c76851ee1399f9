//! A `berth daemon` on temporary roots for API tests, driven by the real
//! `docker` CLI and raw HTTP.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

/// A daemon on temporary roots and its own socket; stopped with SIGTERM.
pub struct Daemon {
    pub child: Child,
    pub dir: tempfile::TempDir,
}

impl Daemon {
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// A daemon with these flags besides its roots and socket.
    pub fn start_with(flags: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let child = Self::spawn(
            dir.path(),
            &dir.path().join("data"),
            &dir.path().join("berth.sock"),
        )
        .args(flags)
        .spawn()
        .unwrap();
        let d = Self { child, dir };
        d.wait_ready();
        d
    }

    /// The daemon command on these roots (to add flags, then spawn).
    pub fn spawn(dir: &Path, data: &Path, sock: &Path) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_berth"));
        c.arg("daemon")
            .arg("--data-root")
            .arg(data)
            .arg("--exec-root")
            .arg(dir.join("exec"))
            .arg("-H")
            .arg(format!("unix://{}", sock.display()))
            .stdout(Stdio::null())
            .stderr(if std::env::var_os("BERTH_TEST_DAEMON_LOG").is_some() {
                Stdio::inherit()
            } else {
                Stdio::piped()
            });
        c
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("berth.sock")
    }

    /// Polls until the socket answers a ping (or the daemon exits).
    pub fn wait_ready(&self) {
        for _ in 0..2000 {
            if UnixStream::connect(self.socket()).is_ok() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        panic!("the daemon did not listen on {}", self.socket().display());
    }

    /// A docker command against this daemon, to configure further.
    pub fn command(&self, program: &str, args: &[&str]) -> Command {
        let mut c = Command::new(program);
        c.args(args)
            .env("DOCKER_HOST", format!("unix://{}", self.socket().display()))
            .env("DOCKER_CONFIG", self.dir.path().join("docker-config"));
        c
    }

    /// The berth CLI against this daemon.
    pub fn berth(&self, args: &[&str]) -> Output {
        self.berth_command(args).output().unwrap()
    }

    /// A berth CLI command against this daemon, to configure further.
    pub fn berth_command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_berth"));
        c.args(args)
            .env("BERTH_HOST", format!("unix://{}", self.socket().display()))
            .env("DOCKER_CONFIG", self.dir.path().join("docker-config"));
        c
    }

    /// Runs berth, which must succeed; returns its stdout.
    pub fn berth_ok(&self, args: &[&str]) -> String {
        let out = self.berth(args);
        assert!(
            out.status.success(),
            "berth {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    pub fn docker(&self, args: &[&str]) -> Output {
        self.command("docker", args).output().unwrap()
    }

    /// Runs docker with `input` on its stdin; returns its output.
    pub fn docker_with_input(&self, args: &[&str], input: &[u8]) -> Output {
        output_with_input(self.command("docker", args), input)
    }

    /// `docker import` of the busybox root filesystem as `busybox:test`.
    pub fn import_busybox(&self) {
        let tar = self.busybox_tar();
        self.ok(&["import", tar.to_str().unwrap(), "busybox:test"]);
    }

    /// How many mounts lie under the test's directory.
    pub fn mounts_under(&self) -> usize {
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        let root = self.dir.path().to_str().unwrap().to_owned();
        mounts.lines().filter(|l| l.contains(&root)).count()
    }

    /// Runs docker, which must succeed; returns its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.docker(args);
        assert!(
            out.status.success(),
            "docker {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs docker, which must fail; returns its stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.docker(args);
        assert!(!out.status.success(), "docker {args:?} succeeded");
        String::from_utf8(out.stderr).unwrap()
    }

    /// One raw HTTP/1.1 request; returns (status line, headers, body).
    pub fn http(&self, method: &str, path: &str) -> (String, String, String) {
        self.http_json(method, path, "")
    }

    /// One raw HTTP/1.1 request with a JSON body.
    pub fn http_json(&self, method: &str, path: &str, body: &str) -> (String, String, String) {
        http_at(&self.socket(), method, path, body).unwrap()
    }

    /// A busybox rootfs tarball, as `docker import` takes it.
    pub fn busybox_tar(&self) -> PathBuf {
        let root = self.dir.path().join("rootfs");
        if !root.exists() {
            super::make_rootfs(&root);
        }
        let tar = self.dir.path().join("busybox.tar");
        let st = Command::new("tar")
            .arg("-C")
            .arg(&root)
            .arg("-cf")
            .arg(&tar)
            .arg(".")
            .status()
            .unwrap();
        assert!(st.success());
        tar
    }
}

impl Daemon {
    /// Kills the daemon with SIGKILL (containers and shims live on).
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts a new daemon on the same roots and socket.
    pub fn restart(&mut self) {
        self.child = Self::spawn(
            self.dir.path(),
            &self.dir.path().join("data"),
            &self.socket(),
        )
        .spawn()
        .unwrap();
        self.wait_ready();
    }

    /// The shim control socket of a container.
    pub fn shim_socket(&self, id: &str) -> PathBuf {
        self.dir
            .path()
            .join("exec/shims")
            .join(id)
            .join("control.sock")
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        // Containers first: no shim, mount or cgroup outlives a test.
        let listed = self.docker(&["ps", "-aq", "--no-trunc"]).stdout;
        for id in String::from_utf8_lossy(&listed).lines() {
            let _ = self.docker(&["rm", "-f", id]);
        }
        let pid = nix::unistd::Pid::from_raw(i32::try_from(self.child.id()).unwrap());
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let _ = self.child.wait();
        // The parent cgroups of berth's containers, once no test uses them
        // (rmdir fails harmlessly while another test's container lives).
        for controller in [
            "memory",
            "pids",
            "cpu,cpuacct",
            "cpuset",
            "devices",
            "freezer",
            "blkio",
            "net_cls,net_prio",
            "perf_event",
            "hugetlb",
            "rdma",
            "misc",
            "systemd",
            "unified",
        ] {
            let _ = std::fs::remove_dir(
                std::path::Path::new("/sys/fs/cgroup")
                    .join(controller)
                    .join("berth"),
            );
        }
    }
}

/// One raw HTTP/1.1 request to the socket at `socket`; None when the
/// daemon is not there or hangs up (a test that kills it expects that).
pub fn http_at(
    socket: &Path,
    method: &str,
    path: &str,
    body: &str,
) -> Option<(String, String, String)> {
    let mut s = UnixStream::connect(socket).ok()?;
    let len = body.len();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: berth\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {len}\r\n\r\n{body}"
    )
    .ok()?;
    let mut raw = String::new();
    s.read_to_string(&mut raw).ok()?;
    let (head, body) = raw.split_once("\r\n\r\n")?;
    let (status, headers) = head.split_once("\r\n").unwrap_or((head, ""));
    Some((
        status.to_owned(),
        headers.to_ascii_lowercase(),
        body.to_owned(),
    ))
}

/// Runs `cmd` with `input` on its stdin; returns its output.
pub fn output_with_input(mut cmd: Command, input: &[u8]) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

/// Now as Unix seconds with nanoseconds, the form `--since`/`--until` take.
pub fn unix_now() -> String {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    format!("{}.{:09}", t.as_secs(), t.subsec_nanos())
}
