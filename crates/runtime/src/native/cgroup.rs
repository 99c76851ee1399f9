//! The container's cgroups as libcgroups manages them: the manager for a
//! container's recorded cgroup path, and what `update` applies.

use libcgroups::common::{AnyCgroupManager, CgroupConfig, ControllerOpt};
use libcontainer::container::Container;
use oci_spec::runtime::LinuxResources;

use crate::error::{Result, RuntimeError};

/// The cgroup manager of `container` (cgroupfs; berth does not use systemd).
pub(super) fn manager_for(container: &Container) -> Result<AnyCgroupManager> {
    let id = container.id();
    let config = container
        .spec()
        .map_err(|e| RuntimeError::container("read config of", id, e))?;
    libcgroups::common::create_cgroup_manager(CgroupConfig {
        cgroup_path: config.cgroup_path,
        systemd_cgroup: false,
        container_name: id.to_owned(),
    })
    .map_err(|e| RuntimeError::Cgroup {
        op: "open",
        id: id.to_owned(),
        reason: e.to_string(),
    })
}

/// What `update` asks of the cgroup controllers: only the new limits (no
/// freezer change, no oom_score_adj: those are not updatable).
pub(super) fn update_opt(resources: &LinuxResources) -> ControllerOpt<'_> {
    ControllerOpt {
        resources,
        disable_oom_killer: resources
            .memory()
            .as_ref()
            .and_then(|m| m.disable_oom_killer())
            .unwrap_or(false),
        oom_score_adj: None,
        freezer_state: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use libcgroups::common::CgroupManager;
    use std::path::PathBuf;

    /// A cgroup v2 directory as the kernel lays it out, in a temp dir: this
    /// machine runs v1, so v2 is checked against fixtures.
    fn v2_fixture() -> (tempfile::TempDir, PathBuf) {
        let root = tempfile::tempdir().unwrap();
        std::fs::write(
            root.path().join("cgroup.controllers"),
            "cpuset cpu io memory pids\n",
        )
        .unwrap();
        let cgroup = root.path().join("berth/c1");
        std::fs::create_dir_all(&cgroup).unwrap();
        for file in [
            "memory.max",
            "memory.swap.max",
            "memory.low",
            "memory.high",
            "memory.oom.group",
            "cpu.max",
            "cpu.weight",
            "cpu.idle",
            "cpuset.cpus",
            "cpuset.mems",
            "pids.max",
            "io.weight",
            "io.max",
            "cgroup.procs",
            "cgroup.subtree_control",
            "cgroup.controllers",
        ] {
            std::fs::write(cgroup.join(file), "").unwrap();
        }
        (root, cgroup)
    }

    #[test]
    fn update_writes_cgroup_v2_files() {
        let (root, cgroup) = v2_fixture();
        let resources: LinuxResources = serde_json::from_value(serde_json::json!({
            "memory": {"limit": 67108864, "swap": 100663296},
            "cpu": {"shares": 1024, "quota": 50000, "period": 100000, "cpus": "0-1"},
            "pids": {"limit": 42}
        }))
        .unwrap();
        let manager =
            libcgroups::v2::manager::Manager::new(root.path().to_path_buf(), "berth/c1".into())
                .unwrap();
        manager.apply(&update_opt(&resources)).unwrap();
        let read = |f: &str| std::fs::read_to_string(cgroup.join(f)).unwrap();
        assert_eq!(read("memory.max"), "67108864");
        // OCI swap is memory + swap; v2 counts swap alone.
        assert_eq!(read("memory.swap.max"), "33554432");
        assert_eq!(read("cpu.max"), "50000 100000");
        assert_eq!(read("cpuset.cpus"), "0-1");
        assert_eq!(read("pids.max"), "42");
        // The default shares (1024) map to the default weight (100), as in
        // crun and runc >= 1.3.
        assert_eq!(read("cpu.weight"), "100");
    }
}
