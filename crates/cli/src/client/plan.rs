//! `berth plan SPEC`: the build planner on a family of images (no daemon
//! involved): the plan's cost beside the cost with no sharing and of the
//! orders as written, its lower bound and whether it is proven optimal;
//! `--json` for tools.

use std::time::Duration;

use anyhow::{Context, Result};
use berth_plan::plan::{no_sharing_cost, Node};
use berth_plan::{Limits, Plan, Problem, Solution};
use clap::Args;
use serde_json::json;

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// The spec (JSON: berth's or the build-plan benchmark's); - for stdin
    pub spec: String,
    /// Print the plan as JSON
    #[arg(long)]
    pub json: bool,
    /// Seconds the exact search may take before the best plan stands
    #[arg(long, default_value_t = 10.0)]
    pub time_limit: f64,
}

/// `berth plan`.
pub fn plan(a: &PlanArgs) -> Result<i32> {
    let text = if a.spec == "-" {
        std::io::read_to_string(std::io::stdin()).context("reading the spec from stdin")?
    } else {
        std::fs::read_to_string(&a.spec).with_context(|| format!("reading {}", a.spec))?
    };
    let problem = berth_plan::spec::parse(&text, &|_| None).with_context(|| a.spec.clone())?;
    if !(a.time_limit.is_finite() && a.time_limit >= 0.0) {
        anyhow::bail!(
            "--time-limit must be a number of seconds, not {}",
            a.time_limit
        );
    }
    let limits = Limits {
        // A day at most: far enough, and no overflowing deadline.
        time: Duration::from_secs_f64(a.time_limit.min(86_400.0)),
        ..Limits::default()
    };
    let s = berth_plan::solve(&problem, &limits);
    if a.json {
        println!("{}", serde_json::to_string_pretty(&as_json(&problem, &s))?);
    } else {
        print_summary(&problem, &s);
    }
    Ok(0)
}

/// The cost of the orders as written, when the precedence allows them.
fn as_written(problem: &Problem) -> Option<f64> {
    let written = Plan::as_written(problem);
    written.check(problem).ok().map(|()| written.cost(problem))
}

fn print_summary(problem: &Problem, s: &Solution) {
    let proof = if s.optimal {
        "proven optimal".to_owned()
    } else {
        let gap = if s.lower_bound > 0.0 {
            100.0 * (s.cost - s.lower_bound) / s.lower_bound
        } else {
            0.0
        };
        format!("within {gap:.1}% of the lower bound")
    };
    println!("cost:           {} ({proof})", s.cost);
    println!("no sharing:     {}", no_sharing_cost(problem));
    match as_written(problem) {
        Some(c) => println!("as written:     {c}"),
        None => println!("as written:     (breaks the precedence)"),
    }
    println!("lower bound:    {}", s.lower_bound);
    println!("solved in:      {:.3} s", s.elapsed.as_secs_f64());
    for (image, order) in problem.images.iter().zip(&s.plan.orders) {
        let steps: Vec<&str> = order
            .iter()
            .map(|&i| problem.steps[i].name.as_str())
            .collect();
        println!("{}: {}", image.name, steps.join(" "));
    }
}

fn as_json(problem: &Problem, s: &Solution) -> serde_json::Value {
    let name = |i: usize| problem.steps[i].name.clone();
    let orders: serde_json::Map<String, serde_json::Value> = problem
        .images
        .iter()
        .zip(&s.plan.orders)
        .map(|(im, o)| {
            (
                im.name.clone(),
                json!(o.iter().map(|&i| name(i)).collect::<Vec<_>>()),
            )
        })
        .collect();
    let tree: Vec<serde_json::Value> = s
        .plan
        .tree(problem)
        .iter()
        .enumerate()
        .map(|(id, n): (usize, &Node)| {
            json!({
                "id": id,
                "parent": n.parent,
                "base": n.base,
                "step": name(n.step),
                "images": n.images.iter().map(|&i| problem.images[i].name.clone()).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({
        "cost": s.cost,
        "lower_bound": s.lower_bound,
        "optimal": s.optimal,
        "no_sharing": no_sharing_cost(problem),
        "as_written": as_written(problem),
        "seconds": s.elapsed.as_secs_f64(),
        "orders": orders,
        "tree": tree,
    })
}
