//! Exporting an image's root filesystem as one tarball (the merged view of
//! its layers, whiteouts applied), as `docker export` does for a container.

use std::io::Write;
use std::path::Path;

use berth_image::Digest;

use crate::diff::write_diff;
use crate::error::{Result, StoreError};
use crate::overlay;
use crate::store::Store;

/// Unmounts on drop, so an error while writing never leaves a mount.
struct Mounted<'a>(&'a Path);

impl Drop for Mounted<'_> {
    fn drop(&mut self) {
        if let Err(e) = overlay::unmount(self.0) {
            tracing::warn!(error = %e, "unmounting an export view");
        }
    }
}

impl Store {
    /// A fresh mount point for an export view.
    fn view_dir(&self) -> Result<tempfile::TempDir> {
        tempfile::Builder::new()
            .prefix("tmp-export-")
            .tempdir_in(self.root.join("ingest"))
            .map_err(|e| {
                StoreError::io(
                    "creating an export mount point in",
                    self.root.join("ingest"),
                    e,
                )
            })
    }

    /// Writes the image's root filesystem to `out` as a tar stream.
    pub fn export(&self, name: &str, out: impl Write) -> Result<()> {
        let id = self.resolve(name)?;
        let chain = self.chain(&id)?;
        let view = self.view_dir()?;
        if chain.is_empty() {
            return write_diff(view.path(), out).map(drop);
        }
        self.layers.mount(&chain, None, view.path())?;
        let _mounted = Mounted(view.path());
        // A read-only merged view holds no whiteouts and hides overlay's
        // xattrs, so the diff writer produces a plain tarball of it.
        write_diff(view.path(), out).map(drop)
    }
}

impl Store {
    /// Writes a container's root filesystem — its upper dir `upper` over
    /// the image `image` — to `out` as a tar stream (`docker export`),
    /// through a read-only view of its own (the container may be running).
    pub fn export_container(&self, image: &Digest, upper: &Path, out: impl Write) -> Result<()> {
        let chain = self.chain(image)?;
        let view = self.view_dir()?;
        self.layers.mount_view(&chain, upper, view.path())?;
        let _mounted = Mounted(view.path());
        write_diff(view.path(), out).map(drop)
    }
}
