//! New images made from a parent image and a change to its filesystem:
//! every build step, and `docker commit`. A change is written into a
//! [`Scratch`] layer — a temp layer directory whose `diff` is the upper dir
//! of a writable overlay over the parent's layers — and committed: its
//! diff becomes an uncompressed layer blob, the directory itself is renamed
//! into place under its ChainID (nothing is unpacked a second time), and
//! one transaction records the layer and the image with its parent.
//!
//! Layers made here stay uncompressed, as dockerd keeps them: a build
//! commits a layer per step and most are never pushed, so deflating each
//! one (and hashing it twice, compressed and not) was most of a cold
//! build's CPU. A push gzips them on the way out and remembers the result
//! (`pushed_forms`); `save` writes them as they are.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use berth_image::chain::{chain_id, chain_ids};
use berth_image::config::ImageConfig;
use berth_image::{media, Algorithm, Digest};

use crate::blobs::HashingWriter;
use crate::db::{self, LayerRow};
use crate::error::{Result, StoreError};
use crate::load::Created;
use crate::store::Store;

/// A writable root over an image's layers whose changes can become a layer.
/// Dropped without a commit, it is unmounted and removed.
#[derive(Debug)]
pub struct Scratch {
    dir: Option<tempfile::TempDir>,
    /// The writable root: the overlay mount, or `diff` itself when the
    /// parent has no layers.
    root: PathBuf,
    mounted: bool,
    /// The parent's layers, bottom first.
    chain: Vec<Digest>,
}

impl Scratch {
    /// Where the change is written: a root filesystem that shows the
    /// parent's files.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The upper dir: the change alone (overlay's whiteouts included).
    pub fn upper(&self) -> PathBuf {
        self.dir_path().join("diff")
    }

    fn dir_path(&self) -> &Path {
        self.dir.as_ref().map_or(Path::new(""), |d| d.path())
    }

    /// Unmounts the root; the change stays in `diff`.
    fn unmount(&mut self) -> Result<()> {
        if std::mem::take(&mut self.mounted) {
            crate::overlay::unmount(&self.root)?;
        }
        Ok(())
    }

    /// Unmounts and hands over the directory (its `work` and mount point
    /// removed): what [`crate::layers::LayerStore`] installs.
    fn seal(mut self) -> Result<tempfile::TempDir> {
        self.unmount()?;
        let dir = self
            .dir
            .take()
            .ok_or_else(|| StoreError::Invalid("a scratch layer was sealed twice".to_owned()))?;
        for sub in ["work", "merged"] {
            let p = dir.path().join(sub);
            match fs::remove_dir_all(&p) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(StoreError::io("removing", p, e)),
            }
        }
        Ok(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Err(e) = self.unmount() {
            tracing::warn!(error = %e, "unmounting a scratch layer");
        }
    }
}

/// What a commit records.
#[derive(Debug)]
pub struct Commit {
    /// The image the new one is made from (`None`: from scratch).
    pub parent: Option<Digest>,
    /// The new image's config. Its `rootfs.diff_ids` are the parent's; the
    /// commit appends the new layer's. History is the caller's.
    pub config: ImageConfig,
    /// The change, if any (`None`: a metadata-only step).
    pub change: Option<Scratch>,
    /// Whether a change that holds no entry still becomes a layer (Docker's
    /// classic builder makes one for every RUN).
    pub keep_empty: bool,
}

/// What a commit made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    pub id: Digest,
    /// Whether a layer was added (the history entry's `empty_layer` is the
    /// opposite).
    pub layer: bool,
}

impl Store {
    /// A scratch layer over `parent`'s layers (none: an empty root).
    pub fn scratch(&self, parent: Option<&Digest>) -> Result<Scratch> {
        let chain = match parent {
            Some(p) => self.chain(p)?,
            None => Vec::new(),
        };
        let dir = self.layers.temp_dir()?;
        let diff = dir.path().join("diff");
        let mut scratch = Scratch {
            root: diff.clone(),
            dir: Some(dir),
            mounted: false,
            chain,
        };
        let work = scratch.dir_path().join("work");
        let merged = scratch.dir_path().join("merged");
        for d in [&diff, &work, &merged] {
            fs::create_dir(d).map_err(|e| StoreError::io("creating", d, e))?;
        }
        if !scratch.chain.is_empty() {
            self.layers
                .mount_volatile(&scratch.chain, (&diff, &work), &merged)?;
            scratch.root = merged;
            scratch.mounted = true;
        }
        Ok(scratch)
    }

    /// Records a new image: the parent's layers, the change's layer, the
    /// config. Anything this commit created is removed if it fails.
    pub fn commit(&self, c: Commit) -> Result<Committed> {
        let parent_chain = match &c.parent {
            Some(p) => self.chain(p)?,
            None => Vec::new(),
        };
        let mut config = c.config;
        if chain_ids(&config.rootfs.diff_ids) != parent_chain {
            return Err(StoreError::Invalid(
                "a commit's config must list its parent's layers".to_owned(),
            ));
        }
        let mut created = Created::default();
        let result = (|| {
            let new_layer = match c.change {
                Some(s) => self.commit_layer(s, parent_chain.last(), c.keep_empty, &mut created)?,
                None => None,
            };
            if let Some(row) = &new_layer {
                config.rootfs.diff_ids.push(row.diff_id.parse()?);
            }
            let bytes = config.to_bytes();
            let id = Digest::sha256(&bytes);
            if !self.blobs.contains(&id) {
                self.blobs.put_bytes(&bytes)?;
                created.blobs.push(id.clone());
            }
            let chain = chain_ids(&config.rootfs.diff_ids);
            self.record_commit(&id, &config, &chain, new_layer.as_ref(), c.parent.as_ref())?;
            Ok(Committed {
                id,
                layer: new_layer.is_some(),
            })
        })();
        self.undo_on_error(result, &created)
    }

    /// Turns a scratch layer into a stored layer: its diff as a tar blob,
    /// its directory installed under the ChainID. `None` when the change is
    /// empty and empty changes are not kept.
    fn commit_layer(
        &self,
        scratch: Scratch,
        parent: Option<&Digest>,
        keep_empty: bool,
        created: &mut Created,
    ) -> Result<Option<LayerRow>> {
        let dir = scratch.seal()?;
        let diff = dir.path().join("diff");
        if !keep_empty && is_empty_dir(&diff)? {
            return Ok(None);
        }
        let (diff_id, blob_size, size) = self.store_diff(&diff, created)?;
        let chain = chain_id(parent, &diff_id);
        if !self.layers.contains(&chain) {
            self.layers.install(dir, &chain)?;
            created.layers.push(chain.clone());
        }
        Ok(Some(LayerRow {
            chain_id: chain.to_string(),
            diff_id: diff_id.to_string(),
            parent: parent.map(ToString::to_string),
            size,
            blob: diff_id.to_string(),
            blob_size,
            media_type: media::OCI_LAYER.to_owned(),
            refs: 0,
        }))
    }

    /// Writes the tar of `upper` as an uncompressed blob, whose digest is
    /// the DiffID; returns (that digest, the blob's size, content bytes).
    fn store_diff(&self, upper: &Path, created: &mut Created) -> Result<(Digest, u64, u64)> {
        let mut tmp = self.blobs.temp()?;
        let mut hashed = HashingWriter::new(
            io::BufWriter::with_capacity(1 << 20, tmp.as_file_mut()),
            Algorithm::Sha256,
        );
        let size = crate::diff::write_diff(upper, &mut hashed)?;
        let (diff_id, blob_size, out) = hashed.into_parts();
        out.into_inner()
            .map_err(|e| StoreError::io("writing the diff of", upper, e.into_error()))?;
        created.commit_blob(&self.blobs, tmp, &diff_id)?;
        Ok((diff_id, blob_size, size))
    }

    fn record_commit(
        &self,
        id: &Digest,
        config: &ImageConfig,
        chain: &[Digest],
        new_layer: Option<&LayerRow>,
        parent: Option<&Digest>,
    ) -> Result<()> {
        let conn = self.conn();
        let tx = db::write_tx(&conn, "a commit")?;
        if let Some(row) = new_layer {
            db::insert_layer(&tx, row)?;
        }
        let key = id.to_string();
        let mut size = 0;
        for c in chain {
            size += db::layer(&tx, &c.to_string())?.map_or(0, |r| r.size);
        }
        let inserted = tx
            .execute(
                "INSERT OR IGNORE INTO images (id, created, size, added_at, parent) VALUES (?1, ?2, ?3, ?4, ?5)",
                rusqlite::params![
                    key,
                    config.created,
                    size,
                    chrono::Utc::now().timestamp(),
                    parent.map(ToString::to_string)
                ],
            )
            .map_err(StoreError::db(format!("recording image {id}")))?;
        if inserted == 1 {
            for (i, c) in chain.iter().enumerate() {
                let c = c.to_string();
                tx.execute(
                    "INSERT INTO image_layers (image_id, idx, chain_id) VALUES (?1, ?2, ?3)",
                    rusqlite::params![key, i, c],
                )
                .map_err(StoreError::db(format!("recording layers of {id}")))?;
                tx.execute(
                    "UPDATE layers SET refs = refs + 1 WHERE chain_id = ?1",
                    [&c],
                )
                .map_err(StoreError::db(format!("counting references to {c}")))?;
            }
        }
        tx.commit().map_err(StoreError::db("committing a commit"))
    }
}

fn is_empty_dir(p: &Path) -> Result<bool> {
    let mut entries = fs::read_dir(p).map_err(|e| StoreError::io("listing", p, e))?;
    Ok(entries.next().is_none())
}

/// A read-only view of an image's root filesystem (a `COPY --from`
/// source), unmounted and removed when dropped.
#[derive(Debug)]
pub struct View {
    dir: tempfile::TempDir,
    mounted: bool,
}

impl View {
    /// The image's root filesystem.
    pub fn root(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for View {
    fn drop(&mut self) {
        if self.mounted {
            if let Err(e) = crate::overlay::unmount(self.dir.path()) {
                tracing::warn!(error = %e, "unmounting an image view");
            }
        }
    }
}

impl Store {
    /// Mounts a read-only view of `image`'s root filesystem.
    pub fn view(&self, image: &Digest) -> Result<View> {
        let chain = self.chain(image)?;
        let ingest = self.root.join("ingest");
        let dir = tempfile::Builder::new()
            .prefix("tmp-view-")
            .tempdir_in(&ingest)
            .map_err(|e| StoreError::io("creating a view mount point in", &ingest, e))?;
        let mounted = !chain.is_empty();
        if mounted {
            self.layers.mount(&chain, None, dir.path())?;
        }
        Ok(View { dir, mounted })
    }
}

impl Store {
    /// A scratch layer holding a directory that is already a change: a
    /// stopped container's upper dir, moved (not copied) into the layer
    /// store. It must be on the store's filesystem.
    pub fn adopt(&self, upper: &Path) -> Result<Scratch> {
        let dir = self.layers.temp_dir()?;
        let diff = dir.path().join("diff");
        fs::rename(upper, &diff)
            .map_err(|e| StoreError::io("moving a change into the layer store", upper, e))?;
        Ok(Scratch {
            root: diff,
            dir: Some(dir),
            mounted: false,
            chain: Vec::new(),
        })
    }
}

impl Store {
    /// A scratch layer holding a copy of `upper`, a live container's upper
    /// dir (`docker commit`): the copy goes through the layer tar format
    /// and back, so whiteouts and opaque directories stay overlay's, and
    /// the container keeps its own files.
    pub fn copy_change(&self, upper: &Path) -> Result<Scratch> {
        let dir = self.layers.temp_dir()?;
        let diff = dir.path().join("diff");
        fs::create_dir(&diff).map_err(|e| StoreError::io("creating", &diff, e))?;
        let (reader, writer) =
            io::pipe().map_err(|e| StoreError::io("making a pipe for", upper, e))?;
        let (written, read) = std::thread::scope(|s| {
            let w = s.spawn(move || crate::diff::write_diff(upper, writer));
            let read = crate::unpack::unpack(
                "the container's changes",
                reader,
                &diff,
                crate::unpack::UnpackOptions::default(),
            );
            (w.join(), read)
        });
        read?;
        written
            .map_err(|_| StoreError::Invalid("copying a change: the reader failed".to_owned()))??;
        Ok(Scratch {
            root: diff,
            dir: Some(dir),
            mounted: false,
            chain: Vec::new(),
        })
    }

    /// Records an image whose new layer, if any, the store already has on
    /// top of the parent's (a step restored from a `--cache-from` image):
    /// nothing is written but the config and the records.
    pub fn commit_existing(
        &self,
        parent: &Digest,
        mut config: ImageConfig,
        diff_id: Option<&Digest>,
    ) -> Result<Digest> {
        let parent_chain = self.chain(parent)?;
        if chain_ids(&config.rootfs.diff_ids) != parent_chain {
            return Err(StoreError::Invalid(
                "a commit's config must list its parent's layers".to_owned(),
            ));
        }
        if let Some(d) = diff_id {
            let chain = chain_id(parent_chain.last(), d);
            if db::layer(&self.conn(), &chain.to_string())?.is_none() {
                return Err(StoreError::Invalid(format!(
                    "layer {d} is not in the store on top of {parent}"
                )));
            }
            config.rootfs.diff_ids.push(d.clone());
        }
        let bytes = config.to_bytes();
        let id = Digest::sha256(&bytes);
        let mut created = Created::default();
        let result = (|| {
            if !self.blobs.contains(&id) {
                self.blobs.put_bytes(&bytes)?;
                created.blobs.push(id.clone());
            }
            let chain = chain_ids(&config.rootfs.diff_ids);
            self.record_commit(&id, &config, &chain, None, Some(parent))?;
            Ok(id)
        })();
        self.undo_on_error(result, &created)
    }
}
