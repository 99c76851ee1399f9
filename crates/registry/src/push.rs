//! Pushing an image from the store: each layer blob the registry lacks is
//! mounted from another repository of that registry known to hold it, or
//! uploaded (several at a time, verified against its digest as it is
//! read); then the config, then the manifest under the tag — Docker's
//! schema 2 by default, OCI when asked (or when a layer is zstd, which
//! schema 2 cannot name).

use std::io::Write;
use std::sync::Mutex;

use berth_image::archive::LayerBlob;
use berth_image::manifest::{Descriptor, Manifest};
use berth_image::media::{self, Compression};
use berth_image::{Algorithm, Digest, Reference};
use berth_store::blobs::HashingWriter;
use berth_store::outgoing::Outgoing;
use berth_store::Store;

use crate::client::Registry;
use crate::error::{RegistryError, Result};
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

/// A layer as it goes out: a stored blob, or one compressed for the push
/// (a layer stored uncompressed, as `docker load` gives them).
struct OutBlob {
    id: String,
    digest: Digest,
    size: u64,
    compression: Compression,
    /// The stored media type, kept for non-distributable layers.
    stored_type: String,
    temp: Option<tempfile::NamedTempFile>,
}

/// The short ID Docker shows for a layer being pushed: its diff ID's.
fn short(d: &Digest) -> String {
    d.hex()[..12].to_owned()
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
    let ids: Vec<String> = image.diff_ids.iter().map(short).collect();
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

/// What goes out for one stored layer: its blob, or the blob gzipped.
/// Compressions take turns (`compressing`), each on every core: layers
/// are then ready one after another, bottom first, each uploading while
/// the next compresses, instead of all at once at the end.
fn out_blob(
    store: &Store,
    layer: &LayerBlob,
    id: String,
    compressing: &Mutex<()>,
) -> Result<OutBlob> {
    let stored_type = layer
        .media_type
        .clone()
        .unwrap_or_else(|| media::DOCKER_LAYER.to_owned());
    let compression = media::layer_compression(&stored_type).ok_or_else(|| {
        RegistryError::Invalid(format!(
            "layer {} has the unknown media type {stored_type}",
            layer.digest
        ))
    })?;
    if compression != Compression::None {
        return Ok(OutBlob {
            id,
            digest: layer.digest.clone(),
            size: layer.size,
            compression,
            stored_type,
            temp: None,
        });
    }
    // Compressed once into a temp file: its digest must be known before
    // the registry can be asked whether it has it.
    let _turn = lock(compressing);
    let temp = store.blobs().temp()?;
    let file = temp
        .as_file()
        .try_clone()
        .map_err(|e| RegistryError::Transport {
            what: "compressing a layer".to_owned(),
            reason: e.to_string(),
        })?;
    let io = |e: std::io::Error| {
        RegistryError::Invalid(format!("compressing layer {}: {e}", layer.digest))
    };
    let mut out = HashingWriter::new(std::io::BufWriter::new(file), Algorithm::Sha256);
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    crate::gzip::compress(
        &mut store.read_blob(&layer.digest, layer.size)?,
        &mut out,
        flate2::Compression::default(),
        threads,
    )
    .map_err(io)?;
    let (digest, size, mut out) = out.into_parts();
    out.flush().map_err(io)?;
    Ok(OutBlob {
        id,
        digest,
        size,
        compression: Compression::Gzip,
        stored_type,
        temp: Some(temp),
    })
}

/// Uploads (or mounts) the layers, `parallel` at a time, bottom first;
/// a layer stored uncompressed is gzipped by the worker that uploads it,
/// while the others upload theirs. Returns what went out, in order.
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
    let compressing = Mutex::new(());
    std::thread::scope(|s| {
        for _ in 0..opts.parallel.max(1) {
            s.spawn(|| loop {
                let failed = lock(&first_error).is_some();
                let next = lock(&queue).pop();
                let Some((i, layer, id)) = next.filter(|_| !failed) else {
                    break;
                };
                let pushed = out_blob(store, layer, id, &compressing).and_then(|b| {
                    push_layer(registry, store, repo, &b, opts.attempts, progress).map(|()| b)
                });
                match pushed {
                    Ok(b) => lock(&done)[i] = Some(b),
                    Err(e) => {
                        lock(&first_error).get_or_insert(e);
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

/// A lock a panicked holder left is still good: what it guards is
/// written whole or not at all.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// One layer: present already, mounted, or uploaded.
fn push_layer(
    registry: &Registry,
    store: &Store,
    repo: &str,
    blob: &OutBlob,
    attempts: usize,
    progress: &dyn PushProgress,
) -> Result<()> {
    let id = blob.id.clone();
    if registry.has_blob(repo, &blob.digest)? {
        progress.event(PushEvent::Exists { id });
        return Ok(());
    }
    let mut location = None;
    let sources = store.repos_with_blob(&registry.name, &blob.digest)?;
    for from in sources.iter().filter(|r| *r != repo).take(3) {
        match registry.start_upload(repo, Some((&blob.digest, from))) {
            Ok(Started::Mounted) => {
                progress.event(PushEvent::Mounted {
                    id,
                    from: from.clone(),
                });
                return Ok(());
            }
            Ok(Started::Upload(l)) => {
                location = Some(l);
                break;
            }
            Err(e) => tracing::debug!(%from, error = %e, "mounting a blob failed; uploading it"),
        }
    }
    let location = match location {
        Some(l) => l,
        None => match registry.start_upload(repo, None)? {
            Started::Upload(l) => l,
            Started::Mounted => return Ok(()),
        },
    };
    let stored;
    let file = match &blob.temp {
        Some(t) => t.as_file(),
        // The registry checks the digest of what it got (`PUT`).
        None => {
            stored = store.blobs().open_blob(&blob.digest)?;
            &stored
        }
    };
    let report = |current| {
        progress.event(PushEvent::Pushing {
            id: id.clone(),
            current,
            total: blob.size,
        })
    };
    registry.upload_file(
        repo,
        &location,
        &blob.digest,
        file,
        blob.size,
        attempts,
        &report,
    )?;
    progress.event(PushEvent::Pushed { id });
    Ok(())
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
