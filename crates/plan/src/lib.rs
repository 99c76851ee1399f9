//! The build planner (pure: no I/O). A layer cache shares work only where
//! images share an identical prefix of steps; given a family of images,
//! the steps each needs (with costs, sizes and precedence), it chooses
//! each image's order so the tree of layers they form costs least to
//! build. The problem is NP-hard (weighted Camin–Sokal parsimony): greedy
//! splitting with restarts finds good plans fast, an exact search proves
//! small families optimal, and a lower bound says how far any plan is
//! from the best possible.

pub mod dockerfiles;
mod error;
pub mod exact;
pub mod greedy;
pub mod layout;
pub mod plan;
pub mod prefix;
pub mod problem;
pub mod spec;
mod steps;

pub use error::PlanError;
pub use plan::{Plan, Solution};
pub use problem::{Image, Problem, Step};

/// How long the planner may search, and how.
#[derive(Debug, Clone)]
pub struct Limits {
    /// The exact search stops after this; the best plan so far stands.
    pub time: std::time::Duration,
    /// Greedy restarts with randomised choices.
    pub restarts: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            time: std::time::Duration::from_secs(10),
            restarts: 64,
        }
    }
}

/// The best plan for `problem` within `limits`: the greedy rules and their
/// randomised restarts (small groups solved exactly), then the exact search
/// of the whole family where it is small enough.
pub fn solve(problem: &Problem, limits: &Limits) -> Solution {
    let started = std::time::Instant::now();
    let deadline = started + limits.time;
    // The greedy runs (with their exact subtrees) take half the time at
    // most; the exact search of the whole family the rest.
    let mut best = greedy::best(problem, limits.restarts, started + limits.time / 2);
    let lower = plan::distinct_steps_bound(problem);
    let mut optimal = (best.cost(problem) - lower).abs() < 1e-9;
    if !optimal {
        if let Some(proven) = exact::solve(problem, deadline) {
            optimal = true;
            // Equal costs: the smaller layers win (as among greedy runs).
            let key = |p: &Plan| (p.cost(problem), p.size(problem));
            if key(&proven) < key(&best) {
                best = proven;
            }
        }
    }
    let cost = best.cost(problem);
    Solution {
        cost,
        lower_bound: if optimal { cost } else { lower },
        optimal,
        plan: best,
        elapsed: started.elapsed(),
    }
}
