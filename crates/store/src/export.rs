//! Exporting an image's root filesystem as one tarball (the merged view of
//! its layers, whiteouts applied), as `docker export` does for a container.

use std::io::Write;
use std::path::Path;

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
    /// Writes the image's root filesystem to `out` as a tar stream.
    pub fn export(&self, name: &str, out: impl Write) -> Result<()> {
        let id = self.resolve(name)?;
        let chain = self.chain(&id)?;
        let view = tempfile::Builder::new()
            .prefix("tmp-export-")
            .tempdir_in(self.root.join("ingest"))
            .map_err(|e| {
                StoreError::io(
                    "creating an export mount point in",
                    self.root.join("ingest"),
                    e,
                )
            })?;
        if chain.is_empty() {
            return write_diff(view.path(), out);
        }
        self.layers.mount(&chain, None, view.path())?;
        let _mounted = Mounted(view.path());
        // A read-only merged view holds no whiteouts and hides overlay's
        // xattrs, so the diff writer produces a plain tarball of it.
        write_diff(view.path(), out)
    }
}
