//! Reading `docker save` archives and OCI image layouts (see the module doc).

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::path::{Component, Path};

use serde::Deserialize;

use super::{ArchiveImage, BlobSink, Exact, LayerBlob, MAX_DOCUMENT};
use crate::config::ImageConfig;
use crate::digest::Digest;
use crate::error::{ImageError, Result};
use crate::manifest::{Descriptor, Document, Manifest};
use crate::reference::Reference;

/// Annotation with an image's full name (containerd, Docker 25+).
const ANNOTATION_IMAGE_NAME: &str = "io.containerd.image.name";
/// OCI annotation with a tag or, from skopeo, a whole reference.
const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";
/// Symlink hops followed inside an archive before giving up.
const MAX_LINK_HOPS: usize = 16;

/// One entry of a `docker save` manifest.json.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

/// What one pass over the tar stream found.
#[derive(Default)]
struct Scan {
    /// Archive path → stored blob.
    files: HashMap<String, (Digest, u64)>,
    /// Archive path → archive path it links to (symlinks and hardlinks).
    links: HashMap<String, String>,
    /// The small index documents, by name.
    documents: BTreeMap<String, Vec<u8>>,
}

/// Reads an image archive of either format, storing every blob in `sink`,
/// and returns the images it holds. Fails, naming the file or digest, when
/// the archive is truncated, names content it lacks or holds content that
/// does not match its digest.
pub fn read_archive(input: impl Read, sink: &mut dyn BlobSink) -> Result<Vec<ArchiveImage>> {
    let scan = scan(input, sink)?;
    let images = if let Some(m) = scan.documents.get("manifest.json") {
        docker_images(&scan, m)?
    } else if let Some(index) = scan.documents.get("index.json") {
        check_layout_version(&scan)?;
        oci_images(&scan, index, sink)?
    } else {
        return Err(ImageError::InvalidArchive(
            "neither manifest.json nor index.json found: not a docker save or OCI layout archive"
                .to_owned(),
        ));
    };
    for img in &images {
        check_layer_count(img, sink)?;
    }
    Ok(images)
}

fn scan(input: impl Read, sink: &mut dyn BlobSink) -> Result<Scan> {
    let mut out = Scan::default();
    let mut ar = tar::Archive::new(input);
    let entries = ar
        .entries()
        .map_err(|e| ImageError::io("reading image archive", e))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| ImageError::io("reading image archive", e))?;
        let path = entry_path(&entry)?;
        let kind = entry.header().entry_type();
        if kind.is_symlink() || kind.is_hard_link() {
            let target = link_target(&entry, &path, kind.is_symlink())?;
            out.links.insert(path, target);
        } else if kind.is_file() {
            let size = entry.size();
            let mut exact = Exact::new(&mut entry, size, "the archive is truncated");
            scan_file(&mut out, &mut exact, path, sink)?;
        }
    }
    Ok(out)
}

fn scan_file(
    out: &mut Scan,
    entry: &mut dyn Read,
    path: String,
    sink: &mut dyn BlobSink,
) -> Result<()> {
    if matches!(
        path.as_str(),
        "manifest.json" | "index.json" | "oci-layout" | "repositories"
    ) {
        let mut buf = Vec::new();
        entry
            .take(MAX_DOCUMENT + 1)
            .read_to_end(&mut buf)
            .map_err(|e| ImageError::io(format!("reading {path} from archive"), e))?;
        if buf.len() as u64 > MAX_DOCUMENT {
            return Err(ImageError::InvalidArchive(format!(
                "{path} is larger than {MAX_DOCUMENT} bytes"
            )));
        }
        out.documents.insert(path, buf);
        return Ok(());
    }
    if is_legacy_metadata(&path) {
        return Ok(());
    }
    let expected = blob_path_digest(&path);
    let stored = sink.put(&path, entry, expected.as_ref())?;
    out.files.insert(path, stored);
    Ok(())
}

/// `<v1 id>/json` and `<v1 id>/VERSION`: only for pre-1.10 readers.
fn is_legacy_metadata(path: &str) -> bool {
    match path.split_once('/') {
        Some((dir, name)) => dir != "blobs" && matches!(name, "json" | "VERSION"),
        None => false,
    }
}

/// The digest a `blobs/<alg>/<hex>` path promises.
fn blob_path_digest(path: &str) -> Option<Digest> {
    let rest = path.strip_prefix("blobs/")?;
    let (alg, hex) = rest.split_once('/')?;
    format!("{alg}:{hex}").parse().ok()
}

/// The entry's path relative to the archive root, `./` and `..` resolved
/// lexically; a path leaving the archive is refused.
fn entry_path<R: Read>(entry: &tar::Entry<'_, R>) -> Result<String> {
    let raw = entry
        .path()
        .map_err(|e| ImageError::io("reading an archive entry's path", e))?;
    normalise(&raw).ok_or_else(|| {
        ImageError::InvalidArchive(format!("entry {} leaves the archive", raw.display()))
    })
}

fn normalise(p: &Path) -> Option<String> {
    let mut parts: Vec<String> = Vec::new();
    for c in p.components() {
        match c {
            Component::Normal(s) => parts.push(s.to_str()?.to_owned()),
            Component::CurDir => {}
            Component::ParentDir => {
                parts.pop()?;
            }
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(parts.join("/"))
}

fn link_target<R: Read>(entry: &tar::Entry<'_, R>, path: &str, symlink: bool) -> Result<String> {
    let target = entry
        .link_name()
        .map_err(|e| ImageError::io(format!("reading link target of {path}"), e))?
        .ok_or_else(|| ImageError::InvalidArchive(format!("link {path} has no target")))?;
    // Symlinks are relative to their directory; hardlinks to the root.
    let joined = match (symlink, Path::new(path).parent()) {
        (true, Some(dir)) => dir.join(&target),
        _ => target.to_path_buf(),
    };
    normalise(&joined).ok_or_else(|| {
        ImageError::InvalidArchive(format!("link {path} points outside the archive"))
    })
}

impl Scan {
    /// The blob stored for an archive path, following links.
    fn resolve(&self, path: &str) -> Result<&(Digest, u64)> {
        let mut p = normalise(Path::new(path))
            .ok_or_else(|| ImageError::InvalidArchive(format!("path {path} leaves the archive")))?;
        for _ in 0..MAX_LINK_HOPS {
            if let Some(found) = self.files.get(&p) {
                return Ok(found);
            }
            match self.links.get(&p) {
                Some(next) => p.clone_from(next),
                None => break,
            }
        }
        Err(ImageError::InvalidArchive(format!(
            "{path} is named by the index but missing from the archive"
        )))
    }

    fn has_blob(&self, d: &Descriptor, what: &str) -> Result<()> {
        let found = self.files.values().any(|(digest, _)| *digest == d.digest);
        if !found {
            return Err(ImageError::InvalidArchive(format!(
                "{what} names blob {}, which the archive lacks",
                d.digest
            )));
        }
        Ok(())
    }
}

fn docker_images(scan: &Scan, manifest: &[u8]) -> Result<Vec<ArchiveImage>> {
    let entries: Vec<DockerEntry> =
        serde_json::from_slice(manifest).map_err(|e| ImageError::json("manifest.json", e))?;
    entries
        .iter()
        .map(|e| {
            let layers = e
                .layers
                .iter()
                .map(|l| {
                    let (digest, size) = scan.resolve(l)?.clone();
                    Ok(LayerBlob {
                        digest,
                        size,
                        media_type: None,
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            Ok(ArchiveImage {
                config: scan.resolve(&e.config)?.0.clone(),
                layers,
                tags: normalise_tags(e.repo_tags.iter().flatten().map(String::as_str))?,
            })
        })
        .collect()
}

fn normalise_tags<'a>(tags: impl Iterator<Item = &'a str>) -> Result<Vec<String>> {
    tags.map(|t| {
        Ok(Reference::parse_normalized(t)?
            .with_default_tag()
            .to_string())
    })
    .collect()
}

fn check_layout_version(scan: &Scan) -> Result<()> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Layout {
        image_layout_version: String,
    }
    let raw = scan.documents.get("oci-layout").ok_or_else(|| {
        ImageError::InvalidArchive("index.json without an oci-layout file".to_owned())
    })?;
    let layout: Layout =
        serde_json::from_slice(raw).map_err(|e| ImageError::json("oci-layout", e))?;
    if !layout.image_layout_version.starts_with("1.") {
        return Err(ImageError::InvalidArchive(format!(
            "oci-layout version {} is not 1.x",
            layout.image_layout_version
        )));
    }
    Ok(())
}

fn oci_images(scan: &Scan, index: &[u8], sink: &dyn BlobSink) -> Result<Vec<ArchiveImage>> {
    let Document::Index(index) = Document::parse(index, None, "index.json")? else {
        return Err(ImageError::InvalidArchive(
            "index.json is a manifest, not an index".to_owned(),
        ));
    };
    let mut out = Vec::new();
    for d in &index.manifests {
        let manifest = select_manifest(scan, d, sink, 0)?;
        let tags = image_name(d).into_iter().collect::<Vec<_>>();
        out.push(oci_image(
            scan,
            &manifest,
            normalise_tags(tags.into_iter())?,
        )?);
    }
    Ok(out)
}

/// The manifest a descriptor leads to; nested indexes pick this machine's
/// platform (or the only entry).
fn select_manifest(
    scan: &Scan,
    d: &Descriptor,
    sink: &dyn BlobSink,
    depth: u32,
) -> Result<Manifest> {
    if depth > 4 {
        return Err(ImageError::InvalidArchive(
            "indexes nested too deep".to_owned(),
        ));
    }
    let what = format!("manifest {}", d.digest);
    scan.has_blob(d, "index.json")?;
    match Document::parse(
        &sink.get(&d.digest, MAX_DOCUMENT)?,
        Some(&d.media_type),
        &what,
    )? {
        Document::Manifest(m) => {
            m.check_media_types(&what)?;
            Ok(*m)
        }
        Document::Index(i) => {
            let pick = crate::platform::for_archive(&i.manifests).ok_or_else(|| {
                ImageError::InvalidArchive(format!(
                    "index {} has no manifest for linux/{}",
                    d.digest,
                    host_arch()
                ))
            })?;
            select_manifest(scan, pick, sink, depth + 1)
        }
    }
}

/// This machine's architecture as OCI names it.
pub fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

fn oci_image(scan: &Scan, m: &Manifest, tags: Vec<String>) -> Result<ArchiveImage> {
    scan.has_blob(&m.config, "manifest")?;
    let layers = m
        .layers
        .iter()
        .map(|l| {
            scan.has_blob(l, "manifest")?;
            Ok(LayerBlob {
                digest: l.digest.clone(),
                size: l.size,
                media_type: Some(l.media_type.clone()),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(ArchiveImage {
        config: m.config.digest.clone(),
        layers,
        tags,
    })
}

/// The image name an index entry carries: containerd's full name, or an
/// OCI ref name that is a whole reference (skopeo writes `name:tag`; a bare
/// tag such as `latest` names no repository, so the image stays untagged).
fn image_name(d: &Descriptor) -> Option<&str> {
    if let Some(full) = d.annotations.get(ANNOTATION_IMAGE_NAME) {
        return Some(full);
    }
    d.annotations
        .get(ANNOTATION_REF_NAME)
        .map(String::as_str)
        .filter(|r| r.contains(':') || r.contains('/'))
}

fn check_layer_count(img: &ArchiveImage, sink: &dyn BlobSink) -> Result<()> {
    let what = format!("config {}", img.config);
    let cfg = ImageConfig::parse(&sink.get(&img.config, MAX_DOCUMENT)?, &what)?;
    if cfg.rootfs.diff_ids.len() != img.layers.len() {
        return Err(ImageError::InvalidArchive(format!(
            "{what} lists {} layers but the manifest has {}",
            cfg.rootfs.diff_ids.len(),
            img.layers.len()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_normalised_and_escapes_refused() {
        assert_eq!(normalise(Path::new("./a/./b")).as_deref(), Some("a/b"));
        assert_eq!(normalise(Path::new("a/../b")).as_deref(), Some("b"));
        assert_eq!(normalise(Path::new("../b")), None);
        assert_eq!(normalise(Path::new("/etc/passwd")), None);
    }

    #[test]
    fn blob_paths_promise_their_digest() {
        let hex = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        assert_eq!(
            blob_path_digest(&format!("blobs/sha256/{hex}")).unwrap(),
            Digest::sha256(b"")
        );
        assert!(blob_path_digest("blobs/sha256/nothex").is_none());
        assert!(blob_path_digest(&format!("{hex}/layer.tar")).is_none());
        assert!(is_legacy_metadata(&format!("{hex}/json")));
        assert!(!is_legacy_metadata("blobs/json"));
    }
}
