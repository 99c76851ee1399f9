//! Privileged, end to end: containerd (Debian's, with its runc shim) drives
//! `berth-runtime` as its runc binary, the way Kubernetes nodes would. The
//! test starts its own containerd on private paths and imports an OCI image
//! it builds from busybox.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use serde_json::json;
use sha2::{Digest, Sha256};

const IMAGE: &str = "docker.io/library/berth-busybox:test";

/// A containerd of our own; killed (by its pid) when dropped.
struct Containerd {
    dir: tempfile::TempDir,
    child: Child,
}

impl Containerd {
    fn start() -> Self {
        common::require_root();
        for tool in [
            "/usr/bin/containerd",
            "/usr/bin/ctr",
            "/usr/bin/containerd-shim-runc-v2",
        ] {
            assert!(
                Path::new(tool).exists(),
                "{tool} missing: apt-get install containerd"
            );
        }
        let dir = tempfile::Builder::new()
            .prefix("berth-containerd-")
            .tempdir()
            .unwrap();
        let config = dir.path().join("config.toml");
        let p = dir.path().display();
        std::fs::write(
            &config,
            format!(
                "version = 2\nroot = \"{p}/root\"\nstate = \"{p}/state\"\n\
                 disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n[grpc]\n  address = \"{p}/ctd.sock\"\n"
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.path().join("containerd.log")).unwrap();
        let child = Command::new("/usr/bin/containerd")
            .arg("--config")
            .arg(&config)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let ctd = Self { dir, child };
        // Ready when it answers; a minute means it hangs, not that it is slow.
        for _ in 0..600 {
            if ctd.ctr(&["version"]).status.success() {
                return ctd;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!(
            "containerd did not start: {}",
            common::read(&ctd.dir.path().join("containerd.log"))
        );
    }

    fn ctr(&self, args: &[&str]) -> Output {
        Command::new("/usr/bin/ctr")
            .arg("--address")
            .arg(self.dir.path().join("ctd.sock"))
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.ctr(args);
        assert!(
            out.status.success(),
            "ctr {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// `berth-runtime`, a link to the berth binary that acts as `berth runtime`.
    fn runtime_binary(&self) -> PathBuf {
        let link = self.dir.path().join("berth-runtime");
        if !link.exists() {
            std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_berth"), &link).unwrap();
        }
        link
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        for task in String::from_utf8_lossy(&self.ctr(&["task", "ls", "-q"]).stdout).lines() {
            let _ = self.ctr(&["task", "kill", "-s", "KILL", task]);
            let _ = self.ctr(&["task", "rm", "-f", task]);
        }
        for container in String::from_utf8_lossy(&self.ctr(&["c", "ls", "-q"]).stdout).lines() {
            let _ = self.ctr(&["c", "rm", container]);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn sha256(data: &[u8]) -> String {
    format!("sha256:{:x}", Sha256::digest(data))
}

fn tar_entry(builder: &mut tar::Builder<Vec<u8>>, path: &str, data: &[u8]) {
    let mut header = tar::Header::new_gnu();
    header.set_size(data.len() as u64);
    header.set_mode(0o644);
    header.set_cksum();
    builder.append_data(&mut header, path, data).unwrap();
}

/// An OCI image-layout tarball: one layer holding busybox and its applets.
fn busybox_oci_archive(path: &Path) {
    let rootfs = tempfile::tempdir().unwrap();
    common::make_rootfs(rootfs.path());
    let mut layer = tar::Builder::new(Vec::new());
    layer.follow_symlinks(false);
    layer.append_dir_all(".", rootfs.path()).unwrap();
    let layer = layer.into_inner().unwrap();
    let config = json!({
        "architecture": "amd64", "os": "linux",
        "config": {"Env": ["PATH=/bin"], "Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": [sha256(&layer)]}
    })
    .to_string();
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha256(config.as_bytes()), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": sha256(&layer), "size": layer.len()}]
    })
    .to_string();
    let index = json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": sha256(manifest.as_bytes()), "size": manifest.len(),
            "annotations": {"io.containerd.image.name": IMAGE, "org.opencontainers.image.ref.name": "test"}
        }]
    })
    .to_string();
    let mut archive = tar::Builder::new(Vec::new());
    tar_entry(
        &mut archive,
        "oci-layout",
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    );
    tar_entry(&mut archive, "index.json", index.as_bytes());
    for blob in [&layer[..], config.as_bytes(), manifest.as_bytes()] {
        let name = format!("blobs/sha256/{}", &sha256(blob)["sha256:".len()..]);
        tar_entry(&mut archive, &name, blob);
    }
    std::fs::File::create(path)
        .unwrap()
        .write_all(&archive.into_inner().unwrap())
        .unwrap();
}

#[test]
fn containerd_runs_execs_and_kills_through_berth() {
    let ctd = Containerd::start();
    let archive = ctd.dir.path().join("image.tar");
    busybox_oci_archive(&archive);
    ctd.ok(&["images", "import", archive.to_str().unwrap()]);
    let runtime = ctd.runtime_binary();
    let runtime = runtime.to_str().unwrap();

    // Foreground: output and exit status come back through containerd.
    let out = ctd.ctr(&[
        "run",
        "--rm",
        "--runc-binary",
        runtime,
        IMAGE,
        "fg",
        "sh",
        "-c",
        "echo pid=$$; exit 7",
    ]);
    assert_eq!(
        out.status.code(),
        Some(7),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "pid=1\n");

    // Detached task, exec into it, kill it.
    ctd.ok(&[
        "run",
        "-d",
        "--runc-binary",
        runtime,
        IMAGE,
        "bg",
        "sleep",
        "1000",
    ]);
    assert!(ctd
        .ok(&["task", "ls"])
        .lines()
        .any(|l| l.starts_with("bg ") && l.contains("RUNNING")));
    let exec = ctd.ok(&[
        "task",
        "exec",
        "--exec-id",
        "e1",
        "bg",
        "sh",
        "-c",
        "echo exec-ok; cat /proc/1/cmdline",
    ]);
    assert_eq!(exec, "exec-ok\nsleep\u{0}1000\u{0}");
    ctd.ok(&["task", "kill", "-s", "KILL", "bg"]);
    for _ in 0..600 {
        if ctd
            .ok(&["task", "ls"])
            .lines()
            .any(|l| l.starts_with("bg ") && l.contains("STOPPED"))
        {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    ctd.ok(&["task", "rm", "bg"]);
    ctd.ok(&["c", "rm", "bg"]);
    assert_eq!(ctd.ok(&["task", "ls", "-q"]), "");
}
