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

/// A name as a request gives it, or Docker's 400.
pub(crate) fn parse_reference(name: &str) -> Result<Reference> {
    name.parse()
        .map_err(|e| EngineError::invalid(format!("invalid reference format: {e}")))
}

/// The credentials for `reference`'s registry: the client's
/// (`X-Registry-Auth`), else the daemon's own docker config.
pub(crate) fn credentials(
    registry_auth: &str,
    reference: &Reference,
) -> Option<berth_registry::Credentials> {
    berth_registry::auth::from_registry_auth(registry_auth)
        .or_else(|| DockerConfig::load().credentials(reference.domain()))
}

/// One reference, with Docker's closing status line: from the first
/// endpoint that gives it (a mirror that fails hands over to the next,
/// and at last to the registry itself, as dockerd does).
fn pull_one(
    endpoints: &[Registry],
    store: &Store,
    events: &Events,
    reference: &Reference,
    opts: &PullOptions,
    lines: &Lines,
) -> Result<()> {
    let before = store.resolve(&reference.to_string()).ok();
    let p = first_that_answers(endpoints, |registry| {
        berth_registry::pull(registry, store, reference, opts, lines)
    })?;
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

/// `op` on each endpoint in turn until one succeeds; the last one's
/// failure is the answer. (What a failed mirror stored is verified, and
/// the next endpoint's pull goes on from it.)
pub(crate) fn first_that_answers<T>(
    endpoints: &[Registry],
    op: impl Fn(&Registry) -> berth_registry::Result<T>,
) -> Result<T> {
    let mut last_error = None;
    for registry in endpoints {
        match op(registry) {
            Ok(v) => return Ok(v),
            Err(e) => {
                tracing::warn!(endpoint = registry.base(), error = %e, "pull failed; trying the next endpoint");
                last_error = Some(e);
            }
        }
    }
    Err(registry_error(last_error.unwrap_or_else(|| {
        RegistryError::Invalid("no endpoint to pull from".to_owned())
    })))
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
    let reference = parse_reference(&name)?;
    let platform = match req.platform.as_str() {
        "" => Platform::host(),
        p => Platform::parse(p).ok_or_else(|| {
            EngineError::invalid(format!("invalid platform {p:?}: want os/arch[/variant]"))
        })?,
    };
    let creds = credentials(&req.registry_auth, &reference);
    let endpoints = Registry::pull_endpoints(&reference, creds, registry_opts);
    // No tag and no digest: every tag of the repository, as dockerd does.
    let all_tags = reference.tag().is_none() && reference.digest().is_none();
    let opts = PullOptions {
        platform,
        parallel: registry_opts.concurrent_downloads,
        attempts: registry_opts.download_attempts,
    };
    Lines::spawn(move |lines| {
        if !all_tags {
            return pull_one(&endpoints, &store, &events, &reference, &opts, lines);
        }
        let tags = first_that_answers(&endpoints, |r| r.tags(reference.path()))?;
        for t in tags {
            let one = reference
                .with_tag(&t)
                .map_err(|e| EngineError::invalid(e.to_string()))?;
            pull_one(&endpoints, &store, &events, &one, &opts, lines)?;
        }
        Ok(())
    })
}
