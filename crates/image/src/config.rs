//! The image configuration (OCI image spec `config.md`, plus the fields
//! Docker writes: `container_config`, `docker_version`, `Healthcheck`,
//! `OnBuild`, `Shell`, `ArgsEscaped`). Fields berth does not model are kept
//! in `other` so a config that is read, edited and written loses nothing.
//! A config's sha256 is the image ID: stored configs are kept as the exact
//! bytes received, never re-serialised.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::error::{ImageError, Result};

/// An image configuration.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ImageConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<ContainerConfig>,
    pub rootfs: RootFs,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<History>,
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_json::Value>,
}

/// The defaults a container of this image runs with.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerConfig {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub user: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exposed_ports: Option<BTreeMap<String, serde_json::Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volumes: Option<BTreeMap<String, serde_json::Value>>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub working_dir: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_build: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shell: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args_escaped: Option<bool>,
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_json::Value>,
}

/// The layers of the image, as uncompressed-tar digests, bottom first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootFs {
    #[serde(rename = "type")]
    pub kind: String,
    pub diff_ids: Vec<Digest>,
}

impl Default for RootFs {
    fn default() -> Self {
        Self {
            kind: "layers".to_owned(),
            diff_ids: Vec::new(),
        }
    }
}

/// One step of how the image was made.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct History {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub empty_layer: bool,
}

impl ImageConfig {
    /// Parses a config blob, checking what every later step relies on.
    pub fn parse(bytes: &[u8], what: &str) -> Result<Self> {
        let cfg: Self = serde_json::from_slice(bytes).map_err(|e| ImageError::json(what, e))?;
        if cfg.rootfs.kind != "layers" {
            return Err(ImageError::InvalidArchive(format!(
                "{what}: rootfs type {:?} is not \"layers\"",
                cfg.rootfs.kind
            )));
        }
        Ok(cfg)
    }

    /// The canonical bytes of a config berth writes (import, commit, build).
    pub fn to_bytes(&self) -> Vec<u8> {
        // Serialising plain data with string keys cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_fields_and_unknown_fields_survive_a_round_trip() {
        let raw = r#"{"architecture":"amd64","os":"linux","docker_version":"24.0.7",
            "config":{"Cmd":["sh"],"Env":["PATH=/bin"],"Healthcheck":{"Test":["NONE"]},"Tty":false},
            "rootfs":{"type":"layers","diff_ids":["sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"]},
            "history":[{"created_by":"/bin/sh -c #(nop) CMD [\"sh\"]","empty_layer":true}]}"#;
        let cfg = ImageConfig::parse(raw.as_bytes(), "cfg").unwrap();
        let c = cfg.config.as_ref().unwrap();
        assert_eq!(c.cmd.as_deref(), Some(&["sh".to_owned()][..]));
        assert_eq!(c.other["Tty"], serde_json::json!(false));
        assert_eq!(cfg.other["docker_version"], serde_json::json!("24.0.7"));
        let again = ImageConfig::parse(&cfg.to_bytes(), "again").unwrap();
        assert_eq!(again, cfg);
        assert!(again.history[0].empty_layer);
    }

    #[test]
    fn a_config_without_rootfs_is_refused() {
        let err = ImageConfig::parse(br#"{"os":"linux"}"#, "blob x").unwrap_err();
        assert!(err.to_string().contains("malformed blob x"), "{err}");
    }
}
