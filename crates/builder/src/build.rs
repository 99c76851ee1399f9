//! The build: the Dockerfile read from the context and parsed, the stages
//! the target needs planned, each stage built on its own thread once the
//! stages it needs are done, each step looked up in the cache by its key
//! and run only on a miss. Every step's result is an image in the store
//! (Docker's intermediate images, listed with `docker images -a`); the
//! target's is tagged at the very end, so a failed build moves no tag.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::{Condvar, Mutex};
use std::time::Instant;

use berth_dockerfile::{self as df, Dockerfile, Instruction};
use berth_image::config::{History, ImageConfig};
use berth_image::{Digest, Reference};
use berth_store::{Commit, Store};

use crate::cache::CacheIndex;
use crate::error::{BuildError, Result};
use crate::exec::Executor;
use crate::graph::{self, Source};
use crate::progress::{Event, Progress};
use crate::state::StageState;
use crate::step::{self, Action, Inputs, Prepared};
use crate::tree::Tree;

/// What a build is asked to do (the `POST /build` parameters).
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// The Dockerfile's path in the context (`Dockerfile` when empty).
    pub dockerfile: String,
    /// References to tag the result with.
    pub tags: Vec<String>,
    pub build_args: BTreeMap<String, String>,
    /// The stage to build (the last when `None`).
    pub target: Option<String>,
    pub no_cache: bool,
    /// Labels added to the result (`--label`).
    pub labels: BTreeMap<String, String>,
    /// `RUN`'s network: `default`, `none` or `host`.
    pub network: Option<String>,
    /// `--cache-from` images.
    pub cache_from: Vec<String>,
    /// Pull every base image again (`--pull`), even one in the store.
    pub pull: bool,
}

/// What a build made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Built {
    pub image: Digest,
    /// The references now pointing at it.
    pub tags: Vec<String>,
}

/// The builder: the store it writes to, the cache index, what runs `RUN`.
#[derive(Debug)]
pub struct Builder<'a> {
    pub store: &'a Store,
    pub cache: &'a CacheIndex,
    pub executor: &'a dyn Executor,
    /// Where `RUN --mount=type=cache` directories live.
    pub cache_mounts: PathBuf,
    /// Checksums of sources in images, kept across builds.
    pub image_checksums: std::sync::Arc<crate::stamp::ImageChecksums>,
}

impl std::fmt::Debug for dyn Executor + '_ {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Executor")
    }
}

/// One build in progress: what its stages share.
pub(crate) struct Run<'b> {
    pub builder: &'b Builder<'b>,
    pub df: Dockerfile,
    pub context: &'b Tree,
    pub opts: &'b BuildOptions,
    pub meta: BTreeMap<String, Option<String>>,
    pub used: Mutex<BTreeSet<String>>,
    pub progress: &'b dyn Progress,
    pub cancelled: &'b (dyn Fn() -> bool + Sync),
    /// Each stage's result once built (None: not yet).
    pub done: Mutex<Vec<Option<StageResult>>>,
    pub changed: Condvar,
    /// Step numbers: the first step of each stage (its `FROM`).
    pub first_step: Vec<usize>,
    pub total: usize,
    /// `--cache-from` images found in the store.
    pub cache_from: Vec<crate::cache_from::Source>,
}

/// How a stage ended.
#[derive(Debug, Clone)]
pub(crate) enum StageResult {
    Built(Box<StageState>),
    Failed,
}

/// A build whose Dockerfile is read, parsed and planned: what can be
/// refused before anything runs (and before the API starts streaming).
#[derive(Debug)]
pub struct Planned {
    df: Dockerfile,
    meta: BTreeMap<String, Option<String>>,
    plan: graph::Plan,
    tags: Vec<String>,
}

impl Builder<'_> {
    /// Reads, parses and plans the context's Dockerfile; checks the tags.
    pub fn prepare(&self, context: &Tree, opts: &BuildOptions) -> Result<Planned> {
        let tags = opts
            .tags
            .iter()
            .map(|t| {
                let r: Reference = t
                    .parse()
                    .map_err(|e| BuildError::Invalid(format!("invalid tag {t:?}: {e}")))?;
                Ok(r.with_default_tag().to_string())
            })
            .collect::<Result<Vec<_>>>()?;
        let df = read_dockerfile(context, &opts.dockerfile)?;
        let meta = meta_args(&df, &opts.build_args)?;
        let expand = |w: &str| {
            df::expand::expand(w, df.directives.escape, &|n| meta.get(n).cloned().flatten())
                .map_err(|e| BuildError::Invalid(format!("Dockerfile: {e}")))
        };
        let plan = graph::plan(&df, opts.target.as_deref(), &expand)?;
        Ok(Planned {
            df,
            meta,
            plan,
            tags,
        })
    }

    /// Builds the context's Dockerfile.
    pub fn build(
        &self,
        context: &Tree,
        opts: &BuildOptions,
        progress: &dyn Progress,
        cancelled: &(dyn Fn() -> bool + Sync),
    ) -> Result<Built> {
        let planned = self.prepare(context, opts)?;
        self.run(planned, context, opts, progress, cancelled)
    }

    /// Runs a planned build: every needed stage, then the tags.
    pub fn run(
        &self,
        planned: Planned,
        context: &Tree,
        opts: &BuildOptions,
        progress: &dyn Progress,
        cancelled: &(dyn Fn() -> bool + Sync),
    ) -> Result<Built> {
        let Planned {
            df,
            meta,
            plan,
            tags,
        } = planned;
        let mut first_step = vec![0; df.stages.len()];
        let mut total = 0;
        for i in &plan.needed {
            first_step[*i] = total + 1;
            total += 1 + df.stages[*i].instructions.len();
        }
        if !opts.labels.is_empty() {
            total += 1;
        }
        let stages = df.stages.len();
        let mut cache_from = Vec::new();
        for name in &opts.cache_from {
            match crate::cache_from::Source::load(self.store, name) {
                Some(s) => cache_from.push(s),
                None => progress.event(Event::Warning(format!(
                    "[Warning] --cache-from image {name} is not in the store: ignored"
                ))),
            }
        }
        let run = Run {
            cache_from,
            builder: self,
            df,
            context,
            opts,
            meta,
            used: Mutex::new(BTreeSet::new()),
            progress,
            cancelled,
            done: Mutex::new(vec![None; stages]),
            changed: Condvar::new(),
            first_step,
            total,
        };
        let result = run.all(&plan)?;
        run.warn_unused();
        let image = result.image.ok_or_else(|| {
            BuildError::Invalid("No image was generated. Is your Dockerfile empty?".to_owned())
        })?;
        for t in &tags {
            self.store.tag(&image.to_string(), t)?;
        }
        Ok(Built { image, tags })
    }
}

/// The Dockerfile of the context (Docker also tries `dockerfile`).
fn read_dockerfile(context: &Tree, name: &str) -> Result<Dockerfile> {
    let name = if name.is_empty() { "Dockerfile" } else { name };
    let bytes = match context.read(name) {
        Ok(b) => b,
        Err(_) if name == "Dockerfile" => context.read("dockerfile").map_err(|_| missing(name))?,
        Err(_) => return Err(missing(name)),
    };
    let text = String::from_utf8(bytes)
        .map_err(|_| BuildError::Invalid(format!("{name} is not UTF-8 text")))?;
    Ok(df::parse(&text)?)
}

fn missing(name: &str) -> BuildError {
    BuildError::Invalid(format!("Cannot locate specified Dockerfile: {name}"))
}

/// The meta `ARG`s' values: a `--build-arg` or the default, which may use
/// the ones before it.
fn meta_args(
    df: &Dockerfile,
    build_args: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, Option<String>>> {
    let mut meta: BTreeMap<String, Option<String>> = BTreeMap::new();
    for a in &df.meta_args {
        let value = match (build_args.get(&a.name), &a.default) {
            (Some(v), _) => Some(v.clone()),
            (None, Some(d)) => Some(
                df::expand::expand(d, df.directives.escape, &|n| meta.get(n).cloned().flatten())
                    .map_err(|e| BuildError::Invalid(format!("Dockerfile: ARG {}: {e}", a.name)))?,
            ),
            (None, None) => None,
        };
        meta.insert(a.name.clone(), value);
    }
    Ok(meta)
}

impl Run<'_> {
    /// Builds every needed stage, each on its own thread; returns the
    /// target's state.
    fn all(&self, plan: &graph::Plan) -> Result<StageState> {
        let errors: Mutex<Vec<BuildError>> = Mutex::new(Vec::new());
        std::thread::scope(|s| {
            for &i in &plan.needed {
                let errors = &errors;
                s.spawn(move || {
                    let result = self.stage(i, i == plan.target);
                    let outcome = match result {
                        Ok(state) => StageResult::Built(Box::new(state)),
                        Err(e) => {
                            lock(errors).push(e);
                            StageResult::Failed
                        }
                    };
                    lock(&self.done)[i] = Some(outcome);
                    self.changed.notify_all();
                });
            }
        });
        let mut errors = errors
            .into_inner()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // A stage that gave up because another failed reports less.
        errors.sort_by_key(|e| matches!(e, BuildError::Cancelled));
        if let Some(e) = errors.into_iter().next() {
            return Err(e);
        }
        match lock(&self.done)[plan.target].take() {
            Some(StageResult::Built(s)) => Ok(*s),
            _ => Err(BuildError::Cancelled),
        }
    }

    /// Waits for stage `i` (built by another thread).
    pub(crate) fn wait_stage(&self, i: usize) -> Result<StageState> {
        let mut done = lock(&self.done);
        loop {
            match &done[i] {
                Some(StageResult::Built(s)) => return Ok((**s).clone()),
                Some(StageResult::Failed) => return Err(BuildError::Cancelled),
                None => {}
            }
            if (self.cancelled)() {
                return Err(BuildError::Cancelled);
            }
            done = self
                .changed
                .wait_timeout(done, std::time::Duration::from_millis(200))
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .0;
        }
    }

    /// Whether another stage failed (this one should stop).
    pub(crate) fn failed_elsewhere(&self) -> bool {
        lock(&self.done)
            .iter()
            .any(|d| matches!(d, Some(StageResult::Failed)))
    }

    fn check_cancel(&self) -> Result<()> {
        if (self.cancelled)() || self.failed_elsewhere() {
            Err(BuildError::Cancelled)
        } else {
            Ok(())
        }
    }

    fn stage(&self, i: usize, is_target: bool) -> Result<StageState> {
        let stage = &self.df.stages[i];
        let number = self.first_step[i];
        self.progress.event(Event::Step {
            number,
            total: self.total,
            text: stage.original.clone(),
        });
        let mut state = self.base(i)?;
        if let Some(image) = &state.image {
            self.progress.event(Event::Done {
                number,
                image: image.clone(),
                took: std::time::Duration::ZERO,
            });
        }
        self.triggers(&mut state, i, number)?;
        for (k, instr) in stage.instructions.iter().enumerate() {
            self.check_cancel()?;
            self.step(instr, &mut state, i, number + 1 + k)?;
        }
        if is_target && !self.opts.labels.is_empty() {
            let line = label_line(&self.opts.labels);
            let instr = df::parse_instruction(&line, '\\')?;
            self.step(&instr, &mut state, i, self.total)?;
        }
        Ok(state)
    }

    /// The state at a stage's `FROM`.
    fn base(&self, i: usize) -> Result<StageState> {
        let stage = &self.df.stages[i];
        let name = df::expand::expand(&stage.base, self.df.directives.escape, &|n| {
            self.meta.get(n).cloned().flatten()
        })
        .map_err(|e| {
            BuildError::Invalid(format!(
                "Dockerfile:{}: FROM: {e}",
                stage.location.start_line
            ))
        })?;
        match graph::resolve_from(&self.df.stages[..i], &name, None)? {
            Source::Stage(s) => {
                let mut base = self.wait_stage(s)?;
                // A new stage starts with the image, not the other stage's scope.
                let image = base.image.take();
                let config = base.config;
                Ok(StageState::from_base(image, config))
            }
            Source::Scratch => Ok(StageState::from_base(None, scratch_config())),
            Source::Image(r) => {
                let missing = match self.builder.store.resolve(&r) {
                    Ok(_) => false,
                    Err(e) if e.is_not_found() => true,
                    Err(e) => return Err(e.into()),
                };
                if missing || self.opts.pull {
                    self.pull_base(&r)?;
                }
                let id = self.builder.store.resolve(&r)?;
                let config = self.builder.store.config(&id)?;
                Ok(StageState::from_base(Some(id), config))
            }
        }
    }

    /// Pulls a base image through the executor, its progress in the
    /// build's output.
    fn pull_base(&self, image: &str) -> Result<()> {
        struct Lines<'p>(&'p dyn Progress);
        impl std::io::Write for Lines<'_> {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.0.event(Event::Output {
                    number: 0,
                    data: buf.to_vec(),
                });
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let mut out = Lines(self.progress);
        self.builder
            .executor
            .pull(image, &mut out)
            .map_err(BuildError::Invalid)
    }

    /// Runs the base image's `ONBUILD` triggers, which the new image does
    /// not inherit.
    fn triggers(&self, state: &mut StageState, stage: usize, number: usize) -> Result<()> {
        let triggers = state.run_config().on_build.take().unwrap_or_default();
        if triggers.is_empty() {
            return Ok(());
        }
        let note = format!(
            "# Executing {} build trigger{}\n",
            triggers.len(),
            if triggers.len() == 1 { "" } else { "s" }
        );
        self.progress.event(Event::Output {
            number,
            data: note.into_bytes(),
        });
        for t in &triggers {
            let instr = df::parse_instruction(t, self.df.directives.escape)?;
            self.step(&instr, state, stage, number)?;
        }
        Ok(())
    }

    fn inputs(&self) -> Inputs<'_> {
        Inputs {
            build_args: &self.opts.build_args,
            meta: &self.meta,
            used: &self.used,
            escape: self.df.directives.escape,
        }
    }

    /// One step: prepared, looked up, run on a miss, recorded.
    fn step(
        &self,
        instr: &Instruction,
        state: &mut StageState,
        stage: usize,
        number: usize,
    ) -> Result<()> {
        self.progress.event(Event::Step {
            number,
            total: self.total,
            text: instr.original.clone(),
        });
        let started = Instant::now();
        let mut next = state.clone();
        let prepared = step::prepare(instr, &mut next, &self.inputs())?;
        let mut work = self.resolve(&prepared, &next, stage)?;
        next.key = state.key.clone();
        next.advance(&format!("{}\n{}", prepared.key_text, work.checksum));
        let created_by = work
            .created_by
            .take()
            .unwrap_or_else(|| prepared.created_by.clone());
        if !self.opts.no_cache {
            let hit = match self.cached(&next.key)? {
                Some(hit) => Some(hit),
                None => match self.restored(state, &next, &created_by)? {
                    Some(id) => Some((self.builder.store.config(&id)?, id)),
                    None => None,
                },
            };
            if let Some((config, hit)) = hit {
                next.config = config;
                next.image = Some(hit.clone());
                *state = next;
                self.progress.event(Event::Cached { number });
                self.progress.event(Event::Done {
                    number,
                    image: hit,
                    took: started.elapsed(),
                });
                return Ok(());
            }
        }
        let image = self.execute(&prepared, &mut work, state, &next, &created_by, number)?;
        let took = started.elapsed();
        self.builder
            .cache
            .put(&next.key, &image, &created_by, took)?;
        next.config = self.builder.store.config(&image)?;
        next.image = Some(image.clone());
        *state = next;
        self.progress.event(Event::Done {
            number,
            image,
            took,
        });
        Ok(())
    }

    /// A step restored from a `--cache-from` image (recorded in the cache).
    fn restored(
        &self,
        state: &StageState,
        next: &StageState,
        created_by: &str,
    ) -> Result<Option<Digest>> {
        let Some(parent) = &state.image else {
            return Ok(None);
        };
        let Some((entry, layer)) =
            crate::cache_from::offered(&self.cache_from, &state.config, created_by)
        else {
            return Ok(None);
        };
        let image = crate::cache_from::restore(
            self.builder.store,
            parent,
            next.config.clone(),
            entry,
            layer.as_ref(),
        )?;
        self.builder
            .cache
            .put(&next.key, &image, created_by, std::time::Duration::ZERO)?;
        Ok(Some(image))
    }

    /// A cache hit whose image still exists.
    /// (An entry goes with its image; a config that cannot be read is a
    /// miss, the step runs again.)
    fn cached(&self, key: &str) -> Result<Option<(ImageConfig, Digest)>> {
        match self.builder.cache.get(key)? {
            Some(id) => Ok(self.builder.store.config(&id).ok().map(|c| (c, id))),
            None => Ok(None),
        }
    }

    /// Performs a step that missed the cache; returns the new image.
    fn execute(
        &self,
        prepared: &Prepared,
        work: &mut crate::inputs::Resolved<'_>,
        state: &StageState,
        next: &StageState,
        created_by: &str,
        number: usize,
    ) -> Result<Digest> {
        let change = match &prepared.action {
            Action::Meta => None,
            Action::Workdir(path) => self.workdir(state, path)?,
            Action::Copy(c) => Some(self.copy(state, c, work)?),
            Action::Run(r) => self.run_step(state, next, r, work, number)?,
        };
        self.commit(state, next, created_by, change)
    }

    /// Records the step's image: the next config with its history entry.
    pub(crate) fn commit(
        &self,
        state: &StageState,
        next: &StageState,
        created_by: &str,
        change: Option<berth_store::Scratch>,
    ) -> Result<Digest> {
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
        let mut config: ImageConfig = next.config.clone();
        config.created = Some(now.clone());
        config.history.push(History {
            created: Some(now),
            created_by: Some(created_by.to_owned()),
            empty_layer: change.is_none(),
            ..History::default()
        });
        let committed = self.builder.store.commit(Commit {
            parent: state.image.clone(),
            config,
            change,
            keep_empty: true,
        })?;
        Ok(committed.id)
    }

    fn warn_unused(&self) {
        let used = lock(&self.used);
        let unused: Vec<&String> = self
            .opts
            .build_args
            .keys()
            .filter(|k| {
                !used.contains(*k)
                    && !self.meta.contains_key(*k)
                    && !crate::state::PREDEFINED_ARGS.contains(&k.as_str())
            })
            .collect();
        if !unused.is_empty() {
            let names: Vec<&str> = unused.iter().map(|s| s.as_str()).collect();
            self.progress.event(Event::Warning(format!(
                "[Warning] One or more build-args [{}] were not consumed",
                names.join(" ")
            )));
        }
    }

    /// Where `RUN --mount=type=cache` keeps `id`.
    pub(crate) fn cache_dir(&self, id: &str) -> PathBuf {
        let h = Digest::sha256(id.as_bytes());
        self.builder.cache_mounts.join(&h.hex()[..32])
    }
}

/// A `LABEL` instruction for `--label`s (Docker appends one to the target).
fn label_line(labels: &BTreeMap<String, String>) -> String {
    let pairs: Vec<String> = labels
        .iter()
        .map(|(k, v)| format!("{}={}", quote(k), quote(v)))
        .collect();
    format!("LABEL {}", pairs.join(" "))
}

fn quote(s: &str) -> String {
    let escaped = s
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('$', "\\$");
    format!("\"{escaped}\"")
}

/// The config of `FROM scratch`: this machine's platform, nothing else.
fn scratch_config() -> ImageConfig {
    ImageConfig {
        architecture: berth_image::archive::read::host_arch().to_owned(),
        os: "linux".to_owned(),
        ..ImageConfig::default()
    }
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
