//! Layers on the real kernel (needs root: overlay mounts, device nodes,
//! `trusted.*` xattrs): `LayerStore` unpacking and repair, overlay stacks
//! read-only and writable, 130-layer stacks through short links, and the
//! diff of an upper dir back into a layer.
//!
//! Every mount is undone by a [`Mounted`] guard, so a failed assertion
//! leaves nothing mounted; every test works in its own temp dir.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use berth_image::chain::chain_ids;
use berth_image::Digest;
use berth_store::layers::LayerStore;
use berth_store::unpack::{unpack, UnpackOptions};
use berth_store::StoreError;
use common::Tar;

/// Overlay's opaque-directory marker, as the layers record it.
const OPAQUE: &str = "trusted.overlay.opaque";

/// A store in its own temp dir; scratch dirs (mount points, upper, work)
/// go next to it, on the same file system.
struct Fixture {
    dir: tempfile::TempDir,
    store: LayerStore,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = LayerStore::open(dir.path(), UnpackOptions::default()).unwrap();
    Fixture { dir, store }
}

impl Fixture {
    fn root(&self) -> &Path {
        self.dir.path()
    }

    fn layers(&self) -> PathBuf {
        self.root().join("layers")
    }

    /// A new empty directory `name` in the fixture.
    fn scratch(&self, name: &str) -> PathBuf {
        let p = self.root().join(name);
        fs::create_dir(&p).unwrap();
        p
    }

    /// Unpacks a stack of uncompressed layer tars, bottom first; their
    /// ChainIDs.
    fn stack(&self, tars: &[Vec<u8>]) -> Vec<Digest> {
        let diff_ids: Vec<Digest> = tars.iter().map(|t| Digest::sha256(t)).collect();
        let chains = chain_ids(&diff_ids);
        for ((tar, diff_id), chain) in tars.iter().zip(&diff_ids).zip(&chains) {
            let got = self.store.create(chain, diff_id, &tar[..]).unwrap();
            assert_eq!(got.unwrap().diff_id, *diff_id);
        }
        chains
    }

    /// Mounts the stack at `target`; unmounted when the guard drops.
    fn mount(&self, chains: &[Digest], upper: Option<(&Path, &Path)>, target: &Path) -> Mounted {
        // The guard exists before the mount: a mount half done (a bind
        // mount whose read-only remount failed) is undone too.
        let guard = Mounted(target.to_owned());
        self.store.mount(chains, upper, target).unwrap();
        guard
    }

    /// Names in `layers/` that are work in progress.
    fn tmp_dirs(&self) -> Vec<String> {
        names(&self.layers())
            .into_iter()
            .filter(|n| n.starts_with("tmp-"))
            .collect()
    }

    /// The short link of a layer (its name is in `<hex>/link`).
    fn link_of(&self, chain: &Digest) -> PathBuf {
        let name = fs::read_to_string(self.store.layer_dir(chain).join("link")).unwrap();
        self.layers().join("l").join(name.trim())
    }
}

/// Unmounts on drop (lazily), so no test leaves a mount behind.
struct Mounted(PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        match berth_store::overlay::unmount(&self.0) {
            // EINVAL: not a mount point (the mount failed or was undone).
            Err(StoreError::Io { source, .. })
                if source.raw_os_error() == Some(rustix::io::Errno::INVAL.raw_os_error()) => {}
            Err(e) => eprintln!("unmounting {}: {e}", self.0.display()),
            Ok(()) => {}
        }
    }
}

/// Whether `p` is a mount point now.
fn is_mounted(p: &Path) -> bool {
    let p = p.to_str().unwrap();
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .any(|l| l.split(' ').nth(4) == Some(p))
}

/// The sorted names in a directory.
fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// Every xattr of `p` (not following a symlink), sorted.
fn xattrs(p: &Path) -> Vec<(String, Vec<u8>)> {
    let size = rustix::fs::llistxattr_query(p).unwrap();
    let mut list = vec![0u8; size];
    let n = rustix::fs::llistxattr(p, &mut list[..]).unwrap();
    let mut out = Vec::new();
    for name in list[..n].split(|b| *b == 0).filter(|n| !n.is_empty()) {
        let name = String::from_utf8(name.to_vec()).unwrap();
        let len = rustix::fs::lgetxattr_query(p, name.as_str()).unwrap();
        let mut v = vec![0u8; len];
        let got = rustix::fs::lgetxattr(p, name.as_str(), &mut v[..]).unwrap();
        v.truncate(got);
        out.push((name, v));
    }
    out.sort();
    out
}

fn xattr(p: &Path, name: &str) -> Option<Vec<u8>> {
    xattrs(p)
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

fn is_whiteout(p: &Path) -> bool {
    let m = fs::symlink_metadata(p).unwrap();
    m.file_type().is_char_device() && m.rdev() == 0
}

/// `common::tree` as a layer sees it: overlay's private bookkeeping
/// (`trusted.overlay.origin`, `impure`…, but not the opaque marker) is not
/// layer content, and a whiteout's mtime carries no meaning (overlay shares
/// one whiteout inode; unpacking makes a fresh one).
fn layer_view(root: &Path) -> BTreeMap<String, String> {
    common::tree(root)
        .into_iter()
        .map(|(path, desc)| {
            let p = root.join(&path);
            let (head, _) = desc.split_once(" xattrs=").unwrap();
            let mut head = head.to_owned();
            if is_whiteout(&p) {
                head.truncate(head.find(" mtime=").unwrap());
                head.push_str(" mtime=(whiteout)");
            }
            let kept: Vec<String> = if fs::symlink_metadata(&p).unwrap().is_symlink() {
                Vec::new()
            } else {
                xattrs(&p)
                    .into_iter()
                    .filter(|(k, _)| k == OPAQUE || !k.starts_with("trusted.overlay."))
                    .map(|(k, v)| format!("{k}={}", String::from_utf8_lossy(&v)))
                    .collect()
            };
            (path, format!("{head} xattrs={kept:?}"))
        })
        .collect()
}

/// A layer with something of every kind the store must reproduce.
fn rich_layer() -> Vec<u8> {
    Tar::new()
        .dir("etc/")
        .file_with("etc/conf", b"conf", 0o640, 12, 34, 1_234_567)
        .file_with("etc/suid", b"s", 0o4755, 0, 0, 7_654_321)
        .xattrs(&[("user.note", b"kept"), ("security.x", b"y")])
        .file("etc/tagged", b"tagged")
        .symlink("etc/link", "../bin/tool")
        .dir("bin/")
        .file("bin/tool", b"#!/bin/sh\n")
        .hardlink("bin/alias", "bin/tool")
        .device("dev-null", tar::EntryType::Char, 1, 3)
        .device("fifo", tar::EntryType::Fifo, 0, 0)
        .file(".wh.gone", b"")
        .dir("opaque/")
        .file("opaque/.wh..wh..opq", b"")
        .file("opaque/inside", b"in")
        .finish()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

/// A blob reader that fails the test if anything reads it.
struct Untouchable;

impl Read for Untouchable {
    fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
        panic!("the blob of a layer already unpacked was read");
    }
}

// ---------------------------------------------------------------- LayerStore

#[test]
fn gzip_zstd_and_plain_blobs_unpack_to_the_same_tree() {
    let f = fixture();
    let plain = rich_layer();
    let diff_id = Digest::sha256(&plain);
    let gz = gzip(&plain);
    let zst = zstd::stream::encode_all(&plain[..], 3).unwrap();
    assert_eq!(&gz[..2], &[0x1f, 0x8b], "really gzip");
    assert_eq!(&zst[..4], &[0x28, 0xb5, 0x2f, 0xfd], "really zstd");

    let mut trees = Vec::new();
    for (kind, blob) in [("plain", &plain), ("gzip", &gz), ("zstd", &zst)] {
        // Same content under three ChainIDs, so each is unpacked anew.
        let chain = Digest::sha256(kind.as_bytes());
        let got = f.store.create(&chain, &diff_id, &blob[..]).unwrap();
        let got = got.unwrap_or_else(|| panic!("{kind}: nothing unpacked"));
        assert_eq!(got.diff_id, diff_id, "{kind}: the DiffID hashes the tar");
        assert!(f.store.contains(&chain), "{kind}");
        trees.push((kind, common::tree(&f.store.diff_dir(&chain))));
    }
    let (_, first) = &trees[0];
    for (kind, t) in &trees[1..] {
        assert_eq!(t, first, "{kind} differs from plain");
    }

    // The content is what the tar says, whiteouts in overlay's format.
    let diff = f.store.diff_dir(&Digest::sha256(b"plain"));
    let conf = fs::metadata(diff.join("etc/conf")).unwrap();
    assert_eq!(
        (conf.mode() & 0o7777, conf.uid(), conf.gid(), conf.mtime()),
        (0o640, 12, 34, 1_234_567)
    );
    assert_eq!(
        fs::metadata(diff.join("etc/suid")).unwrap().mode() & 0o7777,
        0o4755
    );
    assert_eq!(
        xattr(&diff.join("etc/tagged"), "user.note").unwrap(),
        b"kept"
    );
    assert_eq!(
        fs::read_link(diff.join("etc/link")).unwrap(),
        Path::new("../bin/tool")
    );
    assert_eq!(
        fs::metadata(diff.join("bin/alias")).unwrap().ino(),
        fs::metadata(diff.join("bin/tool")).unwrap().ino()
    );
    assert_eq!(
        fs::metadata(diff.join("dev-null")).unwrap().rdev(),
        rustix::fs::makedev(1, 3)
    );
    assert!(fs::metadata(diff.join("fifo"))
        .unwrap()
        .file_type()
        .is_fifo());
    assert!(is_whiteout(&diff.join("gone")));
    assert!(!diff.join(".wh.gone").exists());
    assert_eq!(xattr(&diff.join("opaque"), OPAQUE).unwrap(), b"y");
    assert_eq!(names(&diff.join("opaque")), ["inside"]);

    let mut listed = f.store.list().unwrap();
    listed.sort_by(|a, b| a.hex().cmp(b.hex()));
    let mut want: Vec<Digest> = ["plain", "gzip", "zstd"]
        .iter()
        .map(|k| Digest::sha256(k.as_bytes()))
        .collect();
    want.sort_by(|a, b| a.hex().cmp(b.hex()));
    assert_eq!(listed, want);
    assert!(f.tmp_dirs().is_empty(), "{:?}", f.tmp_dirs());
}

#[test]
fn creating_a_layer_twice_leaves_the_first_alone() {
    let f = fixture();
    let tar = rich_layer();
    let chains = f.stack(std::slice::from_ref(&tar));
    let before = common::tree(&f.store.layer_dir(&chains[0]));
    let layers_before = names(&f.layers());

    // Not even read: a wrong DiffID would not be noticed either.
    let again = f
        .store
        .create(&chains[0], &Digest::sha256(b"other"), Untouchable)
        .unwrap();
    assert_eq!(again, None);
    assert_eq!(common::tree(&f.store.layer_dir(&chains[0])), before);
    assert_eq!(names(&f.layers()), layers_before);
}

#[test]
fn the_same_layer_created_at_once_by_many_writers_is_installed_once() {
    // Two build stages can commit the same layer at the same moment.
    let f = fixture();
    let tar = Tar::new().file("a", b"a").finish();
    let diff_id = Digest::sha256(&tar);
    for round in 0..200 {
        let chain = Digest::sha256(format!("chain {round}").as_bytes());
        let start = std::sync::Barrier::new(16);
        std::thread::scope(|s| {
            for _ in 0..16 {
                s.spawn(|| {
                    start.wait();
                    f.store.create(&chain, &diff_id, &tar[..]).unwrap();
                });
            }
        });
        assert!(f.store.contains(&chain));
    }
    assert!(f.tmp_dirs().is_empty(), "{:?}", f.tmp_dirs());
}

#[test]
fn a_wrong_diff_id_keeps_nothing() {
    for compress in [false, true] {
        let f = fixture();
        let tar = rich_layer();
        let blob = if compress { gzip(&tar) } else { tar.clone() };
        let chain = Digest::sha256(b"chain");
        let claimed = Digest::sha256(b"not this layer");
        let err = f.store.create(&chain, &claimed, &blob[..]).unwrap_err();
        match &err {
            StoreError::DigestMismatch {
                expected, actual, ..
            } => {
                assert_eq!(*expected, claimed.to_string());
                assert_eq!(*actual, Digest::sha256(&tar).to_string());
            }
            other => panic!("expected a digest mismatch, got {other}"),
        }
        assert!(!f.store.layer_dir(&chain).exists());
        assert!(!f.store.contains(&chain));
        assert_eq!(names(&f.layers()), ["l"], "no layer, no temp dir");
        assert!(names(&f.layers().join("l")).is_empty(), "no link");
        assert!(f.store.list().unwrap().is_empty());
    }
}

#[test]
fn a_broken_blob_keeps_nothing() {
    let f = fixture();
    let gz = gzip(&rich_layer());
    let cut = &gz[..gz.len() / 2];
    let chain = Digest::sha256(b"chain");
    f.store
        .create(&chain, &Digest::sha256(b"whatever"), cut)
        .unwrap_err();
    assert_eq!(names(&f.layers()), ["l"]);
}

#[test]
fn open_removes_leftovers_and_restores_links() {
    let f = fixture();
    let chains = f.stack(&[Tar::new().file("a", b"a").finish()]);
    let link = f.link_of(&chains[0]);
    assert_eq!(
        fs::canonicalize(&link).unwrap(),
        fs::canonicalize(f.store.diff_dir(&chains[0])).unwrap()
    );

    // A crash: a half-unpacked layer, a lost link, a link to a lost layer.
    let leftover = f.layers().join("tmp-x");
    fs::create_dir_all(leftover.join("diff/deep")).unwrap();
    fs::write(leftover.join("diff/deep/file"), b"half").unwrap();
    fs::remove_file(&link).unwrap();
    let dangling = f.layers().join("l/DANGLINGDANGLINGDANGLINGD");
    std::os::unix::fs::symlink("../0000/diff", &dangling).unwrap();

    let store = LayerStore::open(f.root(), UnpackOptions::default()).unwrap();
    assert!(!leftover.exists(), "the temp dir is removed");
    assert!(f.tmp_dirs().is_empty());
    assert!(
        fs::symlink_metadata(&dangling).is_err(),
        "dangling link removed"
    );
    assert_eq!(
        fs::canonicalize(&link).unwrap(),
        fs::canonicalize(store.diff_dir(&chains[0])).unwrap(),
        "the link is back and leads to the layer"
    );
    assert_eq!(fs::read(link.join("a")).unwrap(), b"a");
    assert_eq!(store.list().unwrap(), chains);

    // A second open of a sound store changes nothing.
    let before = common::tree(&f.layers());
    LayerStore::open(f.root(), UnpackOptions::default()).unwrap();
    assert_eq!(common::tree(&f.layers()), before);
}

#[test]
fn remove_takes_the_directory_and_the_link() {
    let f = fixture();
    let chains = f.stack(&[
        Tar::new().file("a", b"a").finish(),
        Tar::new().file("b", b"b").finish(),
    ]);
    let link = f.link_of(&chains[1]);
    f.store.remove(&chains[1]).unwrap();
    assert!(!f.store.layer_dir(&chains[1]).exists());
    assert!(!f.store.contains(&chains[1]));
    assert!(fs::symlink_metadata(&link).is_err());
    assert!(f.tmp_dirs().is_empty());
    assert_eq!(f.store.list().unwrap(), vec![chains[0].clone()]);
    // The other layer is untouched, and removing twice is fine.
    assert!(f.link_of(&chains[0]).join("a").is_file());
    f.store.remove(&chains[1]).unwrap();
    // It can come back.
    let tar = Tar::new().file("b", b"b").finish();
    let again = f
        .store
        .create(&chains[1], &Digest::sha256(&tar), &tar[..])
        .unwrap();
    assert!(again.is_some());
    assert!(link.join("b").is_file());
}

// ------------------------------------------------------------------ overlay

/// A bottom layer and one on top that whites out `a`, replaces `d`'s
/// content (opaque) and adds files.
fn two_layers(f: &Fixture) -> Vec<Digest> {
    let bottom = Tar::new()
        .file("a", b"lower a")
        .file("b", b"lower b")
        .dir("d/")
        .file("d/old", b"old")
        .dir("d/sub/")
        .file("d/sub/older", b"older")
        .dir("keep/")
        .file("keep/k", b"k")
        .finish();
    let top = Tar::new()
        .file(".wh.a", b"")
        .dir("d/")
        .file("d/.wh..wh..opq", b"")
        .file("d/new", b"new")
        .file("c", b"upper c")
        .finish();
    f.stack(&[bottom, top])
}

/// What the two layers show merged.
fn assert_two_layer_view(merged: &Path) {
    assert_eq!(names(merged), ["b", "c", "d", "keep"], "`a` is whited out");
    assert_eq!(names(&merged.join("d")), ["new"], "`d` is opaque");
    assert_eq!(fs::read(merged.join("d/new")).unwrap(), b"new");
    assert_eq!(fs::read(merged.join("b")).unwrap(), b"lower b");
    assert_eq!(fs::read(merged.join("c")).unwrap(), b"upper c");
    assert_eq!(fs::read(merged.join("keep/k")).unwrap(), b"k");
    assert!(!merged.join("a").exists());
    assert!(!merged.join(".wh.a").exists());
}

#[test]
fn a_read_only_stack_applies_whiteouts_and_opaque_dirs() {
    let f = fixture();
    let chains = two_layers(&f);
    let merged = f.scratch("merged");
    let _m = f.mount(&chains, None, &merged);
    assert!(is_mounted(&merged));
    assert_two_layer_view(&merged);
    let err = fs::write(merged.join("x"), b"x").unwrap_err();
    assert_eq!(err.raw_os_error(), Some(erofs()), "{err}");
}

#[test]
fn a_single_layer_mounts_read_only() {
    let f = fixture();
    let chains = f.stack(&[Tar::new().dir("d/").file("d/f", b"f").finish()]);
    let merged = f.scratch("merged");
    let _m = f.mount(&chains, None, &merged);
    assert_eq!(fs::read(merged.join("d/f")).unwrap(), b"f");
    let err = fs::write(merged.join("x"), b"x").unwrap_err();
    assert_eq!(err.raw_os_error(), Some(erofs()), "{err}");
    assert!(!f.store.diff_dir(&chains[0]).join("x").exists());
}

fn erofs() -> i32 {
    rustix::io::Errno::ROFS.raw_os_error()
}

#[test]
fn a_writable_stack_writes_to_upper_and_whites_out_deletions() {
    let f = fixture();
    let chains = two_layers(&f);
    let (upper, work, merged) = (f.scratch("upper"), f.scratch("work"), f.scratch("merged"));
    let _m = f.mount(&chains, Some((&upper, &work)), &merged);
    assert_two_layer_view(&merged);

    fs::write(merged.join("fresh"), b"fresh").unwrap();
    assert_eq!(fs::read(upper.join("fresh")).unwrap(), b"fresh");

    fs::write(merged.join("b"), b"changed b").unwrap();
    assert_eq!(fs::read(upper.join("b")).unwrap(), b"changed b");
    let bottom = f.store.diff_dir(&chains[0]);
    assert_eq!(
        fs::read(bottom.join("b")).unwrap(),
        b"lower b",
        "lower untouched"
    );

    fs::remove_file(merged.join("keep/k")).unwrap();
    assert!(!merged.join("keep/k").exists());
    assert!(
        is_whiteout(&upper.join("keep/k")),
        "deletion is a 0/0 char device"
    );
    assert_eq!(fs::read(bottom.join("keep/k")).unwrap(), b"k");

    fs::remove_file(merged.join("c")).unwrap();
    assert!(is_whiteout(&upper.join("c")), "a file of the top lower too");
    assert!(f.store.diff_dir(&chains[1]).join("c").is_file());

    assert_eq!(names(&merged), ["b", "d", "fresh", "keep"]);
}

#[test]
fn a_stack_over_a_page_of_options_is_refused_without_mounting() {
    let f = fixture();
    let merged = f.scratch("merged");
    let chains: Vec<Digest> = (0..200u32)
        .map(|i| Digest::sha256(&i.to_be_bytes()))
        .collect();
    let _m = Mounted(merged.clone());
    let err = f.store.mount(&chains, None, &merged).unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "{err}");
    assert!(err.to_string().contains("200 layers"), "{err}");
    let err = f.store.mount(&[], None, &merged).unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "{err}");
    assert!(!is_mounted(&merged));
}

// ---------------------------------------------------------- 130-layer stack

const DEEP: usize = 130;

fn deep_stack(f: &Fixture) -> Vec<Digest> {
    let tars: Vec<Vec<u8>> = (0..DEEP)
        .map(|i| {
            Tar::new()
                .file(&format!("f{i:03}"), format!("layer {i}").as_bytes())
                .finish()
        })
        .collect();
    f.stack(&tars)
}

#[test]
fn a_130_layer_stack_mounts_and_shows_every_layer() {
    let f = fixture();
    let chains = deep_stack(&f);
    let merged = f.scratch("merged");
    {
        let _m = f.mount(&chains, None, &merged);
        let want: Vec<String> = (0..DEEP).map(|i| format!("f{i:03}")).collect();
        assert_eq!(names(&merged), want);
        for i in 0..DEEP {
            let got = fs::read_to_string(merged.join(format!("f{i:03}"))).unwrap();
            assert_eq!(got, format!("layer {i}"));
        }
    }
    assert!(!is_mounted(&merged));
    // Writable too, with absolute upper and work paths in the options.
    let (upper, work) = (f.scratch("upper"), f.scratch("work"));
    let _m = f.mount(&chains, Some((&upper, &work)), &merged);
    assert_eq!(names(&merged).len(), DEEP);
    fs::remove_file(merged.join("f000")).unwrap();
    fs::write(merged.join("f129"), b"top").unwrap();
    assert!(is_whiteout(&upper.join("f000")));
    assert_eq!(fs::read(upper.join("f129")).unwrap(), b"top");
}

#[test]
fn short_links_are_what_fits_130_layers_in_a_page() {
    let f = fixture();
    let chains = deep_stack(&f);
    let lowerdir = f.store.lowerdir(&chains);
    assert!(lowerdir.len() < 4096, "{} bytes", lowerdir.len());

    // Top first, each entry a link (relative to `layers/`) to its layer.
    let entries: Vec<&str> = lowerdir.split(':').collect();
    assert_eq!(entries.len(), DEEP);
    for (entry, chain) in entries.iter().zip(chains.iter().rev()) {
        assert_eq!(
            fs::canonicalize(f.layers().join(entry)).unwrap(),
            fs::canonicalize(f.store.diff_dir(chain)).unwrap()
        );
    }

    // The layer paths themselves would not fit, not even relative ones.
    let join = |p: &dyn Fn(&Digest) -> String| -> String {
        chains.iter().rev().map(p).collect::<Vec<_>>().join(":")
    };
    let absolute = join(&|c| f.store.diff_dir(c).display().to_string());
    let relative = join(&|c| format!("{}/diff", c.hex()));
    assert!(absolute.len() > 4096, "{} bytes", absolute.len());
    assert!(relative.len() > 4096, "{} bytes", relative.len());
}

// ---------------------------------------------------------------- diff

/// A base image, and a container that changed it every way there is.
struct Committed {
    f: Fixture,
    base: Vec<Digest>,
    upper: PathBuf,
    /// The container's view before it stopped.
    merged_tree: BTreeMap<String, String>,
}

fn container_with_changes() -> Committed {
    let f = fixture();
    let base = f.stack(&[Tar::new()
        .dir("etc/")
        .file("etc/conf", b"old conf")
        .file_with("etc/keep", b"keep", 0o644, 5, 6, 1_111)
        .xattrs(&[("user.base", b"b")])
        .file("etc/attr", b"attr")
        .dir("var/")
        .dir("var/lib/")
        .dir("var/lib/data/")
        .file("var/lib/data/x", b"x")
        .dir("var/lib/data/sub/")
        .file("var/lib/data/sub/y", b"y")
        .file("rmme", b"rm")
        .dir("opt/")
        .file("opt/o", b"o")
        .dir("srv/")
        .file("srv/s", b"served")
        .finish()]);
    let (upper, work, merged) = (f.scratch("upper"), f.scratch("work"), f.scratch("merged"));
    let merged_tree = {
        let _m = f.mount(&base, Some((&upper, &work)), &merged);
        let m = |p: &str| merged.join(p);
        fs::write(m("etc/new"), b"new file").unwrap();
        rustix::fs::setxattr(
            m("etc/new"),
            "user.x",
            b"hello",
            rustix::fs::XattrFlags::empty(),
        )
        .unwrap();
        fs::write(m("etc/conf"), b"new conf").unwrap();
        fs::set_permissions(m("etc/keep"), fs::Permissions::from_mode(0o600)).unwrap();
        fs::write(m("etc/attr"), b"attr changed").unwrap();
        fs::remove_file(m("rmme")).unwrap();
        fs::remove_dir_all(m("opt")).unwrap();
        // Replaced wholesale: overlay marks the new directory opaque.
        fs::remove_dir_all(m("var/lib/data")).unwrap();
        fs::create_dir(m("var/lib/data")).unwrap();
        fs::write(m("var/lib/data/fresh"), b"fresh").unwrap();
        fs::write(m("h1"), b"linked").unwrap();
        fs::hard_link(m("h1"), m("h2")).unwrap();
        std::os::unix::fs::symlink("etc/new", m("lnk")).unwrap();
        // A lower directory renamed: refused (no redirect), so done the
        // way `mv` then does it.
        match fs::rename(m("srv"), m("srv2")) {
            Err(e) if e.raw_os_error() == Some(exdev()) => {
                fs::create_dir(m("srv2")).unwrap();
                fs::copy(m("srv/s"), m("srv2/s")).unwrap();
                fs::remove_dir_all(m("srv")).unwrap();
            }
            other => eprintln!("renaming a lower directory: {other:?}"),
        }
        fs::create_dir_all(m("newdir/deep")).unwrap();
        fs::write(m("newdir/deep/f"), b"deep").unwrap();
        common::tree(&merged)
    };
    assert!(!is_mounted(&merged));

    // What the kernel did, which the diff must translate.
    assert!(is_whiteout(&upper.join("rmme")));
    assert!(is_whiteout(&upper.join("opt")));
    assert_eq!(xattr(&upper.join("var/lib/data"), OPAQUE).unwrap(), b"y");
    assert_eq!(names(&upper.join("var/lib/data")), ["fresh"]);
    assert_eq!(fs::metadata(upper.join("h1")).unwrap().nlink(), 2);
    assert_eq!(
        fs::read(upper.join("etc/keep")).unwrap(),
        b"keep",
        "full copy-up"
    );
    Committed {
        f,
        base,
        upper,
        merged_tree,
    }
}

fn exdev() -> i32 {
    rustix::io::Errno::XDEV.raw_os_error()
}

/// Whatever the kernel's defaults, a container's upper dir never points
/// into its lowers: no directory redirects, no metadata-only copy-ups.
#[test]
fn a_writable_stack_keeps_its_upper_dir_self_contained() {
    let f = fixture();
    let base = f.stack(&[Tar::new()
        .dir("d/")
        .file("d/f", b"data")
        .file("g", b"gdata")
        .finish()]);
    let (upper, work, merged) = (f.scratch("upper"), f.scratch("work"), f.scratch("merged"));
    {
        let _m = f.mount(&base, Some((&upper, &work)), &merged);
        let err = fs::rename(merged.join("d"), merged.join("e")).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(exdev()), "{err}");
        fs::set_permissions(merged.join("g"), fs::Permissions::from_mode(0o600)).unwrap();
    }
    assert_eq!(names(&upper), ["g"]);
    assert_eq!(fs::read(upper.join("g")).unwrap(), b"gdata");
    let private: Vec<String> = xattrs(&upper.join("g"))
        .into_iter()
        .map(|(k, _)| k)
        .filter(|k| k.contains("metacopy") || k.contains("redirect"))
        .collect();
    assert!(private.is_empty(), "{private:?}");
}

fn diff_of(upper: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    berth_store::diff::write_diff(upper, &mut out).unwrap();
    out
}

#[test]
fn a_diff_unpacks_to_the_upper_dir_it_came_from() {
    let c = container_with_changes();
    let tar = diff_of(&c.upper);
    let into = c.f.scratch("unpacked");
    let got = unpack("diff", &tar[..], &into, UnpackOptions::default()).unwrap();
    assert_eq!(got.diff_id, Digest::sha256(&tar));
    assert_eq!(layer_view(&into), layer_view(&c.upper));
    assert_eq!(xattr(&into.join("etc/new"), "user.x").unwrap(), b"hello");
    assert_eq!(xattr(&into.join("etc/attr"), "user.base").unwrap(), b"b");
    assert_eq!(xattr(&into.join("var/lib/data"), OPAQUE).unwrap(), b"y");
    assert_eq!(
        fs::metadata(into.join("h1")).unwrap().ino(),
        fs::metadata(into.join("h2")).unwrap().ino()
    );
    assert!(is_whiteout(&into.join("rmme")));
    let keep = fs::metadata(into.join("etc/keep")).unwrap();
    assert_eq!(
        (keep.mode() & 0o7777, keep.uid(), keep.gid(), keep.mtime()),
        (0o600, 5, 6, 1_111)
    );
}

#[test]
fn a_diff_is_deterministic() {
    let c = container_with_changes();
    let first = diff_of(&c.upper);
    let second = diff_of(&c.upper);
    assert_eq!(Digest::sha256(&first), Digest::sha256(&second));
    assert!(first == second);
}

/// A tar entry: type, link target, PAX records.
type Entry = (tar::EntryType, Option<String>, Vec<(String, Vec<u8>)>);

#[test]
fn a_diff_holds_whiteouts_hardlinks_and_xattrs_as_tar_entries() {
    let c = container_with_changes();
    let tar = diff_of(&c.upper);
    let mut ar = tar::Archive::new(&tar[..]);
    let mut entries: BTreeMap<String, Entry> = BTreeMap::new();
    let mut order = Vec::new();
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let path = e.path().unwrap().to_string_lossy().into_owned();
        let link = e
            .link_name()
            .unwrap()
            .map(|l| l.to_string_lossy().into_owned());
        let mut pax = Vec::new();
        if let Some(exts) = e.pax_extensions().unwrap() {
            for ext in exts {
                let ext = ext.unwrap();
                pax.push((ext.key().unwrap().to_owned(), ext.value_bytes().to_vec()));
            }
        }
        order.push(path.clone());
        let kind = e.header().entry_type();
        assert!(
            entries.insert(path.clone(), (kind, link, pax)).is_none(),
            "{path} twice"
        );
    }
    let kind = |p: &str| {
        entries
            .get(p)
            .unwrap_or_else(|| panic!("no {p} in {order:?}"))
            .0
    };

    assert_eq!(kind("h1"), tar::EntryType::Regular);
    assert_eq!(
        kind("h2"),
        tar::EntryType::Link,
        "one file, then a hardlink"
    );
    assert_eq!(entries["h2"].1.as_deref(), Some("h1"));
    assert_eq!(kind("lnk"), tar::EntryType::Symlink);
    assert_eq!(entries["lnk"].1.as_deref(), Some("etc/new"));
    assert_eq!(kind(".wh.rmme"), tar::EntryType::Regular);
    assert_eq!(kind(".wh.opt"), tar::EntryType::Regular);
    assert_eq!(kind("var/lib/data/.wh..wh..opq"), tar::EntryType::Regular);
    for gone in ["rmme", "opt", "opt/"] {
        assert!(!entries.contains_key(gone), "{gone}");
    }
    let new_xattrs = &entries["etc/new"].2;
    assert!(
        new_xattrs.contains(&("SCHILY.xattr.user.x".to_owned(), b"hello".to_vec())),
        "{new_xattrs:?}"
    );
    // Overlay's bookkeeping (origin, impure…) never reaches a layer.
    for (path, (_, _, pax)) in &entries {
        for (k, _) in pax {
            assert!(
                !k.starts_with("SCHILY.xattr.trusted.overlay.") || k.ends_with(".opaque"),
                "{path}: {k}"
            );
        }
    }
    // Parents before children, a hardlink after its target.
    let at = |p: &str| order.iter().position(|o| o == p).unwrap();
    assert!(at("h1") < at("h2"));
    assert!(at("var/lib/data/") < at("var/lib/data/.wh..wh..opq"));
    assert!(at("var/lib/data/.wh..wh..opq") < at("var/lib/data/fresh"));
}

#[test]
fn a_committed_diff_on_its_base_shows_what_the_container_saw() {
    let c = container_with_changes();
    let tar = diff_of(&c.upper);
    let mut stack = c.base.clone();
    let diff_id = Digest::sha256(&tar);
    let chain = berth_image::chain::chain_id(stack.last(), &diff_id);
    // Compressed, as it would be pushed.
    let unpacked = c.f.store.create(&chain, &diff_id, &gzip(&tar)[..]).unwrap();
    assert_eq!(unpacked.unwrap().diff_id, diff_id);
    stack.push(chain);
    let view = c.f.scratch("view");
    let _m = c.f.mount(&stack, None, &view);
    assert_eq!(common::tree(&view), c.merged_tree);
}

/// On ext4 the layer directory is marked as the top of unrelated trees, so
/// each layer gets a block group of its own (the inode allocator of a
/// journal-less ext4 is quadratic where a prune just freed thousands).
#[test]
fn the_layer_directory_spreads_its_layers_on_ext4() {
    const EXT4_MAGIC: i64 = 0xEF53;
    let f = fixture();
    let layers = f.dir.path().join("layers");
    let fs_type = rustix::fs::statfs(&layers).unwrap().f_type;
    if fs_type != EXT4_MAGIC {
        eprintln!("not ext4 (f_type {fs_type:#x}): nothing to check");
        return;
    }
    let fd = fs::File::open(&layers).unwrap();
    let flags = rustix::fs::ioctl_getflags(&fd).unwrap();
    assert!(flags.contains(rustix::fs::IFlags::TOPDIR), "{flags:?}");
    // Opening again keeps it (and does not fail on a flag already set).
    drop(LayerStore::open(f.dir.path(), UnpackOptions::default()).unwrap());
    assert!(rustix::fs::ioctl_getflags(&fd)
        .unwrap()
        .contains(rustix::fs::IFlags::TOPDIR));
}

/// The options of the mount at `p` (its super block's, where overlay's
/// `volatile` shows).
fn super_options(p: &Path) -> String {
    let p = p.to_str().unwrap();
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .find(|l| l.split(' ').nth(4) == Some(p))
        .and_then(|l| l.rsplit(' ').next().map(str::to_owned))
        .unwrap_or_default()
}

#[test]
fn a_volatile_stack_is_never_synced_and_mounts_again_after_a_clean_unmount() {
    let f = fixture();
    let chains = f.stack(&[rich_layer()]);
    let (upper, work, merged) = (f.scratch("upper"), f.scratch("work"), f.scratch("merged"));
    {
        let guard = Mounted(merged.clone());
        f.store
            .mount_volatile(&chains, (&upper, &work), &merged)
            .unwrap();
        assert!(
            super_options(&merged).contains("volatile"),
            "{}",
            super_options(&merged)
        );
        fs::write(merged.join("fresh"), b"fresh").unwrap();
        drop(guard);
    }
    // Overlay leaves its marker, and would refuse this work dir with it.
    assert!(work.join("work/incompat/volatile").is_dir());
    let _m = Mounted(merged.clone());
    f.store
        .mount_volatile(&chains, (&upper, &work), &merged)
        .unwrap();
    assert_eq!(fs::read(merged.join("fresh")).unwrap(), b"fresh");
    // A synced stack is not volatile.
    let (u2, w2, m2) = (f.scratch("u2"), f.scratch("w2"), f.scratch("m2"));
    let _m2 = f.mount(&chains, Some((&u2, &w2)), &m2);
    assert!(!super_options(&m2).contains("volatile"));
}
