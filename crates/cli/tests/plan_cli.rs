//! `berth plan`: the planner from the command line, on the build-plan
//! benchmark's format and berth's, human and JSON, and bad specs.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::process::Command;

fn berth(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(args)
        .output()
        .unwrap()
}

fn benchmark(name: &str) -> String {
    format!(
        "{}/../plan/tests/instances/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    )
}

#[test]
fn plans_the_benchmark_format_as_json() {
    let out = berth(&["plan", "--json", &benchmark("005images-025cmds")]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["cost"], 1051.0);
    assert_eq!(v["optimal"], true);
    assert_eq!(v["lower_bound"], 1051.0);
    assert_eq!(v["no_sharing"], 1369.0);
    let orders = v["orders"].as_object().unwrap();
    assert_eq!(orders.len(), 5);
    // Image 4 needs 01 16 21 22; the tree ends it somewhere.
    let mut four: Vec<&str> = orders["4"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    four.sort_unstable();
    assert_eq!(four, ["01", "16", "21", "22"]);
    let tree = v["tree"].as_array().unwrap();
    let ends: usize = tree
        .iter()
        .map(|n| n["images"].as_array().unwrap().len())
        .sum();
    assert_eq!(ends, 5, "every image ends at one node");
}

#[test]
fn prints_a_summary_and_refuses_bad_specs() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("family.json");
    std::fs::write(
        &spec,
        r#"{"base": "debian:12",
            "steps": {"update": {"run": "apt-get update", "cost": 30},
                      "curl": {"run": "apt-get install -y curl", "cost": 5, "after": ["update"]},
                      "jq": {"run": "apt-get install -y jq", "cost": 4, "after": ["update"]}},
            "images": {"web": ["curl", "update"], "tools": ["update", "jq", "curl"]}}"#,
    )
    .unwrap();
    let out = berth(&["plan", spec.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("cost:           39 (proven optimal)"),
        "{text}"
    );
    assert!(text.contains("no sharing:     74"), "{text}");
    assert!(
        text.contains("as written:     (breaks the precedence)"),
        "{text}"
    );
    assert!(text.contains("web: update curl"), "{text}");
    assert!(text.contains("tools: update curl jq"), "{text}");
    std::fs::write(
        &spec,
        r#"{"commands": {"a": 1}, "images": {"x": ["a", "zz"]}}"#,
    )
    .unwrap();
    let out = berth(&["plan", spec.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(r#"image "x" needs step "zz", which is not defined"#),
        "{err}"
    );
}
