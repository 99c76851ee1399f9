//! Read-only questions about images: list (with Docker's filters),
//! inspect, history.

use std::collections::BTreeMap;

use berth_image::archive::MAX_DOCUMENT;
use berth_image::config::ImageConfig;
use berth_image::{Digest, Reference};
use rusqlite::Connection;

use crate::db;
use crate::error::{Result, StoreError};
use crate::store::{resolve, Store};

/// One image in a listing.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageSummary {
    pub id: Digest,
    /// Full references, sorted.
    pub tags: Vec<String>,
    /// `repo@digest` names it was pulled by, sorted.
    pub digests: Vec<String>,
    /// The config's creation time (RFC 3339), if it has one.
    pub created: Option<String>,
    /// Bytes of all its layers unpacked.
    pub size: u64,
    pub labels: BTreeMap<String, String>,
    /// Containers and other holders using it.
    pub holders: u64,
    /// The image it was made from (a commit or a build step).
    pub parent: Option<Digest>,
}

/// Docker's image list filters.
#[derive(Debug, Clone, Default)]
pub struct ListFilters {
    /// `dangling=true|false`: untagged images only, or tagged only.
    pub dangling: Option<bool>,
    /// `label=key` or `label=key=value`; all must match.
    pub labels: Vec<(String, Option<String>)>,
    /// `reference=pattern` (glob on the familiar name, `busy*`,
    /// `busybox:1.*`); any may match.
    pub reference: Vec<String>,
    /// `before=image`: created before that image.
    pub before: Option<String>,
    /// `since=image`: created after that image.
    pub since: Option<String>,
    /// Intermediate images too (`docker images -a`): untagged images that
    /// other images were made from, such as build steps.
    pub all: bool,
}

/// What `docker image inspect` shows.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageDetails {
    pub summary: ImageSummary,
    pub config: ImageConfig,
    /// Unpacked layer directories, bottom first.
    pub layer_dirs: Vec<std::path::PathBuf>,
}

/// One line of `docker history`, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEntry {
    /// The image ID for the top entry, `None` (Docker's `<missing>`) below.
    pub id: Option<Digest>,
    pub created: Option<String>,
    pub created_by: String,
    pub size: u64,
    pub comment: String,
    pub tags: Vec<String>,
}

impl Store {
    /// The unpacked size of an image (its layers').
    pub fn image_size(&self, id: &Digest) -> Result<u64> {
        self.conn()
            .query_row(
                "SELECT size FROM images WHERE id = ?1",
                [id.to_string()],
                |r| r.get(0),
            )
            .map_err(StoreError::db("reading an image's size"))
    }

    /// Bytes of every unpacked layer, each counted once.
    pub fn layers_size(&self) -> Result<u64> {
        self.conn()
            .query_row("SELECT coalesce(sum(size), 0) FROM layers", [], |r| {
                r.get(0)
            })
            .map_err(StoreError::db("summing layer sizes"))
    }

    /// The bytes of an image's layers that other images use too (Docker's
    /// SharedSize).
    pub fn shared_size(&self, id: &Digest) -> Result<u64> {
        self.conn()
            .query_row(
                "SELECT coalesce(sum(l.size), 0) FROM image_layers il
                 JOIN layers l ON l.chain_id = il.chain_id
                 WHERE il.image_id = ?1 AND l.refs > 1",
                [id.to_string()],
                |r| r.get(0),
            )
            .map_err(StoreError::db(format!("summing the shared layers of {id}")))
    }

    /// One image's summary.
    pub fn summary_of(&self, id: &Digest) -> Result<ImageSummary> {
        let conn = self.conn();
        self.summary(&conn, id)
    }

    /// The bytes an image adds to its parent (its own layer, if any).
    pub fn top_layer_size(&self, id: &Digest) -> Result<u64> {
        let s = self.summary_of(id)?;
        let own = self.layer_sizes_of(id)?;
        let parent = match &s.parent {
            Some(p) => self.chain(p).map_or(0, |c| c.len()),
            None => 0,
        };
        Ok(own
            .get(parent..)
            .map_or(0, |l| l.iter().map(|(_, s)| s).sum()))
    }

    /// Images matching the filters, newest first.
    pub fn list(&self, filters: &ListFilters) -> Result<Vec<ImageSummary>> {
        let conn = self.conn();
        let before = filters
            .before
            .as_deref()
            .map(|n| created_of(&conn, n))
            .transpose()?;
        let since = filters
            .since
            .as_deref()
            .map(|n| created_of(&conn, n))
            .transpose()?;
        let parents: std::collections::HashSet<String> = db::strings(
            &conn,
            "SELECT DISTINCT parent FROM images WHERE parent IS NOT NULL",
            [],
            "listing parent images",
        )?
        .into_iter()
        .collect();
        let mut out = Vec::new();
        for id in all_ids(&conn)? {
            let s = self.summary(&conn, &id)?;
            let intermediate = s.tags.is_empty() && parents.contains(&id.to_string());
            let keep = (filters.all || !intermediate)
                && filters.dangling.is_none_or(|d| d == s.tags.is_empty())
                && before
                    .as_ref()
                    .is_none_or(|b| s.created.as_deref().unwrap_or("") < b.as_str())
                && since
                    .as_ref()
                    .is_none_or(|b| s.created.as_deref().unwrap_or("") > b.as_str())
                && filters
                    .labels
                    .iter()
                    .all(|(k, v)| match (s.labels.get(k), v) {
                        (Some(have), Some(want)) => have == want,
                        (Some(_), None) => true,
                        (None, _) => false,
                    })
                && (filters.reference.is_empty()
                    || filters
                        .reference
                        .iter()
                        .any(|p| matches_reference(p, &s.tags)));
            if keep {
                let mut s = s;
                if !filters.reference.is_empty() {
                    // Docker shows only the references that matched.
                    s.tags.retain(|t| {
                        filters
                            .reference
                            .iter()
                            .any(|p| matches_reference(p, std::slice::from_ref(t)))
                    });
                }
                out.push(s);
            }
        }
        out.sort_by(|a, b| b.created.cmp(&a.created).then_with(|| a.id.cmp(&b.id)));
        Ok(out)
    }

    pub(crate) fn summary(&self, conn: &Connection, id: &Digest) -> Result<ImageSummary> {
        let key = id.to_string();
        let (created, size, parent): (Option<String>, u64, Option<String>) = conn
            .query_row(
                "SELECT created, size, parent FROM images WHERE id = ?1",
                [&key],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .map_err(StoreError::db(format!("reading image {id}")))?;
        let holders: u64 = conn
            .query_row(
                "SELECT count(DISTINCT holder) FROM holds WHERE kind = 'image' AND target = ?1",
                [&key],
                |r| r.get(0),
            )
            .map_err(StoreError::db(format!("counting users of {id}")))?;
        let config = self.config(id)?;
        let labels = config.config.and_then(|c| c.labels).unwrap_or_default();
        Ok(ImageSummary {
            id: id.clone(),
            tags: db::image_tags(conn, &key)?,
            digests: db::image_digests(conn, &key)?,
            created,
            size,
            labels,
            holders,
            parent: parent.map(|p| p.parse()).transpose()?,
        })
    }

    /// The parsed config of an image.
    pub fn config(&self, id: &Digest) -> Result<ImageConfig> {
        Ok(ImageConfig::parse(
            &self.blobs.read(id, MAX_DOCUMENT)?,
            &format!("config of {id}"),
        )?)
    }

    /// Everything about one image.
    pub fn inspect(&self, name: &str) -> Result<ImageDetails> {
        let conn = self.conn();
        let id = resolve(&conn, name)?;
        let summary = self.summary(&conn, &id)?;
        let chain = db::image_chain(&conn, &id.to_string())?;
        let layer_dirs = chain
            .iter()
            .map(|c| Ok(self.layers.diff_dir(&c.parse()?)))
            .collect::<Result<Vec<_>>>()?;
        Ok(ImageDetails {
            summary,
            config: self.config(&id)?,
            layer_dirs,
        })
    }

    /// The image's history, newest first, with layer sizes.
    pub fn history(&self, name: &str) -> Result<Vec<HistoryEntry>> {
        let conn = self.conn();
        let id = resolve(&conn, name)?;
        let config = self.config(&id)?;
        let mut sizes = Vec::new();
        for chain in db::image_chain(&conn, &id.to_string())? {
            sizes.push(db::layer(&conn, &chain)?.map_or(0, |l| l.size));
        }
        let mut sizes = sizes.into_iter();
        let mut out: Vec<HistoryEntry> = config
            .history
            .iter()
            .map(|h| HistoryEntry {
                id: None,
                created: h.created.clone(),
                created_by: h.created_by.clone().unwrap_or_default(),
                size: if h.empty_layer {
                    0
                } else {
                    sizes.next().unwrap_or(0)
                },
                comment: h.comment.clone().unwrap_or_default(),
                tags: Vec::new(),
            })
            .collect();
        out.reverse();
        if let Some(top) = out.first_mut() {
            top.id = Some(id.clone());
            top.tags = db::image_tags(&conn, &id.to_string())?;
        }
        Ok(out)
    }
}

fn all_ids(conn: &Connection) -> Result<Vec<Digest>> {
    db::digests(conn, "SELECT id FROM images", [], "listing images")
}

fn created_of(conn: &Connection, name: &str) -> Result<String> {
    let id = resolve(conn, name)?;
    let created: Option<String> = conn
        .query_row(
            "SELECT created FROM images WHERE id = ?1",
            [id.to_string()],
            |r| r.get(0),
        )
        .map_err(StoreError::db(format!("reading image {id}")))?;
    Ok(created.unwrap_or_default())
}

/// Docker's `reference` filter: the pattern is matched against each tag's
/// familiar form (`busybox:latest`) and its familiar repository.
fn matches_reference(pattern: &str, tags: &[String]) -> bool {
    tags.iter()
        .filter_map(|t| t.parse::<Reference>().ok())
        .any(|r| {
            glob(pattern.as_bytes(), r.familiar().as_bytes())
                || glob(pattern.as_bytes(), r.familiar_repository().as_bytes())
        })
}

/// Shell-style glob (`*`, `?`), where `*` does not cross `/` (Go's
/// `path.Match`, which Docker uses).
fn glob(p: &[u8], s: &[u8]) -> bool {
    match (p.first(), s.first()) {
        (None, None) => true,
        (Some(b'*'), _) => glob(&p[1..], s) || (!s.is_empty() && s[0] != b'/' && glob(p, &s[1..])),
        (Some(b'?'), Some(c)) if *c != b'/' => glob(&p[1..], &s[1..]),
        (Some(a), Some(b)) if a == b => glob(&p[1..], &s[1..]),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_matches_like_go_path_match() {
        assert!(glob(b"busy*", b"busybox"));
        assert!(glob(b"busybox:1.*", b"busybox:1.36"));
        assert!(!glob(b"busy*", b"busy/box"));
        assert!(glob(b"b?sybox", b"busybox"));
        assert!(!glob(b"alpine", b"busybox"));
    }

    #[test]
    fn reference_filter_uses_familiar_names() {
        let tags = vec!["docker.io/library/busybox:latest".to_owned()];
        assert!(matches_reference("busybox", &tags));
        assert!(matches_reference("busybox:lat*", &tags));
        assert!(!matches_reference("docker.io/*", &tags));
    }
}
