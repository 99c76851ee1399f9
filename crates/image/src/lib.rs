//! OCI and Docker image formats, with no I/O beyond the readers and writers
//! callers hand in.
//!
//! - [`digest`]: content digests (`sha256:…`, `sha512:…`) and streaming hashers
//!   (OCI image spec, "Digests").
//! - [`reference`]: image references with Docker's normalisation
//!   (`busybox` → `docker.io/library/busybox:latest`).
//! - [`media`]: OCI and Docker media types.
//! - [`manifest`]: descriptors, image manifests and indexes (OCI) and Docker
//!   schema 2 manifests and manifest lists.
//! - [`config`]: the image configuration, with Docker's extra fields.
//! - [`change`]: `--change` edits of a config (import, commit).
//! - [`chain`]: DiffIDs and ChainIDs of a layer stack.
//! - [`archive`]: `docker save` archives and OCI image layouts.

pub mod archive;
pub mod chain;
pub mod change;
pub mod config;
pub mod digest;
pub mod manifest;
pub mod media;
pub mod platform;
pub mod reference;

mod error;

pub use digest::{Algorithm, Digest, Hasher};
pub use error::{ImageError, Result};
pub use reference::Reference;
