//! Checks a bundle before anything is created, so a bad config.json fails
//! with a message naming the field, and leaves no state, cgroup or mount.
//! libcontainer validates again; this pass exists for the precision of the
//! messages and for the names libcontainer would silently skip (unknown
//! seccomp syscalls).

use std::collections::HashSet;
use std::path::Path;

use oci_spec::runtime::{LinuxNamespaceType, Spec};
use serde_json::Value;

use crate::error::{Result, RuntimeError};

/// Loads and checks `bundle/config.json`.
pub fn load_bundle(bundle: &Path) -> Result<Spec> {
    let path = bundle.join("config.json");
    let text = std::fs::read_to_string(&path).map_err(|e| RuntimeError::io("read", &path, e))?;
    let raw: Value = serde_json::from_str(&text)
        .map_err(|e| RuntimeError::invalid_spec(bundle, format!("config.json: {e}")))?;
    check_raw(&raw).map_err(|reason| RuntimeError::invalid_spec(bundle, reason))?;
    let spec: Spec = serde_json::from_value(raw)
        .map_err(|e| RuntimeError::invalid_spec(bundle, format!("config.json: {e}")))?;
    check_spec(&spec, bundle).map_err(|reason| RuntimeError::invalid_spec(bundle, reason))?;
    Ok(spec)
}

/// Checks made on the raw JSON, where the field path is still known.
fn check_raw(raw: &Value) -> Result<(), String> {
    if !raw.is_object() {
        return Err("config.json: top level must be a JSON object".into());
    }
    if let Some(caps) = raw
        .pointer("/process/capabilities")
        .and_then(Value::as_object)
    {
        for (set, names) in caps {
            for name in names.as_array().into_iter().flatten() {
                check_capability(name.as_str().unwrap_or_default())
                    .map_err(|e| format!("process.capabilities.{set}: {e}"))?;
            }
        }
    }
    let syscalls = raw
        .pointer("/linux/seccomp/syscalls")
        .and_then(Value::as_array);
    for (i, rule) in syscalls.into_iter().flatten().enumerate() {
        let names = rule.get("names").and_then(Value::as_array);
        for name in names.into_iter().flatten() {
            let name = name.as_str().unwrap_or_default();
            if libseccomp::ScmpSyscall::from_name(name).is_err() {
                return Err(format!(
                    "linux.seccomp.syscalls[{i}]: unknown syscall {name:?} (not known to libseccomp {})",
                    libseccomp_version()
                ));
            }
        }
    }
    Ok(())
}

fn libseccomp_version() -> String {
    libseccomp::ScmpVersion::current()
        .map(|v| format!("{}.{}.{}", v.major, v.minor, v.micro))
        .unwrap_or_else(|_| "?".into())
}

/// A capability name must be one the kernel defines, with its `CAP_` prefix.
pub fn check_capability(name: &str) -> Result<(), String> {
    let known = name
        .strip_prefix("CAP_")
        .is_some_and(|bare| bare.parse::<oci_spec::runtime::Capability>().is_ok());
    if known {
        Ok(())
    } else {
        Err(format!("unknown capability {name:?}"))
    }
}

/// Checks on the typed spec.
fn check_spec(spec: &Spec, bundle: &Path) -> Result<(), String> {
    if !spec.version().starts_with("1.") {
        return Err(format!(
            "ociVersion {:?} is not supported (1.x only)",
            spec.version()
        ));
    }
    let root = spec.root().as_ref().ok_or("root: missing")?;
    let rootfs = if root.path().is_absolute() {
        root.path().clone()
    } else {
        bundle.join(root.path())
    };
    if !rootfs.is_dir() {
        return Err(format!(
            "root.path: rootfs {} does not exist or is not a directory",
            rootfs.display()
        ));
    }
    let process = spec.process().as_ref().ok_or("process: missing")?;
    if process.args().as_ref().is_none_or(|a| a.is_empty()) {
        return Err("process.args: must name the program to run".into());
    }
    if !process.cwd().is_absolute() {
        return Err(format!(
            "process.cwd: {:?} must be an absolute path",
            process.cwd()
        ));
    }
    let linux = spec.linux().as_ref().ok_or("linux: missing")?;
    let mut seen = HashSet::new();
    for ns in linux.namespaces().iter().flatten() {
        if !seen.insert(ns.typ()) {
            return Err(format!("linux.namespaces: {:?} listed twice", ns.typ()));
        }
    }
    if spec.hostname().is_some() && !seen.contains(&LinuxNamespaceType::Uts) {
        return Err("hostname: setting it needs a new uts namespace".into());
    }
    if seen.contains(&LinuxNamespaceType::User)
        && (linux.uid_mappings().as_ref().is_none_or(Vec::is_empty)
            || linux.gid_mappings().as_ref().is_none_or(Vec::is_empty))
    {
        return Err("linux.uidMappings/gidMappings: a user namespace needs both".into());
    }
    Ok(())
}

/// Container ids are directory names under the state root and cgroup path
/// components: no separators, no dot-only names.
pub fn check_id(id: &str) -> Result<()> {
    let reason = if id.is_empty() {
        Some("it is empty")
    } else if id == "." || id == ".." {
        Some("it is a relative path component")
    } else if id.len() > 1024 {
        Some("it is longer than 1024 bytes")
    } else if !id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'+' | b'-' | b'.'))
    {
        Some("only letters, digits and _ + - . are allowed")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(RuntimeError::InvalidId {
            id: id.to_owned(),
            reason,
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bundle_with(config: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("rootfs")).unwrap();
        std::fs::write(dir.path().join("config.json"), config).unwrap();
        dir
    }

    fn minimal(extra_process: &str, extra_linux: &str) -> String {
        format!(
            r#"{{"ociVersion":"1.0.2","root":{{"path":"rootfs"}},
            "process":{{"args":["sh"],"cwd":"/","user":{{"uid":0,"gid":0}}{extra_process}}},
            "linux":{{"namespaces":[{{"type":"pid"}},{{"type":"mount"}}]{extra_linux}}}}}"#
        )
    }

    fn reason(err: RuntimeError) -> String {
        match err {
            RuntimeError::InvalidSpec { reason, .. } => reason,
            other => panic!("expected InvalidSpec, got {other:?}"),
        }
    }

    #[test]
    fn accepts_a_minimal_bundle() {
        let dir = bundle_with(&minimal("", ""));
        let spec = load_bundle(dir.path()).unwrap();
        assert_eq!(spec.version(), "1.0.2");
    }

    #[test]
    fn malformed_json_names_the_position() {
        let dir = bundle_with("{\"ociVersion\": ");
        let r = reason(load_bundle(dir.path()).unwrap_err());
        assert!(r.contains("config.json") && r.contains("line 1"), "{r}");
    }

    #[test]
    fn unknown_capability_is_named() {
        let dir = bundle_with(&minimal(r#","capabilities":{"bounding":["CAP_FLY"]}"#, ""));
        let r = reason(load_bundle(dir.path()).unwrap_err());
        assert!(r.contains("bounding") && r.contains("CAP_FLY"), "{r}");
    }

    #[test]
    fn unknown_syscall_is_named() {
        let seccomp = r#","seccomp":{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["getpid"],"action":"SCMP_ACT_ERRNO"},{"names":["teleport"],"action":"SCMP_ACT_ERRNO"}]}"#;
        let dir = bundle_with(&minimal("", seccomp));
        let r = reason(load_bundle(dir.path()).unwrap_err());
        assert!(r.contains("syscalls[1]") && r.contains("teleport"), "{r}");
    }

    #[test]
    fn missing_rootfs_is_named() {
        let dir = bundle_with(&minimal("", ""));
        std::fs::remove_dir(dir.path().join("rootfs")).unwrap();
        let r = reason(load_bundle(dir.path()).unwrap_err());
        assert!(
            r.contains("root.path") && r.contains("does not exist"),
            "{r}"
        );
    }

    #[test]
    fn duplicate_namespace_is_refused() {
        let dir = bundle_with(
            &minimal("", r#","sysctl":{}"#)
                .replace(r#"{"type":"mount"}"#, r#"{"type":"mount"},{"type":"pid"}"#),
        );
        let r = reason(load_bundle(dir.path()).unwrap_err());
        assert!(r.contains("listed twice"), "{r}");
    }

    #[test]
    fn user_namespace_needs_mappings() {
        let dir = bundle_with(
            &minimal("", "").replace(r#"{"type":"pid"}"#, r#"{"type":"pid"},{"type":"user"}"#),
        );
        let r = reason(load_bundle(dir.path()).unwrap_err());
        assert!(r.contains("uidMappings"), "{r}");
    }

    #[test]
    fn wrong_version_is_refused() {
        let dir = bundle_with(&minimal("", "").replace("1.0.2", "2.0.0"));
        let r = reason(load_bundle(dir.path()).unwrap_err());
        assert!(r.contains("ociVersion"), "{r}");
    }

    #[test]
    fn ids_are_checked() {
        assert!(check_id("abc-1.2_x+y").is_ok());
        for bad in ["", ".", "..", "a/b", "a b", "../x"] {
            assert!(
                matches!(check_id(bad), Err(RuntimeError::InvalidId { .. })),
                "{bad:?} accepted"
            );
        }
    }
}
