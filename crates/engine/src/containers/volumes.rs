//! A container's volumes: made (or found) and claimed when it is created,
//! filled from the image's files before it first runs (Docker's copy of
//! the mount point's content into an empty volume), released when it is
//! removed — its anonymous volumes with it for `rm -v` and `--rm`.

use std::path::Path;

use berth_image::config::ContainerConfig;
use berth_store::fsroot::Root;

use super::model::{Record, VolumeMount};
use super::{internal, mounts, ContainerService};
use crate::error::Result;
use crate::volumes::CreateVolume;

impl ContainerService {
    /// Creates or finds every volume the request mounts and records that
    /// the container uses them; on a failure, releases what it claimed.
    pub(super) fn claim_volumes(
        &self,
        rec: &Record,
        image: &ContainerConfig,
    ) -> Result<Vec<VolumeMount>> {
        let mut anonymous: Vec<String> = rec
            .request
            .volumes
            .iter()
            .flatten()
            .map(|(k, _)| k.clone())
            .collect();
        if !rec.request.no_image_volumes {
            anonymous.extend(image.volumes.iter().flatten().map(|(k, _)| k.clone()));
        }
        let requested = mounts::requested(&rec.request.host_config, &anonymous)?;
        let mut claimed = Vec::new();
        for r in requested.volumes {
            let made = self.volumes.claim(
                CreateVolume {
                    name: r.name.clone().unwrap_or_default(),
                    labels: Some(r.labels.clone()),
                    ..CreateVolume::default()
                },
                &rec.id,
            );
            let v = match made {
                Ok(v) => v,
                Err(e) => {
                    self.release_volumes(&rec.id, &claimed, true);
                    return Err(e);
                }
            };
            claimed.push(VolumeMount {
                name: v.name,
                destination: r.destination,
                rw: r.rw,
                anonymous: r.name.is_none(),
                nocopy: r.nocopy,
                from_binds: r.from_binds,
            });
        }
        Ok(claimed)
    }

    /// Forgets the container's use of its volumes; with
    /// `remove_anonymous`, its anonymous volumes go unless another
    /// container uses them.
    pub(super) fn release_volumes(
        &self,
        id: &str,
        volumes: &[VolumeMount],
        remove_anonymous: bool,
    ) {
        if let Err(e) = self.volumes.detach(id) {
            tracing::error!(id, error = %e.message, "releasing a container's volumes");
        }
        for v in volumes.iter().filter(|v| v.anonymous && remove_anonymous) {
            if let Err(e) = self.volumes.remove(&v.name, false) {
                tracing::debug!(volume = v.name, error = %e.message, "keeping an anonymous volume");
            }
        }
    }

    /// Fills each empty volume from what the container's files hold at its
    /// mount point (unless `nocopy`), before the container runs.
    pub(super) fn populate_volumes(&self, rec: &Record, rootfs: &Path) -> Result<()> {
        let wanted: Vec<&VolumeMount> = rec
            .volumes
            .iter()
            .filter(|v| !v.nocopy && is_empty(&self.volumes.data_path(&v.name)))
            .collect();
        if wanted.is_empty() {
            return Ok(());
        }
        let root = Root::open(rootfs).map_err(|e| internal("opening the container's files", e))?;
        for v in wanted {
            berth_store::paths::copy_dir(&root, &v.destination, &self.volumes.data_path(&v.name))?;
        }
        Ok(())
    }
}

fn is_empty(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|mut d| d.next().is_none())
}
