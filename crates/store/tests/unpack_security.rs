//! A hostile layer must never write outside its root (needs root: it
//! creates device nodes and sets ownership). Every case checks the host
//! side stayed untouched.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use berth_store::unpack::{unpack, UnpackOptions};
use berth_store::StoreError;
use common::Tar;

struct Fixture {
    _dir: tempfile::TempDir,
    layer: PathBuf,
    outside: PathBuf,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let layer = dir.path().join("layer");
    let outside = dir.path().join("outside");
    fs::create_dir_all(&layer).unwrap();
    fs::create_dir_all(&outside).unwrap();
    fs::write(outside.join("secret"), b"host data").unwrap();
    Fixture {
        _dir: dir,
        layer,
        outside,
    }
}

impl Fixture {
    fn unpack(&self, tar: &[u8]) -> Result<berth_store::unpack::Unpacked, StoreError> {
        unpack("test-layer", tar, &self.layer, UnpackOptions::default())
    }

    /// The host side holds exactly what the fixture put there.
    fn assert_outside_untouched(&self) {
        let names: Vec<_> = fs::read_dir(&self.outside)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(
            names,
            vec!["secret"],
            "something was written outside the layer"
        );
        assert_eq!(fs::read(self.outside.join("secret")).unwrap(), b"host data");
        assert_eq!(
            fs::metadata(self.outside.join("secret")).unwrap().nlink(),
            1
        );
    }
}

fn abs(p: &Path) -> String {
    p.to_str().unwrap().to_owned()
}

#[test]
fn dot_dot_entries_are_refused_by_name() {
    let f = fixture();
    let err = f
        .unpack(&Tar::new().file("../outside/evil", b"x").finish())
        .unwrap_err();
    assert!(matches!(err, StoreError::BadLayerEntry { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("\"../outside/evil\": path leaves the layer root"),
        "{err}"
    );
    f.assert_outside_untouched();
}

#[test]
fn absolute_paths_land_inside_the_root() {
    let f = fixture();
    let target = format!("{}/evil", abs(&f.outside));
    f.unpack(&Tar::new().file(&target, b"x").finish()).unwrap();
    f.assert_outside_untouched();
    assert!(f.layer.join(target.trim_start_matches('/')).is_file());
}

#[test]
fn a_write_through_an_absolute_symlink_stays_inside() {
    let f = fixture();
    let tar = Tar::new()
        .symlink("link", &abs(&f.outside))
        .file("link/evil", b"x")
        .finish();
    let _ = f.unpack(&tar); // refused or redirected inside: either is safe
    f.assert_outside_untouched();
}

#[test]
fn a_write_through_a_relative_symlink_chain_stays_inside() {
    let f = fixture();
    let tar = Tar::new()
        .symlink("a", "b")
        .symlink("b", "../../../../../../..")
        .file("a/evil", b"x")
        .finish();
    f.unpack(&tar).unwrap();
    f.assert_outside_untouched();
    assert_eq!(
        fs::read(f.layer.join("evil")).unwrap(),
        b"x",
        "the chain ends at the layer root"
    );
}

#[test]
fn a_file_replaces_a_symlink_instead_of_writing_through_it() {
    let f = fixture();
    let secret = format!("{}/secret", abs(&f.outside));
    let tar = Tar::new()
        .symlink("s", &secret)
        .file("s", b"overwritten?")
        .finish();
    f.unpack(&tar).unwrap();
    f.assert_outside_untouched();
    assert_eq!(fs::read(f.layer.join("s")).unwrap(), b"overwritten?");
}

#[test]
fn hardlinks_to_outside_files_are_refused() {
    let f = fixture();
    let err = f
        .unpack(&Tar::new().hardlink("hl", "../outside/secret").finish())
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("hardlink target leaves the layer root"),
        "{err}"
    );
    let secret = format!("{}/secret", abs(&f.outside));
    let err = f
        .unpack(&Tar::new().hardlink("hl2", &secret).finish())
        .unwrap_err();
    assert!(err.to_string().contains("hardlink"), "{err}");
    let tar = Tar::new()
        .symlink("up", "/")
        .hardlink("hl3", &format!("up{secret}"))
        .finish();
    let _ = f.unpack(&tar);
    f.assert_outside_untouched();
}

#[test]
fn device_nodes_are_refused_when_the_store_forbids_them() {
    let f = fixture();
    let opts = UnpackOptions {
        allow_devices: false,
        ..UnpackOptions::default()
    };
    let tar = Tar::new()
        .device("sda", tar::EntryType::Block, 8, 0)
        .finish();
    let err = unpack("l", &tar[..], &f.layer, opts).unwrap_err();
    assert!(
        err.to_string().contains("device node 8:0 is not allowed"),
        "{err}"
    );
    // Whiteouts are 0/0 character devices too, and always allowed.
    unpack(
        "l",
        &Tar::new().file(".wh.gone", b"").finish()[..],
        &f.layer,
        opts,
    )
    .unwrap();
    assert!(fs::symlink_metadata(f.layer.join("gone"))
        .unwrap()
        .file_type()
        .is_char_device());
}

#[test]
fn a_decompression_bomb_stops_at_the_limit() {
    let f = fixture();
    let big = vec![0u8; 2 << 20];
    let tar = Tar::new()
        .file("a", &big[..1 << 20])
        .file("b", &big)
        .finish();
    let opts = UnpackOptions {
        max_bytes: 3 << 20 >> 1,
        ..UnpackOptions::default()
    };
    let err = unpack("bomb", &tar[..], &f.layer, opts).unwrap_err();
    assert!(
        matches!(err, StoreError::TooLarge { limit, .. } if limit == 3 << 20 >> 1),
        "{err}"
    );
}

#[test]
fn overlay_xattrs_from_a_layer_are_ignored() {
    let f = fixture();
    let tar = Tar::new()
        .xattrs(&[("trusted.overlay.redirect", b"/etc"), ("user.ok", b"1")])
        .dir("d")
        .finish();
    f.unpack(&tar).unwrap();
    let t = common::tree(&f.layer);
    assert!(t["d"].contains("user.ok=1"), "{}", t["d"]);
    assert!(!t["d"].contains("redirect"), "{}", t["d"]);
}

#[test]
fn metadata_links_nodes_and_whiteouts_are_preserved() {
    let f = fixture();
    let tar = Tar::new()
        .dir("etc")
        .xattrs(&[(
            "security.capability",
            b"\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00",
        )])
        .file_with("etc/tool", b"#!", 0o4755, 1234, 5678, 42)
        .hardlink("etc/tool2", "etc/tool")
        .symlink("etc/sh", "/bin/busybox")
        .device("dev-null", tar::EntryType::Char, 1, 3)
        .device("pipe", tar::EntryType::Fifo, 0, 0)
        .file(".wh.removed", b"")
        .dir("opaque")
        .file("opaque/.wh..wh..opq", b"")
        .finish();
    let unpacked = f.unpack(&tar).unwrap();
    assert_eq!(unpacked.diff_id, berth_image::Digest::sha256(&tar));
    let tool = fs::metadata(f.layer.join("etc/tool")).unwrap();
    assert_eq!(
        (tool.mode() & 0o7777, tool.uid(), tool.gid(), tool.mtime()),
        (0o4755, 1234, 5678, 42)
    );
    assert_eq!(tool.nlink(), 2);
    assert_eq!(
        fs::metadata(f.layer.join("etc/tool2")).unwrap().ino(),
        tool.ino()
    );
    assert_eq!(
        fs::read_link(f.layer.join("etc/sh")).unwrap(),
        Path::new("/bin/busybox")
    );
    let t = common::tree(&f.layer);
    assert!(
        t["etc/tool"].contains("security.capability"),
        "{}",
        t["etc/tool"]
    );
    assert!(t["dev-null"].starts_with("node:103"), "{}", t["dev-null"]);
    assert!(fs::symlink_metadata(f.layer.join("pipe"))
        .unwrap()
        .file_type()
        .is_fifo());
    assert!(
        t["removed"].starts_with("node:0 "),
        "whiteout: {}",
        t["removed"]
    );
    assert!(
        t["opaque"].contains("trusted.overlay.opaque=y"),
        "{}",
        t["opaque"]
    );
    assert!(!f.layer.join(".wh.removed").exists());
    assert!(!f.layer.join("opaque/.wh..wh..opq").exists());
}

/// One file entry whose numeric fields are raw bytes as given.
fn raw_entry(name: &str, uid: &[u8; 8], body: &[u8]) -> Vec<u8> {
    let mut h = tar::Header::new_old();
    h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
    h.as_old_mut().uid = *uid;
    h.set_size(body.len() as u64);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_cksum();
    let mut b = tar::Builder::new(Vec::new());
    b.append(&h, body).unwrap();
    b.into_inner().unwrap()
}

#[test]
fn blank_numeric_fields_read_as_zero_and_garbage_is_refused() {
    // Writers that leave mode, owner and time blank (Go reads them as 0).
    let f = fixture();
    f.unpack(&raw_entry("blank", &[0; 8], b"x")).unwrap();
    let m = fs::metadata(f.layer.join("blank")).unwrap();
    assert_eq!(
        (m.uid(), m.gid(), m.mtime(), m.mode() & 0o7777),
        (0, 0, 0, 0)
    );
    let f = fixture();
    let err = f
        .unpack(&raw_entry("bad", b"12x4\0\0\0\0", b"x"))
        .unwrap_err();
    assert!(err.to_string().contains("uid"), "{err}");
    assert!(!f.layer.join("bad").exists());
}
