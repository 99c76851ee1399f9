//! `docker import`: a root filesystem tarball (plain, gzip or zstd) becomes
//! a one-layer image. The layer is stored as a plain tar (its blob digest
//! is its DiffID, one hashing pass; a push compresses it, as it does every
//! layer berth writes); config edits come as `--change` instructions.

use std::io::Read;

use berth_image::archive::read::host_arch;
use berth_image::change::apply_change;
use berth_image::config::{ContainerConfig, History, ImageConfig, RootFs};
use berth_image::{media, Digest, Reference};

use crate::db::LayerRow;
use crate::error::{Result, StoreError};
use crate::layers::decompress;
use crate::load::{Created, Loaded, PlannedImage, PlannedLayer};
use crate::store::Store;

/// What `import` needs besides the tarball.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// `--change` instructions.
    pub changes: Vec<String>,
    /// The reference to tag the image with.
    pub reference: Option<String>,
    /// The history comment (`-m`); Docker's default names the source.
    pub message: Option<String>,
}

impl Store {
    /// Imports a root filesystem tarball as a new image.
    pub fn import(&self, input: impl Read, opts: &ImportOptions) -> Result<Loaded> {
        let tag = opts
            .reference
            .as_deref()
            .map(|r| Ok::<_, StoreError>(r.parse::<Reference>()?.with_default_tag().to_string()))
            .transpose()?;
        let mut container = ContainerConfig::default();
        for c in &opts.changes {
            apply_change(&mut container, c)?;
        }
        let conn = self.conn();
        let mut created = Created::default();
        let result = (|| {
            let (diff_id, blob_size) = self.store_plain_layer(input, &mut created)?;
            // The blob is the plain tar: its digest is the DiffID.
            let blob = diff_id.clone();
            let config = import_config(container, &diff_id, opts.message.as_deref());
            let config_bytes = config.to_bytes();
            let id = self.blobs.put_bytes(&config_bytes)?;
            created.blobs.push(id.clone());
            let row = LayerRow {
                chain_id: diff_id.to_string(),
                diff_id: diff_id.to_string(),
                parent: None,
                size: 0,
                blob: blob.to_string(),
                blob_size,
                media_type: media::OCI_LAYER.to_owned(),
                refs: 0,
            };
            // The same content recorded before (an earlier import, a
            // pull) keeps its row, with its size and blob: the blob just
            // written, when new, is not needed.
            let mut spare = None;
            let layer = match crate::db::layer(&conn, &row.chain_id)? {
                Some(existing) => {
                    let kept: Digest = existing.blob.parse()?;
                    if kept != blob && created.blobs.contains(&blob) {
                        spare = Some(blob);
                    }
                    PlannedLayer {
                        blob: kept,
                        row: existing,
                        new: false,
                    }
                }
                None => PlannedLayer {
                    row,
                    blob,
                    new: true,
                },
            };
            let planned = vec![PlannedImage {
                id,
                created: config.created,
                layers: vec![layer],
                tags: tag.into_iter().collect(),
            }];
            let fresh = created.blobs.iter().cloned().collect();
            let sizes = self.unpack_new(&planned, &mut created.layers, &fresh)?;
            Ok((self.record(&conn, &planned, &sizes)?, spare))
        })();
        drop(conn);
        let (mut loaded, spare) = self.undo_on_error(result, &created)?;
        if let Some(b) = spare {
            if let Err(e) = self.blobs.remove(&b) {
                tracing::warn!(blob = %b, error = %e, "removing an unneeded blob; GC retries");
            }
        }
        loaded
            .pop()
            .ok_or_else(|| StoreError::Invalid("import recorded no image".to_owned()))
    }

    /// Streams the tarball, decompressed, into a blob; returns its digest
    /// (the DiffID: the blob is the plain tar) and size.
    fn store_plain_layer(&self, input: impl Read, created: &mut Created) -> Result<(Digest, u64)> {
        let mut reader =
            decompress(input).map_err(|e| StoreError::io("reading", "import tarball", e))?;
        let (tmp, diff_id, size) = self
            .blobs
            .stage("import tarball", &mut reader, None, None)?;
        created.commit_blob(&self.blobs, tmp, &diff_id)?;
        Ok((diff_id, size))
    }
}

fn import_config(
    container: ContainerConfig,
    diff_id: &Digest,
    message: Option<&str>,
) -> ImageConfig {
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
    ImageConfig {
        created: Some(now.clone()),
        architecture: host_arch().to_owned(),
        os: "linux".to_owned(),
        config: Some(container),
        rootfs: RootFs {
            kind: "layers".to_owned(),
            diff_ids: vec![diff_id.clone()],
        },
        history: vec![History {
            created: Some(now),
            created_by: None,
            comment: Some(message.unwrap_or("Imported from -").to_owned()),
            ..History::default()
        }],
        ..ImageConfig::default()
    }
}
