//! Verifying a blob while it is read: the digest is checked when the
//! stream ends, so content is hashed once, as it is used.

use std::io::{self, Read};

use berth_image::{Digest, Hasher};

use crate::error::{Result, StoreError};

/// Hashes what is read through it; [`VerifyingReader::finish`] reads the
/// rest and compares with the expected digest.
#[derive(Debug)]
pub struct VerifyingReader<R> {
    inner: R,
    hasher: Hasher,
    expected: Digest,
}

impl<R: Read> VerifyingReader<R> {
    /// Wraps `inner`, which must hash to `expected`.
    pub fn new(inner: R, expected: Digest) -> Self {
        let hasher = expected.algorithm().hasher();
        Self {
            inner,
            hasher,
            expected,
        }
    }

    /// Reads what is left and checks the digest.
    pub fn finish(mut self) -> Result<()> {
        io::copy(&mut self, &mut io::sink())
            .map_err(|e| StoreError::io("reading blob", self.expected.to_string(), e))?;
        let actual = self.hasher.finish();
        if actual != self.expected {
            return Err(StoreError::Corrupt {
                digest: self.expected,
                actual: actual.to_string(),
            });
        }
        Ok(())
    }
}

impl<R: Read> Read for VerifyingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// Yields exactly `size` bytes of a blob and fails the read that completes
/// it if the content does not match its digest: a writer streaming the blob
/// out (save, push) never silently passes on corrupt content.
#[derive(Debug)]
pub struct CheckedBlob<R> {
    inner: VerifyingReader<R>,
    remaining: u64,
}

impl<R: Read> CheckedBlob<R> {
    /// Wraps a blob of `size` bytes that must hash to `expected`.
    pub fn new(inner: R, expected: Digest, size: u64) -> Self {
        Self {
            inner: VerifyingReader::new(inner, expected),
            remaining: size,
        }
    }
}

impl<R: Read> Read for CheckedBlob<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.remaining == 0 {
            return Ok(0);
        }
        let want = usize::try_from(self.remaining).map_or(buf.len(), |r| r.min(buf.len()));
        let n = self.inner.read(&mut buf[..want])?;
        self.remaining -= n as u64;
        if self.remaining == 0 {
            let actual = self.inner.hasher.clone().finish();
            if actual != self.inner.expected {
                let e = StoreError::Corrupt {
                    digest: self.inner.expected.clone(),
                    actual: actual.to_string(),
                };
                return Err(io::Error::new(io::ErrorKind::InvalidData, e.to_string()));
            }
        }
        Ok(n)
    }
}
