//! Specs as text, JSON or YAML (anything not starting with `{` is read
//! as YAML). Two shapes are read:
//!
//! - the benchmark's (`../shared/benchmarks/build-plan`): `{"images":
//!   {name: [step, …]}, "commands": {step: cost}, "precedence": [[a, b],
//!   …]}` (`a` before `b`);
//! - berth's: `{"base": "debian:12", "steps": {name: {"run": "…", "cost":
//!   12.5, "size": 1048576, "after": [step, …]} | "command"}, "images":
//!   {name: {"base": "…", "steps": [step, …]} | [step, …]}}`.

use serde_json::{Map, Value};

use crate::error::PlanError;
use crate::problem::{ImageSpec, Problem, StepSpec};

/// Reads a spec (either shape) into a checked problem. `cost_of` gives a
/// cost to steps the spec gives none (the build cache's durations).
pub fn parse(text: &str, cost_of: &dyn Fn(&str) -> Option<f64>) -> Result<Problem, PlanError> {
    let v = document(text)?;
    let top = v
        .as_object()
        .ok_or_else(|| PlanError::Syntax("the spec must be an object".into()))?;
    let is_benchmark = top.contains_key("commands");
    let (mut steps, images) = if is_benchmark {
        benchmark(top)?
    } else {
        berth(top)?
    };
    for s in &mut steps {
        if s.cost.is_none() {
            s.cost = cost_of(s.command.as_deref().unwrap_or(&s.name));
        }
    }
    // The benchmark's instances include images that need no step.
    if is_benchmark {
        Problem::allowing_empty_images(steps, images)
    } else {
        Problem::new(steps, images)
    }
}

/// The spec as a JSON value, whichever way it is written.
fn document(text: &str) -> Result<Value, PlanError> {
    if text.trim_start().starts_with('{') {
        return serde_json::from_str(text).map_err(|e| syntax(format!("JSON: {e}")));
    }
    serde_saphyr::from_str(text).map_err(|e| syntax(format!("YAML: {e}")))
}

fn syntax(what: impl Into<String>) -> PlanError {
    PlanError::Syntax(what.into())
}

fn object<'a>(v: &'a Value, what: &str) -> Result<&'a Map<String, Value>, PlanError> {
    v.as_object()
        .ok_or_else(|| syntax(format!("{what} must be an object")))
}

fn strings(v: &Value, what: &str) -> Result<Vec<String>, PlanError> {
    v.as_array()
        .ok_or_else(|| syntax(format!("{what} must be a list")))?
        .iter()
        .map(|s| {
            s.as_str()
                .map(str::to_owned)
                .ok_or_else(|| syntax(format!("{what} must list names")))
        })
        .collect()
}

fn benchmark(top: &Map<String, Value>) -> Result<(Vec<StepSpec>, Vec<ImageSpec>), PlanError> {
    let mut steps: Vec<StepSpec> = object(&top["commands"], "commands")?
        .iter()
        .map(|(name, cost)| {
            let cost = cost
                .as_f64()
                .ok_or_else(|| syntax(format!("the cost of {name:?} must be a number")))?;
            Ok(StepSpec {
                name: name.clone(),
                cost: Some(cost),
                ..StepSpec::default()
            })
        })
        .collect::<Result<_, PlanError>>()?;
    if let Some(pairs) = top.get("precedence") {
        for pair in pairs
            .as_array()
            .ok_or_else(|| syntax("precedence must be a list"))?
        {
            let names = strings(pair, "a precedence pair")?;
            let [before, after] = names.as_slice() else {
                return Err(syntax("a precedence pair must name two steps"));
            };
            match steps.iter_mut().find(|s| &s.name == after) {
                Some(s) => s.after.push(before.clone()),
                None => {
                    return Err(PlanError::UnknownPredecessor {
                        step: after.clone(),
                        after: before.clone(),
                    })
                }
            }
        }
    }
    let images = object(top.get("images").unwrap_or(&Value::Null), "images")?
        .iter()
        .map(|(name, list)| {
            Ok(ImageSpec {
                name: name.clone(),
                base: String::new(),
                steps: strings(list, &format!("image {name:?}"))?,
            })
        })
        .collect::<Result<_, PlanError>>()?;
    Ok((steps, images))
}

fn berth(top: &Map<String, Value>) -> Result<(Vec<StepSpec>, Vec<ImageSpec>), PlanError> {
    let base = top.get("base").and_then(Value::as_str).unwrap_or("");
    let steps = object(top.get("steps").unwrap_or(&Value::Null), "steps")?
        .iter()
        .map(|(name, v)| step(name, v))
        .collect::<Result<_, PlanError>>()?;
    let images = object(top.get("images").unwrap_or(&Value::Null), "images")?
        .iter()
        .map(|(name, v)| {
            let what = format!("image {name:?}");
            let (base, list) = match v {
                Value::Array(_) => (base.to_owned(), strings(v, &what)?),
                Value::Object(o) => (
                    o.get("base")
                        .and_then(Value::as_str)
                        .unwrap_or(base)
                        .to_owned(),
                    strings(o.get("steps").unwrap_or(&Value::Null), &what)?,
                ),
                _ => return Err(syntax(format!("{what} must be a list or an object"))),
            };
            Ok(ImageSpec {
                name: name.clone(),
                base,
                steps: list,
            })
        })
        .collect::<Result<_, PlanError>>()?;
    Ok((steps, images))
}

fn step(name: &str, v: &Value) -> Result<StepSpec, PlanError> {
    let what = format!("step {name:?}");
    let o = match v {
        Value::String(cmd) => {
            return Ok(StepSpec {
                name: name.to_owned(),
                command: Some(cmd.clone()),
                ..StepSpec::default()
            })
        }
        Value::Object(o) => o,
        _ => return Err(syntax(format!("{what} must be a command or an object"))),
    };
    let number = |key: &str| -> Result<Option<f64>, PlanError> {
        match o.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(n) => n
                .as_f64()
                .map(Some)
                .ok_or_else(|| syntax(format!("{what}: {key} must be a number"))),
        }
    };
    let size = match o.get("size") {
        None | Some(Value::Null) => 0,
        Some(n) => n
            .as_u64()
            .ok_or_else(|| syntax(format!("{what}: size must be a whole number of bytes")))?,
    };
    Ok(StepSpec {
        name: name.to_owned(),
        command: o.get("run").and_then(Value::as_str).map(str::to_owned),
        cost: number("cost")?,
        size,
        after: match o.get("after") {
            Some(a) => strings(a, &format!("{what}: after"))?,
            None => Vec::new(),
        },
    })
}
