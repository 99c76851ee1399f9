//! One layer of a push: found in the repository already, mounted from
//! another repository of the registry, or sent. A layer stored compressed
//! goes as it is stored; one stored uncompressed (as `docker load` gives
//! them) is gzipped straight into its upload, and the gzip's digest is
//! remembered, so the next push asks the registry for it, and mounts it,
//! without compressing it again (berth's gzip depends on the input only).

use std::io::Read;

use berth_image::archive::LayerBlob;
use berth_image::media::{self, Compression};
use berth_image::{Algorithm, Digest};
use berth_store::blobs::HashingWriter;
use berth_store::Store;

use crate::client::Registry;
use crate::error::{RegistryError, Result};
use crate::push::PushEvent;
use crate::upload::{retryable, Started};
use crate::PushProgress;

/// A layer as it went out.
pub(crate) struct OutBlob {
    pub digest: Digest,
    pub size: u64,
    pub compression: Compression,
    /// The stored media type, kept for non-distributable layers.
    pub stored_type: String,
}

/// Where a layer stands in the repository before anything is sent.
enum Found {
    There,
    Send(String),
}

/// What one worker needs to send layers to one repository.
pub(crate) struct Sender<'a> {
    pub registry: &'a Registry,
    pub store: &'a Store,
    pub repo: &'a str,
    pub attempts: usize,
    pub progress: &'a dyn PushProgress,
}

impl Sender<'_> {
    /// Makes sure the repository has `layer` (shown as `id`).
    pub fn send(&self, layer: &LayerBlob, id: &str) -> Result<OutBlob> {
        let stored_type = layer
            .media_type
            .clone()
            .unwrap_or_else(|| media::DOCKER_LAYER.to_owned());
        let compression = media::layer_compression(&stored_type).ok_or_else(|| {
            RegistryError::Invalid(format!(
                "layer {} has the unknown media type {stored_type}",
                layer.digest
            ))
        })?;
        let out = |digest: Digest, size: u64, compression: Compression| OutBlob {
            digest,
            size,
            compression,
            stored_type: stored_type.clone(),
        };
        if compression != Compression::None {
            self.send_stored(layer, id)?;
            return Ok(out(layer.digest.clone(), layer.size, compression));
        }
        if let Some((digest, size)) = self.store.pushed_form(&layer.digest)? {
            match self.find_or_start(&digest, id)? {
                Found::There => return Ok(out(digest, size, Compression::Gzip)),
                Found::Send(location) => {
                    let (d, n) = self.send_gzipped(layer, id, location)?;
                    return Ok(out(d, n, Compression::Gzip));
                }
            }
        }
        let location = self.start()?;
        let (digest, size) = self.send_gzipped(layer, id, location)?;
        Ok(out(digest, size, Compression::Gzip))
    }

    /// A stored blob, unless the repository has it or can mount it.
    fn send_stored(&self, layer: &LayerBlob, id: &str) -> Result<()> {
        let Found::Send(location) = self.find_or_start(&layer.digest, id)? else {
            return Ok(());
        };
        let file = self.store.blobs().open_blob(&layer.digest)?;
        let report = |current| self.pushing(id, current, layer.size);
        // The registry checks the digest of what it got (`PUT`).
        self.registry.upload_file(
            self.repo,
            &location,
            &layer.digest,
            &file,
            layer.size,
            self.attempts,
            &report,
        )?;
        self.progress.event(PushEvent::Pushed { id: id.to_owned() });
        Ok(())
    }

    /// HEAD, then a mount from a repository known to hold it, else a new
    /// upload.
    fn find_or_start(&self, digest: &Digest, id: &str) -> Result<Found> {
        if self.registry.has_blob(self.repo, digest)? {
            self.progress.event(PushEvent::Exists { id: id.to_owned() });
            return Ok(Found::There);
        }
        let sources = self.store.repos_with_blob(&self.registry.name, digest)?;
        for from in sources.iter().filter(|r| *r != self.repo).take(3) {
            match self.registry.start_upload(self.repo, Some((digest, from))) {
                Ok(Started::Mounted) => {
                    self.progress.event(PushEvent::Mounted {
                        id: id.to_owned(),
                        from: from.clone(),
                    });
                    return Ok(Found::There);
                }
                Ok(Started::Upload(l)) => return Ok(Found::Send(l)),
                Err(e) => {
                    tracing::debug!(%from, error = %e, "mounting a blob failed; uploading it")
                }
            }
        }
        Ok(Found::Send(self.start()?))
    }

    fn start(&self) -> Result<String> {
        match self.registry.start_upload(self.repo, None)? {
            Started::Upload(l) => Ok(l),
            Started::Mounted => Err(RegistryError::Invalid(format!(
                "{}: an upload to {} mounted a blob it was not asked to",
                self.registry.name, self.repo
            ))),
        }
    }

    /// Gzips the stored blob into an upload at `location`, again in a new
    /// upload when one breaks off; records the gzip's digest.
    fn send_gzipped(&self, layer: &LayerBlob, id: &str, location: String) -> Result<(Digest, u64)> {
        let mut location = location;
        let mut tries = 1;
        loop {
            match self.gzip_into(layer, id, &location) {
                Ok((digest, size)) => {
                    self.store
                        .record_pushed_form(&layer.digest, &digest, size)?;
                    self.progress.event(PushEvent::Pushed { id: id.to_owned() });
                    return Ok((digest, size));
                }
                Err(e) if tries < self.attempts.max(1) && retryable(&e) => {
                    tries += 1;
                    tracing::info!(blob = %layer.digest, error = %e, "an upload broke off; sending it again");
                    location = self.start()?;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// One upload of the gzip: compressed on a thread of its own into a
    /// pipe the `PATCH` streams from; then the digest (`PUT`) once the
    /// compression has ended well.
    fn gzip_into(&self, layer: &LayerBlob, id: &str, location: &str) -> Result<(Digest, u64)> {
        // Only a broken pipe is the upload's failure (retried); any other
        // (a stored blob found corrupt) is final.
        let failed = |e: std::io::Error| match e.kind() {
            std::io::ErrorKind::BrokenPipe => RegistryError::Transport {
                what: format!("uploading layer {}", layer.digest),
                reason: e.to_string(),
            },
            _ => RegistryError::Invalid(format!("compressing layer {}: {e}", layer.digest)),
        };
        let (mut from_pipe, to_pipe) = std::io::pipe().map_err(failed)?;
        std::thread::scope(|s| {
            let compressing = s.spawn(move || -> Result<(Digest, u64)> {
                let mut out = HashingWriter::new(to_pipe, Algorithm::Sha256);
                let mut input = Reported {
                    inner: self.store.read_blob(&layer.digest, layer.size)?,
                    read: 0,
                    reported: 0,
                    total: layer.size,
                    report: &|current| self.pushing(id, current, layer.size),
                };
                let threads = std::thread::available_parallelism().map_or(1, usize::from);
                crate::gzip::compress(
                    &mut input,
                    &mut out,
                    flate2::Compression::default(),
                    threads,
                )
                .map_err(failed)?;
                let (digest, size, _pipe) = out.into_parts(); // closed: the body ends
                Ok((digest, size))
            });
            let sent = self
                .registry
                .patch_stream(self.repo, location, &mut from_pipe);
            drop(from_pipe); // a compression still writing stops (EPIPE)
            let made = compressing
                .join()
                .unwrap_or_else(|_| Err(failed(std::io::Error::other("the compression panicked"))));
            // A broken upload says why first; a compression that failed
            // (a blob found corrupt) ends the body early: no PUT then.
            let next = sent?;
            let (digest, size) = made?;
            self.registry.close_upload(self.repo, &next, &digest)?;
            Ok((digest, size))
        })
    }

    fn pushing(&self, id: &str, current: u64, total: u64) {
        self.progress.event(PushEvent::Pushing {
            id: id.to_owned(),
            current,
            total,
        });
    }
}

/// A reader that reports its bytes, a hundred times at most.
struct Reported<'a, R> {
    inner: R,
    read: u64,
    reported: u64,
    total: u64,
    report: &'a (dyn Fn(u64) + Sync),
}

impl<R: Read> Read for Reported<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        if self.read - self.reported >= (self.total / 100).max(512 << 10) || n == 0 {
            self.reported = self.read;
            (self.report)(self.read);
        }
        Ok(n)
    }
}
