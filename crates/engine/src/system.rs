//! `GET /version` and `GET /info`.

use std::path::PathBuf;
use std::sync::Arc;

use berth_api_types::system::{Component, Info, Platform, Version};
use berth_api_types::{API_VERSION, MIN_API_VERSION};
use berth_store::query::ListFilters;
use berth_store::Store;

use crate::error::Result;

/// berth's version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// What the system endpoints need.
pub trait SystemBackend: Send + Sync {
    fn version(&self) -> Version;
    fn info(&self) -> Result<Info>;
}

/// The system service.
#[derive(Debug, Clone)]
pub struct SystemService {
    store: Arc<Store>,
    data_root: PathBuf,
}

impl SystemService {
    /// A service reporting on `store`, rooted at `data_root`.
    pub fn new(store: Arc<Store>, data_root: PathBuf) -> Self {
        Self { store, data_root }
    }
}

fn kernel_release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

fn arch() -> &'static str {
    berth_image::archive::read::host_arch()
}

impl SystemBackend for SystemService {
    fn version(&self) -> Version {
        Version {
            platform: Platform {
                name: "berth".to_owned(),
            },
            components: vec![Component {
                name: "Engine".to_owned(),
                version: VERSION.to_owned(),
                details: serde_json::json!({
                    "ApiVersion": API_VERSION,
                    "MinAPIVersion": MIN_API_VERSION,
                    "Os": "linux",
                    "Arch": arch(),
                    "KernelVersion": kernel_release(),
                }),
            }],
            version: VERSION.to_owned(),
            api_version: API_VERSION.to_owned(),
            min_api_version: MIN_API_VERSION.to_owned(),
            git_commit: String::new(),
            go_version: String::new(),
            os: "linux".to_owned(),
            arch: arch().to_owned(),
            kernel_version: kernel_release(),
            build_time: String::new(),
        }
    }

    fn info(&self) -> Result<Info> {
        let images = self.store.list(&ListFilters::default())?.len();
        let cgroup_v2 = std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
        Ok(Info {
            id: String::new(),
            containers: 0,
            containers_running: 0,
            containers_paused: 0,
            containers_stopped: 0,
            images: i64::try_from(images).unwrap_or(0),
            driver: "overlay2".to_owned(),
            driver_status: vec![["Backing Filesystem".to_owned(), "extfs".to_owned()]],
            docker_root_dir: self.data_root.display().to_string(),
            name: std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|s| s.trim().to_owned())
                .unwrap_or_default(),
            server_version: VERSION.to_owned(),
            operating_system: "linux".to_owned(),
            os_type: "linux".to_owned(),
            architecture: std::env::consts::ARCH.to_owned(),
            ncpu: std::thread::available_parallelism()
                .map_or(1, |n| i64::try_from(n.get()).unwrap_or(1)),
            mem_total: 0,
            kernel_version: kernel_release(),
            cgroup_driver: "cgroupfs".to_owned(),
            cgroup_version: if cgroup_v2 { "2" } else { "1" }.to_owned(),
            logging_driver: "json-file".to_owned(),
            security_options: vec!["name=seccomp,profile=builtin".to_owned()],
            default_runtime: "berth".to_owned(),
            live_restore_enabled: true,
            debug: false,
            warnings: Vec::new(),
        })
    }
}
