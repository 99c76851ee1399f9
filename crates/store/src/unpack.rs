//! Applying a layer tarball to an empty directory that becomes an overlay
//! lower dir, in overlayfs's own whiteout format
//! (<https://docs.kernel.org/filesystems/overlayfs.html#whiteouts-and-opaque-directories>):
//! an OCI/AUFS whiteout `.wh.<name>` becomes a 0/0 character device `name`,
//! and `.wh..wh..opq` marks its directory `trusted.overlay.opaque=y`
//! (OCI image spec, layer.md "Whiteouts").
//!
//! Entries are written through [`Root`]: a hostile archive (`..`, absolute
//! paths, writes through its own symlinks, hardlinks to outside files) can
//! never touch anything outside the directory. Ownership, modes, xattrs,
//! mtimes, hardlinks, symlinks and device nodes are preserved. The whole
//! uncompressed stream is hashed: it must equal the layer's DiffID.

use std::io::{self, Read};
use std::os::fd::OwnedFd;
use std::path::Path;
use std::rc::Rc;

use berth_image::{Digest, Hasher};
use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags, Timespec, Timestamps, XattrFlags};

use crate::error::{Result, StoreError};
use crate::fsroot::{RelPath, Root};

/// Prefix of a whiteout entry.
pub const WHITEOUT_PREFIX: &str = ".wh.";
/// Name of the opaque-directory marker entry.
pub const WHITEOUT_OPAQUE: &str = ".wh..wh..opq";
/// Overlayfs's opaque-directory xattr.
pub const OPAQUE_XATTR: &str = "trusted.overlay.opaque";
/// xattrs overlayfs reads to steer lookups; a layer must never set them.
const OVERLAY_XATTR_PREFIX: &str = "trusted.overlay.";
/// PAX records carrying xattrs (GNU tar, Docker, BuildKit).
const PAX_XATTR: &str = "SCHILY.xattr.";

/// Limits applied while unpacking.
#[derive(Debug, Clone, Copy)]
pub struct UnpackOptions {
    /// Bound on the bytes of file content a layer may unpack to (a
    /// decompression bomb stops here).
    pub max_bytes: u64,
    /// Whether block and character devices other than whiteouts may be
    /// created (root-owned stores: yes, as Docker does).
    pub allow_devices: bool,
    /// Whether `.wh.` entries are whiteouts (a layer) or plain files (an
    /// archive copied into a container).
    pub whiteouts: bool,
    /// Whether an entry may replace a directory with a non-directory or
    /// the reverse (Docker's `noOverwriteDirNonDir` is the opposite).
    pub replace_dirs: bool,
    /// Owner of everything written, instead of the archive's.
    pub owner: Option<(u32, u32)>,
}

impl Default for UnpackOptions {
    fn default() -> Self {
        Self {
            max_bytes: 64 << 30,
            allow_devices: true,
            whiteouts: true,
            replace_dirs: true,
            owner: None,
        }
    }
}

/// What an unpack produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unpacked {
    /// Digest of the uncompressed tar stream.
    pub diff_id: Digest,
    /// Bytes of file content written.
    pub size: u64,
}

/// Hashes everything read through it.
struct HashingReader<R> {
    inner: R,
    hasher: Hasher,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// Unpacks an uncompressed layer tar into `dest` (an empty directory).
/// `layer` names the layer in errors.
pub fn unpack(
    layer: &str,
    tar_stream: impl Read,
    dest: &Path,
    opts: UnpackOptions,
) -> Result<Unpacked> {
    let root = Root::open(dest).map_err(|e| StoreError::io("opening layer directory", dest, e))?;
    let mut reader = HashingReader {
        inner: tar_stream,
        hasher: berth_image::Algorithm::Sha256.hasher(),
    };
    let size = extract(layer, &mut reader, &root, &RelPath::default(), opts)?;
    // The DiffID covers the whole stream, padding after the end marker too.
    io::copy(&mut reader, &mut io::sink())
        .map_err(|e| StoreError::io("reading layer", layer, e))?;
    Ok(Unpacked {
        diff_id: reader.hasher.finish(),
        size,
    })
}

/// Writes the entries of `tar_stream` under `base` in `root`, every path
/// resolved inside `root` (an entry may not leave `base` by `..`; a
/// symlink it meets resolves as if `root` were `/`). Returns the bytes of
/// file content written. `what` names the archive in errors.
pub fn extract(
    what: &str,
    tar_stream: impl Read,
    root: &Root,
    base: &RelPath,
    opts: UnpackOptions,
) -> Result<u64> {
    let mut u = Unpacker {
        layer: what,
        root,
        base,
        opts,
        written: 0,
        dir_times: Vec::new(),
        parent: None,
    };
    let mut ar = tar::Archive::new(tar_stream);
    let entries = ar
        .entries()
        .map_err(|e| StoreError::io("reading layer", what, e))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| StoreError::io("reading layer", what, e))?;
        u.entry(&mut entry)?;
    }
    u.finish_dir_times()?;
    Ok(u.written)
}

struct Unpacker<'a> {
    layer: &'a str,
    root: &'a Root,
    /// Where in `root` the archive's entries go.
    base: &'a RelPath,
    opts: UnpackOptions,
    written: u64,
    /// Directory mtimes, applied last: creating children changes them.
    dir_times: Vec<(RelPath, u64)>,
    /// The last parent directory resolved: tarballs list a directory's
    /// files together, so most entries skip the lookup. Dropped whenever
    /// an entry may replace a directory.
    parent: Option<(String, Rc<OwnedFd>)>,
}

/// Metadata every entry carries.
struct Meta {
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: u64,
    xattrs: Vec<(String, Vec<u8>)>,
}

impl Unpacker<'_> {
    fn bad(&self, entry: &str, reason: impl Into<String>) -> StoreError {
        StoreError::BadLayerEntry {
            layer: self.layer.to_owned(),
            entry: entry.to_owned(),
            reason: reason.into(),
        }
    }

    fn io(&self, entry: &str, what: &str, e: impl Into<io::Error>) -> StoreError {
        self.bad(entry, format!("{what}: {}", e.into()))
    }

    fn entry<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>) -> Result<()> {
        let raw = entry
            .path()
            .map_err(|e| StoreError::io("reading entry path in layer", self.layer, e))?;
        let shown = raw.display().to_string();
        let path =
            RelPath::new(&raw).ok_or_else(|| self.bad(&shown, "path leaves the layer root"))?;
        let Some(name) = path.name().map(str::to_owned) else {
            return Ok(()); // the root itself ("./"): nothing to create
        };
        let path = self.base.join(&path);
        let meta = self.meta(entry, &shown)?;
        if let (true, Some(hidden)) = (self.opts.whiteouts, name.strip_prefix(WHITEOUT_PREFIX)) {
            return self.whiteout(&path, hidden, &shown);
        }
        let kind = entry.header().entry_type();
        let is_file = matches!(
            kind,
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse
        );
        if !is_file {
            self.parent = None;
        }
        let parent = self.parent_of(&path, &shown)?;
        match kind {
            tar::EntryType::Directory => self.dir(&parent, &path, &name, &meta, &shown),
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
                self.file(&parent, &name, entry, &meta, &shown)
            }
            tar::EntryType::Symlink => self.symlink(&parent, &name, entry, &meta, &shown),
            tar::EntryType::Link => self.hardlink(&parent, &name, entry, &shown),
            tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
                self.node(&parent, &name, entry.header(), &meta, &shown)
            }
            other => Err(self.bad(&shown, format!("unsupported entry type {other:?}"))),
        }
    }

    fn parent_of(&mut self, path: &RelPath, shown: &str) -> Result<Rc<OwnedFd>> {
        let key = path.parent();
        if let Some((cached, fd)) = &self.parent {
            if *cached == key {
                return Ok(fd.clone());
            }
        }
        let fd = Rc::new(
            self.root
                .parent_dir(path)
                .map_err(|e| self.io(shown, "resolving parent", e))?,
        );
        self.parent = Some((key, fd.clone()));
        Ok(fd)
    }

    fn meta<R: Read>(&self, entry: &mut tar::Entry<'_, R>, shown: &str) -> Result<Meta> {
        let h = entry.header();
        let raw = h.as_old();
        let field = |bytes: &[u8], r: io::Result<u64>, what: &str| {
            blank_is_zero(bytes, r).map_err(|e| self.io(shown, what, e))
        };
        let mode = field(&raw.mode, h.mode().map(u64::from), "mode")?;
        let mode = u32::try_from(mode & 0o7777).unwrap_or(0o644);
        let uid = u32::try_from(field(&raw.uid, h.uid(), "uid")?)
            .map_err(|_| self.bad(shown, "uid out of range"))?;
        let gid = u32::try_from(field(&raw.gid, h.gid(), "gid")?)
            .map_err(|_| self.bad(shown, "gid out of range"))?;
        let mtime = field(&raw.mtime, h.mtime(), "mtime")?;
        let mut xattrs = Vec::new();
        if let Some(pax) = entry
            .pax_extensions()
            .map_err(|e| self.io(shown, "PAX header", e))?
        {
            for ext in pax {
                let ext = ext.map_err(|e| self.io(shown, "PAX header", e))?;
                let Ok(key) = ext.key() else { continue };
                if let Some(name) = key.strip_prefix(PAX_XATTR) {
                    if !name.starts_with(OVERLAY_XATTR_PREFIX) {
                        xattrs.push((name.to_owned(), ext.value_bytes().to_vec()));
                    }
                }
            }
        }
        let (uid, gid) = self.opts.owner.unwrap_or((uid, gid));
        Ok(Meta {
            mode,
            uid,
            gid,
            mtime,
            xattrs,
        })
    }

    fn whiteout(&mut self, path: &RelPath, hidden: &str, shown: &str) -> Result<()> {
        self.parent = None;
        let parent = self
            .root
            .parent_dir(path)
            .map_err(|e| self.io(shown, "resolving parent", e))?;
        if path.name() == Some(WHITEOUT_OPAQUE) {
            let dir = self
                .root
                .dir_readable(&path.parent())
                .map_err(|e| self.io(shown, "opening directory", e))?;
            return rfs::fsetxattr(&dir, OPAQUE_XATTR, b"y", XattrFlags::empty())
                .map_err(|e| self.io(shown, "marking directory opaque", e));
        }
        if hidden.is_empty() || hidden == "." || hidden == ".." {
            return Err(self.bad(shown, "whiteout names nothing"));
        }
        Root::clear(&parent, hidden).map_err(|e| self.io(shown, "replacing", e))?;
        rfs::mknodat(
            &parent,
            hidden,
            FileType::CharacterDevice,
            Mode::empty(),
            rfs::makedev(0, 0),
        )
        .map_err(|e| self.io(shown, "creating whiteout", e))
    }

    fn dir(
        &mut self,
        parent: &OwnedFd,
        path: &RelPath,
        name: &str,
        meta: &Meta,
        shown: &str,
    ) -> Result<()> {
        match Root::kind(parent, name).map_err(|e| self.io(shown, "stat", e))? {
            Some(FileType::Directory) => {}
            Some(_) if !self.opts.replace_dirs => {
                return Err(self.bad(shown, "cannot overwrite a non-directory with a directory"))
            }
            Some(_) => {
                Root::clear(parent, name).map_err(|e| self.io(shown, "replacing", e))?;
                self.mkdir(parent, name, shown)?;
            }
            None => self.mkdir(parent, name, shown)?,
        }
        let fd = rfs::openat(
            parent,
            name,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| self.io(shown, "opening directory", e))?;
        self.apply_fd(&fd, meta, shown)?;
        self.dir_times.push((path.clone(), meta.mtime));
        Ok(())
    }

    /// Clears the way for a non-directory entry: what is there goes,
    /// unless it is a directory that must stay.
    fn replace(&self, parent: &OwnedFd, name: &str, shown: &str) -> Result<()> {
        if !self.opts.replace_dirs
            && Root::kind(parent, name).map_err(|e| self.io(shown, "stat", e))?
                == Some(FileType::Directory)
        {
            return Err(self.bad(shown, "cannot overwrite a directory with a non-directory"));
        }
        // A directory goes with everything in it, as under Docker.
        Root::clear_all(parent, name).map_err(|e| self.io(shown, "replacing", e))
    }

    fn mkdir(&self, parent: &OwnedFd, name: &str, shown: &str) -> Result<()> {
        rfs::mkdirat(parent, name, Mode::from_raw_mode(0o700))
            .map_err(|e| self.io(shown, "creating directory", e))
    }

    fn file(
        &mut self,
        parent: &OwnedFd,
        name: &str,
        content: &mut dyn Read,
        meta: &Meta,
        shown: &str,
    ) -> Result<()> {
        let flags =
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let create = || rfs::openat(parent, name, flags, Mode::from_raw_mode(0o600));
        // Creating first and clearing only on EEXIST saves a syscall per
        // file in the common case (a fresh layer directory).
        let fd = match create() {
            Err(rustix::io::Errno::EXIST) => {
                self.parent = None; // what is replaced may be a directory
                self.replace(parent, name, shown)?;
                create()
            }
            other => other,
        }
        .map_err(|e| self.io(shown, "creating file", e))?;
        let mut file = std::fs::File::from(fd);
        let budget = self.opts.max_bytes.saturating_sub(self.written);
        let n = io::copy(&mut content.take(budget + 1), &mut file)
            .map_err(|e| self.io(shown, "writing", e))?;
        if n > budget {
            return Err(StoreError::TooLarge {
                layer: self.layer.to_owned(),
                limit: self.opts.max_bytes,
            });
        }
        self.written += n;
        self.apply_fd(&file, meta, shown)?;
        let t = timestamps(meta.mtime);
        rfs::futimens(&file, &t).map_err(|e| self.io(shown, "setting mtime", e))
    }

    /// Owner, then mode (a chown clears set-id bits), then xattrs.
    fn apply_fd(&self, fd: &impl std::os::fd::AsFd, meta: &Meta, shown: &str) -> Result<()> {
        rfs::fchown(fd, Some(uid(meta.uid)), Some(gid(meta.gid)))
            .map_err(|e| self.io(shown, "chown", e))?;
        rfs::fchmod(fd, Mode::from_raw_mode(meta.mode)).map_err(|e| self.io(shown, "chmod", e))?;
        for (k, v) in &meta.xattrs {
            rfs::fsetxattr(fd, k.as_str(), v, XattrFlags::empty())
                .map_err(|e| self.io(shown, &format!("setting xattr {k}"), e))?;
        }
        Ok(())
    }

    fn symlink<R: Read>(
        &mut self,
        parent: &OwnedFd,
        name: &str,
        entry: &tar::Entry<'_, R>,
        meta: &Meta,
        shown: &str,
    ) -> Result<()> {
        let target = self.link_target(entry, shown, "symlink")?;
        self.replace(parent, name, shown)?;
        // The target is stored verbatim: it is resolved later inside the
        // container's root, never by berth on the host.
        rfs::symlinkat(target.as_path(), parent, name)
            .map_err(|e| self.io(shown, "creating symlink", e))?;
        self.own_and_date(parent, name, meta, shown)
    }

    fn hardlink<R: Read>(
        &mut self,
        parent: &OwnedFd,
        name: &str,
        entry: &tar::Entry<'_, R>,
        shown: &str,
    ) -> Result<()> {
        let target = self.link_target(entry, shown, "hardlink")?;
        // Relative to where the archive goes, as Docker's untar joins it.
        let target = RelPath::new(&target)
            .map(|t| self.base.join(&t))
            .ok_or_else(|| self.bad(shown, "hardlink target leaves the layer root"))?;
        let tname = target
            .name()
            .ok_or_else(|| self.bad(shown, "hardlink to the layer root"))?;
        let tparent = self
            .root
            .dir(&target.parent())
            .map_err(|e| self.io(shown, "resolving hardlink target", e))?;
        self.replace(parent, name, shown)?;
        // linkat without AT_SYMLINK_FOLLOW links the target entry itself,
        // found inside the root: never a file outside it.
        rfs::linkat(&tparent, tname, parent, name, AtFlags::empty())
            .map_err(|e| self.io(shown, &format!("hardlink to {}", target.joined()), e))
    }

    fn node(
        &mut self,
        parent: &OwnedFd,
        name: &str,
        h: &tar::Header,
        meta: &Meta,
        shown: &str,
    ) -> Result<()> {
        let kind = match h.entry_type() {
            tar::EntryType::Char => FileType::CharacterDevice,
            tar::EntryType::Block => FileType::BlockDevice,
            _ => FileType::Fifo,
        };
        let major = h.device_major().ok().flatten().unwrap_or(0);
        let minor = h.device_minor().ok().flatten().unwrap_or(0);
        if kind != FileType::Fifo && !self.opts.allow_devices {
            return Err(self.bad(
                shown,
                format!("device node {major}:{minor} is not allowed in this store"),
            ));
        }
        self.replace(parent, name, shown)?;
        rfs::mknodat(
            parent,
            name,
            kind,
            Mode::from_raw_mode(meta.mode),
            rfs::makedev(major, minor),
        )
        .map_err(|e| self.io(shown, "creating device node", e))?;
        // mknod's mode went through the umask; the node was just made here.
        rfs::chmodat(
            parent,
            name,
            Mode::from_raw_mode(meta.mode),
            AtFlags::empty(),
        )
        .map_err(|e| self.io(shown, "chmod", e))?;
        self.own_and_date(parent, name, meta, shown)
    }

    /// Owner and mtime of `name` in `parent`, never following it.
    fn own_and_date(&self, parent: &OwnedFd, name: &str, meta: &Meta, shown: &str) -> Result<()> {
        let nofollow = AtFlags::SYMLINK_NOFOLLOW;
        rfs::chownat(
            parent,
            name,
            Some(uid(meta.uid)),
            Some(gid(meta.gid)),
            nofollow,
        )
        .map_err(|e| self.io(shown, "chown", e))?;
        rfs::utimensat(parent, name, &timestamps(meta.mtime), nofollow)
            .map_err(|e| self.io(shown, "setting mtime", e))
    }

    fn link_target<R: Read>(
        &self,
        entry: &tar::Entry<'_, R>,
        shown: &str,
        kind: &str,
    ) -> Result<std::path::PathBuf> {
        entry
            .link_name()
            .map_err(|e| self.io(shown, "link target", e))?
            .map(|t| t.into_owned())
            .ok_or_else(|| self.bad(shown, format!("{kind} without a target")))
    }

    /// Deepest first, so setting a child's time never disturbs its parent's.
    fn finish_dir_times(&mut self) -> Result<()> {
        let mut times = std::mem::take(&mut self.dir_times);
        times.sort_by_key(|t| std::cmp::Reverse(t.0.parts().len()));
        for (path, mtime) in times {
            let shown = path.joined();
            let Some(name) = path.name() else { continue };
            let parent = self
                .root
                .dir(&path.parent())
                .map_err(|e| self.io(&shown, "resolving parent", e))?;
            rfs::utimensat(&parent, name, &timestamps(mtime), AtFlags::SYMLINK_NOFOLLOW)
                .map_err(|e| self.io(&shown, "setting mtime", e))?;
        }
        Ok(())
    }
}

fn timestamps(mtime: u64) -> Timestamps {
    let t = Timespec {
        tv_sec: i64::try_from(mtime).unwrap_or(i64::MAX),
        tv_nsec: 0,
    };
    Timestamps {
        last_access: t,
        last_modification: t,
    }
}

fn uid(n: u32) -> rfs::Uid {
    rfs::Uid::from_raw(n)
}

fn gid(n: u32) -> rfs::Gid {
    rfs::Gid::from_raw(n)
}

/// A numeric header field left blank (all NULs or spaces) reads as 0, as
/// Go's archive/tar — and so Docker — reads it; other tools write such
/// layers.
fn blank_is_zero(raw: &[u8], parsed: io::Result<u64>) -> io::Result<u64> {
    if raw.iter().all(|b| *b == 0 || *b == b' ') {
        Ok(0)
    } else {
        parsed
    }
}
