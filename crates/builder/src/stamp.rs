//! Build contexts read in place (a local client names its directory
//! instead of sending it as a tar): the file stamps that stand for a
//! content hash across builds, and the checks that a file copied is the
//! file whose hash keyed the step.
//!
//! A stamp is what `stat` says of a file: device, inode, size, mtime and
//! ctime. Any write changes mtime and ctime, so a file whose stamp is the
//! one recorded with a hash still has that content — unless it was
//! written within the same clock tick as the stat that recorded it (the
//! "racily clean" files of git's index). Hashes of files changed in the
//! last [`RACY_SECS`] are therefore kept for the build that computed them,
//! never across builds.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use rustix::fs::Stat;

/// Files changed this recently are hashed again by the next build.
const RACY_SECS: i64 = 2;
/// Past this many files the cache starts over (a few tens of MB).
const MAX_ENTRIES: usize = 500_000;

/// What `stat` says of a file, as far as its content goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Stamp {
    pub dev: u64,
    pub ino: u64,
    pub size: i64,
    pub mtime: (i64, i64),
    pub ctime: (i64, i64),
}

impl Stamp {
    pub fn of(st: &Stat) -> Self {
        Self {
            dev: st.st_dev,
            ino: st.st_ino,
            size: st.st_size,
            mtime: (st.st_mtime, i64::try_from(st.st_mtime_nsec).unwrap_or(0)),
            ctime: (st.st_ctime, i64::try_from(st.st_ctime_nsec).unwrap_or(0)),
        }
    }

    /// Whether a write could still leave the stamp as it is.
    fn racy(&self, now: i64) -> bool {
        self.mtime.0.max(self.ctime.0) + RACY_SECS > now
    }
}

/// Hashes by (device, inode), with the stamp each was read under.
type ByInode = HashMap<(u64, u64), (Stamp, [u8; 32])>;

/// Content hashes of context files by stamp, kept by the daemon across
/// builds: a rebuild from an unchanged directory reads no file.
#[derive(Debug, Default)]
pub struct FileHashes {
    map: Mutex<ByInode>,
}

impl FileHashes {
    /// The hash recorded for exactly this stamp.
    pub fn get(&self, stamp: &Stamp) -> Option<[u8; 32]> {
        let map = self.lock();
        map.get(&(stamp.dev, stamp.ino))
            .filter(|(s, _)| s == stamp)
            .map(|(_, h)| *h)
    }

    /// Records a hash read from a file whose stamp was `stamp` before and
    /// after the read; a racy stamp is not kept.
    pub fn put(&self, stamp: Stamp, hash: [u8; 32]) {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        if stamp.racy(now) {
            return;
        }
        let mut map = self.lock();
        if map.len() >= MAX_ENTRIES {
            map.clear();
        }
        map.insert((stamp.dev, stamp.ino), (stamp, hash));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ByInode> {
        lock(&self.map)
    }
}

/// Content checksums of sources in images' root filesystems, by image ID
/// and sources, kept by the daemon across builds. An image's files are
/// what its ID says (the ID is the hash of a config that lists its layers'
/// DiffIDs), so a `COPY --from` of an image or a built stage — 18 MB read
/// and hashed on every cached rebuild of the benchmark's Dockerfile — is
/// checksummed once.
#[derive(Debug, Default)]
pub struct ImageChecksums {
    map: Mutex<HashMap<String, String>>,
}

/// Past this many entries the memo starts over.
const MAX_CHECKSUMS: usize = 4096;

impl ImageChecksums {
    fn key(image: &str, sources: &[String]) -> String {
        let mut key = image.to_owned();
        // Length-prefixed: no two source lists make the same key.
        for s in sources {
            key.push_str(&format!("\0{}:{s}", s.len()));
        }
        key
    }

    pub fn get(&self, image: &str, sources: &[String]) -> Option<String> {
        lock(&self.map).get(&Self::key(image, sources)).cloned()
    }

    pub fn put(&self, image: &str, sources: &[String], checksum: &str) {
        let mut map = lock(&self.map);
        if map.len() >= MAX_CHECKSUMS {
            map.clear();
        }
        map.insert(Self::key(image, sources), checksum.to_owned());
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamp(ino: u64, mtime: i64) -> Stamp {
        Stamp {
            dev: 1,
            ino,
            size: 10,
            mtime: (mtime, 0),
            ctime: (mtime, 0),
        }
    }

    #[test]
    fn a_hash_answers_only_its_exact_stamp() {
        let h = FileHashes::default();
        let s = stamp(7, 1_000);
        h.put(s, [1; 32]);
        assert_eq!(h.get(&s), Some([1; 32]));
        assert_eq!(h.get(&Stamp { size: 11, ..s }), None, "size");
        assert_eq!(
            h.get(&Stamp {
                mtime: (1_000, 1),
                ..s
            }),
            None,
            "mtime"
        );
        assert_eq!(
            h.get(&Stamp {
                ctime: (1_001, 0),
                ..s
            }),
            None,
            "ctime"
        );
        assert_eq!(h.get(&Stamp { dev: 2, ..s }), None, "device");
        h.put(Stamp { size: 11, ..s }, [2; 32]);
        assert_eq!(h.get(&s), None, "a new stamp of the inode replaces it");
    }

    #[test]
    fn files_changed_within_the_racy_window_are_not_kept() {
        let h = FileHashes::default();
        let now = i64::try_from(
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_secs(),
        )
        .unwrap();
        let fresh = stamp(8, now);
        h.put(fresh, [3; 32]);
        assert_eq!(h.get(&fresh), None);
        let old = stamp(9, now - RACY_SECS - 1);
        h.put(old, [4; 32]);
        assert_eq!(h.get(&old), Some([4; 32]));
    }

    #[test]
    fn image_checksums_are_keyed_by_image_and_every_source() {
        let m = ImageChecksums::default();
        let srcs = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        m.put("sha256:a", &srcs(&["out", "lib"]), "sum1");
        assert_eq!(
            m.get("sha256:a", &srcs(&["out", "lib"])).as_deref(),
            Some("sum1")
        );
        assert_eq!(m.get("sha256:b", &srcs(&["out", "lib"])), None);
        assert_eq!(m.get("sha256:a", &srcs(&["out"])), None);
        assert_eq!(m.get("sha256:a", &srcs(&["outlib"])), None);
        assert_eq!(m.get("sha256:a", &srcs(&["out\0lib"])), None);
    }
}
