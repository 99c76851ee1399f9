//! Descriptors, image manifests and indexes: OCI
//! (<https://github.com/opencontainers/image-spec/blob/main/manifest.md>,
//! `image-index.md`) and Docker schema 2 manifests and manifest lists, which
//! share the same shape under different media types.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::error::{ImageError, Result};
use crate::media;

/// Points at content by digest and size.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub urls: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
}

impl Descriptor {
    /// A descriptor of `bytes` with this media type.
    pub fn of(media_type: &str, bytes: &[u8]) -> Self {
        Self {
            media_type: media_type.to_owned(),
            digest: Digest::sha256(bytes),
            size: bytes.len() as u64,
            urls: Vec::new(),
            annotations: BTreeMap::new(),
            platform: None,
        }
    }
}

/// The platform an image in an index runs on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Platform {
    pub architecture: String,
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    #[serde(
        rename = "os.version",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_version: Option<String>,
    #[serde(rename = "os.features", default, skip_serializing_if = "Vec::is_empty")]
    pub os_features: Vec<String>,
}

/// An image manifest: one config and the ordered layers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// An image index (OCI) or manifest list (Docker).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    pub manifests: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// A parsed manifest-like document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Document {
    Manifest(Box<Manifest>),
    Index(Index),
}

/// Only `mediaType` and the shape keys, to classify a document before
/// parsing it fully.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Probe {
    schema_version: Option<u32>,
    media_type: Option<String>,
    manifests: Option<serde_json::Value>,
    layers: Option<serde_json::Value>,
}

impl Document {
    /// Parses a manifest or index. `declared` is the media type the
    /// referring descriptor or HTTP response gave, if any; the document's
    /// own `mediaType` wins when both exist and they must then agree.
    pub fn parse(bytes: &[u8], declared: Option<&str>, what: &str) -> Result<Self> {
        let probe: Probe = serde_json::from_slice(bytes).map_err(|e| ImageError::json(what, e))?;
        let media_type = match (probe.media_type.as_deref(), declared) {
            (Some(own), Some(d)) if own != d => {
                return Err(ImageError::InvalidArchive(format!(
                    "{what}: media type {own} differs from the {d} its descriptor declares"
                )))
            }
            (Some(own), _) => Some(own),
            (None, d) => d,
        };
        if probe.schema_version != Some(2) {
            let mt = media_type.unwrap_or(media::DOCKER_MANIFEST_V1);
            return Err(ImageError::UnsupportedMediaType {
                media_type: format!("{mt} (schemaVersion {:?})", probe.schema_version),
                what: what.to_owned(),
            });
        }
        let is_index = match media_type {
            Some(media::OCI_INDEX | media::DOCKER_MANIFEST_LIST) => true,
            Some(media::OCI_MANIFEST | media::DOCKER_MANIFEST) => false,
            // OCI allows the field to be absent: the shape decides.
            None => probe.manifests.is_some() && probe.layers.is_none(),
            Some(other) => {
                return Err(ImageError::UnsupportedMediaType {
                    media_type: other.to_owned(),
                    what: what.to_owned(),
                })
            }
        };
        let doc = if is_index {
            Self::Index(serde_json::from_slice(bytes).map_err(|e| ImageError::json(what, e))?)
        } else {
            Self::Manifest(Box::new(
                serde_json::from_slice(bytes).map_err(|e| ImageError::json(what, e))?,
            ))
        };
        Ok(doc)
    }
}

impl Manifest {
    /// Checks that the config and every layer have media types berth reads.
    pub fn check_media_types(&self, what: &str) -> Result<()> {
        if !media::is_config(&self.config.media_type) {
            return Err(ImageError::UnsupportedMediaType {
                media_type: self.config.media_type.clone(),
                what: format!("{what} config"),
            });
        }
        for (i, l) in self.layers.iter().enumerate() {
            if media::layer_compression(&l.media_type).is_none() {
                return Err(ImageError::UnsupportedMediaType {
                    media_type: l.media_type.clone(),
                    what: format!("{what} layer {i} ({})", l.digest),
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOCKER: &str = r#"{
      "schemaVersion": 2,
      "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
      "config": {"mediaType": "application/vnd.docker.container.image.v1+json",
                 "size": 7023,
                 "digest": "sha256:b5b2b2c507a0944348e0303114d8d93aaaa081732b86451d9bce1f432a537bc7"},
      "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                  "size": 32654,
                  "digest": "sha256:e692418e4cbaf90ca69d05a66403747baa33ee08806650b51fab815ad7fc331f"}]
    }"#;

    #[test]
    fn docker_schema2_manifest_parses_and_round_trips() {
        let Document::Manifest(m) = Document::parse(DOCKER.as_bytes(), None, "m").unwrap() else {
            panic!("not a manifest")
        };
        assert_eq!(m.layers[0].size, 32654);
        m.check_media_types("m").unwrap();
        let again: Manifest = serde_json::from_str(&serde_json::to_string(&m).unwrap()).unwrap();
        assert_eq!(again, *m);
    }

    #[test]
    fn an_index_without_media_type_is_recognised_by_shape() {
        let doc = r#"{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json",
            "digest":"sha256:e692418e4cbaf90ca69d05a66403747baa33ee08806650b51fab815ad7fc331f","size":1,
            "platform":{"architecture":"arm64","os":"linux","variant":"v8"}}]}"#;
        let Document::Index(i) = Document::parse(doc.as_bytes(), None, "i").unwrap() else {
            panic!("not an index")
        };
        let p = i.manifests[0].platform.as_ref().unwrap();
        assert_eq!(p.variant.as_deref(), Some("v8"));
    }

    #[test]
    fn schema1_and_unknown_types_are_refused_by_name() {
        let v1 = r#"{"schemaVersion":1,"name":"x","fsLayers":[]}"#;
        let err = Document::parse(v1.as_bytes(), None, "old").unwrap_err();
        assert!(err.to_string().contains("schemaVersion Some(1)"), "{err}");
        let odd = r#"{"schemaVersion":2,"mediaType":"text/plain","layers":[]}"#;
        let err = Document::parse(odd.as_bytes(), None, "odd").unwrap_err();
        assert!(
            err.to_string()
                .contains("unsupported media type \"text/plain\" in odd"),
            "{err}"
        );
    }

    #[test]
    fn unknown_layer_media_type_names_the_layer() {
        let m = DOCKER.replace("rootfs.diff.tar.gzip", "rootfs.diff.tar.bzip9");
        let Document::Manifest(m) = Document::parse(m.as_bytes(), None, "m").unwrap() else {
            panic!()
        };
        let err = m.check_media_types("img").unwrap_err().to_string();
        assert!(err.contains("img layer 0 (sha256:e692"), "{err}");
    }
}
