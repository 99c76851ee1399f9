//! Pushing an image from the store: each layer blob the registry lacks is
//! mounted from another repository of that registry known to hold it, or
//! uploaded (several at a time, verified against its digest as it is
//! read); then the config, then the manifest under the tag — Docker's
//! schema 2 by default, OCI when asked (or when a layer is zstd, which
//! schema 2 cannot name).

use std::sync::Mutex;

use berth_image::archive::LayerBlob;
use berth_image::manifest::{Descriptor, Manifest};
use berth_image::media::{self, Compression};
use berth_image::{Digest, Reference};
use berth_store::outgoing::Outgoing;
use berth_store::Store;

use crate::client::Registry;
use crate::error::{RegistryError, Result};
use crate::send::{OutBlob, Sender};
use crate::upload::Started;

/// What a push reports as it goes (Docker's progress messages).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushEvent {
    /// A layer (its short diff ID) about to be looked at.
    Preparing { id: String },
    /// A layer waiting for an upload slot.
    Waiting { id: String },
    /// Bytes of a layer sent so far.
    Pushing {
        id: String,
        current: u64,
        total: u64,
    },
    /// A layer uploaded.
    Pushed { id: String },
    /// A layer the repository already had.
    Exists { id: String },
    /// A layer mounted from another repository of the registry.
    Mounted { id: String, from: String },
}

/// Where a push's progress goes (called from several threads).
pub trait PushProgress: Sync {
    fn event(&self, e: PushEvent);
}

/// How to push.
#[derive(Debug, Clone)]
pub struct PushOptions {
    /// Layers uploaded at the same time.
    pub parallel: usize,
    /// An OCI manifest instead of Docker's schema 2.
    pub oci: bool,
    /// Tries per layer upload (each resumes where the last broke off).
    pub attempts: usize,
}

impl Default for PushOptions {
    fn default() -> Self {
        Self {
            parallel: 5,
            oci: false,
            attempts: 5,
        }
    }
}

/// What a push left in the registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pushed {
    /// The manifest's digest (`repo@digest` names the image there).
    pub digest: Digest,
    /// The manifest's size in bytes.
    pub size: u64,
}

/// Pushes `image` to `reference`'s repository under its tag.
pub fn push(
    registry: &Registry,
    store: &Store,
    image: &Outgoing,
    reference: &Reference,
    opts: &PushOptions,
    progress: &dyn PushProgress,
) -> Result<Pushed> {
    let repo = reference.path();
    let tag = reference
        .tag()
        .unwrap_or(berth_image::reference::DEFAULT_TAG);
    // Docker shows a layer being pushed by its diff ID's short form.
    let ids: Vec<String> = image
        .diff_ids
        .iter()
        .map(|d| d.short().to_owned())
        .collect();
    for id in &ids {
        progress.event(PushEvent::Preparing { id: id.clone() });
    }
    registry.prepare(&crate::client::push_scope(repo))?;
    let blobs = push_layers(registry, store, repo, image, ids, opts, progress)?;
    push_config(registry, repo, image)?;
    let oci = opts.oci || blobs.iter().any(|b| b.compression == Compression::Zstd);
    let manifest = manifest_bytes(image, &blobs, oci)?;
    let media_type = if oci {
        media::OCI_MANIFEST
    } else {
        media::DOCKER_MANIFEST
    };
    let digest = registry.put_manifest(repo, tag, media_type, &manifest)?;
    let name = reference
        .without_tag_or_digest()
        .with_digest(digest.clone());
    store.record_repo_digest(&name.to_string(), &image.config)?;
    Ok(Pushed {
        digest,
        size: manifest.len() as u64,
    })
}

/// Uploads (or mounts) the layers, `parallel` at a time, bottom first.
/// Returns what went out, in order.
fn push_layers(
    registry: &Registry,
    store: &Store,
    repo: &str,
    image: &Outgoing,
    ids: Vec<String>,
    opts: &PushOptions,
    progress: &dyn PushProgress,
) -> Result<Vec<OutBlob>> {
    let mut queue: Vec<(usize, &LayerBlob, String)> = image
        .layers
        .iter()
        .zip(ids)
        .enumerate()
        .map(|(i, (l, id))| (i, l, id))
        .collect();
    for (_, _, id) in &queue {
        progress.event(PushEvent::Waiting { id: id.clone() });
    }
    queue.reverse(); // popped bottom layer first
    let queue = Mutex::new(queue);
    let done: Mutex<Vec<Option<OutBlob>>> = Mutex::new(image.layers.iter().map(|_| None).collect());
    let first_error: Mutex<Option<RegistryError>> = Mutex::new(None);
    let sender = Sender {
        registry,
        store,
        repo,
        attempts: opts.attempts,
        progress,
    };
    std::thread::scope(|s| {
        for _ in 0..opts.parallel.max(1) {
            s.spawn(|| loop {
                let failed = crate::lock(&first_error).is_some();
                let next = crate::lock(&queue).pop();
                let Some((i, layer, id)) = next.filter(|_| !failed) else {
                    break;
                };
                match sender.send(layer, &id) {
                    Ok(b) => crate::lock(&done)[i] = Some(b),
                    Err(e) => {
                        crate::lock(&first_error).get_or_insert(e);
                    }
                }
            });
        }
    });
    if let Some(e) = first_error
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
    {
        return Err(e);
    }
    Ok(done
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .into_iter()
        .flatten()
        .collect())
}

fn push_config(registry: &Registry, repo: &str, image: &Outgoing) -> Result<()> {
    if registry.has_blob(repo, &image.config)? {
        return Ok(());
    }
    match registry.start_upload(repo, None)? {
        Started::Upload(location) => {
            registry.upload_whole(repo, &location, &image.config, &image.config_bytes)
        }
        Started::Mounted => Ok(()),
    }
}

/// The manifest, serialized as Docker's (three-space indents), so the
/// same image pushed by either gets the same digest.
fn manifest_bytes(image: &Outgoing, blobs: &[OutBlob], oci: bool) -> Result<Vec<u8>> {
    let layer_type = |b: &OutBlob| -> String {
        match (b.compression, oci) {
            _ if b.stored_type == media::OCI_LAYER_NONDIST_GZIP
                || b.stored_type == media::DOCKER_FOREIGN_LAYER =>
            {
                b.stored_type.clone()
            }
            (Compression::Zstd, _) => media::OCI_LAYER_ZSTD.to_owned(),
            (_, true) => media::OCI_LAYER_GZIP.to_owned(),
            (_, false) => media::DOCKER_LAYER_GZIP.to_owned(),
        }
    };
    let descriptor = |media_type: String, digest: &Digest, size: u64| Descriptor {
        media_type,
        digest: digest.clone(),
        size,
        urls: Vec::new(),
        annotations: Default::default(),
        platform: None,
    };
    let config_type = if oci {
        media::OCI_CONFIG
    } else {
        media::DOCKER_CONFIG
    };
    let m = Manifest {
        schema_version: 2,
        media_type: Some(
            if oci {
                media::OCI_MANIFEST
            } else {
                media::DOCKER_MANIFEST
            }
            .to_owned(),
        ),
        config: descriptor(
            config_type.to_owned(),
            &image.config,
            image.config_bytes.len() as u64,
        ),
        layers: blobs
            .iter()
            .map(|b| descriptor(layer_type(b), &b.digest, b.size))
            .collect(),
        annotations: Default::default(),
    };
    let mut out = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"   ");
    let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
    serde::Serialize::serialize(&m, &mut ser)
        .map_err(|e| RegistryError::Invalid(format!("serializing the manifest: {e}")))?;
    Ok(out)
}
