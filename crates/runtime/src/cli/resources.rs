//! `update`: the new limits, from a LinuxResources JSON file (`-` = stdin)
//! and/or runc's individual flags (which win).

use std::io::Read;

use oci_spec::runtime::{LinuxPids, LinuxResources};

use super::args::UpdateArgs;
use crate::error::{Result, RuntimeError};

/// The resources `update` applies.
pub fn from_args(args: &UpdateArgs) -> Result<LinuxResources> {
    let mut resources = match &args.resources {
        Some(path) => read(path)?,
        None => LinuxResources::default(),
    };
    apply_flags(&mut resources, args);
    Ok(resources)
}

fn read(path: &std::path::Path) -> Result<LinuxResources> {
    let mut text = String::new();
    if path.as_os_str() == "-" {
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| RuntimeError::io("read", "stdin", e))?;
    } else {
        text = std::fs::read_to_string(path).map_err(|e| RuntimeError::io("read", path, e))?;
    }
    serde_json::from_str(&text)
        .map_err(|e| RuntimeError::InvalidArgument(format!("--resources {}: {e}", path.display())))
}

fn apply_flags(r: &mut LinuxResources, a: &UpdateArgs) {
    if a.memory.is_some() || a.memory_swap.is_some() || a.memory_reservation.is_some() {
        let mut m = r.memory().unwrap_or_default();
        if let Some(v) = a.memory {
            m.set_limit(Some(v));
        }
        if let Some(v) = a.memory_swap {
            m.set_swap(Some(v));
        }
        if let Some(v) = a.memory_reservation {
            m.set_reservation(Some(v));
        }
        r.set_memory(Some(m));
    }
    let cpu_flags = a.cpu_shares.is_some()
        || a.cpu_quota.is_some()
        || a.cpu_period.is_some()
        || a.cpuset_cpus.is_some()
        || a.cpuset_mems.is_some();
    if cpu_flags {
        let mut c = r.cpu().clone().unwrap_or_default();
        if a.cpu_shares.is_some() {
            c.set_shares(a.cpu_shares);
        }
        if a.cpu_quota.is_some() {
            c.set_quota(a.cpu_quota);
        }
        if a.cpu_period.is_some() {
            c.set_period(a.cpu_period);
        }
        if a.cpuset_cpus.is_some() {
            c.set_cpus(a.cpuset_cpus.clone());
        }
        if a.cpuset_mems.is_some() {
            c.set_mems(a.cpuset_mems.clone());
        }
        r.set_cpu(Some(c));
    }
    if let Some(limit) = a.pids_limit {
        let mut p = LinuxPids::default();
        p.set_limit(limit);
        r.set_pids(Some(p));
    }
    if let Some(weight) = a.blkio_weight {
        let mut b = r.block_io().clone().unwrap_or_default();
        b.set_weight(Some(weight));
        r.set_block_io(Some(b));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn update(argv: &[&str]) -> LinuxResources {
        let args = super::super::Args::try_parse_from(argv).unwrap();
        let super::super::Command::Update(u) = args.command else {
            panic!("not update")
        };
        from_args(&u).unwrap()
    }

    #[test]
    fn flags_override_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("r.json");
        std::fs::write(&file, r#"{"memory":{"limit":1000},"pids":{"limit":5}}"#).unwrap();
        let r = update(&[
            "r",
            "update",
            "-r",
            file.to_str().unwrap(),
            "--pids-limit",
            "9",
            "c1",
        ]);
        assert_eq!(r.memory().as_ref().unwrap().limit(), Some(1000));
        assert_eq!(r.pids().as_ref().unwrap().limit(), 9);
    }

    #[test]
    fn cpu_flags_fill_the_cpu_section() {
        let r = update(&[
            "r",
            "update",
            "c1",
            "--cpu-quota",
            "50000",
            "--cpu-period",
            "100000",
            "--cpuset-cpus",
            "0",
        ]);
        let cpu = r.cpu().as_ref().unwrap();
        assert_eq!((cpu.quota(), cpu.period()), (Some(50000), Some(100000)));
        assert_eq!(cpu.cpus().as_deref(), Some("0"));
    }

    #[test]
    fn malformed_file_names_itself() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("bad.json");
        std::fs::write(&file, "{memory").unwrap();
        let args =
            super::super::Args::try_parse_from(["r", "update", "-r", file.to_str().unwrap(), "c1"])
                .unwrap();
        let super::super::Command::Update(u) = args.command else {
            panic!()
        };
        let err = from_args(&u).unwrap_err();
        assert!(err.to_string().contains("bad.json"), "{err}");
    }
}
