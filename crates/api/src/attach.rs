//! `POST /containers/{id}/attach` and `/resize`. Attach hijacks the
//! connection (`Upgrade: tcp`, answered 101): from then on the socket
//! carries the container's output (Docker's multiplexed frames, raw with a
//! TTY) one way and stdin the other. A client that does not ask for the
//! upgrade gets the output as a streamed body.

use axum::body::Body;
use axum::extract::{Path, RawQuery, Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use berth_engine::containers::{AttachOptions, Attachment, LogOptions};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

use crate::error::{blocking, ApiError};
use crate::query::Query;
use crate::stream::writer_body;
use crate::Backends;

/// The media type Docker answers an attach with (API < 1.42).
pub(crate) const RAW_STREAM: &str = "application/vnd.docker.raw-stream";

pub fn routes() -> Router<Backends> {
    Router::new()
        .route("/containers/{id}/attach", post(attach))
        .route("/containers/{id}/resize", post(resize))
}

type Result<T> = std::result::Result<T, ApiError>;

/// What the attach request asked for.
struct Asked {
    id: String,
    opts: AttachOptions,
    logs: bool,
}

async fn attach(
    State(b): State<Backends>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
    mut req: Request,
) -> Result<Response> {
    let q = Query::parse(q.as_deref());
    let upgrade = req.headers().contains_key(header::UPGRADE);
    let opts = AttachOptions {
        // Without the upgrade the client cannot send anything.
        stdin: q.flag("stdin")? && upgrade,
        stdout: q.flag("stdout")?,
        stderr: q.flag("stderr")?,
    };
    let asked = Asked {
        id: id.clone(),
        opts,
        logs: q.flag("logs")?,
    };
    // Registered before the answer: a client that starts the container
    // once attached must not miss its first output.
    let backend = b.clone();
    let attachment = if q.flag("stream")? {
        Some(blocking(move || backend.containers.attach(&id, opts)).await?)
    } else {
        crate::containers::container_exists(&backend, &id).await?;
        None
    };
    if !upgrade {
        let body = writer_body(move |out| {
            out.write_all(&replay(&b, &asked))
                .map_err(|e| e.to_string())?;
            if let Some(mut shim) = attachment.and_then(Attachment::connect) {
                std::io::copy(&mut shim, out).map_err(|e| e.to_string())?;
            }
            Ok(())
        });
        return Ok(([(header::CONTENT_TYPE, RAW_STREAM)], body).into_response());
    }
    let on_upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(conn) => relay(TokioIo::new(conn), b, asked, attachment).await,
            Err(e) => tracing::debug!(error = %e, "an attach upgrade failed"),
        }
    });
    switching_protocols()
}

/// The 101 that hands the connection over to a raw stream (`Upgrade: tcp`).
pub(crate) fn switching_protocols() -> Result<Response> {
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::CONNECTION, "Upgrade")
        .header(header::UPGRADE, "tcp")
        .header(header::CONTENT_TYPE, RAW_STREAM)
        .body(Body::empty())
        .map_err(|e| ApiError::internal(e.to_string()))
}

/// The log so far, when asked for (`logs=1`), in the stream's format.
fn replay(b: &Backends, asked: &Asked) -> Vec<u8> {
    let mut out = Vec::new();
    if asked.logs {
        let opts = LogOptions {
            stdout: asked.opts.stdout,
            stderr: asked.opts.stderr,
            ..LogOptions::default()
        };
        if let Err(e) = b.containers.logs(&asked.id, &opts, &mut out) {
            tracing::debug!(error = %e.message, "replaying logs for an attach");
        }
    }
    out
}

/// Copies between the hijacked connection and the shim until the
/// container's output ends.
async fn relay<C>(conn: C, b: Backends, asked: Asked, attachment: Option<Attachment>)
where
    C: AsyncRead + AsyncWrite + Send + 'static,
{
    let (client_in, mut client_out) = tokio::io::split(conn);
    let replayed = tokio::task::spawn_blocking(move || replay(&b, &asked))
        .await
        .unwrap_or_default();
    if client_out.write_all(&replayed).await.is_err() {
        return;
    }
    // Waits (on a blocking thread) until the container starts.
    let shim = match attachment {
        Some(a) => tokio::task::spawn_blocking(move || a.connect())
            .await
            .ok()
            .flatten(),
        None => None,
    };
    let input = match shim {
        Some(shim) => splice(client_in, &mut client_out, shim).await,
        None => None,
    };
    finish(&mut client_out, input).await;
}

/// Copies what the client sends into the shim, and the shim's output to
/// the client until it ends (the process's output is all written).
/// Returns the task still reading the client's input, for [`finish`].
pub(crate) async fn splice<R, W>(
    mut client_in: R,
    client_out: &mut W,
    shim: std::os::unix::net::UnixStream,
) -> Option<tokio::task::JoinHandle<()>>
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin,
{
    let shim = shim
        .set_nonblocking(true)
        .and_then(|()| tokio::net::UnixStream::from_std(shim))
        .ok()?;
    let (mut shim_out, mut shim_in) = shim.into_split();
    // The client's end of input (docker closes its write side after stdin
    // EOF) reaches the shim as ours. Once the shim takes no more, the
    // rest is read and dropped: a connection closed with unread input is
    // reset, and the client's last reads of output fail with it.
    let input = tokio::spawn(async move {
        let _ = tokio::io::copy(&mut client_in, &mut shim_in).await;
        let _ = shim_in.shutdown().await;
        let _ = tokio::io::copy(&mut client_in, &mut tokio::io::sink()).await;
    });
    let _ = tokio::io::copy(&mut shim_out, client_out).await;
    Some(input)
}

/// Ends the stream to the client, then waits (bounded) for the client to
/// close its end, reading what it still sends.
pub(crate) async fn finish<W: AsyncWrite + Unpin>(
    client_out: &mut W,
    input: Option<tokio::task::JoinHandle<()>>,
) {
    let _ = client_out.shutdown().await;
    if let Some(mut input) = input {
        let waited = tokio::time::timeout(std::time::Duration::from_secs(5), &mut input).await;
        if waited.is_err() {
            input.abort();
        }
    }
}

async fn resize(
    State(b): State<Backends>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response> {
    let (h, w) = dimensions(&Query::parse(q.as_deref()))?;
    blocking(move || b.containers.resize(&id, h, w)).await?;
    Ok(StatusCode::OK.into_response())
}

/// A resize's `h` and `w`.
pub(crate) fn dimensions(q: &Query) -> Result<(u16, u16)> {
    let dimension = |k: &str| -> Result<u16> {
        q.get(k)
            .unwrap_or("0")
            .parse()
            .map_err(|_| ApiError::invalid(format!("invalid {k}: must be a number up to 65535")))
    };
    Ok((dimension("h")?, dimension("w")?))
}
