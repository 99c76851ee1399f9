//! The linear relaxation of the arborescence over closed step sets (see
//! [`crate::bound`]) in its multicommodity-flow form: one variable per
//! cover arc (how much of it the tree builds, 0 to 1) priced at the steps
//! it adds, and per image one unit of flow from the base to the image's
//! set, through arcs the tree builds. An image's flow only ever uses arcs
//! into subsets of its own set, so each commodity lives on its own
//! down-set: the program stays small enough for families of a few dozen
//! images. Its optimum bounds every plan from below; where its solution is
//! whole (every arc 0 or 1) it is a tree, often an optimal plan.

use std::collections::HashMap;
use std::time::Instant;

use microlp::{ComparisonOp, OptimizationDirection, Problem, SolveOutcome, Variable};

/// Values this close to 0 or 1 are whole.
const WHOLE: f64 = 1e-6;

/// The graph the relaxation is over: node 0 is the base; arcs are
/// `(from, to, cost)`.
pub(crate) struct Graph<'a> {
    pub arcs: &'a [(usize, usize, f64)],
    /// Whether node `v` lies below (is a subset of) node `t`.
    pub below: &'a dyn Fn(usize, usize) -> bool,
}

/// The relaxation's optimum and how much of each arc it builds; `None`
/// when the deadline (or a numerical failure) stops the solver first.
pub(crate) struct Relaxed {
    pub bound: f64,
    pub built: Vec<f64>,
    /// A whole solution found by diving from it: the arc built most
    /// (short of wholly) fixed to be built, solved again, until none is
    /// fractional (none if the deadline came first).
    pub dived: Option<Vec<f64>>,
}

/// Solves the relaxation for `terminals` (the images' nodes).
pub(crate) fn solve(g: &Graph<'_>, terminals: &[usize], deadline: Instant) -> Option<Relaxed> {
    let mut problem = Problem::new(OptimizationDirection::Minimize);
    let x: Vec<Variable> = g
        .arcs
        .iter()
        .map(|a| problem.add_var(a.2, (0.0, 1.0)))
        .collect();
    for &t in terminals {
        commodity(g, &mut problem, &x, t);
    }
    problem.set_time_limit(deadline.checked_duration_since(Instant::now())?);
    let SolveOutcome::Solution(solution) = problem.solve().ok()? else {
        return None;
    };
    let bound = solution.objective();
    let built: Vec<f64> = x.iter().map(|&v| solution.var_value(v)).collect();
    let dived = dive(solution, &x, deadline);
    Some(Relaxed {
        bound,
        built,
        dived,
    })
}

/// Fixes the most-built fractional arc to 1 and solves again (from the
/// last basis) until the solution is whole.
fn dive(mut solution: microlp::Solution, x: &[Variable], deadline: Instant) -> Option<Vec<f64>> {
    loop {
        let values: Vec<f64> = x.iter().map(|&v| solution.var_value(v)).collect();
        let fractional = (0..values.len())
            .filter(|&a| values[a] > WHOLE && values[a] < 1.0 - WHOLE)
            .max_by(|&a, &b| values[a].total_cmp(&values[b]));
        let Some(a) = fractional else {
            return Some(values);
        };
        if Instant::now() > deadline {
            return None;
        }
        let SolveOutcome::Solution(next) = solution.fix_var(x[a], 1.0).ok()? else {
            return None;
        };
        solution = next;
    }
}

/// One unit of flow from the base to `t`, on the arcs below `t`, each
/// carrying no more than the tree builds of it.
fn commodity(g: &Graph<'_>, problem: &mut Problem, x: &[Variable], t: usize) {
    let mut balance: HashMap<usize, Vec<(Variable, f64)>> = HashMap::new();
    for (a, &(u, v, _)) in g.arcs.iter().enumerate() {
        if !(g.below)(v, t) {
            continue;
        }
        let f = problem.add_var(0.0, (0.0, 1.0));
        problem.add_constraint([(f, 1.0), (x[a], -1.0)], ComparisonOp::Le, 0.0);
        balance.entry(v).or_default().push((f, 1.0));
        // The base's balance follows from the others'.
        if u != 0 {
            balance.entry(u).or_default().push((f, -1.0));
        }
    }
    for (v, terms) in balance {
        let rhs = if v == t { 1.0 } else { 0.0 };
        problem.add_constraint(terms, ComparisonOp::Eq, rhs);
    }
}
