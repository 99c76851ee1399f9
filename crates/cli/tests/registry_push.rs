//! Privileged: pushes through `berth daemon` to a real registry (Debian's
//! docker-registry on 127.0.0.1) — push then pull round trips digest for
//! digest (another daemon pulls what one pushed; skopeo reads it); a
//! second push uploads nothing; another repository mounts the layers;
//! OCI manifests when asked; layers stored uncompressed are gzipped on
//! the way; logins (htpasswd) with the docker CLI and berth; errors.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::process::Command;

use common::daemon::{output_with_input, Daemon};
use common::registry::{Fault, FaultyProxy, LocalRegistry};
use common::token::TokenServer;

/// A three-layer image on `d`, tagged `name`; returns its ID.
fn app_image(d: &Daemon, name: &str) -> String {
    d.import_busybox();
    let ctx = d.dir.path().join("app-ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM busybox:test\nRUN echo a > /a\nRUN echo b > /b\nCMD [\"cat\", \"/a\", \"/b\"]\n",
    )
    .unwrap();
    d.ok(&["build", "-q", "-t", name, ctx.to_str().unwrap()]);
    d.ok(&["images", "-q", "--no-trunc", name])
        .trim()
        .to_owned()
}

fn raw_manifest(reg: &LocalRegistry, name: &str) -> serde_json::Value {
    serde_json::from_slice(&reg.raw_manifest(name)).unwrap()
}

/// The digest in `docker push`'s closing line.
fn pushed_digest(out: &str) -> String {
    let line = out.lines().find(|l| l.contains(": digest: ")).unwrap();
    line.split_whitespace().nth(2).unwrap().to_owned()
}

#[test]
fn what_docker_pushes_another_daemon_pulls_digest_for_digest() {
    let d = Daemon::start();
    let reg = LocalRegistry::start();
    let name = format!("{}/test/app:1", reg.addr);
    let id = app_image(&d, &name);
    let out = d.ok(&["push", &name]);
    assert_eq!(out.matches(": Pushed").count(), 3, "{out}");
    let digest = pushed_digest(&out);
    assert_eq!(reg.manifest_digest("test/app:1"), digest);
    let m = raw_manifest(&reg, "test/app:1");
    assert_eq!(
        m["mediaType"],
        "application/vnd.docker.distribution.manifest.v2+json"
    );
    assert_eq!(m["layers"].as_array().unwrap().len(), 3);
    assert_eq!(m["config"]["digest"], id);
    assert_eq!(
        d.ok(&[
            "image",
            "inspect",
            "--format",
            "{{json .RepoDigests}}",
            &name
        ])
        .trim(),
        format!("[\"{}/test/app@{digest}\"]", reg.addr)
    );
    // skopeo reads what berth pushed, blob for blob.
    let oci = d.dir.path().join("copied");
    let st = Command::new("skopeo")
        .args(["copy", "-q", "--src-tls-verify=false"])
        .arg(format!("docker://{name}"))
        .arg(format!("oci:{}:app", oci.display()))
        .status()
        .unwrap();
    assert!(st.success());
    // Another daemon pulls the very same image.
    let other = Daemon::start();
    let out = other.ok(&["pull", &name]);
    assert!(out.contains(&format!("Digest: {digest}")), "{out}");
    assert_eq!(other.ok(&["images", "-q", "--no-trunc", &name]).trim(), id);
    assert_eq!(other.ok(&["run", "--rm", &name]), "a\nb\n");
}

#[test]
fn a_second_push_uploads_nothing_and_another_repository_mounts() {
    let d = Daemon::start();
    let reg = LocalRegistry::start();
    let proxy = FaultyProxy::start(&reg.addr, Fault::None);
    let name = format!("{}/test/app:1", proxy.addr);
    app_image(&d, &name);
    let first = d.ok(&["push", &name]);
    let uploads = proxy.seen("PATCH ").len();
    assert_eq!(uploads, 3, "one streamed upload per layer");
    let again = d.ok(&["push", &name]);
    assert_eq!(again.matches("Layer already exists").count(), 3, "{again}");
    assert_eq!(
        proxy.seen("PATCH ").len(),
        uploads,
        "nothing uploaded again"
    );
    assert_eq!(pushed_digest(&again), pushed_digest(&first));
    let other = format!("{}/test/other:1", proxy.addr);
    d.ok(&["tag", &name, &other]);
    let out = d.berth_ok(&["push", &other]);
    assert_eq!(out.matches("Mounted from test/app").count(), 3, "{out}");
    assert_eq!(proxy.seen("PATCH ").len(), uploads, "mounted, not uploaded");
    assert_eq!(
        proxy
            .seen("POST /v2/test/other/blobs/uploads/?mount=")
            .len(),
        3
    );
}

#[test]
fn oci_manifests_when_asked_and_loaded_layers_are_compressed() {
    let d = Daemon::start();
    let reg = LocalRegistry::start();
    let name = format!("{}/test/oci:1", reg.addr);
    let id = app_image(&d, &name);
    d.berth_ok(&["push", "--oci", &name]);
    let m = raw_manifest(&reg, "test/oci:1");
    assert_eq!(m["mediaType"], "application/vnd.oci.image.manifest.v1+json");
    assert_eq!(
        m["config"]["mediaType"],
        "application/vnd.oci.image.config.v1+json"
    );
    for l in m["layers"].as_array().unwrap() {
        assert_eq!(
            l["mediaType"],
            "application/vnd.oci.image.layer.v1.tar+gzip"
        );
    }
    // An image loaded from skopeo's docker-archive (uncompressed layers)
    // goes out gzipped, and comes back as the same image.
    let tar = d.dir.path().join("plain.tar");
    let st = Command::new("skopeo")
        .args(["copy", "-q", "--src-tls-verify=false"])
        .arg(format!("docker://{name}"))
        .arg(format!("docker-archive:{}:plain/app:1", tar.display()))
        .status()
        .unwrap();
    assert!(st.success());
    let other = Daemon::start();
    other.ok(&["load", "-i", tar.to_str().unwrap()]);
    let pushed = format!("{}/test/plain:1", reg.addr);
    other.ok(&["tag", "plain/app:1", &pushed]);
    other.ok(&["push", &pushed]);
    let m = raw_manifest(&reg, "test/plain:1");
    for l in m["layers"].as_array().unwrap() {
        assert_eq!(
            l["mediaType"],
            "application/vnd.docker.image.rootfs.diff.tar.gzip"
        );
        let blob = std::fs::read(reg.blob_file(l["digest"].as_str().unwrap())).unwrap();
        assert_eq!(&blob[..2], b"\x1f\x8b", "gzip");
    }
    let third = Daemon::start();
    third.ok(&["pull", &pushed]);
    assert_eq!(
        third.ok(&["images", "-q", "--no-trunc", &pushed]).trim(),
        id
    );
    assert_eq!(third.ok(&["run", "--rm", &pushed]), "a\nb\n");
}

#[test]
fn logins_open_a_registry_that_wants_them() {
    let d = Daemon::start();
    let reg = LocalRegistry::with_login("alice", "s3cret");
    let name = format!("{}/test/app:1", reg.addr);
    app_image(&d, &name);
    let err = d.fails(&["push", &name]);
    assert!(
        err.contains("unauthorized") && err.contains("login"),
        "{err}"
    );
    let err = d.fails(&["login", "-u", "alice", "-p", "wrong", &reg.addr]);
    assert!(err.contains("unauthorized"), "{err}");
    let out = d.docker_with_input(
        &["login", "-u", "alice", "--password-stdin", &reg.addr],
        b"s3cret\n",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("Login Succeeded"));
    d.ok(&["push", &name]);
    // berth's login, kept where docker keeps it, serves berth pull.
    let other = Daemon::start();
    let config = other.dir.path().join("berth-config");
    let berth = |args: &[&str], input: &[u8]| {
        let mut c = other.berth_command(args);
        c.env("DOCKER_CONFIG", &config);
        output_with_input(c, input)
    };
    let out = berth(&["pull", &name], b"");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("berth login"));
    let out = berth(
        &["login", "-u", "alice", "--password-stdin", &reg.addr],
        b"wrong",
    );
    assert!(!out.status.success());
    assert!(!config.join("config.json").exists(), "nothing kept");
    let out = berth(
        &["login", "-u", "alice", "--password-stdin", &reg.addr],
        b"s3cret",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = berth(&["pull", &name], b"");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = berth(&["logout", &reg.addr], b"");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("Removing login credentials for {}\n", reg.addr)
    );
    other.ok(&["rmi", &name]);
    assert!(!berth(&["pull", &name], b"").status.success());
}

#[test]
fn bearer_tokens_from_a_token_server_carry_pushes_mounts_and_pulls() {
    let tokens = TokenServer::start("tom", "t0ken");
    let reg = LocalRegistry::with_tokens(&tokens);
    let d = Daemon::start();
    let name = format!("{}/team/app:1", reg.addr);
    app_image(&d, &name);
    let err = d.fails(&["push", &name]);
    assert!(err.contains("unauthorized"), "{err}");
    let err = d.fails(&["login", "-u", "tom", "-p", "wrong", &reg.addr]);
    assert!(err.contains("unauthorized"), "{err}");
    d.ok(&["login", "-u", "tom", "-p", "t0ken", &reg.addr]);
    // The token server gave the login a refresh token: the docker CLI
    // keeps it instead of the password, and sends it with each push.
    let config = std::fs::read_to_string(d.dir.path().join("docker-config/config.json")).unwrap();
    assert!(
        config.contains("\"identitytoken\": \"refresh-tom\""),
        "{config}"
    );
    let digest = pushed_digest(&d.ok(&["push", &name]));
    // A mount asks for both repositories in one token.
    let other = format!("{}/team/copy:1", reg.addr);
    d.ok(&["tag", &name, &other]);
    let out = d.ok(&["push", &other]);
    assert_eq!(out.matches("Mounted from team/app").count(), 3, "{out}");
    let asked = scopes_asked(&tokens);
    assert!(
        asked
            .iter()
            .any(|s| s.contains(&"repository:team/copy:pull,push".to_owned())
                && s.contains(&"repository:team/app:pull".to_owned())),
        "{asked:?}"
    );
    let requests = tokens.requests.lock().unwrap().clone();
    assert!(
        requests
            .iter()
            .any(|q| q.starts_with("POST ") && q.contains("grant_type=refresh_token")),
        "{requests:?}"
    );
    d.ok(&["rmi", &name, &other]);
    let out = d.ok(&["pull", &name]);
    assert!(out.contains(&format!("Digest: {digest}")), "{out}");
    assert_eq!(d.ok(&["run", "--rm", &name]), "a\nb\n");
}

#[test]
fn a_loaded_image_is_gzipped_once_then_found_and_mounted() {
    let d = Daemon::start();
    let reg = LocalRegistry::start();
    let name = format!("{}/test/src:1", reg.addr);
    let id = app_image(&d, &name);
    d.ok(&["push", &name]);
    // skopeo's docker-archive holds the layers uncompressed.
    let tar = d.dir.path().join("plain.tar");
    let st = Command::new("skopeo")
        .args(["copy", "-q", "--src-tls-verify=false"])
        .arg(format!("docker://{name}"))
        .arg(format!("docker-archive:{}:plain/app:1", tar.display()))
        .status()
        .unwrap();
    assert!(st.success());
    let other = Daemon::start();
    other.ok(&["load", "-i", tar.to_str().unwrap()]);
    let proxy = FaultyProxy::start(&reg.addr, Fault::None);
    let pushed = format!("{}/test/plain:1", proxy.addr);
    other.ok(&["tag", "plain/app:1", &pushed]);
    // The first upload of the big layer breaks off: gzipped again into
    // a new upload.
    proxy.set(Fault::CutUpload { after: 64 << 10 });
    let out = other.ok(&["push", &pushed]);
    assert_eq!(out.matches(": Pushed").count(), 3, "{out}");
    let patches = proxy.seen("PATCH ").len();
    assert_eq!(patches, 4, "three layers, one twice");
    for h in proxy.seen("PATCH ") {
        assert!(
            h.to_ascii_lowercase()
                .contains("transfer-encoding: chunked"),
            "{h}"
        );
    }
    // Pushed again: the registry is asked for the gzip it got, by digest.
    let out = other.ok(&["push", &pushed]);
    assert_eq!(out.matches("Layer already exists").count(), 3, "{out}");
    // Another repository: mounted from the first.
    let copy = format!("{}/test/copy:1", proxy.addr);
    other.ok(&["tag", &pushed, &copy]);
    let out = other.ok(&["push", &copy]);
    assert_eq!(out.matches("Mounted from test/plain").count(), 3, "{out}");
    assert_eq!(proxy.seen("PATCH ").len(), patches, "nothing sent again");
    let third = Daemon::start();
    let from_reg = format!("{}/test/copy:1", reg.addr);
    third.ok(&["pull", &from_reg]);
    assert_eq!(
        third.ok(&["images", "-q", "--no-trunc", &from_reg]).trim(),
        id
    );
    assert_eq!(third.ok(&["run", "--rm", &from_reg]), "a\nb\n");
}

#[test]
fn a_broken_upload_is_sent_again() {
    let d = Daemon::start();
    let reg = LocalRegistry::start();
    let proxy = FaultyProxy::start(&reg.addr, Fault::None);
    let name = format!("{}/test/big:1", proxy.addr);
    // One layer of 3 MiB that gzip cannot shrink, cut 1 MiB in.
    d.import_busybox();
    let ctx = d.dir.path().join("big-ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    let noise: Vec<u8> = (0..3u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13).to_le_bytes()[0])
        .collect();
    std::fs::write(ctx.join("noise"), noise).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM busybox:test\nCOPY noise /noise\n",
    )
    .unwrap();
    d.ok(&["build", "-q", "-t", &name, ctx.to_str().unwrap()]);
    proxy.set(Fault::CutUpload { after: 1 << 20 });
    let out = d.ok(&["push", &name]);
    let digest = pushed_digest(&out);
    // Two layers, and the cut one sent again in an upload of its own.
    assert_eq!(proxy.seen("PATCH ").len(), 3);
    assert_eq!(proxy.seen("POST /v2/test/big/blobs/uploads/").len(), 4);
    // What the registry holds is the image, byte for byte.
    let inspected = Command::new("skopeo")
        .args(["inspect", "--tls-verify=false", "--raw"])
        .arg(format!("docker://{}/test/big:1", reg.addr))
        .output()
        .unwrap();
    assert!(inspected.status.success());
    assert_eq!(reg.manifest_digest("test/big:1"), digest);
    d.ok(&["rmi", &name]);
    d.ok(&["pull", &name]);
    assert_eq!(
        d.ok(&["run", "--rm", &name, "wc", "-c", "/noise"]),
        "3145728 /noise\n"
    );
}

/// The scopes each token request asked for (a GET's `scope` parameters,
/// a POST's space-separated `scope`).
fn scopes_asked(tokens: &TokenServer) -> Vec<Vec<String>> {
    let requests = tokens.requests.lock().unwrap().clone();
    requests
        .iter()
        .map(|q| {
            let form = q.strip_prefix("POST ").unwrap_or(q);
            form_urlencoded::parse(form.as_bytes())
                .filter(|(k, _)| k == "scope")
                .flat_map(|(_, v)| v.split(' ').map(str::to_owned).collect::<Vec<_>>())
                .filter(|s| !s.is_empty())
                .collect()
        })
        .collect()
}

#[test]
fn berth_keeps_identity_tokens_and_fetches_short_lived_tokens_again() {
    let tokens = TokenServer::start("tom", "t0ken");
    let reg = LocalRegistry::with_tokens(&tokens);
    let d = Daemon::start();
    let name = format!("{}/team/app:1", reg.addr);
    app_image(&d, &name);
    let out = output_with_input(
        d.berth_command(&["login", "-u", "tom", "--password-stdin", &reg.addr]),
        b"t0ken",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let config: serde_json::Value = serde_json::from_slice(
        &std::fs::read(d.dir.path().join("docker-config/config.json")).unwrap(),
    )
    .unwrap();
    let entry = &config["auths"][&reg.addr];
    assert_eq!(entry["identitytoken"], "refresh-tom", "{config}");
    // The user name alone: the password is not kept.
    assert_eq!(entry["auth"], base64_of("tom:"), "{config}");
    d.berth_ok(&["push", &name]);
    d.ok(&["rmi", &name]);
    // Tokens that live long are reused: one token for the whole pull.
    let before = tokens.requests.lock().unwrap().len();
    d.berth_ok(&["pull", &name]);
    let pull_tokens = tokens.requests.lock().unwrap()[before..].to_vec();
    assert_eq!(pull_tokens.len(), 1, "{pull_tokens:?}");
    assert!(
        pull_tokens[0].starts_with("POST grant_type=refresh_token"),
        "{pull_tokens:?}"
    );
    // Tokens about to expire are not: each request gets a fresh one.
    tokens
        .lifetime
        .store(5, std::sync::atomic::Ordering::SeqCst);
    d.ok(&["rmi", &name]);
    let before = tokens.requests.lock().unwrap().len();
    d.berth_ok(&["pull", &name]);
    let fetched = tokens.requests.lock().unwrap().len() - before;
    // The manifest, the config and the two layers busybox:test lacks.
    assert!(fetched >= 4, "{fetched} tokens for a pull");
    assert_eq!(d.ok(&["run", "--rm", &name]), "a\nb\n");
}

fn base64_of(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}

#[test]
fn push_failures_are_clear_and_distribution_answers() {
    let d = Daemon::start();
    let reg = LocalRegistry::start();
    let err = d.fails(&["push", &format!("{}/test/none:1", reg.addr)]);
    assert!(
        err.contains("An image does not exist locally with the tag"),
        "{err}"
    );
    let nobody = format!("127.0.0.1:{}/test/app:1", common::registry::free_port());
    app_image(&d, &nobody);
    let err = d.fails(&["push", &nobody]);
    assert!(err.contains("onnection refused"), "{err}");
    // What a name points to, without pulling it.
    let name = format!("{}/test/app:1", reg.addr);
    d.ok(&["tag", &nobody, &name]);
    let digest = pushed_digest(&d.ok(&["push", &name]));
    let (status, _, body) = d.http("GET", &format!("/distribution/{name}/json"));
    assert!(status.contains("200"), "{status} {body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["Descriptor"]["digest"], digest);
    assert_eq!(v["Platforms"][0]["os"], "linux");
    let (status, _, _) = d.http(
        "GET",
        &format!("/distribution/{}/test/nope:1/json", reg.addr),
    );
    assert!(status.contains("404"), "{status}");
    let (status, _, _) = d.http("GET", "/images/search?term=busybox");
    assert!(status.contains("501"), "{status}");
}
