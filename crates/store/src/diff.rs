//! A layer tarball from an overlay upper dir (for commit and the builder):
//! the inverse of [`crate::unpack`]. A 0/0 character device becomes the
//! whiteout `.wh.<name>`, a `trusted.overlay.opaque=y` directory gains a
//! `.wh..wh..opq` entry; hardlinks within the layer stay hardlinks.
//!
//! Deterministic: entries are sorted by name, and headers carry only mode,
//! owner ids, size, mtime, link targets, device numbers and xattrs (no
//! atime/ctime, user or group names), so the same change gives the same
//! DiffID. The walk goes through directory handles and never follows a
//! symlink: the upper dir's content belongs to a container.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::io::{self, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags};

use crate::error::{Result, StoreError};
use crate::unpack::{OPAQUE_XATTR, WHITEOUT_OPAQUE, WHITEOUT_PREFIX};

/// Writes the tar of `upper` to `out`; returns the bytes of file content
/// it holds (the layer's size, as Docker counts it).
pub fn write_diff(upper: &Path, out: impl Write) -> Result<u64> {
    let root = rfs::open(
        upper,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| StoreError::io("opening", upper, e.into()))?;
    let mut w = DiffWriter {
        tar: tar::Builder::new(out),
        links: HashMap::new(),
        upper,
        content: 0,
        whiteouts: true,
    };
    w.walk(&root, "")?;
    w.tar
        .into_inner()
        .map_err(|e| StoreError::io("finishing diff of", upper, e))?;
    Ok(w.content)
}

/// Writes the entry `name` of the directory `parent` — a file, a link, a
/// node, or a directory with everything under it — as a tar stream whose
/// paths start with `as_name` (Docker's archive of a path in a container).
/// Nothing is read as a whiteout and no symlink is followed. `shown`
/// names the entry in errors.
pub fn write_entry(
    parent: &OwnedFd,
    name: &str,
    as_name: &str,
    shown: &Path,
    out: impl Write,
) -> Result<u64> {
    let mut w = DiffWriter {
        tar: tar::Builder::new(out),
        links: HashMap::new(),
        upper: shown,
        content: 0,
        whiteouts: false,
    };
    w.entry(parent, name, as_name)?;
    w.tar
        .into_inner()
        .map_err(|e| StoreError::io("finishing the archive of", shown, e))?;
    Ok(w.content)
}

struct DiffWriter<'a, W: Write> {
    tar: tar::Builder<W>,
    /// (dev, inode) → first path, for hardlinks.
    links: HashMap<(u64, u64), String>,
    upper: &'a Path,
    /// Bytes of regular-file content written.
    content: u64,
    /// 0/0 devices and opaque xattrs are overlay's whiteouts (an upper
    /// dir), not files (a merged view).
    whiteouts: bool,
}

impl<W: Write> DiffWriter<'_, W> {
    fn err(&self, rel: &str, e: impl Into<io::Error>) -> StoreError {
        StoreError::io("reading upper dir entry", self.upper.join(rel), e.into())
    }

    fn walk(&mut self, dir: &OwnedFd, rel: &str) -> Result<()> {
        let mut names: Vec<Vec<u8>> = Vec::new();
        let listing = rfs::Dir::read_from(dir).map_err(|e| self.err(rel, e))?;
        for entry in listing {
            let entry = entry.map_err(|e| self.err(rel, e))?;
            let name = entry.file_name().to_bytes();
            if name != b"." && name != b".." {
                names.push(name.to_vec());
            }
        }
        names.sort();
        for name in names {
            let name = String::from_utf8(name).map_err(|n| {
                self.err(
                    rel,
                    io::Error::other(format!("non-UTF-8 name {:?}", n.as_bytes())),
                )
            })?;
            let path = if rel.is_empty() {
                name.clone()
            } else {
                format!("{rel}/{name}")
            };
            self.entry(dir, &name, &path)?;
        }
        Ok(())
    }

    fn entry(&mut self, dir: &OwnedFd, name: &str, path: &str) -> Result<()> {
        let st =
            rfs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW).map_err(|e| self.err(path, e))?;
        let kind = FileType::from_raw_mode(st.st_mode);
        let mut h = header(&st);
        match kind {
            FileType::Directory => {
                let sub = rfs::openat(
                    dir,
                    name,
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .map_err(|e| self.err(path, e))?;
                let mut xattrs = xattrs(&sub).map_err(|e| self.err(path, e))?;
                let opaque =
                    self.whiteouts && xattrs.iter().any(|(k, v)| k == OPAQUE_XATTR && v == b"y");
                // The marker entry carries opacity; the xattr itself is
                // overlay's and must not reach another extractor.
                xattrs.retain(|(k, _)| k != OPAQUE_XATTR);
                h.set_entry_type(tar::EntryType::Directory);
                self.append(&mut h, &format!("{path}/"), &xattrs, io::empty())?;
                if opaque {
                    let mut wh = marker(h.mtime().unwrap_or(0));
                    self.append(
                        &mut wh,
                        &format!("{path}/{WHITEOUT_OPAQUE}"),
                        &[],
                        io::empty(),
                    )?;
                }
                self.walk(&sub, path)
            }
            FileType::CharacterDevice if st.st_rdev == 0 && self.whiteouts => {
                let (parent, hidden) = path.rsplit_once('/').map_or(("", path), |(p, n)| (p, n));
                let wh_path = if parent.is_empty() {
                    format!("{WHITEOUT_PREFIX}{hidden}")
                } else {
                    format!("{parent}/{WHITEOUT_PREFIX}{hidden}")
                };
                let mut wh = marker(h.mtime().unwrap_or(0));
                self.append(&mut wh, &wh_path, &[], io::empty())
            }
            FileType::RegularFile => self.file(dir, name, path, &st, h),
            FileType::Symlink => {
                let target =
                    rfs::readlinkat(dir, name, Vec::new()).map_err(|e| self.err(path, e))?;
                h.set_entry_type(tar::EntryType::Symlink);
                let target = OsStr::new(
                    std::str::from_utf8(target.to_bytes())
                        .map_err(|e| self.err(path, io::Error::other(e)))?,
                );
                self.tar
                    .append_link(&mut h, path, target)
                    .map_err(|e| self.err(path, e))
            }
            FileType::CharacterDevice | FileType::BlockDevice | FileType::Fifo => {
                h.set_entry_type(match kind {
                    FileType::CharacterDevice => tar::EntryType::Char,
                    FileType::BlockDevice => tar::EntryType::Block,
                    _ => tar::EntryType::Fifo,
                });
                if kind != FileType::Fifo {
                    h.set_device_major(rfs::major(st.st_rdev))
                        .map_err(|e| self.err(path, e))?;
                    h.set_device_minor(rfs::minor(st.st_rdev))
                        .map_err(|e| self.err(path, e))?;
                }
                self.append(&mut h, path, &[], io::empty())
            }
            // Sockets and unknown types are not layer content (Docker skips them too).
            _ => Ok(()),
        }
    }

    fn file(
        &mut self,
        dir: &OwnedFd,
        name: &str,
        path: &str,
        st: &rfs::Stat,
        mut h: tar::Header,
    ) -> Result<()> {
        if st.st_nlink > 1 {
            let key = (st.st_dev, st.st_ino);
            if let Some(first) = self.links.get(&key).cloned() {
                h.set_entry_type(tar::EntryType::Link);
                h.set_size(0);
                return self
                    .tar
                    .append_link(&mut h, path, &first)
                    .map_err(|e| self.err(path, e));
            }
            self.links.insert(key, path.to_owned());
        }
        let fd = rfs::openat(
            dir,
            name,
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| self.err(path, e))?;
        let xattrs = xattrs(&fd).map_err(|e| self.err(path, e))?;
        h.set_entry_type(tar::EntryType::Regular);
        let size = u64::try_from(st.st_size).unwrap_or(0);
        h.set_size(size);
        self.content += size;
        self.append(&mut h, path, &xattrs, std::fs::File::from(fd))
    }

    fn append(
        &mut self,
        h: &mut tar::Header,
        path: &str,
        xattrs: &[(String, Vec<u8>)],
        data: impl io::Read,
    ) -> Result<()> {
        if !xattrs.is_empty() {
            self.pax(path, xattrs)?;
        }
        self.tar
            .append_data(h, path, data)
            .map_err(|e| self.err(path, e))
    }

    /// A PAX extended header carrying the next entry's xattrs.
    fn pax(&mut self, path: &str, xattrs: &[(String, Vec<u8>)]) -> Result<()> {
        let mut body = Vec::new();
        for (k, v) in xattrs {
            body.extend_from_slice(&pax_record(&format!("SCHILY.xattr.{k}"), v));
        }
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::XHeader);
        h.set_mode(0o644);
        h.set_size(body.len() as u64);
        let short: String = path
            .chars()
            .rev()
            .take(80)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        h.set_path(format!("PaxHeaders/{}", short.trim_start_matches('/')))
            .map_err(|e| self.err(path, e))?;
        h.set_cksum();
        self.tar
            .append(&h, &body[..])
            .map_err(|e| self.err(path, e))
    }
}

/// One `"<len> key=value\n"` record; `len` counts itself.
fn pax_record(key: &str, value: &[u8]) -> Vec<u8> {
    let rest = key.len() + value.len() + 3; // ' ', '=', '\n'
    let mut len = rest + 1;
    while len != rest + len.to_string().len() {
        len = rest + len.to_string().len();
    }
    let mut out = format!("{len} {key}=").into_bytes();
    out.extend_from_slice(value);
    out.push(b'\n');
    out
}

/// The header of an empty whiteout or opaque marker. Every numeric
/// field is set: a fresh header holds NULs, which readers refuse.
fn marker(mtime: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(mtime);
    h.set_size(0);
    h
}

fn header(st: &rfs::Stat) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_mode(st.st_mode & 0o7777);
    h.set_uid(u64::from(st.st_uid));
    h.set_gid(u64::from(st.st_gid));
    h.set_mtime(u64::try_from(st.st_mtime).unwrap_or(0));
    h.set_size(0);
    h
}

/// The xattrs a layer carries: everything but overlay's own.
fn xattrs(fd: &impl AsFd) -> io::Result<Vec<(String, Vec<u8>)>> {
    let size = match rfs::flistxattr_query(fd) {
        Ok(0) | Err(rustix::io::Errno::NOTSUP) => return Ok(Vec::new()),
        Ok(n) => n,
        Err(e) => return Err(e.into()),
    };
    let mut names = vec![0u8; size];
    let n = rfs::flistxattr(fd, &mut names[..])?;
    names.truncate(n);
    let mut out = Vec::new();
    for raw in names.split(|b| *b == 0).filter(|n| !n.is_empty()) {
        let name = String::from_utf8_lossy(raw).into_owned();
        let keep = name == OPAQUE_XATTR || !name.starts_with("trusted.overlay.");
        if keep {
            let len = rfs::fgetxattr_query(fd, name.as_str())?;
            let mut value = vec![0u8; len];
            let n = rfs::fgetxattr(fd, name.as_str(), &mut value[..])?;
            value.truncate(n);
            out.push((name, value));
        }
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_record_length_counts_its_own_digits() {
        let r = pax_record("SCHILY.xattr.user.a", b"b");
        let s = String::from_utf8(r.clone()).unwrap();
        let (len, _) = s.split_once(' ').unwrap();
        assert_eq!(len.parse::<usize>().unwrap(), r.len());
        let long = pax_record("k", &[b'x'; 95]);
        assert_eq!(
            String::from_utf8_lossy(&long)
                .split_once(' ')
                .unwrap()
                .0
                .parse::<usize>()
                .unwrap(),
            long.len()
        );
    }
}
