//! Where a received context's file contents wait: in memory up to
//! [`IN_MEMORY`] bytes, then in one unlinked temp file.
//!
//! The file was always used, and writing a 20 MB context into the page
//! cache (page allocation, ext4's delayed allocation, truncation when the
//! build ends) was a fifth of the daemon's CPU on a fully cached build,
//! where no content is ever read back. Chunks of memory cost one copy.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

/// Contexts up to this size stay in memory.
pub const IN_MEMORY: u64 = 64 << 20;
/// One memory chunk (never reallocated once full).
const CHUNK: usize = 1 << 20;

/// Received contents, addressed by offset.
#[derive(Debug)]
pub enum Spool {
    Memory(Vec<Vec<u8>>),
    File(File),
}

impl Spool {
    /// A reader of `len` bytes from `offset`, with its own position.
    pub fn open(&self, offset: u64, len: u64) -> io::Result<Content<'_>> {
        match self {
            Self::Memory(chunks) => Ok(Content::Memory(MemoryReader {
                chunks,
                pos: offset,
                end: offset + len,
            })),
            Self::File(file) => {
                let mut f = File::open(format!("/proc/self/fd/{}", file.as_raw_fd()))?;
                f.seek(SeekFrom::Start(offset))?;
                Ok(Content::File(f.take(len)))
            }
        }
    }
}

/// Builds a [`Spool`]: memory first, a file in `scratch` past
/// [`IN_MEMORY`] (what memory held is written there first).
#[derive(Debug)]
pub struct SpoolWriter {
    chunks: Vec<Vec<u8>>,
    file: Option<io::BufWriter<File>>,
    len: u64,
    limit: u64,
    scratch: PathBuf,
}

impl SpoolWriter {
    pub fn new(scratch: &Path) -> Self {
        Self::with_limit(scratch, IN_MEMORY)
    }

    pub fn with_limit(scratch: &Path, limit: u64) -> Self {
        Self {
            chunks: Vec::new(),
            file: None,
            len: 0,
            limit,
            scratch: scratch.to_owned(),
        }
    }

    pub fn finish(self) -> io::Result<Spool> {
        match self.file {
            Some(w) => Ok(Spool::File(
                w.into_inner().map_err(io::IntoInnerError::into_error)?,
            )),
            None => Ok(Spool::Memory(self.chunks)),
        }
    }

    /// Moves what memory holds into a new unlinked file.
    fn spill(&mut self) -> io::Result<&mut io::BufWriter<File>> {
        let file = tempfile::tempfile_in(&self.scratch)?;
        let mut w = io::BufWriter::with_capacity(CHUNK, file);
        for chunk in std::mem::take(&mut self.chunks) {
            w.write_all(&chunk)?;
        }
        Ok(self.file.insert(w))
    }
}

impl Write for SpoolWriter {
    fn write(&mut self, mut data: &[u8]) -> io::Result<usize> {
        let n = data.len();
        if self.file.is_none() && self.len + n as u64 > self.limit {
            self.spill()?;
        }
        if let Some(w) = &mut self.file {
            w.write_all(data)?;
        } else {
            while !data.is_empty() {
                let room = self.chunks.last().map_or(0, |c| CHUNK - c.len());
                if room == 0 {
                    self.chunks.push(Vec::with_capacity(CHUNK));
                    continue;
                }
                let (now, rest) = data.split_at(room.min(data.len()));
                if let Some(last) = self.chunks.last_mut() {
                    last.extend_from_slice(now);
                }
                data = rest;
            }
        }
        self.len += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.as_mut().map_or(Ok(()), Write::flush)
    }
}

/// An entry's content: a file (copied by the kernel where it can) or a
/// span of a memory spool.
#[derive(Debug)]
pub enum Content<'a> {
    File(io::Take<File>),
    Memory(MemoryReader<'a>),
}

impl Content<'_> {
    /// Copies the rest into `out`; file to file stays in the kernel
    /// (`io::copy`'s `copy_file_range` path).
    pub fn copy_to(self, out: &mut File) -> io::Result<u64> {
        match self {
            Self::File(mut f) => io::copy(&mut f, out),
            Self::Memory(mut m) => io::copy(&mut m, out),
        }
    }
}

impl Read for Content<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Self::File(f) => f.read(buf),
            Self::Memory(m) => m.read(buf),
        }
    }
}

/// Reads a span of memory chunks.
#[derive(Debug)]
pub struct MemoryReader<'a> {
    chunks: &'a [Vec<u8>],
    pos: u64,
    end: u64,
}

impl Read for MemoryReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos >= self.end || buf.is_empty() {
            return Ok(0);
        }
        let chunk = usize::try_from(self.pos / CHUNK as u64).unwrap_or(usize::MAX);
        let at = usize::try_from(self.pos % CHUNK as u64).unwrap_or(usize::MAX);
        let data = self.chunks.get(chunk).and_then(|c| c.get(at..));
        let Some(data) = data.filter(|d| !d.is_empty()) else {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "a context entry runs past the spool",
            ));
        };
        let left = usize::try_from(self.end - self.pos).unwrap_or(usize::MAX);
        let n = data.len().min(buf.len()).min(left);
        buf[..n].copy_from_slice(&data[..n]);
        self.pos += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(n: usize) -> Vec<u8> {
        (0..n).map(|i| u8::try_from(i * 7 % 251).unwrap()).collect()
    }

    fn read_all(spool: &Spool, offset: u64, len: u64) -> Vec<u8> {
        let mut out = Vec::new();
        spool
            .open(offset, len)
            .unwrap()
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    /// Spans that cross chunk boundaries read back exactly, from memory and
    /// from a spool that spilled to a file part way through.
    #[test]
    fn spans_read_back_from_memory_and_after_a_spill() {
        let dir = tempfile::tempdir().unwrap();
        let data = pattern(3 * CHUNK + 12_345);
        for limit in [u64::MAX, (CHUNK + 100) as u64] {
            let mut w = SpoolWriter::with_limit(dir.path(), limit);
            // Uneven writes, as tar entries come.
            for piece in data.chunks(70_001) {
                w.write_all(piece).unwrap();
            }
            assert_eq!(w.len, data.len() as u64);
            let spool = w.finish().unwrap();
            assert_eq!(matches!(spool, Spool::File(_)), limit != u64::MAX);
            for (offset, len) in [
                (0, 10),
                (CHUNK - 3, 10),
                (CHUNK - 1, 2 * CHUNK + 5),
                (3 * CHUNK, 12_345),
                (17, 0),
            ] {
                assert_eq!(
                    read_all(&spool, offset as u64, len as u64),
                    data[offset..offset + len],
                    "{offset}+{len} (limit {limit})"
                );
            }
            // Two readers keep their own positions.
            let mut a = spool.open(0, 4).unwrap();
            let mut b = spool.open(4, 4).unwrap();
            let (mut x, mut y) = ([0u8; 2], [0u8; 4]);
            a.read_exact(&mut x).unwrap();
            b.read_exact(&mut y).unwrap();
            assert_eq!((&x[..], &y[..]), (&data[0..2], &data[4..8]));
        }
        // Nothing left in the scratch directory: the file is unlinked.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn a_span_past_the_end_is_an_error_not_a_short_read() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = SpoolWriter::new(dir.path());
        w.write_all(b"abc").unwrap();
        let spool = w.finish().unwrap();
        let mut out = Vec::new();
        let e = spool
            .open(2, CHUNK as u64 * 2)
            .unwrap()
            .read_to_end(&mut out);
        assert_eq!(out, b"c");
        assert_eq!(e.unwrap_err().kind(), io::ErrorKind::UnexpectedEof);
    }
}
