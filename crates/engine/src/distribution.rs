//! The registry endpoints that are neither pull nor push: `POST /auth`
//! (`docker login` asks the daemon whether credentials open a registry)
//! and `GET /distribution/{name}/json` (what a name points to there).

use berth_registry::login::registry_name;
use berth_registry::{ClientOptions, Credentials, Registry};
use serde_json::{json, Value};

use crate::error::Result;
use crate::pull::registry_error;

/// The body of `POST /auth`.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct AuthRequest {
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub password: String,
    #[serde(default, rename = "serveraddress")]
    pub server_address: String,
    #[serde(default, rename = "identitytoken")]
    pub identity_token: String,
}

/// Checks the credentials against their registry (Docker Hub when the
/// request names none); the identity token (an OAuth2 refresh token) its
/// token server gave for them, for the client to keep instead.
pub fn login(opts: &ClientOptions, req: &AuthRequest) -> Result<Option<String>> {
    let name = registry_name(&req.server_address);
    let creds = Credentials {
        username: req.username.clone(),
        password: req.password.clone(),
        identity_token: Some(req.identity_token.clone()).filter(|t| !t.is_empty()),
    };
    Registry::named(&name, Some(creds), opts)
        .check_login()
        .map_err(registry_error)
}

/// `GET /distribution/{name}/json`: the descriptor of what `name` names
/// in its registry and the platforms it has images for.
pub fn inspect(opts: &ClientOptions, name: &str, registry_auth: &str) -> Result<Value> {
    let reference = crate::pull::parse_reference(name)?;
    let creds = crate::pull::credentials(registry_auth, &reference);
    let endpoints = Registry::pull_endpoints(&reference, creds, opts);
    let d = crate::pull::first_that_answers(&endpoints, |r| {
        berth_registry::inspect::inspect(r, &reference)
    })?;
    Ok(json!({
        "Descriptor": {
            "mediaType": d.descriptor.media_type,
            "digest": d.descriptor.digest.to_string(),
            "size": d.descriptor.size,
        },
        "Platforms": d.platforms,
    }))
}
