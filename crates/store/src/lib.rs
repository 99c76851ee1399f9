//! berth's image store: content-addressed blobs, layers unpacked once and
//! stacked with overlayfs, and the metadata database (see DESIGN.md, "State
//! on disk").

pub mod blobs;
pub mod changes;
pub mod commit;
pub mod db;
pub mod diff;
pub mod error;
pub mod export;
pub mod fsroot;
pub mod gc;
pub mod import;
pub mod layers;
pub mod load;
pub mod outgoing;
pub mod overlay;
pub mod paths;
pub mod query;
pub mod remove;
pub mod save;
pub mod store;
pub mod unpack;
pub mod verify;

pub use blobs::BlobStore;
pub use commit::{Commit, Committed, Scratch, View};
pub use error::{Result, StoreError};
pub use load::Loaded;
pub use store::{Store, StoreOptions};
