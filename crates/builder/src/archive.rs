//! A build context kept as it arrived: the tar stream's entries as an
//! in-memory tree, their contents in a spool (memory, or one unlinked file
//! for a big context: `spool.rs`), each content hashed once on the way in.
//!
//! Unpacking a context into thousands of files (and deleting them after
//! the build) cost more than the rest of a cached build: the spool is one
//! unlinked file, written sequentially and gone when the build ends, and
//! a cache hit never opens it. Paths resolve inside the tree as
//! `RESOLVE_IN_ROOT` would (`..` stops at the top, an absolute symlink
//! starts again from the top): nothing here ever touches a host path.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use berth_store::fsroot::RelPath;
use sha2::{Digest as _, Sha256};

use crate::error::{BuildError, Result};
use crate::spool::{Content, Spool, SpoolWriter};
use crate::tree::Kind;

/// Symlinks followed while resolving one path (Linux's own limit).
const MAX_LINKS: usize = 40;

/// One entry of the context.
#[derive(Debug, Clone)]
pub struct Node {
    pub kind: Kind,
    /// Permission bits (with setuid, setgid, sticky).
    pub mode: u32,
    pub size: u64,
    pub mtime: (i64, i64),
    /// A symlink's target.
    pub link: Option<String>,
    /// Where a file's content starts in the spool.
    offset: u64,
    /// A file's content hash (SHA-256).
    pub hash: [u8; 32],
    /// A directory's entries, by name.
    children: BTreeMap<String, usize>,
}

impl Node {
    fn dir(mode: u32, mtime: (i64, i64)) -> Self {
        Self {
            kind: Kind::Dir,
            mode,
            size: 0,
            mtime,
            link: None,
            offset: 0,
            hash: [0; 32],
            children: BTreeMap::new(),
        }
    }

    /// A directory's entry names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.children.keys().map(String::as_str)
    }
}

/// A received context.
#[derive(Debug)]
pub struct Archive {
    nodes: Vec<Node>,
    spool: Spool,
    /// The context written out as files, made only if a step needs a host
    /// path (`RUN --mount=type=bind` from the context).
    unpacked: OnceLock<tempfile::TempDir>,
    /// Where the spool and an unpacked copy live.
    scratch: PathBuf,
}

impl Archive {
    /// Reads a tar stream (already decompressed); the spool goes in
    /// `scratch`, unlinked from the start.
    pub fn receive(stream: impl Read, scratch: &Path) -> Result<Self> {
        // The bound layers have: a decompression bomb stops here.
        let limit = berth_store::unpack::UnpackOptions::default().max_bytes;
        Self::receive_bounded(stream, scratch, limit)
    }

    /// [`Archive::receive`], refusing more than `limit` bytes of content.
    fn receive_bounded(stream: impl Read, scratch: &Path, limit: u64) -> Result<Self> {
        let now = now();
        let spool_err = |e| BuildError::io("writing the context spool in", scratch, e);
        let mut writer = SpoolWriter::new(scratch);
        let mut archive = Self {
            nodes: vec![Node::dir(0o755, now)],
            spool: Spool::Memory(Vec::new()),
            unpacked: OnceLock::new(),
            scratch: scratch.to_owned(),
        };
        let mut buf = vec![0u8; 1 << 16];
        let mut written = 0u64;
        let mut tar = tar::Archive::new(stream);
        let mut entries = tar.entries().map_err(bad_tar)?;
        // Whether the last entry's data was all there (only its padding
        // can be missing then).
        let mut whole = true;
        loop {
            let mut entry = match entries.next() {
                None => break,
                Some(Ok(entry)) => entry,
                Some(Err(e)) if whole && is_missing_padding(&e) => break,
                Some(Err(e)) => return Err(bad_tar(e)),
            };
            let size = entry.size();
            let node = read_node(&mut entry, &mut writer, &mut buf, &mut written, limit)?;
            whole = size == 0 || matches!(&node, Some(Incoming::Node(n)) if n.kind == Kind::File);
            let Some(node) = node else {
                continue;
            };
            let path = entry.path().map_err(bad_tar)?.into_owned();
            let rel = RelPath::new(&path).ok_or_else(|| {
                BuildError::Invalid(format!(
                    "the build context is not a valid tar archive: {} leaves the context",
                    path.display()
                ))
            })?;
            archive.insert(rel.parts(), node, now)?;
        }
        writer.flush().map_err(spool_err)?;
        archive.spool = writer.finish().map_err(spool_err)?;
        Ok(archive)
    }

    /// Puts `node` at `parts`, making missing parents; a later entry for a
    /// path replaces an earlier one (a directory keeps its entries).
    fn insert(&mut self, parts: &[String], incoming: Incoming, now: (i64, i64)) -> Result<()> {
        let mut node = match incoming {
            Incoming::Node(node) => node,
            // A hardlink: the content of the entry it names, which must
            // come earlier in the stream.
            Incoming::Hardlink(target) => {
                let found = self.lookup(&target, false).ok().map(|i| &self.nodes[i]);
                let Some(t) = found.filter(|t| t.kind == Kind::File) else {
                    return Err(BuildError::Invalid(format!(
                        "the build context is not a valid tar archive: hardlink {} to {target}, which is not an earlier file",
                        parts.join("/")
                    )));
                };
                t.clone()
            }
        };
        let Some((name, parents)) = parts.split_last() else {
            if node.kind == Kind::Dir {
                self.nodes[0].mode = node.mode;
                self.nodes[0].mtime = node.mtime;
            }
            return Ok(());
        };
        let mut at = 0;
        for part in parents {
            at = match self.nodes[at].children.get(part) {
                Some(&child) if self.nodes[child].kind == Kind::Dir => child,
                _ => self.add(at, part, Node::dir(0o755, now)),
            };
        }
        match self.nodes[at].children.get(name) {
            Some(&old) if self.nodes[old].kind == Kind::Dir && node.kind == Kind::Dir => {
                let children = std::mem::take(&mut self.nodes[old].children);
                node.children = children;
                self.nodes[old] = node;
            }
            _ => {
                self.add(at, name, node);
            }
        }
        Ok(())
    }

    fn add(&mut self, parent: usize, name: &str, node: Node) -> usize {
        self.nodes.push(node);
        let index = self.nodes.len() - 1;
        self.nodes[parent].children.insert(name.to_owned(), index);
        index
    }

    /// The node at `rel`, resolved inside the tree: symlinks on the way
    /// are followed (and the last one if `follow_last`), `..` stops at
    /// the top.
    pub fn lookup(&self, rel: &str, follow_last: bool) -> io::Result<usize> {
        let mut stack = vec![0usize];
        let mut pending: Vec<String> = rel.rsplit('/').map(str::to_owned).collect();
        let mut links = 0;
        while let Some(part) = pending.pop() {
            match part.as_str() {
                "" | "." => continue,
                ".." => {
                    if stack.len() > 1 {
                        stack.pop();
                    }
                    continue;
                }
                _ => {}
            }
            let here = &self.nodes[*stack.last().unwrap_or(&0)];
            if here.kind != Kind::Dir {
                return Err(rustix::io::Errno::NOTDIR.into());
            }
            let Some(&child) = here.children.get(&part) else {
                return Err(io::ErrorKind::NotFound.into());
            };
            let node = &self.nodes[child];
            let last = pending.iter().all(|p| p.is_empty() || p == ".");
            if node.kind == Kind::Symlink && (follow_last || !last) {
                links += 1;
                if links > MAX_LINKS {
                    return Err(rustix::io::Errno::LOOP.into());
                }
                let target = node.link.as_deref().unwrap_or_default();
                if target.starts_with('/') {
                    stack.truncate(1);
                }
                pending.extend(target.rsplit('/').map(str::to_owned));
                continue;
            }
            stack.push(child);
        }
        Ok(*stack.last().unwrap_or(&0))
    }

    /// The node `lookup` found.
    pub fn node(&self, index: usize) -> &Node {
        &self.nodes[index]
    }

    /// The entry `name` of the directory node `dir`.
    pub fn child(&self, dir: usize, name: &str) -> Option<usize> {
        self.nodes[dir].children.get(name).copied()
    }

    /// A reader of a file node's content, with its own offset (several
    /// stages read at once).
    pub fn open(&self, index: usize) -> io::Result<Content<'_>> {
        let node = &self.nodes[index];
        self.spool.open(node.offset, node.size)
    }

    /// The content of the file at `rel` (followed).
    pub fn read(&self, rel: &str) -> io::Result<Vec<u8>> {
        let index = self.lookup(rel, true)?;
        if self.nodes[index].kind != Kind::File {
            return Err(rustix::io::Errno::ISDIR.into());
        }
        let mut out = Vec::new();
        self.open(index)?.read_to_end(&mut out)?;
        Ok(out)
    }

    /// The context as files on the host, written out on first use.
    pub fn unpacked(&self) -> Result<&Path> {
        if let Some(dir) = self.unpacked.get() {
            return Ok(dir.path());
        }
        let dir = tempfile::Builder::new()
            .prefix("ctx-")
            .tempdir_in(&self.scratch)
            .map_err(|e| BuildError::io("creating a directory in", &self.scratch, e))?;
        self.write_out(0, dir.path())?;
        // Two stages racing here: the loser's copy goes.
        let _ = self.unpacked.set(dir);
        Ok(self.unpacked.get().map_or(&self.scratch, |d| d.path()))
    }

    /// Writes directory node `dir`'s entries under `to` (a directory this
    /// call made: every parent on the way is a real directory of ours).
    fn write_out(&self, dir: usize, to: &Path) -> Result<()> {
        use std::os::unix::fs::PermissionsExt;
        for (name, &index) in &self.nodes[dir].children {
            let node = &self.nodes[index];
            let path = to.join(name);
            let io = |e| BuildError::io("writing out the context at", &path, e);
            match node.kind {
                Kind::Dir => {
                    std::fs::create_dir(&path).map_err(io)?;
                    self.write_out(index, &path)?;
                }
                Kind::File => {
                    let mut out = std::fs::File::create_new(&path).map_err(io)?;
                    self.open(index)
                        .and_then(|c| c.copy_to(&mut out))
                        .map_err(io)?;
                }
                Kind::Symlink => {
                    let target = node.link.as_deref().unwrap_or_default();
                    std::os::unix::fs::symlink(target, &path).map_err(io)?;
                    continue;
                }
                Kind::Other => continue,
            }
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(node.mode))
                .map_err(|e| BuildError::io("writing out the context at", &path, e))?;
        }
        Ok(())
    }
}

/// What a tar entry adds to the tree.
enum Incoming {
    Node(Node),
    /// A hardlink to this earlier path.
    Hardlink(String),
}

/// What a tar entry makes (its content appended to the spool), or
/// nothing for entries a context has no use for (PAX globals, devices).
fn read_node<R: Read>(
    entry: &mut tar::Entry<'_, R>,
    spool: &mut impl Write,
    buf: &mut [u8],
    written: &mut u64,
    limit: u64,
) -> Result<Option<Incoming>> {
    let h = entry.header();
    let mode = h.mode().map_err(bad_tar)? & 0o7777;
    let secs = h.mtime().map_err(bad_tar)?;
    let mtime = (i64::try_from(secs).unwrap_or(i64::MAX), 0);
    let mut node = Node::dir(mode, mtime);
    match h.entry_type() {
        tar::EntryType::Directory => {}
        tar::EntryType::Regular | tar::EntryType::Continuous => {
            node.kind = Kind::File;
            node.offset = *written;
            let mut hash = Sha256::new();
            loop {
                let n = entry.read(buf).map_err(bad_tar)?;
                if n == 0 {
                    break;
                }
                hash.update(&buf[..n]);
                spool
                    .write_all(&buf[..n])
                    .map_err(|e| BuildError::io("writing the context spool", "", e))?;
                *written += n as u64;
                if *written > limit {
                    return Err(BuildError::Invalid(format!(
                        "the build context holds more than {limit} bytes of file content"
                    )));
                }
            }
            node.size = *written - node.offset;
            if node.size != entry.size() {
                return Err(BuildError::Invalid(format!(
                    "the build context is not a valid tar archive: {} ends after {} of its {} bytes",
                    entry.path().map_err(bad_tar)?.display(),
                    node.size,
                    entry.size()
                )));
            }
            node.hash = hash.finalize().into();
        }
        tar::EntryType::Symlink | tar::EntryType::Link => {
            let target = entry
                .link_name()
                .map_err(bad_tar)?
                .map(|t| t.to_string_lossy().into_owned())
                .unwrap_or_default();
            if entry.header().entry_type() == tar::EntryType::Link {
                return Ok(Some(Incoming::Hardlink(target)));
            }
            node.kind = Kind::Symlink;
            node.link = Some(target);
        }
        _ => return Ok(None),
    }
    Ok(Some(Incoming::Node(node)))
}

/// The stream ended in the padding after an entry's data, with no end
/// blocks: what the docker CLI sends when `-f` names a Dockerfile outside
/// the context (its tar wrapper closes the pipe before the tar writer).
/// Go's tar reader takes that as the end; so does this.
fn is_missing_padding(e: &io::Error) -> bool {
    e.to_string().contains("unexpected EOF during skip")
}

fn bad_tar(e: io::Error) -> BuildError {
    BuildError::Invalid(format!("the build context is not a valid tar archive: {e}"))
}

fn now() -> (i64, i64) {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    (
        i64::try_from(d.as_secs()).unwrap_or(0),
        i64::from(d.subsec_nanos()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::Tree;

    /// A context directory with files, a nested directory, symlinks (one
    /// absolute, one climbing out) and a hardlink, as the docker CLI sends.
    fn context_dir() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        std::fs::create_dir_all(p.join("src/deep")).unwrap();
        std::fs::write(p.join("src/a.c"), "int a;").unwrap();
        std::fs::write(p.join("src/deep/b.c"), "int b;").unwrap();
        std::fs::write(p.join("top.txt"), "top").unwrap();
        std::fs::write(p.join(".dockerignore"), "*.log\n").unwrap();
        std::fs::write(p.join("x.log"), "ignored").unwrap();
        std::os::unix::fs::symlink("/src/a.c", p.join("abs")).unwrap();
        std::os::unix::fs::symlink("../../../top.txt", p.join("src/up")).unwrap();
        std::os::unix::fs::symlink("/etc", p.join("etc")).unwrap();
        std::fs::hard_link(p.join("top.txt"), p.join("src/hard.txt")).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(p.join("src/a.c"), std::fs::Permissions::from_mode(0o751))
            .unwrap();
        dir
    }

    fn tar_of(dir: &Path) -> Vec<u8> {
        let out = std::process::Command::new("tar")
            .args(["-C", dir.to_str().unwrap(), "-cf", "-", "."])
            .output()
            .unwrap();
        assert!(out.status.success());
        out.stdout
    }

    fn received(tar: &[u8]) -> (tempfile::TempDir, Tree) {
        let scratch = tempfile::tempdir().unwrap();
        let archive = Archive::receive(tar, scratch.path()).unwrap();
        (scratch, Tree::context_archive(archive).unwrap())
    }

    fn listing(t: &Tree, source: &str) -> Vec<(String, Kind, u32, u64, Option<String>, String)> {
        let mut seen = Vec::new();
        t.visit(source, &mut |e, open| {
            let mut content = String::new();
            if e.kind == Kind::File {
                open.open().unwrap().read_to_string(&mut content).unwrap();
            }
            // Sizes of directories and links are the filesystem's: unused.
            let size = if e.kind == Kind::File { e.size } else { 0 };
            seen.push((e.rel.clone(), e.kind, e.mode, size, e.link.clone(), content));
            Ok(())
        })
        .unwrap();
        seen
    }

    /// A tar of one file `name` with `content`, cut after `keep` bytes.
    fn cut_tar(content: &[u8], keep: usize) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(content.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, "Dockerfile", content).unwrap();
        let mut out = b.into_inner().unwrap();
        out.truncate(keep);
        out
    }

    #[test]
    fn a_stream_ending_in_an_entrys_padding_ends_there() {
        // The docker CLI's context with an outside Dockerfile: no padding
        // after the last entry, no end blocks. Go's reader takes it.
        let tar = cut_tar(b"FROM scratch\n", 512 + 13);
        let (_s, t) = received(&tar);
        let seen = listing(&t, "Dockerfile");
        assert_eq!(seen[0].5, "FROM scratch\n");
        // Cut inside the data: refused, naming the file.
        let scratch = tempfile::tempdir().unwrap();
        let err = Archive::receive(&cut_tar(&[b'x'; 2000], 512 + 1000)[..], scratch.path())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("Dockerfile ends after 1000 of its 2000 bytes"),
            "{err}"
        );
    }

    #[test]
    fn a_received_context_reads_as_the_same_directory_would() {
        let dir = context_dir();
        let on_disk = Tree::context(dir.path()).unwrap();
        let (_s, received) = received(&tar_of(dir.path()));
        for source in ["", "src", "abs", "src/up", "src/hard.txt", "src/deep/"] {
            let want = listing(&on_disk, source);
            let mut got = listing(&received, source);
            // The top's mtime and mode come from the tar, as unpacking sets them.
            assert_eq!(got.len(), want.len(), "{source}: {got:?}");
            if source.is_empty() {
                got[0].2 = want[0].2;
            }
            assert_eq!(got, want, "{source}");
            assert_eq!(
                received.checksum(&[source.to_owned()]).unwrap(),
                on_disk.checksum(&[source.to_owned()]).unwrap(),
                "{source}"
            );
        }
        assert_eq!(
            received.resolve("src/*.c").unwrap(),
            on_disk.resolve("src/*.c").unwrap()
        );
        assert!(received.resolve("x.log").is_err(), ".dockerignore applies");
        let names: Vec<_> = listing(&received, "").into_iter().map(|e| e.0).collect();
        assert!(!names.contains(&"x.log".to_owned()), "{names:?}");
        // Symlinks resolve inside the context: /etc is the context's, absent.
        assert!(received.resolve("etc/passwd").is_err());
        assert_eq!(received.read("src/up").unwrap(), b"top");
        assert_eq!(received.read("abs").unwrap(), b"int a;");
    }

    #[test]
    fn entries_that_leave_the_context_or_dangle_are_refused() {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(1);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        // `set_path` refuses `..`: the name is written raw.
        h.as_gnu_mut().unwrap().name[..9].copy_from_slice(b"../escape");
        h.set_cksum();
        b.append(&h, &b"x"[..]).unwrap();
        let tar = b.into_inner().unwrap();
        let scratch = tempfile::tempdir().unwrap();
        let err = Archive::receive(&tar[..], scratch.path()).unwrap_err();
        assert!(err.to_string().contains("leaves the context"), "{err}");

        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Link);
        h.set_size(0);
        h.set_mode(0o644);
        h.set_mtime(0);
        b.append_link(&mut h, "copy", "missing").unwrap();
        let tar = b.into_inner().unwrap();
        let err = Archive::receive(&tar[..], scratch.path()).unwrap_err();
        assert!(err.to_string().contains("not an earlier file"), "{err}");

        let err = Archive::receive(&b"not a tar at all"[..], scratch.path());
        assert!(err.is_err());

        let tar = tar_of(context_dir().path());
        let err = Archive::receive_bounded(&tar[..], scratch.path(), 8).unwrap_err();
        assert!(err.to_string().contains("more than 8 bytes"), "{err}");
        // Nothing was written beside the (unlinked) spools.
        assert_eq!(std::fs::read_dir(scratch.path()).unwrap().count(), 0);
    }

    #[test]
    fn symlink_loops_end_with_an_error() {
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("b", dir.path().join("a")).unwrap();
        std::os::unix::fs::symlink("a", dir.path().join("b")).unwrap();
        let (_s, t) = received(&tar_of(dir.path()));
        let err = t.resolve("a").unwrap_err();
        assert!(!err.to_string().is_empty());
        assert_eq!(listing(&t, "").len(), 3, "the links themselves list");
    }

    #[test]
    fn a_written_out_context_holds_the_files_for_bind_mounts() {
        let dir = context_dir();
        let (_s, t) = received(&tar_of(dir.path()));
        let host = t.host_path("src").unwrap();
        assert_eq!(std::fs::read(host.join("a.c")).unwrap(), b"int a;");
        assert_eq!(
            std::fs::read_link(host.join("up")).unwrap(),
            Path::new("../../../top.txt")
        );
        // A symlink resolves inside the written-out copy.
        let abs = t.host_path("abs").unwrap();
        assert!(abs.starts_with(host.parent().unwrap()), "{abs:?}");
    }
}
