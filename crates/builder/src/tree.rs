//! A tree that `COPY`/`ADD` read from: the build context (with its
//! `.dockerignore`) or another stage's or image's root filesystem.
//!
//! Every path is resolved inside the tree (`openat2(RESOLVE_IN_ROOT)`
//! through [`berth_store::fsroot::Root`]): a symlink in the context, even
//! an absolute one or one made of `..`, resolves as if the tree were `/`,
//! so a build can never read a file outside it. A source named directly is
//! followed if it is a symlink (inside the tree, as Docker does); entries
//! under a source directory are never followed: symlinks are copied as
//! symlinks. A context received as a tar stream stays one
//! ([`Archive`]): the same rules, resolved in memory.

use std::collections::HashMap;
use std::io::{self, Read};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use berth_store::fsroot::Root;
use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags};
use sha2::{Digest as _, Sha256};

use crate::archive::Archive;
use crate::error::{BuildError, Result};
use crate::ignore::{glob_match, has_wildcards, Dockerignore};
use crate::stamp::{FileHashes, ImageChecksums, Stamp};

/// What an entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    File,
    Dir,
    Symlink,
    /// Devices, fifos and sockets: Docker skips them in a build context.
    Other,
}

/// One entry of a source, as found (never followed below the source).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The path under the source (`""` for the source itself).
    pub rel: String,
    pub kind: Kind,
    /// Permission bits (with setuid, setgid, sticky).
    pub mode: u32,
    pub size: u64,
    /// Seconds and nanoseconds.
    pub mtime: (i64, i64),
    /// A symlink's target.
    pub link: Option<String>,
}

/// A handle to read one entry's content.
#[derive(Debug)]
pub struct Opener<'a> {
    src: Src<'a>,
    /// A context read in place: the entry's stamp when it was found, and
    /// the stamp it had when its content was hashed (if it was).
    stamps: Option<(Stamp, Option<Stamp>)>,
}

#[derive(Debug)]
enum Src<'a> {
    /// `name` in the directory `at`, or `at` itself.
    At {
        at: &'a OwnedFd,
        name: Option<&'a str>,
    },
    /// A node of a received context.
    Node { archive: &'a Archive, index: usize },
}

pub use crate::spool::Content;

impl<'a> Opener<'a> {
    /// The entry's content (a regular file; never follows a symlink).
    pub fn open(&self) -> io::Result<Content<'a>> {
        let (at, name) = match self.src {
            Src::At { at, name } => (at, name),
            Src::Node { archive, index } => return archive.open(index),
        };
        let fd = match name {
            // Never blocks: a file swapped for a FIFO since the walk saw it
            // is opened, not waited on (and then refused by its stamp).
            Some(name) => rfs::openat(
                at,
                name,
                OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
                Mode::empty(),
            )?,
            // The source itself, opened when it was resolved: opened anew
            // (a dup would share, and move, its offset).
            None => rfs::open(
                format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(at)),
                OFlags::RDONLY | OFlags::CLOEXEC,
                Mode::empty(),
            )?,
        };
        Ok(Content::File(std::fs::File::from(fd).take(u64::MAX)))
    }

    /// For a file of a context read in place, after its content was
    /// read: fails unless the file is still the one the walk found and the
    /// one whose hash keyed the step — a file written meanwhile would give
    /// the layer content its cache key does not describe.
    pub fn check_unchanged(&self) -> io::Result<()> {
        let (Some((found, hashed)), Src::At { at, name }) = (self.stamps, &self.src) else {
            return Ok(());
        };
        let now = match name {
            Some(name) => rfs::statat(at, *name, AtFlags::SYMLINK_NOFOLLOW)?,
            None => rfs::fstat(at)?,
        };
        if Stamp::of(&now) != found || hashed.is_some_and(|h| h != found) {
            return Err(io::Error::other(
                "the file changed during the build (build again once it is written)",
            ));
        }
        Ok(())
    }

    /// The content hash, where it is already known.
    fn known_hash(&self) -> Option<[u8; 32]> {
        match self.src {
            Src::Node { archive, index } => Some(archive.node(index).hash),
            Src::At { .. } => None,
        }
    }
}

/// Where a tree's entries are.
#[derive(Debug)]
enum Backing {
    Dir(Root),
    Archive(Archive),
}

/// A tree to copy from.
#[derive(Debug)]
pub struct Tree {
    backing: Backing,
    path: PathBuf,
    ignore: Option<Dockerignore>,
    /// Whether this is the build context (errors say so).
    context: bool,
    /// Content hashes already computed, by path in the tree.
    hashes: Mutex<HashMap<String, [u8; 32]>>,
    /// Set for a context directory read in place.
    in_place: Option<InPlace>,
    /// Set for an image's root filesystem: its ID and the daemon's memo
    /// of checksums by image.
    image: Option<(String, Arc<ImageChecksums>)>,
}

/// What a context read in place keeps besides its directory.
#[derive(Debug)]
struct InPlace {
    /// Hashes by stamp, shared by every build of the daemon.
    known: Arc<FileHashes>,
    /// The stamp each file had when this build hashed it, by path.
    hashed: Mutex<HashMap<String, Stamp>>,
    /// Where a filtered copy for bind mounts is written.
    scratch: PathBuf,
    copy: OnceLock<tempfile::TempDir>,
}

impl Tree {
    /// The build context at `dir`, filtered by its `.dockerignore`, with
    /// hashes known only to this build.
    pub fn context(dir: &Path) -> Result<Self> {
        Self::context_in_place(dir, &std::env::temp_dir(), Arc::default())
    }

    /// The build context directory `dir` read where it is (a local
    /// client's): content hashes come from `known` where a file's stamp
    /// matches, and a copy (for `RUN --mount=type=bind`) is made in
    /// `scratch`.
    pub fn context_in_place(dir: &Path, scratch: &Path, known: Arc<FileHashes>) -> Result<Self> {
        let root = Root::open(dir).map_err(|e| BuildError::io("opening the context", dir, e))?;
        let mut tree = Self::context_of(Backing::Dir(root), dir.to_owned())?;
        tree.in_place = Some(InPlace {
            known,
            hashed: Mutex::new(HashMap::new()),
            scratch: scratch.to_owned(),
            copy: OnceLock::new(),
        });
        Ok(tree)
    }

    /// A build context received as a tar stream, filtered by its
    /// `.dockerignore`.
    pub fn context_archive(archive: Archive) -> Result<Self> {
        Self::context_of(Backing::Archive(archive), PathBuf::from("<build context>"))
    }

    fn context_of(backing: Backing, dir: PathBuf) -> Result<Self> {
        let mut tree = Self {
            backing,
            path: dir,
            ignore: None,
            context: true,
            hashes: Mutex::new(HashMap::new()),
            in_place: None,
            image: None,
        };
        tree.ignore = match tree.read(".dockerignore") {
            Ok(bytes) => {
                let text = String::from_utf8_lossy(&bytes);
                Some(
                    Dockerignore::parse(&text)
                        .map_err(|e| BuildError::Invalid(format!(".dockerignore: {e}")))?,
                )
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => {
                return Err(BuildError::io(
                    "reading",
                    tree.path.join(".dockerignore"),
                    e,
                ))
            }
        };
        Ok(tree)
    }

    /// A root filesystem (another stage, an image) mounted at `dir`.
    pub fn rootfs(dir: &Path) -> Result<Self> {
        let root = Root::open(dir).map_err(|e| BuildError::io("opening", dir, e))?;
        Ok(Self {
            backing: Backing::Dir(root),
            path: dir.to_owned(),
            ignore: None,
            context: false,
            hashes: Mutex::new(HashMap::new()),
            in_place: None,
            image: None,
        })
    }

    /// The root filesystem of image `id` mounted at `dir`: checksums of
    /// its sources are remembered in `memo` across builds.
    pub fn image_rootfs(dir: &Path, id: String, memo: Arc<ImageChecksums>) -> Result<Self> {
        let mut tree = Self::rootfs(dir)?;
        tree.image = Some((id, memo));
        Ok(tree)
    }

    /// Where the tree is on the host.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Where `rel` (resolved inside the tree) is on the host, for a bind
    /// mount: a received context is written out as files first.
    pub fn host_path(&self, rel: &str) -> Result<PathBuf> {
        let unpacked;
        let (root, shown) = match (&self.backing, &self.in_place) {
            (Backing::Dir(root), None) => (root, self.path.as_path()),
            (Backing::Dir(_), Some(place)) => {
                let dir = self.copied(place)?;
                unpacked = Root::open(dir).map_err(|e| BuildError::io("opening", dir, e))?;
                (&unpacked, dir)
            }
            (Backing::Archive(a), _) => {
                let dir = a.unpacked()?;
                unpacked = Root::open(dir).map_err(|e| BuildError::io("opening", dir, e))?;
                (&unpacked, dir)
            }
        };
        let fd = root
            .open_read(rel)
            .map_err(|e| BuildError::io("opening", shown.join(rel), e))?;
        std::fs::read_link(format!(
            "/proc/self/fd/{}",
            std::os::fd::AsRawFd::as_raw_fd(&fd)
        ))
        .map_err(|e| BuildError::io("resolving", shown.join(rel), e))
    }

    /// A context read in place, copied (what `.dockerignore` keeps) for a
    /// bind mount: the step sees what a tar of it would have held, and
    /// nothing it does reaches the user's directory.
    fn copied<'p>(&self, place: &'p InPlace) -> Result<&'p Path> {
        if let Some(dir) = place.copy.get() {
            return Ok(dir.path());
        }
        let dir = tempfile::Builder::new()
            .prefix("ctx-")
            .tempdir_in(&place.scratch)
            .map_err(|e| BuildError::io("creating a directory in", &place.scratch, e))?;
        let opts = crate::copy::CopyOptions::default();
        crate::copy::copy(self, &[String::new()], false, "/", dir.path(), opts)?;
        // Two stages racing here: the loser's copy goes.
        let _ = place.copy.set(dir);
        Ok(place.copy.get().map_or(&place.scratch, |d| d.path()))
    }

    /// Reads a file of the tree (the Dockerfile).
    pub fn read(&self, rel: &str) -> io::Result<Vec<u8>> {
        match &self.backing {
            Backing::Dir(root) => root.read(rel),
            Backing::Archive(a) => a.read(rel),
        }
    }

    /// Whether `rel` exists (followed, inside the tree).
    fn exists(&self, rel: &str) -> io::Result<()> {
        match &self.backing {
            Backing::Dir(root) => root.open_read(rel).map(drop),
            Backing::Archive(a) => a.lookup(rel, true).map(drop),
        }
    }

    /// Whether source `rel` is a directory (followed, inside the tree),
    /// without walking it.
    pub fn is_dir(&self, rel: &str) -> Result<bool> {
        let found = match &self.backing {
            Backing::Dir(root) => root.stat(rel).map(|st| kind_of(&st) == Kind::Dir),
            Backing::Archive(a) => a.lookup(rel, true).map(|i| a.node(i).kind == Kind::Dir),
        };
        found.map_err(|e| BuildError::io("reading", self.path.join(rel), e))
    }

    fn excluded(&self, rel: &str) -> bool {
        self.ignore.as_ref().is_some_and(|i| i.is_excluded(rel))
    }

    /// The sources a `COPY` source names: the path itself (cleaned), or
    /// every entry its wildcards match, in name order.
    pub fn resolve(&self, source: &str) -> Result<Vec<String>> {
        let rel = self.clean(source)?;
        if !has_wildcards(&rel) {
            if !rel.is_empty() && self.excluded(&rel) {
                return Err(self.not_found(source));
            }
            return match self.exists(&rel) {
                Ok(()) => Ok(vec![rel]),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Err(self.not_found(source)),
                Err(e) => Err(BuildError::io("resolving", self.path.join(&rel), e)),
            };
        }
        let mut found = vec![String::new()];
        for part in rel.split('/') {
            let mut next = Vec::new();
            for base in &found {
                let join = |n: &str| {
                    if base.is_empty() {
                        n.to_owned()
                    } else {
                        format!("{base}/{n}")
                    }
                };
                if !has_wildcards(part) {
                    next.push(join(part));
                    continue;
                }
                for name in self.names(base)? {
                    let hit = glob_match(part, &name)
                        .map_err(|e| BuildError::Invalid(format!("COPY source {source:?}: {e}")))?;
                    if hit {
                        next.push(join(&name));
                    }
                }
            }
            found = next;
        }
        found.retain(|p| !self.excluded(p) && self.exists(p).is_ok());
        found.sort();
        if found.is_empty() {
            return Err(BuildError::Invalid(format!(
                "COPY failed: no source files were specified (nothing matches {source})"
            )));
        }
        Ok(found)
    }

    /// A source path, cleaned and kept inside the tree.
    fn clean(&self, source: &str) -> Result<String> {
        let mut parts: Vec<&str> = Vec::new();
        for c in source.split('/') {
            match c {
                "" | "." => {}
                ".." if self.context => {
                    if parts.pop().is_none() {
                        return Err(BuildError::Invalid(format!(
                            "COPY failed: forbidden path outside the build context: {source} ()"
                        )));
                    }
                }
                // In a root filesystem `..` at the top stays at the top.
                ".." => {
                    parts.pop();
                }
                other => parts.push(other),
            }
        }
        Ok(parts.join("/"))
    }

    fn not_found(&self, source: &str) -> BuildError {
        if self.context {
            BuildError::Invalid(format!(
                "COPY failed: file not found in build context or excluded by .dockerignore: stat {source}: file does not exist"
            ))
        } else {
            BuildError::Invalid(format!("COPY failed: stat {source}: file does not exist"))
        }
    }

    /// The names in a directory of the tree.
    fn names(&self, dir: &str) -> Result<Vec<String>> {
        let root = match &self.backing {
            Backing::Dir(root) => root,
            Backing::Archive(a) => {
                return Ok(match a.lookup(dir, true) {
                    Ok(i) => a.node(i).names().map(str::to_owned).collect(),
                    Err(_) => Vec::new(),
                })
            }
        };
        let fd = match root.open_read(dir) {
            Ok(fd) => fd,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(BuildError::io("listing", self.path.join(dir), e)),
        };
        let mut out = Vec::new();
        let Ok(listing) = rfs::Dir::read_from(&fd) else {
            return Ok(out); // not a directory: nothing below it
        };
        for entry in listing {
            let entry =
                entry.map_err(|e| BuildError::io("listing", self.path.join(dir), e.into()))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name != "." && name != ".." {
                out.push(name);
            }
        }
        out.sort();
        Ok(out)
    }

    /// Calls `f` for a source and, if it is a directory, everything under
    /// it (parents before children, names sorted), skipping what
    /// `.dockerignore` excludes.
    pub fn visit(
        &self,
        source: &str,
        f: &mut dyn FnMut(&Entry, &Opener<'_>) -> Result<()>,
    ) -> Result<()> {
        let root = match &self.backing {
            Backing::Dir(root) => root,
            Backing::Archive(a) => return self.visit_archive(a, source, f),
        };
        let fd = root
            .open_read(source)
            .map_err(|e| BuildError::io("opening", self.path.join(source), e))?;
        let st = rfs::fstat(&fd)
            .map_err(|e| BuildError::io("reading", self.path.join(source), e.into()))?;
        let top = entry_of(String::new(), &st, None);
        let src = Src::At {
            at: &fd,
            name: None,
        };
        let stamps = self.stamps(source, &top, &st);
        f(&top, &Opener { src, stamps })?;
        if top.kind == Kind::Dir {
            self.walk(&fd, source, "", f)?;
        }
        Ok(())
    }

    /// [`Tree::visit`] over a received context.
    fn visit_archive(
        &self,
        a: &Archive,
        source: &str,
        f: &mut dyn FnMut(&Entry, &Opener<'_>) -> Result<()>,
    ) -> Result<()> {
        let index = a
            .lookup(source, true)
            .map_err(|e| BuildError::io("opening", self.path.join(source), e))?;
        let top = entry_of_node(String::new(), a.node(index));
        let src = Src::Node { archive: a, index };
        f(&top, &Opener { src, stamps: None })?;
        if top.kind == Kind::Dir {
            self.walk_archive(a, index, source, "", f)?;
        }
        Ok(())
    }

    fn walk_archive(
        &self,
        a: &Archive,
        dir: usize,
        source: &str,
        rel: &str,
        f: &mut dyn FnMut(&Entry, &Opener<'_>) -> Result<()>,
    ) -> Result<()> {
        for name in a.node(dir).names() {
            let Some(index) = a.child(dir, name) else {
                continue;
            };
            let child_rel = join(rel, name);
            let in_tree = join(source, &child_rel);
            let node = a.node(index);
            let excluded = self.excluded(&in_tree);
            if excluded && (node.kind != Kind::Dir || self.can_skip_dir(&in_tree)) {
                continue;
            }
            if !excluded {
                let src = Src::Node { archive: a, index };
                let open = Opener { src, stamps: None };
                f(&entry_of_node(child_rel.clone(), node), &open)?;
            }
            if node.kind == Kind::Dir {
                self.walk_archive(a, index, source, &child_rel, f)?;
            }
        }
        Ok(())
    }

    /// An in-place context file's stamps: as found now, and as hashed.
    fn stamps(&self, path: &str, e: &Entry, st: &rfs::Stat) -> Option<(Stamp, Option<Stamp>)> {
        let place = self.in_place.as_ref().filter(|_| e.kind == Kind::File)?;
        let hashed = lock(&place.hashed).get(path).copied();
        Some((Stamp::of(st), hashed))
    }

    fn can_skip_dir(&self, rel: &str) -> bool {
        self.ignore.as_ref().is_some_and(|i| i.can_skip_dir(rel))
    }

    fn walk(
        &self,
        dir: &OwnedFd,
        source: &str,
        rel: &str,
        f: &mut dyn FnMut(&Entry, &Opener<'_>) -> Result<()>,
    ) -> Result<()> {
        let here = join(source, rel);
        let err = |e: io::Error| BuildError::io("reading", self.path.join(&here), e);
        let mut names = Vec::new();
        for entry in rfs::Dir::read_from(dir).map_err(|e| err(e.into()))? {
            let entry = entry.map_err(|e| err(e.into()))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name != "." && name != ".." {
                names.push(name);
            }
        }
        names.sort();
        for name in names {
            let child_rel = join(rel, &name);
            let in_tree = join(source, &child_rel);
            let st = rfs::statat(dir, name.as_str(), AtFlags::SYMLINK_NOFOLLOW)
                .map_err(|e| err(e.into()))?;
            let kind = kind_of(&st);
            let excluded = self.excluded(&in_tree);
            if excluded && (kind != Kind::Dir || self.can_skip_dir(&in_tree)) {
                continue;
            }
            let link = match kind {
                Kind::Symlink => Some(
                    rfs::readlinkat(dir, name.as_str(), Vec::new())
                        .map_err(|e| err(e.into()))?
                        .to_string_lossy()
                        .into_owned(),
                ),
                _ => None,
            };
            if kind == Kind::Other {
                continue;
            }
            let entry = entry_of(child_rel.clone(), &st, link);
            if !excluded {
                let src = Src::At {
                    at: dir,
                    name: Some(&name),
                };
                let stamps = self.stamps(&in_tree, &entry, &st);
                f(&entry, &Opener { src, stamps })?;
            }
            if kind == Kind::Dir {
                let sub = rfs::openat(
                    dir,
                    name.as_str(),
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .map_err(|e| err(e.into()))?;
                self.walk(&sub, source, &child_rel, f)?;
            }
        }
        Ok(())
    }

    /// The content checksum of sources: every entry's path, type,
    /// permission bits, size, link target and content hash — what a copy
    /// depends on. Never mtimes or owners (a copy sets its own owner).
    pub fn checksum(&self, sources: &[String]) -> Result<String> {
        if let Some((id, memo)) = &self.image {
            if let Some(known) = memo.get(id, sources) {
                return Ok(known);
            }
            let sum = self.compute_checksum(sources)?;
            memo.put(id, sources, &sum);
            return Ok(sum);
        }
        self.compute_checksum(sources)
    }

    fn compute_checksum(&self, sources: &[String]) -> Result<String> {
        use std::fmt::Write as _;
        let mut h = Sha256::new();
        // One buffer for every entry's line (thousands per COPY).
        let mut line = String::new();
        for source in sources {
            self.visit(source, &mut |e, open| {
                let path = join(source, &e.rel);
                let content = match e.kind {
                    Kind::File => hex::encode(self.content_hash(&path, open)?),
                    _ => String::new(),
                };
                let kind = match e.kind {
                    Kind::File => 'f',
                    Kind::Dir => 'd',
                    Kind::Symlink => 'l',
                    Kind::Other => 'o',
                };
                line.clear();
                let _ = writeln!(
                    line,
                    "{path}\0{kind}\0{:o}\0{}\0{}\0{content}",
                    e.mode,
                    if e.kind == Kind::File { e.size } else { 0 },
                    e.link.as_deref().unwrap_or("")
                );
                h.update(line.as_bytes());
                Ok(())
            })?;
        }
        Ok(hex::encode(h.finalize()))
    }

    fn content_hash(&self, path: &str, open: &Opener<'_>) -> Result<[u8; 32]> {
        if let Some(h) = open.known_hash() {
            return Ok(h);
        }
        if let Some(h) = lock(&self.hashes).get(path) {
            return Ok(*h);
        }
        let found = open.stamps.map(|(found, _)| found);
        let place = self.in_place.as_ref();
        if let (Some(place), Some(found)) = (place, found) {
            if let Some(h) = place.known.get(&found) {
                lock(&place.hashed).insert(path.to_owned(), found);
                lock(&self.hashes).insert(path.to_owned(), h);
                return Ok(h);
            }
        }
        let io = |e| BuildError::io("reading", self.path.join(path), e);
        let mut file = open.open().map_err(io)?;
        let mut h = Sha256::new();
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = file.read(&mut buf).map_err(io)?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
        }
        let out: [u8; 32] = h.finalize().into();
        if let (Some(place), Some(found)) = (place, found) {
            // The content read is the found file's only if its stamp held
            // from the walk until after the read.
            open.check_unchanged().map_err(io)?;
            place.known.put(found, out);
            lock(&place.hashed).insert(path.to_owned(), found);
        }
        lock(&self.hashes).insert(path.to_owned(), out);
        Ok(out)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// `a/b` from `a` and `b`, either possibly empty.
pub(crate) fn join(a: &str, b: &str) -> String {
    match (a.is_empty(), b.is_empty()) {
        (true, _) => b.to_owned(),
        (_, true) => a.to_owned(),
        _ => format!("{a}/{b}"),
    }
}

fn kind_of(st: &rfs::Stat) -> Kind {
    match FileType::from_raw_mode(st.st_mode) {
        FileType::RegularFile => Kind::File,
        FileType::Directory => Kind::Dir,
        FileType::Symlink => Kind::Symlink,
        _ => Kind::Other,
    }
}

fn entry_of_node(rel: String, node: &crate::archive::Node) -> Entry {
    Entry {
        rel,
        kind: node.kind,
        mode: node.mode,
        size: node.size,
        mtime: node.mtime,
        link: node.link.clone(),
    }
}

fn entry_of(rel: String, st: &rfs::Stat, link: Option<String>) -> Entry {
    Entry {
        rel,
        kind: kind_of(st),
        mode: st.st_mode & 0o7777,
        size: u64::try_from(st.st_size).unwrap_or(0),
        mtime: (st.st_mtime, i64::try_from(st.st_mtime_nsec).unwrap_or(0)),
        link,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context(files: &[(&str, &str)]) -> (tempfile::TempDir, Tree) {
        let dir = tempfile::tempdir().unwrap();
        for (path, content) in files {
            let p = dir.path().join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, content).unwrap();
        }
        let tree = Tree::context(dir.path()).unwrap();
        (dir, tree)
    }

    #[test]
    fn wildcards_match_each_component_in_name_order() {
        let (_d, t) = context(&[("a.txt", ""), ("b.txt", ""), ("c.md", ""), ("d/x.txt", "")]);
        assert_eq!(t.resolve("*.txt").unwrap(), ["a.txt", "b.txt"]);
        assert_eq!(t.resolve("./*/x.*").unwrap(), ["d/x.txt"]);
        let err = t.resolve("*.rs").unwrap_err();
        assert!(err.to_string().contains("no source files"), "{err}");
    }

    #[test]
    fn sources_outside_the_context_are_refused_and_symlinks_stay_inside() {
        let (d, t) = context(&[("in.txt", "inside")]);
        let err = t.resolve("../etc/passwd").unwrap_err();
        assert!(
            err.to_string().contains("outside the build context"),
            "{err}"
        );
        std::os::unix::fs::symlink("/etc/passwd", d.path().join("link")).unwrap();
        // The absolute link resolves inside the context, where there is no etc/passwd.
        let err = t.resolve("link").unwrap_err();
        assert!(err.to_string().contains("file not found"), "{err}");
        std::os::unix::fs::symlink("../../in.txt", d.path().join("up")).unwrap();
        assert_eq!(t.resolve("up").unwrap(), ["up"]);
        let mut seen = Vec::new();
        t.visit("up", &mut |e, o| {
            let mut s = String::new();
            o.open().unwrap().read_to_string(&mut s).unwrap();
            seen.push((e.kind, s));
            Ok(())
        })
        .unwrap();
        assert_eq!(seen, [(Kind::File, "inside".to_owned())]);
    }

    #[test]
    fn dockerignore_hides_files_from_sources_and_walks() {
        let (_d, t) = context(&[
            (".dockerignore", "secret*\nlogs/**\n!logs/keep.log\n"),
            ("secret.txt", "x"),
            ("app/main.rs", "fn main() {}"),
            ("logs/a.log", ""),
            ("logs/keep.log", ""),
        ]);
        assert!(t.resolve("secret.txt").is_err());
        let mut seen = Vec::new();
        t.visit("", &mut |e, _| {
            seen.push(e.rel.clone());
            Ok(())
        })
        .unwrap();
        assert_eq!(
            seen,
            [
                "",
                ".dockerignore",
                "app",
                "app/main.rs",
                "logs",
                "logs/keep.log"
            ]
        );
    }

    #[test]
    fn checksums_see_content_and_mode_but_not_mtime() {
        let (d, t) = context(&[("a", "one"), ("b", "two")]);
        let first = t.checksum(&["a".into()]).unwrap();
        let touched = filetime_now(&d.path().join("a"));
        let t2 = Tree::context(d.path()).unwrap();
        assert!(touched);
        assert_eq!(t2.checksum(&["a".into()]).unwrap(), first, "mtime ignored");
        std::fs::write(d.path().join("a"), "uno").unwrap();
        let t3 = Tree::context(d.path()).unwrap();
        assert_ne!(t3.checksum(&["a".into()]).unwrap(), first, "content counts");
        let b = t3.checksum(&["b".into()]).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(d.path().join("b"), std::fs::Permissions::from_mode(0o600))
            .unwrap();
        let t4 = Tree::context(d.path()).unwrap();
        assert_ne!(t4.checksum(&["b".into()]).unwrap(), b, "mode counts");
    }

    #[test]
    fn a_file_changed_after_its_hash_fails_the_copy() {
        let (d, t) = context(&[("a", "one"), ("dir/b", "two")]);
        t.checksum(&["a".into(), "dir".into()]).unwrap();
        let copy = |src: &str| {
            let dest = tempfile::tempdir().unwrap();
            let opts = crate::copy::CopyOptions::default();
            crate::copy::copy(&t, &[src.into()], false, "/x/", dest.path(), opts)
        };
        copy("dir").unwrap();
        // Same size: only the stamp tells.
        std::fs::write(d.path().join("a"), "uno").unwrap();
        std::fs::write(d.path().join("dir/b"), "dos").unwrap();
        for src in ["a", "dir"] {
            let err = copy(src).unwrap_err().to_string();
            assert!(err.contains("changed during the build"), "{src}: {err}");
        }
    }

    #[test]
    fn hashes_known_across_builds_answer_only_unchanged_files() {
        let known = Arc::new(FileHashes::default());
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        // Dated out of the racy window, so the hash is kept across builds.
        let old = std::time::SystemTime::now() - std::time::Duration::from_secs(60);
        let write_dated = |content: &str| {
            std::fs::write(&a, content).unwrap();
            let f = std::fs::File::options().write(true).open(&a).unwrap();
            f.set_modified(old).unwrap();
        };
        write_dated("one");
        let tree = || Tree::context_in_place(dir.path(), dir.path(), known.clone()).unwrap();
        let first = tree().checksum(&["a".into()]).unwrap();
        assert_eq!(tree().checksum(&["a".into()]).unwrap(), first);
        write_dated("two");
        assert_ne!(
            tree().checksum(&["a".into()]).unwrap(),
            first,
            "ctime moved"
        );
    }

    #[test]
    fn an_images_checksums_are_computed_once_per_image() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("out"), "one").unwrap();
        let memo = Arc::new(ImageChecksums::default());
        let tree = |id: &str| Tree::image_rootfs(dir.path(), id.into(), memo.clone()).unwrap();
        let first = tree("sha256:a").checksum(&["out".into()]).unwrap();
        assert_eq!(
            first,
            Tree::rootfs(dir.path())
                .unwrap()
                .checksum(&["out".into()])
                .unwrap()
        );
        // An image's files never change: the memo answers without reading
        // (shown here by changing them behind its back).
        std::fs::write(dir.path().join("out"), "two").unwrap();
        assert_eq!(tree("sha256:a").checksum(&["out".into()]).unwrap(), first);
        assert_ne!(tree("sha256:b").checksum(&["out".into()]).unwrap(), first);
    }

    fn filetime_now(p: &Path) -> bool {
        let f = std::fs::File::options().write(true).open(p).unwrap();
        f.set_modified(std::time::SystemTime::UNIX_EPOCH).is_ok()
    }
}
