//! The planner against an independent checker and brute force: plans are
//! valid (every image gets exactly its steps, precedence holds) and
//! costed here by counting distinct prefixes; the exact search agrees
//! with trying every order on hundreds of small random families; the
//! bound never exceeds the optimum; the benchmark's small instances reach
//! their known optima.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::collections::HashSet;
use std::time::{Duration, Instant};

use berth_plan::problem::{ImageSpec, StepSpec};
use berth_plan::{bound, exact, greedy, plan, spec, Limits, Plan, PlanError, Problem};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// The checker: valid orders, and the cost of their distinct prefixes.
fn checked_cost(p: &Problem, plan: &Plan) -> f64 {
    let mut prefixes = HashSet::new();
    let mut cost = 0.0;
    for (order, image) in plan.orders.iter().zip(&p.images) {
        let mine: HashSet<usize> = image.steps.iter().copied().collect();
        assert_eq!(order.len(), mine.len(), "{}: {order:?}", image.name);
        assert_eq!(order.iter().copied().collect::<HashSet<_>>(), mine);
        for (pos, &s) in order.iter().enumerate() {
            for &a in &p.after[s] {
                if mine.contains(&a) {
                    assert!(order[..pos].contains(&a), "{a} must come before {s}");
                }
            }
            if prefixes.insert((image.base.clone(), order[..=pos].to_vec())) {
                cost += p.steps[s].cost;
            }
        }
    }
    cost
}

/// Every order of `steps` the precedence allows.
fn orders(p: &Problem, steps: &[usize]) -> Vec<Vec<usize>> {
    if steps.is_empty() {
        return vec![Vec::new()];
    }
    let mut out = Vec::new();
    for &s in steps {
        let rest: Vec<usize> = steps.iter().copied().filter(|&t| t != s).collect();
        if rest.iter().any(|&t| p.after[s].contains(&t)) {
            continue; // s must follow a step not yet placed
        }
        for mut tail in orders(p, &rest) {
            tail.insert(0, s);
            out.push(tail);
        }
    }
    out
}

fn brute_force(p: &Problem) -> f64 {
    let choices: Vec<Vec<Vec<usize>>> = p.images.iter().map(|i| orders(p, &i.steps)).collect();
    let mut best = f64::INFINITY;
    let mut pick = vec![0usize; choices.len()];
    loop {
        let plan = Plan {
            orders: pick
                .iter()
                .zip(&choices)
                .map(|(&k, c)| c[k].clone())
                .collect(),
        };
        best = best.min(checked_cost(p, &plan));
        let mut i = 0;
        loop {
            if i == pick.len() {
                return best;
            }
            pick[i] += 1;
            if pick[i] < choices[i].len() {
                break;
            }
            pick[i] = 0;
            i += 1;
        }
    }
}

/// `images` images, each needing up to `most` of `steps` steps.
fn random_problem(
    rng: &mut SmallRng,
    (images, steps, most): (usize, usize, usize),
    precedence: bool,
) -> Problem {
    let step_specs: Vec<StepSpec> = (0..steps)
        .map(|s| StepSpec {
            name: format!("s{s}"),
            cost: Some(f64::from(rng.random_range(1..20u32))),
            // Precedence only from lower to higher index: acyclic.
            after: (0..s)
                .filter(|_| precedence && rng.random_bool(0.25))
                .map(|a| format!("s{a}"))
                .collect(),
            ..StepSpec::default()
        })
        .collect();
    let image_specs = (0..images)
        .map(|i| {
            let mut mine: Vec<String> = (0..steps)
                .filter(|_| rng.random_bool(0.6))
                .map(|s| format!("s{s}"))
                .collect();
            mine.truncate(most);
            if mine.is_empty() {
                mine.push(format!("s{}", rng.random_range(0..steps)));
            }
            ImageSpec {
                name: format!("i{i}"),
                base: String::new(),
                steps: mine,
            }
        })
        .collect();
    Problem::new(step_specs, image_specs).unwrap()
}

fn far() -> Instant {
    Instant::now() + Duration::from_secs(600)
}

#[test]
fn the_exact_search_agrees_with_brute_force() {
    let mut rng = SmallRng::seed_from_u64(42);
    for round in 0..400 {
        let precedence = round % 2 == 1;
        // Brute force tries every order of every image: kept small.
        let shape = match round % 4 {
            0 => (3, 5, 4),
            1 => (4, 5, 3),
            _ => (3, 6, 3),
        };
        let p = random_problem(&mut rng, shape, precedence);
        let greedy = greedy::best(&p, 8, far());
        let found = exact::solve(&p, far()).expect("proven within the deadline");
        let optimum = brute_force(&p);
        let exact_cost = checked_cost(&p, &found);
        assert_eq!(exact_cost, optimum, "round {round}: {p:?}");
        assert_eq!(found.cost(&p), exact_cost, "the plan's own costing");
        assert!(checked_cost(&p, &greedy) >= optimum);
        assert!(plan::distinct_steps_bound(&p) <= optimum);
        let lower = bound::lower_bound(&p, far());
        assert!(
            lower <= optimum + 1e-9,
            "round {round}: {lower} > {optimum}"
        );
        assert!(lower >= plan::distinct_steps_bound(&p));
        assert!(found.check(&p).is_ok());
        // The whole solver (the relaxation's plan ignores precedence: it
        // must never win where it breaks it).
        let s = berth_plan::solve(&p, &Limits::default());
        assert!(s.optimal, "round {round}");
        assert_eq!(checked_cost(&p, &s.plan), optimum, "round {round}: {p:?}");
    }
}

fn instance(name: &str) -> Problem {
    let path = format!("{}/tests/instances/{name}.json", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap();
    spec::parse(&text, &|_| None).unwrap()
}

#[test]
fn the_benchmarks_small_instances_reach_their_optima() {
    for (name, optimum) in [("005images-025cmds", 1051.0), ("005images-050cmds", 3939.0)] {
        let p = instance(name);
        let s = berth_plan::solve(&p, &Limits::default());
        assert!(s.optimal, "{name}");
        assert_eq!(checked_cost(&p, &s.plan), optimum, "{name}");
        assert_eq!(s.cost, optimum);
        assert!(s.lower_bound <= optimum);
        let written = Plan::as_written(&p);
        assert!(checked_cost(&p, &written) >= optimum);
        assert!(plan::no_sharing_cost(&p) >= checked_cost(&p, &written));
    }
}

#[test]
fn the_relaxation_reaches_the_lp_bound_and_a_plan() {
    // The benchmark's LP bounds (its multicommodity-flow program); both
    // instances' LP solutions are whole: optimal plans.
    for (name, lp) in [("005images-025cmds", 1051.0), ("005images-050cmds", 3939.0)] {
        let p = instance(name);
        let mut reports = Vec::new();
        bound::relax(&p, far(), &mut |r| reports.push(r));
        assert_eq!(reports.len(), 2, "the ascent's bound, then the LP's");
        let (ascent, lp_found) = (&reports[0], &reports[1]);
        assert!(ascent.bound > plan::distinct_steps_bound(&p), "{name}");
        assert!(ascent.bound <= lp_found.bound + 1e-6, "{name}");
        assert!(
            (lp_found.bound - lp).abs() < 1e-3,
            "{name}: {}",
            lp_found.bound
        );
        let whole = lp_found.plan.as_ref().unwrap();
        assert_eq!(checked_cost(&p, whole), lp, "{name}");
        assert_eq!(bound::lower_bound(&p, far()), lp_found.bound);
    }
    // Images under different bases share nothing: their bounds add up.
    let mut rng = SmallRng::seed_from_u64(5);
    let p = random_problem(&mut rng, (4, 6, 4), false);
    let mut two = p.clone();
    for (i, im) in two.images.iter_mut().enumerate() {
        im.base = format!("base{}", i % 2);
    }
    let halves: f64 = (0..2)
        .map(|b| {
            let mut half = p.clone();
            half.images
                .retain(|im| im.name.trim_start_matches('i').parse::<usize>().unwrap() % 2 == b);
            bound::lower_bound(&half, far())
        })
        .sum();
    assert!((bound::lower_bound(&two, far()) - halves).abs() < 1e-9);
    // No time: the distinct steps alone (still a bound).
    assert_eq!(
        bound::lower_bound(&p, Instant::now()),
        plan::distinct_steps_bound(&p)
    );
}

#[test]
fn berths_spec_names_steps_bases_sizes_and_precedence() {
    let text = r#"{
        "base": "debian:12",
        "steps": {
            "update": {"run": "apt-get update", "cost": 20},
            "curl": {"run": "apt-get install -y curl", "cost": 5, "after": ["update"]},
            "jq": {"run": "apt-get install -y jq", "cost": 4, "after": ["update"]},
            "app": "cp app /app"
        },
        "images": {
            "a": ["curl", "update", "app"],
            "b": {"steps": ["jq", "update"]},
            "c": {"base": "alpine:3", "steps": ["app"]}
        }
    }"#;
    let p = spec::parse(text, &|cmd| (cmd == "cp app /app").then_some(2.5)).unwrap();
    let app = p.steps.iter().find(|s| s.name == "app").unwrap();
    assert_eq!(app.cost, 2.5, "a cost from the cache's durations");
    let s = berth_plan::solve(&p, &Limits::default());
    // update once for a and b under debian; app twice (two bases).
    assert_eq!(checked_cost(&p, &s.plan), 20.0 + 5.0 + 4.0 + 2.5 + 2.5);
    assert!(s.optimal);
    let a = &s.plan.orders[0];
    assert_eq!(p.steps[a[0]].name, "update", "{a:?}");
}

#[test]
fn bad_specs_name_the_culprit() {
    let parse = |t: &str| spec::parse(t, &|_| None).unwrap_err();
    assert_eq!(
        parse(r#"{"commands": {"a": 1}, "images": {"x": ["a", "b"]}}"#),
        PlanError::UnknownStep {
            image: "x".into(),
            step: "b".into()
        }
    );
    assert_eq!(
        parse(r#"{"commands": {"a": -1}, "images": {"x": ["a"]}}"#),
        PlanError::NegativeCost {
            step: "a".into(),
            cost: "-1".into()
        }
    );
    assert_eq!(
        parse(r#"{"steps": {"a": "true"}, "images": {"x": []}}"#),
        PlanError::EmptyImage("x".into())
    );
    // The benchmark's format has images that are their base.
    let p = spec::parse(
        r#"{"commands": {"a": 1}, "images": {"x": [], "y": ["a"]}}"#,
        &|_| None,
    )
    .unwrap();
    let s = berth_plan::solve(&p, &Limits::default());
    assert_eq!(checked_cost(&p, &s.plan), 1.0);
    let cycle = parse(
        r#"{"commands": {"a": 1, "b": 1, "c": 1}, "images": {"x": ["a"]},
            "precedence": [["a", "b"], ["b", "c"], ["c", "a"]]}"#,
    );
    assert!(
        matches!(&cycle, PlanError::Cycle(c) if c.contains('a') && c.contains('c')),
        "{cycle}"
    );
    assert_eq!(
        parse(r#"{"commands": {"a": 1}, "images": {"x": ["a", "a"]}}"#),
        PlanError::RepeatedStep {
            image: "x".into(),
            step: "a".into()
        }
    );
    assert_eq!(
        parse(r#"{"steps": {"a": {"after": ["z"]}}, "images": {"x": ["a"]}}"#),
        PlanError::UnknownPredecessor {
            step: "a".into(),
            after: "z".into()
        }
    );
    // JSON objects cannot repeat keys usefully: the parser keeps the last.
    assert!(matches!(parse("[1]"), PlanError::Syntax(_)));
}

#[test]
fn a_spent_time_limit_still_gives_a_valid_plan_unproven() {
    let mut rng = SmallRng::seed_from_u64(9);
    let p = random_problem(&mut rng, (30, 40, 20), true);
    // No time: the exact search gives up at once.
    assert!(exact::solve(&p, Instant::now()).is_none());
    let s = berth_plan::solve(
        &p,
        &Limits {
            time: Duration::ZERO,
            restarts: 4,
        },
    );
    assert!(!s.optimal);
    assert_eq!(s.lower_bound, plan::distinct_steps_bound(&p));
    assert_eq!(checked_cost(&p, &s.plan), s.cost);
    assert!(s.cost <= plan::no_sharing_cost(&p));
}
