//! Privileged: image operations on a real store (overlay layers, SQLite):
//! import, tag, list filters, inspect, history, rmi semantics, prune, GC,
//! fsck, and that bad input leaves the store exactly as it was.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

use berth_image::archive::Format;
use berth_store::import::ImportOptions;
use berth_store::query::ListFilters;
use berth_store::remove::Removal;
use berth_store::{Store, StoreError, StoreOptions};
use common::Tar;

fn store(dir: &Path) -> Store {
    Store::open(&dir.join("store"), StoreOptions::default()).unwrap()
}

fn import(
    s: &Store,
    files: &[(&str, &str)],
    reference: Option<&str>,
    changes: &[&str],
) -> berth_image::Digest {
    let mut t = Tar::new();
    for (p, c) in files {
        t.file(p, c.as_bytes());
    }
    let opts = ImportOptions {
        changes: changes.iter().map(|c| (*c).to_owned()).collect(),
        reference: reference.map(str::to_owned),
        message: None,
    };
    s.import(&t.finish()[..], &opts).unwrap().id
}

/// Every file of the store's content and every record, to compare states.
fn snapshot(s: &Store) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for sub in [
        "blobs/sha256",
        "blobs/sha512",
        "layers",
        "layers/l",
        "ingest",
    ] {
        if let Ok(rd) = fs::read_dir(s.root().join(sub)) {
            for e in rd {
                out.insert(format!(
                    "{sub}/{}",
                    e.unwrap().file_name().to_string_lossy()
                ));
            }
        }
    }
    for img in s.list(&ListFilters::default()).unwrap() {
        out.insert(format!("image {} {:?}", img.id, img.tags));
    }
    out
}

#[test]
fn import_applies_changes_and_tags() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    let id = import(
        &s,
        &[("hello", "world")],
        Some("example/app:1"),
        &["CMD [\"/hello\"]", "LABEL tier=web"],
    );
    let d = s.inspect("example/app:1").unwrap();
    assert_eq!(d.summary.id, id);
    assert_eq!(d.summary.tags, ["docker.io/example/app:1"]);
    assert_eq!(d.summary.labels["tier"], "web");
    assert_eq!(
        d.config.config.as_ref().unwrap().cmd.as_deref().unwrap(),
        ["/hello"]
    );
    assert_eq!(d.summary.size, 5);
    assert_eq!(fs::read(d.layer_dirs[0].join("hello")).unwrap(), b"world");
    let h = s.history(&id.to_string()).unwrap();
    assert_eq!(h.len(), 1);
    assert_eq!(
        (h[0].comment.as_str(), h[0].size, h[0].id.as_ref()),
        ("Imported from -", 5, Some(&id))
    );
}

#[test]
fn names_resolve_like_docker() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    let id = import(&s, &[("a", "1")], Some("busybox"), &[]);
    for name in [
        "busybox",
        "busybox:latest",
        "docker.io/library/busybox:latest",
        &id.to_string(),
        id.hex(),
        &id.hex()[..12],
        &format!("sha256:{}", &id.hex()[..6]),
    ] {
        assert_eq!(s.resolve(name).unwrap(), id, "{name}");
    }
    assert!(matches!(
        s.resolve("busybox:other").unwrap_err(),
        StoreError::ImageNotFound(_)
    ));
    assert!(s.resolve("Invalid:Ref").unwrap_err().is_not_found());
}

#[test]
fn list_filters_select_like_docker() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    let a = import(&s, &[("a", "1")], Some("alpha:1"), &["LABEL team=x"]);
    let b = import(&s, &[("b", "2")], Some("beta:2"), &["LABEL team=y"]);
    let c = import(&s, &[("c", "3")], None, &[]);
    let ids = |f: ListFilters| {
        s.list(&f)
            .unwrap()
            .into_iter()
            .map(|i| i.id)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        ids(ListFilters::default()),
        [c.clone(), b.clone(), a.clone()],
        "newest first"
    );
    assert_eq!(
        ids(ListFilters {
            dangling: Some(true),
            ..Default::default()
        }),
        std::slice::from_ref(&c)
    );
    assert_eq!(
        ids(ListFilters {
            labels: vec![("team".into(), Some("x".into()))],
            ..Default::default()
        }),
        std::slice::from_ref(&a)
    );
    assert_eq!(
        ids(ListFilters {
            labels: vec![("team".into(), None)],
            ..Default::default()
        }),
        [b.clone(), a.clone()]
    );
    assert_eq!(
        ids(ListFilters {
            reference: vec!["be*".into()],
            ..Default::default()
        }),
        std::slice::from_ref(&b)
    );
    assert_eq!(
        ids(ListFilters {
            before: Some("beta:2".into()),
            ..Default::default()
        }),
        std::slice::from_ref(&a)
    );
    assert_eq!(
        ids(ListFilters {
            since: Some("alpha:1".into()),
            ..Default::default()
        }),
        [c, b]
    );
}

#[test]
fn rmi_untags_first_refuses_ambiguity_and_images_in_use() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    let id = import(&s, &[("a", "1")], Some("one"), &[]);
    s.tag("one", "two:v").unwrap();
    // By ID with two tags: must be forced.
    let err = s.remove(id.hex(), false).unwrap_err();
    assert!(
        matches!(err, StoreError::Conflict(_))
            && err
                .to_string()
                .contains("referenced in multiple repositories"),
        "{err}"
    );
    // By tag: only untags while another tag remains.
    assert_eq!(
        s.remove("two:v", false).unwrap(),
        [Removal::Untagged("docker.io/library/two:v".into())]
    );
    // Held by a container: refused, and forcing only untags.
    s.hold("container-1", &id).unwrap();
    let err = s.remove("one", false).unwrap_err();
    assert!(
        err.to_string()
            .contains("container-1 is using its referenced image"),
        "{err}"
    );
    let err = s.remove(id.hex(), false).unwrap_err();
    assert!(
        err.to_string().contains("being used by container-1"),
        "{err}"
    );
    assert_eq!(
        s.remove("one", true).unwrap(),
        [Removal::Untagged("docker.io/library/one:latest".into())]
    );
    assert_eq!(s.resolve(id.hex()).unwrap(), id, "still there, dangling");
    s.release("container-1").unwrap();
    let removed = s.remove(id.hex(), false).unwrap();
    assert_eq!(removed[0], Removal::Deleted(id.clone()));
    assert_eq!(removed.len(), 2, "image and its layer: {removed:?}");
    assert!(s.layers().list().unwrap().is_empty());
    assert!(!s.blobs().contains(&id));
}

#[test]
fn shared_layers_are_stored_once_and_survive_removal_of_one_image() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    let files = [("same", "content")];
    let a = import(&s, &files, Some("a"), &["CMD [\"a\"]"]);
    let b = import(&s, &files, Some("b"), &["CMD [\"b\"]"]);
    assert_ne!(a, b);
    assert_eq!(s.chain(&a).unwrap(), s.chain(&b).unwrap());
    assert_eq!(s.layers().list().unwrap().len(), 1);
    s.remove("a", false).unwrap();
    let chain = s.chain(&b).unwrap();
    assert!(s.layers().contains(&chain[0]), "b still needs the layer");
    s.remove("b", false).unwrap();
    assert!(!s.layers().contains(&chain[0]));
}

#[test]
fn prune_removes_dangling_then_all_unused() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    let kept = import(&s, &[("k", "1")], Some("kept"), &[]);
    let dangling = import(&s, &[("d", "22")], None, &[]);
    let used = import(&s, &[("u", "333")], None, &[]);
    s.hold("ctr", &used).unwrap();
    let r = s.prune(false).unwrap();
    assert!(
        r.removed.contains(&Removal::Deleted(dangling.clone())),
        "{r:?}"
    );
    assert_eq!(r.space_reclaimed, 2);
    assert!(s.resolve(used.hex()).is_ok() && s.resolve(kept.hex()).is_ok());
    let r = s.prune(true).unwrap();
    assert!(r.removed.contains(&Removal::Deleted(kept)));
    assert!(
        s.resolve(used.hex()).is_ok(),
        "held images are never pruned"
    );
}

#[test]
fn gc_removes_only_what_nothing_references() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    let id = import(&s, &[("a", "1")], Some("a"), &[]);
    let stray = s.blobs().put_bytes(b"nobody's").unwrap();
    let before = snapshot(&s);
    let report = s.gc().unwrap();
    assert_eq!(report.blobs_removed, std::slice::from_ref(&stray));
    let mut expected = before;
    expected.remove(&format!("blobs/sha256/{}", stray.hex()));
    assert_eq!(snapshot(&s), expected);
    assert!(s.fsck().unwrap().problems.is_empty());
    assert_eq!(s.resolve("a").unwrap(), id);
}

#[test]
fn a_flipped_byte_is_reported_by_fsck_and_refused_by_save() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    import(&s, &[("a", "some content to corrupt")], Some("a"), &[]);
    let layer_blob = s.layers().list().unwrap()[0].clone();
    let _ = layer_blob;
    let id = s.resolve("a").unwrap();
    let blob = {
        let archive = tempfile::tempfile().unwrap();
        s.save(&["a"], Format::Oci, archive).unwrap();
        s.blobs()
            .list()
            .unwrap()
            .into_iter()
            .map(|(d, ..)| d)
            .find(|d| *d != id)
            .unwrap()
    };
    let path = s.blobs().path(&blob);
    let mut bytes = fs::read(&path).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    fs::write(&path, bytes).unwrap();
    let report = s.fsck().unwrap();
    assert_eq!(report.problems.len(), 1, "{report:?}");
    assert!(
        report.problems[0].contains(&format!("blob {blob} is corrupt")),
        "{report:?}"
    );
    let err = s.save(&["a"], Format::Docker, std::io::sink()).unwrap_err();
    assert!(
        err.to_string().contains(&format!("blob {blob} is corrupt")),
        "{err}"
    );
}

/// A hand-made OCI layout: one layer of the given media type whose config
/// claims a DiffID the layer does not have.
fn oci_archive_with_layer_type(media_type: &str) -> Vec<u8> {
    use berth_image::Digest;
    let layer = Tar::new().file("f", b"x").finish();
    let ld = Digest::sha256(&layer);
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":["sha256:{}"]}}}}"#,
        "0".repeat(64)
    );
    let cd = Digest::sha256(config.as_bytes());
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{cd}","size":{}}},"layers":[{{"mediaType":"{media_type}","digest":"{ld}","size":{}}}]}}"#,
        config.len(),
        layer.len()
    );
    let md = Digest::sha256(manifest.as_bytes());
    let index = format!(
        r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{md}","size":{}}}]}}"#,
        manifest.len()
    );
    Tar::new()
        .file("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)
        .file(&format!("blobs/sha256/{}", ld.hex()), &layer)
        .file(&format!("blobs/sha256/{}", cd.hex()), config.as_bytes())
        .file(&format!("blobs/sha256/{}", md.hex()), manifest.as_bytes())
        .file("index.json", index.as_bytes())
        .finish()
}

/// `hay` with every `from` replaced by `to` (same length, so tar offsets hold).
fn replace_bytes(hay: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    assert_eq!(from.len(), to.len());
    let mut out = hay.to_vec();
    let mut found = 0;
    for i in 0..=out.len() - from.len() {
        if &out[i..i + from.len()] == from {
            out[i..i + from.len()].copy_from_slice(to);
            found += 1;
        }
    }
    assert!(found > 0, "pattern not found");
    out
}

fn assert_refused_unchanged(s: &Store, archive: &[u8], needle: &str) {
    let before = snapshot(s);
    let err = s.load(archive).unwrap_err();
    assert!(
        err.to_string().contains(needle),
        "expected {needle:?} in: {err}"
    );
    assert_eq!(
        snapshot(s),
        before,
        "the store changed after a failed load ({err})"
    );
}

#[test]
fn bad_archives_get_precise_errors_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    // Content gzip cannot shrink, so the layer blob is most of the archive.
    let mut x: u32 = 1;
    let noise: String = (0..200_000)
        .map(|_| {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            char::from(b'a' + u8::try_from((x >> 16) % 26).unwrap())
        })
        .collect();
    import(&s, &[("base", &noise)], Some("base"), &[]);
    let mut good = Vec::new();
    s.save(&["base"], Format::Docker, &mut good).unwrap();
    let other = store(&dir.path().join("other"));
    // A truncated archive.
    assert_refused_unchanged(
        &other,
        &good[..good.len() / 2 + 7],
        "the archive is truncated",
    );
    // Not an image archive at all.
    assert_refused_unchanged(
        &other,
        &Tar::new().file("x", b"y").finish(),
        "neither manifest.json nor index.json",
    );
    // A manifest naming a blob the archive lacks.
    let missing = format!("blobs/sha256/{}", "a".repeat(64));
    let manifest = format!(r#"[{{"Config":"{missing}","RepoTags":["x:1"],"Layers":[]}}]"#);
    assert_refused_unchanged(
        &other,
        &Tar::new()
            .file("manifest.json", manifest.as_bytes())
            .finish(),
        &format!("{missing} is named by the index but missing"),
    );
    // A blob that does not match the digest its path promises.
    let fake = format!("blobs/sha256/{}", "b".repeat(64));
    let tar = Tar::new()
        .file(&fake, b"not that content")
        .file("manifest.json", b"[]")
        .finish();
    assert_refused_unchanged(&other, &tar, &format!("digest mismatch for {fake}"));
    // An invalid reference in RepoTags.
    let bad_tag = replace_bytes(
        &good,
        b"\"RepoTags\":[\"base:latest\"]",
        b"\"RepoTags\":[\"BASE:latest\"]",
    );
    assert_refused_unchanged(&other, &bad_tag, "repository name must be lowercase");
    // An unknown layer media type in an OCI layout.
    let odd = oci_archive_with_layer_type("application/vnd.oci.image.layer.v1.tar+lzma");
    assert_refused_unchanged(&other, &odd, "unsupported media type \"application/vnd.oci.image.layer.v1.tar+lzma\" in manifest sha256:");
    // A layer that does not unpack to the DiffID its config names.
    let wrong = oci_archive_with_layer_type("application/vnd.oci.image.layer.v1.tar");
    assert_refused_unchanged(&other, &wrong, "(uncompressed): expected sha256:0000");
    // And the good one still loads.
    assert_eq!(
        other.load(&good[..]).unwrap()[0].tags,
        ["docker.io/library/base:latest"]
    );
}

#[test]
fn a_second_process_cannot_open_the_same_store() {
    let dir = tempfile::tempdir().unwrap();
    let _s = store(dir.path());
    let err = Store::open(&dir.path().join("store"), StoreOptions::default()).unwrap_err();
    assert!(
        err.to_string().contains("in use by another berth process"),
        "{err}"
    );
}

#[test]
fn untag_removes_one_reference_and_keeps_the_image() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    let id = import(&s, &[("a", "1")], Some("one:1"), &[]);
    assert_eq!(s.untag("one:1").unwrap(), "docker.io/library/one:1");
    assert!(s.resolve("one:1").unwrap_err().is_not_found());
    assert_eq!(s.resolve(id.hex()).unwrap(), id);
    let err = s.untag("one:1").unwrap_err();
    assert!(err.is_not_found(), "{err}");
    let dangling = ListFilters {
        dangling: Some(true),
        ..ListFilters::default()
    };
    assert_eq!(s.list(&dangling).unwrap()[0].id, id);
}

#[test]
fn saving_images_that_share_a_layer_writes_it_once() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    let files = [("shared", "the same layer in both images")];
    import(&s, &files, Some("a"), &["CMD [\"a\"]"]);
    import(&s, &files, Some("b"), &["CMD [\"b\"]"]);
    let layer = s.chain(&s.resolve("a").unwrap()).unwrap()[0].clone();
    for format in [Format::Docker, Format::Oci] {
        let mut out = Vec::new();
        s.save(&["a", "b"], format, &mut out).unwrap();
        let mut ar = tar::Archive::new(&out[..]);
        let mut blob_entries = 0;
        let mut names = Vec::new();
        for e in ar.entries().unwrap() {
            let e = e.unwrap();
            let p = e.path().unwrap().to_string_lossy().into_owned();
            if p.starts_with("blobs/") && e.header().entry_type().is_file() {
                blob_entries += 1;
            }
            names.push(p);
        }
        let unique: std::collections::BTreeSet<_> = names.iter().collect();
        assert_eq!(
            unique.len(),
            names.len(),
            "an entry written twice: {names:?}"
        );
        // 1 shared layer + 2 configs + 2 manifests.
        assert_eq!(blob_entries, 5, "{names:?}");
        let other = Store::open(
            &dir.path().join(format!("other-{format:?}")),
            StoreOptions::default(),
        )
        .unwrap();
        let loaded = other.load(&out[..]).unwrap();
        assert_eq!(loaded.len(), 2);
        assert_eq!(
            other.chain(&other.resolve("b").unwrap()).unwrap(),
            std::slice::from_ref(&layer)
        );
    }
}

#[test]
fn gc_running_beside_a_loader_never_takes_what_the_load_records() {
    let dir = tempfile::tempdir().unwrap();
    let s = std::sync::Arc::new(store(dir.path()));
    let mut archives = Vec::new();
    for i in 0..6 {
        let src = store(&dir.path().join(format!("src{i}")));
        import(
            &src,
            &[("f", &format!("content {i}"))],
            Some(&format!("img{i}")),
            &[],
        );
        let mut out = Vec::new();
        src.save(&[&format!("img{i}")], Format::Docker, &mut out)
            .unwrap();
        archives.push(out);
    }
    let gc = {
        let s = s.clone();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        (
            std::thread::spawn(move || {
                let mut runs = 0;
                while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                    s.gc().unwrap();
                    runs += 1;
                }
                runs
            }),
            stop,
        )
    };
    for a in &archives {
        s.load(&a[..]).unwrap();
    }
    gc.1.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(gc.0.join().unwrap() > 0);
    assert!(s.fsck().unwrap().problems.is_empty());
    for i in 0..6 {
        let id = s.resolve(&format!("img{i}")).unwrap();
        assert!(s.layers().contains(&s.chain(&id).unwrap()[0]));
    }
}

/// A save's output that looks at the store while the archive streams.
struct Peek<'a> {
    store: &'a Store,
    holders: Option<Vec<String>>,
    fail: bool,
}

impl std::io::Write for Peek<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.holders.is_none() {
            // The store answers mid-save: its lock is not held.
            self.holders = Some(self.store.holders().unwrap());
        }
        if self.fail {
            return Err(std::io::Error::other("reader gone"));
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_save_holds_its_images_without_the_lock_and_lets_go_after() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    import(&s, &[("a", "1")], Some("app:1"), &[]);
    for fail in [false, true] {
        let mut out = Peek {
            store: &s,
            holders: None,
            fail,
        };
        let result = s.save(&["app:1"], Format::Docker, &mut out);
        assert_eq!(result.is_err(), fail);
        let during = out.holders.unwrap();
        assert!(
            during.len() == 1 && during[0].starts_with("transient:save:"),
            "{during:?}"
        );
        assert!(
            s.holders().unwrap().is_empty(),
            "released, even after a failure"
        );
    }
    // A hold left by a process killed mid-save goes at the next opening.
    drop(s);
    let db = rusqlite::Connection::open(dir.path().join("store/berth.db")).unwrap();
    let id: String = db
        .query_row("SELECT id FROM images LIMIT 1", [], |r| r.get(0))
        .unwrap();
    db.execute(
        "INSERT INTO holds (holder, kind, target) VALUES ('transient:save:7', 'image', ?1)",
        [&id],
    )
    .unwrap();
    drop(db);
    let s = store(dir.path());
    assert!(s.holders().unwrap().is_empty());
    s.remove("app:1", false).unwrap();
}

#[test]
fn a_pushed_form_goes_with_its_layer() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    import(&s, &[("a", "1")], Some("one"), &[]);
    let out = s.hold_for_push("one").unwrap();
    let blob = out.layers[0].digest.clone();
    s.release(&out.holder).unwrap();
    let gz = berth_image::Digest::sha256(b"the gzip");
    s.record_pushed_form(&blob, &gz, 8).unwrap();
    assert_eq!(s.pushed_form(&blob).unwrap(), Some((gz, 8)));
    s.remove("one", false).unwrap();
    assert_eq!(s.pushed_form(&blob).unwrap(), None);
}
