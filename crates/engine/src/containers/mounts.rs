//! The mounts a create request adds — `HostConfig.Binds`
//! (`/host:/container[:options]`, `volume:/container[:options]`),
//! `HostConfig.Mounts` (`--mount`), `HostConfig.Tmpfs`, and the anonymous
//! volumes of `Config.Volumes` and the image's `VOLUME`s — checked as
//! dockerd checks them: binds and tmpfs mounts in the spec's `mounts`
//! format, volumes as requests the container service resolves.

use std::collections::BTreeMap;
use std::path::Path;

use berth_builder::step::clean_path;
use serde_json::{json, Value};

use super::model::{HostConfig, MountSpec, VolumeMount};

use crate::error::{EngineError, Result};

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

/// A volume a create request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeRequest {
    /// None: a new anonymous volume.
    pub name: Option<String>,
    pub destination: String,
    pub rw: bool,
    pub nocopy: bool,
    pub labels: BTreeMap<String, String>,
    pub from_binds: bool,
}

/// What a create request mounts.
#[derive(Debug, Clone, Default)]
pub struct Requested {
    /// Bind and tmpfs mounts, spec entries.
    pub specs: Vec<Value>,
    pub volumes: Vec<VolumeRequest>,
}

/// One parsed mount before the destinations are checked.
enum Parsed {
    Spec(Value),
    Volume(VolumeRequest),
}

impl Parsed {
    fn destination(&self) -> &str {
        match self {
            Self::Spec(v) => v["destination"].as_str().unwrap_or_default(),
            Self::Volume(v) => &v.destination,
        }
    }
}

/// The request's mounts; `anonymous` are the paths (`Config.Volumes`, the
/// image's `VOLUME`s) that get an anonymous volume unless something else
/// is mounted there.
pub fn requested(h: &HostConfig, anonymous: &[String]) -> Result<Requested> {
    // A `Config.Volumes` key with a `:` is a whole mount spec, as
    // dockerd parses it (the docker CLI puts one there when two `-v`
    // name the same path).
    let (specs, paths): (Vec<&String>, Vec<&String>) =
        anonymous.iter().partition(|a| a.contains(':'));
    let binds = h.binds.iter().flatten().chain(specs).map(|b| bind(b));
    let mounts = h.mounts.iter().flatten().map(mount);
    let tmpfs = h
        .tmpfs
        .iter()
        .flatten()
        .map(|(d, o)| tmpfs(d, o).map(Parsed::Spec));
    let mut by_dest: BTreeMap<String, Parsed> = BTreeMap::new();
    for m in binds.chain(mounts).chain(tmpfs) {
        let m = m?;
        let dest = m.destination().to_owned();
        if by_dest.insert(dest.clone(), m).is_some() {
            return Err(EngineError::invalid(format!(
                "Duplicate mount point: {dest}"
            )));
        }
    }
    for path in paths {
        let dest = destination(path, path)?;
        by_dest.entry(dest.clone()).or_insert_with(|| {
            Parsed::Volume(VolumeRequest {
                name: None,
                destination: dest,
                rw: true,
                nocopy: false,
                labels: BTreeMap::new(),
                from_binds: false,
            })
        });
    }
    let mut out = Requested::default();
    for m in by_dest.into_values() {
        match m {
            Parsed::Spec(v) => out.specs.push(v),
            Parsed::Volume(v) => out.volumes.push(v),
        }
    }
    Ok(out)
}

/// The spec entries of binds, tmpfs and the resolved volumes (at their
/// data directories), parents before children.
pub fn spec_mounts(
    h: &HostConfig,
    volumes: &[VolumeMount],
    data_path: impl Fn(&str) -> std::path::PathBuf,
) -> Result<Vec<Value>> {
    let mut mounts = requested(h, &[])?.specs;
    for v in volumes {
        let mode = if v.rw { "rw" } else { "ro" };
        mounts.push(json!({
            "destination": v.destination,
            "type": "bind",
            "source": data_path(&v.name),
            "options": ["rbind", mode, "rprivate"],
        }));
    }
    // A mount under another must come after it.
    mounts.sort_by_key(|m| {
        m["destination"]
            .as_str()
            .map_or(0, |d| Path::new(d).components().count())
    });
    Ok(mounts)
}

/// Docker's `Mounts` view: binds and volumes (tmpfs mounts are not
/// listed, as under Docker), by destination.
pub fn describe(
    h: &HostConfig,
    volumes: &[VolumeMount],
    data_path: impl Fn(&str) -> std::path::PathBuf,
) -> Vec<Value> {
    let specs = requested(h, &[]).map(|r| r.specs).unwrap_or_default();
    let mut v: Vec<Value> = specs
        .into_iter()
        .filter(|m| m["type"] == "bind")
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
    v.extend(volumes.iter().map(|m| {
        let mode = match (m.from_binds, m.rw) {
            (true, true) => "z",
            (true, false) => "ro,z",
            (false, true) => "",
            (false, false) => "ro",
        };
        json!({
            "Type": "volume",
            "Name": m.name,
            "Source": data_path(&m.name),
            "Destination": m.destination,
            "Driver": "local",
            "Mode": mode,
            "RW": m.rw,
            "Propagation": "",
        })
    }));
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

/// `/host:/container[:ro|rw][,propagation][,z|Z|nocopy]`, or a volume
/// name for `/host`.
fn bind(spec: &str) -> Result<Parsed> {
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
    let dest = destination(dest, spec)?;
    let mut mode = "rw";
    let mut propagation = "rprivate";
    let mut nocopy = false;
    for o in opts.split(',').filter(|o| !o.is_empty()) {
        match o {
            "ro" | "rw" => mode = o,
            "nocopy" => nocopy = true,
            // SELinux relabelling does not apply here.
            "z" | "Z" | "consistent" | "cached" | "delegated" => {}
            p if PROPAGATIONS.contains(&p) => propagation = p,
            other => {
                return Err(EngineError::invalid(format!(
                    "invalid mode: {other} (in volume specification '{spec}')"
                )))
            }
        }
    }
    if !source.starts_with('/') {
        if source.is_empty() {
            return Err(EngineError::invalid(format!(
                "invalid volume specification: '{spec}': empty volume name"
            )));
        }
        return Ok(Parsed::Volume(VolumeRequest {
            name: Some(source.to_owned()),
            destination: dest,
            rw: mode == "rw",
            nocopy,
            labels: BTreeMap::new(),
            from_binds: true,
        }));
    }
    Ok(Parsed::Spec(json!({
        "destination": dest,
        "type": "bind",
        "source": clean_path(source),
        "options": ["rbind", mode, propagation],
    })))
}

/// One `--mount` (`HostConfig.Mounts`) entry, with dockerd's checks.
fn mount(m: &MountSpec) -> Result<Parsed> {
    let what = format!("{} mount at {:?}", m.kind, m.target);
    if m.target.is_empty() {
        return Err(EngineError::invalid(format!(
            "invalid mount config for type \"{}\": field Target must not be empty",
            m.kind
        )));
    }
    let dest = destination(&m.target, &what)?;
    let mode = if m.read_only { "ro" } else { "rw" };
    match m.kind.as_str() {
        "bind" => {
            if !m.source.starts_with('/') {
                return Err(EngineError::invalid(format!(
                    "invalid mount config for type \"bind\": invalid mount path: '{}' mount path must be absolute",
                    m.source
                )));
            }
            if !Path::new(&m.source).exists() {
                return Err(EngineError::invalid(format!(
                    "invalid mount config for type \"bind\": bind source path does not exist: {}",
                    m.source
                )));
            }
            let propagation = m
                .bind_options
                .as_ref()
                .map(|b| b.propagation.as_str())
                .filter(|p| !p.is_empty())
                .unwrap_or("rprivate");
            if !PROPAGATIONS.contains(&propagation) {
                return Err(EngineError::invalid(format!(
                    "invalid mount config for type \"bind\": invalid propagation mode: {propagation}"
                )));
            }
            Ok(Parsed::Spec(json!({
                "destination": dest,
                "type": "bind",
                "source": clean_path(&m.source),
                "options": ["rbind", mode, propagation],
            })))
        }
        "volume" => {
            let opts = m.volume_options.clone().unwrap_or_default();
            Ok(Parsed::Volume(VolumeRequest {
                name: Some(m.source.clone()).filter(|s| !s.is_empty()),
                destination: dest,
                rw: !m.read_only,
                nocopy: opts.no_copy,
                labels: opts.labels.unwrap_or_default(),
                from_binds: false,
            }))
        }
        "tmpfs" => {
            if !m.source.is_empty() {
                return Err(EngineError::invalid(
                    "invalid mount config for type \"tmpfs\": field Source must not be specified",
                ));
            }
            let mut opts = Vec::new();
            if let Some(t) = &m.tmpfs_options {
                if t.size_bytes > 0 {
                    opts.push(format!("size={}", t.size_bytes));
                }
                if t.mode != 0 {
                    opts.push(format!("mode={:o}", t.mode));
                }
            }
            if m.read_only {
                opts.push("ro".to_owned());
            }
            tmpfs(&dest, &opts.join(",")).map(Parsed::Spec)
        }
        other => Err(EngineError::invalid(format!(
            "invalid mount config: mount type unknown: {other:?}"
        ))),
    }
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
    use crate::error::ErrorKind;

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
        let h = host(
            &["/srv/data:/data/sub:ro,rshared", "/srv:/data//"],
            &[("/run", "size=64m,exec")],
        );
        let m = spec_mounts(&h, &[], |_| "/unused".into()).unwrap();
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
    fn volumes_are_named_anonymous_or_mounted_over() {
        let mut h = host(&["data:/var/lib/db:ro,nocopy"], &[]);
        h.mounts = Some(vec![
            MountSpec {
                kind: "volume".into(),
                target: "/cache".into(),
                ..MountSpec::default()
            },
            MountSpec {
                kind: "tmpfs".into(),
                target: "/scratch".into(),
                tmpfs_options: Some(super::super::model::TmpfsOptions {
                    size_bytes: 1 << 20,
                    mode: 0o700,
                }),
                ..MountSpec::default()
            },
        ]);
        // The image's VOLUMEs: one already mounted over, one anonymous.
        let anon = ["/var/lib/db".to_owned(), "/logs".to_owned()];
        let r = requested(&h, &anon).unwrap();
        let v: Vec<(Option<&str>, &str, bool, bool)> = r
            .volumes
            .iter()
            .map(|v| (v.name.as_deref(), v.destination.as_str(), v.rw, v.nocopy))
            .collect();
        assert_eq!(
            v,
            [
                (None, "/cache", true, false),
                (None, "/logs", true, false),
                (Some("data"), "/var/lib/db", false, true),
            ]
        );
        assert_eq!(
            r.specs[0]["options"],
            json!(["noexec", "nosuid", "nodev", "size=1048576", "mode=700"])
        );
        let resolved = [VolumeMount {
            name: "data".into(),
            destination: "/var/lib/db".into(),
            rw: false,
            anonymous: false,
            nocopy: true,
            from_binds: true,
        }];
        let m = spec_mounts(&h, &resolved, |n| format!("/vols/{n}/_data").into()).unwrap();
        let db = m
            .iter()
            .find(|m| m["destination"] == "/var/lib/db")
            .unwrap();
        assert_eq!(db["source"], "/vols/data/_data");
        assert_eq!(db["options"], json!(["rbind", "ro", "rprivate"]));
    }

    #[test]
    fn bad_mounts_are_refused_with_dockers_words() {
        let err = |b: &[&str], t: &[(&str, &str)]| requested(&host(b, t), &[]).unwrap_err();
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
        assert!(err(&[], &[("/t", "size=1m,evil")])
            .message
            .contains("invalid tmpfs option"));
        let mut h = host(&[], &[]);
        h.mounts = Some(vec![MountSpec {
            kind: "bind".into(),
            source: "/no/such/source".into(),
            target: "/x".into(),
            ..MountSpec::default()
        }]);
        let e = requested(&h, &[]).unwrap_err();
        assert_eq!(e.kind, ErrorKind::InvalidArgument);
        assert!(
            e.message.contains("bind source path does not exist"),
            "{}",
            e.message
        );
    }
}
