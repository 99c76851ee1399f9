//! Loading image archives (`docker load`): every blob is stored verified,
//! every layer not yet present is unpacked (in parallel), then one
//! transaction records images, layers and tags. Any failure removes what
//! this load created: the store is as before.

use std::collections::{BTreeMap, HashSet};
use std::io::{BufRead, BufReader, Read};
use std::sync::Mutex;

use berth_image::archive::{read_archive, ArchiveImage, BlobSink, MAX_DOCUMENT};
use berth_image::chain::chain_ids;
use berth_image::config::ImageConfig;
use berth_image::media::{self, Compression};
use berth_image::{Digest, ImageError};
use rusqlite::Transaction;

use crate::blobs::BlobStore;
use crate::db::{self, LayerRow};
use crate::error::{Result, StoreError};
use crate::store::Store;

/// An image a load or import recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loaded {
    /// The image ID (config digest).
    pub id: Digest,
    /// The references now pointing at it.
    pub tags: Vec<String>,
}

/// A layer to record: its row and, when it is new, that it was unpacked
/// by this operation.
#[derive(Debug, Clone)]
pub(crate) struct PlannedLayer {
    pub row: LayerRow,
    pub blob: Digest,
    pub new: bool,
}

/// An image ready to be recorded.
#[derive(Debug, Clone)]
pub(crate) struct PlannedImage {
    pub id: Digest,
    pub created: Option<String>,
    pub layers: Vec<PlannedLayer>,
    pub tags: Vec<String>,
}

/// What an operation created, to undo on failure.
#[derive(Debug, Default)]
pub(crate) struct Created {
    pub blobs: Vec<Digest>,
    pub layers: Vec<Digest>,
}

impl Created {
    /// Moves a staged blob in unless the store has it already; a blob
    /// moved in is recorded, to go if the operation fails.
    pub fn commit_blob(
        &mut self,
        blobs: &BlobStore,
        tmp: tempfile::NamedTempFile,
        digest: &Digest,
    ) -> Result<()> {
        if !blobs.contains(digest) {
            blobs.commit(tmp, digest)?;
            self.blobs.push(digest.clone());
        }
        Ok(())
    }
}

/// The first phase of a load, without the store's lock (a slow input,
/// such as `berth save | berth load`, must not block other operations):
/// blobs are hashed into temp files; blobs the store has are noted.
struct Staging<'a> {
    blobs: &'a BlobStore,
    staged: Vec<(Digest, tempfile::NamedTempFile)>,
    present: Vec<Digest>,
}

impl BlobSink for Staging<'_> {
    fn put(
        &mut self,
        what: &str,
        content: &mut dyn Read,
        expected: Option<&Digest>,
    ) -> Result<(Digest, u64), ImageError> {
        if let Some(d) = expected {
            if let Some((_, tmp)) = self.staged.iter().find(|(s, _)| s == d) {
                let len = tmp.as_file().metadata().map_or(0, |m| m.len());
                return Ok((d.clone(), len));
            }
            if let Ok(meta) = std::fs::metadata(self.blobs.path(d)) {
                self.present.push(d.clone());
                return Ok((d.clone(), meta.len()));
            }
        }
        let (tmp, digest, size) = self.blobs.stage(what, content, expected, None)?;
        if !self.staged.iter().any(|(s, _)| *s == digest) {
            self.staged.push((digest.clone(), tmp));
        }
        Ok((digest, size))
    }

    fn get(&self, digest: &Digest, limit: u64) -> Result<Vec<u8>, ImageError> {
        let Some((_, tmp)) = self.staged.iter().find(|(s, _)| s == digest) else {
            return Ok(self.blobs.read(digest, limit)?);
        };
        // Hashed moments ago, by this load.
        let mut buf = Vec::new();
        std::fs::File::open(tmp.path())
            .and_then(|f| f.take(limit + 1).read_to_end(&mut buf))
            .map_err(|e| StoreError::io("reading a staged blob", tmp.path().to_owned(), e))?;
        if buf.len() as u64 > limit {
            return Err(
                StoreError::Invalid(format!("blob {digest} is larger than {limit} bytes")).into(),
            );
        }
        Ok(buf)
    }
}

impl Store {
    /// Loads a `docker save` or OCI layout archive.
    pub fn load(&self, input: impl Read) -> Result<Vec<Loaded>> {
        let mut staging = Staging {
            blobs: &self.blobs,
            staged: Vec::new(),
            present: Vec::new(),
        };
        // Temp files of a failed read go with `staging`.
        let images = read_archive(input, &mut staging)?;
        let conn = self.conn();
        let mut created = Created::default();
        let result = (|| {
            for (digest, tmp) in staging.staged {
                created.commit_blob(&self.blobs, tmp, &digest)?;
            }
            if let Some(gone) = staging.present.iter().find(|d| !self.blobs.contains(d)) {
                return Err(StoreError::Conflict(format!(
                    "blob {gone} was removed while the archive was read; load it again"
                )));
            }
            // Blobs hashed moments ago by this load need no second hash.
            let fresh: HashSet<Digest> = created.blobs.iter().cloned().collect();
            let planned = images
                .iter()
                .map(|img| self.plan(&conn, img))
                .collect::<Result<Vec<_>>>()?;
            let sizes = self.unpack_new(&planned, &mut created.layers, &fresh)?;
            self.record(&conn, &planned, &sizes)
        })();
        drop(conn);
        self.undo_on_error(result, &created)
    }

    /// Records an image whose blobs are all stored already (a registry
    /// pull verified each as it came): its new layers are unpacked, then
    /// one transaction records it and its tags.
    pub fn record_pulled(&self, img: &ArchiveImage, repo_digest: Option<&str>) -> Result<Loaded> {
        let conn = self.conn();
        let mut created = Created::default();
        let result = (|| {
            let planned = vec![self.plan(&conn, img)?];
            // Each blob was hashed as it was ingested.
            let fresh: HashSet<Digest> = img.layers.iter().map(|l| l.digest.clone()).collect();
            let sizes = self.unpack_new(&planned, &mut created.layers, &fresh)?;
            let loaded = self.record(&conn, &planned, &sizes)?;
            if let Some(name) = repo_digest {
                conn.execute(
                    "INSERT OR REPLACE INTO repo_digests (name, image_id) VALUES (?1, ?2)",
                    [name, &img.config.to_string()],
                )
                .map_err(StoreError::db(format!("recording {name}")))?;
            }
            Ok(loaded)
        })();
        drop(conn);
        let mut loaded = self.undo_on_error(result, &created)?;
        loaded
            .pop()
            .ok_or_else(|| StoreError::Invalid("a pull recorded no image".to_owned()))
    }

    /// Unpacks a pulled layer as soon as its blob is in (the blob was
    /// verified while it streamed), outside the store's lock; the pull
    /// records it with its image. A crash before that leaves a layer no
    /// record names, removed at the next start.
    /// True when this call unpacked it (see [`Store::discard_unrecorded`]).
    pub fn unpack_pulled(&self, chain: &Digest, diff_id: &Digest, blob: &Digest) -> Result<bool> {
        if self.layers.contains(chain) {
            return Ok(false);
        }
        self.unpack_one(chain, diff_id, blob, false)
            .map(|unpacked| unpacked.is_some())
    }

    /// Removes layers a failed pull unpacked that no image records. Under
    /// the store's lock, as a pull records: a pull that found a layer
    /// there either recorded it first (it stays) or unpacks it again.
    pub fn discard_unrecorded(&self, chains: &[Digest]) {
        let conn = self.conn();
        for c in chains {
            if let Ok(None) = db::layer(&conn, &c.to_string()) {
                if let Err(e) = self.layers.remove(c) {
                    tracing::warn!(layer = %c, error = %e, "removing a pulled layer; start-up retries");
                }
            }
        }
    }

    /// Removes what a failed operation created; passes the result on.
    pub(crate) fn undo_on_error<T>(&self, result: Result<T>, created: &Created) -> Result<T> {
        if result.is_err() {
            for chain in &created.layers {
                if let Err(e) = self.layers.remove(chain) {
                    tracing::warn!(layer = %chain, error = %e, "cleaning up after a failed load");
                }
            }
            for d in &created.blobs {
                if let Err(e) = self.blobs.remove(d) {
                    tracing::warn!(blob = %d, error = %e, "cleaning up after a failed load");
                }
            }
        }
        result
    }

    /// Checks an archive image against its config and decides which layers
    /// need unpacking.
    fn plan(&self, conn: &rusqlite::Connection, img: &ArchiveImage) -> Result<PlannedImage> {
        let what = format!("config {}", img.config);
        let config = ImageConfig::parse(&self.blobs.read(&img.config, MAX_DOCUMENT)?, &what)?;
        let chains = chain_ids(&config.rootfs.diff_ids);
        let mut layers = Vec::with_capacity(chains.len());
        for (i, (chain, blob)) in chains.iter().zip(&img.layers).enumerate() {
            let diff_id = &config.rootfs.diff_ids[i];
            if let Some(row) = db::layer(conn, &chain.to_string())? {
                let blob = row.blob.parse()?;
                layers.push(PlannedLayer {
                    row,
                    blob,
                    new: false,
                });
                continue;
            }
            let media_type = self.layer_media_type(&blob.digest)?;
            let row = LayerRow {
                chain_id: chain.to_string(),
                diff_id: diff_id.to_string(),
                parent: i.checked_sub(1).map(|p| chains[p].to_string()),
                size: 0,
                blob: blob.digest.to_string(),
                blob_size: blob.size,
                media_type,
                refs: 0,
            };
            layers.push(PlannedLayer {
                row,
                blob: blob.digest.clone(),
                new: true,
            });
        }
        Ok(PlannedImage {
            id: img.config.clone(),
            created: config.created,
            layers,
            tags: img.tags.clone(),
        })
    }

    /// The OCI media type a stored layer blob really has, by its magic.
    pub(crate) fn layer_media_type(&self, blob: &Digest) -> Result<String> {
        let file = self.blobs.open_blob(blob)?;
        let mut r = BufReader::with_capacity(16, file);
        let head = r
            .fill_buf()
            .map_err(|e| StoreError::io("reading blob", self.blobs.path(blob), e))?;
        Ok(match media::sniff_compression(head) {
            Compression::None => media::OCI_LAYER,
            Compression::Gzip => media::OCI_LAYER_GZIP,
            Compression::Zstd => media::OCI_LAYER_ZSTD,
        }
        .to_owned())
    }

    /// Unpacks the new layers of all planned images, `parallelism` at a
    /// time; returns their unpacked sizes by ChainID. Blobs not in `fresh`
    /// (hashed by this operation) are verified as they are read.
    pub(crate) fn unpack_new(
        &self,
        planned: &[PlannedImage],
        created: &mut Vec<Digest>,
        fresh: &HashSet<Digest>,
    ) -> Result<BTreeMap<String, u64>> {
        let mut jobs: BTreeMap<String, (Digest, Digest, Digest)> = BTreeMap::new();
        for l in planned.iter().flat_map(|p| &p.layers).filter(|l| l.new) {
            let chain: Digest = l.row.chain_id.parse()?;
            let diff: Digest = l.row.diff_id.parse()?;
            jobs.entry(l.row.chain_id.clone())
                .or_insert((chain, diff, l.blob.clone()));
        }
        let queue = Mutex::new(jobs.into_values().collect::<Vec<_>>());
        let results = Mutex::new(Vec::new());
        std::thread::scope(|s| {
            for _ in 0..self.opts.parallelism {
                s.spawn(|| loop {
                    let job = queue
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .pop();
                    let Some((chain, diff, blob)) = job else {
                        break;
                    };
                    let r = self.unpack_one(&chain, &diff, &blob, !fresh.contains(&blob));
                    results
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .push((chain, r));
                });
            }
        });
        let mut first_err = None;
        let mut sizes = BTreeMap::new();
        for (chain, r) in results
            .into_inner()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
        {
            match r {
                Ok(Some(size)) => {
                    created.push(chain.clone());
                    sizes.insert(chain.to_string(), size);
                }
                // Unpacked already, not by this load: a pull unpacks as
                // it downloads, and loads may race.
                Ok(None) => {
                    if let Some(size) = self.layers.unpacked_size(&chain) {
                        sizes.insert(chain.to_string(), size);
                    }
                }
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        if let Some(e) = first_err {
            return Err(e);
        }
        Ok(sizes)
    }

    fn unpack_one(
        &self,
        chain: &Digest,
        diff: &Digest,
        blob: &Digest,
        verify: bool,
    ) -> Result<Option<u64>> {
        let file = self.blobs.open_blob(blob)?;
        if !verify {
            return Ok(self.layers.create(chain, diff, file)?.map(|u| u.size));
        }
        let mut verified = crate::verify::VerifyingReader::new(file, blob.clone());
        let unpacked = self.layers.create(chain, diff, &mut verified)?;
        // A corrupt blob can still decompress to the right tar (garbage
        // after the end): it is never used, whatever it unpacked to.
        if let Err(e) = verified.finish() {
            if unpacked.is_some() {
                self.layers.remove(chain)?;
            }
            return Err(e);
        }
        Ok(unpacked.map(|u| u.size))
    }

    /// One transaction: layers, images, their layer lists and reference
    /// counts, tags.
    pub(crate) fn record(
        &self,
        conn: &rusqlite::Connection,
        planned: &[PlannedImage],
        sizes: &BTreeMap<String, u64>,
    ) -> Result<Vec<Loaded>> {
        let tx = db::write_tx(conn, "a load")?;
        let mut out = Vec::new();
        for img in planned {
            record_image(&tx, img, sizes)?;
            out.push(Loaded {
                id: img.id.clone(),
                tags: img.tags.clone(),
            });
        }
        tx.commit().map_err(StoreError::db("committing a load"))?;
        Ok(out)
    }
}

fn record_image(
    tx: &Transaction<'_>,
    img: &PlannedImage,
    sizes: &BTreeMap<String, u64>,
) -> Result<()> {
    let id = img.id.to_string();
    let mut total = 0;
    for l in &img.layers {
        let mut row = l.row.clone();
        if let Some(s) = sizes.get(&row.chain_id) {
            row.size = *s;
        }
        total += row.size;
        db::insert_layer(tx, &row)?;
    }
    let now = chrono::Utc::now().timestamp();
    let inserted = tx
        .execute(
            "INSERT OR IGNORE INTO images (id, created, size, added_at) VALUES (?1, ?2, ?3, ?4)",
            rusqlite::params![id, img.created, total, now],
        )
        .map_err(StoreError::db(format!("recording image {id}")))?;
    if inserted == 1 {
        for (i, l) in img.layers.iter().enumerate() {
            tx.execute(
                "INSERT INTO image_layers (image_id, idx, chain_id) VALUES (?1, ?2, ?3)",
                rusqlite::params![id, i, l.row.chain_id],
            )
            .map_err(StoreError::db(format!("recording layers of {id}")))?;
            tx.execute(
                "UPDATE layers SET refs = refs + 1 WHERE chain_id = ?1",
                [&l.row.chain_id],
            )
            .map_err(StoreError::db(format!(
                "counting references to {}",
                l.row.chain_id
            )))?;
        }
    }
    for tag in &img.tags {
        tx.execute(
            "INSERT INTO tags (name, image_id, added_at) VALUES (?1, ?2, ?3)
             ON CONFLICT(name) DO UPDATE SET image_id = excluded.image_id, added_at = excluded.added_at",
            rusqlite::params![tag, id, now],
        )
        .map_err(StoreError::db(format!("tagging {id} as {tag}")))?;
    }
    Ok(())
}
