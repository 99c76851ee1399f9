//! `berth plan`: the planner from the command line, on the build-plan
//! benchmark's format and berth's, human and JSON, and bad specs.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::process::Command;

fn berth(args: &[&str]) -> std::process::Output {
    // No daemon: unknown costs stay 1 whatever runs on this machine.
    Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(args)
        .env("BERTH_HOST", "unix:///nonexistent/berth.sock")
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

fn ok(args: &[&str]) -> String {
    let out = berth(args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

const YAML: &str = "\
# a family in YAML
base: debian:12
steps:
  update: {run: apt-get update, cost: 30}
  curl:
    run: apt-get install -y curl
    cost: 5
    after: [update]
  jq: {run: apt-get install -y jq, cost: 4, after: [update]}
images:
  web: [curl, update]
  tools:
    base: debian:12
    steps: [update, jq, curl]
";

#[test]
fn reads_yaml_specs_and_says_where_they_are_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("family.yaml");
    std::fs::write(&spec, YAML).unwrap();
    let v: serde_json::Value =
        serde_json::from_str(&ok(&["plan", "--json", spec.to_str().unwrap()])).unwrap();
    assert_eq!(v["cost"], 39.0);
    assert_eq!(v["orders"]["web"], serde_json::json!(["update", "curl"]));
    std::fs::write(&spec, "steps: {a: {cost: [1]}}\nimages: {x: [a]}\n").unwrap();
    let out = berth(&["plan", spec.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(r#"step "a": cost must be a number"#), "{err}");
    std::fs::write(&spec, "steps: [unclosed\n").unwrap();
    let err =
        String::from_utf8_lossy(&berth(&["plan", spec.to_str().unwrap()]).stderr).into_owned();
    assert!(err.contains("YAML"), "{err}");
}

/// A family of three Dockerfiles in their own directories.
fn family(dir: &std::path::Path) -> Vec<String> {
    let files = [
        ("api", "FROM busybox:test\nENV APP=api\n# berth: reorderable\nRUN echo a > /a\nRUN echo b > /b\nRUN echo api > /api\nCMD [\"sh\"]\n"),
        ("worker", "FROM busybox:test\nENV APP=api\n# berth: reorderable\nRUN echo worker > /worker\nRUN echo b > /b\nRUN echo a > /a\nCMD [\"sh\"]\n"),
        ("lone", "FROM busybox:test\nENV APP=lone\nRUN echo b > /b\nRUN echo a > /a\n"),
    ];
    files
        .iter()
        .map(|(name, text)| {
            let d = dir.join(name);
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join("Dockerfile"), text).unwrap();
            d.join("Dockerfile").to_string_lossy().into_owned()
        })
        .collect()
}

#[test]
fn plans_a_family_of_dockerfiles_and_writes_it_back() {
    let dir = tempfile::tempdir().unwrap();
    let files = family(dir.path());
    let mut args = vec!["plan", "--json"];
    for f in &files {
        args.extend(["-f", f.as_str()]);
    }
    let v: serde_json::Value = serde_json::from_str(&ok(&args)).unwrap();
    // api and worker share ENV (0) and a, b (1 each); then one RUN each;
    // lone keeps its order (unmarked): 2.
    assert_eq!(v["cost"], 6.0);
    assert_eq!(v["optimal"], true);
    let api = v["dockerfiles"]["api"].as_str().unwrap();
    let worker = v["dockerfiles"]["worker"].as_str().unwrap();
    let runs = |t: &str| {
        t.lines()
            .filter(|l| l.starts_with("RUN"))
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    assert_eq!(runs(api)[..2], runs(worker)[..2]);
    assert_eq!(runs(api)[2], "RUN echo api > /api");
    assert!(
        api.starts_with("FROM busybox:test\nENV APP=api\n# berth: reorderable\nRUN"),
        "{api}"
    );
    assert!(api.ends_with("CMD [\"sh\"]\n"), "{api}");
    let lone = std::fs::read_to_string(&files[2]).unwrap();
    assert_eq!(v["dockerfiles"]["lone"], lone.as_str());
    // All reorderable: lone shares nothing still (its ENV differs).
    args.push("--assume-reorderable");
    let v: serde_json::Value = serde_json::from_str(&ok(&args)).unwrap();
    assert_eq!(v["cost"], 6.0);
    // The human summary shows the files.
    let text = ok(&["plan", "-f", &files[0], "-f", &files[1]]);
    assert!(text.contains("# worker\nFROM busybox:test\n"), "{text}");
}

#[test]
fn writes_a_dockerfile_per_shared_node_and_per_image() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("family.yaml");
    // web ends inside tools' path; curl and jq branch after update.
    std::fs::write(
        &spec,
        YAML.replace(
            "  web: [curl, update]",
            "  web: [curl, update]\n  jq: [update, jq]",
        ),
    )
    .unwrap();
    let out = dir.path().join("out");
    ok(&[
        "plan",
        spec.to_str().unwrap(),
        "--dockerfiles",
        out.to_str().unwrap(),
    ]);
    let read = |f: &str| std::fs::read_to_string(out.join(f)).unwrap();
    assert_eq!(
        read("00.Dockerfile"),
        "FROM debian:12\nRUN apt-get update\n"
    );
    let mut children = [
        read("01.Dockerfile"),
        read("02.Dockerfile"),
        read("03.Dockerfile"),
    ];
    children.sort();
    assert_eq!(
        children,
        [
            "FROM berth-plan:node-00\nRUN apt-get install -y curl\n",
            "FROM berth-plan:node-00\nRUN apt-get install -y jq\n",
            "FROM web\nRUN apt-get install -y jq\n",
        ]
    );
    let script = read("build.sh");
    assert!(
        script.contains("\"$DOCKER\" build -t 'berth-plan:node-00' -f 00.Dockerfile .\n"),
        "{script}"
    );
    for image in ["web", "tools", "jq"] {
        assert!(script.contains(&format!("-t '{image}' -f 0")), "{script}");
    }
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(out.join("build.sh"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o111, 0o111);
}

#[test]
fn refuses_both_inputs_or_none() {
    let out = berth(&["plan", "spec.json", "-f", "Dockerfile"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not both"));
    let out = berth(&["plan"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("nothing to plan"));
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("Dockerfile");
    std::fs::write(&f, "FROM a AS one\nRUN x\nFROM one\n").unwrap();
    let out = berth(&["plan", "-f", f.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("only single-stage Dockerfiles are planned"),
        "{err}"
    );
}
