//! `berth stats`: docker's table of containers' resource use — CPU % from
//! the daemon's two samples, memory without the page cache docker leaves
//! out, block I/O — once (`--no-stream`) or redrawn every second.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use anyhow::Result;
use bollard::query_parameters::{ListContainersOptions, StatsOptions};
use bollard::Docker;
use clap::Args;
use futures_util::StreamExt;
use serde_json::{json, Value};

use super::format::{human_size, print_rows, Output};

#[derive(Debug, Args)]
pub struct StatsArgs {
    /// Show all containers (default shows just running)
    #[arg(short, long)]
    all: bool,
    /// Disable streaming stats and only pull the first result
    #[arg(long)]
    no_stream: bool,
    /// Do not truncate output
    #[arg(long)]
    no_trunc: bool,
    /// Format output using a custom template
    #[arg(long)]
    format: Option<String>,
    containers: Vec<String>,
}

const DEFAULT: &str = "{{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}";
const HEADERS: &[(&str, &str)] = &[
    ("ID", "CONTAINER ID"),
    ("Name", "NAME"),
    ("CPUPerc", "CPU %"),
    ("MemUsage", "MEM USAGE / LIMIT"),
    ("MemPerc", "MEM %"),
    ("NetIO", "NET I/O"),
    ("BlockIO", "BLOCK I/O"),
    ("PIDs", "PIDS"),
];

/// Docker's binary sizes (`units.BytesSize`: "%.4g" and KiB, MiB…).
pub fn bytes_size(bytes: f64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut size = bytes;
    let mut unit = 0;
    while size >= 1024.0 && unit + 1 < units.len() {
        size /= 1024.0;
        unit += 1;
    }
    // Four significant digits, trailing zeros dropped, as %g does (size
    // is below 1024 here: at most four integer digits).
    let decimals = match size {
        s if s >= 1000.0 => 0,
        s if s >= 100.0 => 1,
        s if s >= 10.0 => 2,
        _ => 3,
    };
    let text = format!("{size:.decimals$}");
    let text = if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        text
    };
    format!("{text}{}", units[unit])
}

/// One row of the table from a stats document.
pub fn row(id: &str, s: &Value, no_trunc: bool) -> Value {
    let n = |v: &Value| v.as_f64().unwrap_or(0.0);
    let cpu = &s["cpu_stats"];
    let pre = &s["precpu_stats"];
    let cpu_delta = n(&cpu["cpu_usage"]["total_usage"]) - n(&pre["cpu_usage"]["total_usage"]);
    let sys_delta = n(&cpu["system_cpu_usage"]) - n(&pre["system_cpu_usage"]);
    let cpus = match n(&cpu["online_cpus"]) {
        c if c > 0.0 => c,
        _ => cpu["cpu_usage"]["percpu_usage"]
            .as_array()
            .map_or(1.0, |a| a.len() as f64),
    };
    let cpu_perc = if cpu_delta > 0.0 && sys_delta > 0.0 {
        cpu_delta / sys_delta * cpus * 100.0
    } else {
        0.0
    };
    let mem = &s["memory_stats"];
    // docker shows usage without the inactive page cache (v1's
    // total_inactive_file, v2's inactive_file).
    let cache = [
        &mem["stats"]["total_inactive_file"],
        &mem["stats"]["inactive_file"],
    ]
    .into_iter()
    .map(n)
    .find(|c| *c > 0.0)
    .unwrap_or(0.0);
    let usage = match n(&mem["usage"]) {
        u if cache < u => u - cache,
        u => u,
    };
    let limit = n(&mem["limit"]);
    let mem_perc = if limit > 0.0 {
        usage / limit * 100.0
    } else {
        0.0
    };
    let (mut read, mut write) = (0.0, 0.0);
    for e in s["blkio_stats"]["io_service_bytes_recursive"]
        .as_array()
        .into_iter()
        .flatten()
    {
        match e["op"].as_str().map(str::to_ascii_lowercase).as_deref() {
            Some("read") => read += n(&e["value"]),
            Some("write") => write += n(&e["value"]),
            _ => {}
        }
    }
    let size = |v: f64| {
        #[allow(clippy::cast_possible_truncation)] // byte counts, far below 2^63
        human_size(v as i64)
    };
    let short = if no_trunc {
        id
    } else {
        &id[..12.min(id.len())]
    };
    let running = mem.as_object().is_some_and(|m| !m.is_empty());
    json!({
        "ID": short,
        "Container": short,
        "Name": s["name"].as_str().unwrap_or_default().trim_start_matches('/'),
        "CPUPerc": format!("{cpu_perc:.2}%"),
        "MemUsage": if running { format!("{} / {}", bytes_size(usage), bytes_size(limit)) } else { "0B / 0B".to_owned() },
        "MemPerc": format!("{mem_perc:.2}%"),
        "NetIO": "0B / 0B",
        "BlockIO": format!("{} / {}", size(read), size(write)),
        "PIDs": s["pids_stats"]["current"].as_u64().unwrap_or(0).to_string(),
    })
}

/// The containers to show: those named, else the running (or all).
async fn targets(d: &Docker, a: &StatsArgs) -> Result<Vec<String>> {
    if !a.containers.is_empty() {
        let mut ids = Vec::new();
        for c in &a.containers {
            ids.push(
                d.inspect_container(c, None)
                    .await?
                    .id
                    .unwrap_or_else(|| c.clone()),
            );
        }
        return Ok(ids);
    }
    let opts = ListContainersOptions {
        all: a.all,
        ..ListContainersOptions::default()
    };
    let mut list = d.list_containers(Some(opts)).await?;
    list.reverse();
    Ok(list.into_iter().filter_map(|c| c.id).collect())
}

/// `berth stats`.
pub async fn stats(d: &Docker, a: &StatsArgs) -> Result<i32> {
    let ids = targets(d, a).await?;
    let output = Output::parse(a.format.as_deref());
    if a.no_stream {
        let samples = futures_util::future::join_all(ids.iter().map(|id| one(d, id))).await;
        let mut rows = Vec::new();
        for (id, s) in ids.iter().zip(samples) {
            rows.push(row(id, &s?, a.no_trunc));
        }
        print_rows(&rows, &output, DEFAULT, HEADERS)?;
        return Ok(0);
    }
    let latest: Arc<Mutex<BTreeMap<usize, Value>>> = Arc::default();
    for (i, id) in ids.iter().enumerate() {
        let (d, id, latest, no_trunc) = (d.clone(), id.clone(), latest.clone(), a.no_trunc);
        tokio::spawn(async move {
            let opts = StatsOptions {
                stream: true,
                one_shot: false,
            };
            let mut s = d.stats(&id, Some(opts));
            while let Some(Ok(sample)) = s.next().await {
                let Ok(v) = serde_json::to_value(sample) else {
                    break;
                };
                latest
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .insert(i, row(&id, &v, no_trunc));
            }
        });
    }
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
    loop {
        tick.tick().await;
        let rows: Vec<Value> = latest
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .values()
            .cloned()
            .collect();
        // Clear the screen and redraw, as docker does.
        print!("\x1b[2J\x1b[H");
        print_rows(&rows, &output, DEFAULT, HEADERS)?;
    }
}

/// One sample with its CPU baseline (stream=false).
async fn one(d: &Docker, id: &str) -> Result<Value> {
    let opts = StatsOptions {
        stream: false,
        one_shot: false,
    };
    let mut s = d.stats(id, Some(opts));
    match s.next().await {
        Some(v) => Ok(serde_json::to_value(v?)?),
        None => Ok(json!({})),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_like_dockers() {
        assert_eq!(bytes_size(700_416.0), "684KiB");
        assert_eq!(bytes_size(67_108_864.0), "64MiB");
        assert_eq!(bytes_size(1.5 * 1024.0 * 1024.0 * 1024.0), "1.5GiB");
        assert_eq!(bytes_size(0.0), "0B");
        assert_eq!(bytes_size(1023.0), "1023B");
    }

    #[test]
    fn rows_compute_cpu_and_memory_as_docker() {
        let s = json!({
            "name": "/web",
            "cpu_stats": { "cpu_usage": { "total_usage": 300 }, "system_cpu_usage": 2000, "online_cpus": 2 },
            "precpu_stats": { "cpu_usage": { "total_usage": 100 }, "system_cpu_usage": 1000 },
            "memory_stats": { "usage": 2048, "limit": 8192, "stats": { "total_inactive_file": 1024 } },
            "blkio_stats": { "io_service_bytes_recursive": [
                { "major": 8, "minor": 0, "op": "Read", "value": 279000 },
                { "major": 8, "minor": 0, "op": "Write", "value": 0 } ] },
            "pids_stats": { "current": 3 },
        });
        let r = row("0123456789abcdef", &s, false);
        assert_eq!(r["ID"], "0123456789ab");
        assert_eq!(r["Name"], "web");
        assert_eq!(r["CPUPerc"], "40.00%");
        assert_eq!(r["MemUsage"], "1KiB / 8KiB");
        assert_eq!(r["MemPerc"], "12.50%");
        assert_eq!(r["BlockIO"], "279kB / 0B");
        assert_eq!(r["PIDs"], "3");
    }
}
