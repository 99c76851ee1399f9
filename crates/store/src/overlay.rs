//! Mounting an overlayfs stack (mount(2), overlayfs options
//! <https://docs.kernel.org/filesystems/overlayfs.html>).
//!
//! Lower dirs are given relative to the layers directory so 128 of them fit
//! in overlay's one-page option string. Relative paths resolve against the
//! caller's working directory, which is shared by every thread of the
//! process: the mount runs on a short-lived thread that first unshares its
//! filesystem context (`unshare(CLONE_FS)`), so its `chdir` moves no one
//! else.
//!
//! A writable stack pins `redirect_dir=off` and `metacopy=off`, whatever
//! the kernel's defaults: a renamed lower directory or a metadata-only
//! copy-up would otherwise leave an upper dir that points into its lowers
//! (empty directories with a redirect, files without data), which
//! [`crate::diff`] cannot turn into a layer.

use std::path::Path;

use nix::mount::MsFlags;

use crate::error::{Result, StoreError};

/// Mounts `lowerdir` (relative to `layers`) with an optional upper/work
/// pair at `target`. One lower without an upper is a read-only bind mount,
/// as overlay needs two lowers when it has no upper. `volatile`: the upper
/// is never synced (unmounting a synced overlay flushes the whole
/// filesystem: measured 2–730 ms); only for uppers a crash may lose.
pub(crate) fn mount(
    layers: &Path,
    lowerdir: &str,
    count: usize,
    upper: Option<(&Path, &Path)>,
    target: &Path,
    page: usize,
    volatile: bool,
) -> Result<()> {
    let options = match upper {
        Some((up, work)) => format!(
            "lowerdir={lowerdir},upperdir={},workdir={},index=off,redirect_dir=off,metacopy=off{}",
            up.display(),
            work.display(),
            if volatile { ",volatile" } else { "" }
        ),
        None if count == 1 => return bind_readonly(layers, lowerdir, target),
        None => format!("lowerdir={lowerdir}"),
    };
    if options.len() >= page {
        return Err(StoreError::Invalid(format!(
            "cannot mount {count} layers: overlay options are {} bytes, over the {page}-byte limit",
            options.len()
        )));
    }
    if count == 0 {
        return Err(StoreError::Invalid(
            "cannot mount an image without layers".to_owned(),
        ));
    }
    let layers = layers.to_owned();
    let dest = target.to_owned();
    let run = move || -> nix::Result<()> {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_FS)?;
        nix::unistd::chdir(&layers)?;
        nix::mount::mount(
            Some("overlay"),
            &dest,
            Some("overlay"),
            MsFlags::empty(),
            Some(options.as_str()),
        )
    };
    match std::thread::spawn(run).join() {
        Ok(r) => r.map_err(|e| StoreError::io("mounting overlay at", target, e.into())),
        Err(_) => Err(StoreError::Invalid(
            "the overlay mount thread panicked".to_owned(),
        )),
    }
}

fn bind_readonly(layers: &Path, lowerdir: &str, target: &Path) -> Result<()> {
    let source = layers.join(lowerdir);
    let io = |e: nix::Error| StoreError::io("bind-mounting layer at", target, e.into());
    nix::mount::mount(
        Some(&source),
        target,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .map_err(io)?;
    let ro = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY;
    if let Err(e) = nix::mount::mount(None::<&str>, target, None::<&str>, ro, None::<&str>) {
        // Never leave a writable view of a layer behind.
        let _ = nix::mount::umount2(target, nix::mount::MntFlags::MNT_DETACH);
        return Err(io(e));
    }
    Ok(())
}

/// Unmounts a stack mounted by [`mount`] (lazily: a process still inside
/// it must not make removal fail).
pub fn unmount(target: &Path) -> Result<()> {
    nix::mount::umount2(target, nix::mount::MntFlags::MNT_DETACH)
        .map_err(|e| StoreError::io("unmounting", target, e.into()))
}
