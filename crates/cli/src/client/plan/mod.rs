//! `berth plan`: the build planner on a family of images, from a spec
//! (JSON or YAML: berth's or the build-plan benchmark's) or from the
//! family's Dockerfiles (`-f`, repeated). It prints the plan's cost beside
//! the cost with no sharing and of the orders as written, its lower bound
//! and whether it is proven; `--json` for tools. It can write the plan as
//! Dockerfiles (`--dockerfiles DIR`), build it (`--build`), and start
//! images from what the build cache already holds (`--cached`). The
//! daemon is needed only for the last two, and asked (when it answers)
//! for the recorded durations of steps given no cost.

mod cache;
mod output;
mod write;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use berth_plan::dockerfiles::{Family, Options, Source};
use berth_plan::prefix::Started;
use berth_plan::{Limits, Problem, Solution};
use clap::Args;

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// The spec (JSON or YAML: berth's or the build-plan benchmark's); -
    /// for stdin
    pub spec: Option<String>,
    /// A Dockerfile of the family (repeat the flag for each; the images
    /// are named by their directories)
    #[arg(short = 'f', long = "file", value_name = "DOCKERFILE")]
    pub files: Vec<String>,
    /// Reorder every run of consecutive RUNs, not only those marked
    /// "# berth: reorderable"
    #[arg(long)]
    pub assume_reorderable: bool,
    /// Print the plan as JSON
    #[arg(long)]
    pub json: bool,
    /// Seconds the exact search may take before the best plan stands
    #[arg(long, default_value_t = 10.0)]
    pub time_limit: f64,
    /// Write one Dockerfile per shared node and per image into DIR (and a
    /// build.sh that builds them in order)
    #[arg(long, value_name = "DIR")]
    pub dockerfiles: Option<PathBuf>,
    /// Build every image of the plan (each shared prefix once) and tag it
    /// with its name
    #[arg(long)]
    pub build: bool,
    /// Start each image from the longest prefix the build cache holds
    #[arg(long)]
    pub cached: bool,
}

/// What the plan is of: a spec, or Dockerfiles (kept to write back).
pub(super) struct Input {
    pub problem: Problem,
    pub family: Option<(Family, Vec<Source>)>,
}

/// `berth plan`.
pub async fn plan(socket: &Path, a: &PlanArgs) -> Result<i32> {
    if !(a.time_limit.is_finite() && a.time_limit >= 0.0) {
        bail!(
            "--time-limit must be a number of seconds, not {}",
            a.time_limit
        );
    }
    // The cache is asked only when something needs it; without a daemon,
    // unknown costs are 1 (unless the cache itself is asked for). A
    // `--build` connects later, starting the daemon if it may.
    let unknown = std::cell::Cell::new(false);
    let mut input = read_input(a, &|_| {
        unknown.set(true);
        None
    })?;
    let cache = if a.cached || unknown.get() {
        match cache::Cache::fetch(socket).await {
            Ok(c) => Some(c),
            Err(e) if a.cached => return Err(e),
            Err(_) => None,
        }
    } else {
        None
    };
    if let Some(c) = &cache {
        input = read_input(a, &|command| c.cost(command))?;
    }
    let started = match (&cache, a.cached) {
        (Some(c), true) => {
            let refs = match &input.family {
                Some((family, _)) => family.bases.clone(),
                None => input
                    .problem
                    .images
                    .iter()
                    .map(|i| i.base.clone())
                    .collect(),
            };
            Some(c.starts(socket, &input.problem, &refs).await?)
        }
        _ => None,
    };
    let limits = Limits {
        // A day at most: far enough, and no overflowing deadline.
        time: Duration::from_secs_f64(a.time_limit.min(86_400.0)),
        ..Limits::default()
    };
    let solution = solve(&input.problem, started.as_ref(), &limits);
    let report = output::Report {
        problem: &input.problem,
        solution: &solution,
        written: input
            .family
            .as_ref()
            .map(|(family, _)| family.write(&solution.plan)),
        built: started.as_ref().map(|s| s.starts.clone()),
    };
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report.json())?);
    } else {
        report.print();
    }
    if let Some(dir) = &a.dockerfiles {
        write::segments(dir, &input, &solution.plan)?;
    }
    if a.build {
        let d = super::connect::connect(socket).await?;
        return write::build_all(&d, &input, &solution.plan).await;
    }
    Ok(0)
}

/// The plan: of the problem as it is, or of the images started from the
/// cache's prefixes (then told as a plan of the whole images).
fn solve(problem: &Problem, started: Option<&Started>, limits: &Limits) -> Solution {
    let Some(started) = started else {
        return berth_plan::solve(problem, limits);
    };
    let mut s = berth_plan::solve(&started.problem, limits);
    s.plan = started.expand(&s.plan);
    s
}

/// Reads the spec or the Dockerfiles; `cost_of` gives costs the input
/// does not.
fn read_input(a: &PlanArgs, cost_of: &dyn Fn(&str) -> Option<f64>) -> Result<Input> {
    match (&a.spec, a.files.is_empty()) {
        (Some(_), false) => bail!("give a spec or Dockerfiles (-f), not both"),
        (None, true) => bail!("nothing to plan: give a spec, or Dockerfiles with -f"),
        (Some(spec), true) => {
            let text = read_spec(spec)?;
            let problem = berth_plan::spec::parse(&text, cost_of).with_context(|| spec.clone())?;
            Ok(Input {
                problem,
                family: None,
            })
        }
        (None, false) => {
            let sources = a
                .files
                .iter()
                .map(|f| source(f))
                .collect::<Result<Vec<_>>>()?;
            let opts = Options {
                assume_reorderable: a.assume_reorderable,
            };
            let (problem, family) = berth_plan::dockerfiles::read(&sources, opts, cost_of)?;
            Ok(Input {
                problem,
                family: Some((family, sources)),
            })
        }
    }
}

fn read_spec(spec: &str) -> Result<String> {
    if spec == "-" {
        return std::io::read_to_string(std::io::stdin()).context("reading the spec from stdin");
    }
    std::fs::read_to_string(spec).with_context(|| format!("reading {spec}"))
}

/// A Dockerfile of the family: named by its directory (`api/Dockerfile`
/// is `api`), or by its file name when that is not `Dockerfile`; its
/// directory is its context.
fn source(file: &str) -> Result<Source> {
    let path = Path::new(file);
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {file}"))?;
    let abs = std::path::absolute(path).with_context(|| format!("resolving {file}"))?;
    let dir = abs.parent().unwrap_or(Path::new("/"));
    let file_name = path.file_name().map(|n| n.to_string_lossy().into_owned());
    let name = match file_name.as_deref() {
        Some("Dockerfile") | None => dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| file.to_owned()),
        Some(other) => other.to_owned(),
    };
    Ok(Source {
        name,
        context: dir.to_string_lossy().into_owned(),
        text,
    })
}
