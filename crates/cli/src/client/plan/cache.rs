//! What the daemon's build cache tells the planner: how long steps took
//! (their costs), and which prefixes are built (`--cached`). Read from
//! `GET /system/df`, whose build-cache entries berth extends with each
//! step's image, the image it was built on, and its duration.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{Context, Result};
use berth_plan::prefix::{self, Built, Started};
use berth_plan::Problem;
use serde_json::Value;

use crate::client::connect::get_json;

/// One cached step.
#[derive(Debug, Clone)]
struct Entry {
    id: String,
    parent: String,
    parent_image: String,
    /// The step as history shows it (`/bin/sh -c make`).
    description: String,
    duration_ms: u64,
}

/// The daemon's build cache.
#[derive(Debug, Default)]
pub struct Cache {
    entries: Vec<Entry>,
}

impl Cache {
    pub async fn fetch(socket: &Path) -> Result<Self> {
        let df = get_json(socket, "/system/df")
            .await
            .context("reading the build cache")?;
        let text = |e: &Value, k: &str| e[k].as_str().unwrap_or_default().to_owned();
        let entries = df["BuildCache"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .map(|e| Entry {
                id: text(e, "ID"),
                parent: text(e, "Parent"),
                parent_image: text(e, "ParentImage"),
                description: text(e, "Description"),
                duration_ms: e["DurationMs"].as_u64().unwrap_or(0),
            })
            .collect();
        Ok(Self { entries })
    }

    /// Seconds a step took when it last ran (the longest record of it:
    /// one restored from another image records no time).
    pub fn cost(&self, command: &str) -> Option<f64> {
        self.entries
            .iter()
            .filter(|e| e.duration_ms > 0 && matches(command, &e.description))
            .map(|e| e.duration_ms)
            .max()
            .map(|ms| ms as f64 / 1000.0)
    }

    /// The problem with each image started from its longest built prefix;
    /// `refs` names each image's base image.
    pub async fn starts(
        &self,
        socket: &Path,
        problem: &Problem,
        refs: &[String],
    ) -> Result<Started> {
        let built = self.prefixes(socket, problem, refs).await;
        let chosen: Vec<Option<&Built>> = (0..problem.images.len())
            .map(|i| prefix::longest(problem, i, &built))
            .collect();
        Ok(prefix::start_from(problem, &chosen)?)
    }

    /// Every built chain whose steps are all steps of the problem, under a
    /// base the problem names.
    async fn prefixes(&self, socket: &Path, problem: &Problem, refs: &[String]) -> Vec<Built> {
        let mut bases: HashMap<String, String> = HashMap::new();
        for (im, reference) in problem.images.iter().zip(refs) {
            if reference.is_empty() || bases.values().any(|b| *b == im.base) {
                continue;
            }
            let path = format!("/images/{reference}/json");
            if let Ok(v) = get_json(socket, &path).await {
                if let Some(id) = v["Id"].as_str() {
                    bases.insert(id.to_owned(), im.base.clone());
                }
            }
        }
        let by_id: HashMap<&str, &Entry> =
            self.entries.iter().map(|e| (e.id.as_str(), e)).collect();
        let step_of = |e: &Entry| {
            problem
                .steps
                .iter()
                .position(|s| matches(&s.command, &e.description))
        };
        self.entries
            .iter()
            .filter_map(|e| {
                let mut steps = Vec::new();
                let mut at = e;
                loop {
                    steps.push(step_of(at)?);
                    match by_id.get(at.parent.as_str()) {
                        Some(p) if !at.parent.is_empty() => at = p,
                        _ => break,
                    }
                }
                steps.reverse();
                Some(Built {
                    id: e.id.clone(),
                    base: bases.get(&at.parent_image)?.clone(),
                    steps,
                })
            })
            .collect()
    }
}

/// Whether a history line records `command`: a spec's command (`make`),
/// or an instruction as a Dockerfile writes it (`RUN make`, `ENV A=1`).
fn matches(command: &str, description: &str) -> bool {
    let command = command.trim();
    let run = command
        .get(..4)
        .filter(|k| k.eq_ignore_ascii_case("RUN "))
        .map(|_| command[4..].trim_start());
    let shell = run.unwrap_or(command);
    let exec_form = serde_json::from_str::<Vec<String>>(shell)
        .ok()
        .map(|words| words.join(" "));
    if exec_form.as_deref() == Some(description) || description == shell {
        return true;
    }
    let sh = format!("/bin/sh -c {shell}");
    if description == sh || (description.starts_with('|') && description.ends_with(&sh)) {
        return true;
    }
    // Instructions with no layer: `/bin/sh -c #(nop)  ENV A=1`.
    description
        .split_once("#(nop)")
        .is_some_and(|(_, rest)| rest.trim_start() == command)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_match_their_history_lines() {
        assert!(matches("make", "/bin/sh -c make"));
        assert!(matches("RUN make", "/bin/sh -c make"));
        assert!(matches("run  make", "/bin/sh -c make"));
        assert!(matches("RUN make", "|1 V=2 /bin/sh -c make"));
        assert!(matches("RUN [\"make\", \"all\"]", "make all"));
        assert!(matches("ENV A=1", "/bin/sh -c #(nop)  ENV A=1"));
        assert!(!matches("RUN make", "/bin/sh -c make all"));
        assert!(!matches("make", "/bin/sh -c #(nop)  LABEL x=make"));
    }
}
