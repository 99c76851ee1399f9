//! `docker login`: the check a daemon makes (`POST /auth`: do these
//! credentials open the registry?) and what a client keeps afterwards —
//! the credentials in its `config.json`, or in the credential store it
//! names, under Docker's keys.

use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine;
use serde_json::{json, Value};

use crate::auth::{parse_challenge, Challenge, Credentials};
use crate::client::{status_error, Payload, Registry};
use crate::error::{RegistryError, Result};
use berth_image::reference::DEFAULT_DOMAIN;

/// The key Docker Hub's credentials are kept under.
pub const DOCKER_HUB_KEY: &str = "https://index.docker.io/v1/";

/// The registry a login names: `https://index.docker.io/v1/` (or
/// nothing) is Docker Hub, `docker.io`; otherwise the host and port of a
/// server given with or without a scheme and path.
pub fn registry_name(server: &str) -> String {
    let host = server
        .trim()
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap_or_default();
    match host {
        "" | "index.docker.io" | "registry-1.docker.io" | DEFAULT_DOMAIN => {
            DEFAULT_DOMAIN.to_owned()
        }
        h => h.to_owned(),
    }
}

/// Where a client keeps the credentials of registry `name`.
pub fn config_key(name: &str) -> String {
    if name == DEFAULT_DOMAIN {
        DOCKER_HUB_KEY.to_owned()
    } else {
        name.to_owned()
    }
}

impl Registry {
    /// Whether the registry takes this client's credentials: `GET /v2/`,
    /// answered with the challenge's scheme (a token for no scope, or
    /// basic auth). A registry that wants none takes any. Returns the
    /// refresh token a token server gave for the login, if any.
    pub fn check_login(&self) -> Result<Option<String>> {
        let url = self.url("/v2/");
        let r = self.raw("GET", &url, &[], None, &mut Payload::None)?;
        if r.status().is_success() {
            return Ok(None);
        }
        if r.status() != 401 {
            let mut r = r;
            return Err(status_error("GET", &url, &mut r));
        }
        let refused = || RegistryError::Unauthorized {
            message: format!("login attempt to {url} failed with status: 401 Unauthorized"),
        };
        let challenge = r
            .headers()
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok())
            .and_then(parse_challenge)
            .ok_or_else(refused)?;
        let creds = self.credentials().ok_or_else(refused)?;
        match challenge {
            Challenge::Basic => {
                let mut r = self.raw("GET", &url, &[], Some(&creds.basic()), &mut Payload::None)?;
                match r.status().as_u16() {
                    200..=299 => Ok(None),
                    401 | 403 => Err(refused()),
                    _ => Err(status_error("GET", &url, &mut r)),
                }
            }
            Challenge::Bearer { realm, service } => {
                // A refresh token, when the server gives one, is what the
                // client keeps instead of the password (docker's
                // identity token).
                let a = self.fetch_token(&realm, &service, "", true)?;
                Ok(a.refresh_token)
            }
        }
    }
}

/// The client's docker config directory: `$DOCKER_CONFIG`, else
/// `~/.docker`.
pub fn config_dir() -> Option<PathBuf> {
    std::env::var_os("DOCKER_CONFIG")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker")))
}

fn config_error(path: &Path, reason: impl std::fmt::Display) -> RegistryError {
    RegistryError::Config {
        path: path.to_owned(),
        reason: reason.to_string(),
    }
}

/// The config as JSON, every field kept (an absent file is empty).
fn read_config(path: &Path) -> Result<Value> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| config_error(path, e)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(json!({})),
        Err(e) => Err(config_error(path, e)),
    }
}

/// Replaces the config at once (a crash leaves the old or the new one),
/// readable by its owner only: it holds secrets.
fn write_config(path: &Path, config: &Value) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| config_error(dir, e))?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(|e| config_error(dir, e))?;
    let text = serde_json::to_string_pretty(config).map_err(|e| config_error(path, e))?;
    tmp.write_all(text.as_bytes())
        .and_then(|()| tmp.as_file().sync_all())
        .and_then(|()| {
            tmp.as_file()
                .set_permissions(std::fs::Permissions::from_mode(0o600))
        })
        .map_err(|e| config_error(path, e))?;
    tmp.persist(path).map_err(|e| config_error(path, e.error))?;
    Ok(())
}

/// The credential helper that keeps `key`'s secrets, if one does.
fn helper_for(config: &Value, key: &str) -> Option<String> {
    config["credHelpers"][key]
        .as_str()
        .or_else(|| config["credsStore"].as_str())
        .filter(|h| !h.is_empty())
        .map(str::to_owned)
}

/// `docker-credential-<helper> <verb>` fed `input`.
fn run_helper(helper: &str, verb: &str, input: &str) -> Result<()> {
    let program = format!("docker-credential-{helper}");
    let failed = |reason: String| RegistryError::Transport {
        what: format!("{program} {verb}"),
        reason,
    };
    let mut child = std::process::Command::new(&program)
        .arg(verb)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| failed(e.to_string()))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(input.as_bytes())
            .map_err(|e| failed(e.to_string()))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| failed(e.to_string()))?;
    if out.status.success() {
        Ok(())
    } else {
        let said = String::from_utf8_lossy(&out.stdout) + String::from_utf8_lossy(&out.stderr);
        Err(failed(said.trim().to_owned()))
    }
}

/// Keeps `creds` for registry `name` in the config in `dir` (or in the
/// credential store it names), as `docker login` does.
pub fn save(dir: &Path, name: &str, creds: &Credentials) -> Result<()> {
    let path = dir.join("config.json");
    let mut config = read_config(&path)?;
    let key = config_key(name);
    // An identity token stands for the password, as docker keeps it: a
    // helper gets `<token>` as the user, the config the user name alone.
    let identity = creds.identity_token.as_deref().filter(|t| !t.is_empty());
    if let Some(helper) = helper_for(&config, &key) {
        let entry = match identity {
            Some(t) => json!({ "ServerURL": key, "Username": "<token>", "Secret": t }),
            None => {
                json!({ "ServerURL": key, "Username": creds.username, "Secret": creds.password })
            }
        };
        run_helper(&helper, "store", &entry.to_string())?;
        // The config keeps only that the registry has credentials.
        config["auths"][&key] = json!({});
    } else {
        let password = if identity.is_some() {
            ""
        } else {
            &creds.password
        };
        let raw = format!("{}:{password}", creds.username);
        let auth = base64::engine::general_purpose::STANDARD.encode(raw);
        config["auths"][&key] = match identity {
            Some(t) => json!({ "auth": auth, "identitytoken": t }),
            None => json!({ "auth": auth }),
        };
    }
    write_config(&path, &config)
}

/// Forgets registry `name`'s credentials; false when none were kept.
pub fn erase(dir: &Path, name: &str) -> Result<bool> {
    let path = dir.join("config.json");
    let mut config = read_config(&path)?;
    let key = config_key(name);
    if let Some(helper) = helper_for(&config, &key) {
        run_helper(&helper, "erase", &key)?;
    }
    let removed = config["auths"]
        .as_object_mut()
        .and_then(|auths| auths.remove(&key))
        .is_some();
    if removed {
        write_config(&path, &config)?;
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DockerConfig;

    #[test]
    fn servers_name_their_registry_as_docker_does() {
        assert_eq!(registry_name(""), "docker.io");
        assert_eq!(registry_name("https://index.docker.io/v1/"), "docker.io");
        assert_eq!(registry_name("http://127.0.0.1:5000/v2/"), "127.0.0.1:5000");
        assert_eq!(registry_name("reg.example:443"), "reg.example:443");
        assert_eq!(config_key("docker.io"), DOCKER_HUB_KEY);
    }

    #[test]
    fn save_keeps_the_other_settings_and_erase_forgets() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        std::fs::write(
            &path,
            r#"{"psFormat":"table {{.ID}}","auths":{"a:1":{"auth":"eDp5"}}}"#,
        )
        .unwrap();
        let creds = Credentials {
            username: "ann".into(),
            password: "s3cret".into(),
            identity_token: None,
        };
        save(dir.path(), "127.0.0.1:5000", &creds).unwrap();
        let got = DockerConfig::read(&path)
            .credentials("127.0.0.1:5000")
            .unwrap();
        assert_eq!(
            (got.username.as_str(), got.password.as_str()),
            ("ann", "s3cret")
        );
        let v: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(v["psFormat"], "table {{.ID}}");
        assert!(v["auths"]["a:1"].is_object());
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(erase(dir.path(), "127.0.0.1:5000").unwrap());
        assert!(!erase(dir.path(), "127.0.0.1:5000").unwrap());
        assert!(DockerConfig::read(&path)
            .credentials("127.0.0.1:5000")
            .is_none());
    }

    #[test]
    fn an_identity_token_is_kept_instead_of_the_password() {
        let dir = tempfile::tempdir().unwrap();
        let creds = Credentials {
            username: "ann".into(),
            password: "s3cret".into(),
            identity_token: Some("refresh-ann".into()),
        };
        save(dir.path(), "reg:5000", &creds).unwrap();
        let text = std::fs::read_to_string(dir.path().join("config.json")).unwrap();
        assert!(
            !text.contains("s3cret") && !text.contains("czNjcmV0"),
            "{text}"
        );
        let got = DockerConfig::read(&dir.path().join("config.json"))
            .credentials("reg:5000")
            .unwrap();
        assert_eq!(got.username, "ann");
        assert_eq!(got.password, "");
        assert_eq!(got.identity_token.as_deref(), Some("refresh-ann"));
    }

    #[test]
    fn a_malformed_config_is_an_error_not_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        std::fs::write(&path, "{not json").unwrap();
        let creds = Credentials::default();
        let err = save(dir.path(), "h:1", &creds).unwrap_err();
        assert!(err.to_string().contains("config.json"), "{err}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "{not json");
    }
}
