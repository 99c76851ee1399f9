//! Privileged: pulls through `berth daemon` from a real registry
//! (Debian's docker-registry on 127.0.0.1) — what skopeo pushed, pulled
//! with the docker CLI and berth, digest for digest; by digest; every tag;
//! a platform out of a multi-arch index; and the failures: unknown names,
//! a corrupted blob (nothing stored), a cut connection (resumed with a
//! range request), a stalled server (a clear timeout, then resumed).

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use common::daemon::Daemon;
use common::registry::{multi_arch_layout, Fault, FaultyProxy, LocalRegistry};

/// Pushes the daemon's busybox image to `name` on `reg` with skopeo;
/// returns its image ID. The daemon keeps no copy.
fn seed(d: &Daemon, reg: &LocalRegistry, name: &str) -> String {
    d.import_busybox();
    let id = d.ok(&["images", "-q", "--no-trunc", "busybox:test"]);
    let tar = d.dir.path().join("seed.tar");
    d.ok(&["save", "-o", tar.to_str().unwrap(), "busybox:test"]);
    reg.skopeo_push(&format!("docker-archive:{}", tar.display()), name, false);
    d.ok(&["rmi", "busybox:test"]);
    id.trim().to_owned()
}

/// The digest of the first layer of a name's manifest on `reg`.
fn layer_digest(reg: &LocalRegistry, name: &str) -> String {
    let m: serde_json::Value = serde_json::from_slice(&reg.raw_manifest(name)).unwrap();
    m["layers"][0]["digest"].as_str().unwrap().to_owned()
}

fn inspect(d: &Daemon, name: &str, format: &str) -> String {
    d.ok(&["image", "inspect", "--format", format, name])
        .trim()
        .to_owned()
}

/// Files in the store's ingest directory (a partial download's bytes).
fn ingest_files(d: &Daemon) -> usize {
    let dir = d.dir.path().join("data/ingest");
    std::fs::read_dir(dir).map_or(0, |r| r.count())
}

#[test]
fn docker_pulls_what_skopeo_pushed_digest_for_digest() {
    let d = Daemon::start();
    let reg = LocalRegistry::start();
    let id = seed(&d, &reg, "test/bb:1");
    let digest = reg.manifest_digest("test/bb:1");
    let name = format!("{}/test/bb:1", reg.addr);
    let out = d.ok(&["pull", &name]);
    assert!(out.contains("Pull complete"), "{out}");
    // Unpacked as it came, recorded with its size. An import of the same
    // content keeps the pulled layer: it adds its config, no second gzip.
    let blobs = || {
        std::fs::read_dir(d.dir.path().join("data/blobs/sha256"))
            .unwrap()
            .count()
    };
    let before = blobs();
    d.import_busybox();
    assert_eq!(blobs(), before + 1);
    assert_eq!(
        inspect(&d, &name, "{{.Size}}"),
        inspect(&d, "busybox:test", "{{.Size}}")
    );
    assert!(out.contains(&format!("Digest: {digest}")), "{out}");
    assert!(out.contains("Downloaded newer image for"), "{out}");
    assert_eq!(inspect(&d, &name, "{{.Id}}"), id);
    assert_eq!(
        inspect(&d, &name, "{{json .RepoDigests}}"),
        format!("[\"{}/test/bb@{digest}\"]", reg.addr)
    );
    assert_eq!(d.ok(&["run", "--rm", &name, "echo", "pulled"]), "pulled\n");
    let again = d.ok(&["pull", &name]);
    assert!(again.contains("Image is up to date"), "{again}");
    let repo = format!("{}/test/bb", reg.addr);
    let listed = d.ok(&["images", "--digests", "--format", "{{.Digest}}", &repo]);
    assert_eq!(listed.trim(), digest);
    // What berth pulls by digest is that image, and is called that.
    let by_digest = format!("{}/test/bb@{digest}", reg.addr);
    d.ok(&["rmi", &name]);
    let out = d.berth_ok(&["pull", &by_digest]);
    assert_eq!(out.lines().last().unwrap(), by_digest);
    assert_eq!(inspect(&d, &by_digest, "{{.Id}}"), id);
}

#[test]
fn a_pull_by_digest_is_immutable_and_all_tags_pulls_every_tag() {
    let d = Daemon::start();
    let reg = LocalRegistry::start();
    let first = seed(&d, &reg, "test/x:1");
    let old = reg.manifest_digest("test/x:1");
    // The tag moves to another image; the digest still names the first.
    let layout = d.dir.path().join("layout");
    multi_arch_layout(&layout, &["amd64"]);
    let oci = format!("oci:{}:multi", layout.display());
    reg.skopeo_push(&oci, "test/x:1", false);
    reg.skopeo_push(&oci, "test/x:2", false);
    assert_ne!(reg.manifest_digest("test/x:1"), old);
    let pinned = format!("{}/test/x@{old}", reg.addr);
    d.ok(&["pull", &pinned]);
    assert_eq!(inspect(&d, &pinned, "{{.Id}}"), first);
    let repo = format!("{}/test/x", reg.addr);
    let out = d.berth_ok(&["pull", "-a", "-q", &repo]);
    assert_eq!(out.trim(), repo);
    let tags = d.ok(&["images", "--format", "{{.Tag}}", &repo]);
    let mut tags: Vec<&str> = tags.lines().collect();
    tags.sort_unstable();
    assert_eq!(tags, ["1", "2"]);
    assert_ne!(inspect(&d, &format!("{repo}:1"), "{{.Id}}"), first);
    let refused = d.berth(&["pull", "-a", &format!("{repo}:1")]);
    assert!(!refused.status.success());
}

#[test]
fn a_multi_arch_index_gives_the_platform_asked_for() {
    let d = Daemon::start();
    let reg = LocalRegistry::start();
    let layout = d.dir.path().join("layout");
    multi_arch_layout(&layout, &["amd64", "arm64", "s390x"]);
    let oci = format!("oci:{}:multi", layout.display());
    reg.skopeo_push(&oci, "test/multi:1", true);
    let name = format!("{}/test/multi:1", reg.addr);
    let index_digest = reg.manifest_digest("test/multi:1");
    d.ok(&["pull", "--platform", "linux/arm64", &name]);
    assert_eq!(inspect(&d, &name, "{{.Architecture}}"), "arm64");
    assert_eq!(
        inspect(&d, &name, "{{json .RepoDigests}}"),
        format!("[\"{}/test/multi@{index_digest}\"]", reg.addr)
    );
    d.ok(&["pull", &name]);
    assert_eq!(
        inspect(&d, &name, "{{.Architecture}}"),
        std::env::consts::ARCH
            .replace("x86_64", "amd64")
            .replace("aarch64", "arm64")
    );
    // The file in the layer says which image this is.
    d.ok(&["create", "--name", "cc", &name]);
    let tar = d.docker(&["cp", "cc:/arch", "-"]).stdout;
    assert!(String::from_utf8_lossy(&tar).contains("amd64"));
    let err = d.fails(&["pull", "--platform", "linux/riscv64", &name]);
    assert!(
        err.contains("no matching manifest for linux/riscv64"),
        "{err}"
    );
}

#[test]
fn unknown_names_and_absent_registries_fail_clearly() {
    let d = Daemon::start();
    let reg = LocalRegistry::start();
    seed(&d, &reg, "test/bb:1");
    let err = d.fails(&["pull", &format!("{}/test/bb:nope", reg.addr)]);
    assert!(err.contains("not found"), "{err}");
    assert!(err.contains("test/bb:nope"), "{err}");
    let err = d.fails(&["pull", &format!("{}/test/none:1", reg.addr)]);
    assert!(err.contains("not found"), "{err}");
    let nobody = format!("127.0.0.1:{}", common::registry::free_port());
    let err = d.fails(&["pull", &format!("{nobody}/test/bb:1")]);
    assert!(
        err.contains(&nobody) && err.contains("onnection refused"),
        "{err}"
    );
    let err = d.fails(&["run", "--rm", &format!("{}/test/none:1", reg.addr)]);
    assert!(err.contains("not found"), "{err}");
    assert_eq!(d.ok(&["images", "-q"]), "");
}

#[test]
fn a_corrupted_blob_is_refused_and_nothing_is_stored() {
    let d = Daemon::start();
    let reg = LocalRegistry::start();
    seed(&d, &reg, "test/bb:1");
    let config = inspect_config_digest(&reg, "test/bb:1");
    let proxy = FaultyProxy::start(
        &reg.addr,
        Fault::Flip {
            digest: config.clone(),
        },
    );
    let name = format!("{}/test/bb:1", proxy.addr);
    let err = d.fails(&["pull", &name]);
    assert!(
        err.contains("digest mismatch") && err.contains(&config),
        "{err}"
    );
    // The config passes; the layer is corrupted.
    let layer = layer_digest(&reg, "test/bb:1");
    proxy.set(Fault::Flip {
        digest: layer.clone(),
    });
    let err = d.fails(&["pull", &name]);
    assert!(
        err.contains("digest mismatch") && err.contains(&layer),
        "{err}"
    );
    assert_eq!(d.ok(&["images", "-q"]), "");
    assert_eq!(ingest_files(&d), 0, "the bad bytes are not kept");
    proxy.set(Fault::None);
    d.ok(&["pull", &name]);
    assert_eq!(d.ok(&["run", "--rm", &name, "echo", "ok"]), "ok\n");
}

fn inspect_config_digest(reg: &LocalRegistry, name: &str) -> String {
    let m: serde_json::Value = serde_json::from_slice(&reg.raw_manifest(name)).unwrap();
    m["config"]["digest"].as_str().unwrap().to_owned()
}

/// The layer directories in the store (not the short links).
fn layer_dirs(d: &Daemon) -> usize {
    std::fs::read_dir(d.dir.path().join("data/layers"))
        .map_or(0, |r| r.flatten().filter(|e| e.file_name() != "l").count())
}

#[test]
fn layers_unpacked_by_a_failed_pull_are_removed() {
    let d = Daemon::start();
    let reg = LocalRegistry::start();
    d.import_busybox();
    let ctx = d.dir.path().join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM busybox:test\nRUN echo top > /top\n",
    )
    .unwrap();
    let name = format!("{}/test/two:1", reg.addr);
    d.ok(&["build", "-q", "-t", &name, ctx.to_str().unwrap()]);
    d.ok(&["push", &name]);
    d.ok(&["rmi", &name, "busybox:test"]);
    assert_eq!(layer_dirs(&d), 0);
    let m: serde_json::Value = serde_json::from_slice(&reg.raw_manifest("test/two:1")).unwrap();
    let top = m["layers"][1]["digest"].as_str().unwrap().to_owned();
    let proxy = FaultyProxy::start(
        &reg.addr,
        Fault::Flip {
            digest: top.clone(),
        },
    );
    let through = format!("{}/test/two:1", proxy.addr);
    let err = d.fails(&["pull", &through]);
    assert!(
        err.contains("digest mismatch") && err.contains(&top),
        "{err}"
    );
    // The bottom layer came whole and was unpacked; nothing records it.
    assert_eq!(layer_dirs(&d), 0);
    proxy.set(Fault::None);
    d.ok(&["pull", &through]);
    assert_eq!(layer_dirs(&d), 2);
    assert_eq!(d.ok(&["run", "--rm", &through, "cat", "/top"]), "top\n");
}

#[test]
fn a_cut_download_resumes_where_it_broke_off() {
    let d = Daemon::start();
    let reg = LocalRegistry::start();
    seed(&d, &reg, "test/bb:1");
    let layer = layer_digest(&reg, "test/bb:1");
    let proxy = FaultyProxy::start(
        &reg.addr,
        Fault::Cut {
            digest: layer.clone(),
            after: 65536,
        },
    );
    let name = format!("{}/test/bb:1", proxy.addr);
    d.ok(&["pull", &name]);
    let gets = proxy.seen(&format!("GET /v2/test/bb/blobs/{layer}"));
    assert_eq!(gets.len(), 2, "{gets:?}");
    assert!(
        gets[1].to_ascii_lowercase().contains("range: bytes=65536-"),
        "{}",
        gets[1]
    );
    assert_eq!(d.ok(&["run", "--rm", &name, "echo", "ok"]), "ok\n");
}

#[test]
fn a_stalled_registry_times_out_and_the_next_pull_resumes() {
    let d = Daemon::start_with(&["--registry-timeout", "1", "--max-download-attempts", "2"]);
    let reg = LocalRegistry::start();
    seed(&d, &reg, "test/bb:1");
    let layer = layer_digest(&reg, "test/bb:1");
    let proxy = FaultyProxy::start(
        &reg.addr,
        Fault::Stall {
            digest: layer.clone(),
            after: 65536,
        },
    );
    let name = format!("{}/test/bb:1", proxy.addr);
    let err = d.fails(&["pull", &name]);
    assert!(err.contains("timed out") || err.contains("imeout"), "{err}");
    assert!(err.contains("pull again to resume"), "{err}");
    assert_eq!(d.ok(&["images", "-q"]), "");
    proxy.set(Fault::None);
    d.ok(&["pull", &name]);
    // Each attempt got 64 KiB further; the next pull went on from there.
    let gets = proxy.seen(&format!("GET /v2/test/bb/blobs/{layer}"));
    assert_eq!(gets.len(), 3, "{gets:?}");
    assert!(gets[1].to_ascii_lowercase().contains("range: bytes=65536-"));
    assert!(
        gets[2]
            .to_ascii_lowercase()
            .contains("range: bytes=131072-"),
        "{}",
        gets[2]
    );
    assert_eq!(ingest_files(&d), 0);
}

#[test]
fn a_pull_resumes_from_a_registry_killed_mid_blob() {
    let d = Daemon::start_with(&["--registry-timeout", "1", "--max-download-attempts", "1"]);
    let mut reg = LocalRegistry::start();
    seed(&d, &reg, "test/bb:1");
    let layer = layer_digest(&reg, "test/bb:1");
    let proxy = FaultyProxy::start(
        &reg.addr,
        Fault::Stall {
            digest: layer.clone(),
            after: 65536,
        },
    );
    let name = format!("{}/test/bb:1", proxy.addr);
    // 64 KiB of the layer, then the registry falls silent, and dies.
    let err = d.fails(&["pull", &name]);
    assert!(err.contains("pull again to resume"), "{err}");
    reg.restart();
    proxy.set(Fault::None);
    d.ok(&["pull", &name]);
    let gets = proxy.seen(&format!("GET /v2/test/bb/blobs/{layer}"));
    assert_eq!(gets.len(), 2, "{gets:?}");
    assert!(gets[1].to_ascii_lowercase().contains("range: bytes=65536-"));
    assert_eq!(d.ok(&["run", "--rm", &name, "echo", "whole"]), "whole\n");
    assert_eq!(ingest_files(&d), 0);
}

#[test]
fn an_unsupported_layer_type_is_refused_before_anything_is_stored() {
    let d = Daemon::start();
    let reg = LocalRegistry::start();
    seed(&d, &reg, "test/bb:1");
    let mut m: serde_json::Value = serde_json::from_slice(&reg.raw_manifest("test/bb:1")).unwrap();
    m["layers"][0]["mediaType"] = "application/vnd.example.layer.v1+tar".into();
    let status = reg.put_manifest(
        "test/bb",
        "odd",
        "application/vnd.docker.distribution.manifest.v2+json",
        m.to_string().as_bytes(),
    );
    assert!(status.contains("201"), "{status}");
    let err = d.fails(&["pull", &format!("{}/test/bb:odd", reg.addr)]);
    assert!(
        err.contains("application/vnd.example.layer.v1+tar"),
        "{err}"
    );
    assert_eq!(d.ok(&["images", "-q"]), "");
    assert_eq!(ingest_files(&d), 0);
}

#[test]
fn docker_hub_names_go_to_the_mirrors_in_turn() {
    let reg = LocalRegistry::start();
    let empty = LocalRegistry::start();
    // A mirror where nothing listens, one without the image, one with it.
    let d = Daemon::start_with(&[
        "--registry-mirror",
        "http://127.0.0.1:1",
        "--registry-mirror",
        &format!("http://{}", empty.addr),
        "--registry-mirror",
        &format!("http://{}", reg.addr),
    ]);
    let id = seed(&d, &reg, "library/bb:1");
    let digest = reg.manifest_digest("library/bb:1");
    // `bb:1` is docker.io/library/bb:1, served by the last mirror.
    let out = d.ok(&["pull", "bb:1"]);
    assert!(out.contains(&format!("Digest: {digest}")), "{out}");
    assert!(out.contains("Downloaded newer image for bb:1"), "{out}");
    assert_eq!(inspect(&d, "bb:1", "{{.Id}}"), id);
    assert_eq!(
        inspect(&d, "docker.io/library/bb:1", "{{json .RepoDigests}}"),
        format!("[\"bb@{digest}\"]")
    );
    let (status, _, body) = d.http("GET", "/distribution/bb:1/json");
    assert!(
        status.contains("200") && body.contains(&digest),
        "{status} {body}"
    );
}

#[test]
fn build_pulls_a_missing_base_and_pull_refreshes_it() {
    let d = Daemon::start();
    let reg = LocalRegistry::start();
    let id = seed(&d, &reg, "test/bb:1");
    let name = format!("{}/test/bb:1", reg.addr);
    let ctx = d.dir.path().join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        format!("FROM {name}\nRUN echo built > /b\n"),
    )
    .unwrap();
    d.ok(&["build", "-t", "derived:1", ctx.to_str().unwrap()]);
    assert_eq!(inspect(&d, &name, "{{.Id}}"), id);
    assert_eq!(d.ok(&["run", "--rm", "derived:1", "cat", "/b"]), "built\n");
    // The local tag now names another image; --pull takes the registry's.
    d.ok(&["tag", "derived:1", &name]);
    std::fs::write(ctx.join("Dockerfile"), format!("FROM {name}\nLABEL x=1\n")).unwrap();
    d.ok(&["build", "-t", "stale:1", ctx.to_str().unwrap()]);
    assert_eq!(inspect(&d, "stale:1", "{{len .RootFS.Layers}}"), "2");
    d.ok(&["build", "--pull", "-t", "fresh:1", ctx.to_str().unwrap()]);
    assert_eq!(inspect(&d, "fresh:1", "{{len .RootFS.Layers}}"), "1");
    assert_eq!(inspect(&d, &name, "{{.Id}}"), id);
}
