//! Planning from what the build cache holds (`berth plan --cached`): an
//! image starts from the longest prefix already built under its base, and
//! the rest is planned as usual, those steps costing nothing.
//!
//! The chosen prefix becomes one step of cost 0 (a *token*) that every
//! other step of the image must follow; images starting from the same
//! built prefix share the token. A precedence binds only where both steps
//! are in an image, so the token constrains exactly its own images.

use crate::error::PlanError;
use crate::plan::Plan;
use crate::problem::{ImageSpec, Problem, StepSpec};

/// A prefix the cache holds: its steps in build order, under a base.
#[derive(Debug, Clone, PartialEq)]
pub struct Built {
    /// The cache entry of its last step.
    pub id: String,
    pub base: String,
    pub steps: Vec<usize>,
}

/// Whether `image` can start with `built`: same base, every step one it
/// needs, in an order the precedence allows.
pub fn fits(problem: &Problem, image: usize, built: &Built) -> bool {
    let im = &problem.images[image];
    if im.base != built.base || built.steps.is_empty() {
        return false;
    }
    let needs = problem.needs().swap_remove(image);
    let mut done = crate::steps::StepSet::new(problem.steps.len());
    for &s in &built.steps {
        if !problem.can_take(&needs, &done, s) {
            return false;
        }
        done.insert(s);
    }
    true
}

/// The built prefix that saves `image` the most (then the longest).
pub fn longest<'a>(problem: &Problem, image: usize, built: &'a [Built]) -> Option<&'a Built> {
    let saved = |b: &Built| -> f64 { b.steps.iter().map(|&s| problem.steps[s].cost).sum() };
    built
        .iter()
        .filter(|b| fits(problem, image, b))
        .max_by(|a, b| {
            saved(a)
                .total_cmp(&saved(b))
                .then(a.steps.len().cmp(&b.steps.len()))
                .then(b.id.cmp(&a.id))
        })
}

/// The problem with each image's chosen prefix as a token (its steps
/// appended after the original ones, so original indexes stand).
#[derive(Debug, Clone)]
pub struct Started {
    pub problem: Problem,
    /// Per token (by index past the original steps): its prefix.
    tokens: Vec<Vec<usize>>,
    originals: usize,
    /// Per image: how many of its steps the cache holds.
    pub starts: Vec<usize>,
}

/// Rewrites `problem` so image `i` starts from `chosen[i]`.
pub fn start_from(problem: &Problem, chosen: &[Option<&Built>]) -> Result<Started, PlanError> {
    let originals = problem.steps.len();
    let mut steps: Vec<StepSpec> = problem
        .steps
        .iter()
        .enumerate()
        .map(|(i, s)| StepSpec {
            name: s.name.clone(),
            command: Some(s.command.clone()),
            cost: Some(s.cost),
            size: s.size,
            after: problem.after[i]
                .iter()
                .map(|&a| problem.steps[a].name.clone())
                .collect(),
        })
        .collect();
    let mut tokens: Vec<(String, Vec<usize>)> = Vec::new();
    let mut images = Vec::new();
    let mut starts = Vec::new();
    for (im, built) in problem.images.iter().zip(chosen) {
        starts.push(built.map_or(0, |b| b.steps.len()));
        let mut names: Vec<String> = Vec::new();
        let mut rest = im.steps.clone();
        if let Some(b) = built {
            let token = match tokens.iter().position(|(id, _)| *id == b.id) {
                Some(t) => t,
                None => {
                    tokens.push((b.id.clone(), b.steps.clone()));
                    steps.push(StepSpec {
                        name: format!("(built) {}", b.id),
                        cost: Some(0.0),
                        ..StepSpec::default()
                    });
                    tokens.len() - 1
                }
            };
            let name = steps[originals + token].name.clone();
            rest.retain(|s| !b.steps.contains(s));
            for &s in &rest {
                if !steps[s].after.contains(&name) {
                    steps[s].after.push(name.clone());
                }
            }
            names.push(name);
        }
        names.extend(rest.iter().map(|&s| problem.steps[s].name.clone()));
        images.push(ImageSpec {
            name: im.name.clone(),
            base: im.base.clone(),
            steps: names,
        });
    }
    Ok(Started {
        problem: Problem::allowing_empty_images(steps, images)?,
        tokens: tokens.into_iter().map(|(_, s)| s).collect(),
        originals,
        starts,
    })
}

impl Started {
    /// A plan of the rewritten problem as a plan of the original: each
    /// token becomes its prefix's steps.
    pub fn expand(&self, plan: &Plan) -> Plan {
        Plan {
            orders: plan
                .orders
                .iter()
                .map(|order| {
                    order
                        .iter()
                        .flat_map(|&s| match s.checked_sub(self.originals) {
                            Some(t) => self.tokens[t].clone(),
                            None => vec![s],
                        })
                        .collect()
                })
                .collect(),
        }
    }
}
