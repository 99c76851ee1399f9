//! The host's device nodes, which a `--privileged` container sees in its
//! /dev as under Docker (runc's `HostDevices`): every character and block
//! device under /dev but the terminals of others (`pts`), the console and
//! what other mounts hold (`shm`, `mqueue`).

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use serde_json::{json, Value};

/// Directories whose nodes are never passed on.
const SKIPPED: [&str; 5] = ["pts", "shm", "fd", "mqueue", ".lxc"];

/// OCI `linux.devices` entries for the device nodes under `dev`.
pub fn host_devices(dev: &Path) -> Vec<Value> {
    let mut out = Vec::new();
    walk(dev, dev, &mut out);
    out.sort_by(|a, b| a["path"].as_str().cmp(&b["path"].as_str()));
    out
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<Value>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        let name = entry.file_name();
        let ft = meta.file_type();
        if ft.is_dir() {
            if !SKIPPED.iter().any(|s| name == *s) {
                walk(root, &path, out);
            }
            continue;
        }
        let kind = if ft.is_char_device() {
            "c"
        } else if ft.is_block_device() {
            "b"
        } else {
            continue;
        };
        if name == "console" {
            continue;
        }
        let Ok(rel) = path.strip_prefix(root) else {
            continue;
        };
        let rdev = meta.rdev();
        out.push(json!({
            "path": Path::new("/dev").join(rel),
            "type": kind,
            "major": nix::sys::stat::major(rdev),
            "minor": nix::sys::stat::minor(rdev),
            "fileMode": meta.mode() & 0o7777,
            "uid": meta.uid(),
            "gid": meta.gid(),
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hosts_devices_are_listed_but_the_terminals_of_others() {
        let devices = host_devices(Path::new("/dev"));
        let null = devices.iter().find(|d| d["path"] == "/dev/null").unwrap();
        assert_eq!(
            (
                null["type"].as_str(),
                null["major"].as_u64(),
                null["minor"].as_u64()
            ),
            (Some("c"), Some(1), Some(3))
        );
        assert!(devices.iter().all(|d| {
            let p = d["path"].as_str().unwrap();
            !p.starts_with("/dev/pts/") && p != "/dev/console"
        }));
    }

    #[test]
    fn a_directory_without_devices_gives_none() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("file"), "x").unwrap();
        assert!(host_devices(dir.path()).is_empty());
    }
}
