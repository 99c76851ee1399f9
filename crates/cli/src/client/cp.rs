//! `berth cp`: docker's client side of copying, over the archive API. The
//! daemon only stats paths, sends tars of them and extracts tars into
//! directories; which directory and which names is decided here, by the
//! docker CLI's rules (`archive.PrepareArchiveCopy`): a path that exists
//! as a directory receives the source under its own name, any other
//! receives it renamed to the destination's name, in its parent.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use bollard::query_parameters::{
    ContainerArchiveInfoOptions, DownloadFromContainerOptions, UploadToContainerOptions,
};
use bollard::Docker;
use clap::Args;

use super::chunks::{reader_stream, written_stream};

#[derive(Debug, Args)]
pub struct CpArgs {
    /// Archive mode (copy all uid/gid information)
    #[arg(short, long)]
    pub archive: bool,
    /// Always follow symbol link in SRC_PATH
    #[arg(short = 'L', long)]
    pub follow_link: bool,
    /// Suppress progress output during copy
    #[arg(short, long)]
    pub quiet: bool,
    /// CONTAINER:SRC_PATH or SRC_PATH|-
    pub source: String,
    /// DEST_PATH|- or CONTAINER:DEST_PATH
    pub destination: String,
}

/// A side of the copy: here, or in a container.
enum Side {
    Local(String),
    Container { name: String, path: String },
}

/// docker's rule: a path that starts with `/` or `.` is local; otherwise
/// `NAME:PATH` names a container.
fn side(arg: &str) -> Side {
    if arg.starts_with('/') || arg.starts_with('.') {
        return Side::Local(arg.to_owned());
    }
    match arg.split_once(':') {
        Some((name, path)) if !name.is_empty() => Side::Container {
            name: name.to_owned(),
            path: path.to_owned(),
        },
        _ => Side::Local(arg.to_owned()),
    }
}

/// `berth cp`.
pub async fn cp(d: &Docker, a: &CpArgs) -> Result<i32> {
    match (side(&a.source), side(&a.destination)) {
        (Side::Container { name, path }, Side::Local(dst)) => {
            copy_from(d, a, &name, &path, &dst).await
        }
        (Side::Local(src), Side::Container { name, path }) => {
            copy_to(d, a, &src, &name, &path).await
        }
        (Side::Local(_), Side::Local(_)) => {
            bail!("must specify at least one container source")
        }
        _ => bail!("copying between containers is not supported"),
    }
}

/// `dir` and last element of a path, docker's `SplitPathDirEntry`: a
/// trailing `/.` keeps `.` as the element (the directory's contents).
fn split_dir_entry(path: &str) -> (String, String) {
    let trimmed = if path.len() > 1 {
        path.trim_end_matches('/')
    } else {
        path
    };
    let (dir, base) = match trimmed.rsplit_once('/') {
        Some(("", base)) => ("/".to_owned(), base.to_owned()),
        Some((dir, base)) => (dir.to_owned(), base.to_owned()),
        None => (".".to_owned(), trimmed.to_owned()),
    };
    (
        dir,
        if base.is_empty() {
            ".".to_owned()
        } else {
            base
        },
    )
}

/// Whether a path says it must be a directory (`dir/`, `dir/.`).
fn asserts_directory(path: &str) -> bool {
    path.ends_with('/') || path.ends_with("/.")
}

/// What the destination is, as far as the copy cares.
struct DestInfo {
    exists: bool,
    is_dir: bool,
}

/// Where the tar goes and what its top entry is renamed to (None: kept).
fn prepare(src_is_dir: bool, dst: &str, info: &DestInfo) -> Result<(String, Option<String>)> {
    let (dst_dir, dst_base) = split_dir_entry(dst);
    match (info.exists, info.is_dir, src_is_dir) {
        (true, true, _) => Ok((dst.to_owned(), None)),
        (true, false, true) => bail!("cannot copy a directory to a file: {dst}"),
        (true, false, false) | (false, _, true) => Ok((dst_dir, Some(dst_base))),
        (false, _, false) if asserts_directory(dst) => {
            bail!("no such directory: {dst}")
        }
        (false, _, false) => Ok((dst_dir, Some(dst_base))),
    }
}

/// Container → here (or a tar on stdout for `-`).
async fn copy_from(d: &Docker, a: &CpArgs, name: &str, path: &str, dst: &str) -> Result<i32> {
    let stat = stat(d, name, path).await?;
    let mut src_path = path.to_owned();
    let mut rename = None;
    // -L: the link's target, named as the link.
    if a.follow_link && stat.file_mode & (1 << 27) != 0 {
        src_path = stat.link_target.clone();
        rename = Some(split_dir_entry(path).1);
    }
    let src_is_dir = if rename.is_some() {
        stat_mode(d, name, &src_path).await? & (1 << 31) != 0
    } else {
        stat.file_mode & (1 << 31) != 0
    };
    let opts = DownloadFromContainerOptions {
        path: src_path.clone(),
    };
    let body = Box::pin(d.download_from_container(name, Some(opts)));
    let reader = super::chunks::batched_reader(body);
    let src_base = split_dir_entry(&src_path).1;
    if dst == "-" {
        let from = rename.map(|r| (src_base, r));
        tokio::task::spawn_blocking(move || {
            let out = std::io::BufWriter::with_capacity(1 << 20, std::io::stdout().lock());
            rebase(reader, out, from.as_ref())
        })
        .await??;
        return Ok(0);
    }
    let info = local_info(dst);
    let (dir, new_base) = prepare(src_is_dir, dst, &info)?;
    if !Path::new(&dir).is_dir() {
        bail!("no such directory: {dir}");
    }
    let base = new_base.or(rename);
    let copied =
        tokio::task::spawn_blocking(move || unpack_local(reader, &dir, &src_base, base)).await??;
    if !a.quiet {
        eprintln!(
            "Successfully copied {} to {dst}",
            super::format::human_size(i64::try_from(copied).unwrap_or(i64::MAX))
        );
    }
    Ok(0)
}

async fn stat(d: &Docker, name: &str, path: &str) -> Result<bollard::container::PathStatResponse> {
    let opts = ContainerArchiveInfoOptions {
        path: path.to_owned(),
    };
    match d.get_container_archive_info(name, Some(opts)).await {
        Ok(s) => Ok(s),
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        }) => {
            // A HEAD carries no message: say which of the two is missing.
            d.inspect_container(name, None).await?;
            Err(anyhow!(
                "Could not find the file {path} in container {name}"
            ))
        }
        Err(e) => Err(e.into()),
    }
}

async fn stat_mode(d: &Docker, name: &str, path: &str) -> Result<u32> {
    Ok(stat(d, name, path).await?.file_mode)
}

fn local_info(path: &str) -> DestInfo {
    match std::fs::metadata(path) {
        Ok(m) => DestInfo {
            exists: true,
            is_dir: m.is_dir(),
        },
        Err(_) => DestInfo {
            exists: false,
            is_dir: false,
        },
    }
}

/// Copies a tar, renaming the top entry `from.0` (and what is under it)
/// to `from.1`.
fn rebase(input: impl Read, out: impl Write, from: Option<&(String, String)>) -> Result<u64> {
    let mut ar = tar::Archive::new(input);
    let mut b = tar::Builder::new(out);
    let mut content = 0;
    for entry in ar.entries()? {
        let mut entry = entry?;
        let mut header = entry.header().clone();
        let path = entry.path()?.to_string_lossy().into_owned();
        let renamed = match from {
            Some((old, new)) => rename(&path, old, new),
            None => path,
        };
        content += header.size().unwrap_or(0);
        match header.entry_type() {
            tar::EntryType::Symlink | tar::EntryType::Link => {
                let target = entry
                    .link_name()?
                    .map(|t| t.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let target = match (header.entry_type(), from) {
                    (tar::EntryType::Link, Some((old, new))) => rename(&target, old, new),
                    _ => target,
                };
                b.append_link(&mut header, &renamed, &target)?;
            }
            _ => b.append_data(&mut header, &renamed, &mut entry)?,
        }
    }
    b.into_inner()?.flush()?;
    Ok(content)
}

/// `old` or `old/…` as `new` or `new/…`; other paths as they are.
fn rename(path: &str, old: &str, new: &str) -> String {
    if old == "." {
        // A directory's contents: everything is under it (tar writers drop
        // the leading `./` of its entries).
        let rest = path.trim_start_matches("./");
        return match rest.trim_end_matches('/') {
            "" | "." => format!("{new}/"),
            _ => format!("{new}/{rest}"),
        };
    }
    let trimmed = path.trim_end_matches('/');
    if trimmed == old {
        return path.replacen(old, new, 1);
    }
    match path.strip_prefix(&format!("{old}/")) {
        Some(rest) => format!("{new}/{rest}"),
        None => path.to_owned(),
    }
}

/// Extracts the container's tar into `dir` here, the top entry renamed
/// to `base` when given. The tar crate's `unpack` refuses entries that
/// would leave `dir` (`..`, absolute paths, links out of it); owners are
/// not set, as docker does not.
fn unpack_local(
    input: impl Read + Send + 'static,
    dir: &str,
    src_base: &str,
    base: Option<String>,
) -> Result<u64> {
    let (reader, writer) = std::io::pipe().context("making a pipe")?;
    let from = base.map(|b| (src_base.to_owned(), b));
    let rebased = std::thread::spawn(move || {
        rebase(
            input,
            std::io::BufWriter::with_capacity(1 << 20, writer),
            from.as_ref(),
        )
    });
    let mut ar = tar::Archive::new(std::io::BufReader::with_capacity(1 << 20, reader));
    ar.set_preserve_permissions(true);
    ar.set_preserve_mtime(true);
    ar.set_overwrite(true);
    let unpacked = ar
        .unpack(dir)
        .with_context(|| format!("extracting into {dir}"));
    let copied = rebased
        .join()
        .map_err(|_| anyhow!("the archive reader failed"))??;
    unpacked?;
    Ok(copied)
}

/// Here (or a tar on stdin for `-`) → container.
async fn copy_to(d: &Docker, a: &CpArgs, src: &str, name: &str, path: &str) -> Result<i32> {
    let mut dst = path.to_owned();
    let mut info = DestInfo {
        exists: false,
        is_dir: false,
    };
    if let Ok(stat) = stat(d, name, path).await {
        let mut mode = stat.file_mode;
        // A link as the destination: its target.
        if mode & (1 << 27) != 0 {
            dst = stat.link_target.clone();
            mode = stat_mode(d, name, &dst).await?;
        }
        info = DestInfo {
            exists: true,
            is_dir: mode & (1 << 31) != 0,
        };
    } else {
        d.inspect_container(name, None).await?;
    }
    let (dir, body, size) = if src == "-" {
        if !info.is_dir {
            bail!("destination \"{name}:{path}\" must be a directory");
        }
        (dst, reader_stream(Box::new(std::io::stdin())), None)
    } else {
        let src_path = local_source(src, a.follow_link)?;
        let meta = std::fs::symlink_metadata(&src_path)
            .with_context(|| format!("could not stat {src}"))?;
        let (dir, new_base) = prepare(meta.is_dir(), &dst, &info)?;
        let name_in_tar = new_base.unwrap_or_else(|| split_dir_entry(src).1);
        let size = local_size(&src_path);
        let body = written_stream("sending the archive", move |w| {
            let mut tar = tar::Builder::new(w);
            tar.follow_symlinks(false);
            if meta.is_dir() {
                tar.append_dir_all(&name_in_tar, &src_path)?;
            } else {
                tar.append_path_with_name(&src_path, &name_in_tar)?;
            }
            tar.into_inner()?;
            Ok(())
        });
        (dir, body, Some(size))
    };
    let opts = UploadToContainerOptions {
        path: dir,
        no_overwrite_dir_non_dir: Some("true".to_owned()),
        copy_uidgid: Some(if a.archive { "true" } else { "false" }.to_owned()),
    };
    d.upload_to_container(name, Some(opts), bollard::body_stream(body))
        .await?;
    if let (false, Some(size)) = (a.quiet, size) {
        eprintln!(
            "Successfully copied {} to {name}:{path}",
            super::format::human_size(i64::try_from(size).unwrap_or(i64::MAX))
        );
    }
    Ok(0)
}

/// The source path; with -L a link is replaced by what it leads to.
fn local_source(src: &str, follow: bool) -> Result<PathBuf> {
    let p = PathBuf::from(src);
    if follow {
        return p
            .canonicalize()
            .with_context(|| format!("could not stat {src}"));
    }
    Ok(p)
}

/// Bytes of file content under `p`.
fn local_size(p: &Path) -> u64 {
    let Ok(m) = std::fs::symlink_metadata(p) else {
        return 0;
    };
    if !m.is_dir() {
        return m.len();
    }
    std::fs::read_dir(p)
        .map(|entries| entries.flatten().map(|e| local_size(&e.path())).sum())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_split_as_dockers_split_path_dir_entry() {
        let s = |p: &str| split_dir_entry(p);
        assert_eq!(s("/etc/hosts"), ("/etc".into(), "hosts".into()));
        assert_eq!(s("/etc/"), ("/".into(), "etc".into()));
        assert_eq!(s("/etc/."), ("/etc".into(), ".".into()));
        assert_eq!(s("file"), (".".into(), "file".into()));
        assert_eq!(s("/"), ("/".into(), ".".into()));
    }

    #[test]
    fn sides_follow_dockers_rule() {
        assert!(matches!(side("/abs:x"), Side::Local(_)));
        assert!(matches!(side("./c:x"), Side::Local(_)));
        assert!(matches!(side("plain"), Side::Local(_)));
        match side("box:/etc") {
            Side::Container { name, path } => {
                assert_eq!((name.as_str(), path.as_str()), ("box", "/etc"))
            }
            Side::Local(_) => panic!("a container"),
        }
    }

    #[test]
    fn destinations_decide_directory_and_name() {
        let dir = DestInfo {
            exists: true,
            is_dir: true,
        };
        let file = DestInfo {
            exists: true,
            is_dir: false,
        };
        let none = DestInfo {
            exists: false,
            is_dir: false,
        };
        assert_eq!(prepare(false, "/d", &dir).unwrap(), ("/d".into(), None));
        assert_eq!(
            prepare(false, "/d/f", &file).unwrap(),
            ("/d".into(), Some("f".into()))
        );
        assert!(prepare(true, "/d/f", &file).is_err());
        assert_eq!(
            prepare(true, "/d/new", &none).unwrap(),
            ("/d".into(), Some("new".into()))
        );
        assert!(prepare(false, "/d/new/", &none).is_err());
        assert_eq!(rename("a/b", "a", "x"), "x/b");
        assert_eq!(rename("a", "a", "x"), "x");
        assert_eq!(rename("ab", "a", "x"), "ab");
        assert_eq!(rename("./f", ".", "x"), "x/f");
        assert_eq!(rename("f", ".", "x"), "x/f");
        assert_eq!(rename("./", ".", "x"), "x/");
    }
}
