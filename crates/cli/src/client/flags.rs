//! The container flags of `run` and `create`, docker's names and forms,
//! turned into the create request.

use std::collections::HashMap;

use anyhow::{bail, Context, Result};
use bollard::models::{ContainerCreateBody, HostConfig, RestartPolicy, RestartPolicyNameEnum};
use clap::Args;

/// What `berth run`/`create` take before the image.
#[derive(Debug, Clone, Args)]
pub struct ContainerFlags {
    /// Assign a name to the container
    #[arg(long)]
    pub name: Option<String>,
    /// Keep STDIN open even if not attached
    #[arg(short, long)]
    pub interactive: bool,
    /// Allocate a pseudo-TTY
    #[arg(short, long)]
    pub tty: bool,
    /// Automatically remove the container when it exits
    #[arg(long)]
    pub rm: bool,
    /// Set environment variables
    #[arg(short, long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// Bind mount a volume (/host:/container[:ro], name:/container, /container)
    #[arg(short, long = "volume")]
    pub volume: Vec<String>,
    /// Attach a filesystem mount to the container (type=volume|bind|tmpfs,source=…,target=…)
    #[arg(long)]
    pub mount: Vec<String>,
    /// Mount a tmpfs directory (/path[:options])
    #[arg(long)]
    pub tmpfs: Vec<String>,
    /// Working directory inside the container
    #[arg(short, long)]
    pub workdir: Option<String>,
    /// Username or UID (format: <name|uid>[:<group|gid>])
    #[arg(short, long)]
    pub user: Option<String>,
    /// Overwrite the default ENTRYPOINT of the image
    #[arg(long)]
    pub entrypoint: Option<String>,
    /// Memory limit (e.g. 64m, 1g)
    #[arg(short, long)]
    pub memory: Option<String>,
    /// Swap limit equal to memory plus swap: -1 for unlimited swap
    #[arg(long)]
    pub memory_swap: Option<String>,
    /// Number of CPUs
    #[arg(long)]
    pub cpus: Option<f64>,
    /// CPU shares (relative weight)
    #[arg(short, long)]
    pub cpu_shares: Option<i64>,
    /// CPUs in which to allow execution (0-3, 0,1)
    #[arg(long)]
    pub cpuset_cpus: Option<String>,
    /// Tune container pids limit (-1 for unlimited)
    #[arg(long)]
    pub pids_limit: Option<i64>,
    /// Add Linux capabilities
    #[arg(long)]
    pub cap_add: Vec<String>,
    /// Drop Linux capabilities
    #[arg(long)]
    pub cap_drop: Vec<String>,
    /// Give extended privileges to this container
    #[arg(long)]
    pub privileged: bool,
    /// Mount the container's root filesystem as read only
    #[arg(long)]
    pub read_only: bool,
    /// Restart policy (no, always, unless-stopped, on-failure[:max-retries])
    #[arg(long, default_value = "no")]
    pub restart: String,
    /// Connect a container to a network (none, host)
    #[arg(long, alias = "net")]
    pub network: Option<String>,
    /// Container host name
    #[arg(short = 'h', long)]
    pub hostname: Option<String>,
    /// Set metadata on a container
    #[arg(short, long = "label")]
    pub label: Vec<String>,
    /// Signal to stop the container
    #[arg(long)]
    pub stop_signal: Option<String>,
}

/// Docker's memory sizes: a number with an optional binary unit
/// (b, k, m, g, t, p; "64m", "1GB").
pub fn parse_bytes(s: &str) -> Result<i64> {
    let lower = s.trim().to_ascii_lowercase();
    let split = lower
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(lower.len());
    let (digits, unit) = lower.split_at(split);
    // "mb" is "m"; a lone "b" is bytes.
    let unit = unit
        .strip_suffix('b')
        .filter(|u| !u.is_empty())
        .unwrap_or(unit);
    let shift = match unit {
        "" | "b" => 0,
        "k" => 10,
        "m" => 20,
        "g" => 30,
        "t" => 40,
        "p" => 50,
        _ => bail!("invalid size: '{s}'"),
    };
    let n: f64 = digits
        .parse()
        .with_context(|| format!("invalid size: '{s}'"))?;
    whole(n * (1u64 << shift) as f64, &format!("size: '{s}'"))
}

/// A whole number from a computed float, rounded and range-checked.
#[allow(clippy::cast_possible_truncation)] // the range is checked first
pub fn whole(f: f64, what: &str) -> Result<i64> {
    let r = f.round();
    if !r.is_finite() || r < 0.0 || r >= i64::MAX as f64 {
        bail!("invalid {what}");
    }
    Ok(r as i64)
}

pub fn restart_policy(s: &str) -> Result<RestartPolicy> {
    let (name, max) = match s.split_once(':') {
        Some((n, m)) => (
            n,
            Some(
                m.parse::<i64>()
                    .with_context(|| format!("maximum retry count must be an integer: {m}"))?,
            ),
        ),
        None => (s, None),
    };
    let name = match name {
        "" | "no" => RestartPolicyNameEnum::NO,
        "always" => RestartPolicyNameEnum::ALWAYS,
        "unless-stopped" => RestartPolicyNameEnum::UNLESS_STOPPED,
        "on-failure" => RestartPolicyNameEnum::ON_FAILURE,
        other => bail!("invalid restart policy '{other}'"),
    };
    Ok(RestartPolicy {
        name: Some(name),
        maximum_retry_count: max,
    })
}

fn map_pairs(items: &[String], sep: char) -> HashMap<String, String> {
    items
        .iter()
        .map(|i| match i.split_once(sep) {
            Some((k, v)) => (k.to_owned(), v.to_owned()),
            None => (i.clone(), String::new()),
        })
        .collect()
}

impl ContainerFlags {
    /// The create request for `image` running `command`; `attach`: the
    /// client stays attached (foreground run, `create` then `start -a`).
    pub fn body(
        &self,
        image: &str,
        command: &[String],
        attach: bool,
        console: Option<(u16, u16)>,
    ) -> Result<ContainerCreateBody> {
        let memory = self.memory.as_deref().map(parse_bytes).transpose()?;
        let memory_swap = match self.memory_swap.as_deref() {
            Some("-1") => Some(-1),
            other => other.map(parse_bytes).transpose()?,
        };
        // docker's rule: `-v /path` alone is an anonymous volume
        // (Config.Volumes); everything else is a bind or a named volume.
        let (anonymous, binds): (Vec<String>, Vec<String>) =
            self.volume.iter().cloned().partition(|v| !v.contains(':'));
        let mounts = self
            .mount
            .iter()
            .map(|m| mount_flag(m))
            .collect::<Result<Vec<_>>>()?;
        let host = HostConfig {
            binds: (!binds.is_empty()).then_some(binds),
            mounts: (!mounts.is_empty()).then_some(mounts),
            tmpfs: (!self.tmpfs.is_empty()).then(|| map_pairs(&self.tmpfs, ':')),
            memory,
            memory_swap,
            nano_cpus: self.cpus.map(|c| whole(c * 1e9, "--cpus")).transpose()?,
            cpu_shares: self.cpu_shares,
            cpuset_cpus: self.cpuset_cpus.clone(),
            pids_limit: self.pids_limit,
            cap_add: (!self.cap_add.is_empty()).then(|| self.cap_add.clone()),
            cap_drop: (!self.cap_drop.is_empty()).then(|| self.cap_drop.clone()),
            privileged: Some(self.privileged),
            readonly_rootfs: Some(self.read_only),
            auto_remove: Some(self.rm),
            restart_policy: Some(restart_policy(&self.restart)?),
            network_mode: Some(self.network.clone().unwrap_or_else(|| "default".to_owned())),
            console_size: console.map(|(h, w)| vec![usize::from(h), usize::from(w)]),
            ..HostConfig::default()
        };
        let stdin = attach && self.interactive;
        Ok(ContainerCreateBody {
            image: Some(image.to_owned()),
            cmd: (!command.is_empty()).then(|| command.to_vec()),
            entrypoint: self.entrypoint.as_ref().map(|e| {
                if e.is_empty() {
                    vec![]
                } else {
                    vec![e.clone()]
                }
            }),
            env: (!self.env.is_empty()).then(|| env_list(&self.env)),
            working_dir: self.workdir.clone(),
            user: self.user.clone(),
            labels: (!self.label.is_empty()).then(|| map_pairs(&self.label, '=')),
            hostname: self.hostname.clone(),
            tty: Some(self.tty),
            open_stdin: Some(self.interactive),
            stdin_once: Some(stdin),
            attach_stdin: Some(stdin),
            attach_stdout: Some(attach),
            attach_stderr: Some(attach),
            stop_signal: self.stop_signal.clone(),
            volumes: (!anonymous.is_empty()).then_some(anonymous),
            host_config: Some(host),
            ..ContainerCreateBody::default()
        })
    }
}

/// One `--mount` value, docker's CSV of `key=value` fields.
fn mount_flag(spec: &str) -> Result<bollard::models::Mount> {
    let mut m = serde_json::json!({ "Type": "volume" });
    let mut labels = serde_json::Map::new();
    for field in spec.split(',').filter(|f| !f.is_empty()) {
        let (key, value) = field
            .split_once('=')
            .map_or((field, None), |(k, v)| (k, Some(v)));
        let flag = || -> Result<bool> {
            match value.unwrap_or("true") {
                "true" | "1" => Ok(true),
                "false" | "0" => Ok(false),
                v => bail!("invalid value for {key}: {v}"),
            }
        };
        let text = || {
            value
                .map(str::to_owned)
                .ok_or_else(|| anyhow::anyhow!("invalid field '{field}' must be a key=value pair"))
        };
        match key.to_ascii_lowercase().as_str() {
            "type" => m["Type"] = text()?.into(),
            "source" | "src" => m["Source"] = text()?.into(),
            "target" | "destination" | "dst" => m["Target"] = text()?.into(),
            "readonly" | "ro" => m["ReadOnly"] = flag()?.into(),
            "bind-propagation" => m["BindOptions"]["Propagation"] = text()?.into(),
            "volume-nocopy" => m["VolumeOptions"]["NoCopy"] = flag()?.into(),
            "volume-label" => {
                let v = text()?;
                let (k, val) = v.split_once('=').unwrap_or((&v, ""));
                labels.insert(k.to_owned(), val.into());
            }
            "tmpfs-size" => m["TmpfsOptions"]["SizeBytes"] = parse_bytes(&text()?)?.into(),
            "tmpfs-mode" => {
                let mode = i64::from_str_radix(&text()?, 8)
                    .with_context(|| format!("invalid value for tmpfs-mode: {field}"))?;
                m["TmpfsOptions"]["Mode"] = mode.into();
            }
            _ => bail!("unexpected key '{key}' in '{field}'"),
        }
    }
    if !labels.is_empty() {
        m["VolumeOptions"]["Labels"] = labels.into();
    }
    if m.get("Target").is_none() {
        bail!("target is required in --mount {spec}");
    }
    serde_json::from_value(m).with_context(|| format!("invalid --mount {spec}"))
}

/// `-e` values as docker's CLI sends them: `KEY=value` as given, a bare
/// `KEY` with its value from our environment (dropped when unset).
pub fn env_list(env: &[String]) -> Vec<String> {
    env.iter()
        .filter_map(|e| match e.contains('=') {
            true => Some(e.clone()),
            false => std::env::var(e).ok().map(|v| format!("{e}={v}")),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_dockers_units() {
        assert_eq!(parse_bytes("64m").unwrap(), 64 << 20);
        assert_eq!(parse_bytes("1GB").unwrap(), 1 << 30);
        assert_eq!(parse_bytes("512").unwrap(), 512);
        assert_eq!(parse_bytes("1.5k").unwrap(), 1536);
        assert!(parse_bytes("12x").is_err());
        assert!(parse_bytes("m").is_err());
    }

    #[test]
    fn restart_policies_parse() {
        let p = restart_policy("on-failure:3").unwrap();
        assert_eq!(p.name, Some(RestartPolicyNameEnum::ON_FAILURE));
        assert_eq!(p.maximum_retry_count, Some(3));
        assert!(restart_policy("sometimes").is_err());
        assert!(restart_policy("on-failure:x").is_err());
    }
}
