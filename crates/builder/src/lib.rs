//! berth's image builder: Dockerfiles to images, with a content-based
//! layer cache (see DESIGN.md, "Crates"). [`Builder::build`] reads the
//! Dockerfile from a context ([`Tree`]), plans the stages the target
//! needs, and builds each step once: a step's key is its parent's key,
//! the instruction after substitution and the checksum of exactly the
//! files it reads, so a hit reuses the step's image without running
//! anything. `RUN` goes through an [`Executor`] the engine implements.

mod actions;
pub mod archive;
pub mod build;
pub mod cache;
pub mod cache_from;
pub mod copy;
pub mod error;
pub mod exec;
pub mod fetch;
pub mod graph;
pub mod ignore;
mod inputs;
pub mod progress;
pub mod spool;
pub mod stamp;
pub mod state;
pub mod step;
pub mod tree;
pub mod user;

pub use archive::Archive;
pub use build::{BuildOptions, Builder, Built, Planned};
pub use cache::CacheIndex;
pub use error::{BuildError, Result};
pub use exec::{Executor, Finished, RunMount, RunStep};
pub use progress::{Event, Progress};
pub use stamp::FileHashes;
pub use tree::Tree;
