//! Pulling an image into the store: the manifest (through an index, for
//! the wanted platform), the config, then the layers not already stored,
//! several at a time, each digest-verified while it streams into a
//! resumable ingest (an interrupted pull goes on where it stopped); then
//! the store records the image as a load does.

use std::sync::{Mutex, PoisonError};

use berth_image::archive::{ArchiveImage, LayerBlob};
use berth_image::chain::chain_ids;
use berth_image::config::ImageConfig;
use berth_image::manifest::{Descriptor, Document, Manifest, Platform};
use berth_image::{media, Digest, Reference};
use berth_store::Store;

use crate::client::Registry;
use crate::error::{RegistryError, Result};

/// What a pull reports as it goes (Docker's progress messages).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// "Pulling from library/busybox".
    Resolved { repository: String, tag: String },
    /// A layer (its short ID) the store already has.
    AlreadyExists { id: String },
    /// A layer waiting for a download slot.
    Waiting { id: String },
    /// Bytes of a layer so far.
    Downloading {
        id: String,
        current: u64,
        total: u64,
    },
    /// A layer downloaded and verified.
    DownloadComplete { id: String },
    /// A layer being unpacked.
    Extracting { id: String },
    /// A layer unpacked into the store.
    PullComplete { id: String },
    /// The manifest's digest.
    Digest(Digest),
}

/// Where a pull's progress goes (called from several threads).
pub trait Progress: Sync {
    fn event(&self, e: Event);
}

/// How to pull.
#[derive(Debug, Clone)]
pub struct PullOptions {
    /// Whose manifest an index gives (this machine's by default).
    pub platform: Platform,
    /// Layers downloaded at the same time.
    pub parallel: usize,
    /// Tries per blob (each resumes where the last stopped).
    pub attempts: usize,
}

impl Default for PullOptions {
    fn default() -> Self {
        Self {
            platform: Platform::host(),
            parallel: 3,
            attempts: 5,
        }
    }
}

/// What a pull stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pulled {
    pub id: Digest,
    /// The manifest's digest (`name@sha256:…` pulls it again exactly).
    pub manifest: Digest,
    /// The tag now pointing at it (none for a pull by digest).
    pub tag: Option<String>,
}

/// Pulls `reference` (its tag, or `latest`, or its digest).
pub fn pull(
    registry: &Registry,
    store: &Store,
    reference: &Reference,
    opts: &PullOptions,
    progress: &dyn Progress,
) -> Result<Pulled> {
    let repo = reference.path().to_owned();
    let wanted = match (reference.digest(), reference.tag()) {
        (Some(d), _) => d.to_string(),
        (None, Some(t)) => t.to_owned(),
        (None, None) => berth_image::reference::DEFAULT_TAG.to_owned(),
    };
    let (manifest, digest) = resolve(registry, &repo, &wanted, &opts.platform)?;
    progress.event(Event::Resolved {
        repository: repo.clone(),
        tag: wanted.clone(),
    });
    let config = fetch_config(registry, store, &repo, &manifest.config)?;
    if config.rootfs.diff_ids.len() != manifest.layers.len() {
        return Err(RegistryError::Invalid(format!(
            "{repo}@{digest}: the config lists {} layers, the manifest {}",
            config.rootfs.diff_ids.len(),
            manifest.layers.len()
        )));
    }
    // Layers unpacked as they came; removed again if the pull fails.
    let unpacked = Mutex::new(Vec::new());
    let result = fetch_layers(
        registry, store, &repo, &manifest, &config, opts, progress, &unpacked,
    )
    .and_then(|()| record(store, reference, &manifest, &digest));
    if result.is_err() {
        store.discard_unrecorded(
            &unpacked
                .into_inner()
                .unwrap_or_else(PoisonError::into_inner),
        );
    }
    let id = result?;
    progress.event(Event::Digest(digest.clone()));
    Ok(Pulled {
        id,
        manifest: digest,
        tag: tag_of(reference),
    })
}

/// The tag a pull moves: none for a pull by digest.
fn tag_of(reference: &Reference) -> Option<String> {
    match reference.digest() {
        Some(_) => None,
        None => Some(reference.clone().with_default_tag().to_string()),
    }
}

/// Records the pulled image (its layers are in the store already).
fn record(
    store: &Store,
    reference: &Reference,
    manifest: &Manifest,
    digest: &Digest,
) -> Result<Digest> {
    let tag = tag_of(reference);
    let image = ArchiveImage {
        config: manifest.config.digest.clone(),
        layers: manifest
            .layers
            .iter()
            .map(|l| LayerBlob {
                digest: l.digest.clone(),
                size: l.size,
                media_type: Some(l.media_type.clone()),
            })
            .collect(),
        tags: tag.iter().cloned().collect(),
    };
    let repo_digest = reference
        .without_tag_or_digest()
        .with_digest(digest.clone())
        .to_string();
    Ok(store.record_pulled(&image, Some(&repo_digest))?.id)
}

/// The image manifest `wanted` names: through an index to the platform's.
fn resolve(
    registry: &Registry,
    repo: &str,
    wanted: &str,
    platform: &Platform,
) -> Result<(Manifest, Digest)> {
    let (bytes, media_type, digest) = registry.manifest(repo, wanted)?;
    let what = format!("{repo}@{digest}");
    match Document::parse(&bytes, media_type.as_deref(), &what)? {
        Document::Manifest(m) => {
            m.check_media_types(&what)?;
            Ok((*m, digest))
        }
        Document::Index(index) => {
            let pick =
                berth_image::platform::select(&index.manifests, platform).ok_or_else(|| {
                    RegistryError::NotFound(format!(
                    "no matching manifest for {} in the manifest list entries of {repo}:{wanted}",
                    platform.to_text()
                ))
                })?;
            let (bytes, media_type, inner) = registry.manifest(repo, &pick.digest.to_string())?;
            let what = format!("{repo}@{inner}");
            let declared = media_type.or_else(|| Some(pick.media_type.clone()));
            match Document::parse(&bytes, declared.as_deref(), &what)? {
                Document::Manifest(m) => {
                    m.check_media_types(&what)?;
                    // The digest that names this image is the index's:
                    // a pull by it is immutable.
                    Ok((*m, digest))
                }
                Document::Index(_) => Err(RegistryError::Invalid(format!(
                    "{what}: an index inside an index is not supported"
                ))),
            }
        }
    }
}

/// Stores one blob (verified by digest and size as it streams). A broken
/// or stalled transfer is tried again from where it stopped, up to
/// `attempts` times; a partial download left by an earlier pull resumes.
fn fetch_blob(
    registry: &Registry,
    store: &Store,
    repo: &str,
    d: &Descriptor,
    attempts: usize,
    on_bytes: &dyn Fn(u64),
) -> Result<()> {
    let mut tries = 1;
    loop {
        match fetch_blob_once(registry, store, repo, d, on_bytes) {
            Err(RegistryError::Transport { what, reason }) if tries < attempts => {
                tracing::info!(%what, %reason, attempt = tries, "download broke off; resuming");
                tries += 1;
            }
            Err(RegistryError::Transport { what, reason }) if tries > 1 => {
                return Err(RegistryError::Transport {
                    what,
                    reason: format!("{reason} (after {tries} attempts)"),
                });
            }
            other => return other,
        }
    }
}

fn fetch_blob_once(
    registry: &Registry,
    store: &Store,
    repo: &str,
    d: &Descriptor,
    on_bytes: &dyn Fn(u64),
) -> Result<()> {
    if store.blobs().contains(&d.digest) {
        return Ok(());
    }
    let Some(mut ingest) = store.blobs().ingest(&d.digest)? else {
        return Ok(()); // stored, perhaps by another pull while this one waited
    };
    let (mut body, start) = registry.blob(repo, &d.digest, ingest.offset())?;
    if start == 0 && ingest.offset() > 0 {
        // The registry sent the whole blob, not the rest: start over.
        ingest.reset()?;
    }
    let mut buf = vec![0u8; 256 << 10];
    loop {
        let n = body.read(&mut buf).map_err(|e| RegistryError::Transport {
            what: format!("downloading {} of {repo} from {}", d.digest, registry.name),
            reason: format!("{e} (pull again to resume)"),
        })?;
        if n == 0 {
            break;
        }
        if ingest.offset() + n as u64 > d.size {
            ingest.discard()?;
            return Err(RegistryError::Invalid(format!(
                "blob {} of {repo} is larger than its manifest says ({} bytes)",
                d.digest, d.size
            )));
        }
        ingest.write_all(&buf[..n])?;
        on_bytes(ingest.offset());
    }
    if ingest.offset() < d.size {
        return Err(RegistryError::Transport {
            what: format!("downloading {} of {repo} from {}", d.digest, registry.name),
            reason: format!(
                "the connection closed after {} of {} bytes (pull again to resume)",
                ingest.offset(),
                d.size
            ),
        });
    }
    ingest.commit(Some(d.size))?;
    Ok(())
}

use std::io::Read as _;

fn fetch_config(
    registry: &Registry,
    store: &Store,
    repo: &str,
    d: &Descriptor,
) -> Result<ImageConfig> {
    if d.size > berth_image::archive::MAX_DOCUMENT {
        return Err(RegistryError::Invalid(format!(
            "the config {} of {repo} is {} bytes: too large",
            d.digest, d.size
        )));
    }
    fetch_blob(registry, store, repo, d, 1, &|_| {})?;
    let bytes = store
        .blobs()
        .read(&d.digest, berth_image::archive::MAX_DOCUMENT)?;
    Ok(ImageConfig::parse(&bytes, &format!("config {}", d.digest))?)
}

/// Downloads the layers the store lacks, `opts.parallel` at a time, and
/// unpacks each as it comes; notes in `unpacked` the layers it unpacked.
#[allow(clippy::too_many_arguments)] // one pull's whole context
fn fetch_layers(
    registry: &Registry,
    store: &Store,
    repo: &str,
    manifest: &Manifest,
    config: &ImageConfig,
    opts: &PullOptions,
    progress: &dyn Progress,
    unpacked: &Mutex<Vec<Digest>>,
) -> Result<()> {
    let chains = chain_ids(&config.rootfs.diff_ids);
    let mut queue = Vec::new();
    for ((layer, chain), diff_id) in manifest
        .layers
        .iter()
        .zip(&chains)
        .zip(&config.rootfs.diff_ids)
    {
        if !media::is_layer(&layer.media_type) {
            return Err(RegistryError::Invalid(format!(
                "{repo}: unsupported layer media type {}",
                layer.media_type
            )));
        }
        let id = layer.digest.short().to_owned();
        if store.layers().contains(chain) || store.blobs().contains(&layer.digest) {
            progress.event(Event::AlreadyExists { id });
        } else {
            progress.event(Event::Waiting { id });
            queue.push((layer.clone(), chain.clone(), diff_id.clone()));
        }
    }
    queue.reverse(); // popped bottom layer first
    let queue = Mutex::new(queue);
    let first_error: Mutex<Option<RegistryError>> = Mutex::new(None);
    std::thread::scope(|s| {
        for _ in 0..opts.parallel.max(1) {
            s.spawn(|| loop {
                // After a failure no worker starts another layer.
                let failed = crate::lock(&first_error).is_some();
                let next = crate::lock(&queue).pop();
                let Some((layer, chain, diff_id)) = next.filter(|_| !failed) else {
                    break;
                };
                let fetched = fetch_and_unpack(
                    registry, store, repo, &layer, &chain, &diff_id, opts, progress,
                );
                if let Ok(true) = fetched {
                    crate::lock(unpacked).push(chain.clone());
                }
                if let Err(e) = fetched {
                    crate::lock(&first_error).get_or_insert(e);
                    break;
                }
            });
        }
    });
    match first_error
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
    {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// One layer: downloaded, then unpacked at once (while others download);
/// true when this pull unpacked it.
#[allow(clippy::too_many_arguments)] // one worker's whole context
fn fetch_and_unpack(
    registry: &Registry,
    store: &Store,
    repo: &str,
    layer: &Descriptor,
    chain: &Digest,
    diff_id: &Digest,
    opts: &PullOptions,
    progress: &dyn Progress,
) -> Result<bool> {
    let id = layer.digest.short().to_owned();
    let total = layer.size;
    let report = |current| {
        progress.event(Event::Downloading {
            id: id.clone(),
            current,
            total,
        });
    };
    fetch_blob(registry, store, repo, layer, opts.attempts, &report)?;
    progress.event(Event::DownloadComplete { id: id.clone() });
    progress.event(Event::Extracting { id: id.clone() });
    let created = store.unpack_pulled(chain, diff_id, &layer.digest)?;
    progress.event(Event::PullComplete { id });
    Ok(created)
}
