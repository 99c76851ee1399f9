//! The build planner (pure: no I/O). A layer cache shares work only where
//! images share an identical prefix of steps; given a family of images,
//! the steps each needs (with costs, sizes and precedence), it chooses
//! each image's order so the tree of layers they form costs least to
//! build. The problem is NP-hard (weighted Camin–Sokal parsimony): greedy
//! splitting with restarts finds good plans fast, an exact search proves
//! small families optimal, and the linear relaxation over closed step
//! sets bounds every plan from below (and, where its solution is whole,
//! is an optimal plan itself). Dockerfile families, plans from what the
//! build cache holds and the plan cut into Dockerfiles are here too; the
//! CLI does the I/O.

pub mod bound;
pub mod dockerfiles;
mod error;
pub mod exact;
pub mod greedy;
pub mod layout;
mod lp;
pub mod plan;
pub mod prefix;
pub mod problem;
mod relaxing;
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

/// The best plan for `problem` within `limits`. The linear relaxation
/// (the lower bound, and a plan where its solution is whole) is solved on
/// a thread of its own while the greedy rules and their randomised
/// restarts run (small groups solved exactly), then the exact search of
/// the whole family where it is small enough — until the relaxation
/// proves the best plan so far optimal, or the time is up.
pub fn solve(problem: &Problem, limits: &Limits) -> Solution {
    let started = std::time::Instant::now();
    let deadline = started + limits.time;
    let relaxing = relaxing::Relaxing::start(problem, deadline);
    // The greedy runs take half the time at most.
    let mut best = greedy::best(problem, limits.restarts, started + limits.time / 2);
    relaxing.poll();
    if let Some(whole) = relaxing.whole() {
        best = better(problem, best, whole);
    }
    let incumbent = best.cost(problem);
    let mut proven = relaxing.proves(incumbent);
    if !proven {
        let stop = || {
            relaxing.poll();
            relaxing.proves(incumbent)
        };
        if let Some(exact) = exact::solve_until(problem, deadline, &stop) {
            proven = true;
            best = better(problem, best, exact);
        }
    }
    // Proven: the relaxation is not waited for (its bound is the cost).
    let relaxation = if proven {
        relaxing.latest()
    } else {
        relaxing.wait(deadline)
    };
    let best = match relaxation.plan {
        Some(whole) => better(problem, best, whole),
        None => best,
    };
    let cost = best.cost(problem);
    let lower = relaxation.bound.max(plan::distinct_steps_bound(problem));
    let optimal = proven || meets(cost, lower);
    Solution {
        cost,
        lower_bound: if optimal { cost } else { lower.min(cost) },
        optimal,
        plan: best,
        elapsed: started.elapsed(),
    }
}

/// `other` if it is a valid plan better than `best`.
fn better(problem: &Problem, best: Plan, other: Plan) -> Plan {
    if other.check(problem).is_ok() && other.beats(&best, problem) {
        other
    } else {
        best
    }
}

/// Whether a cost meets a lower bound (up to rounding).
pub(crate) fn meets(cost: f64, lower: f64) -> bool {
    cost - lower <= 1e-6 * cost.abs().max(1.0)
}
