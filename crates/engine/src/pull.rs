//! `POST /images/create?fromImage=` (`docker pull`): a pull through the
//! registry client, reported as Docker's JSON progress stream. What fails
//! before the first layer (an unknown image, a refused login) fails the
//! request itself, with Docker's status; later failures end the stream
//! with an `errorDetail`.

use std::sync::Arc;

use berth_image::manifest::Platform;
use berth_image::Reference;
use berth_registry::{
    ClientOptions, DockerConfig, Event, Progress, PullOptions, Registry, RegistryError,
};
use berth_store::Store;
use serde_json::json;

use crate::error::{EngineError, ErrorKind, Result};
use crate::events::Events;
use crate::progress::Lines;

/// What `POST /images/create?fromImage=` asks for.
#[derive(Debug, Clone, Default)]
pub struct PullRequest {
    /// `fromImage`, with `tag` applied when given.
    pub image: String,
    pub tag: String,
    /// `os/arch[/variant]`.
    pub platform: String,
    /// The `X-Registry-Auth` header, as the client sent it.
    pub registry_auth: String,
}

/// A pull under way (Docker's progress stream).
pub type PullStream = crate::progress::ProgressStream;

/// Docker's status for a registry failure.
pub fn registry_error(e: RegistryError) -> EngineError {
    let kind = match &e {
        RegistryError::NotFound(_) => ErrorKind::NotFound,
        RegistryError::Unauthorized { .. } => ErrorKind::Unauthorized,
        RegistryError::Image(_) | RegistryError::Invalid(_) => ErrorKind::InvalidArgument,
        _ => ErrorKind::Internal,
    };
    let message = match &e {
        RegistryError::Unauthorized { message } => format!("unauthorized: {message}"),
        other => other.to_string(),
    };
    EngineError::new(kind, message)
}

impl Progress for Lines {
    fn event(&self, e: Event) {
        match e {
            Event::Resolved { repository, tag } => {
                self.send(json!({ "status": format!("Pulling from {repository}"), "id": tag }));
            }
            Event::AlreadyExists { id } => self.status(&id, "Already exists"),
            Event::Waiting { id } => self.status(&id, "Pulling fs layer"),
            Event::Downloading { id, current, total } => {
                self.bytes(&id, "Downloading", current, total);
            }
            Event::DownloadComplete { id } => self.status(&id, "Download complete"),
            Event::Extracting { id } => self.status(&id, "Extracting"),
            Event::PullComplete { id } => self.status(&id, "Pull complete"),
            Event::Digest(d) => self.send(json!({ "status": format!("Digest: {d}") })),
        }
    }
}

/// One reference, with Docker's closing status line.
fn pull_one(
    registry: &Registry,
    store: &Store,
    events: &Events,
    reference: &Reference,
    opts: &PullOptions,
    lines: &Lines,
) -> Result<()> {
    let before = store.resolve(&reference.to_string()).ok();
    let p =
        berth_registry::pull(registry, store, reference, opts, lines).map_err(registry_error)?;
    let familiar = reference.familiar();
    let status = if before.as_ref() == Some(&p.id) {
        format!("Status: Image is up to date for {familiar}")
    } else {
        format!("Status: Downloaded newer image for {familiar}")
    };
    lines.send(json!({ "status": status }));
    events.publish("image", "pull", &familiar, Default::default());
    Ok(())
}

/// Starts a pull; returns once it has begun streaming (or failed before).
pub fn start(
    store: Arc<Store>,
    events: Arc<Events>,
    registry_opts: &ClientOptions,
    req: &PullRequest,
) -> Result<PullStream> {
    // The docker CLI sends a digest as the `tag` too.
    let name = match req.tag.as_str() {
        "" => req.image.clone(),
        t if t.contains(':') => format!("{}@{t}", req.image),
        t => format!("{}:{t}", req.image),
    };
    let reference: Reference = name
        .parse()
        .map_err(|e| EngineError::invalid(format!("invalid reference format: {e}")))?;
    let platform = match req.platform.as_str() {
        "" => Platform::host(),
        p => Platform::parse(p).ok_or_else(|| {
            EngineError::invalid(format!("invalid platform {p:?}: want os/arch[/variant]"))
        })?,
    };
    // The client's credentials, else the daemon's own docker config.
    let creds = berth_registry::auth::from_registry_auth(&req.registry_auth)
        .or_else(|| DockerConfig::load().credentials(reference.domain()));
    let registry = Registry::new(&reference, creds, registry_opts);
    // No tag and no digest: every tag of the repository, as dockerd does.
    let all_tags = reference.tag().is_none() && reference.digest().is_none();
    let opts = PullOptions {
        platform,
        parallel: registry_opts.concurrent_downloads,
        attempts: registry_opts.download_attempts,
    };
    Lines::spawn(move |lines| {
        if !all_tags {
            return pull_one(&registry, &store, &events, &reference, &opts, lines);
        }
        let tags = registry.tags(reference.path()).map_err(registry_error)?;
        for t in tags {
            let one = reference
                .with_tag(&t)
                .map_err(|e| EngineError::invalid(e.to_string()))?;
            pull_one(&registry, &store, &events, &one, &opts, lines)?;
        }
        Ok(())
    })
}
