//! Files of a container's root filesystem addressed by path, as Docker's
//! `/containers/{id}/archive` serves them (`docker cp`): the stat of a
//! path, a tar of it, and a tar extracted into a directory.
//!
//! Paths are resolved as dockerd resolves them (`container.ResolvePath`):
//! every component but the last follows symlinks, always inside the root
//! ([`Root`], `openat2(RESOLVE_IN_ROOT)`), so a container's symlinks can
//! never lead a copy out of it (CVE-2018-15664 and the other `docker cp`
//! escapes); the last component is followed only when the path ends in
//! `/` or `/.`.

use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::path::Path;

use rustix::fs::{self as rfs, AtFlags, FileType};
use serde::Serialize;

use crate::error::{Result, StoreError};
use crate::fsroot::{RelPath, Root};
use crate::unpack::UnpackOptions;

/// How many symlinks a path may pass through (as the kernel's MAXSYMLINKS).
const MAX_LINKS: usize = 40;

/// The stat Docker sends base64-encoded in `X-Docker-Container-Path-Stat`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PathStat {
    pub name: String,
    pub size: i64,
    /// Go's `os.FileMode`: permission bits and Go's own type bits.
    pub mode: u32,
    /// RFC 3339 with nanoseconds.
    pub mtime: String,
    /// Where a symlink leads, resolved in the root (else empty).
    #[serde(rename = "linkTarget")]
    pub link_target: String,
}

/// A path in a container, split as dockerd splits it.
struct Target {
    /// The directory that holds it, resolved inside the root.
    dir: OwnedFd,
    /// Its name in `dir`: `.` when the path names `dir` itself.
    name: String,
    /// The name its archive's entries start with (`filepath.Base`).
    base: String,
    /// The absolute path, for messages and link targets.
    abs: String,
}

fn not_found(path: &str) -> StoreError {
    StoreError::PathNotFound(path.to_owned())
}

fn io_err(path: &str, e: impl Into<std::io::Error>) -> StoreError {
    let e = e.into();
    if e.kind() == std::io::ErrorKind::NotFound {
        return not_found(path);
    }
    StoreError::io("reading", path, e)
}

/// Splits and resolves `path` (absolute in the container, or relative to
/// its `/`) inside `root`.
fn target(root: &Root, path: &str) -> Result<Target> {
    let abs = format!("/{}", path.trim_start_matches('/'));
    let (dir, last) = abs.rsplit_once('/').unwrap_or(("", ""));
    let dir_rel = RelPath::new(Path::new(dir)).ok_or_else(|| not_found(&abs))?;
    let dir_fd = root.dir(&dir_rel.joined()).map_err(|e| io_err(&abs, e))?;
    let (name, base) = match last {
        "" => (".".to_owned(), dir_rel.name().unwrap_or("/").to_owned()),
        "." => (".".to_owned(), ".".to_owned()),
        ".." => {
            let up = RelPath::new(Path::new(&format!("{dir}/.."))).unwrap_or_default();
            let fd = root.dir(&up.joined()).map_err(|e| io_err(&abs, e))?;
            return Ok(Target {
                dir: fd,
                name: ".".to_owned(),
                base: up.name().unwrap_or("/").to_owned(),
                abs,
            });
        }
        other => (other.to_owned(), other.to_owned()),
    };
    Ok(Target {
        dir: dir_fd,
        name,
        base,
        abs,
    })
}

/// The stat of `path` in `root` (`HEAD /containers/{id}/archive`).
pub fn stat(root: &Root, path: &str) -> Result<PathStat> {
    let t = target(root, path)?;
    let st = rfs::statat(&t.dir, t.name.as_str(), AtFlags::SYMLINK_NOFOLLOW)
        .map_err(|e| io_err(&t.abs, e))?;
    let kind = FileType::from_raw_mode(st.st_mode);
    let link_target = if kind == FileType::Symlink {
        resolve_link(root, &t.abs)?
    } else {
        String::new()
    };
    let mtime =
        chrono::DateTime::from_timestamp(st.st_mtime, u32::try_from(st.st_mtime_nsec).unwrap_or(0))
            .unwrap_or_default()
            .to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
    Ok(PathStat {
        name: t.base,
        size: st.st_size,
        mode: go_mode(st.st_mode),
        mtime,
        link_target,
    })
}

/// Writes a tar of `path` in `root` to `out` (`GET …/archive`): a file as
/// one entry named after it, a directory with everything under it. Its
/// stat comes first: the caller sends it before the stream.
pub fn archive(root: &Root, path: &str, out: impl Write) -> Result<()> {
    let t = target(root, path)?;
    rfs::statat(&t.dir, t.name.as_str(), AtFlags::SYMLINK_NOFOLLOW)
        .map_err(|e| io_err(&t.abs, e))?;
    crate::diff::write_entry(&t.dir, &t.name, &t.base, Path::new(&t.abs), out).map(drop)
}

/// Extracts the tar `input` into the directory `path` of `root` (`PUT
/// …/archive`); `opts` decide ownership and whether directories and
/// non-directories may replace each other.
pub fn extract(root: &Root, path: &str, input: impl Read, opts: UnpackOptions) -> Result<u64> {
    let abs = format!("/{}", path.trim_start_matches('/'));
    let rel = RelPath::new(Path::new(&abs)).ok_or_else(|| not_found(&abs))?;
    match root.dir(&rel.joined()) {
        Ok(_) => {}
        Err(e) if e.raw_os_error() == Some(rustix::io::Errno::NOTDIR.raw_os_error()) => {
            return Err(StoreError::Invalid(format!(
                "extraction point is not a directory: {abs}"
            )))
        }
        Err(e) => return Err(io_err(&abs, e)),
    }
    // The directory as resolved (its own symlinks followed inside the
    // root): entries go there.
    let resolved = resolve_link(root, &abs)?;
    let base = RelPath::new(Path::new(&resolved)).ok_or_else(|| not_found(&abs))?;
    crate::unpack::extract(&format!("archive for {abs}"), input, root, &base, opts)
}

/// Copies the directory `path` of `from` (resolved inside it) — its
/// contents with owners, modes, links and xattrs — into the directory
/// `to`, whose own owner and mode become the source's: Docker's copy of
/// an image's files into a new volume. Nothing when `path` is no
/// directory there.
pub fn copy_dir(from: &Root, path: &str, to: &Path) -> Result<()> {
    let abs = format!("/{}", path.trim_start_matches('/'));
    let rel = RelPath::new(Path::new(&abs)).ok_or_else(|| not_found(&abs))?;
    let Ok(dir) = from.dir_readable(&rel.joined()) else {
        return Ok(());
    };
    let st = rfs::fstat(&dir).map_err(|e| io_err(&abs, e))?;
    let target = Root::open(to).map_err(|e| StoreError::io("opening", to, e))?;
    let top = target
        .dir_readable("")
        .map_err(|e| StoreError::io("opening", to, e))?;
    rfs::fchown(
        &top,
        Some(rfs::Uid::from_raw(st.st_uid)),
        Some(rfs::Gid::from_raw(st.st_gid)),
    )
    .map_err(|e| StoreError::io("setting the owner of", to, e.into()))?;
    rfs::fchmod(&top, rfs::Mode::from_raw_mode(st.st_mode & 0o7777))
        .map_err(|e| StoreError::io("setting the mode of", to, e.into()))?;
    let (reader, writer) =
        std::io::pipe().map_err(|e| StoreError::io("making a pipe for", to, e))?;
    let opts = UnpackOptions {
        whiteouts: false,
        ..UnpackOptions::default()
    };
    let shown = Path::new(&abs).to_owned();
    let (written, read) = std::thread::scope(|s| {
        let w = s.spawn(move || crate::diff::write_entry(&dir, ".", ".", &shown, writer));
        let read = crate::unpack::extract(&abs, reader, &target, &RelPath::default(), opts);
        (w.join(), read)
    });
    read?;
    written.map_err(|_| StoreError::Invalid(format!("copying {abs}: the reader failed")))??;
    Ok(())
}

/// `abs` with every symlink on the way (the last one too) followed inside
/// the root, as an absolute path in it.
fn resolve_link(root: &Root, abs: &str) -> Result<String> {
    let mut done: Vec<String> = Vec::new();
    let mut todo: Vec<String> = abs.split('/').rev().map(str::to_owned).collect();
    let mut links = 0;
    while let Some(comp) = todo.pop() {
        match comp.as_str() {
            "" | "." => continue,
            ".." => {
                done.pop();
                continue;
            }
            _ => {}
        }
        let dir = root.dir(&done.join("/")).map_err(|e| io_err(abs, e))?;
        let is_link = matches!(Root::kind(&dir, &comp), Ok(Some(FileType::Symlink)));
        if !is_link {
            done.push(comp);
            continue;
        }
        links += 1;
        if links > MAX_LINKS {
            return Err(StoreError::Invalid(format!(
                "too many levels of symbolic links: {abs}"
            )));
        }
        let target =
            rfs::readlinkat(&dir, comp.as_str(), Vec::new()).map_err(|e| io_err(abs, e))?;
        let target = target.to_string_lossy().into_owned();
        if target.starts_with('/') {
            done.clear();
        }
        todo.extend(target.split('/').rev().map(str::to_owned));
    }
    Ok(format!("/{}", done.join("/")))
}

/// A Unix mode as Go's `os.FileMode` (what Docker's clients decode).
fn go_mode(mode: u32) -> u32 {
    const DIR: u32 = 1 << 31;
    const SYMLINK: u32 = 1 << 27;
    const DEVICE: u32 = 1 << 26;
    const PIPE: u32 = 1 << 25;
    const SOCKET: u32 = 1 << 24;
    const SETUID: u32 = 1 << 23;
    const SETGID: u32 = 1 << 22;
    const CHAR: u32 = 1 << 21;
    const STICKY: u32 = 1 << 20;
    let mut m = mode & 0o777;
    m |= match FileType::from_raw_mode(mode) {
        FileType::Directory => DIR,
        FileType::Symlink => SYMLINK,
        FileType::BlockDevice => DEVICE,
        FileType::CharacterDevice => DEVICE | CHAR,
        FileType::Fifo => PIPE,
        FileType::Socket => SOCKET,
        _ => 0,
    };
    for (bit, go) in [(0o4000, SETUID), (0o2000, SETGID), (0o1000, STICKY)] {
        if mode & bit != 0 {
            m |= go;
        }
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree() -> (tempfile::TempDir, Root) {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        std::fs::create_dir_all(r.join("etc/sub")).unwrap();
        std::fs::write(r.join("etc/hosts"), "127.0.0.1 localhost\n").unwrap();
        std::fs::write(r.join("etc/sub/deep"), "d").unwrap();
        std::os::unix::fs::symlink("/etc", r.join("link")).unwrap();
        std::os::unix::fs::symlink("../../../../", r.join("up")).unwrap();
        let root = Root::open(r).unwrap();
        (dir, root)
    }

    /// A tar of one regular file.
    fn one_file(name: &str, content: &[u8]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(content.len() as u64);
        h.set_mode(0o600);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_cksum();
        b.append_data(&mut h, name, content).unwrap();
        b.into_inner().unwrap()
    }

    fn names(tar: &[u8]) -> Vec<String> {
        let mut ar = tar::Archive::new(tar);
        ar.entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect()
    }

    #[test]
    fn stats_are_dockers() {
        let (_d, root) = tree();
        let s = stat(&root, "/etc/hosts").unwrap();
        assert_eq!((s.name.as_str(), s.size), ("hosts", 20));
        assert_eq!(s.mode & 0o777, 0o644);
        assert_eq!(stat(&root, "/etc").unwrap().mode >> 31, 1, "Go's ModeDir");
        let link = stat(&root, "/link").unwrap();
        assert_eq!(link.mode & (1 << 27), 1 << 27, "Go's ModeSymlink");
        assert_eq!(link.link_target, "/etc");
        // A path through a link resolves inside the root.
        assert_eq!(stat(&root, "/link/hosts").unwrap().name, "hosts");
        assert_eq!(stat(&root, "/up/etc/hosts").unwrap().size, 20);
        assert!(matches!(
            stat(&root, "/nope").unwrap_err(),
            StoreError::PathNotFound(_)
        ));
        assert_eq!(stat(&root, "/etc/").unwrap().name, "etc");
        assert_eq!(stat(&root, "/etc/.").unwrap().name, ".");
    }

    #[test]
    fn archives_start_with_the_paths_base_name() {
        let (_d, root) = tree();
        let mut out = Vec::new();
        archive(&root, "/etc/hosts", &mut out).unwrap();
        assert_eq!(names(&out), ["hosts"]);
        let mut out = Vec::new();
        archive(&root, "/link/", &mut out).unwrap();
        assert_eq!(
            names(&out),
            ["link/", "link/hosts", "link/sub/", "link/sub/deep"]
        );
        let mut out = Vec::new();
        archive(&root, "/link", &mut out).unwrap();
        assert_eq!(names(&out), ["link"], "the link itself");
    }

    #[test]
    fn extraction_stays_in_the_root_through_its_symlinks() {
        let (d, root) = tree();
        let outside = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), d.path().join("etc/escape")).unwrap();
        let tar = one_file("escape/x", b"hi");
        // The link leads nowhere inside the root: an error, nothing outside.
        let err = extract(&root, "/up/etc", &tar[..], UnpackOptions::default()).unwrap_err();
        assert!(err.to_string().contains("escape/x"), "{err}");
        assert!(std::fs::read_dir(outside.path()).unwrap().next().is_none());
        // Where the link's target exists inside the root, the file lands
        // there: <root>/<outside path>/x.
        let inside = d.path().join(outside.path().strip_prefix("/").unwrap());
        std::fs::create_dir_all(&inside).unwrap();
        extract(&root, "/up/etc", &tar[..], UnpackOptions::default()).unwrap();
        assert!(std::fs::read_dir(outside.path()).unwrap().next().is_none());
        assert_eq!(std::fs::read(inside.join("x")).unwrap(), b"hi");
        let err = extract(&root, "/etc/hosts", &tar[..], UnpackOptions::default()).unwrap_err();
        assert!(err.to_string().contains("not a directory"), "{err}");
    }

    #[test]
    fn hardlinks_resolve_where_the_archive_goes() {
        let (d, root) = tree();
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(1);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_cksum();
        b.append_data(&mut h, "dir/a", &b"x"[..]).unwrap();
        let mut l = tar::Header::new_gnu();
        l.set_entry_type(tar::EntryType::Link);
        l.set_size(0);
        l.set_mode(0o644);
        l.set_uid(0);
        l.set_gid(0);
        l.set_mtime(0);
        b.append_link(&mut l, "dir/b", "dir/a").unwrap();
        let tar = b.into_inner().unwrap();
        extract(&root, "/etc", &tar[..], UnpackOptions::default()).unwrap();
        use std::os::unix::fs::MetadataExt;
        let a = std::fs::metadata(d.path().join("etc/dir/a")).unwrap();
        let bm = std::fs::metadata(d.path().join("etc/dir/b")).unwrap();
        assert_eq!(a.ino(), bm.ino(), "one file, two names");
    }

    #[test]
    fn no_overwrite_dir_non_dir_keeps_directories() {
        let (d, root) = tree();
        let tar = one_file("sub", b"x");
        let keep = UnpackOptions {
            replace_dirs: false,
            ..UnpackOptions::default()
        };
        let err = extract(&root, "/etc", &tar[..], keep).unwrap_err();
        assert!(
            err.to_string().contains("cannot overwrite a directory"),
            "{err}"
        );
        assert!(d.path().join("etc/sub/deep").exists());
        extract(&root, "/etc", &tar[..], UnpackOptions::default()).unwrap();
        assert_eq!(std::fs::read(d.path().join("etc/sub")).unwrap(), b"x");
    }

    #[test]
    fn directories_copy_with_their_owner_and_mode() {
        let (d, root) = tree();
        std::fs::set_permissions(
            d.path().join("etc/sub"),
            std::os::unix::fs::PermissionsExt::from_mode(0o750),
        )
        .unwrap();
        let to = tempfile::tempdir().unwrap();
        copy_dir(&root, "/link/sub", to.path()).unwrap();
        assert_eq!(std::fs::read(to.path().join("deep")).unwrap(), b"d");
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(to.path()).unwrap().permissions(),
        );
        assert_eq!(mode & 0o7777, 0o750);
        let empty = tempfile::tempdir().unwrap();
        copy_dir(&root, "/nope", empty.path()).unwrap();
        copy_dir(&root, "/etc/hosts", empty.path()).unwrap();
        assert!(std::fs::read_dir(empty.path()).unwrap().next().is_none());
    }

    #[test]
    fn go_modes_carry_types_and_special_bits() {
        assert_eq!(go_mode(0o100644), 0o644);
        assert_eq!(go_mode(0o040755), (1 << 31) | 0o755);
        assert_eq!(go_mode(0o104755), (1 << 23) | 0o755);
        assert_eq!(go_mode(0o020666), (1 << 26) | (1 << 21) | 0o666);
        assert_eq!(go_mode(0o041777), (1 << 31) | (1 << 20) | 0o777);
    }
}
