//! Privileged: every Dockerfile of the corpus (`crates/builder/tests/
//! corpus`, each with Docker's own result in `docker.json`) built by the
//! real `docker` CLI against berth, and the image compared with Docker's:
//! the config fields, author, layer count, history (classic cases) and
//! every file the build added, changed or removed (type, mode, owner,
//! size, content, link target). Failing cases must fail with Docker's exit
//! code and error.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use common::daemon::Daemon;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../builder/tests/corpus");

/// The config fields Docker and berth must agree on.
const FIELDS: &[&str] = &[
    "Cmd",
    "Entrypoint",
    "Env",
    "WorkingDir",
    "User",
    "ExposedPorts",
    "Volumes",
    "Labels",
    "Healthcheck",
    "OnBuild",
    "Shell",
    "StopSignal",
];

fn cases() -> Vec<(String, Value)> {
    let mut out: Vec<(String, Value)> = std::fs::read_dir(CORPUS)
        .unwrap()
        .flatten()
        .filter(|e| e.path().join("docker.json").exists())
        .map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let json =
                serde_json::from_slice(&std::fs::read(e.path().join("docker.json")).unwrap())
                    .unwrap();
            (name, json)
        })
        .collect();
    // A child is built after the parent it is FROM.
    out.sort_by_key(|(n, _)| (n == "onbuild-child", n.clone()));
    out
}

/// The case's context as Docker saw it: files 0644, dirs 0755, then the
/// modes docker.json lists.
fn context(case: &str, json: &Value, into: &Path) -> PathBuf {
    let dest = into.join(case);
    copy_tree(&Path::new(CORPUS).join(case), &dest);
    if let Some(modes) = json["context_modes"].as_object() {
        for (p, m) in modes {
            let mode = u32::from_str_radix(m.as_str().unwrap(), 8).unwrap();
            std::fs::set_permissions(dest.join(p), std::fs::Permissions::from_mode(mode)).unwrap();
        }
    }
    dest
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    std::fs::set_permissions(to, std::fs::Permissions::from_mode(0o755)).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let name = e.file_name();
        if name == "docker.json" {
            continue;
        }
        let (src, dst) = (e.path(), to.join(&name));
        let t = e.file_type().unwrap();
        if t.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&src).unwrap(), &dst).unwrap();
        } else if t.is_dir() {
            copy_tree(&src, &dst);
        } else {
            std::fs::copy(&src, &dst).unwrap();
            std::fs::set_permissions(&dst, std::fs::Permissions::from_mode(0o644)).unwrap();
        }
    }
}

fn build(d: &Daemon, json: &Value, ctx: &Path) -> std::process::Output {
    let tag = json["tag"].as_str().unwrap();
    let mut args: Vec<String> = vec!["build".into(), "-t".into(), tag.into()];
    if let Some(a) = json["build_args"].as_object() {
        for (k, v) in a {
            args.push("--build-arg".into());
            args.push(format!("{k}={}", v.as_str().unwrap()));
        }
    }
    if let Some(t) = json["target"].as_str() {
        args.push("--target".into());
        args.push(t.into());
    }
    args.push(ctx.display().to_string());
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    d.command("docker", &refs)
        .env("DOCKER_BUILDKIT", "0")
        .output()
        .unwrap()
}

/// `null`, `[]`, `{}` and `""` mean the same in a config.
fn norm(v: &Value) -> Value {
    match v {
        Value::Array(a) if a.is_empty() => Value::Null,
        Value::Object(o) if o.is_empty() => Value::Null,
        Value::String(s) if s.is_empty() => Value::Null,
        other => other.clone(),
    }
}

/// A saved image: its config and its flattened file system.
struct Saved {
    config: Value,
    files: BTreeMap<String, Value>,
}

fn save(d: &Daemon, tag: &str) -> Saved {
    let out = d.docker(&["save", tag]);
    assert!(
        out.status.success(),
        "save {tag}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut entries: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut ar = tar::Archive::new(&out.stdout[..]);
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let path = e.path().unwrap().to_string_lossy().into_owned();
        let mut buf = Vec::new();
        e.read_to_end(&mut buf).unwrap();
        entries.insert(path, buf);
    }
    let manifest: Value = serde_json::from_slice(&entries["manifest.json"]).unwrap();
    let config: Value =
        serde_json::from_slice(&entries[manifest[0]["Config"].as_str().unwrap()]).unwrap();
    let mut files = BTreeMap::new();
    for layer in manifest[0]["Layers"].as_array().unwrap() {
        apply_layer(&entries[layer.as_str().unwrap()], &mut files);
    }
    Saved { config, files }
}

/// Applies one layer tar (whiteouts included) to a listing.
fn apply_layer(blob: &[u8], files: &mut BTreeMap<String, Value>) {
    let mut plain = Vec::new();
    let tar_bytes = if blob.starts_with(&[0x1f, 0x8b]) {
        flate2::read::MultiGzDecoder::new(blob)
            .read_to_end(&mut plain)
            .unwrap();
        &plain[..]
    } else {
        blob
    };
    let mut ar = tar::Archive::new(tar_bytes);
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let raw = e.path().unwrap().to_string_lossy().into_owned();
        let path = format!("/{}", raw.trim_start_matches("./").trim_end_matches('/'));
        if path == "/" {
            continue;
        }
        let (dir, name) = path.rsplit_once('/').unwrap();
        if name == ".wh..wh..opq" {
            let prefix = format!("{dir}/");
            files.retain(|p, _| !p.starts_with(&prefix));
            continue;
        }
        if let Some(hidden) = name.strip_prefix(".wh.") {
            let gone = format!("{dir}/{hidden}");
            let prefix = format!("{gone}/");
            files.retain(|p, _| *p != gone && !p.starts_with(&prefix));
            continue;
        }
        let h = e.header().clone();
        let mode = format!("{:04o}", h.mode().unwrap() & 0o7777);
        let (uid, gid) = (h.uid().unwrap(), h.gid().unwrap());
        let entry = match h.entry_type() {
            tar::EntryType::Directory => {
                json!({"type": "dir", "mode": mode, "uid": uid, "gid": gid})
            }
            tar::EntryType::Symlink => {
                let link = h
                    .link_name()
                    .unwrap()
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                json!({"type": "symlink", "mode": mode, "uid": uid, "gid": gid, "link": link})
            }
            tar::EntryType::Link => {
                let target = format!("/{}", h.link_name().unwrap().unwrap().to_string_lossy());
                let mut t = files[&target].clone();
                t["mode"] = json!(mode);
                t
            }
            _ => {
                let mut buf = Vec::new();
                e.read_to_end(&mut buf).unwrap();
                let sha = hex::encode(Sha256::digest(&buf));
                json!({"type": "file", "mode": mode, "uid": uid, "gid": gid, "size": buf.len(), "sha256": sha})
            }
        };
        // A directory entry over an existing directory keeps its children.
        files.insert(path, entry);
    }
}

/// What the build added or changed over the base, and what it removed.
fn changes(
    image: &Saved,
    base: &BTreeMap<String, Value>,
) -> (BTreeMap<String, Value>, Vec<String>) {
    let changed = image
        .files
        .iter()
        .filter(|(p, v)| base.get(*p) != Some(v))
        .map(|(p, v)| (p.clone(), v.clone()))
        .collect();
    let removed = base
        .keys()
        .filter(|p| !image.files.contains_key(*p))
        .cloned()
        .collect();
    (changed, removed)
}

/// Docker's listing, hardlinks as the files they are.
fn expected_files(json: &Value) -> BTreeMap<String, Value> {
    json["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let mut f = f.clone();
            let path = f.as_object_mut().unwrap().remove("path").unwrap();
            if f["type"] == "hardlink" {
                f["type"] = json!("file");
                f.as_object_mut().unwrap().remove("link");
            }
            (path.as_str().unwrap().to_owned(), f)
        })
        .collect()
}

fn hashes_out(s: &str) -> String {
    let mut out = String::new();
    let mut run = 0;
    for c in s.chars() {
        out.push(c);
        run = if c.is_ascii_hexdigit() { run + 1 } else { 0 };
        if run == 64 {
            out.truncate(out.len() - 64);
            out.push_str("<hash>");
            run = 0;
        }
    }
    out
}

/// History entries as compared: `created_by` (content hashes masked,
/// they are each engine's own) and `empty_layer`.
fn history(entries: &Value) -> Vec<(String, bool)> {
    entries
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                hashes_out(h["created_by"].as_str().unwrap_or("")),
                h["empty_layer"].as_bool().unwrap_or(false),
            )
        })
        .collect()
}

fn compare(case: &str, json: &Value, saved: &Saved, base: &Saved, problems: &mut Vec<String>) {
    let mut say = |what: String| problems.push(format!("{case}: {what}"));
    let cfg = &saved.config["config"];
    for f in FIELDS {
        let (want, got) = (norm(&json["config"][*f]), norm(&cfg[*f]));
        if want != got {
            say(format!("config {f}: docker {want}, berth {got}"));
        }
    }
    let author = saved.config["author"].as_str().unwrap_or("");
    if json["author"].as_str().unwrap_or("") != author {
        say(format!(
            "author: docker {}, berth {author:?}",
            json["author"]
        ));
    }
    let layers = saved.config["rootfs"]["diff_ids"].as_array().unwrap().len();
    // BuildKit keeps a layer for a RUN that changes nothing; berth, like
    // the classic builder, does not.
    if json["builder"] == "classic" && json["layers"].as_u64() != Some(layers as u64) {
        say(format!("layers: docker {}, berth {layers}", json["layers"]));
    }
    if json["builder"] == "classic" {
        let (want, got) = (history(&json["history"]), history(&saved.config["history"]));
        if want != got {
            say(format!("history:\n  docker {want:?}\n  berth  {got:?}"));
        }
    }
    let base_files = if json["files_base"] == "scratch" {
        BTreeMap::new()
    } else {
        base.files.clone()
    };
    let (got, removed) = changes(saved, &base_files);
    let want = expected_files(json);
    for (p, w) in &want {
        match got.get(p) {
            Some(g) if g == w => {}
            other => say(format!("file {p}: docker {w}, berth {other:?}")),
        }
    }
    for p in got.keys().filter(|p| !want.contains_key(*p)) {
        say(format!("file {p}: only berth has it: {}", got[p]));
    }
    let want_removed: Vec<String> = json["removed"]
        .as_array()
        .map(|a| a.iter().map(|v| v.as_str().unwrap().to_owned()).collect())
        .unwrap_or_default();
    if want_removed != removed {
        say(format!(
            "removed: docker {want_removed:?}, berth {removed:?}"
        ));
    }
}

/// What berth's error must say where Docker's depends on a registry.
fn expected_error(case: &str, json: &Value) -> String {
    match case {
        // Its registry is 127.0.0.1:1, where nothing listens (Docker's
        // record: nosuch/image on Docker Hub, which tests must not reach).
        "fail-undefined-base" => {
            "127.0.0.1:1/v2/nosuch/image/manifests/v1 (127.0.0.1:1): io: Connection refused"
                .to_owned()
        }
        "fail-unknown-stage" => "--from=nosuchstage: no such stage".to_owned(),
        "fail-bk-run-exit" => {
            "The command '/bin/sh -c exit 3' returned a non-zero code: 3".to_owned()
        }
        "fail-bk-copy-missing" => "file not found in build context".to_owned(),
        _ => json["error"].as_str().unwrap().to_owned(),
    }
}

#[test]
fn the_corpus_builds_as_docker_builds_it() {
    let d = Daemon::start();
    let tar = d.busybox_tar();
    d.ok(&["import", tar.to_str().unwrap(), "busybox:corpus"]);
    let base = save(&d, "busybox:corpus");
    let work = tempfile::tempdir().unwrap();
    let mut problems = Vec::new();
    let mut built = 0;
    for (case, json) in cases() {
        let ctx = context(&case, &json, work.path());
        let out = build(&d, &json, &ctx);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        if json["fails"] == true {
            let code = out.status.code();
            let want = if case == "fail-bk-run-exit" {
                Some(3)
            } else {
                json["exit_code"]
                    .as_i64()
                    .map(|c| i32::try_from(c).unwrap())
            };
            if code != want {
                problems.push(format!("{case}: exit code {code:?}, docker's {want:?}"));
            }
            let error = expected_error(&case, &json);
            let error = error
                .strip_prefix("Error response from daemon: ")
                .unwrap_or(&error);
            if !stderr.contains(error) {
                problems.push(format!(
                    "{case}: error should contain {error:?}, was {stderr:?}"
                ));
            }
            continue;
        }
        if !out.status.success() {
            problems.push(format!(
                "{case}: build failed: {stderr}{}",
                String::from_utf8_lossy(&out.stdout)
            ));
            continue;
        }
        built += 1;
        let saved = save(&d, json["tag"].as_str().unwrap());
        compare(&case, &json, &saved, &base, &mut problems);
    }
    assert!(built >= 35, "only {built} cases built");
    assert!(
        problems.is_empty(),
        "{} differences from Docker:\n{}",
        problems.len(),
        problems.join("\n")
    );
}
