//! What `berth plan` prints: a summary for people, JSON for tools.

use berth_plan::plan::{no_sharing_cost, Node};
use berth_plan::{Plan, Problem, Solution};
use serde_json::json;

/// A plan and what goes with it.
pub struct Report<'a> {
    pub problem: &'a Problem,
    pub solution: &'a Solution,
    /// The Dockerfiles in the plan's orders (a family of Dockerfiles).
    pub written: Option<Vec<String>>,
    /// Per image, how many of its steps the build cache holds
    /// (`--cached`: they cost nothing).
    pub built: Option<Vec<usize>>,
}

/// The cost of the orders as written, when the precedence allows them.
fn as_written(problem: &Problem) -> Option<f64> {
    let written = Plan::as_written(problem);
    written.check(problem).ok().map(|()| written.cost(problem))
}

impl Report<'_> {
    pub fn print(&self) {
        print_summary(self.problem, self.solution);
        if let Some(built) = &self.built {
            for (image, &n) in self.problem.images.iter().zip(built) {
                if n > 0 {
                    println!("{}: starts from {n} built steps", image.name);
                }
            }
        }
        for (image, text) in self
            .problem
            .images
            .iter()
            .zip(self.written.iter().flatten())
        {
            println!("\n# {}\n{}", image.name, text.trim_end());
        }
    }

    pub fn json(&self) -> serde_json::Value {
        let mut v = as_json(self.problem, self.solution);
        let by_image = |values: Vec<serde_json::Value>| -> serde_json::Value {
            self.problem
                .images
                .iter()
                .map(|i| i.name.clone())
                .zip(values)
                .collect::<serde_json::Map<_, _>>()
                .into()
        };
        if let Some(written) = &self.written {
            v["dockerfiles"] = by_image(written.iter().map(|t| json!(t)).collect());
        }
        if let Some(built) = &self.built {
            v["built"] = by_image(built.iter().map(|n| json!(n)).collect());
        }
        v
    }
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
