//! Privileged: new images from a parent and a change (build steps,
//! commit) on a real store: a scratch layer over the parent's overlay, a
//! change adopted from a directory, metadata-only images, Docker's
//! intermediate-image rules (hidden from the list, removed with their
//! last child, kept while an image still needs them), read-only views.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::fs;
use std::path::Path;

use berth_image::config::{ContainerConfig, History, ImageConfig};
use berth_image::Digest;
use berth_store::import::ImportOptions;
use berth_store::query::ListFilters;
use berth_store::remove::Removal;
use berth_store::{Commit, Store, StoreError, StoreOptions};
use common::Tar;

fn store(dir: &Path) -> Store {
    Store::open(&dir.join("store"), StoreOptions::default()).unwrap()
}

fn base(s: &Store) -> Digest {
    let mut t = Tar::new();
    t.dir("etc").file("etc/os", b"base\n").file("keep", b"k");
    s.import(
        &t.finish()[..],
        &ImportOptions {
            reference: Some("base:1".into()),
            ..Default::default()
        },
    )
    .unwrap()
    .id
}

/// A child of `parent` with `step` as its newest history entry.
fn child_config(s: &Store, parent: &Digest, step: &str, empty: bool) -> ImageConfig {
    let mut c = s.config(parent).unwrap();
    c.config
        .get_or_insert_with(ContainerConfig::default)
        .working_dir = format!("/{step}");
    c.history.push(History {
        created_by: Some(step.to_owned()),
        empty_layer: empty,
        ..Default::default()
    });
    c
}

#[test]
fn a_scratch_layer_sees_the_parent_and_becomes_a_layer_of_its_change() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    let parent = base(&s);
    let scratch = s.scratch(Some(&parent)).unwrap();
    assert_eq!(
        fs::read_to_string(scratch.root().join("etc/os")).unwrap(),
        "base\n"
    );
    fs::write(scratch.root().join("etc/os"), "changed\n").unwrap();
    fs::remove_file(scratch.root().join("keep")).unwrap();
    let c = s
        .commit(Commit {
            parent: Some(parent.clone()),
            config: child_config(&s, &parent, "change", false),
            change: Some(scratch),
            keep_empty: true,
        })
        .unwrap();
    assert!(c.layer);
    let chain = s.chain(&c.id).unwrap();
    assert_eq!(chain.len(), 2);
    // The new layer holds the change alone: the edit and a whiteout.
    let top = common::tree(&s.layers().diff_dir(&chain[1]));
    let changed = format!("file:8:{}", Digest::sha256(b"changed\n").short());
    assert!(top["etc/os"].starts_with(&changed), "{top:?}");
    assert!(top["keep"].starts_with("node:0"), "a whiteout: {top:?}");
    let view = s.view(&c.id).unwrap();
    assert_eq!(
        fs::read_to_string(view.root().join("etc/os")).unwrap(),
        "changed\n"
    );
    assert!(!view.root().join("keep").exists());
    drop(view);
    // The committed layer is stored as a plain tar (compressed only when
    // pushed): its blob is its DiffID and reads as the change. So is the
    // imported base layer.
    let out = s.hold_for_push(&c.id.to_string()).unwrap();
    for (layer, diff_id) in out.layers.iter().zip(&out.diff_ids) {
        assert_eq!(
            layer.media_type.as_deref(),
            Some(berth_image::media::OCI_LAYER)
        );
        assert_eq!(&layer.digest, diff_id);
    }
    let layer = &out.layers[1];
    assert_eq!(
        layer.media_type.as_deref(),
        Some(berth_image::media::OCI_LAYER)
    );
    assert_eq!(layer.digest, out.diff_ids[1]);
    let mut blob = s.read_blob(&layer.digest, layer.size).unwrap();
    let mut names = Vec::new();
    for e in tar::Archive::new(&mut blob).entries().unwrap() {
        names.push(e.unwrap().path().unwrap().display().to_string());
    }
    assert_eq!(names, ["etc/", "etc/os", ".wh.keep"], "{names:?}");
    s.release(&out.holder).unwrap();
    // Saved and loaded elsewhere, the layer is the same DiffID.
    let mut saved = Vec::new();
    s.save(
        &[&c.id.to_string()],
        berth_image::archive::Format::Docker,
        &mut saved,
    )
    .unwrap();
    let other = Store::open(&dir.path().join("other"), StoreOptions::default()).unwrap();
    assert_eq!(other.load(&saved[..]).unwrap()[0].id, c.id);
}

#[test]
fn metadata_steps_share_layers_and_intermediates_follow_dockers_rules() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    let parent = base(&s);
    let meta = s
        .commit(Commit {
            parent: Some(parent.clone()),
            config: child_config(&s, &parent, "env", true),
            change: None,
            keep_empty: true,
        })
        .unwrap();
    assert!(!meta.layer);
    assert_eq!(s.chain(&meta.id).unwrap(), s.chain(&parent).unwrap());
    let scratch = s.scratch(Some(&meta.id)).unwrap();
    fs::write(scratch.root().join("new"), "n").unwrap();
    let leaf = s
        .commit(Commit {
            parent: Some(meta.id.clone()),
            config: child_config(&s, &meta.id, "copy", false),
            change: Some(scratch),
            keep_empty: true,
        })
        .unwrap();
    let ids = |all: bool| -> Vec<Digest> {
        s.list(&ListFilters {
            all,
            ..Default::default()
        })
        .unwrap()
        .into_iter()
        .map(|i| i.id)
        .collect()
    };
    // The intermediate is hidden unless -a; the untagged leaf is dangling.
    assert_eq!(ids(false).len(), 2);
    assert!(!ids(false).contains(&meta.id) && ids(true).contains(&meta.id));
    assert_eq!(
        s.summary_of(&leaf.id).unwrap().parent.as_ref(),
        Some(&meta.id)
    );
    // An image others were made from cannot go by ID, and loses only its tag by name.
    let err = s.remove(&meta.id.to_string(), true).unwrap_err();
    assert!(
        matches!(err, StoreError::Conflict(ref m) if m.contains("dependent child images")),
        "{err}"
    );
    let removed = s.remove("base:1", false).unwrap();
    assert_eq!(
        removed,
        vec![Removal::Untagged("docker.io/library/base:1".into())]
    );
    assert!(s.summary_of(&parent).is_ok(), "a parent went with its tag");
    // The leaf goes with its untagged parents, all the way down.
    let removed = s.remove(&leaf.id.to_string(), false).unwrap();
    let deleted: Vec<&Digest> = removed
        .iter()
        .filter_map(|r| match r {
            Removal::Deleted(d) => Some(d),
            _ => None,
        })
        .collect();
    assert!(
        deleted.contains(&&leaf.id) && deleted.contains(&&meta.id) && deleted.contains(&&parent),
        "{removed:?}"
    );
    assert!(ids(true).is_empty());
    assert!(
        s.gc().unwrap().blobs_removed.is_empty(),
        "a removal left garbage for GC"
    );
}

#[test]
fn prune_keeps_the_parents_of_kept_images_and_takes_dangling_chains() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    let parent = base(&s);
    let step = |p: &Digest, name: &str| {
        s.commit(Commit {
            parent: Some(p.clone()),
            config: child_config(&s, p, name, true),
            change: None,
            keep_empty: true,
        })
        .unwrap()
        .id
    };
    let mid = step(&parent, "mid");
    let kept = step(&mid, "kept");
    s.tag(&kept.to_string(), "kept:1").unwrap();
    let dangling = step(&mid, "dangling");
    let report = s.prune(false).unwrap();
    let deleted: Vec<Digest> = report
        .removed
        .iter()
        .filter_map(|r| match r {
            Removal::Deleted(d) => Some(d.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(deleted, vec![dangling], "{report:?}");
    assert!(
        s.summary_of(&mid).is_ok(),
        "the parent of a tagged image was pruned"
    );
}

#[test]
fn an_adopted_directory_is_moved_into_the_layer_store() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    let parent = base(&s);
    let upper = dir.path().join("store/containers-like-upper");
    fs::create_dir_all(upper.join("app")).unwrap();
    fs::write(upper.join("app/run"), "#!/bin/sh\n").unwrap();
    let scratch = s.adopt(&upper).unwrap();
    assert!(!upper.exists(), "moved, not copied");
    let c = s
        .commit(Commit {
            parent: Some(parent.clone()),
            config: child_config(&s, &parent, "run", false),
            change: Some(scratch),
            keep_empty: true,
        })
        .unwrap();
    let view = s.view(&c.id).unwrap();
    assert_eq!(
        fs::read_to_string(view.root().join("app/run")).unwrap(),
        "#!/bin/sh\n"
    );
    assert_eq!(
        fs::read_to_string(view.root().join("etc/os")).unwrap(),
        "base\n"
    );
}

#[test]
fn a_config_that_does_not_list_its_parents_layers_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    let parent = base(&s);
    let err = s
        .commit(Commit {
            parent: Some(parent),
            config: ImageConfig::default(),
            change: None,
            keep_empty: true,
        })
        .unwrap_err();
    assert!(
        err.to_string().contains("must list its parent's layers"),
        "{err}"
    );
}
