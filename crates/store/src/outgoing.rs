//! What a registry push reads from the store: an image's config and layer
//! blobs, held while they upload (no removal or GC takes them away); the
//! repositories already known to hold a blob (where a registry can mount
//! it from); and the repo digests a push leaves behind.

use berth_image::archive::{LayerBlob, MAX_DOCUMENT};
use berth_image::{Digest, Reference};

use rusqlite::OptionalExtension;

use crate::db;
use crate::error::{Result, StoreError};
use crate::store::{resolve, Store};
use crate::verify::CheckedBlob;

/// An image on its way out, held until [`Store::release`] of `holder`.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub holder: String,
    /// The image ID: its config's digest.
    pub config: Digest,
    pub config_bytes: Vec<u8>,
    /// Layer blobs bottom first, as stored (compressed or not).
    pub layers: Vec<LayerBlob>,
    /// Each layer's uncompressed digest.
    pub diff_ids: Vec<Digest>,
}

impl Store {
    /// Holds the image `name` names and lists what a push uploads.
    pub fn hold_for_push(&self, name: &str) -> Result<Outgoing> {
        let holder = Self::transient_holder("push");
        let conn = self.conn();
        let id = resolve(&conn, name)?;
        conn.execute(
            "INSERT OR IGNORE INTO holds (holder, kind, target) VALUES (?1, 'image', ?2)",
            [&holder, &id.to_string()],
        )
        .map_err(StoreError::db("holding an image being pushed"))?;
        let chain = db::image_chain(&conn, &id.to_string())?;
        drop(conn);
        let gathered = (|| {
            let conn = self.conn();
            let mut layers = Vec::with_capacity(chain.len());
            let mut diff_ids = Vec::with_capacity(chain.len());
            for c in &chain {
                let row = db::layer(&conn, c)?.ok_or_else(|| {
                    StoreError::Invalid(format!(
                        "image {id} names layer {c}, which is not recorded"
                    ))
                })?;
                diff_ids.push(row.diff_id.parse()?);
                layers.push(LayerBlob {
                    digest: row.blob.parse()?,
                    size: row.blob_size,
                    media_type: Some(row.media_type),
                });
            }
            let config_bytes = self.blobs.read(&id, MAX_DOCUMENT)?;
            Ok((layers, diff_ids, config_bytes))
        })();
        match gathered {
            Ok((layers, diff_ids, config_bytes)) => Ok(Outgoing {
                holder,
                config: id,
                config_bytes,
                layers,
                diff_ids,
            }),
            Err(e) => {
                let _ = self.release(&holder);
                Err(e)
            }
        }
    }

    /// A stored blob, verified against its digest and size as it is read.
    pub fn read_blob(&self, digest: &Digest, size: u64) -> Result<CheckedBlob<std::fs::File>> {
        let file = self.blobs.open_blob(digest)?;
        Ok(CheckedBlob::new(file, digest.clone(), size))
    }

    /// The compressed form a push made of stored blob `blob`: its digest
    /// and size.
    pub fn pushed_form(&self, blob: &Digest) -> Result<Option<(Digest, u64)>> {
        let row = self
            .conn()
            .query_row(
                "SELECT digest, size FROM pushed_forms WHERE blob = ?1",
                [blob.to_string()],
                |r| Ok((r.get::<_, String>(0)?, r.get::<_, u64>(1)?)),
            )
            .optional()
            .map_err(StoreError::db("reading a layer's pushed form"))?;
        row.map(|(d, size)| Ok((d.parse()?, size))).transpose()
    }

    /// Records what a push made of stored blob `blob`.
    pub fn record_pushed_form(&self, blob: &Digest, digest: &Digest, size: u64) -> Result<()> {
        self.conn()
            .execute(
                "INSERT OR REPLACE INTO pushed_forms (blob, digest, size) VALUES (?1, ?2, ?3)",
                rusqlite::params![blob.to_string(), digest.to_string(), size],
            )
            .map_err(StoreError::db("recording a layer's pushed form"))?;
        Ok(())
    }

    /// Repositories (`host/path`) on registry `domain` known to hold the
    /// blob: those of the repo digests of images with that layer blob, as
    /// stored or as a push compressed it.
    pub fn repos_with_blob(&self, domain: &str, blob: &Digest) -> Result<Vec<String>> {
        let names = db::strings(
            &self.conn(),
            "SELECT DISTINCT r.name FROM repo_digests r
               JOIN image_layers il ON il.image_id = r.image_id
               JOIN layers l ON l.chain_id = il.chain_id
              WHERE l.blob = ?1
                 OR l.blob IN (SELECT blob FROM pushed_forms WHERE digest = ?1)
              ORDER BY r.name",
            [blob.to_string()],
            "finding repositories with a blob",
        )?;
        let mut repos: Vec<String> = names
            .iter()
            .filter_map(|n| n.parse::<Reference>().ok())
            .filter(|r| r.domain() == domain)
            .map(|r| r.path().to_owned())
            .collect();
        repos.dedup();
        Ok(repos)
    }

    /// Records that `name` (`repo@digest`) is image `id`: after a push,
    /// as after a pull.
    pub fn record_repo_digest(&self, name: &str, id: &Digest) -> Result<()> {
        self.conn()
            .execute(
                "INSERT OR REPLACE INTO repo_digests (name, image_id) VALUES (?1, ?2)",
                [name, &id.to_string()],
            )
            .map_err(StoreError::db(format!("recording {name}")))?;
        Ok(())
    }

    /// The tags of repository `repo` (its full name, no tag), sorted.
    pub fn tags_of(&self, repo: &str) -> Result<Vec<String>> {
        let prefix = format!("{repo}:");
        let names = db::strings(
            &self.conn(),
            "SELECT name FROM tags WHERE substr(name, 1, length(?1)) = ?1 ORDER BY name",
            [&prefix],
            "listing a repository's tags",
        )?;
        Ok(names
            .iter()
            .filter_map(|n| n.strip_prefix(&prefix))
            .filter(|t| !t.contains('/'))
            .map(str::to_owned)
            .collect())
    }
}
