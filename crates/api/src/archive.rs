//! `/containers/{id}/archive` (`docker cp`: HEAD for the stat of a path,
//! GET for its tar, PUT to extract a tar into a directory) and
//! `/containers/{id}/changes` (`docker diff`).

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use base64::Engine;
use berth_engine::containers::files::ExtractOptions;

use crate::error::{blocking, ApiError};
use crate::query::Query;
use crate::stream::{consume_body, writer_body};
use crate::Backends;

/// The header carrying the stat of the path, base64-encoded JSON.
const PATH_STAT: &str = "x-docker-container-path-stat";

pub fn routes() -> Router<Backends> {
    Router::new()
        .route(
            "/containers/{id}/archive",
            get(archive).head(stat).put(extract),
        )
        .route("/containers/{id}/changes", get(changes))
}

type Result<T> = std::result::Result<T, ApiError>;

fn path_of(q: &Query) -> Result<String> {
    match q.get("path") {
        Some(p) if !p.is_empty() => Ok(p.to_owned()),
        _ => Err(ApiError::invalid(
            "path is required: ?path=/in/the/container",
        )),
    }
}

/// The stat header for `path` (a 404 when it is missing).
async fn stat_header(b: &Backends, id: &str, path: &str) -> Result<HeaderMap> {
    let (b, id, path) = (b.clone(), id.to_owned(), path.to_owned());
    let stat = blocking(move || b.files.stat_path(&id, &path)).await?;
    let json = serde_json::to_vec(&stat).map_err(|e| ApiError::internal(e.to_string()))?;
    let encoded = base64::engine::general_purpose::STANDARD.encode(json);
    let mut headers = HeaderMap::new();
    headers.insert(
        PATH_STAT,
        HeaderValue::from_str(&encoded).map_err(|e| ApiError::internal(e.to_string()))?,
    );
    Ok(headers)
}

async fn stat(
    State(b): State<Backends>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response> {
    let path = path_of(&Query::parse(q.as_deref()))?;
    let headers = stat_header(&b, &id, &path).await?;
    Ok((StatusCode::OK, headers).into_response())
}

async fn archive(
    State(b): State<Backends>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response> {
    let path = path_of(&Query::parse(q.as_deref()))?;
    let mut headers = stat_header(&b, &id, &path).await?;
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-tar"),
    );
    let body: Body = writer_body(move |out| {
        b.files
            .archive_path(&id, &path, out)
            .map_err(|e| e.to_string())
    });
    Ok((StatusCode::OK, headers, body).into_response())
}

async fn extract(
    State(b): State<Backends>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
    body: Body,
) -> Result<Response> {
    let q = Query::parse(q.as_deref());
    let path = path_of(&q);
    let opts = ExtractOptions {
        no_overwrite_dir_non_dir: q.flag("noOverwriteDirNonDir")?,
        copy_uid_gid: q.flag("copyUIDGID")?,
    };
    consume_body(body, move |input| {
        let path = path.map_err(|e| e.0)?;
        b.files.extract_to(&id, &path, input, opts)
    })
    .await?;
    Ok(StatusCode::OK.into_response())
}

async fn changes(State(b): State<Backends>, Path(id): Path<String>) -> Result<Response> {
    Ok(Json(blocking(move || b.files.changes(&id)).await?).into_response())
}
