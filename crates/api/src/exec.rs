//! `/containers/{id}/exec` and `/exec/{id}/…`: create an exec, start it
//! (hijacked like an attach: `Upgrade: tcp`, then the process's stdio as
//! Docker's frames, raw with a TTY), inspect and resize it.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use berth_engine::containers::exec::{ExecConfig, ExecStart};
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::io::AsyncWriteExt;

use crate::attach::{finish, splice, switching_protocols, RAW_STREAM};
use crate::error::{blocking, json_body, ApiError};
use crate::query::Query;
use crate::stream::writer_body;
use crate::Backends;

pub fn routes() -> Router<Backends> {
    Router::new()
        .route("/containers/{id}/exec", post(create))
        .route("/exec/{id}/start", post(start))
        .route("/exec/{id}/json", get(inspect))
        .route("/exec/{id}/resize", post(resize))
}

type Result<T> = std::result::Result<T, ApiError>;

async fn create(
    State(b): State<Backends>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response> {
    let config: ExecConfig = json_body(&body)?;
    let exec = blocking(move || b.exec.create(&id, config)).await?;
    Ok((StatusCode::CREATED, Json(json!({ "Id": exec }))).into_response())
}

async fn start(
    State(b): State<Backends>,
    Path(id): Path<String>,
    mut req: Request,
) -> Result<Response> {
    let upgrade = req.headers().contains_key(header::UPGRADE);
    let on_upgrade = upgrade.then(|| hyper::upgrade::on(&mut req));
    let body = axum::body::to_bytes(req.into_body(), 1 << 20)
        .await
        .map_err(|e| ApiError::invalid(format!("reading the body: {e}")))?;
    let opts: ExecStart = json_body(&body)?;
    let (backend, exec) = (b.clone(), id.clone());
    if opts.detach {
        blocking(move || backend.exec.start(&exec, opts)).await?;
        return Ok(StatusCode::OK.into_response());
    }
    // A missing exec is a 404; what fails once the stream is promised is
    // written into it (as dockerd does), and the exit code says 126.
    let inspect = blocking(move || backend.exec.inspect(&exec)).await?;
    let tty = inspect["ProcessConfig"]["tty"].as_bool().unwrap_or(false);
    let Some(on_upgrade) = on_upgrade else {
        // No upgrade asked: the output as the body, stdin closed.
        let body = writer_body(move |out| {
            match b.exec.start(&id, opts) {
                Ok(Some(mut shim)) => {
                    let _ = shim.shutdown(std::net::Shutdown::Write);
                    std::io::copy(&mut shim, out).map_err(|e| e.to_string())?;
                    b.exec.settle(&id);
                }
                Ok(None) => {}
                Err(e) => out
                    .write_all(&failure(&e.message, tty))
                    .map_err(|e| e.to_string())?,
            }
            Ok(())
        });
        return Ok(([(header::CONTENT_TYPE, RAW_STREAM)], body).into_response());
    };
    tokio::spawn(async move {
        let conn = match on_upgrade.await {
            Ok(conn) => TokioIo::new(conn),
            Err(e) => return tracing::debug!(error = %e, "an exec upgrade failed"),
        };
        let (client_in, mut client_out) = tokio::io::split(conn);
        let backend = b.clone();
        let exec = id.clone();
        let input = match blocking(move || backend.exec.start(&exec, opts)).await {
            Ok(Some(shim)) => {
                let input = splice(client_in, &mut client_out, shim).await;
                // The exit code is known before the client, seeing the
                // end, asks for it.
                let _ = tokio::task::spawn_blocking(move || b.exec.settle(&id)).await;
                input
            }
            Ok(None) => None,
            Err(e) => {
                let _ = client_out.write_all(&failure(&e.0.message, tty)).await;
                None
            }
        };
        finish(&mut client_out, input).await;
    });
    switching_protocols()
}

/// A start's failure as the stream carries it: a line on stdout, framed
/// unless the exec has a terminal.
fn failure(message: &str, tty: bool) -> Vec<u8> {
    let line = format!("{message}\r\n");
    if tty {
        return line.into_bytes();
    }
    let len = u32::try_from(line.len()).unwrap_or(u32::MAX);
    let mut out = vec![1, 0, 0, 0];
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(line.as_bytes());
    out
}

async fn inspect(State(b): State<Backends>, Path(id): Path<String>) -> Result<Response> {
    Ok(Json(blocking(move || b.exec.inspect(&id)).await?).into_response())
}

async fn resize(
    State(b): State<Backends>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response> {
    let (h, w) = crate::attach::dimensions(&Query::parse(q.as_deref()))?;
    blocking(move || b.exec.resize(&id, h, w)).await?;
    Ok(StatusCode::OK.into_response())
}
