//! `berth push`: `POST /images/{name}/push`, the daemon's progress shown
//! as docker shows it, with the credentials `berth login` (or `docker
//! login`) stored for the registry.

use std::path::Path;

use anyhow::{bail, Result};
use base64::Engine;
use clap::Args;

use super::progress::View;

#[derive(Debug, Args)]
pub struct PushArgs {
    /// Push all tags of the repository
    #[arg(short, long)]
    pub all_tags: bool,
    /// Suppress verbose output
    #[arg(short, long)]
    pub quiet: bool,
    /// Push an OCI image manifest instead of Docker's schema 2
    #[arg(long)]
    pub oci: bool,
    /// NAME[:TAG]
    pub name: String,
}

/// `X-Registry-Auth` for the registry of `name`: the stored credentials,
/// or none (`{}`), base64url as docker sends them.
fn registry_auth(name: &str) -> String {
    let body = match super::pull::credentials(name) {
        Some(c) => serde_json::json!({
            "username": c.username.unwrap_or_default(),
            "password": c.password.unwrap_or_default(),
            "identitytoken": c.identitytoken.unwrap_or_default(),
            "serveraddress": c.serveraddress.unwrap_or_default(),
        }),
        None => serde_json::json!({}),
    };
    base64::engine::general_purpose::URL_SAFE.encode(body.to_string())
}

/// Percent-encodes a query value.
fn encode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// `berth push`.
pub async fn push(socket: &Path, a: &PushArgs) -> Result<i32> {
    let (repo, tag) = super::images::split_tag(&a.name);
    if a.all_tags && tag.is_some() {
        bail!("tag can't be used with --all-tags/-a");
    }
    let tag = if a.all_tags {
        String::new()
    } else {
        tag.unwrap_or_else(|| "latest".to_owned())
    };
    let mut path = format!("/images/{repo}/push?tag={}", encode(&tag));
    if a.oci {
        path.push_str("&oci=1");
    }
    let headers = [("X-Registry-Auth", registry_auth(&a.name))];
    let mut view = View::default();
    let mut last_digest = None;
    super::connect::post_json_lines(socket, &path, &headers, |msg| {
        if let Some(e) = msg["errorDetail"]["message"]
            .as_str()
            .or(msg["error"].as_str())
        {
            bail!("{e}");
        }
        if let Some(d) = msg["aux"]["Digest"].as_str() {
            last_digest = Some(d.to_owned());
        }
        if a.quiet {
            return Ok(());
        }
        let progress = msg["progressDetail"]["current"]
            .as_i64()
            .zip(msg["progressDetail"]["total"].as_i64());
        if let Some(status) = msg["status"].as_str() {
            view.show(msg["id"].as_str(), status, progress);
        }
        Ok(())
    })
    .await?;
    drop(view);
    if a.quiet {
        println!("{}", a.name);
    } else if last_digest.is_none() {
        bail!("the daemon's push stream ended without a digest");
    }
    Ok(0)
}
