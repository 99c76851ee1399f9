//! The push side of the distribution spec: starting a blob upload (or
//! mounting the blob from another repository of the same registry),
//! sending it whole (`PUT`) or streamed (`PATCH`, then `PUT` with the
//! digest), and putting a manifest under a tag.

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::FileExt;

use berth_image::Digest;

use crate::client::{header, push_scope, status_error, Payload, Registry};
use crate::error::{RegistryError, Result};

/// What starting an upload gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Started {
    /// The registry mounted the blob from the other repository: done.
    Mounted,
    /// Send the blob to this location.
    Upload(String),
}

/// `location` with `digest=` added to its query.
fn with_digest(location: &str, digest: &Digest) -> String {
    let sep = if location.contains('?') { '&' } else { '?' };
    format!("{location}{sep}digest={digest}")
}

impl Registry {
    /// `POST /v2/<repo>/blobs/uploads/`, asking to mount `mount` (a blob
    /// and the repository that has it) when given.
    pub fn start_upload(&self, repo: &str, mount: Option<(&Digest, &str)>) -> Result<Started> {
        let path = match mount {
            Some((d, from)) => format!("/v2/{repo}/blobs/uploads/?mount={d}&from={from}"),
            None => format!("/v2/{repo}/blobs/uploads/"),
        };
        let scope = match mount {
            Some((_, from)) => format!("{} repository:{from}:pull", push_scope(repo)),
            None => push_scope(repo),
        };
        let mut r = self.send("POST", &path, &[], &scope, Payload::None)?;
        match r.status().as_u16() {
            201 if mount.is_some() => Ok(Started::Mounted),
            202 => header(&r, "location").map(Started::Upload).ok_or_else(|| {
                RegistryError::Invalid(format!(
                    "{}: an upload to {repo} began without a Location",
                    self.name
                ))
            }),
            _ => Err(status_error("POST", &self.url(&path), &mut r)),
        }
    }

    /// Sends a small blob in one request (`PUT location?digest=`).
    pub fn upload_whole(
        &self,
        repo: &str,
        location: &str,
        digest: &Digest,
        bytes: &[u8],
    ) -> Result<()> {
        let url = with_digest(location, digest);
        let body = Payload::Bytes(bytes, "application/octet-stream");
        let mut r = self.send("PUT", &url, &[], &push_scope(repo), body)?;
        if r.status() == 201 {
            Ok(())
        } else {
            Err(status_error("PUT", &self.url(&url), &mut r))
        }
    }

    /// Sends `size` bytes of `file` (`PATCH`), then closes the upload
    /// with the digest (`PUT`; the registry checks it). An upload that
    /// breaks off (the connection, or a 5xx) is sent again in a new
    /// upload, `attempts` times in all: the reference registry cannot
    /// resume one whose last answer was lost (its `_state` would not
    /// match what it holds).
    #[allow(clippy::too_many_arguments)] // one upload's whole context
    pub fn upload_file(
        &self,
        repo: &str,
        location: &str,
        digest: &Digest,
        file: &File,
        size: u64,
        attempts: usize,
        report: &(dyn Fn(u64) + Sync),
    ) -> Result<()> {
        let scope = push_scope(repo);
        // A streamed body cannot be resent after a 401: authenticate first.
        self.prepare(&scope)?;
        let mut location = location.to_owned();
        let mut tries = 1;
        loop {
            match self.send_file(&location, digest, file, size, &scope, report) {
                Ok(()) => return Ok(()),
                Err(e) if tries < attempts.max(1) && retryable(&e) => {
                    tries += 1;
                    tracing::info!(%digest, error = %e, "an upload broke off; sending it again");
                    location = match self.start_upload(repo, None)? {
                        Started::Upload(l) => l,
                        Started::Mounted => return Ok(()),
                    };
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// One upload: the bytes (`PATCH`, none for an empty blob), then the
    /// digest (`PUT`).
    fn send_file(
        &self,
        location: &str,
        digest: &Digest,
        file: &File,
        size: u64,
        scope: &str,
        report: &(dyn Fn(u64) + Sync),
    ) -> Result<()> {
        let mut next = location.to_owned();
        if size > 0 {
            let range = format!("0-{}", size - 1);
            let headers = [("Content-Range", range.as_str())];
            let mut body = Section::new(file, size, report);
            let payload = Payload::Stream(&mut body, size);
            let mut r = self.send("PATCH", location, &headers, scope, payload)?;
            if r.status() != 202 {
                return Err(status_error("PATCH", &self.url(location), &mut r));
            }
            next = header(&r, "location").unwrap_or(next);
        }
        self.close(&next, digest, scope)
    }

    /// Streams a body of unknown length into an upload (one `PATCH`,
    /// chunked transfer encoding); returns where the upload goes on.
    pub fn patch_stream(&self, repo: &str, location: &str, body: &mut dyn Read) -> Result<String> {
        let scope = push_scope(repo);
        self.prepare(&scope)?;
        let mut r = self.send("PATCH", location, &[], &scope, Payload::Chunked(body))?;
        if r.status() != 202 {
            return Err(status_error("PATCH", &self.url(location), &mut r));
        }
        Ok(header(&r, "location").unwrap_or_else(|| location.to_owned()))
    }

    /// Ends an upload: `PUT` with the digest of everything sent (the
    /// registry checks it).
    pub fn close_upload(&self, repo: &str, location: &str, digest: &Digest) -> Result<()> {
        self.close(location, digest, &push_scope(repo))
    }

    fn close(&self, location: &str, digest: &Digest, scope: &str) -> Result<()> {
        let url = with_digest(location, digest);
        let mut r = self.send("PUT", &url, &[], scope, Payload::None)?;
        if r.status() == 201 {
            Ok(())
        } else {
            Err(status_error("PUT", &self.url(&url), &mut r))
        }
    }

    /// Puts a manifest under `reference` (a tag or its digest); returns
    /// its digest, checked against what the registry says it stored.
    pub fn put_manifest(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<Digest> {
        let path = format!("/v2/{repo}/manifests/{reference}");
        let mut r = self.send(
            "PUT",
            &path,
            &[],
            &push_scope(repo),
            Payload::Bytes(bytes, media_type),
        )?;
        if r.status() != 201 {
            return Err(status_error("PUT", &self.url(&path), &mut r));
        }
        let digest = Digest::sha256(bytes);
        match header(&r, "docker-content-digest") {
            Some(said) if said != digest.to_string() => Err(RegistryError::Invalid(format!(
                "{}: the manifest of {repo}:{reference} was stored as {said}, not {digest}",
                self.name
            ))),
            _ => Ok(digest),
        }
    }
}

/// Whether a failed upload is worth sending again: the connection broke,
/// or the registry failed on its side.
pub(crate) fn retryable(e: &RegistryError) -> bool {
    match e {
        RegistryError::Transport { .. } => true,
        RegistryError::Status { status, .. } => *status >= 500,
        _ => false,
    }
}

/// The first `end` bytes of a file, read where they lie (`pread`: the
/// file's cursor is not shared), reporting how far they got a hundred
/// times at most.
struct Section<'a> {
    file: &'a File,
    pos: u64,
    end: u64,
    reported: u64,
    report: &'a (dyn Fn(u64) + Sync),
}

impl<'a> Section<'a> {
    fn new(file: &'a File, end: u64, report: &'a (dyn Fn(u64) + Sync)) -> Self {
        Self {
            file,
            pos: 0,
            end,
            reported: 0,
            report,
        }
    }
}

impl Read for Section<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let left = self.end - self.pos;
        let want = usize::try_from(left).map_or(buf.len(), |l| l.min(buf.len()));
        if want == 0 {
            return Ok(0);
        }
        let n = self.file.read_at(&mut buf[..want], self.pos)?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        self.pos += n as u64;
        if self.pos - self.reported >= (self.end / 100).max(512 << 10) || self.pos == self.end {
            self.reported = self.pos;
            (self.report)(self.pos);
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_digest_joins_the_locations_query() {
        let d = Digest::sha256(b"x");
        assert_eq!(
            with_digest("/v2/a/blobs/uploads/u", &d),
            format!("/v2/a/blobs/uploads/u?digest={d}")
        );
        assert_eq!(
            with_digest("http://h/v2/a/blobs/uploads/u?_state=s", &d),
            format!("http://h/v2/a/blobs/uploads/u?_state=s&digest={d}")
        );
    }
}
