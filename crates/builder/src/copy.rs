//! `COPY` and `ADD` into a root filesystem, with Docker's rules
//! (<https://docs.docker.com/reference/dockerfile/#copy>): a directory
//! source copies its contents; a file goes into the destination when the
//! destination ends with `/` or is a directory, else becomes it; several
//! sources need a directory destination ending with `/`; missing
//! directories are created; what is in the way is replaced. Files keep
//! their permission bits and mtimes; owners are root or `--chown`.
//!
//! Writes go through handles of the destination root resolved with
//! `RESOLVE_IN_ROOT`: the image's own symlinks (`/app -> /etc`, or
//! `-> ../../..`) resolve inside it, never onto the host.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use berth_store::fsroot::Root;
use rustix::fs::{self as rfs, AtFlags, Mode, OFlags, Timespec, Timestamps};

use crate::error::{BuildError, Result};
use crate::tree::{join, Entry, Kind, Opener, Tree};

/// How a copy writes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CopyOptions {
    /// `--chown` (uid, gid); root otherwise.
    pub owner: Option<(u32, u32)>,
    /// `--chmod` bits for every copied file and directory.
    pub mode: Option<u32>,
    /// `ADD`: a local tar archive (plain, gzip or zstd) is extracted.
    pub extract: bool,
}

/// Copies `sources` (paths in `tree`, already resolved) to `dest` (an
/// absolute path in the root at `dest_root`). `many`: the sources came
/// from several names or a wildcard.
pub fn copy(
    tree: &Tree,
    sources: &[String],
    many: bool,
    dest: &str,
    dest_root: &Path,
    opts: CopyOptions,
) -> Result<()> {
    let root = Root::open(dest_root).map_err(|e| BuildError::io("opening", dest_root, e))?;
    let dest_clean = clean_abs(dest);
    let wants_dir = dest.ends_with('/') || dest.ends_with("/.") || dest_clean.is_empty();
    if (many || sources.len() > 1) && !wants_dir {
        return Err(BuildError::Invalid(
            "When using COPY with more than one source file, the destination must be a directory and end with a /".to_owned(),
        ));
    }
    let mut w = Writer {
        root: &root,
        dest_root,
        opts,
        dir_times: Vec::new(),
    };
    let dest_is_dir = wants_dir || w.is_dir(&dest_clean);
    for source in sources {
        let name = source.rsplit('/').next().unwrap_or(source);
        let mut target_of_top = if dest_is_dir {
            join(&dest_clean, name)
        } else {
            dest_clean.clone()
        };
        tree.visit(source, &mut |e, open| {
            if e.rel.is_empty() {
                if e.kind == Kind::Dir {
                    // A directory's contents go into the destination itself.
                    target_of_top.clone_from(&dest_clean);
                    return w.dir(&target_of_top, e, true);
                }
                if opts.extract && e.kind == Kind::File && w.extract(open, &dest_clean)? {
                    return Ok(());
                }
                return w.write(&target_of_top, e, open);
            }
            let target = join(&target_of_top, &e.rel);
            match e.kind {
                Kind::Dir => w.dir(&target, e, false),
                _ => w.write(&target, e, open),
            }
        })?;
    }
    w.finish()
}

/// `/a/./b/../c/` → `a/c`: a path inside the root, never above it.
fn clean_abs(p: &str) -> String {
    crate::step::clean_path(p)
        .trim_start_matches('/')
        .to_owned()
}

struct Writer<'a> {
    root: &'a Root,
    dest_root: &'a Path,
    opts: CopyOptions,
    /// Directory mtimes to set last (writing children changes them).
    dir_times: Vec<(String, (i64, i64))>,
}

impl Writer<'_> {
    fn err(&self, what: &'static str, rel: &str, e: impl Into<io::Error>) -> BuildError {
        BuildError::io(what, self.dest_root.join(rel), e.into())
    }

    fn owner(&self) -> (u32, u32) {
        self.opts.owner.unwrap_or((0, 0))
    }

    fn is_dir(&self, rel: &str) -> bool {
        self.root.dir(rel).is_ok_and(|fd| {
            rfs::fstat(&fd).is_ok_and(|st| rfs::FileType::from_raw_mode(st.st_mode).is_dir())
        })
    }

    /// The parent directory of `rel`, created (0755, owned by the copy's
    /// owner) with its own parents where missing.
    fn parent(&mut self, rel: &str) -> Result<(OwnedFd, String)> {
        let (parent, name) = rel.rsplit_once('/').unwrap_or(("", rel));
        let fd = self.mkdir_all(parent)?;
        Ok((fd, name.to_owned()))
    }

    /// `rel` as a directory, made where missing (0755, the copy's owner).
    /// Symlinks on the way are followed inside the root, dangling ones
    /// included, as Docker's `FollowSymlinkInScope` does: `/app -> /srv`
    /// with no `/srv` yet makes `/srv`.
    fn mkdir_all(&mut self, rel: &str) -> Result<OwnedFd> {
        if let Ok(fd) = self.root.dir_readable(rel) {
            return Ok(fd);
        }
        let real = self.follow(rel)?;
        let mut at = self
            .root
            .dir_readable("")
            .map_err(|e| self.err("opening", "", e))?;
        let mut done = String::new();
        for comp in real.split('/').filter(|c| !c.is_empty()) {
            done = join(&done, comp);
            match rfs::mkdirat(&at, comp, Mode::from_raw_mode(0o755)) {
                Ok(()) => {
                    let (uid, gid) = self.owner();
                    chown_at(&at, comp, uid, gid).map_err(|e| self.err("chowning", &done, e))?;
                }
                Err(rustix::io::Errno::EXIST) => {}
                Err(e) => return Err(self.err("creating", &done, e)),
            }
            at = self
                .root
                .dir_readable(&done)
                .map_err(|e| self.err("opening", &done, e))?;
        }
        Ok(at)
    }

    /// The path `rel` leads to with every symlink on it resolved inside
    /// the root (what does not exist yet is kept as written).
    fn follow(&self, rel: &str) -> Result<String> {
        let mut todo: Vec<String> = rel
            .split('/')
            .rev()
            .filter(|c| !c.is_empty())
            .map(str::to_owned)
            .collect();
        let mut done: Vec<String> = Vec::new();
        let mut links = 0;
        while let Some(comp) = todo.pop() {
            match comp.as_str() {
                "." => continue,
                ".." => {
                    done.pop();
                    continue;
                }
                _ => {}
            }
            let here = done.join("/");
            let dir = match self.root.dir(&here) {
                Ok(d) => d,
                Err(_) => {
                    done.push(comp);
                    continue;
                }
            };
            let is_link = rfs::statat(&dir, comp.as_str(), AtFlags::SYMLINK_NOFOLLOW)
                .is_ok_and(|st| rfs::FileType::from_raw_mode(st.st_mode) == rfs::FileType::Symlink);
            if !is_link {
                done.push(comp);
                continue;
            }
            links += 1;
            if links > 255 {
                return Err(BuildError::Invalid(format!(
                    "COPY failed: too many levels of symbolic links in {rel}"
                )));
            }
            let target = rfs::readlinkat(&dir, comp.as_str(), Vec::new())
                .map_err(|e| self.err("reading the link", &here, e))?
                .to_string_lossy()
                .into_owned();
            if target.starts_with('/') {
                done.clear();
            }
            todo.extend(
                target
                    .split('/')
                    .rev()
                    .filter(|c| !c.is_empty())
                    .map(str::to_owned),
            );
        }
        Ok(done.join("/"))
    }

    /// A directory at `rel`: created if missing (a non-directory in the
    /// way is replaced), given the source's mode (or `--chmod`) if new.
    fn dir(&mut self, rel: &str, e: &Entry, top: bool) -> Result<()> {
        if rel.is_empty() || self.is_dir(rel) {
            if !top && !rel.is_empty() {
                self.dir_times.push((rel.to_owned(), e.mtime));
            }
            return Ok(());
        }
        let (parent, name) = self.parent(rel)?;
        clear(&parent, &name).map_err(|err| self.err("replacing", rel, err))?;
        // The destination of a directory's contents is made 0755, whatever
        // the source's mode (Docker); directories below keep theirs.
        let mode = if top {
            0o755
        } else {
            self.opts.mode.unwrap_or(e.mode)
        };
        rfs::mkdirat(&parent, name.as_str(), Mode::from_raw_mode(0o700))
            .map_err(|err| self.err("creating", rel, err))?;
        let (uid, gid) = self.owner();
        chown_at(&parent, &name, uid, gid).map_err(|err| self.err("chowning", rel, err))?;
        rfs::chmodat(
            &parent,
            name.as_str(),
            Mode::from_raw_mode(mode),
            AtFlags::empty(),
        )
        .map_err(|err| self.err("setting the mode of", rel, err))?;
        self.dir_times.push((rel.to_owned(), e.mtime));
        Ok(())
    }

    /// A file or symlink at `rel`, replacing what is there.
    fn write(&mut self, rel: &str, e: &Entry, open: &Opener<'_>) -> Result<()> {
        if rel.is_empty() {
            return Err(BuildError::Invalid(
                "COPY failed: cannot copy a file over the root directory".to_owned(),
            ));
        }
        let (parent, name) = self.parent(rel)?;
        clear(&parent, &name).map_err(|err| self.err("replacing", rel, err))?;
        let (uid, gid) = self.owner();
        match e.kind {
            Kind::Symlink => {
                let target = e.link.as_deref().unwrap_or_default();
                rfs::symlinkat(target, &parent, name.as_str())
                    .map_err(|err| self.err("creating", rel, err))?;
                chown_at(&parent, &name, uid, gid).map_err(|err| self.err("chowning", rel, err))?;
                set_times(&parent, &name, e.mtime).map_err(|err| self.err("dating", rel, err))
            }
            Kind::File => {
                let fd = rfs::openat(
                    &parent,
                    name.as_str(),
                    OFlags::WRONLY
                        | OFlags::CREATE
                        | OFlags::EXCL
                        | OFlags::NOFOLLOW
                        | OFlags::CLOEXEC,
                    Mode::from_raw_mode(0o600),
                )
                .map_err(|err| self.err("creating", rel, err))?;
                let mut out = std::fs::File::from(fd);
                let src = open
                    .open()
                    .map_err(|err| self.err("reading the source of", rel, err))?;
                src.copy_to(&mut out)
                    .map_err(|err| self.err("writing", rel, err))?;
                open.check_unchanged()
                    .map_err(|err| self.err("copying into", rel, err))?;
                // chown first: it clears setuid bits a chmod sets.
                rfs::fchown(
                    &out,
                    Some(rfs::Uid::from_raw(uid)),
                    Some(rfs::Gid::from_raw(gid)),
                )
                .map_err(|err| self.err("chowning", rel, err))?;
                let mode = self.opts.mode.unwrap_or(e.mode);
                rfs::fchmod(&out, Mode::from_raw_mode(mode))
                    .map_err(|err| self.err("setting the mode of", rel, err))?;
                let t = timespec(e.mtime);
                rfs::futimens(
                    &out,
                    &Timestamps {
                        last_access: t,
                        last_modification: t,
                    },
                )
                .map_err(|err| self.err("dating", rel, err))
            }
            Kind::Dir | Kind::Other => Ok(()),
        }
    }

    /// `ADD` of a local archive: extracted into `dest` (a directory).
    /// False when the file is not an archive.
    fn extract(&mut self, open: &Opener<'_>, dest: &str) -> Result<bool> {
        let mut file = open.open().map_err(|e| self.err("reading", dest, e))?;
        let mut head = [0u8; 512];
        let n = read_head(&mut file, &mut head).map_err(|e| self.err("reading", dest, e))?;
        let head = &head[..n];
        let bzip2 = head.starts_with(b"BZh");
        let xz = head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]);
        let compressed = bzip2
            || xz
            || head.starts_with(&[0x1f, 0x8b])
            || head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]);
        let plain_tar = head.len() >= 262 && &head[257..262] == b"ustar";
        if !compressed && !plain_tar {
            return Ok(false);
        }
        let dir = self.mkdir_all(dest)?;
        let reopened = open.open().map_err(|e| self.err("reading", dest, e))?;
        let stream: Box<dyn std::io::Read> = match (bzip2, xz) {
            (true, _) => Box::new(bzip2::read::MultiBzDecoder::new(reopened)),
            (_, true) => Box::new(liblzma::read::XzDecoder::new_multi_decoder(reopened)),
            _ => berth_store::layers::decompress(reopened)
                .map_err(|e| self.err("decompressing", dest, e))?,
        };
        // Extracted through the directory's handle: the archive is confined
        // to it, as Docker confines it with a chroot.
        let via = PathBuf::from(format!("/proc/self/fd/{}", dir.as_raw_fd()));
        berth_store::unpack::unpack(
            "ADD archive",
            stream,
            &via,
            berth_store::unpack::UnpackOptions::default(),
        )?;
        open.check_unchanged()
            .map_err(|e| self.err("extracting into", dest, e))?;
        Ok(true)
    }

    /// Sets directory mtimes, deepest first.
    fn finish(mut self) -> Result<()> {
        self.dir_times.sort_by(|a, b| b.0.cmp(&a.0));
        for (rel, t) in std::mem::take(&mut self.dir_times) {
            let (parent, name) = rel.rsplit_once('/').unwrap_or(("", rel.as_str()));
            let fd = self
                .root
                .dir_readable(parent)
                .map_err(|e| self.err("opening", parent, e))?;
            set_times(&fd, name, t).map_err(|e| self.err("dating", &rel, e))?;
        }
        Ok(())
    }
}

fn read_head(file: &mut impl io::Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match file.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// Removes whatever is at `name` (a whole directory tree too), as Docker's
/// extraction replaces what is in the way.
pub(crate) fn clear(dir: &OwnedFd, name: &str) -> io::Result<()> {
    match rfs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Err(rustix::io::Errno::NOENT) => Ok(()),
        Err(e) => Err(e.into()),
        Ok(st) if rfs::FileType::from_raw_mode(st.st_mode).is_dir() => {
            // std's remove_dir_all never follows symlinks (CVE-2022-21658);
            // the parent is reached through its confined handle.
            std::fs::remove_dir_all(format!("/proc/self/fd/{}/{name}", dir.as_raw_fd()))
        }
        Ok(_) => rfs::unlinkat(dir, name, AtFlags::empty()).map_err(Into::into),
    }
}

fn chown_at(dir: &OwnedFd, name: &str, uid: u32, gid: u32) -> io::Result<()> {
    rfs::chownat(
        dir,
        name,
        Some(rfs::Uid::from_raw(uid)),
        Some(rfs::Gid::from_raw(gid)),
        AtFlags::SYMLINK_NOFOLLOW,
    )
    .map_err(Into::into)
}

fn timespec((sec, nsec): (i64, i64)) -> Timespec {
    Timespec {
        tv_sec: sec,
        tv_nsec: nsec,
    }
}

fn set_times(dir: &OwnedFd, name: &str, t: (i64, i64)) -> io::Result<()> {
    let t = timespec(t);
    rfs::utimensat(
        dir,
        name,
        &Timestamps {
            last_access: t,
            last_modification: t,
        },
        AtFlags::SYMLINK_NOFOLLOW,
    )
    .map_err(Into::into)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    struct Fixture {
        _dir: tempfile::TempDir,
        ctx: PathBuf,
        root: PathBuf,
    }

    fn fixture(files: &[(&str, &str)]) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let ctx = dir.path().join("ctx");
        let root = dir.path().join("root");
        std::fs::create_dir_all(&root).unwrap();
        for (p, c) in files {
            let p = ctx.join(p);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, c).unwrap();
        }
        std::fs::create_dir_all(&ctx).unwrap();
        Fixture {
            _dir: dir,
            ctx,
            root,
        }
    }

    fn run(f: &Fixture, src: &[&str], dest: &str, opts: CopyOptions) -> Result<()> {
        let tree = Tree::context(&f.ctx).unwrap();
        let mut sources = Vec::new();
        let mut many = src.len() > 1;
        for s in src {
            many |= crate::ignore::has_wildcards(s);
            sources.extend(tree.resolve(s)?);
        }
        copy(&tree, &sources, many, dest, &f.root, opts)
    }

    #[test]
    fn a_file_goes_into_a_directory_or_becomes_the_destination() {
        let f = fixture(&[("a.txt", "A")]);
        run(&f, &["a.txt"], "/dir/", CopyOptions::default()).unwrap();
        assert_eq!(
            std::fs::read_to_string(f.root.join("dir/a.txt")).unwrap(),
            "A"
        );
        run(&f, &["a.txt"], "/renamed", CopyOptions::default()).unwrap();
        assert_eq!(
            std::fs::read_to_string(f.root.join("renamed")).unwrap(),
            "A"
        );
        // An existing directory takes the file inside it.
        run(&f, &["a.txt"], "/dir", CopyOptions::default()).unwrap();
        assert!(f.root.join("dir/a.txt").is_file());
    }

    #[test]
    fn a_directory_copies_its_contents_and_several_sources_need_a_slash() {
        let f = fixture(&[("src/x", "x"), ("src/sub/y", "y"), ("b", "b")]);
        run(&f, &["src"], "/app", CopyOptions::default()).unwrap();
        assert!(f.root.join("app/x").is_file() && f.root.join("app/sub/y").is_file());
        assert!(!f.root.join("app/src").exists());
        let err = run(&f, &["src/x", "b"], "/many", CopyOptions::default()).unwrap_err();
        assert!(
            err.to_string()
                .contains("must be a directory and end with a /"),
            "{err}"
        );
        let err = run(&f, &["*"], "/w", CopyOptions::default()).unwrap_err();
        assert!(err.to_string().contains("end with a /"), "{err}");
    }

    #[test]
    fn owners_modes_and_mtimes_follow_dockers_rules() {
        let f = fixture(&[("run.sh", "#!/bin/sh")]);
        let p = f.ctx.join("run.sh");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o750)).unwrap();
        let mtime = std::fs::metadata(&p).unwrap().mtime();
        run(
            &f,
            &["run.sh"],
            "/new/dir/",
            CopyOptions {
                owner: Some((1000, 1001)),
                ..Default::default()
            },
        )
        .unwrap();
        let m = std::fs::metadata(f.root.join("new/dir/run.sh")).unwrap();
        assert_eq!(
            (m.uid(), m.gid(), m.mode() & 0o7777, m.mtime()),
            (1000, 1001, 0o750, mtime)
        );
        let parent = std::fs::metadata(f.root.join("new")).unwrap();
        assert_eq!(
            (parent.uid(), parent.mode() & 0o7777),
            (1000, 0o755),
            "new parents get the owner"
        );
        run(
            &f,
            &["run.sh"],
            "/m",
            CopyOptions {
                mode: Some(0o4711),
                ..Default::default()
            },
        )
        .unwrap();
        let m = std::fs::metadata(f.root.join("m")).unwrap();
        assert_eq!((m.uid(), m.mode() & 0o7777), (0, 0o4711));
    }

    #[test]
    fn symlinks_in_the_destination_resolve_inside_its_root() {
        let f = fixture(&[("evil", "pwned")]);
        let outside = f._dir.path().join("outside");
        std::fs::create_dir_all(&outside).unwrap();
        std::os::unix::fs::symlink(&outside, f.root.join("app")).unwrap();
        run(&f, &["evil"], "/app/", CopyOptions::default()).unwrap();
        assert!(
            !outside.join("evil").exists(),
            "wrote through a symlink to the host"
        );
        assert!(f
            .root
            .join(outside.strip_prefix("/").unwrap())
            .join("evil")
            .is_file());
    }

    #[test]
    fn what_is_in_the_way_is_replaced() {
        let f = fixture(&[("d/file", "new")]);
        std::fs::create_dir_all(f.root.join("t/file/deep")).unwrap();
        run(&f, &["d"], "/t", CopyOptions::default()).unwrap();
        assert_eq!(
            std::fs::read_to_string(f.root.join("t/file")).unwrap(),
            "new"
        );
    }

    #[test]
    fn add_extracts_archives_and_copies_other_files() {
        let f = fixture(&[("plain.txt", "not an archive")]);
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(2);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        b.append_data(&mut h, "inner/hello", &b"hi"[..]).unwrap();
        std::fs::write(f.ctx.join("a.tar"), b.into_inner().unwrap()).unwrap();
        let add = CopyOptions {
            extract: true,
            ..Default::default()
        };
        run(&f, &["a.tar"], "/x/", add).unwrap();
        assert_eq!(
            std::fs::read_to_string(f.root.join("x/inner/hello")).unwrap(),
            "hi"
        );
        run(&f, &["plain.txt"], "/y/", add).unwrap();
        assert!(f.root.join("y/plain.txt").is_file());
        // bzip2 and xz archives too, as Docker extracts them.
        let tar_bytes = std::fs::read(f.ctx.join("a.tar")).unwrap();
        let mut bz = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
        std::io::Write::write_all(&mut bz, &tar_bytes).unwrap();
        std::fs::write(f.ctx.join("a.tar.bz2"), bz.finish().unwrap()).unwrap();
        let mut xz = liblzma::write::XzEncoder::new(Vec::new(), 1);
        std::io::Write::write_all(&mut xz, &tar_bytes).unwrap();
        std::fs::write(f.ctx.join("a.tar.xz"), xz.finish().unwrap()).unwrap();
        run(&f, &["a.tar.bz2"], "/bz/", add).unwrap();
        run(&f, &["a.tar.xz"], "/xz/", add).unwrap();
        for d in ["bz", "xz"] {
            assert_eq!(
                std::fs::read_to_string(f.root.join(d).join("inner/hello")).unwrap(),
                "hi"
            );
        }
    }
}
