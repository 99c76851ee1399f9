//! Writing `docker save` archives and OCI image layouts.
//!
//! Both writers produce an OCI layout (`oci-layout`, `index.json`, blobs);
//! the docker writer adds `manifest.json`, `repositories` and the legacy
//! per-layer directories, as Docker 25+ does, so one archive serves old
//! and new readers. Blobs shared by several images are written once.
//! Entries are written in a fixed order with fixed metadata, so the same
//! images give the same archive bytes.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Read, Write};

use serde_json::json;

use super::{ArchiveImage, BlobSource, Exact, Format, LayerBlob};
use crate::digest::Digest;
use crate::error::{ImageError, Result};
use crate::manifest::{Descriptor, Manifest};
use crate::media::{self, Compression};
use crate::reference::Reference;

/// Writes `images` in `format`; shared blobs are written once.
pub fn write_archive(
    format: Format,
    out: impl Write,
    images: &[ArchiveImage],
    configs: &[Vec<u8>],
    source: &dyn BlobSource,
) -> Result<()> {
    let mut w = Writer::new(out);
    w.oci_part(images, configs, source)?;
    if format == Format::Docker {
        docker_part(&mut w, images)?;
    }
    w.finish()
}

/// `manifest.json`, `repositories` and the legacy layer directories.
fn docker_part<W: Write>(w: &mut Writer<W>, images: &[ArchiveImage]) -> Result<()> {
    let mut entries = Vec::new();
    let mut repositories: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for img in images {
        let top = w.legacy_layers(img)?;
        for tag in &img.tags {
            if let Ok(r) = tag.parse::<Reference>() {
                if let (Some(t), Some(top)) = (r.tag(), &top) {
                    let repo = repositories.entry(r.familiar_repository()).or_default();
                    repo.insert(t.to_owned(), top.clone());
                }
            }
        }
        entries.push(json!({
            "Config": blob_path(&img.config),
            "RepoTags": familiar_tags(&img.tags),
            "Layers": img.layers.iter().map(|l| blob_path(&l.digest)).collect::<Vec<_>>(),
        }));
    }
    w.bytes("manifest.json", &to_json(&entries))?;
    w.bytes("repositories", &to_json(&repositories))
}

fn blob_path(d: &Digest) -> String {
    format!("blobs/{}/{}", d.algorithm().name(), d.hex())
}

fn familiar_tags(tags: &[String]) -> Vec<String> {
    tags.iter()
        .map(|t| {
            t.parse::<Reference>()
                .map_or_else(|_| t.clone(), |r| r.familiar())
        })
        .collect()
}

fn to_json(v: &impl serde::Serialize) -> Vec<u8> {
    // Plain maps and strings always serialise.
    serde_json::to_vec(v).unwrap_or_default()
}

/// The OCI media type for a layer blob the store holds.
fn oci_layer_type(l: &LayerBlob) -> &'static str {
    let compression = l.media_type.as_deref().and_then(media::layer_compression);
    match compression.unwrap_or(Compression::None) {
        Compression::None => media::OCI_LAYER,
        Compression::Gzip => media::OCI_LAYER_GZIP,
        Compression::Zstd => media::OCI_LAYER_ZSTD,
    }
}

/// The OCI manifest of an image.
pub fn oci_manifest(img: &ArchiveImage, config: &[u8]) -> Manifest {
    let layers = img
        .layers
        .iter()
        .map(|l| {
            let mut d = Descriptor::of(oci_layer_type(l), &[]);
            d.digest = l.digest.clone();
            d.size = l.size;
            d
        })
        .collect();
    let mut cfg = Descriptor::of(media::OCI_CONFIG, config);
    cfg.digest = img.config.clone();
    Manifest {
        schema_version: 2,
        media_type: Some(media::OCI_MANIFEST.to_owned()),
        config: cfg,
        layers,
        annotations: BTreeMap::new(),
    }
}

struct Writer<W: Write> {
    tar: tar::Builder<W>,
    written: BTreeSet<String>,
}

impl<W: Write> Writer<W> {
    fn new(out: W) -> Self {
        let mut tar = tar::Builder::new(out);
        tar.mode(tar::HeaderMode::Deterministic);
        Self {
            tar,
            written: BTreeSet::new(),
        }
    }

    /// Blobs, `oci-layout` and `index.json`; returns the manifest descriptors.
    fn oci_part(
        &mut self,
        images: &[ArchiveImage],
        configs: &[Vec<u8>],
        source: &dyn BlobSource,
    ) -> Result<Vec<Descriptor>> {
        self.bytes("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)?;
        self.dir("blobs/")?;
        self.dir("blobs/sha256/")?;
        let mut index = Vec::new();
        for (img, config) in images.iter().zip(configs) {
            self.blob(&img.config, config)?;
            for l in &img.layers {
                self.stream_blob(l, source)?;
            }
            let manifest = to_json(&oci_manifest(img, config));
            let desc = Descriptor::of(media::OCI_MANIFEST, &manifest);
            self.blob(&desc.digest, &manifest)?;
            index.extend(index_entries(&desc, &img.tags));
        }
        let doc = json!({
            "schemaVersion": 2,
            "mediaType": media::OCI_INDEX,
            "manifests": index,
        });
        self.bytes("index.json", &to_json(&doc))?;
        Ok(index)
    }

    /// `<v1 id>/{VERSION,json,layer.tar}` per layer; returns the top id.
    fn legacy_layers(&mut self, img: &ArchiveImage) -> Result<Option<String>> {
        let mut parent: Option<String> = None;
        for l in &img.layers {
            let seed = format!("{} {}", parent.as_deref().unwrap_or(""), l.digest);
            let id = Digest::sha256(seed.as_bytes()).hex().to_owned();
            if !self.written.contains(&format!("{id}/")) {
                self.dir(&format!("{id}/"))?;
                self.bytes(&format!("{id}/VERSION"), b"1.0")?;
                let mut v1 = json!({"id": id, "created": "1970-01-01T00:00:00Z", "os": "linux"});
                if let Some(p) = &parent {
                    v1["parent"] = json!(p);
                }
                self.bytes(&format!("{id}/json"), &to_json(&v1))?;
                self.symlink(
                    &format!("{id}/layer.tar"),
                    &format!("../{}", blob_path(&l.digest)),
                )?;
            }
            parent = Some(id);
        }
        Ok(parent)
    }

    fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_size(size);
        h.set_mtime(0);
        h.set_uid(0);
        h.set_gid(0);
        h
    }

    fn dir(&mut self, path: &str) -> Result<()> {
        let mut h = Self::header(tar::EntryType::Directory, 0o755, 0);
        self.append(&mut h, path, io::empty())
    }

    fn symlink(&mut self, path: &str, target: &str) -> Result<()> {
        let mut h = Self::header(tar::EntryType::Symlink, 0o777, 0);
        h.set_link_name(target)
            .map_err(|e| ImageError::io(format!("archive link {path}"), e))?;
        self.append(&mut h, path, io::empty())
    }

    fn bytes(&mut self, path: &str, data: &[u8]) -> Result<()> {
        let mut h = Self::header(tar::EntryType::Regular, 0o644, data.len() as u64);
        self.append(&mut h, path, data)
    }

    fn blob(&mut self, digest: &Digest, data: &[u8]) -> Result<()> {
        let path = blob_path(digest);
        if self.written.contains(&path) {
            return Ok(());
        }
        self.bytes(&path, data)
    }

    fn stream_blob(&mut self, l: &LayerBlob, source: &dyn BlobSource) -> Result<()> {
        let path = blob_path(&l.digest);
        if self.written.contains(&path) {
            return Ok(());
        }
        let short = "blob shorter than its recorded size";
        let reader = Exact::new(source.open(&l.digest)?, l.size, short);
        let mut h = Self::header(tar::EntryType::Regular, 0o644, l.size);
        self.append(&mut h, &path, reader)
    }

    fn append(&mut self, h: &mut tar::Header, path: &str, data: impl Read) -> Result<()> {
        self.tar
            .append_data(h, path, data)
            .map_err(|e| ImageError::io(format!("writing {path} to the archive"), e))?;
        self.written.insert(path.to_owned());
        Ok(())
    }

    fn finish(self) -> Result<()> {
        let mut out = self
            .tar
            .into_inner()
            .map_err(|e| ImageError::io("finishing the archive", e))?;
        out.flush()
            .map_err(|e| ImageError::io("flushing the archive", e))
    }
}

/// One index entry per tag (Docker's layout), or one untagged entry.
fn index_entries(desc: &Descriptor, tags: &[String]) -> Vec<Descriptor> {
    let refs: Vec<Reference> = tags.iter().filter_map(|t| t.parse().ok()).collect();
    if refs.is_empty() {
        return vec![desc.clone()];
    }
    refs.iter()
        .map(|r| {
            let mut d = desc.clone();
            d.annotations
                .insert("io.containerd.image.name".to_owned(), r.to_string());
            if let Some(tag) = r.tag() {
                d.annotations.insert(
                    "org.opencontainers.image.ref.name".to_owned(),
                    tag.to_owned(),
                );
            }
            d
        })
        .collect()
}
