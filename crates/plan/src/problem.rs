//! A planning problem: steps (a command, a cost, a size, the steps it
//! must come after) and images (a base and the steps each needs),
//! checked whole before anything is planned.

use std::collections::HashMap;

use crate::error::PlanError;
use crate::steps::StepSet;

/// A build step as the spec gives it.
#[derive(Debug, Clone, Default)]
pub struct StepSpec {
    pub name: String,
    /// The command (the `RUN` line); the name when not given.
    pub command: Option<String>,
    /// Seconds (or any unit, the same for all); 1 when unknown.
    pub cost: Option<f64>,
    /// Bytes the step's layer adds (breaks ties between plans).
    pub size: u64,
    /// Steps this one must come after, wherever both are in an image.
    pub after: Vec<String>,
}

/// An image as the spec gives it: its steps, in the order written.
#[derive(Debug, Clone, Default)]
pub struct ImageSpec {
    pub name: String,
    pub base: String,
    pub steps: Vec<String>,
}

/// A step, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub name: String,
    pub command: String,
    pub cost: f64,
    pub size: u64,
}

/// An image, checked: its steps by index, in the order written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    pub name: String,
    pub base: String,
    pub steps: Vec<usize>,
}

/// A checked problem.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    pub steps: Vec<Step>,
    pub images: Vec<Image>,
    /// For each step, the steps it must come after.
    pub after: Vec<Vec<usize>>,
}

impl Problem {
    /// Checks the spec: names unique, costs not negative, every image
    /// non-empty and naming defined steps once each, precedence acyclic.
    pub fn new(steps: Vec<StepSpec>, images: Vec<ImageSpec>) -> Result<Self, PlanError> {
        Self::checked(steps, images, false)
    }

    /// As [`Problem::new`], but an image may need no steps (it is its
    /// base): the build-plan benchmark has such images.
    pub fn allowing_empty_images(
        steps: Vec<StepSpec>,
        images: Vec<ImageSpec>,
    ) -> Result<Self, PlanError> {
        Self::checked(steps, images, true)
    }

    fn checked(
        steps: Vec<StepSpec>,
        images: Vec<ImageSpec>,
        allow_empty: bool,
    ) -> Result<Self, PlanError> {
        let mut index = HashMap::new();
        for (i, s) in steps.iter().enumerate() {
            if index.insert(s.name.clone(), i).is_some() {
                return Err(PlanError::Duplicate {
                    kind: "step",
                    name: s.name.clone(),
                });
            }
            if let Some(c) = s.cost.filter(|c| c.is_nan() || *c < 0.0) {
                return Err(PlanError::NegativeCost {
                    step: s.name.clone(),
                    cost: c.to_string(),
                });
            }
        }
        let mut after = Vec::with_capacity(steps.len());
        for s in &steps {
            let preds = s
                .after
                .iter()
                .map(|a| {
                    index
                        .get(a)
                        .copied()
                        .ok_or_else(|| PlanError::UnknownPredecessor {
                            step: s.name.clone(),
                            after: a.clone(),
                        })
                })
                .collect::<Result<Vec<usize>, _>>()?;
            after.push(preds);
        }
        let images = check_images(images, &index, allow_empty)?;
        let steps: Vec<Step> = steps
            .into_iter()
            .map(|s| Step {
                command: s.command.unwrap_or_else(|| s.name.clone()),
                cost: s.cost.unwrap_or(1.0),
                size: s.size,
                name: s.name,
            })
            .collect();
        let problem = Self {
            steps,
            images,
            after,
        };
        problem.check_acyclic()?;
        Ok(problem)
    }

    /// The images of each base (they share nothing with another base's).
    pub(crate) fn base_groups(&self) -> Vec<Vec<usize>> {
        let mut bases: Vec<&str> = self.images.iter().map(|i| i.base.as_str()).collect();
        bases.sort_unstable();
        bases.dedup();
        bases
            .iter()
            .map(|b| {
                (0..self.images.len())
                    .filter(|&i| self.images[i].base == *b)
                    .collect()
            })
            .collect()
    }

    /// Each image's steps as a set.
    pub(crate) fn needs(&self) -> Vec<StepSet> {
        self.images
            .iter()
            .map(|im| {
                let mut set = StepSet::new(self.steps.len());
                im.steps.iter().for_each(|&s| set.insert(s));
                set
            })
            .collect()
    }

    /// Whether an image needing `needs`, with `built` done, can take step
    /// `s` next: it needs it, has not got it, and has every step it needs
    /// that `s` must follow.
    pub(crate) fn can_take(&self, needs: &StepSet, built: &StepSet, s: usize) -> bool {
        needs.contains(s)
            && !built.contains(s)
            && self.after[s]
                .iter()
                .all(|&a| !needs.contains(a) || built.contains(a))
    }

    /// Whether `before` must come before `step`.
    pub fn must_follow(&self, step: usize, before: usize) -> bool {
        self.after[step].contains(&before)
    }

    /// A cycle in the precedence, named step by step.
    fn check_acyclic(&self) -> Result<(), PlanError> {
        // 0 unvisited, 1 on the current path, 2 done.
        let mut state = vec![0u8; self.steps.len()];
        let mut path = Vec::new();
        for start in 0..self.steps.len() {
            self.visit(start, &mut state, &mut path)?;
        }
        Ok(())
    }

    fn visit(&self, s: usize, state: &mut [u8], path: &mut Vec<usize>) -> Result<(), PlanError> {
        match state[s] {
            2 => return Ok(()),
            1 => {
                let from = path.iter().position(|&p| p == s).unwrap_or(0);
                let mut names: Vec<&str> = path[from..]
                    .iter()
                    .map(|&p| self.steps[p].name.as_str())
                    .collect();
                names.push(&self.steps[s].name);
                return Err(PlanError::Cycle(names.join(" after ")));
            }
            _ => {}
        }
        state[s] = 1;
        path.push(s);
        for &p in &self.after[s] {
            self.visit(p, state, path)?;
        }
        path.pop();
        state[s] = 2;
        Ok(())
    }
}

fn check_images(
    images: Vec<ImageSpec>,
    index: &HashMap<String, usize>,
    allow_empty: bool,
) -> Result<Vec<Image>, PlanError> {
    let mut names = std::collections::HashSet::new();
    let mut out = Vec::with_capacity(images.len());
    for im in images {
        if !names.insert(im.name.clone()) {
            return Err(PlanError::Duplicate {
                kind: "image",
                name: im.name,
            });
        }
        if im.steps.is_empty() && !allow_empty {
            return Err(PlanError::EmptyImage(im.name));
        }
        let mut steps = Vec::with_capacity(im.steps.len());
        for s in &im.steps {
            let i = *index.get(s).ok_or_else(|| PlanError::UnknownStep {
                image: im.name.clone(),
                step: s.clone(),
            })?;
            if steps.contains(&i) {
                return Err(PlanError::RepeatedStep {
                    image: im.name.clone(),
                    step: s.clone(),
                });
            }
            steps.push(i);
        }
        out.push(Image {
            name: im.name,
            base: im.base,
            steps,
        });
    }
    Ok(out)
}
