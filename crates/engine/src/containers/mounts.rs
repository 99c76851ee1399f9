//! The mounts a create request adds: `HostConfig.Binds`
//! (`/host:/container[:options]`) and `HostConfig.Tmpfs`, checked as
//! dockerd checks them, in the spec's `mounts` format.

use std::collections::BTreeMap;
use std::path::Path;

use berth_builder::step::clean_path;
use serde_json::{json, Value};

use super::model::HostConfig;

use crate::error::{EngineError, ErrorKind, Result};

/// The options a tmpfs mount may carry (tmpfs(5) and the generic flags).
const TMPFS_FLAGS: &[&str] = &[
    "rw",
    "ro",
    "exec",
    "noexec",
    "suid",
    "nosuid",
    "dev",
    "nodev",
    "atime",
    "noatime",
    "diratime",
    "nodiratime",
    "strictatime",
    "relatime",
];
const TMPFS_KEYS: &[&str] = &[
    "size",
    "mode",
    "uid",
    "gid",
    "nr_inodes",
    "nr_blocks",
    "huge",
];
const PROPAGATIONS: &[&str] = &[
    "private", "rprivate", "shared", "rshared", "slave", "rslave",
];

/// The request's mounts as spec entries, parents before children.
pub fn user_mounts(h: &HostConfig) -> Result<Vec<Value>> {
    let mut by_dest: BTreeMap<String, Value> = BTreeMap::new();
    let binds = h.binds.iter().flatten().map(|b| bind(b));
    let tmpfs = h.tmpfs.iter().flatten().map(|(d, o)| tmpfs(d, o));
    for m in binds.chain(tmpfs) {
        let m = m?;
        let dest = m["destination"].as_str().unwrap_or_default().to_owned();
        if by_dest.insert(dest.clone(), m).is_some() {
            return Err(EngineError::invalid(format!(
                "Duplicate mount point: {dest}"
            )));
        }
    }
    let mut mounts: Vec<Value> = by_dest.into_values().collect();
    // A mount under another must come after it.
    mounts.sort_by_key(|m| {
        m["destination"]
            .as_str()
            .map_or(0, |d| Path::new(d).components().count())
    });
    Ok(mounts)
}

/// Docker's `Mounts` view of the binds (tmpfs mounts are not listed, as
/// under Docker).
pub fn describe(h: &HostConfig) -> Vec<Value> {
    let mut v: Vec<Value> = h
        .binds
        .iter()
        .flatten()
        .filter_map(|b| bind(b).ok())
        .map(|m| {
            let opts = &m["options"];
            let rw = opts[1] == "rw";
            json!({
                "Type": "bind",
                "Source": m["source"],
                "Destination": m["destination"],
                "Mode": if rw { "" } else { "ro" },
                "RW": rw,
                "Propagation": opts[2],
            })
        })
        .collect();
    v.sort_by(|a, b| a["Destination"].as_str().cmp(&b["Destination"].as_str()));
    v
}

/// Adds `mounts` to the spec, replacing default mounts at the same place
/// (a user's /dev/shm replaces Docker's), and creates missing bind
/// sources as directories, as `docker run -v` does.
pub fn apply(s: &mut Value, mounts: Vec<Value>) -> Result<()> {
    for m in &mounts {
        if m["type"] == "bind" {
            let source = m["source"].as_str().unwrap_or_default();
            if !Path::new(source).exists() {
                std::fs::create_dir_all(source).map_err(|e| {
                    EngineError::invalid(format!(
                        "error while creating mount source path '{source}': {e}"
                    ))
                })?;
            }
        }
    }
    if let Some(list) = s["mounts"].as_array_mut() {
        list.retain(|d| !mounts.iter().any(|m| m["destination"] == d["destination"]));
        list.extend(mounts);
    }
    Ok(())
}

fn destination(dest: &str, spec: &str) -> Result<String> {
    if !dest.starts_with('/') {
        return Err(EngineError::invalid(format!(
            "invalid mount config: the mount destination {dest:?} in {spec:?} must be an absolute path"
        )));
    }
    // `..` clamps at `/` (Go's path.Clean); the caller refuses `/` itself.
    let clean = clean_path(dest);
    if clean == "/" {
        return Err(EngineError::invalid(format!(
            "invalid mount config: {spec:?} cannot be mounted at '/'"
        )));
    }
    Ok(clean)
}

/// `/host:/container[:ro|rw][,propagation][,z|Z|nocopy]`.
fn bind(spec: &str) -> Result<Value> {
    let fields: Vec<&str> = spec.split(':').collect();
    let (source, dest, opts) = match fields.as_slice() {
        [s, d] => (*s, *d, ""),
        [s, d, o] => (*s, *d, *o),
        _ => {
            return Err(EngineError::invalid(format!(
                "invalid volume specification: '{spec}'"
            )))
        }
    };
    if !source.starts_with('/') {
        return Err(EngineError::new(
            ErrorKind::NotImplemented,
            format!("named volumes are not supported by berth yet ({spec:?}); bind an absolute host path"),
        ));
    }
    let dest = destination(dest, spec)?;
    let mut mode = "rw";
    let mut propagation = "rprivate";
    for o in opts.split(',').filter(|o| !o.is_empty()) {
        match o {
            "ro" | "rw" => mode = o,
            // SELinux relabelling and copy-up do not apply to host binds here.
            "z" | "Z" | "nocopy" | "consistent" | "cached" | "delegated" => {}
            p if PROPAGATIONS.contains(&p) => propagation = p,
            other => {
                return Err(EngineError::invalid(format!(
                    "invalid mode: {other} (in volume specification '{spec}')"
                )))
            }
        }
    }
    Ok(json!({
        "destination": dest,
        "type": "bind",
        "source": clean_path(source),
        "options": ["rbind", mode, propagation],
    }))
}

/// `--tmpfs /path:opts`; Docker's defaults first (noexec, nosuid, nodev),
/// the user's options after, so they win.
fn tmpfs(dest: &str, opts: &str) -> Result<Value> {
    let dest = destination(dest, dest)?;
    let mut options = vec!["noexec".to_owned(), "nosuid".to_owned(), "nodev".to_owned()];
    for o in opts.split(',').filter(|o| !o.is_empty()) {
        let key = o.split_once('=').map_or(o, |(k, _)| k);
        let known = if o.contains('=') {
            TMPFS_KEYS.contains(&key)
        } else {
            TMPFS_FLAGS.contains(&o)
        };
        if !known {
            return Err(EngineError::invalid(format!(
                "invalid tmpfs option {o:?} for {dest}"
            )));
        }
        options.push(o.to_owned());
    }
    Ok(json!({
        "destination": dest,
        "type": "tmpfs",
        "source": "tmpfs",
        "options": options,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(binds: &[&str], tmpfs: &[(&str, &str)]) -> HostConfig {
        HostConfig {
            binds: Some(binds.iter().map(|b| b.to_string()).collect()),
            tmpfs: Some(
                tmpfs
                    .iter()
                    .map(|(d, o)| (d.to_string(), o.to_string()))
                    .collect(),
            ),
            ..HostConfig::default()
        }
    }

    #[test]
    fn binds_and_tmpfs_become_spec_mounts_parents_first() {
        let m = user_mounts(&host(
            &["/srv/data:/data/sub:ro,rshared", "/srv:/data//"],
            &[("/run", "size=64m,exec")],
        ))
        .unwrap();
        let dests: Vec<&str> = m
            .iter()
            .map(|m| m["destination"].as_str().unwrap())
            .collect();
        assert_eq!(dests, ["/data", "/run", "/data/sub"]);
        assert_eq!(m[2]["options"], json!(["rbind", "ro", "rshared"]));
        assert_eq!(m[0]["options"], json!(["rbind", "rw", "rprivate"]));
        assert_eq!(
            m[1]["options"],
            json!(["noexec", "nosuid", "nodev", "size=64m", "exec"])
        );
    }

    #[test]
    fn bad_mounts_are_refused_with_dockers_words() {
        let err = |b: &[&str], t: &[(&str, &str)]| user_mounts(&host(b, t)).unwrap_err();
        assert!(err(&["/a:/x", "/b:/x"], &[])
            .message
            .contains("Duplicate mount point: /x"));
        assert!(err(&["/a:rel"], &[])
            .message
            .contains("must be an absolute path"));
        assert!(err(&["/a:/"], &[])
            .message
            .contains("cannot be mounted at '/'"));
        assert!(err(&["/a:/x:bogus"], &[])
            .message
            .contains("invalid mode: bogus"));
        assert!(err(&["/a"], &[])
            .message
            .contains("invalid volume specification"));
        assert_eq!(err(&["vol:/x"], &[]).kind, ErrorKind::NotImplemented);
        assert!(err(&[], &[("/t", "size=1m,evil")])
            .message
            .contains("invalid tmpfs option"));
    }
}
