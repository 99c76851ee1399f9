//! A container's resource use read from its cgroups, in Docker's stats
//! layout (`GET /containers/{id}/stats`): cgroup v1 (cpuacct, cpu,
//! memory, pids, blkio; <https://docs.kernel.org/admin-guide/cgroup-v1/>)
//! and v2 (`cpu.stat`, `memory.*`, `pids.*`, `io.stat`;
//! <https://docs.kernel.org/admin-guide/cgroup-v2.html>). The cgroup root
//! and `/proc/stat` are parameters: v2 is tested against fixture trees.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{json, Map, Value};

/// Clock ticks per second of `/proc/stat` and `cpuacct.stat` (USER_HZ,
/// 100 on every Linux architecture berth runs on).
const USER_HZ: u64 = 100;
const NANOS_PER_TICK: u64 = 1_000_000_000 / USER_HZ;

/// Where a container's cgroups are.
#[derive(Debug, Clone)]
pub enum Cgroups {
    /// One hierarchy per controller: `<root>/<controller>/<rel>`.
    V1 { root: PathBuf, rel: String },
    /// The unified hierarchy: everything in `dir`.
    V2 { dir: PathBuf },
}

impl Cgroups {
    /// The cgroups of `/berth/<id>` on this host, v2 when the unified
    /// hierarchy is mounted at `root` with controllers, else v1.
    pub fn of(root: &Path, id: &str) -> Self {
        let rel = format!("berth/{id}");
        if root.join("cgroup.controllers").exists() {
            Self::V2 {
                dir: root.join(rel),
            }
        } else {
            Self::V1 {
                root: root.to_owned(),
                rel,
            }
        }
    }
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_default()
}

fn number(p: &Path) -> Option<u64> {
    read(p).trim().parse().ok()
}

/// `key value` lines (memory.stat, cpu.stat, cpuacct.stat).
fn keyed(text: &str) -> BTreeMap<String, u64> {
    text.lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            Some((k.to_owned(), v.trim().parse().ok()?))
        })
        .collect()
}

/// The host's CPU time in nanoseconds and its CPUs, from `/proc/stat`.
pub fn system_cpu(proc_stat: &str) -> (u64, usize) {
    let mut total = 0;
    let mut cpus = 0;
    for line in proc_stat.lines() {
        let mut fields = line.split_whitespace();
        match fields.next() {
            Some("cpu") => {
                // user nice system idle iowait irq softirq steal
                total = fields
                    .take(8)
                    .filter_map(|f| f.parse::<u64>().ok())
                    .sum::<u64>()
                    * NANOS_PER_TICK;
            }
            Some(c) if c.starts_with("cpu") => cpus += 1,
            _ => {}
        }
    }
    (total, cpus)
}

/// One sample: Docker's `cpu_stats`, `memory_stats`, `pids_stats`,
/// `blkio_stats` for the container's cgroups; `machine_memory` stands in
/// for an unlimited memory limit, as dockerd reports it.
pub fn sample(cg: &Cgroups, proc_stat: &str, machine_memory: u64) -> Value {
    let (system, cpus) = system_cpu(proc_stat);
    let mut s = match cg {
        Cgroups::V1 { root, rel } => v1(&|c: &str, f: &str| root.join(c).join(rel).join(f)),
        Cgroups::V2 { dir } => v2(dir),
    };
    s["cpu_stats"]["system_cpu_usage"] = json!(system);
    s["cpu_stats"]["online_cpus"] = json!(cpus);
    let limit = s["memory_stats"]["limit"].as_u64().unwrap_or(u64::MAX);
    if machine_memory > 0 && limit > machine_memory {
        s["memory_stats"]["limit"] = json!(machine_memory);
    }
    s
}

fn v1(at: &dyn Fn(&str, &str) -> PathBuf) -> Value {
    let acct = keyed(&read(&at("cpuacct", "cpuacct.stat")));
    let percpu: Vec<u64> = read(&at("cpuacct", "cpuacct.usage_percpu"))
        .split_whitespace()
        .filter_map(|n| n.parse().ok())
        .collect();
    let throttle = keyed(&read(&at("cpu", "cpu.stat")));
    let memory_stat = keyed(&read(&at("memory", "memory.stat")));
    json!({
        "cpu_stats": {
            "cpu_usage": {
                "total_usage": number(&at("cpuacct", "cpuacct.usage")).unwrap_or(0),
                "percpu_usage": percpu,
                "usage_in_kernelmode": acct.get("system").copied().unwrap_or(0) * NANOS_PER_TICK,
                "usage_in_usermode": acct.get("user").copied().unwrap_or(0) * NANOS_PER_TICK,
            },
            "throttling_data": {
                "periods": throttle.get("nr_periods").copied().unwrap_or(0),
                "throttled_periods": throttle.get("nr_throttled").copied().unwrap_or(0),
                "throttled_time": throttle.get("throttled_time").copied().unwrap_or(0),
            },
        },
        "memory_stats": {
            "usage": number(&at("memory", "memory.usage_in_bytes")).unwrap_or(0),
            "max_usage": number(&at("memory", "memory.max_usage_in_bytes")).unwrap_or(0),
            "failcnt": number(&at("memory", "memory.failcnt")).unwrap_or(0),
            "limit": number(&at("memory", "memory.limit_in_bytes")).unwrap_or(u64::MAX),
            "stats": memory_stat,
        },
        "pids_stats": pids(&at("pids", "pids.current"), &at("pids", "pids.max")),
        "blkio_stats": blkio(
            blkio_v1(&read(&at("blkio", "blkio.throttle.io_service_bytes_recursive"))),
            blkio_v1(&read(&at("blkio", "blkio.throttle.io_serviced_recursive"))),
        ),
    })
}

/// Docker's blkio_stats: bytes and operations; the v1-only rest null.
fn blkio(bytes: Value, ios: Value) -> Value {
    json!({
        "io_service_bytes_recursive": bytes,
        "io_serviced_recursive": ios,
        "io_queue_recursive": null,
        "io_service_time_recursive": null,
        "io_wait_time_recursive": null,
        "io_merged_recursive": null,
        "io_time_recursive": null,
        "sectors_recursive": null,
    })
}

fn v2(dir: &Path) -> Value {
    let cpu = keyed(&read(&dir.join("cpu.stat")));
    let usec = |k: &str| cpu.get(k).copied().unwrap_or(0) * 1000;
    let (bytes, ios) = io_v2(&read(&dir.join("io.stat")));
    let limit = match read(&dir.join("memory.max")).trim() {
        "max" | "" => u64::MAX,
        n => n.parse().unwrap_or(u64::MAX),
    };
    json!({
        "cpu_stats": {
            "cpu_usage": {
                "total_usage": usec("usage_usec"),
                "usage_in_kernelmode": usec("system_usec"),
                "usage_in_usermode": usec("user_usec"),
            },
            "throttling_data": {
                "periods": cpu.get("nr_periods").copied().unwrap_or(0),
                "throttled_periods": cpu.get("nr_throttled").copied().unwrap_or(0),
                "throttled_time": usec("throttled_usec"),
            },
        },
        "memory_stats": {
            "usage": number(&dir.join("memory.current")).unwrap_or(0),
            "limit": limit,
            "stats": keyed(&read(&dir.join("memory.stat"))),
        },
        "pids_stats": pids(&dir.join("pids.current"), &dir.join("pids.max")),
        "blkio_stats": blkio(bytes, ios),
    })
}

fn pids(current: &Path, max: &Path) -> Value {
    let mut p = Map::new();
    p.insert("current".into(), json!(number(current).unwrap_or(0)));
    if let Some(limit) = number(max) {
        p.insert("limit".into(), json!(limit));
    }
    Value::Object(p)
}

/// `8:0 Read 4096` lines (the `Total` line is not a device).
fn blkio_v1(text: &str) -> Value {
    let entries: Vec<Value> = text
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (dev, op, value) = (f.next()?, f.next()?, f.next()?);
            let (major, minor) = dev.split_once(':')?;
            Some(json!({
                "major": major.parse::<u64>().ok()?,
                "minor": minor.parse::<u64>().ok()?,
                "op": op,
                "value": value.parse::<u64>().ok()?,
            }))
        })
        .collect();
    if entries.is_empty() {
        Value::Null
    } else {
        json!(entries)
    }
}

/// `8:0 rbytes=1 wbytes=2 rios=3 wios=4 …` lines: (bytes, operations) as
/// Docker lists them for v2 (`read` and `write`).
fn io_v2(text: &str) -> (Value, Value) {
    let mut bytes = Vec::new();
    let mut ios = Vec::new();
    for line in text.lines() {
        let mut f = line.split_whitespace();
        let Some((major, minor)) = f.next().and_then(|d| d.split_once(':')) else {
            continue;
        };
        let (Ok(major), Ok(minor)) = (major.parse::<u64>(), minor.parse::<u64>()) else {
            continue;
        };
        let kv: BTreeMap<&str, u64> = f
            .filter_map(|p| {
                let (k, v) = p.split_once('=')?;
                Some((k, v.parse().ok()?))
            })
            .collect();
        let entry = |key: &str, op: &str| {
            json!({
                "major": major, "minor": minor, "op": op,
                "value": kv.get(key).copied().unwrap_or(0),
            })
        };
        bytes.push(entry("rbytes", "read"));
        bytes.push(entry("wbytes", "write"));
        ios.push(entry("rios", "read"));
        ios.push(entry("wios", "write"));
    }
    let list = |v: Vec<Value>| if v.is_empty() { Value::Null } else { json!(v) };
    (list(bytes), list(ios))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROC_STAT: &str = "cpu  100 0 50 850 0 0 0 0 0 0\ncpu0 50 0 25 425 0 0 0 0 0 0\ncpu1 50 0 25 425 0 0 0 0 0 0\nintr 1\n";

    fn write(dir: &Path, files: &[(&str, &str)]) {
        for (name, content) in files {
            let p = dir.join(name);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, content).unwrap();
        }
    }

    #[test]
    fn the_host_cpu_time_is_counted_in_nanoseconds() {
        assert_eq!(system_cpu(PROC_STAT), (1000 * NANOS_PER_TICK, 2));
    }

    #[test]
    fn v2_files_become_dockers_layout() {
        let t = tempfile::tempdir().unwrap();
        write(
            t.path(),
            &[
                ("cgroup.controllers", "cpu memory pids io"),
                ("berth/c1/cpu.stat", "usage_usec 2000\nuser_usec 1500\nsystem_usec 500\nnr_periods 4\nnr_throttled 1\nthrottled_usec 30\n"),
                ("berth/c1/memory.current", "8192\n"),
                ("berth/c1/memory.max", "max\n"),
                ("berth/c1/memory.stat", "anon 4096\ninactive_file 1024\n"),
                ("berth/c1/pids.current", "3\n"),
                ("berth/c1/pids.max", "100\n"),
                ("berth/c1/io.stat", "8:0 rbytes=10 wbytes=20 rios=1 wios=2 dbytes=0 dios=0\n"),
            ],
        );
        let cg = Cgroups::of(t.path(), "c1");
        assert!(matches!(cg, Cgroups::V2 { .. }));
        let s = sample(&cg, PROC_STAT, 1 << 30);
        assert_eq!(s["cpu_stats"]["cpu_usage"]["total_usage"], 2_000_000);
        assert_eq!(s["cpu_stats"]["cpu_usage"]["usage_in_usermode"], 1_500_000);
        assert_eq!(s["cpu_stats"]["throttling_data"]["throttled_time"], 30_000);
        assert_eq!(s["cpu_stats"]["online_cpus"], 2);
        assert_eq!(s["memory_stats"]["usage"], 8192);
        assert_eq!(
            s["memory_stats"]["limit"],
            1u64 << 30,
            "unlimited: the machine's memory"
        );
        assert_eq!(s["memory_stats"]["stats"]["inactive_file"], 1024);
        assert_eq!(s["pids_stats"], json!({ "current": 3, "limit": 100 }));
        let io = &s["blkio_stats"]["io_service_bytes_recursive"];
        assert_eq!(
            io[0],
            json!({ "major": 8, "minor": 0, "op": "read", "value": 10 })
        );
        assert_eq!(io[1]["value"], 20);
        assert_eq!(s["blkio_stats"]["io_serviced_recursive"][1]["value"], 2);
    }

    #[test]
    fn v1_files_become_dockers_layout() {
        let t = tempfile::tempdir().unwrap();
        write(
            t.path(),
            &[
                ("cpuacct/berth/c1/cpuacct.usage", "123456\n"),
                ("cpuacct/berth/c1/cpuacct.usage_percpu", "100000 23456 \n"),
                ("cpuacct/berth/c1/cpuacct.stat", "user 7\nsystem 3\n"),
                (
                    "cpu/berth/c1/cpu.stat",
                    "nr_periods 2\nnr_throttled 1\nthrottled_time 99\n",
                ),
                ("memory/berth/c1/memory.usage_in_bytes", "4096\n"),
                ("memory/berth/c1/memory.max_usage_in_bytes", "8192\n"),
                ("memory/berth/c1/memory.limit_in_bytes", "67108864\n"),
                (
                    "memory/berth/c1/memory.stat",
                    "cache 0\ntotal_inactive_file 512\n",
                ),
                ("pids/berth/c1/pids.current", "2\n"),
                ("pids/berth/c1/pids.max", "max\n"),
                (
                    "blkio/berth/c1/blkio.throttle.io_service_bytes_recursive",
                    "8:0 Read 4096\n8:0 Write 0\nTotal 4096\n",
                ),
            ],
        );
        let cg = Cgroups::of(t.path(), "c1");
        let s = sample(&cg, PROC_STAT, 1 << 30);
        assert_eq!(s["cpu_stats"]["cpu_usage"]["total_usage"], 123_456);
        assert_eq!(
            s["cpu_stats"]["cpu_usage"]["percpu_usage"],
            json!([100_000, 23_456])
        );
        assert_eq!(s["cpu_stats"]["cpu_usage"]["usage_in_usermode"], 70_000_000);
        assert_eq!(s["memory_stats"]["limit"], 67_108_864);
        assert_eq!(s["memory_stats"]["max_usage"], 8192);
        assert_eq!(s["pids_stats"], json!({ "current": 2 }), "max: no limit");
        let io = &s["blkio_stats"]["io_service_bytes_recursive"];
        assert_eq!(io.as_array().unwrap().len(), 2);
        assert_eq!(
            io[0],
            json!({ "major": 8, "minor": 0, "op": "Read", "value": 4096 })
        );
        assert_eq!(s["blkio_stats"]["io_serviced_recursive"], Value::Null);
    }
}
