//! Changing names and removing images, with Docker's rules (`docker tag`,
//! `docker rmi`, `docker image prune`). Records change in one transaction;
//! files (layers, blobs) are removed after it commits, so a crash leaves
//! only unreferenced files, which start-up and GC remove.

use berth_image::{Digest, Reference};
use rusqlite::{Connection, OptionalExtension, Transaction};

use crate::db;
use crate::error::{Result, StoreError};
use crate::store::{resolve, Store};

/// One effect of a removal, as `DELETE /images/{name}` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Removal {
    /// A reference no longer points at the image.
    Untagged(String),
    /// An image or layer (by ID / ChainID) is gone.
    Deleted(Digest),
}

/// What a prune removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PruneReport {
    pub removed: Vec<Removal>,
    /// Bytes of unpacked layers freed.
    pub space_reclaimed: u64,
}

impl Store {
    /// Points `target` (a reference; `:latest` when it has no tag) at the
    /// image `source` names.
    pub fn tag(&self, source: &str, target: &str) -> Result<String> {
        let conn = self.conn();
        let id = resolve(&conn, source)?;
        let r: Reference = target.parse()?;
        if r.digest().is_some() {
            return Err(StoreError::Invalid(format!(
                "refusing to create a tag with a digest reference: {target}"
            )));
        }
        let full = r.with_default_tag().to_string();
        // A tag already there costs no write (a cached rebuild re-tags).
        let current: Option<String> = conn
            .query_row("SELECT image_id FROM tags WHERE name = ?1", [&full], |r| {
                r.get(0)
            })
            .optional()
            .map_err(StoreError::db(format!("looking up {full}")))?;
        if current.as_deref() == Some(id.to_string().as_str()) {
            return Ok(full);
        }
        conn.execute(
            "INSERT INTO tags (name, image_id, added_at) VALUES (?1, ?2, ?3)
             ON CONFLICT(name) DO UPDATE SET image_id = excluded.image_id, added_at = excluded.added_at",
            rusqlite::params![full, id.to_string(), chrono::Utc::now().timestamp()],
        )
        .map_err(StoreError::db(format!("tagging {id} as {full}")))?;
        Ok(full)
    }

    /// Removes one reference (`docker image untag` semantics: the image
    /// stays, dangling when this was its last tag).
    pub fn untag(&self, reference: &str) -> Result<String> {
        let full = reference
            .parse::<Reference>()?
            .with_default_tag()
            .to_string();
        let n = self
            .conn()
            .execute("DELETE FROM tags WHERE name = ?1", [&full])
            .map_err(StoreError::db(format!("untagging {full}")))?;
        if n == 0 {
            return Err(StoreError::ImageNotFound(reference.to_owned()));
        }
        Ok(full)
    }

    /// Removes an image by reference or ID, as `docker rmi` does: a
    /// reference to an image with other tags only untags it; an ID of an
    /// image with several tags needs `force`; an image a container holds is
    /// never deleted (with `force` it loses its tags and stays, dangling).
    pub fn remove(&self, name: &str, force: bool) -> Result<Vec<Removal>> {
        let conn = self.conn();
        let id = resolve(&conn, name)?;
        let key = id.to_string();
        let tags = db::image_tags(&conn, &key)?;
        let by_tag = named_tag(name, &tags);
        let holders = holders(&conn, &key)?;
        let tx = db::write_tx(&conn, "a removal")?;
        let mut out = Vec::new();
        let untag_all = match &by_tag {
            Some(tag) if tags.len() > 1 || (!holders.is_empty() && force) => {
                untag(&tx, tag)?;
                out.push(Removal::Untagged(tag.clone()));
                false
            }
            Some(tag) if !holders.is_empty() => {
                return Err(StoreError::Conflict(format!(
                    "unable to remove repository reference {tag} (must force) - {} is using its referenced image {}",
                    holders.join(", "),
                    id.short()
                )));
            }
            _ => true,
        };
        if untag_all {
            if by_tag.is_none() && tags.len() > 1 && !force {
                return Err(StoreError::Conflict(format!(
                    "unable to delete {} (must be forced) - image is referenced in multiple repositories",
                    id.short()
                )));
            }
            if !holders.is_empty() && !force {
                return Err(StoreError::Conflict(format!(
                    "unable to delete {} (must be forced) - image is being used by {}",
                    id.short(),
                    holders.join(", ")
                )));
            }
            for t in &tags {
                untag(&tx, t)?;
                out.push(Removal::Untagged(t.clone()));
            }
        }
        let has_children = has_children(&tx, &id)?;
        if untag_all && has_children && tags.is_empty() {
            return Err(StoreError::Conflict(format!(
                "unable to delete {} (cannot be forced) - image has dependent child images",
                id.short()
            )));
        }
        let mut doomed = Vec::new();
        let mut configs = Vec::new();
        // An image others were made from only loses its tags (Docker's rule).
        if untag_all && holders.is_empty() && !has_children {
            let mut next = Some(id.clone());
            // Docker's rule: the untagged, unused images it was made from
            // (build steps) go with it, up to one another image still needs.
            while let Some(img) = next.take() {
                let parent = parent_of(&tx, &img)?;
                let layers = delete_image(&tx, &img.to_string())?;
                out.push(Removal::Deleted(img.clone()));
                out.extend(layers.iter().map(|(c, _)| Removal::Deleted(c.clone())));
                doomed.extend(layers);
                configs.push(img);
                next = match parent {
                    Some(p) if is_disposable(&tx, &p)? => Some(p),
                    _ => None,
                };
            }
        }
        tx.commit()
            .map_err(StoreError::db("committing a removal"))?;
        self.remove_files(&doomed);
        for config in configs {
            if let Err(e) = self.blobs.remove(&config) {
                tracing::warn!(%config, error = %e, "removing config blob; GC retries");
            }
        }
        Ok(out)
    }

    /// Removes dangling images (`all`: every image no container uses).
    /// Images others were made from go with their last child.
    pub fn prune(&self, all: bool) -> Result<PruneReport> {
        let mut report = PruneReport::default();
        loop {
            let candidates = self.prune_candidates(all)?;
            let before = report.removed.len();
            for id in candidates {
                let sizes = self.layer_sizes_of(&id)?;
                let removed = match self.remove(&id.to_string(), true) {
                    Ok(r) => r,
                    // Gone with a child removed earlier in this round.
                    Err(StoreError::ImageNotFound(_)) => continue,
                    Err(e) => return Err(e),
                };
                for r in &removed {
                    if let Removal::Deleted(d) = r {
                        report.space_reclaimed +=
                            sizes.iter().find(|(c, _)| c == d).map_or(0, |(_, s)| *s);
                    }
                }
                report.removed.extend(removed);
            }
            // With `all`, a tagged parent is a candidate once its children go.
            if !all || report.removed.len() == before {
                return Ok(report);
            }
        }
    }

    fn prune_candidates(&self, all: bool) -> Result<Vec<Digest>> {
        let conn = self.conn();
        let untagged = if all {
            ""
        } else {
            "AND id NOT IN (SELECT image_id FROM tags)"
        };
        let sql = format!(
            "SELECT id FROM images WHERE id NOT IN (SELECT target FROM holds WHERE kind = 'image')
               AND id NOT IN (SELECT parent FROM images WHERE parent IS NOT NULL) {untagged}"
        );
        db::digests(&conn, &sql, [], "finding images to prune")
    }

    /// An image's layers (ChainIDs, bottom first) and their sizes.
    pub fn layer_sizes_of(&self, id: &Digest) -> Result<Vec<(Digest, u64)>> {
        let conn = self.conn();
        let mut out = Vec::new();
        for chain in db::image_chain(&conn, &id.to_string())? {
            if let Some(row) = db::layer(&conn, &chain)? {
                out.push((chain.parse()?, row.size));
            }
        }
        Ok(out)
    }

    /// Deletes the files of layers whose records are gone, and their blobs.
    pub(crate) fn remove_files(&self, doomed: &[(Digest, Option<Digest>)]) {
        for (chain, blob) in doomed {
            if let Err(e) = self.layers.remove(chain) {
                tracing::warn!(layer = %chain, error = %e, "removing layer files; start-up or GC retries");
            }
            if let Some(b) = blob {
                if let Err(e) = self.blobs.remove(b) {
                    tracing::warn!(blob = %b, error = %e, "removing blob; GC retries");
                }
            }
        }
    }
}

/// The full tag `name` designates, if it is one of the image's tags.
fn named_tag(name: &str, tags: &[String]) -> Option<String> {
    let full = name
        .parse::<Reference>()
        .ok()?
        .with_default_tag()
        .to_string();
    tags.contains(&full).then_some(full)
}

fn holders(conn: &Connection, id: &str) -> Result<Vec<String>> {
    let sql =
        "SELECT DISTINCT holder FROM holds WHERE kind = 'image' AND target = ?1 ORDER BY holder";
    db::strings(conn, sql, [id], &format!("reading users of {id}"))
}

fn parent_of(conn: &Connection, id: &Digest) -> Result<Option<Digest>> {
    let parent: Option<Option<String>> = conn
        .query_row(
            "SELECT parent FROM images WHERE id = ?1",
            [id.to_string()],
            |r| r.get(0),
        )
        .optional()
        .map_err(StoreError::db(format!("reading the parent of {id}")))?;
    parent
        .flatten()
        .map(|p| p.parse())
        .transpose()
        .map_err(Into::into)
}

fn has_children(conn: &Connection, id: &Digest) -> Result<bool> {
    let n: i64 = conn
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM images WHERE parent = ?1)",
            [id.to_string()],
            |r| r.get(0),
        )
        .map_err(StoreError::db(format!("looking for children of {id}")))?;
    Ok(n != 0)
}

/// Whether an image can go with its last child: it exists, has no tag, no
/// holder and no other child.
fn is_disposable(conn: &Connection, id: &Digest) -> Result<bool> {
    let key = id.to_string();
    let busy: i64 = conn
        .query_row(
            "SELECT (SELECT count(*) FROM images WHERE id = ?1) = 0
                 OR EXISTS (SELECT 1 FROM tags WHERE image_id = ?1)
                 OR EXISTS (SELECT 1 FROM holds WHERE kind = 'image' AND target = ?1)
                 OR EXISTS (SELECT 1 FROM images WHERE parent = ?1)",
            [&key],
            |r| r.get(0),
        )
        .map_err(StoreError::db(format!("checking the users of {id}")))?;
    Ok(busy == 0)
}

fn untag(tx: &Transaction<'_>, tag: &str) -> Result<()> {
    tx.execute("DELETE FROM tags WHERE name = ?1", [tag])
        .map_err(StoreError::db(format!("untagging {tag}")))?;
    Ok(())
}

/// Deletes an image record and drops its layer references; returns the
/// layers (and their blobs, unless another layer shares the blob) that no
/// image references any more, top first.
fn delete_image(tx: &Transaction<'_>, id: &str) -> Result<Vec<(Digest, Option<Digest>)>> {
    let chain = db::image_chain(tx, id)?;
    tx.execute("DELETE FROM image_layers WHERE image_id = ?1", [id])
        .map_err(StoreError::db(format!("removing layers of {id}")))?;
    tx.execute("DELETE FROM images WHERE id = ?1", [id])
        .map_err(StoreError::db(format!("removing image {id}")))?;
    let mut doomed = Vec::new();
    for c in chain.iter().rev() {
        tx.execute("UPDATE layers SET refs = refs - 1 WHERE chain_id = ?1", [c])
            .map_err(StoreError::db(format!("releasing layer {c}")))?;
        doomed.extend(release_layer(tx, c)?);
    }
    // What a push made of a blob no layer holds any more goes with it.
    tx.execute(
        "DELETE FROM pushed_forms WHERE blob NOT IN (SELECT blob FROM layers)",
        [],
    )
    .map_err(StoreError::db("forgetting pushed forms"))?;
    Ok(doomed)
}

fn release_layer(tx: &Transaction<'_>, chain: &str) -> Result<Option<(Digest, Option<Digest>)>> {
    let row = db::layer(tx, chain)?;
    let Some(row) = row.filter(|r| r.refs == 0) else {
        return Ok(None);
    };
    let held: Option<i64> = tx
        .query_row(
            "SELECT 1 FROM holds WHERE kind = 'layer' AND target = ?1",
            [chain],
            |r| r.get(0),
        )
        .optional()
        .map_err(StoreError::db("reading holds"))?;
    if held.is_some() {
        return Ok(None);
    }
    tx.execute("DELETE FROM layers WHERE chain_id = ?1", [chain])
        .map_err(StoreError::db(format!("removing layer {chain}")))?;
    let shared: i64 = tx
        .query_row(
            "SELECT count(*) FROM layers WHERE blob = ?1",
            [&row.blob],
            |r| r.get(0),
        )
        .map_err(StoreError::db("counting blob users"))?;
    let blob = if shared == 0 {
        Some(row.blob.parse()?)
    } else {
        None
    };
    Ok(Some((chain.parse()?, blob)))
}
