//! Privileged: `berth daemon` serving the Docker Engine API, judged by the
//! real `docker` CLI (DOCKER_HOST at berth's socket) and by raw HTTP:
//! version negotiation, errors, and the image endpoints end to end.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use common::daemon::Daemon;

#[test]
fn docker_cli_negotiates_and_reports_the_server() {
    let d = Daemon::start();
    assert_eq!(
        d.ok(&["version", "--format", "{{.Server.APIVersion}}"])
            .trim(),
        "1.41"
    );
    assert_eq!(
        d.ok(&["version", "--format", "{{.Server.Platform.Name}}"])
            .trim(),
        "berth"
    );
    assert!(d
        .ok(&["info", "--format", "{{.Driver}} {{.CgroupDriver}}"])
        .contains("overlay2 cgroupfs"));
}

#[test]
fn raw_http_follows_dockers_rules() {
    let d = Daemon::start();
    let (status, headers, body) = d.http("GET", "/_ping");
    assert!(status.contains("200"), "{status}");
    assert_eq!(body, "OK");
    assert!(headers.contains("api-version: 1.41"), "{headers}");
    let (status, headers, _) = d.http("HEAD", "/v1.30/_ping");
    assert!(
        status.contains("200") && headers.contains("ostype: linux"),
        "{status} {headers}"
    );
    let (status, _, body) = d.http("GET", "/v1.99/version");
    assert!(status.contains("400"), "{status}");
    assert!(
        body.contains("client version 1.99 is too new. Maximum supported API version is 1.41"),
        "{body}"
    );
    let (status, _, body) = d.http("GET", "/v1.41/no/such/endpoint");
    assert!(
        status.contains("404") && body.contains("\"message\""),
        "{status} {body}"
    );
    let (status, _, body) = d.http("GET", "/images/json?filters=%7Bbad");
    assert!(
        status.contains("400") && body.contains("invalid filters"),
        "{status} {body}"
    );
    // Nothing listens on port 1: the pull fails with the cause, never
    // reaching out of the machine.
    let (status, _, body) = d.http(
        "POST",
        "/images/create?fromImage=127.0.0.1:1/alpine&tag=latest",
    );
    assert!(
        status.contains("500") && body.contains("127.0.0.1:1/v2/alpine/manifests/latest"),
        "{status} {body}"
    );
}

#[test]
fn images_round_trip_through_the_docker_cli() {
    let d = Daemon::start();
    let tar = d.busybox_tar();
    let tar_arg = tar.to_str().unwrap();
    let id = d.ok(&[
        "import",
        "-c",
        "CMD [\"/bin/busybox\", \"sh\"]",
        "-c",
        "LABEL tier=test",
        "-m",
        "from a test",
        tar_arg,
        "busybox:test",
    ]);
    assert!(id.trim().starts_with("sha256:"), "{id}");
    let listed = d.ok(&["images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"]);
    assert_eq!(listed.trim(), format!("busybox:test {}", &id.trim()[7..19]));
    assert_eq!(
        d.ok(&[
            "inspect",
            "--format",
            "{{json .Config.Cmd}} {{.Config.Labels.tier}}",
            "busybox:test"
        ])
        .trim(),
        "[\"/bin/busybox\",\"sh\"] test"
    );
    assert!(d
        .ok(&["history", "--format", "{{.Comment}}", "busybox:test"])
        .contains("from a test"));
    d.ok(&["tag", "busybox:test", "example.com/team/app:1"]);
    let filtered = d.ok(&[
        "images",
        "--filter",
        "reference=example.com/*/*",
        "--format",
        "{{.Repository}}",
    ]);
    assert_eq!(filtered.trim(), "example.com/team/app");
    let archive = d.dir.path().join("saved.tar");
    d.ok(&["save", "-o", archive.to_str().unwrap(), "busybox:test"]);
    let removed = d.ok(&["rmi", "busybox:test", "example.com/team/app:1"]);
    assert!(
        removed.contains("Untagged: busybox:test")
            && removed.contains(&format!("Deleted: {}", id.trim())),
        "{removed}"
    );
    assert_eq!(d.ok(&["images", "-q"]).trim(), "");
    assert_eq!(
        d.ok(&["load", "-i", archive.to_str().unwrap()]).trim(),
        "Loaded image: busybox:test"
    );
    assert_eq!(
        d.ok(&["images", "-q", "--no-trunc"]).trim(),
        id.trim(),
        "same image ID after a round trip"
    );
}

#[test]
fn errors_reach_the_cli_with_dockers_codes() {
    let d = Daemon::start();
    assert!(d
        .fails(&["rmi", "nosuch"])
        .contains("no such image: nosuch"));
    let err = d.fails(&["pull", "127.0.0.1:1/alpine"]);
    assert!(err.contains("Connection refused"), "{err}");
    assert!(d
        .fails(&["images", "--filter", "colour=red"])
        .contains("invalid filter 'colour'"));
    let tar = d.busybox_tar();
    d.ok(&["import", tar.to_str().unwrap(), "a:1"]);
    d.ok(&["tag", "a:1", "b:1"]);
    let id = d.ok(&["images", "-q"]);
    let err = d.fails(&["rmi", id.lines().next().unwrap()]);
    assert!(err.contains("referenced in multiple repositories"), "{err}");
    assert!(d
        .fails(&["tag", "a:1", "Bad:Name"])
        .contains("must be lowercase"));
    let (status, _, body) = d.http("POST", "/images/a:1/tag?repo=Bad&tag=x");
    assert!(
        status.contains("400") && body.contains("repository name must be lowercase"),
        "{status} {body}"
    );
    let (status, _, body) = d.http("POST", "/images/nosuch/tag?repo=x");
    assert!(status.contains("404"), "{status} {body}");
    let garbage = d.dir.path().join("garbage.tar");
    std::fs::write(&garbage, b"this is not a tarball at all").unwrap();
    assert!(d
        .fails(&["load", "-i", garbage.to_str().unwrap()])
        .contains("Error response from daemon"));
    let ids: std::collections::BTreeSet<String> =
        d.ok(&["images", "-q"]).lines().map(str::to_owned).collect();
    assert_eq!(ids.len(), 1, "a failed load added nothing");
}

#[test]
fn two_daemons_run_side_by_side_and_refuse_to_share() {
    let a = Daemon::start();
    let b = Daemon::start();
    let tar = a.busybox_tar();
    a.ok(&["import", tar.to_str().unwrap(), "only-in-a"]);
    assert_eq!(b.ok(&["images", "-q"]).trim(), "");
    assert_eq!(a.ok(&["images", "-q"]).lines().count(), 1);
    // A third daemon on a's socket, or on a's data root, is refused.
    let other = tempfile::tempdir().unwrap();
    let out = Daemon::spawn(other.path(), &other.path().join("data"), &a.socket())
        .spawn()
        .unwrap()
        .wait_with_output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("another daemon is listening"));
    let out = Daemon::spawn(
        other.path(),
        &a.dir.path().join("data"),
        &other.path().join("s.sock"),
    )
    .spawn()
    .unwrap()
    .wait_with_output()
    .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("in use by another berth process"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
