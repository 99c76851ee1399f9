//! What a build reports as it goes; the engine renders it as Docker's
//! build stream (`Step 2/5 : RUN …`, ` ---> Using cache`, ` ---> 3f2a…`).

use std::time::Duration;

use berth_image::Digest;

/// One thing that happened in a build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A step starts: `number` of `total`, the instruction as written.
    Step {
        number: usize,
        total: usize,
        text: String,
    },
    /// The step's result came from the cache.
    Cached { number: usize },
    /// Output of a step (a `RUN`'s stdout and stderr, or a note).
    Output { number: usize, data: Vec<u8> },
    /// A step ended with this image.
    Done {
        number: usize,
        image: Digest,
        took: Duration,
    },
    /// Something the user should know (unused build arguments).
    Warning(String),
}

/// Where a build reports. Called from the threads of concurrent stages.
pub trait Progress: Send + Sync {
    fn event(&self, e: Event);
}
