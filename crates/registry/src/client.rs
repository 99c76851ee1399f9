//! One registry over HTTP: the endpoints of the OCI distribution spec
//! (<https://github.com/opencontainers/distribution-spec/blob/main/spec.md>)
//! berth uses, with a token per scope (see `token`), fetched again when it
//! expires or the registry answers 401. Synchronous (ureq over rustls): the callers
//! are the engine's blocking threads.

use std::collections::HashMap;
use std::io::Read;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

use berth_image::{Digest, Reference};
use ureq::http::Response;
use ureq::Body;

use crate::auth::{parse_challenge, Challenge, Credentials};
use crate::error::{RegistryError, Result};
use crate::token::CachedToken;
use berth_image::reference::DEFAULT_DOMAIN;

/// Docker Hub's registry host (`docker.io` is its name, not its address).
pub const DOCKER_HUB_REGISTRY: &str = "registry-1.docker.io";

/// Every manifest format berth reads, for `Accept`.
pub const MANIFEST_TYPES: &str = "application/vnd.oci.image.index.v1+json, \
    application/vnd.docker.distribution.manifest.list.v2+json, \
    application/vnd.oci.image.manifest.v1+json, \
    application/vnd.docker.distribution.manifest.v2+json";

const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// How berth reaches registries (the daemon's configuration).
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Registries spoken to over plain HTTP (dockerd's
    /// `--insecure-registry`), besides loopback ones.
    pub insecure: Vec<String>,
    /// Mirrors tried first for pulls from Docker Hub, as
    /// `https://mirror:port`.
    pub mirrors: Vec<String>,
    /// How long a registry may stay silent mid-transfer before the
    /// transfer fails (a stalled server; the transfer is then resumed).
    pub read_timeout: Duration,
    /// Layers downloaded at the same time (dockerd's
    /// `--max-concurrent-downloads`).
    pub concurrent_downloads: usize,
    /// Layers uploaded at the same time (`--max-concurrent-uploads`).
    pub concurrent_uploads: usize,
    /// Tries per blob download, each resuming the last
    /// (`--max-download-attempts`).
    pub download_attempts: usize,
}

impl Default for ClientOptions {
    /// dockerd's defaults.
    fn default() -> Self {
        Self {
            insecure: Vec::new(),
            mirrors: Vec::new(),
            read_timeout: Duration::from_secs(60),
            concurrent_downloads: 3,
            concurrent_uploads: 5,
            download_attempts: 5,
        }
    }
}

/// A request body.
#[allow(missing_debug_implementations)] // holds a reader
pub enum Payload<'a> {
    None,
    Bytes(&'a [u8], &'a str),
    Stream(&'a mut dyn Read, u64),
    /// A body of unknown length (chunked transfer encoding).
    Chunked(&'a mut dyn Read),
}

/// A registry, as one client with its credentials.
pub struct Registry {
    agent: ureq::Agent,
    /// `scheme://host[:port]`.
    base: String,
    /// The registry's name as the user wrote it (`docker.io`,
    /// `127.0.0.1:5000`), for credentials and messages.
    pub name: String,
    pub(crate) creds: Option<Credentials>,
    /// Bearer tokens by scope; the challenge once seen.
    pub(crate) tokens: Mutex<HashMap<String, CachedToken>>,
    pub(crate) challenge: Mutex<Option<Challenge>>,
    /// The refresh token the token server last gave (some rotate it).
    pub(crate) refresh_token: Mutex<Option<String>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

/// Whether `host` is spoken to over plain HTTP: loopback addresses (as
/// dockerd allows) and the configured insecure registries.
fn plain_http(host: &str, insecure: &[String]) -> bool {
    let bare = host.rsplit_once(':').map_or(host, |(h, p)| {
        if p.chars().all(|c| c.is_ascii_digit()) {
            h
        } else {
            host
        }
    });
    let bare = bare.trim_start_matches('[').trim_end_matches(']');
    let loopback = bare == "localhost" || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
    loopback || insecure.iter().any(|i| i == host || i == bare)
}

impl Registry {
    /// The registry of `reference`, with these credentials.
    pub fn new(reference: &Reference, creds: Option<Credentials>, opts: &ClientOptions) -> Self {
        Self::named(reference.domain(), creds, opts)
    }

    /// The registry called `name` (`docker.io`, `127.0.0.1:5000`).
    pub fn named(name: &str, creds: Option<Credentials>, opts: &ClientOptions) -> Self {
        let host = if name == DEFAULT_DOMAIN {
            DOCKER_HUB_REGISTRY
        } else {
            name
        };
        let base = if plain_http(host, &opts.insecure) {
            format!("http://{host}")
        } else {
            format!("https://{host}")
        };
        Self::at(name, base, creds, opts)
    }

    /// Where a pull of `reference` may come from, in order: for Docker
    /// Hub, each `--registry-mirror`, then Docker Hub itself (as dockerd
    /// tries them); for any other registry, that registry. Pushes and
    /// logins never go to mirrors.
    pub fn pull_endpoints(
        reference: &Reference,
        creds: Option<Credentials>,
        opts: &ClientOptions,
    ) -> Vec<Self> {
        let name = reference.domain();
        let mut endpoints = Vec::new();
        if name == DEFAULT_DOMAIN {
            for m in &opts.mirrors {
                let base = m.trim_end_matches('/').to_owned();
                endpoints.push(Self::at(name, base, creds.clone(), opts));
            }
        }
        endpoints.push(Self::named(name, creds, opts));
        endpoints
    }

    /// Where this client sends its requests (`scheme://host[:port]`).
    pub fn base(&self) -> &str {
        &self.base
    }

    fn at(name: &str, base: String, creds: Option<Credentials>, opts: &ClientOptions) -> Self {
        let name = name.to_owned();
        let agent = ureq::Agent::config_builder()
            .timeout_connect(Some(CONNECT_TIMEOUT))
            .timeout_per_read(Some(opts.read_timeout))
            .http_status_as_error(false)
            .build()
            .into();
        Self {
            agent,
            base,
            name,
            creds,
            tokens: Mutex::new(HashMap::new()),
            challenge: Mutex::new(None),
            refresh_token: Mutex::new(None),
        }
    }

    /// The credentials this client presents.
    pub fn credentials(&self) -> Option<&Credentials> {
        self.creds.as_ref()
    }

    /// A URL on this registry (`Location` headers may be relative).
    pub fn url(&self, path: &str) -> String {
        if path.starts_with("http://") || path.starts_with("https://") {
            path.to_owned()
        } else {
            format!("{}{path}", self.base)
        }
    }

    fn transport(&self, what: &str, e: impl std::fmt::Display) -> RegistryError {
        RegistryError::Transport {
            what: format!("{what} ({})", self.name),
            reason: e.to_string(),
        }
    }

    pub(crate) fn raw(
        &self,
        method: &'static str,
        url: &str,
        headers: &[(&str, &str)],
        auth: Option<&str>,
        body: &mut Payload<'_>,
    ) -> Result<Response<Body>> {
        macro_rules! with_headers {
            ($b:expr) => {{
                let mut b = $b;
                for (k, v) in headers {
                    b = b.header(*k, *v);
                }
                if let Some(a) = auth {
                    b = b.header("Authorization", a);
                }
                b
            }};
        }
        let sent = match (method, body) {
            ("GET", _) => with_headers!(self.agent.get(url)).call(),
            ("HEAD", _) => with_headers!(self.agent.head(url)).call(),
            ("DELETE", _) => with_headers!(self.agent.delete(url)).call(),
            (m, Payload::None) => with_headers!(self.with_body(m, url)).send_empty(),
            (m, Payload::Bytes(bytes, ct)) => with_headers!(self.with_body(m, url))
                .header("Content-Type", *ct)
                .send(*bytes),
            (m, Payload::Stream(r, len)) => with_headers!(self.with_body(m, url))
                .header("Content-Type", "application/octet-stream")
                .header("Content-Length", &len.to_string())
                .send(ureq::SendBody::from_reader(*r)),
            // No length: ureq sends it chunked.
            (m, Payload::Chunked(r)) => with_headers!(self.with_body(m, url))
                .header("Content-Type", "application/octet-stream")
                .send(ureq::SendBody::from_reader(*r)),
        };
        sent.map_err(|e| self.transport(&format!("{method} {url}"), e))
    }

    /// A request that carries a body: POST, PATCH, else PUT.
    fn with_body(
        &self,
        method: &str,
        url: &str,
    ) -> ureq::RequestBuilder<ureq::typestate::WithBody> {
        match method {
            "POST" => self.agent.post(url),
            "PATCH" => self.agent.patch(url),
            _ => self.agent.put(url),
        }
    }

    /// Sends a request with the credentials `scope` needs; on a 401 the
    /// challenge is read and the request sent once more (a streamed body
    /// cannot be sent twice: its caller authenticates first, see
    /// [`Registry::prepare`]).
    pub fn send(
        &self,
        method: &'static str,
        path: &str,
        headers: &[(&str, &str)],
        scope: &str,
        mut body: Payload<'_>,
    ) -> Result<Response<Body>> {
        let url = self.url(path);
        let auth = self.authorization(scope, false)?;
        let r = self.raw(method, &url, headers, auth.as_deref(), &mut body)?;
        if r.status() != 401 || matches!(body, Payload::Stream(..) | Payload::Chunked(_)) {
            return Ok(r);
        }
        let had_challenge = self.learn_challenge(&r);
        if !had_challenge {
            return Err(unauthorized(&self.name, self.creds.is_some()));
        }
        let auth = self.authorization(scope, true)?;
        let r = self.raw(method, &url, headers, auth.as_deref(), &mut body)?;
        if r.status() == 401 {
            return Err(unauthorized(&self.name, self.creds.is_some()));
        }
        Ok(r)
    }

    /// Learns how the registry wants to be authenticated (`GET /v2/`), so
    /// a streamed upload goes with the right credentials the first time.
    pub fn prepare(&self, scope: &str) -> Result<()> {
        let known = crate::lock(&self.challenge).is_some();
        if !known {
            let r = self.raw("GET", &self.url("/v2/"), &[], None, &mut Payload::None)?;
            if r.status() == 401 {
                self.learn_challenge(&r);
            }
        }
        self.authorization(scope, false).map(drop)
    }

    fn learn_challenge(&self, r: &Response<Body>) -> bool {
        let parsed = r
            .headers()
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok())
            .and_then(parse_challenge);
        let found = parsed.is_some();
        if let Some(c) = parsed {
            *crate::lock(&self.challenge) = Some(c);
        }
        found
    }

    /// A manifest or index: its bytes, the media type the registry gave,
    /// and its digest (verified against the bytes).
    pub fn manifest(
        &self,
        repo: &str,
        reference: &str,
    ) -> Result<(Vec<u8>, Option<String>, Digest)> {
        let path = format!("/v2/{repo}/manifests/{reference}");
        let mut r = self.send(
            "GET",
            &path,
            &[("Accept", MANIFEST_TYPES)],
            &pull_scope(repo),
            Payload::None,
        )?;
        match r.status().as_u16() {
            200 => {}
            404 => {
                return Err(RegistryError::NotFound(format!(
                    "manifest for {}/{repo}:{reference} not found: manifest unknown",
                    self.name
                )))
            }
            _ => return Err(status_error("GET", &self.url(&path), &mut r)),
        }
        let media_type =
            header(&r, "content-type").map(|c| c.split(';').next().unwrap_or(&c).trim().to_owned());
        let bytes = read_small(&mut r, &path)?;
        let digest = Digest::sha256(&bytes);
        if let Ok(pinned) = reference.parse::<Digest>() {
            if pinned != digest {
                return Err(RegistryError::Invalid(format!(
                    "the manifest {repo}@{pinned} from {} has the digest {digest}",
                    self.name
                )));
            }
        }
        Ok((bytes, media_type, digest))
    }

    /// A blob's content from byte `offset` on (a ranged request resumes an
    /// interrupted download); returns the reader and where it starts.
    pub fn blob(
        &self,
        repo: &str,
        digest: &Digest,
        offset: u64,
    ) -> Result<(Box<dyn Read + Send>, u64)> {
        let path = format!("/v2/{repo}/blobs/{digest}");
        let range = format!("bytes={offset}-");
        let headers: Vec<(&str, &str)> = if offset > 0 {
            vec![("Range", &range)]
        } else {
            Vec::new()
        };
        let mut r = self.send("GET", &path, &headers, &pull_scope(repo), Payload::None)?;
        let start = match r.status().as_u16() {
            206 => offset,
            200 => 0,
            404 => {
                return Err(RegistryError::NotFound(format!(
                    "blob {digest} not found in {}/{repo}",
                    self.name
                )))
            }
            _ => return Err(status_error("GET", &self.url(&path), &mut r)),
        };
        Ok((Box::new(r.into_body().into_reader()), start))
    }

    /// Whether the repository has the blob (`HEAD`).
    pub fn has_blob(&self, repo: &str, digest: &Digest) -> Result<bool> {
        let path = format!("/v2/{repo}/blobs/{digest}");
        let mut r = self.send("HEAD", &path, &[], &push_scope(repo), Payload::None)?;
        match r.status().as_u16() {
            200 => Ok(true),
            404 => Ok(false),
            _ => Err(status_error("HEAD", &self.url(&path), &mut r)),
        }
    }

    /// The repository's tags.
    pub fn tags(&self, repo: &str) -> Result<Vec<String>> {
        #[derive(serde::Deserialize)]
        struct List {
            #[serde(default)]
            tags: Option<Vec<String>>,
        }
        let path = format!("/v2/{repo}/tags/list");
        let mut r = self.send("GET", &path, &[], &pull_scope(repo), Payload::None)?;
        if r.status() == 404 {
            return Err(RegistryError::NotFound(format!(
                "repository {}/{repo} not found",
                self.name
            )));
        }
        if !r.status().is_success() {
            return Err(status_error("GET", &self.url(&path), &mut r));
        }
        let list: List = serde_json::from_slice(&read_small(&mut r, &path)?)
            .map_err(|e| RegistryError::Invalid(format!("the tags of {repo}: {e}")))?;
        Ok(list.tags.unwrap_or_default())
    }
}

/// The pull scope of a repository (token flow).
pub fn pull_scope(repo: &str) -> String {
    format!("repository:{repo}:pull")
}

/// The push scope (push implies pull: a HEAD of a blob before an upload).
pub fn push_scope(repo: &str) -> String {
    format!("repository:{repo}:pull,push")
}

pub(crate) fn unauthorized(registry: &str, had_creds: bool) -> RegistryError {
    let message = if had_creds {
        format!("authentication to {registry} failed: check the user name and password (berth login {registry})")
    } else {
        format!("{registry} requires authentication: run `berth login {registry}` (or docker login) first")
    };
    RegistryError::Unauthorized { message }
}

/// A header's value.
pub fn header(r: &Response<Body>, name: &str) -> Option<String> {
    r.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// A small document (manifest, token, tag list): bounded.
pub fn read_small(r: &mut Response<Body>, what: &str) -> Result<Vec<u8>> {
    r.body_mut()
        .with_config()
        .limit(berth_image::archive::MAX_DOCUMENT)
        .read_to_vec()
        .map_err(|e| RegistryError::Transport {
            what: format!("reading {what}"),
            reason: e.to_string(),
        })
}

/// A non-success answer, with the registry's error text.
pub fn status_error(method: &'static str, url: &str, r: &mut Response<Body>) -> RegistryError {
    let status = r.status().as_u16();
    let body = r
        .body_mut()
        .with_config()
        .limit(64 << 10)
        .read_to_string()
        .unwrap_or_default();
    if status == 401 || status == 403 {
        return RegistryError::Unauthorized {
            message: format!("{method} {url}: {}", body.trim()),
        };
    }
    RegistryError::Status {
        method,
        url: url.to_owned(),
        status,
        body: body.trim().to_owned(),
    }
}

/// A query or form value, `application/x-www-form-urlencoded`.
pub(crate) fn encode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_and_listed_registries_are_plain_http() {
        assert!(plain_http("127.0.0.1:5000", &[]));
        assert!(plain_http("localhost:5000", &[]));
        assert!(plain_http("[::1]:5000", &[]));
        assert!(!plain_http("registry.example.com", &[]));
        assert!(plain_http(
            "registry.lan:5000",
            &["registry.lan:5000".into()]
        ));
        let hub: Reference = "busybox".parse().unwrap();
        let r = Registry::new(&hub, None, &ClientOptions::default());
        assert_eq!(r.url("/v2/"), "https://registry-1.docker.io/v2/");
        let local: Reference = "127.0.0.1:5000/a/b:1".parse().unwrap();
        assert_eq!(
            Registry::new(&local, None, &ClientOptions::default()).url("/v2/"),
            "http://127.0.0.1:5000/v2/"
        );
    }

    #[test]
    fn mirrors_serve_docker_hub_pulls_only() {
        let opts = ClientOptions {
            mirrors: vec!["http://m1:5000/".into(), "https://m2".into()],
            ..ClientOptions::default()
        };
        let hub: Reference = "busybox".parse().unwrap();
        let bases: Vec<String> = Registry::pull_endpoints(&hub, None, &opts)
            .iter()
            .map(|r| r.base().to_owned())
            .collect();
        assert_eq!(
            bases,
            [
                "http://m1:5000",
                "https://m2",
                "https://registry-1.docker.io"
            ]
        );
        // Pushes and logins use the client of the name: never a mirror.
        assert_eq!(
            Registry::new(&hub, None, &opts).base(),
            "https://registry-1.docker.io"
        );
        let other: Reference = "quay.io/a/b".parse().unwrap();
        assert_eq!(Registry::pull_endpoints(&other, None, &opts).len(), 1);
    }

    #[test]
    fn query_values_are_percent_encoded() {
        assert_eq!(
            encode("repository:a/b:pull,push"),
            "repository%3Aa%2Fb%3Apull%2Cpush"
        );
    }
}
