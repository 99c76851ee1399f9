//! A libcontainer container as the OCI state berth reports.

use std::path::{Path, PathBuf};

use libcontainer::container::{Container, ContainerStatus};
use nix::unistd::Pid;

use crate::state::{ContainerState, Status};

/// The state `runc state` would print for `container`.
pub(super) fn state_of(container: &Container) -> ContainerState {
    let status = status_of(container.status());
    let bundle = container.bundle().clone();
    ContainerState {
        oci_version: oci_spec::runtime::VERSION.to_owned(),
        id: container.id().to_owned(),
        pid: match status {
            Status::Stopped => 0,
            _ => container.pid().map_or(0, Pid::as_raw),
        },
        status,
        rootfs: rootfs_of(&bundle),
        bundle,
        created: container
            .created()
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true))
            .unwrap_or_default(),
        owner: container
            .creator()
            .map(|o| o.to_string_lossy().into_owned())
            .unwrap_or_default(),
        annotations: container.state.annotations.clone().unwrap_or_default(),
    }
}

pub(super) fn status_of(status: ContainerStatus) -> Status {
    match status {
        ContainerStatus::Creating => Status::Creating,
        ContainerStatus::Created => Status::Created,
        ContainerStatus::Running => Status::Running,
        ContainerStatus::Stopped => Status::Stopped,
        ContainerStatus::Paused => Status::Paused,
    }
}

/// The rootfs as config.json names it, resolved against the bundle.
fn rootfs_of(bundle: &Path) -> PathBuf {
    let configured = oci_spec::runtime::Spec::load(bundle.join("config.json"))
        .ok()
        .and_then(|spec| spec.root().as_ref().map(|r| r.path().clone()))
        .unwrap_or_else(|| PathBuf::from("rootfs"));
    bundle.join(configured)
}
