//! A certified lower bound: no plan costs less.
//!
//! Any plan can be read as a tree over *closed* step sets (intersections
//! of image step sets): map each branch point to the intersection of the
//! images below it. That tree costs no more than the plan (a step counted
//! on a mapped arc is built on that arc or below it, and the arcs where a
//! step is counted lie on disjoint branches), so the cheapest Steiner
//! arborescence from the base (the empty set) to every image's set, in
//! the lattice of closed sets, bounds every plan from below — precedence
//! only adds constraints. Arcs between a set and its covers suffice (a
//! longer arc costs what the chain of covers under it does).
//!
//! First a bound in milliseconds, Wong's dual ascent on that graph's cut
//! relaxation: while some image cannot be reached from the base by arcs
//! whose reduced cost is spent, take the arcs entering the set of nodes
//! that reach it by spent arcs, and raise the bound by their smallest
//! reduced cost. Every intermediate state is a feasible dual of the
//! linear relaxation, so the bound holds wherever the deadline stops it.
//! Then the linear relaxation itself ([`crate::lp`]), whose optimum is the
//! best such bound and whose solution leads to plans.

use std::collections::HashMap;
use std::time::Instant;

use crate::plan::Plan;
use crate::problem::Problem;
use crate::steps::StepSet;

/// Reduced costs this close to zero count as spent.
const SPENT: f64 = 1e-9;

/// A base's relaxation: its bound, and each of its images' orders in the
/// trees its solution leads to (rounded: each node entered by the arc
/// built most; dived: a whole solution found from it).
struct Relaxed {
    bound: f64,
    rounded: Vec<Vec<usize>>,
    dived: Option<Vec<Vec<usize>>>,
}

/// The lattice of closed sets under one base, and its cover arcs.
struct Lattice {
    nodes: Vec<StepSet>,
    /// (from, to, cost of the steps `to` adds).
    arcs: Vec<(usize, usize, f64)>,
    /// Per node, the arcs entering it.
    entering: Vec<Vec<usize>>,
}

/// What the relaxation tells of a family: a bound no plan beats, and a
/// plan when its solution is whole (a tree of cover arcs).
#[derive(Debug, Clone, Default)]
pub struct Relaxation {
    pub bound: f64,
    pub plan: Option<Plan>,
}

/// A lower bound on every plan's cost (at least the distinct-step sum),
/// found before `deadline` (a partial ascent is still a bound).
pub fn lower_bound(problem: &Problem, deadline: Instant) -> f64 {
    let mut last = Relaxation::default();
    relax(problem, deadline, &mut |r| last = r);
    last.bound
}

/// Per base: the distinct steps and the dual ascent (reported), then the
/// linear relaxation where it is solved by `deadline` (reported again,
/// with the plan its solution leads to: each node reached by the arc the
/// solution builds most of).
pub fn relax(problem: &Problem, deadline: Instant, report: &mut dyn FnMut(Relaxation)) {
    let needs = problem.needs();
    let mut groups = Vec::new();
    let mut bound = 0.0;
    for group in problem.base_groups() {
        let sets: Vec<StepSet> = group.iter().map(|&i| needs[i].clone()).collect();
        let refs: Vec<&StepSet> = sets.iter().collect();
        let distinct = distinct_cost(problem, &refs);
        let lattice = Lattice::build(problem, &refs, deadline);
        let ascent = lattice.as_ref().map_or(0.0, |l| {
            let terminals = l.terminals(&refs);
            l.dual_ascent(&terminals, deadline)
        });
        let found = distinct.max(ascent);
        bound += found;
        groups.push((group, sets, lattice, found));
    }
    report(Relaxation { bound, plan: None });
    let mut bound = 0.0;
    let mut rounded = Some(vec![Vec::new(); problem.images.len()]);
    let mut dived = Some(vec![Vec::new(); problem.images.len()]);
    for (group, sets, lattice, found) in groups {
        let relaxed = lattice
            .as_ref()
            .and_then(|l| l.relax(problem, &sets, deadline));
        let Some(r) = relaxed else {
            bound += found;
            (rounded, dived) = (None, None);
            continue;
        };
        // The solver's optimum, a hair lower: floating point.
        bound += found.max(r.bound - 1e-7 * r.bound.abs().max(1.0));
        fill(&mut rounded, &group, Some(&r.rounded));
        fill(&mut dived, &group, r.dived.as_ref());
    }
    let rounded = rounded.map(|orders| Plan { orders });
    report(Relaxation {
        bound,
        plan: rounded.clone(),
    });
    // The dived plan too, where it is valid and better.
    let cost = |p: &Option<Plan>| {
        p.as_ref()
            .filter(|p| p.check(problem).is_ok())
            .map_or(f64::INFINITY, |p| p.cost(problem))
    };
    let dived = dived.map(|orders| Plan { orders });
    if cost(&dived) < cost(&rounded) {
        report(Relaxation { bound, plan: dived });
    }
}

/// Sets the orders of a group's images (none: no plan).
fn fill(orders: &mut Option<Vec<Vec<usize>>>, group: &[usize], found: Option<&Vec<Vec<usize>>>) {
    let (Some(all), Some(found)) = (orders.as_mut(), found) else {
        *orders = None;
        return;
    };
    for (&i, order) in group.iter().zip(found) {
        all[i].clone_from(order);
    }
}

fn distinct_cost(problem: &Problem, sets: &[&StepSet]) -> f64 {
    (0..problem.steps.len())
        .filter(|&s| sets.iter().any(|set| set.contains(s)))
        .map(|s| problem.steps[s].cost)
        .sum()
}

impl Lattice {
    /// From the empty set, each node's covers: for each step some image
    /// above the node needs, the intersection of the images holding the
    /// node and that step; the minimal ones. `None` past the deadline.
    fn build(problem: &Problem, images: &[&StepSet], deadline: Instant) -> Option<Self> {
        let empty = StepSet::new(problem.steps.len());
        let mut lattice = Self {
            nodes: vec![empty.clone()],
            arcs: Vec::new(),
            entering: vec![Vec::new()],
        };
        let mut index: HashMap<StepSet, usize> = HashMap::from([(empty, 0)]);
        let mut next = 0;
        while next < lattice.nodes.len() {
            if Instant::now() > deadline {
                return None;
            }
            let node = lattice.nodes[next].clone();
            for cover in covers(problem, images, &node) {
                let cost = problem
                    .steps
                    .iter()
                    .enumerate()
                    .filter(|&(s, _)| cover.contains(s) && !node.contains(s))
                    .map(|(_, step)| step.cost)
                    .sum();
                let to = *index.entry(cover.clone()).or_insert_with(|| {
                    lattice.nodes.push(cover);
                    lattice.entering.push(Vec::new());
                    lattice.nodes.len() - 1
                });
                lattice.entering[to].push(lattice.arcs.len());
                lattice.arcs.push((next, to, cost));
            }
            next += 1;
        }
        Some(lattice)
    }

    /// The linear relaxation's optimum, and each node's path in the tree
    /// its solution leads to; `None` if not solved by `deadline`.
    fn relax(&self, problem: &Problem, sets: &[StepSet], deadline: Instant) -> Option<Relaxed> {
        let refs: Vec<&StepSet> = sets.iter().collect();
        let terminals = self.terminals(&refs);
        let below = |v: usize, t: usize| self.nodes[v].is_subset(&self.nodes[t]);
        let graph = crate::lp::Graph {
            arcs: &self.arcs,
            below: &below,
        };
        let relaxed = crate::lp::solve(&graph, &terminals, deadline)?;
        Some(Relaxed {
            bound: relaxed.bound,
            rounded: self.orders(problem, &relaxed.built, &refs),
            dived: relaxed
                .dived
                .map(|built| self.orders(problem, &built, &refs)),
        })
    }

    /// The images' orders in the tree where each node is entered by the
    /// arc the relaxation builds most of (its own tree when the solution
    /// is whole): each arc's steps in an order its precedence allows, the
    /// same wherever the arc is used. An image the tree does not reach
    /// gets a short order (the plan's check refuses it).
    fn orders(&self, problem: &Problem, built: &[f64], images: &[&StepSet]) -> Vec<Vec<usize>> {
        let mut parent: Vec<Option<usize>> = vec![None; self.nodes.len()];
        for (a, &(_, to, _)) in self.arcs.iter().enumerate() {
            let more = parent[to].is_none_or(|p| built[a] > built[p]);
            if built[a] > 1e-9 && more {
                parent[to] = Some(a);
            }
        }
        let index: HashMap<&StepSet, usize> =
            self.nodes.iter().enumerate().map(|(i, n)| (n, i)).collect();
        images
            .iter()
            .map(|set| {
                let mut arcs = Vec::new();
                let mut at = index.get(set).copied();
                while let Some(a) = at.and_then(|v| parent[v]) {
                    arcs.push(a);
                    at = Some(self.arcs[a].0);
                }
                arcs.iter()
                    .rev()
                    .flat_map(|&a| {
                        let (from, to, _) = self.arcs[a];
                        arc_order(problem, &self.nodes[from], &self.nodes[to])
                    })
                    .collect()
            })
            .collect()
    }

    /// The nodes of the images' sets (the base, an image needing nothing,
    /// is no terminal).
    fn terminals(&self, images: &[&StepSet]) -> Vec<usize> {
        let index: HashMap<&StepSet, usize> =
            self.nodes.iter().enumerate().map(|(i, n)| (n, i)).collect();
        let mut terminals: Vec<usize> = images
            .iter()
            .filter_map(|s| index.get(s).copied())
            .filter(|&t| t != 0)
            .collect();
        terminals.sort_unstable();
        terminals.dedup();
        terminals
    }

    /// Raises the bound until every image is reached by spent arcs (or
    /// the deadline passes).
    fn dual_ascent(&self, terminals: &[usize], deadline: Instant) -> f64 {
        let mut reduced: Vec<f64> = self.arcs.iter().map(|a| a.2).collect();
        let mut bound = 0.0;
        let mut inside = vec![false; self.nodes.len()];
        loop {
            let mut raised = false;
            for &t in terminals {
                if Instant::now() > deadline {
                    return bound;
                }
                let Some(cut) = self.open_cut(t, &reduced, &mut inside) else {
                    continue;
                };
                let delta = cut
                    .iter()
                    .map(|&a| reduced[a])
                    .fold(f64::INFINITY, f64::min);
                if !delta.is_finite() {
                    continue;
                }
                bound += delta;
                for a in cut {
                    reduced[a] = (reduced[a] - delta).max(0.0);
                }
                raised = true;
            }
            if !raised {
                return bound;
            }
        }
    }

    /// The arcs entering the nodes that reach `t` by spent arcs, unless
    /// the base is among them (then `t` is reached).
    fn open_cut(&self, t: usize, reduced: &[f64], inside: &mut [bool]) -> Option<Vec<usize>> {
        let mut reached = vec![t];
        inside[t] = true;
        let mut at = 0;
        while at < reached.len() {
            let v = reached[at];
            at += 1;
            for &a in &self.entering[v] {
                let u = self.arcs[a].0;
                if reduced[a] <= SPENT && !inside[u] {
                    inside[u] = true;
                    reached.push(u);
                }
            }
        }
        let cut = (!inside[0]).then(|| {
            reached
                .iter()
                .flat_map(|&v| &self.entering[v])
                .copied()
                .filter(|&a| !inside[self.arcs[a].0])
                .collect()
        });
        for &v in &reached {
            inside[v] = false;
        }
        cut
    }
}

/// The closed sets covering `node`: for each step not in it that an
/// image holding it needs, the intersection of the images holding both;
/// the minimal ones.
fn covers(problem: &Problem, images: &[&StepSet], node: &StepSet) -> Vec<StepSet> {
    let above: Vec<&StepSet> = images
        .iter()
        .copied()
        .filter(|im| node.is_subset(im))
        .collect();
    let mut candidates: Vec<StepSet> = Vec::new();
    for s in 0..problem.steps.len() {
        if node.contains(s) {
            continue;
        }
        let mut holding = above.iter().filter(|im| im.contains(s));
        let Some(first) = holding.next() else {
            continue;
        };
        let closed = holding.fold((*first).clone(), |acc, im| acc.intersection(im));
        if !candidates.contains(&closed) {
            candidates.push(closed);
        }
    }
    candidates
        .iter()
        .filter(|c| !candidates.iter().any(|d| d != *c && d.is_subset(c)))
        .cloned()
        .collect()
}

/// The steps `to` adds to `from`, each after those of them it must follow
/// (ties by index).
fn arc_order(problem: &Problem, from: &StepSet, to: &StepSet) -> Vec<usize> {
    let mut left: Vec<usize> = (0..problem.steps.len())
        .filter(|&s| to.contains(s) && !from.contains(s))
        .collect();
    let mut out = Vec::with_capacity(left.len());
    while !left.is_empty() {
        let pos = left
            .iter()
            .position(|&s| problem.after[s].iter().all(|p| !left.contains(p)))
            .unwrap_or(0);
        out.push(left.remove(pos));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::problem::{ImageSpec, StepSpec};

    /// Three images, each pair sharing a step: the relaxation splits each
    /// image's flow between its two steps (4.5), every tree costs 5.
    fn triangle() -> Problem {
        let step = |n: &str| StepSpec {
            name: n.into(),
            cost: Some(1.0),
            ..StepSpec::default()
        };
        let image = |n: &str, steps: [&str; 2]| ImageSpec {
            name: n.into(),
            base: String::new(),
            steps: steps.iter().map(|s| (*s).into()).collect(),
        };
        Problem::new(
            vec![step("a"), step("b"), step("c")],
            vec![
                image("ab", ["a", "b"]),
                image("bc", ["b", "c"]),
                image("ac", ["a", "c"]),
            ],
        )
        .unwrap()
    }

    #[test]
    fn a_fractional_relaxation_bounds_and_diving_finds_a_whole_tree() {
        let p = triangle();
        let far = Instant::now() + std::time::Duration::from_secs(60);
        let needs = p.needs();
        let sets: Vec<&StepSet> = needs.iter().collect();
        let lattice = Lattice::build(&p, &sets, far).unwrap();
        // The base, three singletons, three images; two covers each.
        assert_eq!((lattice.nodes.len(), lattice.arcs.len()), (7, 9));
        let terminals = lattice.terminals(&sets);
        let below = |v: usize, t: usize| lattice.nodes[v].is_subset(&lattice.nodes[t]);
        let graph = crate::lp::Graph {
            arcs: &lattice.arcs,
            below: &below,
        };
        let relaxed = crate::lp::solve(&graph, &terminals, far).unwrap();
        assert!((relaxed.bound - 4.5).abs() < 1e-6, "{}", relaxed.bound);
        assert!(relaxed.built.iter().any(|x| (0.1..0.9).contains(x)));
        let dived = relaxed.dived.unwrap();
        assert!(dived.iter().all(|&x| !(1e-6..=1.0 - 1e-6).contains(&x)));
        let cost: f64 = dived.iter().zip(&lattice.arcs).map(|(x, a)| x * a.2).sum();
        assert!((cost - 5.0).abs() < 1e-6, "{cost}");
        // Its orders make a valid plan of that cost.
        let orders = lattice.orders(&p, &dived, &sets);
        let plan = Plan { orders };
        plan.check(&p).unwrap();
        assert_eq!(plan.cost(&p), 5.0);
        // Reported: the ascent's bound, then the LP's with a plan.
        let mut reports = Vec::new();
        relax(&p, far, &mut |r| reports.push(r));
        let last = reports.last().unwrap();
        assert!(
            last.bound < 4.5 && last.bound > 4.5 - 1e-5,
            "{}",
            last.bound
        );
        let whole = last.plan.as_ref().unwrap();
        whole.check(&p).unwrap();
        assert_eq!(whole.cost(&p), 5.0);
    }
}
