//! Stages as a graph (multi-stage builds,
//! <https://docs.docker.com/build/building/multi-stage/>): a stage depends
//! on the stage it is `FROM`, and on those its `COPY --from` and `RUN
//! --mount=from=` name. Only the stages the target needs are built;
//! stages that do not depend on each other build at the same time.

use berth_dockerfile::{Dockerfile, Kind, Stage};

use crate::error::{BuildError, Result};

/// What a `FROM` or `--from` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// An earlier (or any, for `--from`) stage, by index.
    Stage(usize),
    /// An image reference.
    Image(String),
    /// `scratch`: nothing.
    Scratch,
}

/// The stages to build for a target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The target stage.
    pub target: usize,
    /// The stages to build, in file order.
    pub needed: Vec<usize>,
    /// Per stage (all of them): the stages it needs first.
    pub deps: Vec<Vec<usize>>,
}

/// What a `--from` value means in a file with `stages`, seen from stage
/// `at` (`None` for `FROM`, which only names earlier stages).
pub fn resolve_from(stages: &[Stage], name: &str, at: Option<usize>) -> Result<Source> {
    let lower = name.to_ascii_lowercase();
    let limit = at.unwrap_or(stages.len());
    if let Some(i) = stages
        .iter()
        .position(|s| s.name.as_deref() == Some(lower.as_str()))
    {
        if at.is_none() || i != limit {
            return Ok(Source::Stage(i));
        }
    }
    if let (Some(at), Ok(i)) = (at, name.parse::<usize>()) {
        if i >= at {
            return Err(BuildError::Invalid(format!(
                "invalid from flag value {name}: refers to current or future build stage"
            )));
        }
        return Ok(Source::Stage(i));
    }
    if lower == "scratch" {
        return Ok(Source::Scratch);
    }
    Ok(Source::Image(name.to_owned()))
}

/// The plan for `target` (a stage name; the last stage when `None`).
/// `expand` substitutes the meta `ARG`s in `FROM` and `--from` values.
pub fn plan(
    df: &Dockerfile,
    target: Option<&str>,
    expand: &dyn Fn(&str) -> Result<String>,
) -> Result<Plan> {
    if df.stages.is_empty() {
        return Err(BuildError::Invalid(
            "the Dockerfile has no FROM instruction".to_owned(),
        ));
    }
    let target = match target.filter(|t| !t.is_empty()) {
        None => df.stages.len() - 1,
        Some(t) => {
            let t = t.to_ascii_lowercase();
            df.stages
                .iter()
                .position(|s| s.name.as_deref() == Some(t.as_str()))
                .ok_or_else(|| {
                    BuildError::Invalid(format!("failed to reach build target {t} in Dockerfile"))
                })?
        }
    };
    let mut deps = Vec::with_capacity(df.stages.len());
    for (i, stage) in df.stages.iter().enumerate() {
        deps.push(stage_deps(df, i, stage, expand)?);
    }
    let mut state = vec![Mark::New; df.stages.len()];
    visit(target, &deps, &mut state, df)?;
    let needed = (0..df.stages.len())
        .filter(|i| state[*i] == Mark::Done)
        .collect();
    Ok(Plan {
        target,
        needed,
        deps,
    })
}

fn stage_deps(
    df: &Dockerfile,
    i: usize,
    stage: &Stage,
    expand: &dyn Fn(&str) -> Result<String>,
) -> Result<Vec<usize>> {
    let mut out = Vec::new();
    let base = expand(&stage.base)?;
    if let Source::Stage(s) = resolve_from(&df.stages[..i], &base, None)? {
        out.push(s);
    }
    for instr in &stage.instructions {
        let froms: Vec<&str> = match &instr.kind {
            Kind::Copy(c) | Kind::Add(c) => c.from.iter().map(String::as_str).collect(),
            Kind::Run(r) => r.mounts.iter().filter_map(|m| m.from.as_deref()).collect(),
            _ => Vec::new(),
        };
        for from in froms {
            if let Source::Stage(s) = resolve_from(&df.stages, &expand(from)?, Some(i))? {
                if !out.contains(&s) {
                    out.push(s);
                }
            }
        }
    }
    Ok(out)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mark {
    New,
    Visiting,
    Done,
}

fn visit(i: usize, deps: &[Vec<usize>], state: &mut [Mark], df: &Dockerfile) -> Result<()> {
    match state[i] {
        Mark::Done => return Ok(()),
        Mark::Visiting => {
            let name = df.stages[i].name.clone().unwrap_or_else(|| i.to_string());
            return Err(BuildError::Invalid(format!(
                "circular dependency detected on stage: {name}"
            )));
        }
        Mark::New => {}
    }
    state[i] = Mark::Visiting;
    for d in &deps[i] {
        visit(*d, deps, state, df)?;
    }
    state[i] = Mark::Done;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan_of(src: &str, target: Option<&str>) -> Result<Plan> {
        let df = berth_dockerfile::parse(src).unwrap();
        plan(&df, target, &|s| Ok(s.to_owned()))
    }

    #[test]
    fn only_the_stages_the_target_needs_are_built() {
        let src = "FROM busybox AS a\nFROM busybox AS unused\nFROM a AS b\nCOPY --from=0 /x /x\nFROM scratch AS c\nCOPY --from=b /x /x\n";
        let p = plan_of(src, None).unwrap();
        assert_eq!((p.target, p.needed.clone()), (3, vec![0, 2, 3]));
        assert_eq!(p.deps[2], vec![0]);
        let p = plan_of(src, Some("unused")).unwrap();
        assert_eq!(p.needed, vec![1]);
        let err = plan_of(src, Some("nope")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "failed to reach build target nope in Dockerfile"
        );
    }

    #[test]
    fn cycles_and_forward_indexes_are_refused() {
        let cyc =
            "FROM busybox AS a\nCOPY --from=b /x /x\nFROM busybox AS b\nCOPY --from=a /y /y\n";
        let err = plan_of(cyc, Some("a")).unwrap_err();
        assert!(err.to_string().contains("circular dependency"), "{err}");
        let fwd = "FROM busybox\nCOPY --from=1 /x /x\nFROM busybox\n";
        let err = plan_of(fwd, None).unwrap_err();
        assert!(
            err.to_string()
                .contains("refers to current or future build stage"),
            "{err}"
        );
    }

    #[test]
    fn names_that_are_no_stage_are_images() {
        let stages = berth_dockerfile::parse("FROM busybox AS a\n")
            .unwrap()
            .stages;
        assert_eq!(resolve_from(&stages, "A", None).unwrap(), Source::Stage(0));
        assert_eq!(
            resolve_from(&stages, "scratch", None).unwrap(),
            Source::Scratch
        );
        assert_eq!(
            resolve_from(&stages, "alpine:3", None).unwrap(),
            Source::Image("alpine:3".into())
        );
    }
}
