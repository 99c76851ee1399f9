//! What `POST /containers/create` carries (the subset berth honours), and
//! the record berth keeps of each container.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// `POST /containers/create` body.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct CreateRequest {
    pub image: String,
    pub cmd: Option<Vec<String>>,
    pub entrypoint: Option<Vec<String>>,
    pub env: Option<Vec<String>>,
    pub working_dir: String,
    pub user: String,
    pub labels: Option<BTreeMap<String, String>>,
    pub hostname: String,
    pub tty: bool,
    pub open_stdin: bool,
    pub stdin_once: bool,
    pub attach_stdin: bool,
    pub attach_stdout: bool,
    pub attach_stderr: bool,
    pub stop_signal: Option<String>,
    /// `Config.Volumes`: paths that get an anonymous volume.
    pub volumes: Option<BTreeMap<String, serde_json::Value>>,
    pub host_config: HostConfig,
    /// Not from the API: the image's `VOLUME`s get no volumes (build
    /// steps, whose writes under them are discarded by the builder).
    #[serde(skip)]
    pub no_image_volumes: bool,
}

/// The `HostConfig` fields berth honours.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct HostConfig {
    pub binds: Option<Vec<String>>,
    /// `--mount`: binds, volumes and tmpfs mounts.
    pub mounts: Option<Vec<MountSpec>>,
    /// Mount point → tmpfs options.
    pub tmpfs: Option<BTreeMap<String, String>>,
    pub memory: i64,
    pub memory_swap: i64,
    pub nano_cpus: i64,
    pub cpu_shares: i64,
    pub cpu_quota: i64,
    pub cpu_period: i64,
    pub cpuset_cpus: String,
    pub pids_limit: Option<i64>,
    pub cap_add: Option<Vec<String>>,
    pub cap_drop: Option<Vec<String>>,
    pub privileged: bool,
    pub readonly_rootfs: bool,
    pub auto_remove: bool,
    pub network_mode: String,
    /// The terminal's initial [height, width] (the docker CLI sends its own).
    pub console_size: Option<[u16; 2]>,
    pub restart_policy: RestartPolicy,
}

/// One `HostConfig.Mounts` entry.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct MountSpec {
    /// `bind`, `volume` or `tmpfs`.
    #[serde(rename = "Type")]
    pub kind: String,
    pub source: String,
    pub target: String,
    pub read_only: bool,
    pub bind_options: Option<BindOptions>,
    pub volume_options: Option<VolumeOptions>,
    pub tmpfs_options: Option<TmpfsOptions>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct BindOptions {
    pub propagation: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct VolumeOptions {
    pub no_copy: bool,
    pub labels: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct TmpfsOptions {
    pub size_bytes: i64,
    pub mode: u32,
}

/// A volume a container mounts, as resolved at its creation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeMount {
    pub name: String,
    pub destination: String,
    pub rw: bool,
    /// Made for this container (`-v /path`, the image's `VOLUME`):
    /// removed with it by `rm -v` and `--rm`.
    pub anonymous: bool,
    /// Not filled from the image's files at the mount point.
    pub nocopy: bool,
    /// Asked for with `-v name:/path` (Docker's inspect shows mode `z`).
    pub from_binds: bool,
}

/// `HostConfig.RestartPolicy`: `no`, `always`, `unless-stopped`,
/// `on-failure` (with an optional maximum of retries).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct RestartPolicy {
    pub name: String,
    pub maximum_retry_count: i64,
}

/// Where a container is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Created,
    Running,
    /// Exited; its restart policy starts it again after a delay.
    Restarting,
    Exited,
}

impl Status {
    /// Running or about to run again: what `docker ps` lists without -a.
    pub fn is_up(self) -> bool {
        matches!(self, Self::Running | Self::Restarting)
    }

    /// Docker's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Running => "running",
            Self::Restarting => "restarting",
            Self::Exited => "exited",
        }
    }
}

/// The state part of a record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    pub status: Status,
    pub pid: i32,
    pub exit_code: i32,
    pub started_at: String,
    pub finished_at: String,
    /// Restarts done by the restart policy.
    #[serde(default)]
    pub restart_count: u32,
    /// Stopped by the user (`docker stop`/`kill`): the policy waits.
    #[serde(default)]
    pub manually_stopped: bool,
    /// Running, its processes frozen (`docker pause`).
    #[serde(default)]
    pub paused: bool,
}

impl State {
    /// Docker's word for the state (`paused` is a running container's).
    pub fn word(&self) -> &'static str {
        if self.paused && self.status == Status::Running {
            "paused"
        } else {
            self.status.as_str()
        }
    }
}

impl Default for State {
    fn default() -> Self {
        let zero = "0001-01-01T00:00:00Z".to_owned();
        Self {
            status: Status::Created,
            pid: 0,
            exit_code: 0,
            started_at: zero.clone(),
            finished_at: zero,
            restart_count: 0,
            manually_stopped: false,
            paused: false,
        }
    }
}

/// Everything berth knows of a container.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub id: String,
    pub name: String,
    /// The image as the user named it.
    pub image: String,
    pub image_id: String,
    /// The process: entrypoint + cmd resolved against the image.
    pub path: String,
    pub args: Vec<String>,
    pub created: String,
    pub request: CreateRequest,
    pub state: State,
    /// Its volumes (named and anonymous), resolved at creation.
    #[serde(default)]
    pub volumes: Vec<VolumeMount>,
}
