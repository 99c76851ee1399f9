//! Privileged: `berth plan` with the daemon — a planned family built
//! (each shared prefix once, every image tagged and runnable), step costs
//! from the build cache's recorded durations, and `--cached` starting a
//! new image from the longest prefix the cache holds.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use common::daemon::Daemon;

fn json(d: &Daemon, args: &[&str]) -> serde_json::Value {
    serde_json::from_str(&d.berth_ok(args)).unwrap()
}

/// The build cache's entries.
fn cache_entries(d: &Daemon) -> Vec<serde_json::Value> {
    let (_, _, body) = d.http("GET", "/system/df");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    v["BuildCache"].as_array().unwrap().clone()
}

/// A directory per image under `root`: its Dockerfile, and a file
/// `data` holding the image's name; the Dockerfiles' paths.
fn family_dirs(root: &std::path::Path, data: &str, files: &[(&str, String)]) -> Vec<String> {
    files
        .iter()
        .map(|(name, text)| {
            let dir = root.join(name);
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join(data), name).unwrap();
            std::fs::write(dir.join("Dockerfile"), text).unwrap();
            dir.join("Dockerfile").to_string_lossy().into_owned()
        })
        .collect()
}

const FAMILY: &str = r#"{"base": "busybox:test",
  "steps": {"x": {"run": "echo x > /x", "cost": 5},
            "y": {"run": "echo y > /y", "cost": 5},
            "z": {"run": "echo z > /z", "cost": 1},
            "w": {"run": "echo w > /w", "cost": 1}},
  "images": {"fam-a": ["z", "x", "y"], "fam-b": ["x", "y", "w"]}}"#;

#[test]
fn a_planned_family_is_built_sharing_its_prefixes() {
    common::require_root();
    let d = Daemon::start();
    d.import_busybox();
    let spec = d.dir.path().join("family.json");
    std::fs::write(&spec, FAMILY).unwrap();
    let out = d.berth_ok(&["plan", "--build", spec.to_str().unwrap()]);
    assert!(out.contains("cost:           12 (proven optimal)"), "{out}");
    // x and y once (shared), then z and w: four steps built, the second
    // image's shared ones from the cache.
    assert_eq!(cache_entries(&d).len(), 4, "{out}");
    assert_eq!(out.matches("Using cache").count(), 2, "{out}");
    let a = d.ok(&["run", "--rm", "fam-a", "cat", "/x", "/y", "/z"]);
    assert_eq!(a, "x\ny\nz\n");
    let b = d.ok(&["run", "--rm", "fam-b", "cat", "/x", "/y", "/w"]);
    assert_eq!(b, "x\ny\nw\n");
    assert!(d
        .fails(&["run", "--rm", "fam-b", "cat", "/z"])
        .contains("No such file"));
    // The two images share their first two layers.
    let layers = |image: &str| -> Vec<String> {
        serde_json::from_str(&d.ok(&["image", "inspect", "-f", "{{json .RootFS.Layers}}", image]))
            .unwrap()
    };
    let (la, lb) = (layers("fam-a"), layers("fam-b"));
    assert_eq!(la[..la.len() - 1], lb[..lb.len() - 1]);
    assert_ne!(la.last(), lb.last());

    // --cached: a new image needing x, y and w starts from the built
    // x, y (w is built for fam-b, after x, y: all three are built).
    let more = d.dir.path().join("more.json");
    std::fs::write(
        &more,
        FAMILY.replace(
            r#""fam-b": ["x", "y", "w"]}"#,
            r#""fam-b": ["x", "y", "w"], "fam-c": ["w", "y", "z"]}"#,
        ),
    )
    .unwrap();
    let v = json(&d, &["plan", "--json", "--cached", more.to_str().unwrap()]);
    assert_eq!(v["built"]["fam-a"], 3);
    assert_eq!(v["built"]["fam-b"], 3);
    // fam-c: y is built (under x only): nothing fits, it builds all.
    assert_eq!(v["built"]["fam-c"], 0);
    assert_eq!(v["cost"], 7.0, "{v}");
    let fam_c: Vec<&str> = v["orders"]["fam-c"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    assert_eq!(fam_c.len(), 3);
}

#[test]
fn unknown_costs_come_from_the_durations_the_cache_recorded() {
    common::require_root();
    let d = Daemon::start();
    d.import_busybox();
    let spec = d.dir.path().join("slow.yaml");
    std::fs::write(
        &spec,
        "base: busybox:test\nsteps:\n  slow: {run: sleep 1}\n  quick: {run: echo hi}\nimages:\n  slow-one: [slow]\n  quick-one: [quick]\n",
    )
    .unwrap();
    // Nothing recorded yet: 1 each.
    let v = json(&d, &["plan", "--json", spec.to_str().unwrap()]);
    assert_eq!(v["cost"], 2.0);
    d.berth_ok(&["plan", "--build", spec.to_str().unwrap()]);
    let entries = cache_entries(&d);
    let slow = entries
        .iter()
        .find(|e| e["Description"] == "/bin/sh -c sleep 1")
        .unwrap();
    assert!(slow["DurationMs"].as_u64().unwrap() >= 1000, "{slow}");
    assert_eq!(slow["Parent"], "");
    let v = json(&d, &["plan", "--json", spec.to_str().unwrap()]);
    let cost = v["cost"].as_f64().unwrap();
    let recorded: f64 = entries
        .iter()
        .map(|e| e["DurationMs"].as_u64().unwrap() as f64 / 1000.0)
        .sum();
    assert!((cost - recorded).abs() < 1e-9, "{cost} {recorded}: {v}");
    assert!(cost > 1.0, "{v}");
}

#[test]
fn a_family_of_dockerfiles_is_built_in_its_planned_order() {
    common::require_root();
    let d = Daemon::start();
    d.import_busybox();
    let runs = [
        (
            "api",
            "RUN echo a > /a\nRUN echo b > /b\nRUN echo api > /api\n",
        ),
        (
            "worker",
            "RUN echo worker > /worker\nRUN echo b > /b\nRUN echo a > /a\n",
        ),
    ];
    let texts: Vec<(&str, String)> = runs
        .iter()
        .map(|(name, runs)| {
            let text = format!(
                "FROM busybox:test\nENV APP=x\n# berth: reorderable\n{runs}COPY app.txt /app.txt\n"
            );
            (*name, text)
        })
        .collect();
    let files = family_dirs(&d.dir.path().join("family"), "app.txt", &texts);
    let out = d.berth_ok(&["plan", "--build", "-f", &files[0], "-f", &files[1]]);
    assert!(out.contains("Using cache"), "{out}");
    assert_eq!(
        d.ok(&["run", "--rm", "api", "cat", "/a", "/b", "/api", "/app.txt"]),
        "a\nb\napi\napi"
    );
    assert_eq!(
        d.ok(&["run", "--rm", "worker", "cat", "/a", "/b", "/worker", "/app.txt"]),
        "a\nb\nworker\nworker"
    );
    // ENV (no layer), a, b shared; then one RUN and a COPY each.
    let runs = cache_entries(&d)
        .iter()
        .filter(|e| {
            e["Description"]
                .as_str()
                .unwrap()
                .starts_with("/bin/sh -c echo")
        })
        .count();
    assert_eq!(runs, 4);
}

#[test]
fn the_written_dockerfiles_build_with_the_docker_cli() {
    common::require_root();
    let d = Daemon::start();
    d.import_busybox();
    let texts: Vec<(&str, String)> = ["one", "two"]
        .iter()
        .map(|name| {
            let text = format!(
                "FROM busybox:test\nARG GREETING=hello\n# berth: reorderable\nRUN echo $GREETING > /g\nRUN echo {name} > /n\nCOPY me.txt /me.txt\n"
            );
            (*name, text)
        })
        .collect();
    let files = family_dirs(&d.dir.path().join("family"), "me.txt", &texts);
    let out = d.dir.path().join("planned");
    d.berth_ok(&[
        "plan",
        "-f",
        &files[0],
        "-f",
        &files[1],
        "--dockerfiles",
        out.to_str().unwrap(),
    ]);
    // The ARG and the first RUN are shared (a node); each image's own
    // file starts from it and declares the ARG again.
    let node = std::fs::read_to_string(out.join("00.Dockerfile")).unwrap();
    assert_eq!(
        node,
        "FROM busybox:test\nARG GREETING=hello\nRUN echo $GREETING > /g\n"
    );
    let one = std::fs::read_to_string(out.join("01.Dockerfile")).unwrap();
    assert!(
        one.starts_with("FROM berth-plan:node-00\nARG GREETING=hello\nRUN echo"),
        "{one}"
    );
    let built = d
        .command("sh", &[out.join("build.sh").to_str().unwrap()])
        .env("DOCKER_BUILDKIT", "0")
        .output()
        .unwrap();
    assert!(
        built.status.success(),
        "{}",
        String::from_utf8_lossy(&built.stderr)
    );
    for name in ["one", "two"] {
        let got = d.ok(&["run", "--rm", name, "cat", "/g", "/n", "/me.txt"]);
        assert_eq!(got, format!("hello\n{name}\n{name}"));
    }
    // The node image is shared: both images' layers start with its own.
    let layers = |image: &str| d.ok(&["image", "inspect", "-f", "{{json .RootFS.Layers}}", image]);
    let node_layers: Vec<String> = serde_json::from_str(&layers("berth-plan:node-00")).unwrap();
    for name in ["one", "two"] {
        let l: Vec<String> = serde_json::from_str(&layers(name)).unwrap();
        assert_eq!(l[..node_layers.len()], node_layers[..]);
    }
}
