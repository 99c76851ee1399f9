//! Bridges between async HTTP bodies and the synchronous engine: a request
//! body becomes a blocking `Read`, a blocking `Write` becomes a streamed
//! response body. Both run the engine on a blocking thread.

use std::io;

use axum::body::Body;
use berth_engine::EngineError;
use futures_util::TryStreamExt;
use tokio_util::io::{ReaderStream, StreamReader, SyncIoBridge};

use crate::error::{blocking, ApiError};

/// A request body as a blocking reader (use it on a blocking thread).
pub fn body_reader(body: Body) -> impl io::Read + Send + 'static {
    let stream = body.into_data_stream().map_err(io::Error::other);
    SyncIoBridge::new(StreamReader::new(stream))
}

/// How much of a request body is read and dropped after its handler is
/// done with it: a tar archive's padding (Python's tarfile pads to 10 KiB
/// records), or what is left of an upload refused early.
const DRAIN_LIMIT: u64 = 64 << 20;

/// Runs `f` over the request body on a blocking thread, then reads what
/// it left of the body. A connection closed under a client still sending
/// gives it EPIPE instead of the answer: `docker build` with a Dockerfile
/// error printed "write: broken pipe", because a tar reader stops at the
/// archive's first end block and the parse error was answered at once.
pub async fn consume_body<T: Send + 'static>(
    body: Body,
    f: impl FnOnce(&mut (dyn io::Read + Send)) -> Result<T, EngineError> + Send + 'static,
) -> Result<T, ApiError> {
    let mut reader = body_reader(body);
    blocking(move || {
        let result = f(&mut reader);
        // Past the limit the client is sending something else entirely:
        // the connection may close under it.
        let _ = io::copy(
            &mut io::Read::take(&mut reader, DRAIN_LIMIT),
            &mut io::sink(),
        );
        result
    })
    .await
}

/// A response body fed by `produce`, which runs on a blocking thread and
/// writes into the stream. A failure after the first bytes can only end
/// the stream early; callers check what can fail before streaming.
pub fn writer_body<F>(produce: F) -> Body
where
    F: FnOnce(&mut (dyn io::Write + Send)) -> Result<(), String> + Send + 'static,
{
    let (reader, writer) = tokio::io::duplex(256 << 10);
    let mut sync = SyncIoBridge::new(writer);
    tokio::task::spawn_blocking(move || {
        if let Err(e) = produce(&mut sync) {
            // A client that hung up (docker run -d drops its wait) is normal.
            tracing::debug!(error = %e, "a streamed response ended early");
        }
        let _ = io::Write::flush(&mut sync);
        let _ = sync.shutdown();
    });
    Body::from_stream(ReaderStream::new(reader))
}

/// One line of Docker's JSON message stream.
pub fn json_line(value: &serde_json::Value) -> String {
    let mut s = value.to_string();
    s.push('\n');
    s
}
