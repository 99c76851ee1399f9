//! A container's OCI runtime spec, from Docker's defaults
//! (`berth_runtime::defaults::docker_spec`), the image's config and the
//! create request, as dockerd composes them.

use std::path::Path;

use berth_image::config::ImageConfig;
use serde_json::{json, Value};

use super::model::Record;
use super::mounts;
use crate::error::{EngineError, Result};

/// CPU period Docker uses to express `NanoCpus`.
const CPU_PERIOD: i64 = 100_000;

/// The spec for `rec`, whose root filesystem is mounted at `rootfs`.
pub fn build(
    rec: &Record,
    image: &ImageConfig,
    rootfs: &Path,
    volume_path: &dyn Fn(&str) -> std::path::PathBuf,
) -> Result<Value> {
    let req = &rec.request;
    let mut args = vec![rec.path.clone()];
    args.extend(rec.args.iter().cloned());
    let spec = berth_runtime::defaults::docker_spec(args);
    let mut s = serde_json::to_value(spec).map_err(|e| EngineError::invalid(e.to_string()))?;
    let img = image.config.clone().unwrap_or_default();
    s["root"] = json!({ "path": rootfs, "readonly": req.host_config.readonly_rootfs });
    let mut env = merge_env(
        img.env.as_deref().unwrap_or_default(),
        req.env.as_deref().unwrap_or_default(),
    );
    // Docker's rule: a terminal gets TERM=xterm unless the user set TERM.
    if req.tty && !env.iter().any(|e| e.starts_with("TERM=")) {
        env.push("TERM=xterm".to_owned());
    }
    s["process"]["env"] = json!(env);
    s["process"]["terminal"] = json!(req.tty);
    if let (true, Some([height, width])) = (req.tty, req.host_config.console_size) {
        // Sized before it runs: the first thing a shell asks.
        s["process"]["consoleSize"] = json!({ "height": height, "width": width });
    }
    let cwd = [req.working_dir.as_str(), img.working_dir.as_str()]
        .into_iter()
        .find(|w| !w.is_empty())
        .unwrap_or("/");
    s["process"]["cwd"] = json!(cwd);
    let user = if req.user.is_empty() {
        img.user.as_str()
    } else {
        req.user.as_str()
    };
    s["process"]["user"] = user_entry(user, rootfs)?;
    s["hostname"] = json!(if req.hostname.is_empty() {
        &rec.id[..12]
    } else {
        req.hostname.as_str()
    });
    s["linux"]["cgroupsPath"] = json!(format!("/berth/{}", rec.id));
    s["linux"]["resources"] = resources(rec)?;
    capabilities(&mut s, rec)?;
    if req.host_config.privileged {
        // The host's devices, as Docker gives a privileged container.
        s["linux"]["devices"] = json!(super::devices::host_devices(Path::new("/dev")));
    }
    network(&mut s, &req.host_config.network_mode)?;
    let mounts = mounts::spec_mounts(&req.host_config, &rec.volumes, volume_path)?;
    mounts::apply(&mut s, mounts)?;
    Ok(s)
}

/// Checks what the request asks for before anything is created.
pub fn check(rec: &Record) -> Result<()> {
    let spec = berth_runtime::defaults::docker_spec(vec![rec.path.clone()]);
    let mut s = serde_json::to_value(spec).map_err(|e| EngineError::invalid(e.to_string()))?;
    resources(rec)?;
    capabilities(&mut s, rec)?;
    mounts::requested(&rec.request.host_config, &[])?;
    network(&mut s, &rec.request.host_config.network_mode)
}

/// The spec's `process.user` for `user` (`name|uid[:group|gid]`), looked
/// up in the root filesystem at `rootfs`.
pub(super) fn user_entry(user: &str, rootfs: &Path) -> Result<Value> {
    let (uid, gid) = resolve_user(user, rootfs)?;
    let groups = supplementary_groups(uid, gid, rootfs);
    Ok(json!({ "uid": uid, "gid": gid, "additionalGids": groups }))
}

/// The image's variables, overridden key by key by the request's.
pub(super) fn merge_env(image: &[String], request: &[String]) -> Vec<String> {
    let key = |e: &String| e.split_once('=').map_or(e.clone(), |(k, _)| k.to_owned());
    let mut out: Vec<String> = image.to_vec();
    if !out.iter().any(|e| key(e) == "PATH") {
        out.insert(0, berth_runtime::defaults::DEFAULT_PATH.to_owned());
    }
    for e in request {
        out.retain(|x| key(x) != key(e));
        out.push(e.clone());
    }
    out
}

/// `uid[:gid]`, or a name looked up in the image's /etc/passwd and
/// /etc/group, read through a handle confined to the root filesystem (an
/// image's symlinks cannot point the lookup at host files).
fn resolve_user(user: &str, rootfs: &Path) -> Result<(u32, u32)> {
    if user.is_empty() {
        return Ok((0, 0));
    }
    let (name, group) = user
        .split_once(':')
        .map_or((user, None), |(u, g)| (u, Some(g)));
    let passwd = read_in(rootfs, "etc/passwd");
    let (uid, primary) = match name.parse::<u32>() {
        Ok(n) => (
            n,
            lookup(&passwd, |f| f[2] == name)
                .and_then(|f| f[3].parse().ok())
                .unwrap_or(n),
        ),
        Err(_) => lookup(&passwd, |f| f[0] == name)
            .and_then(|f| Some((f[2].parse().ok()?, f[3].parse().ok()?)))
            .ok_or_else(|| {
                EngineError::invalid(format!(
                    "unable to find user {name}: no matching entries in passwd file"
                ))
            })?,
    };
    let gid = match group {
        None => primary,
        Some(g) => match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => {
                let groups = read_in(rootfs, "etc/group");
                lookup(&groups, |f| f[0] == g)
                    .and_then(|f| f[2].parse().ok())
                    .ok_or_else(|| {
                        EngineError::invalid(format!(
                            "unable to find group {g}: no matching entries in group file"
                        ))
                    })?
            }
        },
    };
    Ok((uid, gid))
}

/// The groups whose member lists name the user (by its passwd name), or
/// its primary group alone: what Docker (runc's user lookup) sets with
/// setgroups(2), so `id` shows `groups=…`.
fn supplementary_groups(uid: u32, gid: u32, rootfs: &Path) -> Vec<u32> {
    let passwd = read_in(rootfs, "etc/passwd");
    let name = lookup(&passwd, |f| f[2].parse() == Ok(uid)).map(|f| f[0].to_owned());
    let mut out = Vec::new();
    if let Some(name) = name {
        let groups = read_in(rootfs, "etc/group");
        for f in groups.lines().map(|l| l.split(':').collect::<Vec<_>>()) {
            let member = f.get(3).is_some_and(|m| m.split(',').any(|u| u == name));
            if let (true, Some(Ok(g))) = (member, f.get(2).map(|g| g.parse::<u32>())) {
                if !out.contains(&g) {
                    out.push(g);
                }
            }
        }
    }
    if out.is_empty() {
        out.push(gid);
    }
    out
}

fn read_in(rootfs: &Path, rel: &str) -> String {
    berth_store::fsroot::Root::open(rootfs)
        .and_then(|r| r.read(rel))
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

fn lookup(file: &str, pick: impl Fn(&[&str]) -> bool) -> Option<Vec<&str>> {
    file.lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.len() >= 4 && pick(f))
}

pub(super) fn resources(rec: &Record) -> Result<Value> {
    let h = &rec.request.host_config;
    // Privileged: every device, as Docker allows.
    let mut r = json!({ "devices": [{ "allow": h.privileged, "access": "rwm" }] });
    if h.memory < 0 || h.nano_cpus < 0 || h.cpu_shares < 0 {
        return Err(EngineError::invalid(
            "memory, CPU shares and NanoCpus must not be negative",
        ));
    }
    if h.memory > 0 && h.memory < 6 << 20 {
        return Err(EngineError::invalid("Minimum memory limit allowed is 6MB"));
    }
    if h.memory > 0 {
        r["memory"] = json!({ "limit": h.memory });
        if h.memory_swap != 0 {
            if h.memory_swap > 0 && h.memory_swap < h.memory {
                return Err(EngineError::invalid(
                    "Minimum memoryswap limit should be larger than memory limit, see usage",
                ));
            }
            r["memory"]["swap"] = json!(h.memory_swap);
        }
    }
    if h.nano_cpus > 0 && (h.cpu_quota > 0 || h.cpu_period > 0) {
        return Err(EngineError::invalid(
            "Conflicting options: Nano CPUs and CPU Period cannot both be set",
        ));
    }
    let mut cpu = serde_json::Map::new();
    if h.nano_cpus > 0 {
        cpu.insert("period".into(), json!(CPU_PERIOD));
        cpu.insert(
            "quota".into(),
            json!(h.nano_cpus * CPU_PERIOD / 1_000_000_000),
        );
    }
    if h.cpu_quota > 0 {
        cpu.insert("quota".into(), json!(h.cpu_quota));
    }
    if h.cpu_period > 0 {
        cpu.insert("period".into(), json!(h.cpu_period));
    }
    if h.cpu_shares > 0 {
        cpu.insert("shares".into(), json!(h.cpu_shares));
    }
    if !h.cpuset_cpus.is_empty() {
        cpu.insert("cpus".into(), json!(h.cpuset_cpus));
    }
    if !cpu.is_empty() {
        r["cpu"] = Value::Object(cpu);
    }
    if let Some(p) = h.pids_limit.filter(|p| *p != 0) {
        r["pids"] = json!({ "limit": p });
    }
    Ok(r)
}

fn cap_name(c: &str) -> String {
    let up = c.to_ascii_uppercase();
    if up.starts_with("CAP_") || up == "ALL" {
        up
    } else {
        format!("CAP_{up}")
    }
}

fn capabilities(s: &mut Value, rec: &Record) -> Result<()> {
    let h = &rec.request.host_config;
    let mut caps: Vec<String> = s["process"]["capabilities"]["bounding"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    // Every capability the host lets berth grant (not all exist here).
    let all: Vec<String> = berth_runtime::defaults::own_grantable_capabilities();
    if h.privileged {
        caps = all.clone();
        s["linux"]["maskedPaths"] = json!([]);
        s["linux"]["readonlyPaths"] = json!([]);
        s["linux"]["seccomp"] = Value::Null;
    }
    for d in h.cap_drop.iter().flatten().map(|c| cap_name(c)) {
        if d == "ALL" {
            caps.clear()
        } else {
            caps.retain(|c| *c != d)
        }
    }
    for a in h.cap_add.iter().flatten().map(|c| cap_name(c)) {
        if a == "ALL" {
            caps = all.clone();
        } else if !berth_runtime::defaults::all_capabilities().contains(&a) {
            return Err(EngineError::invalid(format!("unknown capability: {a:?}")));
        } else if !caps.contains(&a) {
            caps.push(a);
        }
    }
    for set in ["bounding", "effective", "permitted"] {
        s["process"]["capabilities"][set] = json!(caps);
    }
    Ok(())
}

fn network(s: &mut Value, mode: &str) -> Result<()> {
    match mode {
        // No bridge network yet: a private namespace with loopback only.
        "" | "default" | "bridge" | "none" => Ok(()),
        "host" => {
            if let Some(ns) = s["linux"]["namespaces"].as_array_mut() {
                ns.retain(|n| n["type"] != "network");
            }
            s["hostname"] = Value::Null;
            Ok(())
        }
        other => Err(EngineError::new(
            crate::ErrorKind::NotImplemented,
            format!("network mode {other:?} is not supported yet (none and host are)"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_env_overrides_image_env_by_key() {
        let img = vec!["PATH=/bin".to_owned(), "A=1".to_owned()];
        let req = vec!["A=2".to_owned(), "B=3".to_owned()];
        assert_eq!(merge_env(&img, &req), ["PATH=/bin", "A=2", "B=3"]);
    }

    #[test]
    fn users_resolve_numerically_and_by_name() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("etc")).unwrap();
        std::fs::write(
            dir.path().join("etc/passwd"),
            "root:x:0:0::/root:/bin/sh\nweb:x:33:34::/var/www:/bin/false\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("etc/group"), "root:x:0:\nstaff:x:50:\n").unwrap();
        assert_eq!(resolve_user("", dir.path()).unwrap(), (0, 0));
        assert_eq!(resolve_user("web", dir.path()).unwrap(), (33, 34));
        assert_eq!(resolve_user("33", dir.path()).unwrap(), (33, 34));
        assert_eq!(resolve_user("1000:1000", dir.path()).unwrap(), (1000, 1000));
        assert_eq!(resolve_user("web:staff", dir.path()).unwrap(), (33, 50));
        assert!(resolve_user("nobody", dir.path())
            .unwrap_err()
            .message
            .contains("unable to find user nobody"));
    }
}
