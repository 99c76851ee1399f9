//! The daemon's logic, with no HTTP in it: services that the API layer
//! calls through narrow traits, and the one error type whose kind decides
//! the HTTP status (see DESIGN.md, "Crates").

pub mod build;
pub mod containers;
pub mod distribution;
pub mod error;
pub mod events;
pub mod images;
pub mod progress;
pub mod pull;
pub mod push;
pub mod system;
pub mod volumes;

pub use build::{BuildBackend, BuildService};
pub use containers::ContainerService;
pub use error::{EngineError, ErrorKind, Result};
pub use events::Events;
pub use images::{ImageBackend, ImageService};
pub use system::{SystemBackend, SystemService};
