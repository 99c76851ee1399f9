//! Privileged: system-wide endpoints through `berth daemon` — `system df`
//! with every row (images with their shared size, containers, volumes,
//! build cache), `system prune` (with `--volumes` and `-a`), and the
//! endpoints of what berth does not run (swarm, plugins) answering as a
//! Docker daemon outside a swarm with no plugins does.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use common::daemon::Daemon;

#[test]
fn system_df_counts_every_kind() {
    let d = Daemon::start();
    d.import_busybox();
    d.ok(&["tag", "busybox:test", "busybox:other"]);
    d.ok(&[
        "run",
        "-d",
        "--name",
        "up",
        "-v",
        "used:/u",
        "busybox:test",
        "sh",
        "-c",
        "echo 12345 > /u/f; sleep 1000",
    ]);
    d.ok(&[
        "run",
        "--name",
        "down",
        "busybox:test",
        "sh",
        "-c",
        "echo 1234567 > /file",
    ]);
    d.ok(&["volume", "create", "spare"]);
    while !d.ok(&["exec", "up", "cat", "/u/f"]).contains("12345") {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let (status, _, body) = d.http("GET", "/system/df");
    assert!(status.contains("200"), "{status}");
    let df: serde_json::Value = serde_json::from_str(&body).unwrap();
    let vols = df["Volumes"].as_array().unwrap();
    let used = vols.iter().find(|v| v["Name"] == "used").unwrap();
    assert_eq!(
        used["UsageData"],
        serde_json::json!({ "Size": 6, "RefCount": 1 })
    );
    let images = df["Images"].as_array().unwrap();
    assert_eq!(images[0]["SharedSize"], 0, "one image shares nothing");
    // A commit shares the base layer: both images count it as shared.
    d.ok(&["commit", "down", "derived:1"]);
    let (_, _, body) = d.http("GET", "/system/df");
    let df: serde_json::Value = serde_json::from_str(&body).unwrap();
    let base = df["LayersSize"].as_i64().unwrap() - 7;
    for i in df["Images"].as_array().unwrap() {
        assert!(i["SharedSize"].as_i64().unwrap() >= base - 4096, "{i}");
    }
    let table = d.ok(&[
        "system",
        "df",
        "--format",
        "{{.Type}} {{.TotalCount}} {{.Active}}",
    ]);
    assert_eq!(
        table,
        "Images 2 1\nContainers 2 1\nLocal Volumes 2 1\nBuild Cache 0 0\n"
    );
    let berth = d.berth_ok(&[
        "system",
        "df",
        "--format",
        "{{.Type}} {{.TotalCount}} {{.Active}}",
    ]);
    assert_eq!(berth, table);
}

#[test]
fn system_prune_removes_what_nothing_uses() {
    let d = Daemon::start();
    d.import_busybox();
    d.ok(&[
        "run",
        "-d",
        "--name",
        "keep",
        "-v",
        "kept:/k",
        "busybox:test",
        "sleep",
        "1000",
    ]);
    d.ok(&["run", "--name", "gone", "busybox:test", "true"]);
    d.ok(&["volume", "create", "spare"]);
    // Filters berth cannot apply everywhere are refused before anything goes.
    let refused = d.berth(&["system", "prune", "-f", "--filter", "label=x"]);
    assert!(!refused.status.success());
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.contains("takes no --filter yet"), "{err}");
    assert!(d
        .ok(&["ps", "-a", "--format", "{{.Names}}"])
        .contains("gone"));
    let refused = d.berth(&["builder", "prune", "-f", "--filter", "until=1h"]);
    assert!(String::from_utf8_lossy(&refused.stderr).contains("takes no --filter yet"));
    // Image prune passes its filters to the daemon, which judges them.
    d.berth_ok(&["image", "prune", "-f", "--filter", "dangling=true"]);
    let refused = d.berth(&["image", "prune", "-f", "--filter", "label=x"]);
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success() && err.contains("label"), "{err}");
    let out = d.ok(&["system", "prune", "-f"]);
    assert!(out.contains("Deleted Containers:"), "{out}");
    assert_eq!(d.ok(&["ps", "-a", "--format", "{{.Names}}"]), "keep\n");
    assert_eq!(
        d.ok(&["volume", "ls", "-q"]).lines().count(),
        2,
        "volumes stay without --volumes"
    );
    d.berth_ok(&["system", "prune", "-f", "--volumes"]);
    assert_eq!(d.ok(&["volume", "ls", "-q"]), "kept\n");
    d.ok(&["rm", "-f", "keep"]);
    let out = d.berth_ok(&["system", "prune", "-af"]);
    assert!(out.contains("Deleted Images:"), "{out}");
    assert_eq!(d.ok(&["images", "-q"]), "");
}

#[test]
fn swarm_and_plugins_answer_as_an_ordinary_docker_daemon() {
    let d = Daemon::start();
    let err = d.fails(&["swarm", "leave"]);
    assert!(err.contains("This node is not part of a swarm"), "{err}");
    let err = d.fails(&["node", "ls"]);
    assert!(err.contains("This node is not a swarm manager"), "{err}");
    let (status, _, _) = d.http("GET", "/services");
    assert!(status.contains("503"), "{status}");
    assert_eq!(d.ok(&["plugin", "ls", "--format", "{{.Name}}"]), "");
    let (status, _, body) = d.http("GET", "/plugins/nope/json");
    assert!(
        status.contains("404") && body.contains("not found"),
        "{status} {body}"
    );
    let (status, _, body) = d.http_json("POST", "/networks/prune", "");
    assert!(
        status.contains("200") && body.contains("NetworksDeleted"),
        "{status} {body}"
    );
}
