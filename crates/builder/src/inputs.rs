//! What a step reads, found before its cache lookup: the tree a `COPY`
//! reads (the context, another stage, an image, inline heredoc files), its
//! sources and their content checksum, and the sources of `RUN` mounts.
//! The checksum goes into the step's key, so a change to exactly the files
//! a step uses — and nothing else — invalidates it.

use berth_store::View;

use crate::build::Run;
use crate::error::{BuildError, Result};
use crate::exec::RunMount;
use crate::graph::{self, Source};
use crate::ignore::has_wildcards;
use crate::state::StageState;
use crate::step::{self, Action, From, MountPlan, Prepared};
use crate::tree::Tree;

/// A tree the step reads, borrowed (the context) or its own.
#[derive(Debug)]
pub(crate) enum Held<'a> {
    Context(&'a Tree),
    Own {
        tree: Box<Tree>,
        /// Kept mounted (or kept) while the tree is used.
        _view: Option<View>,
        _temp: Option<tempfile::TempDir>,
    },
}

impl Held<'_> {
    pub fn tree(&self) -> &Tree {
        match self {
            Held::Context(t) => t,
            Held::Own { tree, .. } => tree,
        }
    }
}

/// A step's inputs, resolved.
#[derive(Debug, Default)]
pub(crate) struct Resolved<'a> {
    /// The content part of the step's key.
    pub checksum: String,
    /// The history entry, when it depends on the content (`COPY`).
    pub created_by: Option<String>,
    /// A `COPY`'s tree, its resolved sources, whether they are several.
    pub copy: Option<(Held<'a>, Vec<String>, bool)>,
    /// A `RUN`'s mounts, ready, with the trees they need kept alive.
    pub mounts: Vec<RunMount>,
    pub held: Vec<Held<'a>>,
    /// Cache mounts this step has to itself (`sharing=locked|private`).
    pub locks: Vec<crate::cache::MountGuard<'a>>,
    /// Private cache mounts made for this step alone.
    pub temps: Vec<tempfile::TempDir>,
}

impl<'r> Run<'r> {
    /// Resolves what the prepared step reads.
    pub(crate) fn resolve(
        &self,
        p: &Prepared,
        next: &StageState,
        stage: usize,
    ) -> Result<Resolved<'r>> {
        let mut out = Resolved::default();
        match &p.action {
            Action::Copy(c) => {
                let held = self.tree_for(&c.from, stage)?;
                let mut sources = Vec::new();
                let mut many = c.sources.len() > 1;
                let names: Vec<String> = match &c.from {
                    // Downloaded files are named after their URLs.
                    From::Urls { urls, .. } => urls
                        .iter()
                        .map(|u| crate::fetch::file_name(u))
                        .collect::<Result<_>>()?,
                    _ => c.sources.clone(),
                };
                for s in &names {
                    many |= has_wildcards(s);
                    sources.extend(held.tree().resolve(s)?);
                }
                out.checksum = held.tree().checksum(&sources)?;
                let kind = match sources.as_slice() {
                    [one] if held.tree().is_dir(one)? => "dir",
                    [_] => "file",
                    _ => "multi",
                };
                out.created_by = Some(step::copy_history(next, &p.created_by, kind, &out.checksum));
                out.copy = Some((held, sources, many));
            }
            Action::Run(r) => {
                for m in &r.mounts {
                    self.mount(m, stage, &mut out)?;
                }
            }
            Action::Meta | Action::Workdir(_) => {}
        }
        Ok(out)
    }

    fn mount(&self, m: &MountPlan, stage: usize, out: &mut Resolved<'r>) -> Result<()> {
        match m {
            MountPlan::Bind {
                from,
                source,
                target,
            } => {
                let held = self.tree_for(from, stage)?;
                let rel = held.tree().resolve(source)?;
                let rel = rel.into_iter().next().unwrap_or_default();
                out.checksum
                    .push_str(&held.tree().checksum(std::slice::from_ref(&rel))?);
                let source = held.tree().host_path(&rel)?;
                out.mounts.push(RunMount::Bind {
                    source,
                    target: target.clone(),
                    readonly: true,
                });
                out.held.push(held);
            }
            MountPlan::Cache {
                id,
                target,
                mode,
                uid,
                gid,
                sharing,
            } => {
                let mut dir = self.cache_dir(id);
                if !dir.exists() {
                    make_cache_dir(&dir, *mode, *uid, *gid)?;
                }
                let locks = &self.builder.cache.mounts;
                match sharing {
                    berth_dockerfile::Sharing::Shared => {}
                    // One step at a time; the others wait.
                    berth_dockerfile::Sharing::Locked => out.locks.push(locks.lock(id)),
                    // A writer already there: this step gets a fresh one.
                    berth_dockerfile::Sharing::Private => match locks.try_lock(id) {
                        Some(g) => out.locks.push(g),
                        None => {
                            let temp = tempfile::tempdir()
                                .map_err(|e| BuildError::io("creating", "a temp dir", e))?;
                            let fresh = temp.path().join("cache");
                            make_cache_dir(&fresh, *mode, *uid, *gid)?;
                            dir = fresh;
                            out.temps.push(temp);
                        }
                    },
                }
                out.mounts.push(RunMount::Bind {
                    source: dir,
                    target: target.clone(),
                    readonly: false,
                });
            }
            MountPlan::Ready(m) => out.mounts.push(m.clone()),
        }
        Ok(())
    }

    /// The tree a `--from` (or the context, or inline files) names.
    fn tree_for(&self, from: &From, stage: usize) -> Result<Held<'r>> {
        let image = match from {
            From::Context => return Ok(Held::Context(self.context)),
            From::Inline(files) => return inline(files),
            From::Urls { urls, checksum } => return downloads(urls, checksum.as_deref()),
            From::Named(name) => match graph::resolve_from(&self.df.stages, name, Some(stage))? {
                Source::Stage(s) => self.wait_stage(s)?.image,
                Source::Scratch => None,
                Source::Image(r) => Some(self.builder.store.resolve(&r).map_err(|e| {
                    if e.is_not_found() {
                        BuildError::Invalid(format!(
                            "--from={r}: no such stage, and no such image in berth's store"
                        ))
                    } else {
                        e.into()
                    }
                })?),
            },
        };
        match image {
            Some(id) => {
                let view = self.builder.store.view(&id)?;
                let memo = self.builder.image_checksums.clone();
                let tree = Box::new(Tree::image_rootfs(view.root(), id.to_string(), memo)?);
                Ok(Held::Own {
                    tree,
                    _view: Some(view),
                    _temp: None,
                })
            }
            None => inline(&[]),
        }
    }
}

/// A tree of the files `urls` name, downloaded.
fn downloads<'a>(urls: &[String], checksum: Option<&str>) -> Result<Held<'a>> {
    let temp = tempfile::tempdir().map_err(|e| BuildError::io("creating", "a temp dir", e))?;
    for url in urls {
        crate::fetch::download(url, temp.path(), checksum)?;
    }
    let tree = Box::new(Tree::rootfs(temp.path())?);
    Ok(Held::Own {
        tree,
        _view: None,
        _temp: Some(temp),
    })
}

/// A tree of inline files (heredocs), 0644 each.
fn inline<'a>(files: &[(String, String)]) -> Result<Held<'a>> {
    let temp = tempfile::tempdir().map_err(|e| BuildError::io("creating", "a temp dir", e))?;
    for (name, content) in files {
        let p = temp.path().join(name);
        std::fs::write(&p, content).map_err(|e| BuildError::io("writing", &p, e))?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644))
            .map_err(|e| BuildError::io("setting the mode of", &p, e))?;
    }
    let tree = Box::new(Tree::rootfs(temp.path())?);
    Ok(Held::Own {
        tree,
        _view: None,
        _temp: Some(temp),
    })
}

fn make_cache_dir(dir: &std::path::Path, mode: u32, uid: u32, gid: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let parent = dir.parent().unwrap_or(dir);
    std::fs::create_dir_all(parent).map_err(|e| BuildError::io("creating", parent, e))?;
    // Made aside and renamed: two builds never see a half-made directory.
    let tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .tempdir_in(parent)
        .map_err(|e| BuildError::io("creating", parent, e))?;
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(mode))
        .map_err(|e| BuildError::io("setting the mode of", tmp.path(), e))?;
    std::os::unix::fs::chown(tmp.path(), Some(uid), Some(gid))
        .map_err(|e| BuildError::io("chowning", tmp.path(), e))?;
    let kept = tmp.keep();
    if std::fs::rename(&kept, dir).is_err() {
        // Another build made it first.
        let _ = std::fs::remove_dir(&kept);
    }
    Ok(())
}
