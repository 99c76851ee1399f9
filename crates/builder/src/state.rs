//! A stage's state between steps: the image it has reached, its config,
//! the cache key of everything so far, the build arguments in scope.

use std::collections::BTreeMap;

use berth_image::config::{ContainerConfig, ImageConfig};
use berth_image::Digest;
use sha2::{Digest as _, Sha256};

/// Docker's default `PATH` on Linux.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Docker's default shell for shell-form commands.
pub fn default_shell() -> Vec<String> {
    vec!["/bin/sh".to_owned(), "-c".to_owned()]
}

/// Build arguments Docker defines without an `ARG` (proxies): passed to
/// `RUN`, kept out of history and cache keys unless declared.
pub const PREDEFINED_ARGS: &[&str] = &[
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
];

/// Where a stage is.
#[derive(Debug, Clone)]
pub struct StageState {
    /// The image reached (None: `FROM scratch` before any step).
    pub image: Option<Digest>,
    pub config: ImageConfig,
    /// The cache key of the stage so far (hex sha256).
    pub key: String,
    /// `ARG`s declared in the stage, in order, with their values.
    pub args: Vec<(String, Option<String>)>,
    /// Whether this stage set `CMD` (an `ENTRYPOINT` then keeps it).
    pub cmd_set: bool,
}

impl StageState {
    /// The state at a stage's `FROM`: the base's config (PATH added when
    /// missing, as Docker does), keyed by the base's ID.
    pub fn from_base(image: Option<Digest>, mut config: ImageConfig) -> Self {
        let c = config.config.get_or_insert_with(ContainerConfig::default);
        let env = c.env.get_or_insert_with(Vec::new);
        if !env.iter().any(|e| e.starts_with("PATH=")) {
            env.push(format!("PATH={DEFAULT_PATH}"));
        }
        let key = chain_key(
            "",
            &format!(
                "FROM {}",
                image
                    .as_ref()
                    .map_or("scratch".to_owned(), ToString::to_string)
            ),
        );
        Self {
            image,
            config,
            key,
            args: Vec::new(),
            cmd_set: false,
        }
    }

    /// The container config (always present after [`Self::from_base`]).
    pub fn run_config(&mut self) -> &mut ContainerConfig {
        self.config
            .config
            .get_or_insert_with(ContainerConfig::default)
    }

    /// The container config, read-only.
    pub fn container(&self) -> ContainerConfig {
        self.config.config.clone().unwrap_or_default()
    }

    /// The environment as a map (later entries win).
    pub fn env_map(&self) -> BTreeMap<String, String> {
        self.container()
            .env
            .unwrap_or_default()
            .iter()
            .map(|e| {
                let (k, v) = e.split_once('=').unwrap_or((e, ""));
                (k.to_owned(), v.to_owned())
            })
            .collect()
    }

    /// What `$NAME` means in an instruction: the environment first (an
    /// `ENV` overrides an `ARG`), then the arguments in scope.
    pub fn lookup(&self, name: &str) -> Option<String> {
        if let Some(v) = self.env_map().get(name) {
            return Some(v.clone());
        }
        self.args
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .and_then(|(_, v)| v.clone())
    }

    /// Sets `key=value` in the environment, in place when it exists.
    pub fn set_env(&mut self, key: &str, value: &str) {
        let env = self.run_config().env.get_or_insert_with(Vec::new);
        let entry = format!("{key}={value}");
        match env
            .iter_mut()
            .find(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k) == key)
        {
            Some(e) => *e = entry,
            None => env.push(entry),
        }
    }

    /// The shell for shell-form commands (`SHELL`, else `/bin/sh -c`).
    pub fn shell(&self) -> Vec<String> {
        self.container().shell.unwrap_or_else(default_shell)
    }

    /// The working directory (`/` when unset).
    pub fn workdir(&self) -> String {
        let w = self.container().working_dir;
        if w.is_empty() {
            "/".to_owned()
        } else {
            w
        }
    }

    /// Moves the key on by one step.
    pub fn advance(&mut self, text: &str) {
        self.key = chain_key(&self.key, text);
    }
}

/// The key of a step: its parent's key and its text.
pub fn chain_key(parent: &str, text: &str) -> String {
    let mut h = Sha256::new();
    h.update(parent.as_bytes());
    h.update(b"\n");
    h.update(text.as_bytes());
    hex::encode(h.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stage_gets_dockers_default_path_and_env_overrides_args() {
        let mut s = StageState::from_base(None, ImageConfig::default());
        assert_eq!(s.lookup("PATH").as_deref(), Some(DEFAULT_PATH));
        s.args.push(("V".into(), Some("arg".into())));
        assert_eq!(s.lookup("V").as_deref(), Some("arg"));
        s.set_env("V", "env");
        assert_eq!(s.lookup("V").as_deref(), Some("env"));
        s.set_env("V", "again");
        assert_eq!(s.container().env.unwrap().len(), 2, "replaced in place");
    }

    #[test]
    fn keys_chain() {
        let a = chain_key("", "x");
        assert_ne!(chain_key(&a, "y"), chain_key(&chain_key("", "y"), "y"));
        assert_eq!(a.len(), 64);
    }
}
