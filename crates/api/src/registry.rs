//! `POST /auth` (`docker login`) and `GET /distribution/{name}/json`.

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use berth_engine::distribution::AuthRequest;
use serde_json::json;

use crate::error::{blocking, page_not_found, ApiError};
use crate::Backends;

pub fn routes() -> Router<Backends> {
    Router::new()
        .route("/auth", post(auth))
        .route("/distribution/{*rest}", get(distribution))
}

async fn auth(State(b): State<Backends>, body: axum::body::Bytes) -> Result<Response, ApiError> {
    let req: AuthRequest = serde_json::from_slice(&body)
        .map_err(|e| ApiError::invalid(format!("the login request: {e}")))?;
    let identity = blocking(move || b.images.login(&req)).await?;
    Ok(Json(json!({
        "Status": "Login Succeeded",
        "IdentityToken": identity.unwrap_or_default(),
    }))
    .into_response())
}

/// `GET /distribution/<name>/json` (the name has slashes).
async fn distribution(
    State(b): State<Backends>,
    Path(rest): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let name = rest
        .strip_suffix("/json")
        .ok_or_else(page_not_found)?
        .to_owned();
    let auth = crate::images::registry_auth(&headers);
    Ok(Json(blocking(move || b.images.distribution(&name, &auth)).await?).into_response())
}
