//! File operations confined to a directory tree, by directory handle.
//!
//! Every path is resolved with `openat2(RESOLVE_IN_ROOT)` (openat2(2)): `..`
//! and symlinks, absolute ones included, resolve as if the tree were `/`,
//! so content the tree holds — a layer's own symlinks — can never redirect
//! a write outside it (the class of bugs behind CVE-2018-15664 and the
//! "tar slip" family). Only the parent directory is resolved that way; the
//! last component is always acted on with `*at` calls that do not follow
//! it (`O_NOFOLLOW`, `AT_SYMLINK_NOFOLLOW`).

use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use rustix::fs::{self as rfs, AtFlags, Mode, OFlags, ResolveFlags};

/// A path inside a root, as normalised components (never `.`, `..` or `/`).
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct RelPath(Vec<String>);

impl RelPath {
    /// Normalises `p` lexically: a leading `/` and `.` are dropped, `..`
    /// removes the previous component. `None` when `..` would leave the
    /// root or a component is not UTF-8.
    pub fn new(p: &Path) -> Option<Self> {
        let mut parts: Vec<String> = Vec::new();
        for c in p.components() {
            match c {
                std::path::Component::Normal(s) => parts.push(s.to_str()?.to_owned()),
                std::path::Component::ParentDir => {
                    parts.pop()?;
                }
                _ => {}
            }
        }
        Some(Self(parts))
    }

    /// The components.
    pub fn parts(&self) -> &[String] {
        &self.0
    }

    /// The last component, `None` for the root itself.
    pub fn name(&self) -> Option<&str> {
        self.0.last().map(String::as_str)
    }

    /// The parent, relative to the root ("" for top-level entries).
    pub fn parent(&self) -> String {
        self.0[..self.0.len().saturating_sub(1)].join("/")
    }

    /// `self` followed by `rest`.
    pub fn join(&self, rest: &Self) -> Self {
        Self(self.0.iter().chain(&rest.0).cloned().collect())
    }

    /// The path joined with `/`.
    pub fn joined(&self) -> String {
        self.0.join("/")
    }
}

/// The most [`Root::read`] reads: it serves small files (passwd, group,
/// .dockerignore), whatever the tree holds.
pub const MAX_READ: u64 = 16 << 20;

/// An open directory all operations are confined to.
#[derive(Debug)]
pub struct Root {
    fd: OwnedFd,
}

impl Root {
    /// Opens `dir` as a root.
    pub fn open(dir: &Path) -> io::Result<Self> {
        let fd = rfs::open(
            dir,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        Ok(Self { fd })
    }

    fn resolve(&self, rel: &str, flags: OFlags) -> io::Result<OwnedFd> {
        let path = if rel.is_empty() { "." } else { rel };
        let resolve = ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS;
        loop {
            match rfs::openat2(
                &self.fd,
                path,
                flags | OFlags::CLOEXEC,
                Mode::empty(),
                resolve,
            ) {
                // openat2 asks for a retry when a rename raced the lookup.
                Err(rustix::io::Errno::AGAIN) => continue,
                other => return other.map_err(io::Error::from),
            }
        }
    }

    /// The directory `rel` (resolved in the root) as a path handle.
    pub fn dir(&self, rel: &str) -> io::Result<OwnedFd> {
        self.resolve(rel, OFlags::PATH | OFlags::DIRECTORY)
    }

    /// Reads a whole regular file resolved inside the root (symlinks in
    /// the tree cannot lead out of it), up to [`MAX_READ`] bytes. A tree
    /// belongs to a container, which may put a FIFO or a device where a
    /// file is expected: the open never blocks, and anything but a regular
    /// file is refused.
    pub fn read(&self, rel: &str) -> io::Result<Vec<u8>> {
        let fd = self.resolve(rel, OFlags::RDONLY | OFlags::NONBLOCK)?;
        let st = rfs::fstat(&fd)?;
        if rfs::FileType::from_raw_mode(st.st_mode) != rfs::FileType::RegularFile {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{rel} is not a regular file"),
            ));
        }
        let mut out = Vec::new();
        let file = std::fs::File::from(fd);
        std::io::Read::read_to_end(&mut std::io::Read::take(file, MAX_READ + 1), &mut out)?;
        if out.len() as u64 > MAX_READ {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{rel} is larger than {MAX_READ} bytes"),
            ));
        }
        Ok(out)
    }

    /// `rel` (resolved in the root, a final symlink followed inside it)
    /// opened for reading: a file's content or a directory's entries. A
    /// FIFO is opened without waiting for a writer.
    pub fn open_read(&self, rel: &str) -> io::Result<OwnedFd> {
        self.resolve(rel, OFlags::RDONLY | OFlags::NONBLOCK)
    }

    /// The stat of `rel`, a final symlink followed inside the root.
    pub fn stat(&self, rel: &str) -> io::Result<rfs::Stat> {
        let fd = self.resolve(rel, OFlags::PATH)?;
        rfs::fstat(&fd).map_err(io::Error::from)
    }

    /// The directory `rel` opened for reading (for fsetxattr, fchown…).
    pub fn dir_readable(&self, rel: &str) -> io::Result<OwnedFd> {
        self.resolve(rel, OFlags::RDONLY | OFlags::DIRECTORY)
    }

    /// The parent directory of `p`, created (0755, root-owned) with its own
    /// parents when missing, as tar extraction does for archives without
    /// directory entries.
    pub fn parent_dir(&self, p: &RelPath) -> io::Result<OwnedFd> {
        match self.dir(&p.parent()) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            other => return other,
        }
        let parts = &p.parts()[..p.parts().len().saturating_sub(1)];
        let mut at = self.dir("")?;
        for (i, comp) in parts.iter().enumerate() {
            match rfs::mkdirat(&at, comp.as_str(), Mode::from_raw_mode(0o755)) {
                Ok(()) | Err(rustix::io::Errno::EXIST) => {}
                Err(e) => return Err(e.into()),
            }
            at = self.dir(&parts[..=i].join("/"))?;
        }
        Ok(at)
    }

    /// Removes whatever is at `name` in `dir` (a file, link, node or empty
    /// directory); nothing there is fine.
    pub fn clear(dir: &OwnedFd, name: &str) -> io::Result<()> {
        match rfs::unlinkat(dir, name, AtFlags::empty()) {
            Ok(()) | Err(rustix::io::Errno::NOENT) => Ok(()),
            Err(rustix::io::Errno::ISDIR) => {
                rfs::unlinkat(dir, name, AtFlags::REMOVEDIR).map_err(io::Error::from)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Removes `name` in `dir` and, for a directory, everything under it;
    /// symlinks are removed, never followed.
    pub fn clear_all(dir: &OwnedFd, name: &str) -> io::Result<()> {
        match Self::clear(dir, name) {
            Err(e) if e.raw_os_error() == Some(rustix::io::Errno::NOTEMPTY.raw_os_error()) => {}
            other => return other,
        }
        let sub = rfs::openat(
            dir,
            name,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        let mut names = Vec::new();
        for entry in rfs::Dir::read_from(&sub)? {
            let entry = entry?;
            let n = entry.file_name().to_bytes();
            if n != b"." && n != b".." {
                names.push(std::ffi::OsStr::from_bytes(n).to_owned());
            }
        }
        for n in names {
            Self::clear_all(&sub, &n.to_string_lossy())?;
        }
        Self::clear(dir, name)
    }

    /// The file type at `name` in `dir`, without following it.
    pub fn kind(dir: &OwnedFd, name: &str) -> io::Result<Option<rfs::FileType>> {
        match rfs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => Ok(Some(rfs::FileType::from_raw_mode(st.st_mode))),
            Err(rustix::io::Errno::NOENT) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relpaths_normalise_and_refuse_escapes() {
        let p = RelPath::new(Path::new("/a/./b/../c")).unwrap();
        assert_eq!(p.joined(), "a/c");
        assert_eq!(p.parent(), "a");
        assert_eq!(p.name(), Some("c"));
        assert!(RelPath::new(Path::new("a/../../etc")).is_none());
        assert!(RelPath::new(Path::new("../x")).is_none());
    }

    #[test]
    fn reads_follow_links_only_inside_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::write(dir.path().join("secret"), "host").unwrap();
        std::fs::write(root.join("secret"), "inside").unwrap();
        std::os::unix::fs::symlink("../../secret", root.join("etc/passwd")).unwrap();
        let r = Root::open(&root).unwrap();
        assert_eq!(r.read("etc/passwd").unwrap(), b"inside");
    }

    #[test]
    fn reads_refuse_what_is_not_a_regular_file_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("etc")).unwrap();
        nix::unistd::mkfifo(&root.join("etc/passwd"), nix::sys::stat::Mode::S_IRWXU).unwrap();
        std::os::unix::fs::symlink("/dev/zero", root.join("etc/group")).unwrap();
        let r = Root::open(root).unwrap();
        // A FIFO: refused at once (no writer would ever come).
        assert_eq!(
            r.read("etc/passwd").unwrap_err().kind(),
            io::ErrorKind::InvalidInput
        );
        // A link to /dev/zero resolves inside the root: nothing there.
        assert_eq!(
            r.read("etc/group").unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
    }

    #[test]
    fn symlinks_resolve_inside_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("real")).unwrap();
        std::os::unix::fs::symlink("/", root.join("up")).unwrap();
        std::os::unix::fs::symlink("../../../..", root.join("dots")).unwrap();
        let r = Root::open(&root).unwrap();
        // Both lead to the root itself, not to the host's / or beyond.
        for link in ["up", "dots"] {
            let fd = r.dir(&format!("{link}/real")).unwrap();
            let st = rfs::fstat(&fd).unwrap();
            let real = std::fs::metadata(root.join("real")).unwrap();
            assert_eq!(st.st_ino, std::os::unix::fs::MetadataExt::ino(&real));
        }
    }
}
