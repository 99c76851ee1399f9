//! Privileged: image archives against independent implementations.
//! umoci builds an image (two layers, the second with whiteouts and an
//! opaque directory); skopeo converts it between formats; berth loads what
//! they wrote and writes what they read. Layer digests and unpacked trees
//! must be identical.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use berth_image::archive::Format;
use berth_image::config::ImageConfig;
use berth_store::{Store, StoreOptions};

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// An OCI layout made by umoci, and the rootfs it unpacks to.
struct UmociImage {
    dir: tempfile::TempDir,
}

impl UmociImage {
    fn layout(&self) -> PathBuf {
        self.dir.path().join("layout")
    }

    fn build() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let img = Self { dir };
        let layout = img.layout();
        let bundle = img.dir.path().join("bundle");
        let image = format!("{}:base", layout.display());
        run(Command::new("umoci")
            .args(["init", "--layout"])
            .arg(&layout));
        run(Command::new("umoci").args(["new", "--image", &image]));
        run(Command::new("umoci")
            .args(["unpack", "--image", &image])
            .arg(&bundle));
        let rootfs = bundle.join("rootfs");
        fs::create_dir_all(rootfs.join("bin")).unwrap();
        fs::copy("/bin/busybox", rootfs.join("bin/busybox")).unwrap();
        std::os::unix::fs::symlink("busybox", rootfs.join("bin/sh")).unwrap();
        fs::create_dir_all(rootfs.join("etc/app")).unwrap();
        fs::write(rootfs.join("etc/app/old.conf"), "old").unwrap();
        fs::write(rootfs.join("etc/gone"), "bye").unwrap();
        fs::hard_link(rootfs.join("etc/gone"), rootfs.join("etc/gone-too")).unwrap();
        // --refresh-bundle: the next repack is a new layer on top of this one.
        run(Command::new("umoci")
            .args(["repack", "--refresh-bundle", "--image", &image])
            .arg(&bundle));
        // Second layer: a deletion (whiteout) and a replaced directory (opaque).
        fs::remove_file(rootfs.join("etc/gone")).unwrap();
        fs::remove_dir_all(rootfs.join("etc/app")).unwrap();
        fs::create_dir_all(rootfs.join("etc/app")).unwrap();
        fs::write(rootfs.join("etc/app/new.conf"), "new").unwrap();
        run(Command::new("umoci")
            .args(["repack", "--image", &image])
            .arg(&bundle));
        run(Command::new("umoci").args(["config", "--image", &image, "--config.cmd", "sh"]));
        img
    }

    /// umoci's own view of the final filesystem.
    fn rootfs_tree(&self, tag: &str) -> std::collections::BTreeMap<String, String> {
        let bundle = self.dir.path().join(format!("check-{tag}"));
        let image = format!("{}:{tag}", self.layout().display());
        run(Command::new("umoci")
            .args(["unpack", "--image", &image])
            .arg(&bundle));
        common::tree(&bundle.join("rootfs"))
    }
}

/// Mounts an image read-only and describes its tree.
fn berth_tree(store: &Store, name: &str) -> std::collections::BTreeMap<String, String> {
    let id = store.resolve(name).unwrap();
    let chain = store.chain(&id).unwrap();
    let target = tempfile::tempdir().unwrap();
    store.layers().mount(&chain, None, target.path()).unwrap();
    let t = common::tree(target.path());
    berth_store::overlay::unmount(target.path()).unwrap();
    t
}

fn skopeo(from: &str, to: &str) {
    run(Command::new("skopeo").args(["--insecure-policy", "copy", "-q", from, to]));
}

fn open_store(dir: &Path) -> Store {
    Store::open(dir, StoreOptions::default()).unwrap()
}

fn diff_ids(store: &Store, name: &str) -> Vec<String> {
    let id = store.resolve(name).unwrap();
    let cfg = ImageConfig::parse(&store.blobs().read(&id, 1 << 20).unwrap(), "cfg").unwrap();
    cfg.rootfs
        .diff_ids
        .iter()
        .map(ToString::to_string)
        .collect()
}

#[test]
fn skopeo_docker_archive_loads_with_the_same_layers_and_tree() {
    let img = UmociImage::build();
    let tmp = tempfile::tempdir().unwrap();
    let archive = tmp.path().join("docker.tar");
    skopeo(
        &format!("oci:{}:base", img.layout().display()),
        &format!("docker-archive:{}:busybox:latest", archive.display()),
    );
    let store = open_store(&tmp.path().join("store"));
    let loaded = store.load(fs::File::open(&archive).unwrap()).unwrap();
    assert_eq!(loaded.len(), 1);
    assert_eq!(loaded[0].tags, vec!["docker.io/library/busybox:latest"]);
    assert_eq!(store.resolve("busybox").unwrap(), loaded[0].id);
    // The layers are the ones umoci made, digest for digest.
    let out = Command::new("skopeo")
        .args([
            "inspect",
            "--config",
            &format!("oci:{}:base", img.layout().display()),
        ])
        .output()
        .unwrap();
    let config: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let theirs: Vec<String> = config["rootfs"]["diff_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(theirs.len(), 2);
    assert_eq!(diff_ids(&store, "busybox"), theirs);
    // umoci's second layer deletes: berth holds that as overlay whiteouts.
    let top = store
        .layers()
        .diff_dir(&store.chain(&loaded[0].id).unwrap()[1]);
    let gone = fs::symlink_metadata(top.join("etc/gone")).unwrap();
    assert!(
        std::os::unix::fs::FileTypeExt::is_char_device(&gone.file_type()),
        "etc/gone is a whiteout"
    );
    let t = berth_tree(&store, "busybox");
    assert!(
        t.contains_key("etc/app/new.conf") && !t.contains_key("etc/app/old.conf"),
        "opaque dir: {t:?}"
    );
    assert!(
        !t.contains_key("etc/gone") && t.contains_key("etc/gone-too"),
        "whiteout: {t:?}"
    );
    assert_eq!(t, img.rootfs_tree("base"));
}

#[test]
fn skopeo_oci_archive_loads_and_berth_archives_read_back_in_skopeo_and_umoci() {
    let img = UmociImage::build();
    let tmp = tempfile::tempdir().unwrap();
    let oci_tar = tmp.path().join("oci.tar");
    skopeo(
        &format!("oci:{}:base", img.layout().display()),
        &format!("oci-archive:{}:example.com/app:v1", oci_tar.display()),
    );
    let store = open_store(&tmp.path().join("store"));
    let loaded = store.load(fs::File::open(&oci_tar).unwrap()).unwrap();
    assert_eq!(loaded[0].tags, vec!["example.com/app:v1"]);
    let expected_tree = img.rootfs_tree("base");
    assert_eq!(berth_tree(&store, "example.com/app:v1"), expected_tree);
    let ids = diff_ids(&store, "example.com/app:v1");

    // berth's docker archive → skopeo → OCI layout → umoci unpack.
    let saved = tmp.path().join("berth-docker.tar");
    store
        .save(
            &["example.com/app:v1"],
            Format::Docker,
            fs::File::create(&saved).unwrap(),
        )
        .unwrap();
    let layout = tmp.path().join("from-docker");
    skopeo(
        &format!("docker-archive:{}", saved.display()),
        &format!("oci:{}:t", layout.display()),
    );
    let bundle = tmp.path().join("b1");
    run(Command::new("umoci")
        .args(["unpack", "--image", &format!("{}:t", layout.display())])
        .arg(&bundle));
    assert_eq!(common::tree(&bundle.join("rootfs")), expected_tree);

    // berth's OCI archive → umoci unpack, by the tag berth wrote.
    let saved_oci = tmp.path().join("berth-oci.tar");
    store
        .save(
            &["example.com/app:v1"],
            Format::Oci,
            fs::File::create(&saved_oci).unwrap(),
        )
        .unwrap();
    let layout2 = tmp.path().join("from-oci");
    fs::create_dir(&layout2).unwrap();
    run(Command::new("tar")
        .arg("-xf")
        .arg(&saved_oci)
        .arg("-C")
        .arg(&layout2));
    let bundle2 = tmp.path().join("b2");
    run(Command::new("umoci")
        .args(["unpack", "--image", &format!("{}:v1", layout2.display())])
        .arg(&bundle2));
    assert_eq!(common::tree(&bundle2.join("rootfs")), expected_tree);

    // And berth reads its own archives back into a fresh store, same IDs.
    for archive in [&saved, &saved_oci] {
        let other = open_store(&tmp.path().join(format!(
            "store-{}",
            archive.file_name().unwrap().to_string_lossy()
        )));
        let again = other.load(fs::File::open(archive).unwrap()).unwrap();
        assert_eq!(again[0].id, loaded[0].id);
        assert_eq!(diff_ids(&other, "example.com/app:v1"), ids);
    }
}

#[test]
fn export_writes_the_merged_root_filesystem() {
    let img = UmociImage::build();
    let tmp = tempfile::tempdir().unwrap();
    let archive = tmp.path().join("docker.tar");
    skopeo(
        &format!("oci:{}:base", img.layout().display()),
        &format!("docker-archive:{}:app:1", archive.display()),
    );
    let store = open_store(&tmp.path().join("store"));
    store.load(fs::File::open(&archive).unwrap()).unwrap();
    let rootfs = tmp.path().join("rootfs.tar");
    store
        .export("app:1", fs::File::create(&rootfs).unwrap())
        .unwrap();
    let out = tmp.path().join("out");
    fs::create_dir(&out).unwrap();
    run(Command::new("tar")
        .arg("--xattrs")
        .arg("-xpf")
        .arg(&rootfs)
        .arg("-C")
        .arg(&out));
    assert_eq!(common::tree(&out), img.rootfs_tree("base"));
    assert!(
        !fs::read_dir(store.root().join("ingest"))
            .unwrap()
            .any(|_| true),
        "export view removed"
    );
}
