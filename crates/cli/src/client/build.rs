//! `berth build`: the context directory named to a berth daemon on this
//! machine, which reads it in place (no 20 MB tar for a cached rebuild),
//! or sent as a tar stream (filtered by its `.dockerignore` on this side,
//! as docker does, so excluded files never travel); `POST /build`, and
//! the build's progress shown as it
//! comes: docker's plain text, or on a terminal a live view with each
//! step's state, cache hits and timing.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use berth_api_types::build::{LocalContext, NOT_THE_CLIENTS};
use berth_builder::ignore::Dockerignore;
use bollard::query_parameters::BuildImageOptionsBuilder;
use bollard::Docker;
use clap::{Args, ValueEnum};
use futures_util::StreamExt;

use super::chunks::{reader_stream, written_stream, ChunkStream, Chunks};

#[derive(Debug, Args)]
pub struct BuildArgs {
    /// Name and optionally a tag in the "name:tag" format
    #[arg(short, long = "tag")]
    pub tag: Vec<String>,
    /// Name of the Dockerfile (default: "PATH/Dockerfile")
    #[arg(short, long)]
    pub file: Option<String>,
    /// Set build-time variables
    #[arg(long = "build-arg")]
    pub build_arg: Vec<String>,
    /// Set the target build stage to build
    #[arg(long)]
    pub target: Option<String>,
    /// Do not use cache when building the image
    #[arg(long)]
    pub no_cache: bool,
    /// Always attempt to pull a newer version of the image
    #[arg(long)]
    pub pull: bool,
    /// Set metadata for an image
    #[arg(long)]
    pub label: Vec<String>,
    /// Suppress the build output and print image ID on success
    #[arg(short, long)]
    pub quiet: bool,
    /// Set type of progress output
    #[arg(long, value_enum, default_value_t = ProgressMode::Auto)]
    pub progress: ProgressMode,
    /// Set the networking mode for the RUN instructions during build
    #[arg(long)]
    pub network: Option<String>,
    /// Images to consider as cache sources
    #[arg(long)]
    pub cache_from: Vec<String>,
    /// Build context: a directory, or "-" for a tar archive on STDIN
    pub context: String,
}

/// `--progress`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProgressMode {
    Auto,
    Plain,
    Tty,
}

/// `KEY=VALUE`, or `KEY` alone for the value in our environment (skipped
/// when unset, as docker does).
fn build_args(raw: &[String]) -> HashMap<String, String> {
    raw.iter()
        .filter_map(|a| match a.split_once('=') {
            Some((k, v)) => Some((k.to_owned(), v.to_owned())),
            None => std::env::var(a).ok().map(|v| (a.clone(), v)),
        })
        .collect()
}

fn labels(raw: &[String]) -> HashMap<String, String> {
    raw.iter()
        .map(|l| {
            let (k, v) = l.split_once('=').unwrap_or((l, ""));
            (k.to_owned(), v.to_owned())
        })
        .collect()
}

pub async fn build(d: &Docker, a: &BuildArgs) -> Result<i32> {
    if let Some((local, dockerfile)) = local_context(d, a).await? {
        match run(d, a, Some(local), dockerfile).await {
            // A daemon that sees another directory there: the tar, then.
            Err(e) if e.to_string().contains(NOT_THE_CLIENTS) => {}
            other => return other,
        }
    }
    run(d, a, None, String::new()).await
}

/// The context directory, for a berth daemon to read in place, when the
/// daemon is berth's and the Dockerfile is in the context (else the tar
/// goes: it is a snapshot the daemon could not take itself).
async fn local_context(d: &Docker, a: &BuildArgs) -> Result<Option<(LocalContext, String)>> {
    use std::os::unix::fs::MetadataExt as _;
    if a.context == "-" || std::env::var_os("BERTH_BUILD_SEND_CONTEXT").is_some() {
        return Ok(None);
    }
    let Ok(dir) = Path::new(&a.context).canonicalize() else {
        return Ok(None); // the tar path words the error
    };
    let dockerfile = match &a.file {
        None => "Dockerfile".to_owned(),
        Some(f) => match dockerfile_in(&dir, Path::new(f))? {
            (rel, None) => rel,
            (_, Some(_)) => return Ok(None),
        },
    };
    let Ok(meta) = std::fs::metadata(&dir) else {
        return Ok(None);
    };
    if !meta.is_dir() || d.version().await?.platform.map(|p| p.name) != Some("berth".into()) {
        return Ok(None);
    }
    let local = LocalContext {
        dev: meta.dev(),
        ino: meta.ino(),
        path: dir.to_string_lossy().into_owned(),
    };
    Ok(Some((local, dockerfile)))
}

/// One build request: the context read in place (`local`, with its
/// Dockerfile's name) or sent as a tar.
async fn run(
    d: &Docker,
    a: &BuildArgs,
    local: Option<LocalContext>,
    dockerfile: String,
) -> Result<i32> {
    let (body, dockerfile) = match local {
        Some(_) => (bollard::body_full(bytes::Bytes::new()), dockerfile),
        None => {
            let (chunks, dockerfile) = context_stream(a)?;
            (bollard::body_stream(chunks), dockerfile)
        }
    };
    let mut opts = BuildImageOptionsBuilder::new()
        .dockerfile(&dockerfile)
        .buildargs(&build_args(&a.build_arg))
        .labels(&labels(&a.label))
        .nocache(a.no_cache)
        .pull(if a.pull { "1" } else { "" })
        .cachefrom(&a.cache_from)
        .q(a.quiet)
        .rm(true);
    if let Some(t) = a.tag.first() {
        opts = opts.t(t);
    }
    if let Some(t) = &a.target {
        opts = opts.target(t);
    }
    if let Some(n) = &a.network {
        opts = opts.networkmode(n);
    }
    if let Some(l) = &local {
        opts = opts.remote(&l.to_remote());
    }
    let tty = match a.progress {
        ProgressMode::Auto => std::io::stderr().is_terminal(),
        ProgressMode::Plain => false,
        ProgressMode::Tty => true,
    };
    let mut view = View::new(tty && !a.quiet);
    let mut stream = d.build_image(opts.build(), None, Some(body));
    let mut id: Option<String> = None;
    let mut ticker = tokio::time::interval(Duration::from_millis(100));
    loop {
        let next = tokio::select! {
            n = stream.next() => n,
            _ = ticker.tick() => { view.tick(); continue; }
        };
        let Some(info) = next else { break };
        let info = match info {
            Ok(i) => i,
            // bollard turns the stream's errorDetail into this error.
            Err(bollard::errors::Error::DockerStreamError { error }) => {
                view.finish();
                eprintln!("{}", error.trim_end());
                return Ok(exit_code(&error));
            }
            Err(e) => return Err(e.into()),
        };
        if let Some(detail) = info.error_detail {
            view.finish();
            let message = detail.message.unwrap_or_default();
            eprintln!("{}", message.trim_end());
            let code = detail
                .code
                .and_then(|c| i32::try_from(c).ok())
                .filter(|c| *c != 0);
            return Ok(code.unwrap_or(1));
        }
        if let Some(img) = info.aux {
            id = img.id;
        }
        if let Some(text) = info.stream {
            if !a.quiet {
                view.text(&text);
            }
        }
    }
    view.finish();
    let Some(id) = id else {
        bail!("the daemon ended the build without an image ID");
    };
    for extra in a.tag.iter().skip(1) {
        let (repo, tag) = super::images::split_tag(extra);
        let opts = bollard::query_parameters::TagImageOptions {
            repo: Some(repo),
            tag,
        };
        d.tag_image(&id, Some(opts)).await?;
        if !a.quiet {
            println!("Successfully tagged {extra}");
        }
    }
    if a.quiet {
        println!("{id}");
    }
    Ok(0)
}

/// docker's exit code for a failed build: a RUN's own status (the classic
/// builder's message carries it), else 1.
fn exit_code(message: &str) -> i32 {
    message
        .trim_end()
        .rsplit_once("returned a non-zero code: ")
        .and_then(|(_, c)| c.parse().ok())
        .filter(|c| *c != 0)
        .unwrap_or(1)
}

/// The context as a stream of tar chunks, and the Dockerfile's name in it.
fn context_stream(a: &BuildArgs) -> Result<(ChunkStream, String)> {
    if a.context == "-" {
        let stdin = reader_stream(Box::new(std::io::stdin()));
        return Ok((stdin, a.file.clone().unwrap_or_default()));
    }
    let dir = PathBuf::from(&a.context);
    if !dir.is_dir() {
        bail!("unable to prepare context: path {:?} not found", a.context);
    }
    let (dockerfile, outside) = match &a.file {
        None => ("Dockerfile".to_owned(), None),
        Some(f) => dockerfile_in(&dir, Path::new(f))?,
    };
    let ignore = match std::fs::read_to_string(dir.join(".dockerignore")) {
        Ok(t) => Dockerignore::parse(&t).map_err(|e| anyhow::anyhow!(".dockerignore: {e}"))?,
        Err(_) => Dockerignore::default(),
    };
    let keep = [dockerfile.clone(), ".dockerignore".to_owned()];
    let name = dockerfile.clone();
    let chunks = written_stream("sending the build context", move |writer| {
        let mut tar = tar::Builder::new(writer);
        tar.follow_symlinks(false);
        add_tree(&mut tar, &dir, "", &ignore, &keep)?;
        if let Some(path) = &outside {
            tar.append_path_with_name(path, &name)?;
        }
        tar.into_inner()?;
        Ok(())
    });
    Ok((chunks, dockerfile))
}

/// `-f`: its path in the context, or (outside it) a name it is sent as.
fn dockerfile_in(dir: &Path, file: &Path) -> Result<(String, Option<PathBuf>)> {
    let abs_dir = dir
        .canonicalize()
        .with_context(|| format!("resolving {}", dir.display()))?;
    let abs = file.canonicalize().with_context(|| {
        format!(
            "unable to prepare context: the Dockerfile ({}) cannot be found",
            file.display()
        )
    })?;
    match abs.strip_prefix(&abs_dir) {
        Ok(rel) => Ok((rel.to_string_lossy().into_owned(), None)),
        Err(_) => Ok((format!(".dockerfile.{}", std::process::id()), Some(abs))),
    }
}

/// Adds `dir/rel` and everything below it that `.dockerignore` keeps;
/// owners are sent as root (docker's CLI does the same).
fn add_tree(
    tar: &mut tar::Builder<&mut Chunks>,
    root: &Path,
    rel: &str,
    ignore: &Dockerignore,
    keep: &[String],
) -> Result<()> {
    let here = if rel.is_empty() {
        root.to_owned()
    } else {
        root.join(rel)
    };
    let mut names: Vec<String> = std::fs::read_dir(&here)
        .with_context(|| format!("reading {}", here.display()))?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    for name in names {
        let child = if rel.is_empty() {
            name.clone()
        } else {
            format!("{rel}/{name}")
        };
        let path = root.join(&child);
        let meta = std::fs::symlink_metadata(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let excluded = ignore.is_excluded(&child) && !keep.contains(&child);
        if excluded && (!meta.is_dir() || ignore.can_skip_dir(&child)) {
            continue;
        }
        if !excluded {
            let mut h = tar::Header::new_gnu();
            h.set_metadata(&meta);
            h.set_uid(0);
            h.set_gid(0);
            let appended = if meta.file_type().is_symlink() {
                let target = std::fs::read_link(&path)?;
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_size(0);
                tar.append_link(&mut h, &child, target)
            } else if meta.is_file() {
                tar.append_data(&mut h, &child, std::fs::File::open(&path)?)
            } else if meta.is_dir() {
                h.set_size(0);
                tar.append_data(&mut h, &child, std::io::empty())
            } else {
                Ok(()) // devices, sockets, fifos: not context content
            };
            appended.with_context(|| format!("adding {child}"))?;
        }
        if meta.is_dir() {
            add_tree(tar, root, &child, ignore, keep)?;
        }
    }
    Ok(())
}

/// How progress is shown.
struct View {
    live: bool,
    /// A line not yet ended.
    partial: String,
    /// The step running: its label and when it started.
    current: Option<(String, Instant, bool)>,
    started: Instant,
    drawn: bool,
}

impl View {
    fn new(live: bool) -> Self {
        Self {
            live,
            partial: String::new(),
            current: None,
            started: Instant::now(),
            drawn: false,
        }
    }

    /// Text from the daemon's stream.
    fn text(&mut self, text: &str) {
        if !self.live {
            print!("{text}");
            let _ = std::io::stdout().flush();
            return;
        }
        self.partial.push_str(text);
        while let Some(end) = self.partial.find('\n') {
            let line: String = self.partial.drain(..=end).collect();
            self.line(line.trim_end_matches('\n'));
        }
    }

    fn line(&mut self, line: &str) {
        if let Some(step) = line.strip_prefix("Step ") {
            self.close_step();
            // `2/7 : RUN make` → `[2/7] RUN make`.
            let label = match step.split_once(" : ") {
                Some((n, text)) => format!("[{n}] {text}"),
                None => step.to_owned(),
            };
            self.current = Some((label, Instant::now(), false));
        } else if line == " ---> Using cache" {
            if let Some(c) = &mut self.current {
                c.2 = true;
            }
        } else if line.starts_with(" ---> ") || line.starts_with("Removing intermediate container")
        {
            // Image and container IDs: the plain view shows them.
        } else if line.starts_with("Successfully ") {
            self.close_step();
            self.clear();
            eprintln!("{line}");
        } else {
            self.clear();
            eprintln!("\x1b[2m  │ {line}\x1b[0m");
            self.draw();
        }
    }

    fn close_step(&mut self) {
        if let Some((label, t, cached)) = self.current.take() {
            self.clear();
            let state = if cached {
                "CACHED".to_owned()
            } else {
                format!("{:.1}s", t.elapsed().as_secs_f64())
            };
            eprintln!("\x1b[34m=> {label}\x1b[0m {state}");
        }
    }

    fn clear(&mut self) {
        if std::mem::take(&mut self.drawn) {
            eprint!("\r\x1b[2K");
        }
    }

    fn draw(&mut self) {
        if let Some((label, t, _)) = &self.current {
            eprint!(
                "\r\x1b[2K[+] Building {:.1}s  => {label} {:.1}s",
                self.started.elapsed().as_secs_f64(),
                t.elapsed().as_secs_f64()
            );
            let _ = std::io::stderr().flush();
            self.drawn = true;
        }
    }

    fn tick(&mut self) {
        if self.live {
            self.clear();
            self.draw();
        }
    }

    fn finish(&mut self) {
        if self.live {
            self.close_step();
            self.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_run_exits_with_its_code() {
        assert_eq!(
            exit_code("The command '/bin/sh -c exit 3' returned a non-zero code: 3\n"),
            3
        );
        assert_eq!(exit_code("COPY failed: file not found"), 1);
    }

    #[test]
    fn build_args_take_values_or_the_environment() {
        std::env::set_var("BERTH_TEST_ARG", "from-env");
        let a = build_args(&[
            "A=1".into(),
            "BERTH_TEST_ARG".into(),
            "BERTH_UNSET_ARG".into(),
        ]);
        assert_eq!(a.get("A").map(String::as_str), Some("1"));
        assert_eq!(
            a.get("BERTH_TEST_ARG").map(String::as_str),
            Some("from-env")
        );
        assert!(!a.contains_key("BERTH_UNSET_ARG"));
    }

    #[test]
    fn a_dockerfile_outside_the_context_is_sent_under_another_name() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = dir.path().join("ctx");
        std::fs::create_dir_all(ctx.join("sub")).unwrap();
        std::fs::write(ctx.join("sub/Dockerfile.dev"), "FROM scratch").unwrap();
        std::fs::write(dir.path().join("Outside"), "FROM scratch").unwrap();
        let (name, extra) = dockerfile_in(&ctx, &ctx.join("sub/Dockerfile.dev")).unwrap();
        assert_eq!((name.as_str(), extra), ("sub/Dockerfile.dev", None));
        let (name, extra) = dockerfile_in(&ctx, &dir.path().join("Outside")).unwrap();
        assert!(name.starts_with(".dockerfile.") && extra.is_some());
    }
}
