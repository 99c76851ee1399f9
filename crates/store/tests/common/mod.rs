//! Test support: tarballs built byte by byte (so hostile names the `tar`
//! crate's builder refuses can be written), and tree comparison.
#![allow(dead_code)] // each test binary uses a different part of this module
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// A tar stream assembled entry by entry with raw GNU headers.
#[derive(Default)]
pub struct Tar {
    out: Vec<u8>,
}

impl Tar {
    pub fn new() -> Self {
        Self::default()
    }

    fn header(path: &str, kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        let name = &mut h.as_old_mut().name;
        assert!(path.len() < name.len(), "test paths stay short");
        name[..path.len()].copy_from_slice(path.as_bytes());
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_size(size);
        h.set_mtime(1_000_000);
        h.set_uid(0);
        h.set_gid(0);
        h
    }

    fn push(&mut self, mut h: tar::Header, data: &[u8]) -> &mut Self {
        h.set_cksum();
        self.out.extend_from_slice(h.as_bytes());
        self.out.extend_from_slice(data);
        let pad = (512 - data.len() % 512) % 512;
        self.out.extend(std::iter::repeat_n(0u8, pad));
        self
    }

    pub fn file(&mut self, path: &str, data: &[u8]) -> &mut Self {
        let h = Self::header(path, tar::EntryType::Regular, 0o644, data.len() as u64);
        self.push(h, data)
    }

    pub fn file_with(
        &mut self,
        path: &str,
        data: &[u8],
        mode: u32,
        uid: u64,
        gid: u64,
        mtime: u64,
    ) -> &mut Self {
        let mut h = Self::header(path, tar::EntryType::Regular, mode, data.len() as u64);
        h.set_uid(uid);
        h.set_gid(gid);
        h.set_mtime(mtime);
        self.push(h, data)
    }

    pub fn dir(&mut self, path: &str) -> &mut Self {
        let h = Self::header(path, tar::EntryType::Directory, 0o755, 0);
        self.push(h, &[])
    }

    fn link(&mut self, kind: tar::EntryType, path: &str, target: &str) -> &mut Self {
        let mut h = Self::header(path, kind, 0o777, 0);
        let ln = &mut h.as_old_mut().linkname;
        ln[..target.len()].copy_from_slice(target.as_bytes());
        self.push(h, &[])
    }

    pub fn symlink(&mut self, path: &str, target: &str) -> &mut Self {
        self.link(tar::EntryType::Symlink, path, target)
    }

    pub fn hardlink(&mut self, path: &str, target: &str) -> &mut Self {
        self.link(tar::EntryType::Link, path, target)
    }

    pub fn device(
        &mut self,
        path: &str,
        kind: tar::EntryType,
        major: u32,
        minor: u32,
    ) -> &mut Self {
        let mut h = Self::header(path, kind, 0o600, 0);
        h.set_device_major(major).unwrap();
        h.set_device_minor(minor).unwrap();
        self.push(h, &[])
    }

    /// A PAX header with xattrs for the next entry.
    pub fn xattrs(&mut self, pairs: &[(&str, &[u8])]) -> &mut Self {
        let mut body = Vec::new();
        for (k, v) in pairs {
            let rest = format!(" SCHILY.xattr.{k}=").len() + v.len() + 1;
            let mut len = rest + 1;
            while len != rest + len.to_string().len() {
                len = rest + len.to_string().len();
            }
            body.extend_from_slice(format!("{len} SCHILY.xattr.{k}=").as_bytes());
            body.extend_from_slice(v);
            body.push(b'\n');
        }
        let h = Self::header(
            "PaxHeaders/x",
            tar::EntryType::XHeader,
            0o644,
            body.len() as u64,
        );
        self.push(h, &body)
    }

    pub fn finish(&mut self) -> Vec<u8> {
        let mut out = std::mem::take(&mut self.out);
        out.extend_from_slice(&[0u8; 1024]);
        out
    }
}

/// What a tree holds, for equality checks: path → description of type,
/// mode, owner, size/content hash, link target, rdev, xattrs (overlay's
/// opaque marker included).
pub fn tree(root: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        let m = std::fs::symlink_metadata(&p).unwrap();
        let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
        let ft = m.file_type();
        let what = if ft.is_symlink() {
            format!("link->{}", std::fs::read_link(&p).unwrap().display())
        } else if ft.is_file() {
            let data = std::fs::read(&p).unwrap();
            format!(
                "file:{}:{}",
                data.len(),
                berth_image::Digest::sha256(&data).short()
            )
        } else if ft.is_dir() {
            "dir".to_owned()
        } else {
            format!("node:{:x}", m.rdev())
        };
        let mut xattrs: Vec<String> = Vec::new();
        if !ft.is_symlink() {
            if let Ok(names) = xattr_list(&p) {
                xattrs = names;
            }
        }
        let mode = if ft.is_symlink() {
            0
        } else {
            m.mode() & 0o7777
        };
        let mtime = if ft.is_dir() { 0 } else { m.mtime() };
        out.insert(
            rel,
            format!(
                "{what} mode={mode:o} uid={} gid={} mtime={mtime} xattrs={xattrs:?}",
                m.uid(),
                m.gid()
            ),
        );
        if ft.is_dir() {
            walk(root, &p, out);
        }
    }
}

fn xattr_list(p: &Path) -> std::io::Result<Vec<String>> {
    let size = rustix::fs::llistxattr_query(p)?;
    let mut names = vec![0u8; size];
    let n = rustix::fs::llistxattr(p, &mut names[..])?;
    let mut out = Vec::new();
    for name in names[..n].split(|b| *b == 0).filter(|n| !n.is_empty()) {
        let name = String::from_utf8_lossy(name).into_owned();
        let len = rustix::fs::lgetxattr_query(p, name.as_str())?;
        let mut v = vec![0u8; len];
        let got = rustix::fs::lgetxattr(p, name.as_str(), &mut v[..])?;
        out.push(format!("{name}={}", String::from_utf8_lossy(&v[..got])));
    }
    out.sort();
    Ok(out)
}
