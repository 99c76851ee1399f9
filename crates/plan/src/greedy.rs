//! Greedy splitting (O'Neil's rules, with randomised restarts): at a node
//! of the tree, steps every image there still needs (and may take now)
//! are built once for all of them; otherwise one step is chosen by the
//! rule, the images that can take it go down that edge, and the rest stay
//! to choose again. Once a node's group is small enough, its subtree is
//! the exact search's (memoized across runs), within a budget.

use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::exact::{Search, MAX_IMAGES};
use crate::plan::Plan;
use crate::problem::Problem;
use crate::steps::StepSet;

/// How the step to split on is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// The most build time saved: cost × (images sharing it − 1).
    MostTime,
    /// The step the most images can take now.
    MostCommon,
}

/// Groups of at most this many images get the exact search's subtree.
const EXACT_GROUP: usize = 12;
/// What one group's exact search may take before the greedy goes on.
const EXACT_BUDGET: Duration = Duration::from_millis(250);

/// The best of the plain rules and `restarts` randomised runs (seeded:
/// the same problem always gets the same plan), their small subtrees
/// solved exactly until `deadline`.
pub fn best(problem: &Problem, restarts: usize, deadline: Instant) -> Plan {
    let mut search = (problem.images.len() <= MAX_IMAGES).then(|| Search::new(problem, deadline));
    let mut best = run(problem, Rule::MostTime, None, search.as_mut(), deadline);
    let consider = |p: Plan, best: &mut Plan| {
        if p.beats(best, problem) {
            *best = p;
        }
    };
    consider(
        run(problem, Rule::MostCommon, None, search.as_mut(), deadline),
        &mut best,
    );
    for seed in 0..restarts {
        let mut rng = SmallRng::seed_from_u64(seed as u64);
        let rule = if seed % 4 == 3 {
            Rule::MostCommon
        } else {
            Rule::MostTime
        };
        let plan = run(problem, rule, Some(&mut rng), search.as_mut(), deadline);
        consider(plan, &mut best);
    }
    best
}

/// One greedy plan; `rng` perturbs the scores (by up to 40%); groups go
/// to `exact` while the deadline allows.
fn run<'p>(
    problem: &'p Problem,
    rule: Rule,
    rng: Option<&mut SmallRng>,
    exact: Option<&mut Search<'p>>,
    deadline: Instant,
) -> Plan {
    let mut g = Grower {
        problem,
        needs: problem.needs(),
        orders: vec![Vec::new(); problem.images.len()],
        rule,
        rng,
        exact,
        deadline,
    };
    for group in problem.base_groups() {
        g.grow(group, StepSet::new(problem.steps.len()));
    }
    Plan { orders: g.orders }
}

struct Grower<'a, 'r> {
    problem: &'a Problem,
    needs: Vec<StepSet>,
    orders: Vec<Vec<usize>>,
    rule: Rule,
    rng: Option<&'r mut SmallRng>,
    exact: Option<&'r mut Search<'a>>,
    deadline: Instant,
}

impl Grower<'_, '_> {
    /// The group's subtree from the exact search, if it is small enough
    /// and the search ends within its budget.
    fn solved_exactly(&mut self, group: &[usize], built: &StepSet) -> bool {
        let now = Instant::now();
        let Some(search) = self.exact.as_deref_mut() else {
            return false;
        };
        if group.len() > EXACT_GROUP || now >= self.deadline {
            return false;
        }
        let mask = group.iter().fold(0u64, |m, &i| m | 1 << i);
        search.deadline = self.deadline.min(now + EXACT_BUDGET);
        if search.best(mask, built).is_none() {
            return false;
        }
        search.rebuild(mask, built, &mut self.orders);
        true
    }

    /// Whether image `i`, with `built` done, can take step `s` next.
    fn available(&self, i: usize, built: &StepSet, s: usize) -> bool {
        self.problem.can_take(&self.needs[i], built, s)
    }

    fn finished(&self, i: usize) -> bool {
        self.orders[i].len() == self.problem.images[i].steps.len()
    }

    /// The subtree of the images in `group`, all of which have `built`.
    fn grow(&mut self, mut group: Vec<usize>, mut built: StepSet) {
        loop {
            group.retain(|&i| !self.finished(i));
            let Some(&first) = group.first() else { return };
            if group.len() > 1 && self.solved_exactly(&group, &built) {
                return;
            }
            let common = self.problem.images[first]
                .steps
                .iter()
                .copied()
                .find(|&s| group.iter().all(|&i| self.available(i, &built, s)));
            if let Some(s) = common {
                group.iter().for_each(|&i| self.orders[i].push(s));
                built.insert(s);
                continue;
            }
            let s = self.choose(&group, &built);
            let (down, stay): (Vec<usize>, Vec<usize>) =
                group.iter().partition(|&&i| self.available(i, &built, s));
            down.iter().for_each(|&i| self.orders[i].push(s));
            self.grow(down, built.with(s));
            group = stay;
        }
    }

    /// The step to split on: the rule's best among those some image of
    /// the group can take now (there is always one: the precedence is
    /// acyclic).
    fn choose(&mut self, group: &[usize], built: &StepSet) -> usize {
        let mut count = vec![0usize; self.problem.steps.len()];
        for &i in group {
            for &s in &self.problem.images[i].steps {
                if self.available(i, built, s) {
                    count[s] += 1;
                }
            }
        }
        let mut best = (f64::NEG_INFINITY, usize::MAX);
        for (s, &n) in count.iter().enumerate().filter(|(_, &n)| n > 0) {
            let cost = self.problem.steps[s].cost;
            let mut score = match self.rule {
                Rule::MostTime => cost * (n - 1) as f64 + 1e-6 * n as f64,
                Rule::MostCommon => n as f64 * 1e9 + cost,
            };
            if let Some(rng) = self.rng.as_deref_mut() {
                score *= 1.0 + 0.4 * rng.random::<f64>();
            }
            if score > best.0 {
                best = (score, s);
            }
        }
        best.1
    }
}
