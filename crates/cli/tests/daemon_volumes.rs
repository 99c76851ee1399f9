//! Privileged: volumes through `berth daemon`, judged by the docker CLI,
//! the berth CLI and the raw API — create/ls/inspect/rm/prune with labels
//! and filters, `-v name:/path`, `-v /path`, `--mount`, the image's
//! `VOLUME`s as anonymous volumes (gone with `rm -v` and `--rm`), a new
//! volume filled from the image's files, data that outlives containers
//! and a daemon killed with SIGKILL, and Docker's errors.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use common::daemon::Daemon;

fn names(d: &Daemon, args: &[&str]) -> Vec<String> {
    let mut all = vec!["volume", "ls", "-q"];
    all.extend(args);
    d.ok(&all).lines().map(str::to_owned).collect()
}

/// `busybox:vol`: busybox with `VOLUME /vol` holding a file.
fn image_with_volume(d: &Daemon) {
    let ctx = tempfile::tempdir().unwrap();
    std::fs::write(
        ctx.path().join("Dockerfile"),
        "FROM busybox:test\nRUN mkdir /vol && echo seeded > /vol/s\nVOLUME /vol\n",
    )
    .unwrap();
    let out = d
        .command(
            "docker",
            &[
                "build",
                "-q",
                "-t",
                "busybox:vol",
                &ctx.path().display().to_string(),
            ],
        )
        .env("DOCKER_BUILDKIT", "0")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn volumes_are_managed_as_under_docker() {
    let d = Daemon::start();
    d.import_busybox();
    assert_eq!(
        d.ok(&["volume", "create", "--label", "tier=db", "data"]),
        "data\n"
    );
    d.ok(&["volume", "create", "other"]);
    assert_eq!(names(&d, &[]), ["data", "other"]);
    assert_eq!(names(&d, &["-f", "label=tier=db"]), ["data"]);
    assert_eq!(names(&d, &["-f", "name=oth"]), ["other"]);
    let inspect: serde_json::Value =
        serde_json::from_str(&d.ok(&["volume", "inspect", "data"])).unwrap();
    assert_eq!(inspect[0]["Driver"], "local");
    assert_eq!(inspect[0]["Labels"]["tier"], "db");
    let mountpoint = inspect[0]["Mountpoint"].as_str().unwrap().to_owned();
    assert!(mountpoint.ends_with("/volumes/data/_data"), "{mountpoint}");
    // In use: Docker's conflict, with or without force.
    d.ok(&[
        "run",
        "-d",
        "--name",
        "user",
        "-v",
        "data:/data",
        "busybox:test",
        "sleep",
        "1000",
    ]);
    assert_eq!(names(&d, &["-f", "dangling=true"]), ["other"]);
    for args in [
        &["volume", "rm", "data"][..],
        &["volume", "rm", "-f", "data"],
    ] {
        let err = d.fails(args);
        assert!(err.contains("volume is in use"), "{err}");
    }
    let err = d.fails(&["volume", "inspect", "nope"]);
    assert!(err.contains("no such volume"), "{err}");
    let err = d.fails(&["volume", "create", "bad/name"]);
    assert!(err.contains("invalid characters"), "{err}");
    let err = d.fails(&["volume", "create", "-d", "nfs", "x1"]);
    assert!(err.contains("plugin \"nfs\" not found"), "{err}");
    // Malformed or unknown filters: Docker's 400.
    let (status, _, body) = d.http("GET", "/volumes?filters=%7Bnot-json");
    assert!(status.contains("400"), "{status} {body}");
    let err = d.fails(&["volume", "ls", "-f", "bogus=1"]);
    assert!(err.contains("bogus"), "{err}");
    let err = d.fails(&["container", "prune", "-f", "--filter", "bogus=1"]);
    assert!(err.contains("bogus"), "{err}");
    // Prune takes only what no container uses.
    let pruned = d.ok(&["volume", "prune", "-f"]);
    assert!(
        pruned.contains("other") && !pruned.contains("data"),
        "{pruned}"
    );
    d.ok(&["rm", "-f", "user"]);
    d.ok(&["volume", "rm", "data"]);
    assert!(names(&d, &[]).is_empty());
    assert!(!std::path::Path::new(&mountpoint).exists());
}

#[test]
fn data_outlives_containers_and_a_killed_daemon() {
    let mut d = Daemon::start();
    d.import_busybox();
    d.ok(&[
        "run",
        "--rm",
        "-v",
        "keep:/data",
        "busybox:test",
        "sh",
        "-c",
        "echo kept > /data/f",
    ]);
    assert_eq!(
        d.ok(&[
            "run",
            "--rm",
            "-v",
            "keep:/data",
            "busybox:test",
            "cat",
            "/data/f"
        ]),
        "kept\n"
    );
    d.ok(&[
        "run",
        "-d",
        "--name",
        "holder",
        "-v",
        "keep:/data",
        "busybox:test",
        "sleep",
        "1000",
    ]);
    d.kill9();
    d.restart();
    assert_eq!(names(&d, &[]), ["keep"]);
    let err = d.fails(&["volume", "rm", "keep"]);
    assert!(
        err.contains("in use"),
        "the use survived the restart: {err}"
    );
    assert_eq!(d.ok(&["exec", "holder", "cat", "/data/f"]), "kept\n");
    d.ok(&["rm", "-f", "holder"]);
    d.ok(&["volume", "rm", "keep"]);
}

#[test]
fn new_volumes_are_filled_from_the_image_once() {
    let d = Daemon::start();
    d.import_busybox();
    // The image's /etc goes into the new volume, owner and mode included.
    let out = d.ok(&[
        "run",
        "--rm",
        "-v",
        "etc:/etc",
        "busybox:test",
        "sh",
        "-c",
        "cat /etc/passwd; echo mine > /etc/mine",
    ]);
    assert_eq!(out, "root:x:0:0:root:/root:/bin/sh\n");
    // Not empty any more: nothing is copied over what it holds.
    let out = d.ok(&[
        "run",
        "--rm",
        "-v",
        "etc:/etc",
        "busybox:test",
        "ls",
        "/etc",
    ]);
    assert_eq!(out, "group\nmine\npasswd\n");
    // nocopy: left empty.
    let out = d.ok(&[
        "run",
        "--rm",
        "-v",
        "bare:/etc:nocopy",
        "busybox:test",
        "ls",
        "-A",
        "/etc",
    ]);
    assert_eq!(out, "");
    let out = d.ok(&[
        "run",
        "--rm",
        "--mount",
        "type=volume,src=bare2,dst=/etc,volume-nocopy",
        "busybox:test",
        "ls",
        "-A",
        "/etc",
    ]);
    assert_eq!(out, "");
}

#[test]
fn anonymous_volumes_come_from_v_paths_and_image_volumes() {
    let d = Daemon::start();
    d.import_busybox();
    image_with_volume(&d);
    // The image's VOLUME: an anonymous volume holding the image's file.
    d.ok(&[
        "run",
        "--name",
        "va",
        "busybox:vol",
        "sh",
        "-c",
        "cat /vol/s; echo more > /vol/m",
    ]);
    let mounts: serde_json::Value =
        serde_json::from_str(&d.ok(&["inspect", "-f", "{{json .Mounts}}", "va"])).unwrap();
    assert_eq!(mounts[0]["Type"], "volume");
    assert_eq!(mounts[0]["Destination"], "/vol");
    let anon = mounts[0]["Name"].as_str().unwrap().to_owned();
    assert_eq!(anon.len(), 64);
    assert_eq!(names(&d, &[]), std::slice::from_ref(&anon));
    let labels = d.ok(&["volume", "inspect", "-f", "{{json .Labels}}", &anon]);
    assert!(labels.contains("com.docker.volume.anonymous"), "{labels}");
    // rm without -v keeps it; rm -v of another takes its own.
    d.ok(&["rm", "va"]);
    assert_eq!(names(&d, &[]), std::slice::from_ref(&anon));
    d.ok(&[
        "run",
        "--name",
        "vb",
        "-v",
        "/scratch",
        "busybox:test",
        "true",
    ]);
    assert_eq!(names(&d, &[]).len(), 2);
    d.ok(&["rm", "-v", "vb"]);
    assert_eq!(names(&d, &[]), std::slice::from_ref(&anon));
    // --rm removes its anonymous volumes, never named ones.
    d.ok(&["run", "--rm", "-v", "named:/n", "busybox:vol", "true"]);
    let mut left = names(&d, &[]);
    left.sort();
    let mut want = vec![anon, "named".to_owned()];
    want.sort();
    assert_eq!(left, want);
}

#[test]
fn mount_flags_bind_volumes_and_tmpfs() {
    let d = Daemon::start();
    d.import_busybox();
    let host = tempfile::tempdir().unwrap();
    std::fs::write(host.path().join("h"), "from host\n").unwrap();
    let bind = format!("type=bind,src={},dst=/h,readonly", host.path().display());
    let out = d.ok(&[
        "run", "--rm",
        "--mount", &bind,
        "--mount", "type=volume,src=mv,dst=/v",
        "--mount", "type=tmpfs,dst=/t,tmpfs-size=2m",
        "busybox:test", "sh", "-c",
        "cat /h/h; touch /h/x 2>/dev/null || echo ro; touch /v/ok && echo vol; df -k /t | tail -1 | awk '{print $2}'",
    ]);
    assert_eq!(out, "from host\nro\nvol\n2048\n");
    let err = d.fails(&[
        "run",
        "--rm",
        "--mount",
        "type=bind,src=/no/such/dir,dst=/x",
        "busybox:test",
        "true",
    ]);
    assert!(err.contains("bind source path does not exist"), "{err}");
    let err = d.fails(&[
        "run",
        "--rm",
        "-v",
        "a:/x",
        "-v",
        "b:/x",
        "busybox:test",
        "true",
    ]);
    assert!(err.contains("Duplicate mount point"), "{err}");
}

#[test]
fn berth_volume_commands_follow_docker() {
    let d = Daemon::start();
    d.import_busybox();
    assert_eq!(d.berth_ok(&["volume", "create", "-l", "k=v", "bv"]), "bv\n");
    assert_eq!(
        d.berth_ok(&["volume", "ls"]),
        "DRIVER    VOLUME NAME\nlocal     bv\n"
    );
    assert_eq!(
        d.berth_ok(&["volume", "ls", "-q", "-f", "label=k=v"]),
        "bv\n"
    );
    let mp = d.berth_ok(&["volume", "inspect", "-f", "{{.Mountpoint}}", "bv"]);
    assert!(mp.trim().ends_with("/volumes/bv/_data"), "{mp}");
    d.berth_ok(&[
        "run",
        "--rm",
        "-v",
        "bv:/d",
        "-v",
        "/anon",
        "busybox:test",
        "touch",
        "/d/f",
    ]);
    assert!(std::path::Path::new(mp.trim()).join("f").exists());
    assert_eq!(
        d.berth_ok(&["volume", "ls", "-q"]),
        "bv\n",
        "--rm took the anonymous one"
    );
    assert_eq!(d.berth_ok(&["volume", "rm", "bv"]), "bv\n");
    let out = d.berth(&["volume", "rm", "bv"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no such volume"));
    d.berth_ok(&["volume", "create", "gone"]);
    let pruned = d.berth_ok(&["volume", "prune", "-f"]);
    assert!(pruned.starts_with("Deleted Volumes:\ngone\n"), "{pruned}");
}
