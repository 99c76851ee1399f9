//! A plan (each image's steps in build order), what it costs, and the tree
//! of layers it makes: every distinct prefix of an order (under its base)
//! is one layer, built once.

use std::collections::HashMap;
use std::time::Duration;

use crate::problem::Problem;

/// Each image's steps, in build order (indexes into the problem).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub orders: Vec<Vec<usize>>,
}

/// A plan and what is known of it.
#[derive(Debug, Clone)]
pub struct Solution {
    pub plan: Plan,
    pub cost: f64,
    /// No plan costs less than this.
    pub lower_bound: f64,
    /// Proven: no plan costs less than this one.
    pub optimal: bool,
    pub elapsed: Duration,
}

/// A layer of the plan's tree: the step it adds, under its parent (none:
/// the base image), and the images that end there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub parent: Option<usize>,
    pub base: String,
    pub step: usize,
    pub images: Vec<usize>,
}

impl Plan {
    /// The orders as the spec writes them.
    pub fn as_written(problem: &Problem) -> Self {
        Self {
            orders: problem.images.iter().map(|i| i.steps.clone()).collect(),
        }
    }

    /// The tree of layers: one node per distinct prefix, parents first.
    pub fn tree(&self, problem: &Problem) -> Vec<Node> {
        let mut nodes: Vec<Node> = Vec::new();
        let mut children: HashMap<(Option<usize>, &str, usize), usize> = HashMap::new();
        for (i, order) in self.orders.iter().enumerate() {
            let base = problem.images[i].base.as_str();
            let mut at = None;
            for &s in order {
                let next = *children.entry((at, base, s)).or_insert_with(|| {
                    nodes.push(Node {
                        parent: at,
                        base: base.to_owned(),
                        step: s,
                        images: Vec::new(),
                    });
                    nodes.len() - 1
                });
                at = Some(next);
            }
            if let Some(n) = at {
                nodes[n].images.push(i);
            }
        }
        nodes
    }

    /// What building the tree costs: each layer's step, once.
    pub fn cost(&self, problem: &Problem) -> f64 {
        self.tree(problem)
            .iter()
            .map(|n| problem.steps[n.step].cost)
            .sum()
    }

    /// The bytes of all the tree's layers (ties between plans go to the
    /// smaller).
    pub fn size(&self, problem: &Problem) -> u64 {
        self.tree(problem)
            .iter()
            .map(|n| problem.steps[n.step].size)
            .sum()
    }

    /// Whether this plan is better than `other`: cheaper, or (costs
    /// equal up to rounding) with smaller layers.
    pub fn beats(&self, other: &Self, problem: &Problem) -> bool {
        let (c, oc) = (self.cost(problem), other.cost(problem));
        c < oc - 1e-9 || ((c - oc).abs() <= 1e-9 && self.size(problem) < other.size(problem))
    }

    /// Whether every image gets exactly its steps, in an order the
    /// precedence allows; the first violation otherwise.
    pub fn check(&self, problem: &Problem) -> Result<(), String> {
        if self.orders.len() != problem.images.len() {
            return Err(format!(
                "{} orders for {} images",
                self.orders.len(),
                problem.images.len()
            ));
        }
        for (order, image) in self.orders.iter().zip(&problem.images) {
            let mut want = image.steps.clone();
            let mut got = order.clone();
            want.sort_unstable();
            got.sort_unstable();
            if want != got {
                return Err(format!(
                    "image {:?} does not get exactly its steps",
                    image.name
                ));
            }
            for (pos, &s) in order.iter().enumerate() {
                if let Some(&late) = order[pos..].iter().find(|&&p| problem.must_follow(s, p)) {
                    return Err(format!(
                        "image {:?}: {:?} comes before {:?}, which it must follow",
                        image.name, problem.steps[s].name, problem.steps[late].name
                    ));
                }
            }
        }
        Ok(())
    }
}

/// What building every image from its base alone costs.
pub fn no_sharing_cost(problem: &Problem) -> f64 {
    problem
        .images
        .iter()
        .flat_map(|i| &i.steps)
        .map(|&s| problem.steps[s].cost)
        .sum()
}

/// A lower bound: every step some image of a base needs is built at least
/// once under that base.
pub fn distinct_steps_bound(problem: &Problem) -> f64 {
    let mut seen = std::collections::HashSet::new();
    problem
        .images
        .iter()
        .flat_map(|i| i.steps.iter().map(move |&s| (i.base.as_str(), s)))
        .filter(|k| seen.insert(*k))
        .map(|(_, s)| problem.steps[s].cost)
        .sum()
}
