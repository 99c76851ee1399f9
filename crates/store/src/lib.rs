//! berth's image store: content-addressed blobs, layers unpacked once and
//! stacked with overlayfs, and the metadata database (see DESIGN.md, "State
//! on disk").

pub mod blobs;
pub mod diff;
pub mod error;
pub mod fsroot;
pub mod layers;
pub mod overlay;
pub mod unpack;

pub use blobs::BlobStore;
pub use error::{Result, StoreError};
