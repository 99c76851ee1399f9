//! The build service: `POST /build` (Docker's classic builder API) and
//! `POST /build/prune`. The context arrives as a tar stream and stays
//! one (a [`berth_builder::Archive`]: entries indexed and hashed in
//! memory, contents spooled), or — from berth's CLI on this machine — is
//! a directory read in place, its files' hashes remembered across builds
//! by their stamps ([`berth_builder::stamp`]); the builder runs over
//! it with [`executor::ContainerExecutor`] for `RUN`; progress goes back as
//! Docker's JSON message stream (`{"stream": …}`, `{"aux": {"ID": …}}`,
//! `{"errorDetail": …}`), which the docker CLI and the SDKs print.

mod executor;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use berth_api_types::build::{LocalContext, NOT_THE_CLIENTS};
use berth_builder::{
    Archive, BuildError, BuildOptions, Builder, CacheIndex, Event, FileHashes, Progress, Tree,
};
use berth_store::Store;
use serde_json::json;

pub use executor::ContainerExecutor;

use crate::containers::ContainerService;
use crate::error::{EngineError, ErrorKind, Result};
use crate::events::Events;

/// What `POST /build` asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BuildRequest {
    /// A context directory on this machine, read in place (berth's own
    /// CLI); the body is the context tar otherwise.
    pub local: Option<LocalContext>,
    pub tags: Vec<String>,
    pub dockerfile: String,
    pub build_args: BTreeMap<String, String>,
    pub target: Option<String>,
    pub no_cache: bool,
    pub labels: BTreeMap<String, String>,
    /// `q`: only the image ID.
    pub quiet: bool,
    pub network: Option<String>,
    pub cache_from: Vec<String>,
    /// Pull base images again (`pull=1`).
    pub pull: bool,
}

/// What `POST /build/prune` freed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BuildPrune {
    pub deleted: Vec<String>,
    pub space_reclaimed: u64,
}

/// The build operations the API serves.
pub trait BuildBackend: Send + Sync {
    /// Receives the context tar, reads and plans its Dockerfile: what is
    /// refused here is refused before the answer streams (a parse error is
    /// a 400, as dockerd answers).
    fn prepare(&self, context: &mut (dyn Read + Send), req: &BuildRequest) -> Result<BuildJob>;
    /// Runs a prepared build; writes Docker's JSON message stream.
    fn run(&self, job: BuildJob, out: &mut (dyn Write + Send)) -> Result<()>;
    /// Forgets the build cache and removes what only it kept.
    fn prune(&self) -> Result<BuildPrune>;
    /// Cache entries and their total size, for `system df`.
    fn usage(&self) -> Result<Vec<CacheUsage>>;
}

/// One build cache entry, as `system df -v` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheUsage {
    pub id: String,
    /// The entry of the step before it in its build ("" after a base
    /// image: the chain of entries is a built prefix, for the planner).
    pub parent: String,
    /// The step's image and the image it was built on.
    pub image: String,
    pub parent_image: Option<String>,
    pub description: String,
    /// How long the step took when it ran (the planner's cost).
    pub duration_ms: u64,
    pub size: u64,
    pub created: i64,
    pub last_used: i64,
    pub uses: u64,
    pub in_use: bool,
}

/// A build with its context received and its Dockerfile planned.
#[derive(Debug)]
pub struct BuildJob {
    tree: Tree,
    planned: berth_builder::Planned,
    opts: BuildOptions,
    quiet: bool,
}

/// The build service.
#[derive(Debug)]
pub struct BuildService {
    store: Arc<Store>,
    cache: CacheIndex,
    executor: ContainerExecutor,
    /// `<data-root>/builder`: contexts being built, cache mounts.
    root: PathBuf,
    events: Arc<Events>,
    /// Content hashes of in-place context files, across builds.
    file_hashes: Arc<FileHashes>,
    /// Checksums of `COPY --from` sources by image, across builds.
    image_checksums: Arc<berth_builder::stamp::ImageChecksums>,
}

impl BuildService {
    /// The service over the store's database and `data_root/builder`.
    pub fn new(
        store: Arc<Store>,
        containers: Arc<ContainerService>,
        data_root: &std::path::Path,
        events: Arc<Events>,
        registries: berth_registry::ClientOptions,
    ) -> Result<Self> {
        let root = data_root.join("builder");
        let contexts = root.join("contexts");
        // Contexts of builds a crash interrupted.
        let _ = std::fs::remove_dir_all(&contexts);
        std::fs::create_dir_all(&contexts)
            .map_err(|e| internal("creating the builder's directory", e))?;
        let cache = CacheIndex::open(&store.root().join("berth.db")).map_err(from_build)?;
        remove_orphan_steps(&containers)?;
        let puller = executor::Puller {
            store: store.clone(),
            events: events.clone(),
            registries,
        };
        Ok(Self {
            store,
            cache,
            executor: ContainerExecutor { containers, puller },
            root,
            events,
            file_hashes: Arc::default(),
            image_checksums: Arc::default(),
        })
    }

    /// A local client's context directory, read where it is. Any client
    /// of the socket may name any directory: the socket is root's, and its
    /// clients can bind-mount any directory into a container anyway.
    fn local_context(&self, local: &LocalContext) -> Result<Tree> {
        use std::os::unix::fs::MetadataExt as _;
        let path = std::path::Path::new(&local.path);
        let same = std::fs::metadata(path)
            .is_ok_and(|m| m.is_dir() && m.dev() == local.dev && m.ino() == local.ino);
        if !same {
            return Err(EngineError::invalid(format!(
                "{NOT_THE_CLIENTS}: {} is another directory here",
                local.path
            )));
        }
        let scratch = self.root.join("contexts");
        Tree::context_in_place(path, &scratch, self.file_hashes.clone()).map_err(from_build)
    }

    fn receive_context(&self, context: &mut (dyn Read + Send)) -> Result<Tree> {
        let stream = berth_store::layers::decompress(context)
            .map_err(|e| EngineError::invalid(format!("reading the build context: {e}")))?;
        let archive = Archive::receive(stream, &self.root.join("contexts")).map_err(from_build)?;
        Tree::context_archive(archive).map_err(from_build)
    }
}

/// The containers of steps whose build died with the last daemon: no
/// build will take their changes, so they go (a running one is killed).
fn remove_orphan_steps(containers: &ContainerService) -> Result<()> {
    for rec in containers.records()? {
        if is_build_step(&rec) {
            tracing::info!(
                id = rec.id,
                "removing the container of an interrupted build step"
            );
            containers.remove(&rec.id, true, true)?;
        }
    }
    Ok(())
}

/// Whether a container runs a build step (its upper becomes a layer).
pub(crate) fn is_build_step(rec: &crate::containers::model::Record) -> bool {
    rec.request
        .labels
        .as_ref()
        .is_some_and(|l| l.contains_key(executor::STEP_LABEL))
}

fn internal(context: &str, e: impl std::fmt::Display) -> EngineError {
    EngineError::new(ErrorKind::Internal, format!("{context}: {e}"))
}

fn from_build(e: BuildError) -> EngineError {
    let kind = if e.is_invalid() {
        ErrorKind::InvalidArgument
    } else {
        ErrorKind::Internal
    };
    EngineError::new(kind, e.to_string())
}

/// Renders build events as Docker's classic build stream.
struct Stream<'a> {
    out: Mutex<&'a mut (dyn Write + Send)>,
    quiet: bool,
    /// Set once the client stops reading: the build is cancelled.
    gone: std::sync::atomic::AtomicBool,
}

impl Stream<'_> {
    fn send(&self, v: &serde_json::Value) {
        let mut line = v.to_string();
        line.push('\n');
        let mut out = self
            .out
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if out
            .write_all(line.as_bytes())
            .and_then(|()| out.flush())
            .is_err()
        {
            self.gone.store(true, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// Notices a client that went away (an empty write fails).
    fn probe(&self) {
        let mut out = self
            .out
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if out.write(&[]).is_err() {
            self.gone.store(true, std::sync::atomic::Ordering::Relaxed);
        }
    }

    fn text(&self, s: &str) {
        if !self.quiet {
            self.send(&json!({ "stream": s }));
        }
    }
}

impl Progress for Stream<'_> {
    fn event(&self, e: Event) {
        match e {
            Event::Step {
                number,
                total,
                text,
            } => self.text(&format!("Step {number}/{total} : {text}\n")),
            Event::Cached { .. } => self.text(" ---> Using cache\n"),
            Event::Output { data, .. } => self.text(&String::from_utf8_lossy(&data)),
            Event::Done { image, .. } => self.text(&format!(" ---> {}\n", &image.hex()[..12])),
            Event::Warning(w) => self.text(&format!("{w}\n")),
        }
    }
}

impl BuildBackend for BuildService {
    fn prepare(&self, context: &mut (dyn Read + Send), req: &BuildRequest) -> Result<BuildJob> {
        let tree = match &req.local {
            Some(local) => self.local_context(local)?,
            None => self.receive_context(context)?,
        };
        let opts = BuildOptions {
            dockerfile: req.dockerfile.clone(),
            tags: req.tags.clone(),
            build_args: req.build_args.clone(),
            target: req.target.clone(),
            no_cache: req.no_cache,
            labels: req.labels.clone(),
            network: req.network.clone(),
            cache_from: req.cache_from.clone(),
            pull: req.pull,
        };
        let planned = self.builder().prepare(&tree, &opts).map_err(from_build)?;
        Ok(BuildJob {
            tree,
            planned,
            opts,
            quiet: req.quiet,
        })
    }

    fn run(&self, job: BuildJob, out: &mut (dyn Write + Send)) -> Result<()> {
        let BuildJob {
            tree,
            planned,
            opts,
            quiet,
        } = job;
        let result = self.run_job(planned, &tree, &opts, quiet, out);
        // A context written out for a bind mount may hold thousands of
        // files: not removed while the client waits.
        std::thread::spawn(move || drop(tree));
        result
    }

    fn prune(&self) -> Result<BuildPrune> {
        self.prune_cache()
    }

    fn usage(&self) -> Result<Vec<CacheUsage>> {
        self.cache_usage()
    }
}

impl BuildService {
    fn run_job(
        &self,
        planned: berth_builder::Planned,
        tree: &Tree,
        opts: &BuildOptions,
        quiet: bool,
        out: &mut (dyn Write + Send),
    ) -> Result<()> {
        let stream = Stream {
            out: Mutex::new(out),
            quiet,

            gone: std::sync::atomic::AtomicBool::new(false),
        };
        let cancelled = || stream.gone.load(std::sync::atomic::Ordering::Relaxed);
        let (done, finished) = std::sync::mpsc::channel::<()>();
        let probe = &stream;
        let result = std::thread::scope(|s| {
            // A client that hangs up while a step prints nothing is noticed
            // by empty writes: the build is cancelled, its step killed. The
            // end of the build wakes the probe at once (a sleep here held
            // every answer back to the next 250 ms mark).
            s.spawn(move || {
                while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                    finished.recv_timeout(std::time::Duration::from_millis(250))
                {
                    probe.probe();
                }
            });
            let r = self.builder().run(planned, tree, opts, &stream, &cancelled);
            drop(done);
            r
        });
        match result {
            Ok(built) => {
                let id = built.image.to_string();
                stream.send(&json!({ "aux": { "ID": id } }));
                stream.text(&format!(
                    "Successfully built {}\n",
                    &built.image.hex()[..12]
                ));
                for t in &built.tags {
                    let familiar = t
                        .parse::<berth_image::Reference>()
                        .map_or_else(|_| t.clone(), |r| r.familiar());
                    self.events.publish(
                        "image",
                        "tag",
                        &id,
                        [("name".to_owned(), familiar.clone())].into(),
                    );
                    stream.text(&format!("Successfully tagged {familiar}\n"));
                }
            }
            Err(e) => {
                // Docker's CLI exits with `code`: a RUN's own exit status.
                let code = match &e {
                    BuildError::RunFailed { code, .. } => *code,
                    _ => 1,
                };
                let message = e.to_string();
                stream.send(&json!({
                    "errorDetail": { "code": code, "message": message },
                    "error": message,
                }));
            }
        }
        Ok(())
    }

    fn prune_cache(&self) -> Result<BuildPrune> {
        let mut report = BuildPrune::default();
        let entries = self.cache.clear().map_err(from_build)?;
        report.deleted = entries.iter().map(|e| e.key.clone()).collect();
        // Untagged, unused step images no other image was made from go
        // (with their untagged parents); tagged ones, their parents and
        // those a container uses stay.
        let images: Vec<&berth_image::Digest> = entries.iter().map(|e| &e.image).collect();
        for id in images.into_iter().rev() {
            let Ok(summary) = self.store.summary_of(id) else {
                continue; // gone with a child already
            };
            if !summary.tags.is_empty() || summary.holders > 0 {
                continue;
            }
            let sizes = self.store.layer_sizes_of(id)?;
            if let Ok(removed) = self.store.remove(&id.to_string(), false) {
                for r in removed {
                    if let berth_store::remove::Removal::Deleted(d) = r {
                        report.space_reclaimed +=
                            sizes.iter().find(|(c, _)| *c == d).map_or(0, |(_, s)| *s);
                        report.deleted.push(d.to_string());
                    }
                }
            }
        }
        let mounts = self.root.join("cache");
        report.space_reclaimed += dir_size(&mounts);
        if let Ok(entries) = std::fs::read_dir(&mounts) {
            for e in entries.flatten() {
                report
                    .deleted
                    .push(format!("cache-mount:{}", e.file_name().to_string_lossy()));
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
        Ok(report)
    }

    fn cache_usage(&self) -> Result<Vec<CacheUsage>> {
        let entries = self.cache.entries().map_err(from_build)?;
        let ids: std::collections::HashMap<String, String> = entries
            .iter()
            .map(|e| (e.image.to_string(), cache_id(&e.key)))
            .collect();
        let mut out = Vec::new();
        for e in entries {
            let Ok(summary) = self.store.summary_of(&e.image) else {
                continue;
            };
            let parent_image = summary.parent.map(|p| p.to_string());
            out.push(CacheUsage {
                id: cache_id(&e.key),
                parent: parent_image
                    .as_ref()
                    .and_then(|p| ids.get(p).cloned())
                    .unwrap_or_default(),
                image: e.image.to_string(),
                parent_image,
                description: e.description,
                duration_ms: u64::try_from(e.duration.as_millis()).unwrap_or(u64::MAX),
                size: self.store.top_layer_size(&e.image).unwrap_or(0),
                created: e.created,
                last_used: e.last_used,
                uses: e.uses,
                in_use: summary.holders > 0,
            });
        }
        Ok(out)
    }
}

/// A cache entry's ID as `system df -v` shows it.
fn cache_id(key: &str) -> String {
    key[..25.min(key.len())].to_owned()
}

impl BuildService {
    fn builder(&self) -> Builder<'_> {
        Builder {
            store: &self.store,
            cache: &self.cache,
            executor: &self.executor,
            cache_mounts: self.root.join("cache"),
            image_checksums: self.image_checksums.clone(),
        }
    }
}

/// Bytes of the files under `dir` (not following links).
fn dir_size(dir: &std::path::Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_size(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}
