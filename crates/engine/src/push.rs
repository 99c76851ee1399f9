//! `POST /images/{name}/push` (`docker push`): the image's tags pushed
//! through the registry client, reported as Docker's JSON progress
//! stream; no tag pushes every local tag of the repository.

use std::sync::Arc;

use berth_image::Reference;
use berth_registry::{ClientOptions, PushEvent, PushOptions, PushProgress, Registry};
use berth_store::Store;
use serde_json::json;

use crate::error::{EngineError, ErrorKind, Result};
use crate::events::Events;
use crate::progress::{Lines, ProgressStream};
use crate::pull::registry_error;

/// What `POST /images/{name}/push` asks for.
#[derive(Debug, Clone, Default)]
pub struct PushRequest {
    /// The repository (`127.0.0.1:5000/team/app`).
    pub name: String,
    /// The tag; empty for every local tag of the repository.
    pub tag: String,
    /// The `X-Registry-Auth` header, as the client sent it.
    pub registry_auth: String,
    /// An OCI manifest instead of Docker's schema 2 (berth's `oci=1`).
    pub oci: bool,
}

impl PushProgress for Lines {
    fn event(&self, e: PushEvent) {
        match e {
            PushEvent::Preparing { id } => self.status(&id, "Preparing"),
            PushEvent::Waiting { id } => self.status(&id, "Waiting"),
            PushEvent::Pushing { id, current, total } => self.bytes(&id, "Pushing", current, total),
            PushEvent::Pushed { id } => self.status(&id, "Pushed"),
            PushEvent::Exists { id } => self.status(&id, "Layer already exists"),
            PushEvent::Mounted { id, from } => self.status(&id, &format!("Mounted from {from}")),
        }
    }
}

/// Docker's words for an image that is not here; any other store failure
/// as it is.
fn missing_or(e: berth_store::StoreError, r: &Reference) -> EngineError {
    if e.is_not_found() {
        not_local(&r.familiar())
    } else {
        e.into()
    }
}

fn not_local(name: &str) -> EngineError {
    EngineError::new(
        ErrorKind::NotFound,
        format!("An image does not exist locally with the tag: {name}"),
    )
}

/// Starts a push; returns once it has begun streaming (or failed before).
pub fn start(
    store: Arc<Store>,
    events: Arc<Events>,
    registry_opts: &ClientOptions,
    req: &PushRequest,
) -> Result<ProgressStream> {
    let repo = crate::pull::parse_reference(&req.name)?.without_tag_or_digest();
    let tags = if req.tag.is_empty() {
        store.tags_of(&repo.to_string())?
    } else {
        vec![req.tag.clone()]
    };
    let mut targets = Vec::with_capacity(tags.len());
    for t in &tags {
        let r = repo
            .with_tag(t)
            .map_err(|e| EngineError::invalid(e.to_string()))?;
        store
            .resolve(&r.to_string())
            .map_err(|e| missing_or(e, &r))?;
        targets.push(r);
    }
    if targets.is_empty() {
        return Err(not_local(&repo.familiar()));
    }
    let creds = crate::pull::credentials(&req.registry_auth, &repo);
    let registry = Registry::new(&repo, creds, registry_opts);
    let opts = PushOptions {
        parallel: registry_opts.concurrent_uploads,
        oci: req.oci,
        // The budget a download has (dockerd has no flag for uploads).
        attempts: registry_opts.download_attempts,
    };
    Lines::spawn(move |lines| {
        lines.send(json!({
            "status": format!("The push refers to repository [{repo}]")
        }));
        for target in &targets {
            push_one(&registry, &store, &events, target, &opts, lines)?;
        }
        Ok(())
    })
}

/// One tag, with Docker's closing digest line and `aux` record.
fn push_one(
    registry: &Registry,
    store: &Store,
    events: &Events,
    target: &Reference,
    opts: &PushOptions,
    lines: &Lines,
) -> Result<()> {
    let image = store
        .hold_for_push(&target.to_string())
        .map_err(|e| missing_or(e, target))?;
    let pushed = berth_registry::push(registry, store, &image, target, opts, lines);
    store.release(&image.holder)?;
    let pushed = pushed.map_err(registry_error)?;
    let tag = target.tag().unwrap_or_default();
    lines.send(json!({
        "status": format!("{tag}: digest: {} size: {}", pushed.digest, pushed.size)
    }));
    lines.send(json!({
        "progressDetail": {},
        "aux": { "Tag": tag, "Digest": pushed.digest.to_string(), "Size": pushed.size },
    }));
    events.publish("image", "push", &target.familiar(), Default::default());
    Ok(())
}
