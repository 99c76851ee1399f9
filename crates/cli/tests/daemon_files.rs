//! Privileged: a container's files through `berth daemon` — `docker cp`
//! both ways (running and stopped containers, directories, contents with
//! `/.`, symlinks kept), never outside the container's root whatever
//! symlinks it holds (the docker cp CVE class), through the container's
//! own mounts while it runs, read-only roots refused, `docker diff`, the
//! raw archive API (stat header, conflicts) and `berth cp`/`berth diff`.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::path::Path;

use common::daemon::Daemon;

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A local directory with a file, a subdirectory and a relative symlink.
fn local_tree() -> tempfile::TempDir {
    let t = tempfile::tempdir().unwrap();
    std::fs::write(t.path().join("f.txt"), "hello\n").unwrap();
    std::fs::create_dir_all(t.path().join("d/sub")).unwrap();
    std::fs::write(t.path().join("d/sub/y"), "why\n").unwrap();
    std::os::unix::fs::symlink("sub/y", t.path().join("d/link")).unwrap();
    std::fs::set_permissions(
        t.path().join("d/sub/y"),
        std::os::unix::fs::PermissionsExt::from_mode(0o751),
    )
    .unwrap();
    t
}

fn started(d: &Daemon, name: &str, extra: &[&str]) {
    let mut args = vec!["run", "-d", "--name", name];
    args.extend(extra);
    args.extend(["busybox:test", "sleep", "1000"]);
    d.ok(&args);
}

#[test]
fn docker_cp_copies_both_ways_running_or_stopped() {
    let d = Daemon::start();
    d.import_busybox();
    started(&d, "box", &[]);
    let local = local_tree();
    let p = |s: &str| local.path().join(s).display().to_string();
    for (stopped, target) in [(false, "/tmp/run"), (true, "/tmp/stopped")] {
        if stopped {
            d.ok(&["stop", "-t", "0", "box"]);
        }
        d.ok(&["cp", &p("f.txt"), &format!("box:{target}.txt")]);
        d.ok(&["cp", &p("d"), &format!("box:{target}")]);
        if stopped {
            d.ok(&["start", "box"]);
        }
        let listing = d.ok(&[
            "exec",
            "box",
            "sh",
            "-c",
            &format!("cat {target}.txt; stat -c '%n %a' {target}/sub/y; readlink {target}/link"),
        ]);
        assert_eq!(
            listing,
            format!("hello\n{target}/sub/y 751\nsub/y\n"),
            "stopped: {stopped}"
        );
        if !stopped {
            d.ok(&["stop", "-t", "0", "box"]);
        }
        // Out again, from the stopped container: the tree as it went in.
        let back = tempfile::tempdir().unwrap();
        let out = back.path().join("out").display().to_string();
        d.ok(&["cp", &format!("box:{target}"), &out]);
        assert_eq!(
            std::fs::read_to_string(back.path().join("out/sub/y")).unwrap(),
            "why\n"
        );
        assert_eq!(
            std::fs::read_link(back.path().join("out/link")).unwrap(),
            Path::new("sub/y")
        );
        // `/.`: the contents into an existing directory.
        let contents = back.path().join("contents");
        std::fs::create_dir(&contents).unwrap();
        d.ok(&[
            "cp",
            &format!("box:{target}/."),
            &contents.display().to_string(),
        ]);
        assert!(contents.join("sub/y").exists() && !contents.join("run").exists());
        d.ok(&["start", "box"]);
    }
    let err = d.fails(&["cp", "box:/nope", &p("x")]);
    assert!(err.contains("/nope"), "{err}");
}

#[test]
fn copies_never_leave_the_containers_root_through_its_symlinks() {
    let d = Daemon::start();
    d.import_busybox();
    started(&d, "box", &[]);
    // Links to the root, above it, and a magic link to the host's root.
    d.ok(&[
        "exec",
        "box",
        "sh",
        "-c",
        "ln -s / /tmp/root; ln -s ../../../../../../ /tmp/up; ln -s /proc/1/root /tmp/magic; \
         echo inside > /etc/only-inside",
    ]);
    let marker = format!("berth-cp-escape-{}", std::process::id());
    let local = tempfile::tempdir().unwrap();
    let file = local.path().join(&marker);
    std::fs::write(&file, "x").unwrap();
    for stopped in [false, true] {
        if stopped {
            d.ok(&["stop", "-t", "0", "box"]);
        }
        for via in ["/tmp/root/etc/", "/tmp/up/etc/"] {
            d.ok(&["cp", &file.display().to_string(), &format!("box:{via}")]);
            assert!(
                !Path::new("/etc").join(&marker).exists(),
                "written on the host via {via}"
            );
        }
        // Read back through the same links: the container's files.
        let out = tempfile::tempdir().unwrap();
        let dst = out.path().join("p").display().to_string();
        d.ok(&["cp", "box:/tmp/up/etc/only-inside", &dst]);
        assert_eq!(std::fs::read_to_string(&dst).unwrap(), "inside\n");
        let magic = d.docker(&["cp", &file.display().to_string(), "box:/tmp/magic/etc/"]);
        assert!(
            !Path::new("/etc").join(&marker).exists(),
            "written through a magic link"
        );
        assert!(
            !magic.status.success() || stopped,
            "{}",
            text(&magic.stderr)
        );
        if stopped {
            d.ok(&["start", "box"]);
        }
    }
    let inside = d.ok(&["exec", "box", "ls", "/etc"]);
    assert!(inside.contains(&marker), "{inside}");
}

#[test]
fn a_containers_mounts_are_where_its_files_go() {
    let d = Daemon::start();
    d.import_busybox();
    let host = tempfile::tempdir().unwrap();
    let bind = format!("{}:/data", host.path().display());
    let ro_bind = format!("{}:/ro:ro", host.path().display());
    started(&d, "box", &["-v", &bind, "-v", "vol:/vol", "-v", &ro_bind]);
    started(&d, "ro", &["--read-only"]);
    let local = local_tree();
    let f = local.path().join("f.txt").display().to_string();
    d.ok(&["cp", &f, "box:/data/"]);
    let read = |p: &str| std::fs::read_to_string(host.path().join(p)).unwrap();
    assert_eq!(read("f.txt"), "hello\n");
    // Stopped: its binds and volumes are mounted for the copy.
    d.ok(&["stop", "-t", "0", "box"]);
    d.ok(&["cp", &f, "box:/data/again.txt"]);
    assert_eq!(read("again.txt"), "hello\n");
    d.ok(&["cp", &f, "box:/vol/"]);
    let err = d.fails(&["cp", &f, "box:/ro/other.txt"]);
    assert!(err.to_lowercase().contains("read-only"), "{err}");
    assert!(!host.path().join("other.txt").exists());
    let id = d.ok(&["inspect", "-f", "{{.Id}}", "box"]).trim().to_owned();
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts.contains(&id),
        "the copy's mounts are gone: {mounts}"
    );
    d.ok(&["start", "box"]);
    assert_eq!(d.ok(&["exec", "box", "cat", "/vol/f.txt"]), "hello\n");
    let err = d.fails(&["cp", &f, "ro:/tmp/"]);
    assert!(err.contains("read-only"), "{err}");
    d.ok(&["stop", "-t", "0", "ro"]);
    let err = d.fails(&["cp", &f, "ro:/tmp/"]);
    assert!(err.contains("read-only"), "{err}");
}

#[test]
fn docker_diff_lists_additions_changes_and_deletions() {
    let d = Daemon::start();
    d.import_busybox();
    started(&d, "box", &[]);
    d.ok(&[
        "exec",
        "box",
        "sh",
        "-c",
        "rm /etc/group; echo more >> /etc/passwd; mkdir -p /new/dir; touch /new/dir/f",
    ]);
    let diff = d.ok(&["diff", "box"]);
    assert_eq!(
        diff,
        "C /etc\nD /etc/group\nC /etc/passwd\nA /new\nA /new/dir\nA /new/dir/f\n"
    );
    assert_eq!(d.berth_ok(&["diff", "box"]), diff);
}

#[test]
fn the_archive_api_answers_as_dockers() {
    let d = Daemon::start();
    d.import_busybox();
    started(&d, "box", &[]);
    // The header's value is base64: case matters (the http helper
    // lowercases headers), so this request is read raw.
    let raw = {
        use std::io::{Read, Write};
        let mut s = std::os::unix::net::UnixStream::connect(d.socket()).unwrap();
        write!(
            s,
            "HEAD /containers/box/archive?path=/etc/passwd HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut raw = String::new();
        s.read_to_string(&mut raw).unwrap();
        raw
    };
    assert!(raw.starts_with("HTTP/1.1 200"), "{raw}");
    let encoded = raw
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(": ")?;
            k.eq_ignore_ascii_case("x-docker-container-path-stat")
                .then(|| v.trim().to_owned())
        })
        .unwrap();
    let decoded = std::process::Command::new("base64")
        .arg("-d")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(encoded.as_bytes())?;
            c.wait_with_output()
        })
        .unwrap();
    let stat: serde_json::Value = serde_json::from_slice(&decoded.stdout).unwrap();
    assert_eq!(stat["name"], "passwd");
    assert_eq!(stat["size"], 30);
    assert_eq!(stat["mode"], 0o644);
    assert_eq!(stat["linkTarget"], "");
    let (status, _, body) = d.http("HEAD", "/containers/box/archive?path=/nope");
    assert!(status.contains("404"), "{status} {body}");
    let (status, _, body) = d.http("GET", "/containers/box/archive");
    assert!(
        status.contains("400") && body.contains("path"),
        "{status} {body}"
    );
    // A file where the archive has a directory: refused with
    // noOverwriteDirNonDir, as the docker CLI always asks.
    let local = local_tree();
    std::fs::write(local.path().join("file-named-d"), "").unwrap();
    d.ok(&["exec", "box", "mkdir", "-p", "/tmp/d"]);
    d.ok(&["exec", "box", "touch", "/tmp/plain"]);
    let err = d.fails(&[
        "cp",
        &local.path().join("d").display().to_string(),
        "box:/tmp/plain",
    ]);
    assert!(
        err.contains("cannot copy a directory") || err.contains("directory"),
        "{err}"
    );
    // The daemon's own check, on a raw PUT: a file named like a directory.
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(0);
    h.set_mode(0o644);
    h.set_mtime(0);
    h.set_uid(0);
    h.set_gid(0);
    h.set_cksum();
    b.append_data(&mut h, "d", &[][..]).unwrap();
    let body = b.into_inner().unwrap();
    for (query, code, said) in [
        (
            "&noOverwriteDirNonDir=1",
            "400",
            "cannot overwrite a directory",
        ),
        ("", "200", ""),
    ] {
        use std::io::{Read, Write};
        let mut s = std::os::unix::net::UnixStream::connect(d.socket()).unwrap();
        write!(
            s,
            "PUT /containers/box/archive?path=/tmp{query} HTTP/1.1\r\nHost: b\r\n\
             Connection: close\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .unwrap();
        s.write_all(&body).unwrap();
        let mut answer = String::new();
        s.read_to_string(&mut answer).unwrap();
        assert!(answer.starts_with(&format!("HTTP/1.1 {code}")), "{answer}");
        assert!(answer.contains(said), "{answer}");
    }
    assert_eq!(
        d.ok(&["exec", "box", "sh", "-c", "test -f /tmp/d && echo file"]),
        "file\n"
    );
}

#[test]
fn berth_cp_follows_docker() {
    let d = Daemon::start();
    d.import_busybox();
    started(&d, "box", &[]);
    let local = local_tree();
    let p = |s: &str| local.path().join(s).display().to_string();
    let out = d.berth(&["cp", &p("d"), "box:/tmp/d"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).starts_with("Successfully copied "),
        "{}",
        text(&out.stderr)
    );
    d.berth_ok(&["cp", "-q", &p("d/."), "box:/tmp/contents"]);
    let listing = d.ok(&["exec", "box", "sh", "-c", "cd /tmp; find d contents | sort"]);
    assert_eq!(
        listing,
        "contents\ncontents/link\ncontents/sub\ncontents/sub/y\nd\nd/link\nd/sub\nd/sub/y\n"
    );
    let back = tempfile::tempdir().unwrap();
    d.berth_ok(&[
        "cp",
        "-q",
        "box:/tmp/d",
        &back.path().join("x").display().to_string(),
    ]);
    assert_eq!(
        std::fs::read_to_string(back.path().join("x/sub/y")).unwrap(),
        "why\n"
    );
    // `-` streams a tar out.
    let tar = d.berth(&["cp", "box:/etc/passwd", "-"]);
    let names: Vec<String> = tar::Archive::new(&tar.stdout[..])
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().display().to_string())
        .collect();
    assert_eq!(names, ["passwd"]);
    let out = d.berth(&["cp", "box:/nope", &p("n")]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("Could not find the file /nope in container box"));
    let out = d.berth(&["cp", &p("f.txt"), &p("g.txt")]);
    assert!(text(&out.stderr).contains("must specify at least one container source"));
}
