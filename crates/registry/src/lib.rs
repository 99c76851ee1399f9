//! berth's registry client: the OCI distribution protocol
//! (<https://github.com/opencontainers/distribution-spec>) over HTTP(S) —
//! manifests, blobs, tags — with Docker's naming (Docker Hub's `docker.io`
//! is `registry-1.docker.io`), bearer-token and basic authentication, and
//! plain HTTP for loopback and `--insecure-registry` hosts, as dockerd
//! allows. Pulls stream every blob, digest-verified, into the store.

pub mod auth;
pub mod client;
mod error;
pub mod gzip;
pub mod inspect;
pub mod login;
pub mod pull;
pub mod push;
mod send;
pub mod token;
pub mod upload;

pub use auth::{Credentials, DockerConfig};
pub use client::{ClientOptions, Registry};
pub use error::{RegistryError, Result};
pub use pull::{pull, Event, Progress, PullOptions, Pulled};
pub use push::{push, PushEvent, PushOptions, PushProgress, Pushed};

/// A lock whose holder panicked is still good here: what each guards is
/// written whole or not at all.
pub(crate) fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
