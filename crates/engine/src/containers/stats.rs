//! `GET /containers/{id}/stats`: samples of the container's cgroups in
//! Docker's JSON, one (`stream=0`) or one a second (`stream=1`), each with
//! the previous sample's CPU figures (`precpu_stats`), from which clients
//! compute CPU percentages.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};

use super::cgstats::{sample, Cgroups};
use super::model::{Record, Status};
use super::{internal, now, ContainerService};
use crate::error::Result;

/// How often a streamed sample comes, as under Docker.
const INTERVAL: Duration = Duration::from_secs(1);

/// Go's zero time: the `preread` of a first sample.
const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// What `GET /containers/{id}/stats` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatsOptions {
    /// A sample a second until the container stops or the client leaves.
    pub stream: bool,
    /// With `stream=0`: at once, without the second sample that fills
    /// `precpu_stats`.
    pub one_shot: bool,
}

/// The host's memory, which stands in for "no limit".
fn machine_memory() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            let line = m.lines().find(|l| l.starts_with("MemTotal:"))?;
            let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
            Some(kb * 1024)
        })
        .unwrap_or(0)
}

/// The figures of a container that does not run.
fn idle() -> Value {
    json!({
        "cpu_stats": { "cpu_usage": { "total_usage": 0, "usage_in_kernelmode": 0, "usage_in_usermode": 0 },
                       "system_cpu_usage": 0, "online_cpus": 0,
                       "throttling_data": { "periods": 0, "throttled_periods": 0, "throttled_time": 0 } },
        "memory_stats": {},
        "pids_stats": {},
        "blkio_stats": {},
    })
}

impl ContainerService {
    fn sample_of(&self, rec: &Record) -> Value {
        if rec.state.status != Status::Running {
            return idle();
        }
        let proc_stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
        let cg = Cgroups::of(Path::new("/sys/fs/cgroup"), &rec.id);
        sample(&cg, &proc_stat, machine_memory())
    }

    /// Writes the samples, one JSON document per line.
    pub fn stats(&self, name: &str, opts: StatsOptions, out: &mut dyn Write) -> Result<()> {
        let rec = self.find(name)?;
        let mut pre = idle();
        let mut pre_read = ZERO_TIME.to_owned();
        if !opts.stream && !opts.one_shot {
            pre = self.sample_of(&rec);
            pre_read = now();
            std::thread::sleep(INTERVAL);
        }
        loop {
            let Ok(rec) = self.find(&rec.id) else {
                return Ok(()); // removed meanwhile
            };
            let read = now();
            let mut s = self.sample_of(&rec);
            s["read"] = json!(read);
            s["preread"] = json!(pre_read);
            s["precpu_stats"] = pre["cpu_stats"].clone();
            s["num_procs"] = json!(0);
            s["storage_stats"] = json!({});
            s["name"] = json!(format!("/{}", rec.name));
            s["id"] = json!(rec.id);
            let mut line = s.to_string();
            line.push('\n');
            if out
                .write_all(line.as_bytes())
                .and_then(|()| out.flush())
                .is_err()
            {
                return Ok(()); // the client left
            }
            if !opts.stream || rec.state.status != Status::Running {
                return Ok(());
            }
            pre = s;
            pre_read = read;
            std::thread::sleep(INTERVAL);
        }
    }

    /// `GET /containers/{id}/top?ps_args=`: `ps` over the host's
    /// processes, the rows of the container's kept (as dockerd does).
    pub fn top(&self, name: &str, ps_args: &str) -> Result<Value> {
        let rec = self.find(name)?;
        if rec.state.status != Status::Running {
            return Err(crate::error::EngineError::new(
                crate::error::ErrorKind::Conflict,
                format!("Container {} is not running", rec.id),
            ));
        }
        let pids = self.container_pids(&rec.id)?;
        let args: Vec<&str> = if ps_args.is_empty() {
            vec!["-ef"]
        } else {
            ps_args.split_whitespace().collect()
        };
        let out = std::process::Command::new("ps")
            .args(&args)
            .output()
            .map_err(|e| internal("running ps", e))?;
        if !out.status.success() {
            return Err(crate::error::EngineError::invalid(format!(
                "ps: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        super::top::filter(&String::from_utf8_lossy(&out.stdout), &pids)
    }

    /// Every process in the container's cgroup (its pids cgroup on v1).
    fn container_pids(&self, id: &str) -> Result<Vec<u32>> {
        let root = Path::new("/sys/fs/cgroup");
        let procs = match Cgroups::of(root, id) {
            Cgroups::V2 { dir } => dir.join("cgroup.procs"),
            Cgroups::V1 { root, rel } => root.join("pids").join(rel).join("cgroup.procs"),
        };
        let text = std::fs::read_to_string(&procs)
            .map_err(|e| internal(&format!("reading {}", procs.display()), e))?;
        Ok(text.lines().filter_map(|l| l.trim().parse().ok()).collect())
    }
}
