//! Privileged: `GET /events` through `berth daemon`, judged by the real
//! `docker events` — container and image events in order, since/until,
//! filters, a live stream — and Docker's errors for bad parameters.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use common::daemon::{unix_now, Daemon};

const FORMAT: &str = "{{.Type}} {{.Action}} {{.Actor.Attributes.name}}";

#[test]
fn docker_events_replays_container_and_image_events_in_order() {
    let d = Daemon::start();
    let since = unix_now();
    d.import_busybox();
    d.ok(&[
        "run",
        "--rm",
        "--name",
        "ev",
        "-l",
        "tier=front",
        "busybox:test",
        "true",
    ]);
    d.ok(&["tag", "busybox:test", "busybox:v2"]);
    d.ok(&["rmi", "busybox:v2"]);
    let until = unix_now();
    let all = d.ok(&[
        "events", "--since", &since, "--until", &until, "--format", FORMAT,
    ]);
    let lines: Vec<&str> = all.lines().collect();
    let expected = [
        "image import busybox:test",
        "container create ev",
        "container attach ev",
        "container start ev",
        "container die ev",
        "container destroy ev",
        "image tag busybox:v2",
        "image untag busybox:v2",
    ];
    assert_eq!(lines, expected);
    // Filters: by type and action, by container name, by label.
    let starts = d.ok(&[
        "events",
        "--since",
        &since,
        "--until",
        &until,
        "--format",
        FORMAT,
        "--filter",
        "type=container",
        "--filter",
        "event=start",
        "--filter",
        "event=die",
    ]);
    assert_eq!(starts, "container start ev\ncontainer die ev\n");
    let labelled = d.ok(&[
        "events",
        "--since",
        &since,
        "--until",
        &until,
        "--format",
        "{{.Action}}",
        "--filter",
        "label=tier=front",
        "--filter",
        "container=ev",
    ]);
    assert_eq!(labelled.lines().count(), 5, "{labelled}");
    let exit_code = d.ok(&[
        "events",
        "--since",
        &since,
        "--until",
        &until,
        "--format",
        "{{.Actor.Attributes.exitCode}}",
        "--filter",
        "event=die",
    ]);
    assert_eq!(exit_code, "0\n");
}

#[test]
fn a_live_stream_delivers_new_events_and_bad_parameters_are_refused() {
    let d = Daemon::start();
    d.import_busybox();
    // `since` makes the stream independent of when it connects.
    let since = unix_now();
    let mut watcher = d
        .command(
            "docker",
            &[
                "events",
                "--since",
                &since,
                "--filter",
                "event=die",
                "--format",
                FORMAT,
            ],
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let run = d.docker(&[
        "run",
        "--name",
        "live",
        "busybox:test",
        "sh",
        "-c",
        "exit 5",
    ]);
    assert_eq!(run.status.code(), Some(5));
    let mut line = String::new();
    BufReader::new(watcher.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line, "container die live\n");
    watcher.kill().unwrap();
    watcher.wait().unwrap();
    let (status, _, body) = d.http("GET", "/events?filters=%7B%22bogus%22%3A%5B%22x%22%5D%7D");
    assert!(
        status.contains("400") && body.contains("bogus"),
        "{status} {body}"
    );
    let (status, _, body) = d.http("GET", "/events?since=yesterday");
    assert!(
        status.contains("400") && body.contains("invalid since"),
        "{status} {body}"
    );
    d.ok(&["rm", "live"]);
}
