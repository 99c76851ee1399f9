//! The exact search, for families small enough: the cheapest subtree of
//! a group of images at a node is found by trying, for the group's first
//! image, each step it can take next and each set of the group's images
//! that take it too, memoized on (group, steps built). A step every image
//! of the group can take now is taken first (it must be built in every
//! branch below; once, at the top, costs no more and breaks no
//! precedence). Stops at a deadline, unproven.

use std::collections::HashMap;
use std::time::Instant;

use crate::plan::Plan;
use crate::problem::Problem;
use crate::steps::StepSet;

/// The most images the search takes (a group is a bit mask).
pub const MAX_IMAGES: usize = 64;

#[derive(Debug, Clone, Copy)]
enum Choice {
    Done,
    /// A step for the whole group.
    Common(usize),
    /// `block` (with the group's first image) takes `step`; the rest of
    /// the group stays.
    Split {
        step: usize,
        block: u64,
    },
}

/// A proven optimal plan, unless the deadline passes first (then `None`:
/// the caller keeps its plan).
pub fn solve(problem: &Problem, deadline: Instant) -> Option<Plan> {
    solve_until(problem, deadline, &|| false)
}

/// [`solve`], also given up when `stop` says so (asked now and then).
pub fn solve_until(problem: &Problem, deadline: Instant, stop: &dyn Fn() -> bool) -> Option<Plan> {
    if problem.images.len() > MAX_IMAGES {
        return None;
    }
    let mut s = Search::new(problem, deadline);
    s.stop = Some(stop);
    let empty = StepSet::new(problem.steps.len());
    let groups: Vec<u64> = problem
        .base_groups()
        .iter()
        .map(|g| g.iter().fold(0u64, |m, i| m | 1 << i))
        .collect();
    for &g in &groups {
        s.best(g, &empty)?;
    }
    let mut orders = vec![Vec::new(); problem.images.len()];
    for &g in &groups {
        s.rebuild(g, &empty, &mut orders);
    }
    Some(Plan { orders })
}

pub(crate) struct Search<'a> {
    problem: &'a Problem,
    needs: Vec<StepSet>,
    memo: HashMap<(u64, StepSet), (f64, Choice)>,
    pub(crate) deadline: Instant,
    stop: Option<&'a dyn Fn() -> bool>,
    calls: u64,
}

impl<'a> Search<'a> {
    pub(crate) fn new(problem: &'a Problem, deadline: Instant) -> Self {
        let needs = problem.needs();
        Self {
            problem,
            needs,
            memo: HashMap::new(),
            deadline,
            stop: None,
            calls: 0,
        }
    }

    fn available(&self, i: usize, built: &StepSet, s: usize) -> bool {
        self.problem.can_take(&self.needs[i], built, s)
    }

    /// The images of `group` that still need a step.
    fn unfinished(&self, group: u64, built: &StepSet) -> u64 {
        members(group)
            .filter(|&i| {
                self.problem.images[i]
                    .steps
                    .iter()
                    .any(|&s| !built.contains(s))
            })
            .fold(0, |m, i| m | 1 << i)
    }

    /// The cheapest subtree for `group` below `built`; `None` when the
    /// deadline passed.
    pub(crate) fn best(&mut self, group: u64, built: &StepSet) -> Option<f64> {
        let group = self.unfinished(group, built);
        if group == 0 {
            return Some(0.0);
        }
        if let Some(&(cost, _)) = self.memo.get(&(group, built.clone())) {
            return Some(cost);
        }
        self.calls += 1;
        if self.calls.is_multiple_of(1024)
            && (Instant::now() > self.deadline || self.stop.is_some_and(|stop| stop()))
        {
            return None;
        }
        let first = group.trailing_zeros() as usize;
        let steps = &self.problem.images[first].steps;
        let common = steps
            .iter()
            .copied()
            .find(|&s| members(group).all(|i| self.available(i, built, s)));
        let (cost, choice) = match common {
            Some(s) => (
                self.problem.steps[s].cost + self.best(group, &built.with(s))?,
                Choice::Common(s),
            ),
            None => self.best_split(group, built, first)?,
        };
        self.memo.insert((group, built.clone()), (cost, choice));
        Some(cost)
    }

    /// Every step the first image can take next, with every set of the
    /// group's images that can take it too.
    fn best_split(&mut self, group: u64, built: &StepSet, first: usize) -> Option<(f64, Choice)> {
        let mut best = (f64::INFINITY, Choice::Done);
        let steps: Vec<usize> = self.problem.images[first]
            .steps
            .iter()
            .copied()
            .filter(|&s| self.available(first, built, s))
            .collect();
        for s in steps {
            let others = members(group)
                .filter(|&i| i != first && self.available(i, built, s))
                .fold(0u64, |m, i| m | 1 << i);
            let below = built.with(s);
            let mut sub = others;
            loop {
                let block = sub | 1 << first;
                let cost = self.problem.steps[s].cost
                    + self.best(block, &below)?
                    + self.best(group & !block, built)?;
                if cost < best.0 {
                    best = (cost, Choice::Split { step: s, block });
                }
                if sub == 0 {
                    break;
                }
                sub = (sub - 1) & others;
            }
        }
        Some(best)
    }

    /// Appends the memoized choices' steps to the orders.
    pub(crate) fn rebuild(&self, group: u64, built: &StepSet, orders: &mut [Vec<usize>]) {
        let group = self.unfinished(group, built);
        if group == 0 {
            return;
        }
        let choice = self
            .memo
            .get(&(group, built.clone()))
            .map_or(Choice::Done, |&(_, c)| c);
        match choice {
            Choice::Done => {}
            Choice::Common(s) => {
                members(group).for_each(|i| orders[i].push(s));
                self.rebuild(group, &built.with(s), orders);
            }
            Choice::Split { step, block } => {
                members(block).for_each(|i| orders[i].push(step));
                self.rebuild(block, &built.with(step), orders);
                self.rebuild(group & !block, built, orders);
            }
        }
    }
}

/// The images of a mask.
fn members(mask: u64) -> impl Iterator<Item = usize> {
    (0..64).filter(move |i| mask & (1 << i) != 0)
}
