//! What a container changed in its image's files (`docker diff`, `GET
//! /containers/{id}/changes`): its overlay upper dir read against the
//! image's own files, by dockerd's rules (`archive.OverlayChanges`): an
//! entry only in the upper dir was added, one also in the image modified
//! (a directory only when its size, mode or mtime differ), a whiteout
//! deleted; the parent of an addition or deletion is modified too.

use std::os::fd::OwnedFd;
use std::path::Path;

use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags};

use crate::error::{Result, StoreError};
use crate::fsroot::Root;

/// Docker's change kinds, numbered as the API numbers them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    Modified = 0,
    Added = 1,
    Deleted = 2,
}

/// The changes `upper` makes to `lower` (the image's merged files), as
/// absolute paths in walk order (parents first, names sorted).
pub fn changes(upper: &Path, lower: &Root) -> Result<Vec<(String, ChangeKind)>> {
    let fd = rfs::open(
        upper,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| StoreError::io("opening", upper, e.into()))?;
    let mut w = Walk {
        upper,
        lower,
        out: Vec::new(),
        changed_dirs: std::collections::HashSet::new(),
    };
    w.dir(&fd, "")?;
    Ok(w.out)
}

struct Walk<'a> {
    upper: &'a Path,
    lower: &'a Root,
    out: Vec<(String, ChangeKind)>,
    /// Directories already recorded as changed.
    changed_dirs: std::collections::HashSet<String>,
}

impl Walk<'_> {
    fn err(&self, rel: &str, e: impl Into<std::io::Error>) -> StoreError {
        StoreError::io("reading upper dir entry", self.upper.join(rel), e.into())
    }

    fn dir(&mut self, fd: &OwnedFd, rel: &str) -> Result<()> {
        let mut names = Vec::new();
        for entry in rfs::Dir::read_from(fd).map_err(|e| self.err(rel, e))? {
            let entry = entry.map_err(|e| self.err(rel, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name != "." && name != ".." {
                names.push(name);
            }
        }
        names.sort();
        for name in names {
            let path = format!("{rel}/{name}");
            let st = rfs::statat(fd, name.as_str(), AtFlags::SYMLINK_NOFOLLOW)
                .map_err(|e| self.err(&path, e))?;
            let kind = FileType::from_raw_mode(st.st_mode);
            let whiteout = kind == FileType::CharacterDevice && st.st_rdev == 0;
            let change = if whiteout {
                Some(ChangeKind::Deleted)
            } else {
                self.compare(&path, &st)
            };
            if let Some(change) = change {
                self.record(&path, change, kind == FileType::Directory);
            }
            if kind == FileType::Directory {
                let sub = rfs::openat(
                    fd,
                    name.as_str(),
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .map_err(|e| self.err(&path, e))?;
                self.dir(&sub, &path)?;
            }
        }
        Ok(())
    }

    /// Added, modified or (a directory as it was) unchanged.
    fn compare(&self, path: &str, st: &rfs::Stat) -> Option<ChangeKind> {
        let Ok(was) = self.lower.stat(path.trim_start_matches('/')) else {
            return Some(ChangeKind::Added);
        };
        let dirs = FileType::from_raw_mode(st.st_mode) == FileType::Directory
            && FileType::from_raw_mode(was.st_mode) == FileType::Directory;
        let same = st.st_size == was.st_size
            && st.st_mode == was.st_mode
            && st.st_mtime == was.st_mtime
            && st.st_mtime_nsec == was.st_mtime_nsec;
        (!(dirs && same)).then_some(ChangeKind::Modified)
    }

    fn record(&mut self, path: &str, change: ChangeKind, is_dir: bool) {
        if change != ChangeKind::Modified {
            let parent = path.rsplit_once('/').map_or("", |(p, _)| p);
            if !parent.is_empty() && self.changed_dirs.insert(parent.to_owned()) {
                self.out.push((parent.to_owned(), ChangeKind::Modified));
            }
        }
        if is_dir {
            self.changed_dirs.insert(path.to_owned());
        }
        self.out.push((path.to_owned(), change));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn additions_modifications_and_whiteouts_are_dockers_changes() {
        let t = tempfile::tempdir().unwrap();
        let (lower, upper) = (t.path().join("lower"), t.path().join("upper"));
        std::fs::create_dir_all(lower.join("etc")).unwrap();
        std::fs::create_dir_all(lower.join("same")).unwrap();
        std::fs::write(lower.join("etc/hosts"), "a").unwrap();
        std::fs::write(lower.join("etc/gone"), "a").unwrap();
        std::fs::create_dir_all(upper.join("etc")).unwrap();
        std::fs::create_dir_all(upper.join("new/dir")).unwrap();
        std::fs::write(upper.join("etc/hosts"), "b").unwrap();
        std::fs::write(upper.join("new/dir/f"), "c").unwrap();
        // A directory copied up as it was is no change of its own.
        std::fs::create_dir_all(upper.join("same")).unwrap();
        let was = std::fs::metadata(lower.join("same")).unwrap();
        std::fs::set_permissions(upper.join("same"), was.permissions()).unwrap();
        let mtime = filetime(&was);
        set_mtime(&upper.join("same"), mtime);
        let etc = upper.join("etc");
        let c = std::ffi::CString::new(etc.join("gone").to_str().unwrap()).unwrap();
        rfs::mknodat(
            rfs::CWD,
            c.as_c_str(),
            FileType::CharacterDevice,
            Mode::empty(),
            0,
        )
        .unwrap();
        let root = Root::open(&lower).unwrap();
        let got: Vec<(String, ChangeKind)> = changes(&upper, &root).unwrap();
        use ChangeKind::*;
        assert_eq!(
            got,
            [
                ("/etc".to_owned(), Modified),
                ("/etc/gone".to_owned(), Deleted),
                ("/etc/hosts".to_owned(), Modified),
                ("/new".to_owned(), Added),
                ("/new/dir".to_owned(), Added),
                ("/new/dir/f".to_owned(), Added),
            ]
        );
    }

    fn filetime(m: &std::fs::Metadata) -> (i64, i64) {
        use std::os::unix::fs::MetadataExt;
        (m.mtime(), m.mtime_nsec())
    }

    fn set_mtime(p: &Path, (s, ns): (i64, i64)) {
        let t = rfs::Timespec {
            tv_sec: s,
            tv_nsec: ns,
        };
        let ts = rfs::Timestamps {
            last_access: t,
            last_modification: t,
        };
        rfs::utimensat(rfs::CWD, p, &ts, AtFlags::empty()).unwrap();
    }
}
