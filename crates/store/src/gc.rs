//! Garbage collection (mark and sweep) and `fsck`.
//!
//! Roots are the records: images (their configs and layers), layers still
//! referenced by an image or held by a container or build-cache entry, and
//! blobs held directly. Everything else in `blobs/` and `layers/` is
//! garbage. GC runs under the store's operation lock, so no writer can be
//! between storing a blob and recording it while GC looks.

use std::collections::HashSet;

use berth_image::Digest;
use rusqlite::Connection;

use crate::db;
use crate::error::{Result, StoreError};
use crate::store::Store;

/// What a collection removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcReport {
    pub blobs_removed: Vec<Digest>,
    pub layers_removed: Vec<Digest>,
    /// Bytes of blobs freed.
    pub bytes_freed: u64,
}

/// What fsck found wrong; empty when the store is sound.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FsckReport {
    /// Blobs re-hashed.
    pub blobs_checked: usize,
    /// One line per problem, naming the image, layer or blob.
    pub problems: Vec<String>,
}

impl Store {
    /// Removes blobs and layers nothing references.
    pub fn gc(&self) -> Result<GcReport> {
        let conn = self.conn();
        drop_unreferenced_layer_rows(&conn)?;
        let (blobs, layers) = mark(&conn)?;
        let mut report = GcReport::default();
        for chain in self.layers.list()? {
            if !layers.contains(&chain) {
                self.layers.remove(&chain)?;
                report.layers_removed.push(chain);
            }
        }
        for (digest, size, _) in self.blobs.list()? {
            if !blobs.contains(&digest) {
                self.blobs.remove(&digest)?;
                report.bytes_freed += size;
                report.blobs_removed.push(digest);
            }
        }
        Ok(report)
    }

    /// Re-verifies everything reachable: each image's config, each layer's
    /// blob digest and unpacked directory.
    pub fn fsck(&self) -> Result<FsckReport> {
        let conn = self.conn();
        let (blobs, layers) = mark(&conn)?;
        let mut report = FsckReport::default();
        let mut sorted: Vec<_> = blobs.into_iter().collect();
        sorted.sort();
        for d in sorted {
            report.blobs_checked += 1;
            if let Err(e) = self.blobs.verify(&d) {
                report.problems.push(e.to_string());
            }
        }
        for chain in layers {
            if !self.layers.contains(&chain) {
                report.problems.push(format!(
                    "layer {chain} is recorded but its directory is missing"
                ));
            }
        }
        report.problems.sort();
        Ok(report)
    }
}

/// Layer records no image counts and nothing holds (left by a forced
/// removal or a released hold) go, leaves first: a parent row stays while a
/// child names it.
fn drop_unreferenced_layer_rows(conn: &Connection) -> Result<()> {
    loop {
        let n = conn
            .execute(
                "DELETE FROM layers WHERE refs = 0
                   AND chain_id NOT IN (SELECT target FROM holds WHERE kind = 'layer')
                   AND chain_id NOT IN (SELECT parent FROM layers WHERE parent IS NOT NULL)",
                [],
            )
            .map_err(StoreError::db("removing unreferenced layer records"))?;
        if n == 0 {
            return Ok(());
        }
    }
}

/// The blobs and layers the records reach.
fn mark(conn: &Connection) -> Result<(HashSet<Digest>, HashSet<Digest>)> {
    let set = |sql: &str| -> Result<HashSet<Digest>> {
        Ok(db::digests(conn, sql, [], "marking reachable content")?
            .into_iter()
            .collect())
    };
    let mut blobs = set("SELECT id FROM images UNION SELECT blob FROM layers UNION SELECT target FROM holds WHERE kind = 'blob'")?;
    let layers = set("SELECT chain_id FROM layers")?;
    // Configs of held images whose records were forced away stay too.
    blobs.extend(set("SELECT target FROM holds WHERE kind = 'image'")?);
    Ok((blobs, layers))
}
