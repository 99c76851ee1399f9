//! The content-addressed blob store: `blobs/<alg>/<hex>`, immutable.
//!
//! A blob is streamed into a temp file in `ingest/` while it is hashed; its
//! digest and size are checked against what was expected; the file is
//! fsynced and only then renamed into place (and the directory fsynced), so
//! a crash leaves either no blob or a whole, verified one. Partial ingests
//! that name their digest (`ingest/<alg>-<hex>`) can be resumed; anonymous
//! temp files are removed at start-up.

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use berth_image::{Algorithm, Digest, Hasher};

use crate::error::{Result, StoreError};

/// Partial ingests untouched for this long are removed at start-up.
const STALE_INGEST: Duration = Duration::from_secs(24 * 60 * 60);
/// Prefix of anonymous temp files in `ingest/`.
const TMP_PREFIX: &str = "tmp-";

/// The blob store rooted at `<root>/blobs` with its `<root>/ingest`.
#[derive(Debug, Clone)]
pub struct BlobStore {
    blobs: PathBuf,
    ingest: PathBuf,
    /// Digests whose resumable ingest is open: one writer per file (two
    /// pulls sharing a layer would otherwise append to it together).
    open: Arc<(Mutex<HashSet<Digest>>, Condvar)>,
}

/// The claim on one digest's ingest file; given back on drop.
#[derive(Debug)]
struct Claim {
    open: Arc<(Mutex<HashSet<Digest>>, Condvar)>,
    digest: Digest,
}

impl Claim {
    /// Waits until no other ingest of `digest` is open, then claims it.
    fn take(open: &Arc<(Mutex<HashSet<Digest>>, Condvar)>, digest: &Digest) -> Self {
        let (set, freed) = &**open;
        let mut held = set.lock().unwrap_or_else(PoisonError::into_inner);
        while held.contains(digest) {
            held = freed.wait(held).unwrap_or_else(PoisonError::into_inner);
        }
        held.insert(digest.clone());
        Self {
            open: open.clone(),
            digest: digest.clone(),
        }
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        let (set, freed) = &*self.open;
        set.lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.digest);
        freed.notify_all();
    }
}

impl BlobStore {
    /// Opens (creating) the store and removes abandoned ingests.
    pub fn open(root: &Path) -> Result<Self> {
        let store = Self {
            blobs: root.join("blobs"),
            ingest: root.join("ingest"),
            open: Arc::default(),
        };
        for alg in [Algorithm::Sha256, Algorithm::Sha512] {
            let dir = store.blobs.join(alg.name());
            fs::create_dir_all(&dir).map_err(|e| StoreError::io("creating", dir, e))?;
        }
        fs::create_dir_all(&store.ingest)
            .map_err(|e| StoreError::io("creating", &store.ingest, e))?;
        store.clean_ingest()?;
        Ok(store)
    }

    fn clean_ingest(&self) -> Result<()> {
        let entries =
            fs::read_dir(&self.ingest).map_err(|e| StoreError::io("listing", &self.ingest, e))?;
        let now = SystemTime::now();
        for entry in entries.flatten() {
            let name = entry.file_name();
            let anonymous = name.to_string_lossy().starts_with(TMP_PREFIX);
            let stale = entry
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|t| now.duration_since(t).unwrap_or_default() > STALE_INGEST);
            if anonymous || stale {
                let path = entry.path();
                let removed = if entry.file_type().is_ok_and(|t| t.is_dir()) {
                    // A view or export mount point a crash left (mounted,
                    // perhaps): unmounted first, so nothing below is touched.
                    let _ = crate::overlay::unmount(&path);
                    fs::remove_dir_all(&path)
                } else {
                    fs::remove_file(&path)
                };
                removed.map_err(|e| StoreError::io("removing", path, e))?;
            }
        }
        Ok(())
    }

    /// Where a blob lives (whether or not it exists).
    pub fn path(&self, d: &Digest) -> PathBuf {
        self.blobs.join(d.algorithm().name()).join(d.hex())
    }

    /// Whether the blob is stored.
    pub fn contains(&self, d: &Digest) -> bool {
        self.path(d).is_file()
    }

    /// Stores a stream. With `expected`, the content must hash to it (and a
    /// blob already stored is not read again); with `size`, be that long.
    pub fn put(
        &self,
        what: &str,
        content: &mut dyn Read,
        expected: Option<&Digest>,
        size: Option<u64>,
    ) -> Result<(Digest, u64)> {
        if let Some(d) = expected {
            if let Ok(meta) = fs::metadata(self.path(d)) {
                return Ok((d.clone(), meta.len()));
            }
        }
        let (tmp, digest, written) = self.stage(what, content, expected, size)?;
        self.commit(tmp, &digest)?;
        Ok((digest, written))
    }

    /// Hashes a stream into a temp file and checks it, without moving it
    /// in (see [`BlobStore::commit`]): what needs no lock of the store.
    pub fn stage(
        &self,
        what: &str,
        content: &mut dyn Read,
        expected: Option<&Digest>,
        size: Option<u64>,
    ) -> Result<(tempfile::NamedTempFile, Digest, u64)> {
        let alg = expected.map_or(Algorithm::Sha256, Digest::algorithm);
        let mut tmp = self.temp()?;
        let mut writer = HashingWriter::new(tmp.as_file_mut(), alg);
        io::copy(content, &mut writer)
            .map_err(|e| StoreError::io("reading content for", what, e))?;
        let (digest, written) = writer.finish();
        check(what, expected, size, &digest, written)?;
        Ok((tmp, digest, written))
    }

    /// Stores bytes (configs, manifests).
    pub fn put_bytes(&self, bytes: &[u8]) -> Result<Digest> {
        let d = Digest::sha256(bytes);
        self.put("blob", &mut &bytes[..], Some(&d), Some(bytes.len() as u64))?;
        Ok(d)
    }

    /// A temp file in the store for content written by the caller, to be
    /// moved in with [`BlobStore::commit`] once its digest is known.
    pub fn temp(&self) -> Result<tempfile::NamedTempFile> {
        tempfile::Builder::new()
            .prefix(TMP_PREFIX)
            .tempfile_in(&self.ingest)
            .map_err(|e| StoreError::io("creating a temp file in", &self.ingest, e))
    }

    /// Syncs a temp file and renames it into place as `digest`; the caller
    /// hashed what it wrote.
    pub fn commit(&self, tmp: tempfile::NamedTempFile, digest: &Digest) -> Result<()> {
        let dest = self.path(digest);
        tmp.as_file()
            .sync_all()
            .map_err(|e| StoreError::io("syncing", tmp.path().to_owned(), e))?;
        tmp.persist(&dest)
            .map_err(|e| StoreError::io("renaming a blob into", dest.clone(), e.error))?;
        sync_dir(dest.parent().unwrap_or(&self.blobs))
    }

    /// Opens a blob for streaming. The caller verifies with
    /// [`BlobStore::verify`] or a [`HashingWriter`] when it matters.
    pub fn open_blob(&self, d: &Digest) -> Result<File> {
        File::open(self.path(d)).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => StoreError::BlobNotFound(d.clone()),
            _ => StoreError::io("opening blob", self.path(d), e),
        })
    }

    /// Reads a small blob whole, verified, refusing one over `limit` bytes.
    pub fn read(&self, d: &Digest, limit: u64) -> Result<Vec<u8>> {
        let file = self.open_blob(d)?;
        let mut buf = Vec::new();
        file.take(limit + 1)
            .read_to_end(&mut buf)
            .map_err(|e| StoreError::io("reading blob", self.path(d), e))?;
        if buf.len() as u64 > limit {
            return Err(StoreError::Invalid(format!(
                "blob {d} is larger than {limit} bytes"
            )));
        }
        let actual = {
            let mut h = d.algorithm().hasher();
            h.update(&buf);
            h.finish()
        };
        if actual != *d {
            return Err(StoreError::Corrupt {
                digest: d.clone(),
                actual: actual.to_string(),
            });
        }
        Ok(buf)
    }

    /// Re-hashes a stored blob.
    pub fn verify(&self, d: &Digest) -> Result<()> {
        let mut file = BufReader::with_capacity(1 << 20, self.open_blob(d)?);
        let mut h = d.algorithm().hasher();
        io::copy(&mut file, &mut h).map_err(|e| StoreError::io("reading blob", self.path(d), e))?;
        let actual = h.finish();
        if actual != *d {
            return Err(StoreError::Corrupt {
                digest: d.clone(),
                actual: actual.to_string(),
            });
        }
        Ok(())
    }

    /// Removes a blob (garbage collection only).
    pub fn remove(&self, d: &Digest) -> Result<()> {
        match fs::remove_file(self.path(d)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StoreError::io("removing blob", self.path(d), e)),
        }
    }

    /// Every stored blob, with its size and modification time.
    pub fn list(&self) -> Result<Vec<(Digest, u64, SystemTime)>> {
        let mut out = Vec::new();
        for alg in [Algorithm::Sha256, Algorithm::Sha512] {
            let dir = self.blobs.join(alg.name());
            let entries = fs::read_dir(&dir).map_err(|e| StoreError::io("listing", &dir, e))?;
            for entry in entries.flatten() {
                let name = format!("{}:{}", alg.name(), entry.file_name().to_string_lossy());
                // Temp files of a concurrent `persist` or foreign files: not blobs.
                let Ok(d) = name.parse::<Digest>() else {
                    continue;
                };
                if let Ok(meta) = entry.metadata() {
                    out.push((
                        d,
                        meta.len(),
                        meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                    ));
                }
            }
        }
        Ok(out)
    }

    /// A resumable ingest of a blob whose digest is known (registry pulls).
    /// Waits while another ingest of the same digest is open; None when
    /// the blob is stored (perhaps by that other one meanwhile).
    pub fn ingest(&self, expected: &Digest) -> Result<Option<Ingest>> {
        let claim = Claim::take(&self.open, expected);
        if self.contains(expected) {
            return Ok(None);
        }
        let path = self.ingest.join(format!(
            "{}-{}",
            expected.algorithm().name(),
            expected.hex()
        ));
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| StoreError::io("opening ingest", &path, e))?;
        // Rebuild the hash state from what an earlier attempt wrote.
        let mut hasher = expected.algorithm().hasher();
        let offset = io::copy(&mut BufReader::new(&mut file), &mut hasher)
            .map_err(|e| StoreError::io("reading ingest", &path, e))?;
        file.seek(io::SeekFrom::End(0))
            .map_err(|e| StoreError::io("seeking ingest", &path, e))?;
        Ok(Some(Ingest {
            store: self.clone(),
            path,
            file,
            hasher,
            offset,
            expected: expected.clone(),
            _claim: claim,
        }))
    }
}

/// Checks a written blob against what was expected.
fn check(
    what: &str,
    expected: Option<&Digest>,
    size: Option<u64>,
    got: &Digest,
    n: u64,
) -> Result<()> {
    if let Some(want) = size.filter(|s| *s != n) {
        return Err(StoreError::SizeMismatch {
            what: what.to_owned(),
            expected: want,
            actual: n,
        });
    }
    if let Some(want) = expected.filter(|d| *d != got) {
        return Err(StoreError::DigestMismatch {
            what: what.to_owned(),
            expected: want.to_string(),
            actual: got.to_string(),
        });
    }
    Ok(())
}

/// fsync of a directory, so a rename in it survives a crash.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| StoreError::io("syncing directory", dir, e))
}

/// Hashes what passes through to the inner writer.
#[derive(Debug)]
pub struct HashingWriter<W> {
    inner: W,
    hasher: Hasher,
    written: u64,
}

impl<W: Write> HashingWriter<W> {
    /// Wraps `inner`, hashing with `alg`.
    pub fn new(inner: W, alg: Algorithm) -> Self {
        Self {
            inner,
            hasher: alg.hasher(),
            written: 0,
        }
    }

    /// The digest and byte count of everything written.
    pub fn finish(self) -> (Digest, u64) {
        (self.hasher.finish(), self.written)
    }

    /// The digest, the byte count and the inner writer (to finish it).
    pub fn into_parts(self) -> (Digest, u64, W) {
        (self.hasher.finish(), self.written, self.inner)
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A partial blob being written; survives interruption and resumes.
#[derive(Debug)]
pub struct Ingest {
    store: BlobStore,
    path: PathBuf,
    file: File,
    hasher: Hasher,
    offset: u64,
    expected: Digest,
    _claim: Claim,
}

impl Ingest {
    /// Bytes already written (where a ranged download resumes).
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Starts again from nothing (the source sent the whole blob, not the
    /// rest).
    pub fn reset(&mut self) -> Result<()> {
        self.file
            .set_len(0)
            .and_then(|()| self.file.seek(io::SeekFrom::Start(0)).map(drop))
            .map_err(|e| StoreError::io("truncating ingest", &self.path, e))?;
        self.hasher = self.expected.algorithm().hasher();
        self.offset = 0;
        Ok(())
    }

    /// Throws the partial blob away (its content can never become right).
    pub fn discard(self) -> Result<()> {
        fs::remove_file(&self.path).map_err(|e| StoreError::io("removing ingest", &self.path, e))
    }

    /// Appends content.
    pub fn write_all(&mut self, buf: &[u8]) -> Result<()> {
        self.file
            .write_all(buf)
            .map_err(|e| StoreError::io("writing ingest", &self.path, e))?;
        self.hasher.update(buf);
        self.offset += buf.len() as u64;
        Ok(())
    }

    /// Verifies digest and size and moves the blob into the store. On a
    /// mismatch the partial file is removed: it can never become right.
    pub fn commit(self, size: Option<u64>) -> Result<Digest> {
        let got = self.hasher.clone().finish();
        let what = format!("blob {}", self.expected);
        if let Err(e) = check(&what, Some(&self.expected), size, &got, self.offset) {
            let _ = fs::remove_file(&self.path);
            return Err(e);
        }
        self.file
            .sync_all()
            .map_err(|e| StoreError::io("syncing", &self.path, e))?;
        let dest = self.store.path(&self.expected);
        fs::rename(&self.path, &dest)
            .map_err(|e| StoreError::io("renaming ingest to", dest.clone(), e))?;
        sync_dir(dest.parent().unwrap_or(&self.store.blobs))?;
        Ok(got)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, BlobStore) {
        let dir = tempfile::tempdir().unwrap();
        let s = BlobStore::open(dir.path()).unwrap();
        (dir, s)
    }

    #[test]
    fn put_stores_by_digest_and_reads_back_verified() {
        let (_d, s) = store();
        let (digest, n) = s.put("x", &mut &b"hello"[..], None, None).unwrap();
        assert_eq!(digest, Digest::sha256(b"hello"));
        assert_eq!(n, 5);
        assert_eq!(s.read(&digest, 100).unwrap(), b"hello");
        assert!(s
            .path(&digest)
            .ends_with(format!("blobs/sha256/{}", digest.hex())));
        assert!(
            fs::read_dir(&s.ingest).unwrap().next().is_none(),
            "no temp left"
        );
    }

    #[test]
    fn wrong_digest_or_size_is_refused_and_nothing_is_stored() {
        let (_d, s) = store();
        let want = Digest::sha256(b"other");
        let err = s
            .put("layer.tar", &mut &b"hello"[..], Some(&want), None)
            .unwrap_err();
        assert!(matches!(err, StoreError::DigestMismatch { .. }), "{err}");
        assert!(err.to_string().contains("layer.tar"));
        let err = s.put("cfg", &mut &b"hello"[..], None, Some(4)).unwrap_err();
        assert!(
            matches!(
                err,
                StoreError::SizeMismatch {
                    expected: 4,
                    actual: 5,
                    ..
                }
            ),
            "{err}"
        );
        assert!(s.list().unwrap().is_empty());
        assert!(fs::read_dir(&s.ingest).unwrap().next().is_none());
    }

    #[test]
    fn sha512_digests_are_accepted() {
        let (_d, s) = store();
        let mut h = Algorithm::Sha512.hasher();
        h.update(b"abc");
        let d = h.finish();
        s.put("x", &mut &b"abc"[..], Some(&d), Some(3)).unwrap();
        assert!(s.path(&d).to_string_lossy().contains("blobs/sha512/"));
        s.verify(&d).unwrap();
    }

    #[test]
    fn a_flipped_byte_is_detected_on_read_and_verify() {
        let (_d, s) = store();
        let d = s.put_bytes(b"{\"a\":1}").unwrap();
        let mut bytes = fs::read(s.path(&d)).unwrap();
        bytes[2] ^= 1;
        fs::write(s.path(&d), bytes).unwrap();
        assert!(matches!(
            s.read(&d, 100).unwrap_err(),
            StoreError::Corrupt { .. }
        ));
        let err = s.verify(&d).unwrap_err();
        assert!(
            err.to_string().contains(&format!("blob {d} is corrupt")),
            "{err}"
        );
    }

    #[test]
    fn an_interrupted_ingest_resumes_where_it_stopped() {
        let (dir, s) = store();
        let data = vec![7u8; 100_000];
        let d = Digest::sha256(&data);
        let mut first = s.ingest(&d).unwrap().unwrap();
        first.write_all(&data[..40_000]).unwrap();
        drop(first); // the process dies here
        let s = BlobStore::open(dir.path()).unwrap(); // a restart keeps it
        let mut again = s.ingest(&d).unwrap().unwrap();
        assert_eq!(again.offset(), 40_000);
        again.write_all(&data[40_000..]).unwrap();
        assert_eq!(again.commit(Some(100_000)).unwrap(), d);
        s.verify(&d).unwrap();
    }

    #[test]
    fn a_corrupt_ingest_is_dropped_at_commit() {
        let (_d, s) = store();
        let d = Digest::sha256(b"right");
        let mut ing = s.ingest(&d).unwrap().unwrap();
        ing.write_all(b"wrong").unwrap();
        assert!(matches!(
            ing.commit(None).unwrap_err(),
            StoreError::DigestMismatch { .. }
        ));
        assert_eq!(s.ingest(&d).unwrap().unwrap().offset(), 0, "starts over");
    }

    #[test]
    fn one_ingest_per_digest_at_a_time() {
        let (_d, s) = store();
        let d = Digest::sha256(b"shared");
        let mut first = s.ingest(&d).unwrap().unwrap();
        first.write_all(b"sha").unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let other = s.clone();
        let waiter = std::thread::spawn(move || {
            let second = other.ingest(&d).unwrap();
            tx.send(()).unwrap();
            // The first finished the blob while this one waited.
            assert!(second.is_none());
        });
        assert!(rx.try_recv().is_err(), "a second writer got in");
        first.write_all(b"red").unwrap();
        first.commit(Some(6)).unwrap();
        rx.recv().unwrap();
        waiter.join().unwrap();
        // Resetting and discarding work on the claimed file.
        let e = Digest::sha256(b"other");
        let mut ing = s.ingest(&e).unwrap().unwrap();
        ing.write_all(b"junk").unwrap();
        ing.reset().unwrap();
        assert_eq!(ing.offset(), 0);
        ing.write_all(b"other").unwrap();
        ing.commit(Some(5)).unwrap();
        let f = Digest::sha256(b"gone");
        let mut ing = s.ingest(&f).unwrap().unwrap();
        ing.write_all(b"go").unwrap();
        ing.discard().unwrap();
        assert_eq!(s.ingest(&f).unwrap().unwrap().offset(), 0);
    }

    #[test]
    fn start_up_removes_anonymous_temp_files() {
        let (dir, s) = store();
        fs::write(s.ingest.join("tmp-abandoned"), b"half").unwrap();
        BlobStore::open(dir.path()).unwrap();
        assert!(!s.ingest.join("tmp-abandoned").exists());
    }
}
