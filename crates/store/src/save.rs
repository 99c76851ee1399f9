//! Saving images as `docker save` or OCI layout archives. Each blob is
//! verified as it streams out; blobs shared by several images are written
//! once.

use std::collections::BTreeMap;
use std::io::{Read, Write};

use berth_image::archive::{
    write_archive, ArchiveImage, BlobSource, Format, LayerBlob, MAX_DOCUMENT,
};
use berth_image::{Digest, ImageError, Reference};

use crate::db;
use crate::error::{Result, StoreError};
use crate::store::{resolve, Store};
use crate::verify::CheckedBlob;

/// Blob sizes known from the records, for verified streaming.
struct Source<'a> {
    store: &'a Store,
    sizes: BTreeMap<Digest, u64>,
}

impl BlobSource for Source<'_> {
    fn open(&self, digest: &Digest) -> Result<Box<dyn Read + '_>, ImageError> {
        let file = self.store.blobs.open_blob(digest)?;
        let size = self.sizes.get(digest).copied().unwrap_or(0);
        Ok(Box::new(CheckedBlob::new(file, digest.clone(), size)))
    }
}

impl Store {
    /// Writes the named images to `out`. A name that is a reference puts
    /// that tag in the archive; an ID puts none (as `docker save` does).
    ///
    /// The images are held while the archive streams out, without the
    /// store's lock: a slow reader (`berth save | berth load`) blocks no
    /// other operation, and no removal or GC pulls blobs from under it.
    pub fn save(&self, names: &[&str], format: Format, out: impl Write) -> Result<()> {
        let holder = Self::transient_holder("save");
        let result = self.save_held(&holder, names, format, out);
        let released = self.release(&holder);
        result.and(released)
    }

    fn save_held(
        &self,
        holder: &str,
        names: &[&str],
        format: Format,
        out: impl Write,
    ) -> Result<()> {
        let conn = self.conn();
        let mut images: Vec<ArchiveImage> = Vec::new();
        for name in names {
            let id = resolve(&conn, name)?;
            let tag = tag_named(name, &id);
            if let Some(existing) = images.iter_mut().find(|i| i.config == id) {
                existing.tags.extend(tag);
                continue;
            }
            let mut layers = Vec::new();
            for chain in db::image_chain(&conn, &id.to_string())? {
                let row = db::layer(&conn, &chain)?.ok_or_else(|| {
                    StoreError::Invalid(format!(
                        "image {id} names layer {chain}, which is not recorded"
                    ))
                })?;
                layers.push(LayerBlob {
                    digest: row.blob.parse()?,
                    size: row.blob_size,
                    media_type: Some(row.media_type),
                });
            }
            conn.execute(
                "INSERT OR IGNORE INTO holds (holder, kind, target) VALUES (?1, 'image', ?2)",
                [holder, &id.to_string()],
            )
            .map_err(StoreError::db("holding an image being saved"))?;
            images.push(ArchiveImage {
                config: id,
                layers,
                tags: tag.into_iter().collect(),
            });
        }
        drop(conn);
        let configs = images
            .iter()
            .map(|i| self.blobs.read(&i.config, MAX_DOCUMENT))
            .collect::<Result<Vec<_>>>()?;
        let sizes = images
            .iter()
            .flat_map(|i| &i.layers)
            .map(|l| (l.digest.clone(), l.size))
            .collect();
        let source = Source { store: self, sizes };
        write_archive(format, out, &images, &configs, &source)?;
        Ok(())
    }
}

/// The full reference a name gives, when it is one (not an ID).
fn tag_named(name: &str, id: &Digest) -> Option<String> {
    let looks_like_id = id.hex().starts_with(name.trim_start_matches("sha256:"));
    if looks_like_id {
        return None;
    }
    name.parse::<Reference>()
        .ok()
        .map(|r| r.with_default_tag().to_string())
}
