//! `GET /distribution/{name}/json` (`docker manifest inspect`'s
//! summary, `docker buildx imagetools`): what a name points to in its
//! registry, and the platforms it has an image for — without pulling.

use std::io::Read;

use berth_image::manifest::{Descriptor, Document, Platform};
use berth_image::{media, Reference};

use crate::client::Registry;
use crate::error::{RegistryError, Result};

/// What a reference names in its registry.
#[derive(Debug, Clone)]
pub struct Distribution {
    /// The manifest or index itself.
    pub descriptor: Descriptor,
    /// The platforms of its images.
    pub platforms: Vec<Platform>,
}

/// Looks `reference` up (its tag, `latest`, or its digest).
pub fn inspect(registry: &Registry, reference: &Reference) -> Result<Distribution> {
    let repo = reference.path();
    let wanted = match (reference.digest(), reference.tag()) {
        (Some(d), _) => d.to_string(),
        (None, Some(t)) => t.to_owned(),
        (None, None) => berth_image::reference::DEFAULT_TAG.to_owned(),
    };
    let (bytes, media_type, digest) = registry.manifest(repo, &wanted)?;
    let what = format!("{repo}@{digest}");
    let doc = Document::parse(&bytes, media_type.as_deref(), &what)?;
    let (declared, platforms) = match doc {
        Document::Index(index) => {
            let platforms = index
                .manifests
                .iter()
                .filter_map(|m| m.platform.clone())
                // Attestations ride in indexes as unknown/unknown.
                .filter(|p| p.os != "unknown")
                .collect();
            (
                index
                    .media_type
                    .unwrap_or_else(|| media::OCI_INDEX.to_owned()),
                platforms,
            )
        }
        Document::Manifest(m) => {
            let (body, _) = registry.blob(repo, &m.config.digest, 0)?;
            let mut config = Vec::new();
            body.take(berth_image::archive::MAX_DOCUMENT)
                .read_to_end(&mut config)
                .map_err(|e| RegistryError::Transport {
                    what: format!("reading the config of {what}"),
                    reason: e.to_string(),
                })?;
            let c = berth_image::config::ImageConfig::parse(&config, &format!("config of {what}"))?;
            let platform = Platform {
                architecture: c.architecture,
                os: c.os,
                variant: c.variant,
                os_version: None,
                os_features: Vec::new(),
            };
            (
                m.media_type
                    .unwrap_or_else(|| media::OCI_MANIFEST.to_owned()),
                vec![platform],
            )
        }
    };
    Ok(Distribution {
        descriptor: Descriptor {
            media_type: media_type.unwrap_or(declared),
            digest,
            size: bytes.len() as u64,
            urls: Vec::new(),
            annotations: Default::default(),
            platform: None,
        },
        platforms,
    })
}
