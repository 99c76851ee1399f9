//! Privileged: `berth daemon` under load and under kill -9 — fifty
//! containers started at once (all run, all listed, nothing left after
//! removal), and a daemon killed in the middle of creates and removals
//! (the next one starts consistent: no orphan files, no stale image hold).

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use common::daemon::Daemon;

/// Cgroup directories of container `id` under any v1 controller.
fn cgroups_of(id: &str) -> Vec<std::path::PathBuf> {
    std::fs::read_dir("/sys/fs/cgroup")
        .unwrap()
        .flatten()
        .map(|c| c.path().join("berth").join(id))
        .filter(|p| p.exists())
        .collect()
}

/// Processes whose command line names container `id` (its shim).
fn shims_of(id: &str) -> usize {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|p| std::fs::read(p.path().join("cmdline")).ok())
        .filter(|c| {
            let line = String::from_utf8_lossy(c).replace('\0', " ");
            line.contains("shim") && line.contains(id)
        })
        .count()
}

#[test]
fn fifty_containers_started_at_once_all_run_and_leave_nothing() {
    let d = Arc::new(Daemon::start());
    d.import_busybox();
    let started: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..50)
            .map(|i| {
                let d = d.clone();
                s.spawn(move || {
                    let name = format!("many-{i}");
                    d.ok(&[
                        "run",
                        "-d",
                        "--name",
                        &name,
                        "busybox:test",
                        "sleep",
                        "1000",
                    ])
                    .trim()
                    .to_owned()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let listed = d.ok(&["ps", "-q", "--no-trunc"]);
    let mut listed: Vec<&str> = listed.lines().collect();
    listed.sort_unstable();
    let mut expected: Vec<&str> = started.iter().map(String::as_str).collect();
    expected.sort_unstable();
    assert_eq!(listed, expected, "all 50 run and are listed");
    for id in &started {
        assert!(!cgroups_of(id).is_empty(), "{id} has its cgroup");
    }
    assert_eq!(d.mounts_under(), 50, "one root filesystem each");
    std::thread::scope(|s| {
        for id in &started {
            let d = d.clone();
            s.spawn(move || d.ok(&["rm", "-f", id]));
        }
    });
    assert_eq!(d.ok(&["ps", "-aq"]), "");
    assert_eq!(d.mounts_under(), 0, "no mount left");
    for id in &started {
        assert!(cgroups_of(id).is_empty(), "cgroup of {id} left");
        assert_eq!(shims_of(id), 0, "shim of {id} left");
    }
    let containers = d.dir.path().join("data/containers");
    assert_eq!(std::fs::read_dir(containers).unwrap().count(), 0);
}

#[test]
fn a_daemon_killed_during_creates_and_removals_restarts_consistent() {
    let mut d = Daemon::start();
    d.import_busybox();
    let done = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let socket = d.socket();
    let churn = {
        let (done, stop) = (done.clone(), stop.clone());
        std::thread::spawn(move || {
            let http = |method: &str, path: &str, body: &str| {
                common::daemon::http_at(&socket, method, path, body)
            };
            while !stop.load(Ordering::Relaxed) {
                let Some((status, _, body)) = http(
                    "POST",
                    "/containers/create",
                    r#"{"Image":"busybox:test","Cmd":["sleep","1000"]}"#,
                ) else {
                    return;
                };
                if !status.contains("201") {
                    return;
                }
                let v: serde_json::Value = serde_json::from_str(&body).unwrap();
                let id = v["Id"].as_str().unwrap().to_owned();
                if http("POST", &format!("/containers/{id}/start"), "").is_none()
                    || http("DELETE", &format!("/containers/{id}?force=1"), "").is_none()
                {
                    return;
                }
                done.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    // Kill once the churn is well under way: wherever it is then, the
    // next daemon must make sense of it.
    while done.load(Ordering::Relaxed) < 5 {
        std::thread::yield_now();
    }
    d.kill9();
    stop.store(true, Ordering::Relaxed);
    churn.join().unwrap();
    // The kill may land anywhere; make sure both windows it can leave
    // half-done are there: files of a create not yet recorded, and the
    // image hold of a container whose record a removal already deleted.
    let orphan = "0".repeat(64);
    std::fs::create_dir_all(
        d.dir
            .path()
            .join("data/containers")
            .join(&orphan)
            .join("upper"),
    )
    .unwrap();
    let stale = "f".repeat(64);
    let db = rusqlite::Connection::open(d.dir.path().join("data/berth.db")).unwrap();
    let image_id: String = db
        .query_row("SELECT id FROM images LIMIT 1", [], |r| r.get(0))
        .unwrap();
    db.execute(
        "INSERT INTO holds (holder, kind, target) VALUES (?1, 'image', ?2)",
        [&stale, &image_id],
    )
    .unwrap();
    drop(db);
    d.restart();
    let containers = d.dir.path().join("data/containers");
    let listed = d.ok(&["ps", "-aq", "--no-trunc"]);
    let mut dirs: Vec<String> = std::fs::read_dir(&containers)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    dirs.sort_unstable();
    let mut records: Vec<String> = listed.lines().map(str::to_owned).collect();
    records.sort_unstable();
    assert_eq!(
        dirs, records,
        "every record has its files, no files lack a record"
    );
    for id in &records {
        d.ok(&["rm", "-f", id]);
    }
    // No stale hold: the image can go once its containers are gone.
    d.ok(&["rmi", "busybox:test"]);
    assert_eq!(d.mounts_under(), 0);
    assert_eq!(std::fs::read_dir(&containers).unwrap().count(), 0);
}
