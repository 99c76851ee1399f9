//! The push side of the distribution spec: starting a blob upload (or
//! mounting the blob from another repository of the same registry),
//! sending it whole (`PUT`) or streamed (`PATCH`, then `PUT` with the
//! digest), and putting a manifest under a tag.

use std::io::Read;

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

    /// Streams a blob of `size` bytes (`PATCH`), then closes the upload
    /// with its digest (`PUT`); the registry checks the digest.
    pub fn upload_stream(
        &self,
        repo: &str,
        location: &str,
        digest: &Digest,
        body: &mut dyn Read,
        size: u64,
    ) -> Result<()> {
        let scope = push_scope(repo);
        // A streamed body cannot be resent after a 401: authenticate first.
        self.prepare(&scope)?;
        let range = format!("0-{}", size.saturating_sub(1));
        let headers = [("Content-Range", range.as_str())];
        let mut r = self.send(
            "PATCH",
            location,
            &headers,
            &scope,
            Payload::Stream(body, size),
        )?;
        if r.status() != 202 {
            return Err(status_error("PATCH", &self.url(location), &mut r));
        }
        let next = header(&r, "location").unwrap_or_else(|| location.to_owned());
        let url = with_digest(&next, digest);
        let mut r = self.send("PUT", &url, &[], &scope, Payload::None)?;
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
