//! `/_ping`, `/version`, `/info`.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};

use crate::error::{blocking, ApiError};
use crate::Backends;

pub fn routes() -> Router<Backends> {
    Router::new()
        .route("/_ping", get(ping).head(ping))
        .route("/version", get(version))
        .route("/info", get(info))
}

async fn ping() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache, no-store, must-revalidate"),
            (header::PRAGMA, "no-cache"),
        ],
        "OK",
    )
}

async fn version(State(b): State<Backends>) -> impl IntoResponse {
    Json(b.system.version())
}

async fn info(State(b): State<Backends>) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(blocking(move || b.system.info()).await?))
}
