//! A container's files as a whole: `GET /containers/{id}/export`.

use std::io::Write;

use super::{internal, ContainerService};
use crate::error::Result;

impl ContainerService {
    /// Writes the container's root filesystem (image and changes) to `out`
    /// as a tar stream, running or not.
    pub fn export(&self, name: &str, out: &mut dyn Write) -> Result<()> {
        let rec = self.find(name)?;
        let image = rec.image_id.parse().map_err(|e| internal("image ID", e))?;
        let upper = self.dir(&rec.id).join("upper");
        self.store.export_container(&image, &upper, out)?;
        Ok(())
    }
}
