//! `berth pull`: `POST /images/create?fromImage=`, the daemon's progress
//! shown as docker shows it, with the credentials `berth login` (or
//! `docker login`) stored for the registry.

use anyhow::{bail, Result};
use bollard::auth::DockerCredentials;
use bollard::query_parameters::CreateImageOptions;
use bollard::Docker;
use clap::Args;
use futures_util::StreamExt;

use super::progress::View;

#[derive(Debug, Args)]
pub struct PullArgs {
    /// Download all tagged images in the repository
    #[arg(short, long)]
    pub all_tags: bool,
    /// Set platform if server is multi-platform capable (os/arch[/variant])
    #[arg(long)]
    pub platform: Option<String>,
    /// Suppress verbose output
    #[arg(short, long)]
    pub quiet: bool,
    /// NAME[:TAG|@DIGEST]
    pub name: String,
}

/// The credentials stored for the registry of `name`, as the docker CLI
/// sends them (`X-Registry-Auth`).
pub fn credentials(name: &str) -> Option<DockerCredentials> {
    let reference: berth_image::Reference = name.parse().ok()?;
    let c = berth_registry::DockerConfig::load().credentials(reference.domain())?;
    Some(DockerCredentials {
        username: Some(c.username).filter(|u| !u.is_empty()),
        password: Some(c.password).filter(|p| !p.is_empty()),
        identitytoken: c.identity_token,
        serveraddress: Some(reference.domain().to_owned()),
        ..DockerCredentials::default()
    })
}

/// `fromImage` and `tag` for a name: the docker CLI sends a digest as
/// the tag, and `latest` when there is neither.
fn image_and_tag(name: &str) -> (String, String) {
    match name.split_once('@') {
        Some((image, digest)) => (image.to_owned(), digest.to_owned()),
        None => {
            let (image, tag) = super::images::split_tag(name);
            (image, tag.unwrap_or_else(|| "latest".to_owned()))
        }
    }
}

/// `berth pull`.
pub async fn pull(d: &Docker, a: &PullArgs) -> Result<i32> {
    if a.all_tags
        && (a.name.contains('@') || a.name.rsplit('/').next().is_some_and(|l| l.contains(':')))
    {
        bail!("tag can't be used with --all-tags/-a");
    }
    let (image, tag) = if a.all_tags {
        (a.name.clone(), String::new())
    } else {
        image_and_tag(&a.name)
    };
    let opts = CreateImageOptions {
        from_image: Some(image),
        tag: Some(tag).filter(|t| !t.is_empty()),
        platform: a.platform.clone().unwrap_or_default(),
        ..CreateImageOptions::default()
    };
    let mut view = View::default();
    let mut stream = d.create_image(Some(opts), None, credentials(&a.name));
    while let Some(msg) = stream.next().await {
        let msg = msg?;
        if let Some(e) = msg.error_detail.and_then(|e| e.message) {
            bail!("{e}");
        }
        if a.quiet {
            continue;
        }
        let progress = msg
            .progress_detail
            .and_then(|p| Some((p.current?, p.total?)));
        if let Some(status) = msg.status.as_deref() {
            view.show(msg.id.as_deref(), status, progress);
        }
    }
    let full = if a.name.contains('@')
        || a.all_tags
        || a.name.rsplit('/').next().is_some_and(|l| l.contains(':'))
    {
        a.name.clone()
    } else {
        format!("{}:latest", a.name)
    };
    let familiar = full
        .parse::<berth_image::Reference>()
        .map_or(full.clone(), |r| r.to_string());
    println!("{familiar}");
    Ok(0)
}

/// The pull `run` and `create` make for an image that is not here: its
/// progress on stderr, as docker's.
pub async fn pull_quietly(d: &Docker, name: &str) -> Result<()> {
    let (image, tag) = image_and_tag(name);
    let opts = CreateImageOptions {
        from_image: Some(image),
        tag: Some(tag),
        ..CreateImageOptions::default()
    };
    let mut stream = d.create_image(Some(opts), None, credentials(name));
    while let Some(msg) = stream.next().await {
        let msg = msg?;
        if let Some(e) = msg.error_detail.and_then(|e| e.message) {
            bail!(super::DaemonError(e));
        }
        match (msg.id.as_deref(), msg.status.as_deref()) {
            (Some(id), Some(status)) if !status.starts_with("Downloading") => {
                eprintln!("{id}: {status}")
            }
            (None, Some(status)) => eprintln!("{status}"),
            _ => {}
        }
    }
    Ok(())
}
