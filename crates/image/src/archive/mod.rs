//! Image archives, both directions:
//! - `docker save` archives: `manifest.json` (`[{Config, RepoTags, Layers}]`),
//!   `repositories`, and legacy per-layer `<id>/{layer.tar,json,VERSION}`
//!   (<https://github.com/moby/docker-image-spec/blob/main/spec.md>);
//! - OCI image layouts: `oci-layout`, `index.json`, `blobs/<alg>/<hex>`
//!   (<https://github.com/opencontainers/image-spec/blob/main/image-layout.md>).
//!
//! Reading streams every file of the archive once into a [`BlobSink`] (the
//! store), hashing as it goes, then interprets the small index documents:
//! archives put `manifest.json` anywhere, often last, so nothing is buffered
//! but those documents.

pub mod read;
mod write;

pub use read::read_archive;
pub use write::write_archive;

use std::io::Read;

use crate::digest::Digest;
use crate::error::Result;

/// Where an archive reader puts file contents.
pub trait BlobSink {
    /// Stores a stream. With `expected`, the content must hash to it (the
    /// sink reports a mismatch naming `what`). Returns the sha256 digest
    /// (or `expected`'s algorithm) and the size.
    fn put(
        &mut self,
        what: &str,
        content: &mut dyn Read,
        expected: Option<&Digest>,
    ) -> Result<(Digest, u64)>;

    /// Reads back a stored blob, at most `limit` bytes (configs and
    /// manifests only; a larger one is refused).
    fn get(&self, digest: &Digest, limit: u64) -> Result<Vec<u8>>;
}

/// Where an archive writer reads blobs from.
pub trait BlobSource {
    /// Opens a blob for reading; the caller copies exactly `size` bytes.
    fn open(&self, digest: &Digest) -> Result<Box<dyn Read + '_>>;
}

/// A layer of an image as an archive or the store holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerBlob {
    /// Digest of the blob as stored (compressed or not).
    pub digest: Digest,
    pub size: u64,
    /// The media type the archive declared; docker archives declare none.
    pub media_type: Option<String>,
}

/// One image found in (or to be written to) an archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveImage {
    /// The config blob; its digest is the image ID.
    pub config: Digest,
    /// Layers bottom first; the i-th must unpack to the config's i-th DiffID.
    pub layers: Vec<LayerBlob>,
    /// References the archive names for this image (normalised when read).
    pub tags: Vec<String>,
}

/// Limit on a JSON document (manifest, index, config) read from an archive.
pub const MAX_DOCUMENT: u64 = 8 << 20;

/// The archive formats berth writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `docker save` layout, with the legacy files.
    Docker,
    /// OCI image layout.
    Oci,
}

/// Yields exactly `remaining` bytes or fails with `short`: a short blob must
/// not turn into a silently corrupt archive, and a truncated archive entry
/// must not pass for a whole one.
pub(crate) struct Exact<R> {
    inner: R,
    remaining: u64,
    short: &'static str,
}

impl<R: Read> Exact<R> {
    pub(crate) fn new(inner: R, size: u64, short: &'static str) -> Self {
        Self {
            inner,
            remaining: size,
            short,
        }
    }
}

impl<R: Read> Read for Exact<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.remaining == 0 {
            return Ok(0);
        }
        let want = usize::try_from(self.remaining).map_or(buf.len(), |r| r.min(buf.len()));
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                self.short,
            ));
        }
        self.remaining -= n as u64;
        Ok(n)
    }
}
