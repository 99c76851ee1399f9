//! A plan made real: as Dockerfiles, one per shared node and per image
//! (`--dockerfiles DIR`, with a `build.sh` that builds them in order), or
//! built (`--build`): each image's whole Dockerfile in the plan's order,
//! one after the other, so the build cache builds every shared prefix
//! once and each image is tagged with its name.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use berth_plan::layout::{segments as layout, Segment};
use berth_plan::Plan;
use bollard::Docker;

use super::Input;
use crate::client::build::{build, BuildArgs, ProgressMode};

/// The tag of a segment no image ends at.
fn node_tag(k: usize) -> String {
    format!("berth-plan:node-{k:02}")
}

/// Writes the plan's segments as `DIR/NN.Dockerfile` and `DIR/build.sh`.
pub fn segments(dir: &Path, input: &Input, plan: &Plan) -> Result<()> {
    let problem = &input.problem;
    let segs = layout(problem, plan);
    let first_image = first_images(&segs, problem.images.len());
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut script = String::from(
        "#!/bin/sh\n# Builds the planned family in order (written by berth plan).\n\
         set -e\ncd \"$(dirname \"$0\")\"\nDOCKER=${DOCKER:-docker}\n",
    );
    for (k, seg) in segs.iter().enumerate() {
        let text = segment_text(input, &segs, k, first_image[k]);
        let file = format!("{k:02}.Dockerfile");
        std::fs::write(dir.join(&file), text)
            .with_context(|| format!("writing {}", dir.join(&file).display()))?;
        let tags: Vec<String> = match seg.images.is_empty() {
            true => vec![node_tag(k)],
            false => seg
                .images
                .iter()
                .map(|&i| problem.images[i].name.clone())
                .collect(),
        };
        let context = match &input.family {
            Some((_, sources)) => shell_quote(&sources[first_image[k]].context),
            None => ".".to_owned(),
        };
        let _ = write!(script, "\"$DOCKER\" build");
        for t in &tags {
            let _ = write!(script, " -t {}", shell_quote(t));
        }
        let _ = writeln!(script, " -f {file} {context}");
    }
    let path = dir.join("build.sh");
    std::fs::write(&path, script).with_context(|| format!("writing {}", path.display()))?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
        .with_context(|| format!("making {} executable", path.display()))?;
    Ok(())
}

/// For each segment, an image under it (its context and head stand for
/// the segment's): every segment has one, the tree's leaves end images.
fn first_images(segs: &[Segment], images: usize) -> Vec<usize> {
    let mut first = vec![0; segs.len()];
    for i in (0..images).rev() {
        let mut at = segs.iter().position(|s| s.images.contains(&i));
        while let Some(k) = at {
            first[k] = i;
            at = segs[k].parent;
        }
    }
    first
}

/// A segment's Dockerfile: `FROM` its parent segment (or the base), then
/// its steps.
fn segment_text(input: &Input, segs: &[Segment], k: usize, image: usize) -> String {
    let seg = &segs[k];
    let problem = &input.problem;
    let mut text = String::new();
    match (&input.family, seg.parent) {
        (Some((family, _)), None) => text.push_str(&family.head(image)),
        (Some((family, _)), Some(p)) => {
            text.push_str(family.directives(image));
            let _ = writeln!(text, "FROM {}", segment_tag(input, segs, p));
            // ARG does not outlive a FROM: declared again where used.
            for s in ancestors(segs, p) {
                let t = &family.texts[s];
                if t.get(..4).is_some_and(|w| w.eq_ignore_ascii_case("ARG ")) {
                    let _ = writeln!(text, "{t}");
                }
            }
        }
        (None, None) => {
            let base = if seg.base.is_empty() {
                "scratch"
            } else {
                &seg.base
            };
            let _ = writeln!(text, "FROM {base}");
        }
        (None, Some(p)) => {
            let _ = writeln!(text, "FROM {}", segment_tag(input, segs, p));
        }
    }
    for &s in &seg.steps {
        match &input.family {
            Some((family, _)) => {
                let _ = writeln!(text, "{}", family.texts[s]);
            }
            None => {
                let _ = writeln!(text, "RUN {}", problem.steps[s].command);
            }
        }
    }
    text
}

/// The tag a segment's image gets: its first image's name, or a node's.
fn segment_tag(input: &Input, segs: &[Segment], k: usize) -> String {
    match segs[k].images.first() {
        Some(&i) => input.problem.images[i].name.clone(),
        None => node_tag(k),
    }
}

/// The steps of segment `k` and of every segment above it.
fn ancestors(segs: &[Segment], mut k: usize) -> Vec<usize> {
    let mut chain = vec![k];
    while let Some(p) = segs[k].parent {
        chain.push(p);
        k = p;
    }
    chain
        .iter()
        .rev()
        .flat_map(|&s| segs[s].steps.iter().copied())
        .collect()
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// Builds every image's Dockerfile in the plan's order, one at a time
/// (images sharing a prefix one after another), tagged with its name.
/// The first failed build ends it, with its exit code.
pub async fn build_all(d: &Docker, input: &Input, plan: &Plan) -> Result<i32> {
    let problem = &input.problem;
    let tmp = tempfile::tempdir().context("creating a directory for the Dockerfiles")?;
    let empty = tmp.path().join("context");
    std::fs::create_dir(&empty).context("creating an empty build context")?;
    let written = input.family.as_ref().map(|(f, _)| f.write(plan));
    let mut order: Vec<usize> = (0..problem.images.len()).collect();
    order.sort_by(|&a, &b| plan.orders[a].cmp(&plan.orders[b]));
    for i in order {
        let image = &problem.images[i];
        let (text, context) = match (&written, &input.family) {
            (Some(w), Some((_, sources))) => (w[i].clone(), PathBuf::from(&sources[i].context)),
            _ => (spec_dockerfile(input, plan, i), empty.clone()),
        };
        let file = tmp.path().join(format!("{i}.Dockerfile"));
        std::fs::write(&file, text).with_context(|| format!("writing {}", file.display()))?;
        println!("Building {}", image.name);
        let args = BuildArgs {
            tag: vec![image.name.clone()],
            file: Some(file.to_string_lossy().into_owned()),
            build_arg: Vec::new(),
            target: None,
            no_cache: false,
            pull: false,
            label: Vec::new(),
            quiet: false,
            progress: ProgressMode::Plain,
            network: None,
            cache_from: Vec::new(),
            context: context.to_string_lossy().into_owned(),
        };
        let code = build(d, &args).await?;
        if code != 0 {
            return Ok(code);
        }
    }
    Ok(0)
}

/// An image of a spec as one Dockerfile: its base, then its steps in the
/// plan's order.
fn spec_dockerfile(input: &Input, plan: &Plan, i: usize) -> String {
    let problem = &input.problem;
    let base = match problem.images[i].base.as_str() {
        "" => "scratch",
        b => b,
    };
    let mut text = format!("FROM {base}\n");
    for &s in &plan.orders[i] {
        let _ = writeln!(text, "RUN {}", problem.steps[s].command);
    }
    text
}
