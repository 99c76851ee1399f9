//! Who the client is to a registry: credentials (from a client's
//! `X-Registry-Auth`, from `~/.docker/config.json` and its credential
//! helpers) and the `WWW-Authenticate` challenge of the distribution
//! spec's token flow (<https://distribution.github.io/distribution/spec/auth/token/>).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use base64::Engine;
use serde::Deserialize;

/// A user's credentials for one registry.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Credentials {
    pub username: String,
    pub password: String,
    /// An OAuth refresh token (`docker login` to some registries): used
    /// instead of the password.
    pub identity_token: Option<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secret, not even in a debug log.
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

impl Credentials {
    /// `Basic base64(user:password)`.
    pub fn basic(&self) -> String {
        let raw = format!("{}:{}", self.username, self.password);
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
    }
}

/// The `X-Registry-Auth` header docker clients send: base64url JSON.
pub fn from_registry_auth(header: &str) -> Option<Credentials> {
    // Clients send absent fields as null (bollard) or leave them out.
    #[derive(Deserialize)]
    struct Auth {
        #[serde(default)]
        username: Option<String>,
        #[serde(default)]
        password: Option<String>,
        #[serde(default, rename = "identitytoken")]
        identity_token: Option<String>,
    }
    let header = header.trim();
    if header.is_empty() {
        return None;
    }
    let engines = [
        &base64::engine::general_purpose::URL_SAFE,
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        &base64::engine::general_purpose::STANDARD,
    ];
    let bytes = engines.iter().find_map(|e| e.decode(header).ok())?;
    let a: Auth = serde_json::from_slice(&bytes).ok()?;
    let username = a.username.unwrap_or_default();
    let identity_token = a.identity_token.filter(|t| !t.is_empty());
    if username.is_empty() && identity_token.is_none() {
        return None;
    }
    Some(Credentials {
        username,
        password: a.password.unwrap_or_default(),
        identity_token,
    })
}

/// `~/.docker/config.json` (or `$DOCKER_CONFIG/config.json`), the parts
/// that hold credentials.
#[derive(Debug, Default, Deserialize)]
pub struct DockerConfig {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
    #[serde(default, rename = "credsStore")]
    creds_store: Option<String>,
    #[serde(default, rename = "credHelpers")]
    cred_helpers: BTreeMap<String, String>,
}

#[derive(Debug, Default, Deserialize)]
struct AuthEntry {
    #[serde(default)]
    auth: String,
    #[serde(default, rename = "identitytoken")]
    identity_token: String,
}

use crate::login::DOCKER_HUB_KEY;
use berth_image::reference::DEFAULT_DOMAIN;

impl DockerConfig {
    /// The config at its usual place (nothing when there is none).
    pub fn load() -> Self {
        crate::login::config_dir()
            .map(|d| Self::read(&d.join("config.json")))
            .unwrap_or_default()
    }

    /// The config in `path` (nothing when it is missing or unreadable).
    pub fn read(path: &Path) -> Self {
        std::fs::read(path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    /// Credentials for `registry` (a host as the client names it: Docker
    /// Hub is `docker.io`): a helper's when one is configured, else the
    /// stored `auth`.
    pub fn credentials(&self, registry: &str) -> Option<Credentials> {
        let key = if registry == DEFAULT_DOMAIN || registry == crate::client::DOCKER_HUB_REGISTRY {
            DOCKER_HUB_KEY
        } else {
            registry
        };
        let helper = self.cred_helpers.get(key).or(self.creds_store.as_ref());
        if let Some(h) = helper {
            if let Some(c) = from_helper(h, key) {
                return Some(c);
            }
        }
        let entry = self.auths.iter().find(|(k, _)| {
            let host = k
                .trim_start_matches("https://")
                .trim_start_matches("http://")
                .split('/')
                .next()
                .unwrap_or_default();
            k.as_str() == key || host == key
        })?;
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(entry.1.auth.trim())
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .unwrap_or_default();
        let (username, password) = decoded.split_once(':').unwrap_or(("", ""));
        let identity_token = Some(entry.1.identity_token.clone()).filter(|t| !t.is_empty());
        (!username.is_empty() || identity_token.is_some()).then(|| Credentials {
            username: username.to_owned(),
            password: password.to_owned(),
            identity_token,
        })
    }
}

/// `docker-credential-<helper> get`, fed the server on stdin.
fn from_helper(helper: &str, server: &str) -> Option<Credentials> {
    #[derive(Deserialize)]
    struct Answer {
        #[serde(rename = "Username")]
        username: String,
        #[serde(rename = "Secret")]
        secret: String,
    }
    let mut child = std::process::Command::new(format!("docker-credential-{helper}"))
        .arg("get")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .ok()?;
    child.stdin.take()?.write_all(server.as_bytes()).ok()?;
    let out = child.wait_with_output().ok()?;
    if !out.status.success() {
        return None;
    }
    let a: Answer = serde_json::from_slice(&out.stdout).ok()?;
    // Helpers answer `<token>` as the username for identity tokens.
    Some(if a.username == "<token>" {
        Credentials {
            username: String::new(),
            password: String::new(),
            identity_token: Some(a.secret),
        }
    } else {
        Credentials {
            username: a.username,
            password: a.secret,
            identity_token: None,
        }
    })
}

/// A `WWW-Authenticate` challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    Basic,
    /// Get a token from `realm` for `service` (the scope is the request's).
    Bearer {
        realm: String,
        service: String,
    },
}

/// Parses `Bearer realm="…",service="…",scope="…"` or `Basic realm="…"`.
pub fn parse_challenge(header: &str) -> Option<Challenge> {
    let (scheme, rest) = header.trim().split_once(' ').unwrap_or((header.trim(), ""));
    match scheme.to_ascii_lowercase().as_str() {
        "basic" => Some(Challenge::Basic),
        "bearer" => {
            let params = challenge_params(rest);
            Some(Challenge::Bearer {
                realm: params.get("realm")?.clone(),
                service: params.get("service").cloned().unwrap_or_default(),
            })
        }
        _ => None,
    }
}

/// `key="value",key=value` pairs (values may hold commas inside quotes).
fn challenge_params(s: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut rest = s.trim();
    while !rest.is_empty() {
        let Some((key, after)) = rest.split_once('=') else {
            break;
        };
        let key = key
            .trim()
            .trim_start_matches(',')
            .trim()
            .to_ascii_lowercase();
        let (value, tail) = if let Some(quoted) = after.strip_prefix('"') {
            match quoted.find('"') {
                Some(end) => (&quoted[..end], &quoted[end + 1..]),
                None => (quoted, ""),
            }
        } else {
            after.split_once(',').unwrap_or((after, ""))
        };
        out.insert(key, value.to_owned());
        rest = tail.trim_start_matches(',').trim();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_parse_with_quoted_commas() {
        let c = parse_challenge(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull,push""#,
        )
        .unwrap();
        assert_eq!(
            c,
            Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: "registry.docker.io".into()
            }
        );
        assert_eq!(
            parse_challenge(r#"Basic realm="Registry Realm""#),
            Some(Challenge::Basic)
        );
        assert_eq!(parse_challenge("Negotiate"), None);
    }

    #[test]
    fn credentials_come_from_the_config_and_the_api_header() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        let auth = base64::engine::general_purpose::STANDARD.encode("ann:s3cret");
        std::fs::write(
            &path,
            format!(r#"{{"auths":{{"127.0.0.1:5000":{{"auth":"{auth}"}},"https://index.docker.io/v1/":{{"auth":"{auth}"}}}}}}"#),
        )
        .unwrap();
        let cfg = DockerConfig::read(&path);
        let c = cfg.credentials("127.0.0.1:5000").unwrap();
        assert_eq!(
            (c.username.as_str(), c.password.as_str()),
            ("ann", "s3cret")
        );
        assert!(cfg.credentials("docker.io").is_some(), "Docker Hub's key");
        assert!(cfg.credentials("elsewhere:5000").is_none());
        assert_eq!(format!("{c:?}"), "Credentials { username: \"ann\", .. }");
        let header = base64::engine::general_purpose::URL_SAFE
            .encode(r#"{"username":"bob","password":"pw","serveraddress":"127.0.0.1:5000"}"#);
        let c = from_registry_auth(&header).unwrap();
        assert_eq!((c.username.as_str(), c.password.as_str()), ("bob", "pw"));
        assert!(from_registry_auth("").is_none());
        let empty = base64::engine::general_purpose::URL_SAFE.encode("{}");
        assert!(from_registry_auth(&empty).is_none());
        // bollard sends the fields it has no value for as null.
        let nulls = base64::engine::general_purpose::URL_SAFE
            .encode(r#"{"username":"bob","password":"pw","auth":null,"identitytoken":null}"#);
        assert_eq!(from_registry_auth(&nulls).unwrap().username, "bob");
    }
}
