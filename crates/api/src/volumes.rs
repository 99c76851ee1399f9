//! `/volumes`: list, create, inspect, remove, prune (the local driver).

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use berth_engine::volumes::CreateVolume;
use serde_json::json;

use crate::error::{blocking, ApiError};
use crate::query::Query;
use crate::Backends;

pub fn routes() -> Router<Backends> {
    Router::new()
        .route("/volumes", get(list))
        .route("/volumes/create", post(create))
        .route("/volumes/prune", post(prune))
        .route("/volumes/{name}", get(inspect).delete(remove))
}

type Result<T> = std::result::Result<T, ApiError>;

async fn list(State(b): State<Backends>, RawQuery(q): RawQuery) -> Result<Response> {
    let filters = Query::parse(q.as_deref()).filters()?;
    let volumes = blocking(move || b.volumes.list(&filters)).await?;
    Ok(Json(json!({ "Volumes": volumes, "Warnings": [] })).into_response())
}

async fn create(State(b): State<Backends>, body: Bytes) -> Result<Response> {
    let req: CreateVolume = if body.iter().all(u8::is_ascii_whitespace) {
        CreateVolume::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::invalid(format!("invalid JSON body: {e}")))?
    };
    let v = blocking(move || b.volumes.create(req)).await?;
    Ok((StatusCode::CREATED, Json(v)).into_response())
}

async fn inspect(State(b): State<Backends>, Path(name): Path<String>) -> Result<Response> {
    Ok(Json(blocking(move || b.volumes.inspect(&name)).await?).into_response())
}

async fn remove(
    State(b): State<Backends>,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response> {
    let force = Query::parse(q.as_deref()).flag("force")?;
    blocking(move || b.volumes.remove(&name, force)).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn prune(State(b): State<Backends>, RawQuery(q): RawQuery) -> Result<Response> {
    let filters = Query::parse(q.as_deref()).filters()?;
    let (deleted, freed) = blocking(move || b.volumes.prune(&filters)).await?;
    Ok(Json(json!({ "VolumesDeleted": deleted, "SpaceReclaimed": freed })).into_response())
}
