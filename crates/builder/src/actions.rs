//! What steps that missed the cache do to the filesystem: `COPY`/`ADD`
//! and `WORKDIR` write into a scratch layer over the stage's image; `RUN`
//! runs through the [`crate::exec::Executor`] and its container's upper
//! dir becomes the layer.

use std::io::Write;
use std::path::Path;

use berth_store::fsroot::{RelPath, Root};
use berth_store::Scratch;

use crate::build::Run;
use crate::copy::{self, CopyOptions};
use crate::error::{BuildError, Result};
use crate::exec::RunStep;
use crate::inputs::Resolved;
use crate::progress::{Event, Progress};
use crate::state::StageState;
use crate::step::{CopyPlan, RunPlan};

/// A step's output, as events.
struct Output<'a> {
    progress: &'a dyn Progress,
    number: usize,
}

impl Write for Output<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.progress.event(Event::Output {
            number: self.number,
            data: buf.to_vec(),
        });
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Run<'_> {
    /// `COPY`/`ADD` into a scratch layer over the stage's image.
    pub(crate) fn copy(
        &self,
        state: &StageState,
        c: &CopyPlan,
        work: &mut Resolved<'_>,
    ) -> Result<Scratch> {
        let (held, sources, many) = work
            .copy
            .as_ref()
            .ok_or_else(|| BuildError::Invalid("COPY without resolved sources".to_owned()))?;
        let base = if c.link { None } else { state.image.as_ref() };
        let scratch = self.builder.store.scratch(base)?;
        let owner = match (&c.chown, c.link, &state.image) {
            (None, ..) => None,
            // Names resolve in the stage's files, under the layer or not.
            (Some(spec), true, Some(image)) => {
                let view = self.builder.store.view(image)?;
                let root = Root::open(view.root())
                    .map_err(|e| BuildError::io("opening", view.root(), e))?;
                Some(crate::user::chown(spec, &root)?)
            }
            (Some(spec), ..) => {
                let root = Root::open(scratch.root())
                    .map_err(|e| BuildError::io("opening", scratch.root(), e))?;
                Some(crate::user::chown(spec, &root)?)
            }
        };
        let opts = CopyOptions { owner, ..c.opts };
        copy::copy(held.tree(), sources, *many, &c.dest, scratch.root(), opts)?;
        Ok(scratch)
    }

    /// `WORKDIR`: the directory, made if missing (then a layer; else none).
    pub(crate) fn workdir(&self, state: &StageState, path: &str) -> Result<Option<Scratch>> {
        let scratch = self.builder.store.scratch(state.image.as_ref())?;
        let root =
            Root::open(scratch.root()).map_err(|e| BuildError::io("opening", scratch.root(), e))?;
        let inner = RelPath::new(&Path::new(path).join("x"))
            .ok_or_else(|| BuildError::Invalid(format!("WORKDIR {path}: not a usable path")))?;
        root.parent_dir(&inner)
            .map_err(|e| BuildError::io("creating the working directory", path, e))?;
        let empty = is_empty(&scratch.upper())?;
        Ok((!empty).then_some(scratch))
    }

    /// `RUN`: a container over the stage's image; its changes, the layer.
    pub(crate) fn run_step(
        &self,
        state: &StageState,
        next: &StageState,
        r: &RunPlan,
        work: &mut Resolved<'_>,
        number: usize,
    ) -> Result<Option<Scratch>> {
        let image = state.image.clone().ok_or_else(|| {
            BuildError::Invalid(
                "RUN needs files to run: the stage is FROM scratch with nothing in it yet"
                    .to_owned(),
            )
        })?;
        let c = next.container();
        let network = r
            .network
            .clone()
            .or_else(|| self.opts.network.clone())
            .unwrap_or_else(|| "default".to_owned());
        let volumes: Vec<String> = c
            .volumes
            .as_ref()
            .map(|v| v.keys().cloned().collect())
            .unwrap_or_default();
        let mkdirs = self.missing_dirs(&image, &volumes)?;
        let step = RunStep {
            mkdirs,
            image,
            args: r.args.clone(),
            env: r.env.clone(),
            user: c.user,
            workdir: next.workdir(),
            mounts: std::mem::take(&mut work.mounts),
            network,
        };
        let mut out = Output {
            progress: self.progress,
            number,
        };
        let cancelled = || (self.cancelled)() || self.failed_elsewhere();
        let finished = self
            .builder
            .executor
            .run(&step, &mut out, &cancelled)
            .map_err(BuildError::Executor)?;
        discard_mount_residue(&finished.upper, &volumes, &step.mounts)?;
        if cancelled() {
            return Err(BuildError::Cancelled);
        }
        if finished.exit_code != 0 {
            return Err(BuildError::RunFailed {
                command: step.args.join(" "),
                code: finished.exit_code,
            });
        }
        // A step that changed nothing adds no layer (the classic builder's
        // `empty_layer`).
        if is_empty(&finished.upper)? {
            return Ok(None);
        }
        let scratch = self.builder.store.adopt(&finished.upper)?;
        drop(finished);
        Ok(Some(scratch))
    }
}

impl Run<'_> {
    /// The paths of `dirs` the image lacks (a view is mounted only when
    /// there are any to check).
    fn missing_dirs(&self, image: &berth_image::Digest, dirs: &[String]) -> Result<Vec<String>> {
        if dirs.is_empty() {
            return Ok(Vec::new());
        }
        let view = self.builder.store.view(image)?;
        let root =
            Root::open(view.root()).map_err(|e| BuildError::io("opening", view.root(), e))?;
        Ok(dirs
            .iter()
            .filter(|d| root.dir(d.trim_start_matches('/')).is_err())
            .cloned()
            .collect())
    }
}

/// What a step's mounts leave in its upper dir that Docker's image does
/// not have: files written under a `VOLUME` (discarded, the directory
/// stays) and the empty files made as mount points for file mounts.
fn discard_mount_residue(
    upper: &Path,
    volumes: &[String],
    mounts: &[crate::exec::RunMount],
) -> Result<()> {
    let root = Root::open(upper).map_err(|e| BuildError::io("opening", upper, e))?;
    for v in volumes {
        let rel = v.trim_start_matches('/');
        let Ok(dir) = root.dir_readable(rel) else {
            continue;
        };
        let names: Vec<String> = rustix::fs::Dir::read_from(&dir)
            .map_err(|e| BuildError::io("listing", upper.join(rel), e.into()))?
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n != "." && n != "..")
            .collect();
        for n in names {
            crate::copy::clear(&dir, &n)
                .map_err(|e| BuildError::io("discarding", upper.join(rel).join(&n), e))?;
        }
    }
    for m in mounts {
        let crate::exec::RunMount::Bind { source, target, .. } = m else {
            continue;
        };
        if !source.is_file() {
            continue;
        }
        let rel = target.trim_start_matches('/');
        let (parent, name) = rel.rsplit_once('/').unwrap_or(("", rel));
        let Ok(dir) = root.dir_readable(parent) else {
            continue;
        };
        let empty_file = rustix::fs::statat(&dir, name, rustix::fs::AtFlags::SYMLINK_NOFOLLOW)
            .is_ok_and(|st| {
                rustix::fs::FileType::from_raw_mode(st.st_mode).is_file() && st.st_size == 0
            });
        if empty_file {
            rustix::fs::unlinkat(&dir, name, rustix::fs::AtFlags::empty())
                .map_err(|e| BuildError::io("removing a mount point", upper.join(rel), e.into()))?;
        }
    }
    Ok(())
}

fn is_empty(dir: &Path) -> Result<bool> {
    Ok(std::fs::read_dir(dir)
        .map_err(|e| BuildError::io("reading", dir, e))?
        .next()
        .is_none())
}
