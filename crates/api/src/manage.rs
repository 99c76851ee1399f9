//! `/containers/…` after creation: pause, unpause, update, rename, prune,
//! stats (one sample or a stream) and top.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use berth_engine::containers::commit::CommitRequest;
use berth_engine::containers::stats::StatsOptions;
use berth_engine::containers::update::UpdateRequest;
use serde_json::json;

use crate::error::{blocking, json_body, ApiError};
use crate::query::Query;
use crate::stream::writer_body;
use crate::Backends;

pub fn routes() -> Router<Backends> {
    Router::new()
        .route("/containers/{id}/pause", post(pause))
        .route("/containers/{id}/unpause", post(unpause))
        .route("/containers/{id}/update", post(update))
        .route("/containers/{id}/rename", post(rename))
        .route("/containers/prune", post(prune))
        .route("/containers/{id}/stats", get(stats))
        .route("/containers/{id}/top", get(top))
        .route("/commit", post(commit))
}

type Result<T> = std::result::Result<T, ApiError>;

async fn pause(State(b): State<Backends>, Path(id): Path<String>) -> Result<Response> {
    blocking(move || b.containers.pause(&id)).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn unpause(State(b): State<Backends>, Path(id): Path<String>) -> Result<Response> {
    blocking(move || b.containers.unpause(&id)).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn update(
    State(b): State<Backends>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response> {
    let req: UpdateRequest = json_body(&body)?;
    let warnings = blocking(move || b.containers.update(&id, &req)).await?;
    Ok(Json(json!({ "Warnings": warnings })).into_response())
}

async fn rename(
    State(b): State<Backends>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response> {
    let name = Query::parse(q.as_deref())
        .get("name")
        .unwrap_or_default()
        .to_owned();
    blocking(move || b.containers.rename(&id, &name)).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn prune(State(b): State<Backends>, RawQuery(q): RawQuery) -> Result<Response> {
    let filters = Query::parse(q.as_deref()).filters()?;
    let pruned = blocking(move || b.containers.prune(&filters)).await?;
    Ok(Json(json!({
        "ContainersDeleted": pruned.deleted,
        "SpaceReclaimed": pruned.space_reclaimed,
    }))
    .into_response())
}

async fn stats(
    State(b): State<Backends>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response> {
    let q = Query::parse(q.as_deref());
    let opts = StatsOptions {
        // Docker streams unless told not to.
        stream: q.get("stream").is_none() || q.flag("stream")?,
        one_shot: q.flag("one-shot")?,
    };
    if opts.one_shot && opts.stream {
        return Err(ApiError::invalid(
            "cannot have stream=true and one-shot=true",
        ));
    }
    crate::containers::container_exists(&b, &id).await?;
    let body = writer_body(move |out| {
        b.containers
            .stats(&id, opts, out)
            .map_err(|e| e.to_string())
    });
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

async fn top(
    State(b): State<Backends>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response> {
    let args = Query::parse(q.as_deref())
        .get("ps_args")
        .unwrap_or_default()
        .to_owned();
    Ok(Json(blocking(move || b.containers.top(&id, &args)).await?).into_response())
}

/// `POST /commit?container=&repo=&tag=&comment=&author=&pause=&changes=`,
/// the body a container config whose fields replace the container's.
async fn commit(State(b): State<Backends>, RawQuery(q): RawQuery, body: Bytes) -> Result<Response> {
    let q = Query::parse(q.as_deref());
    // No body and `null` both mean no changes to the config.
    let config: Option<_> = json_body(&body)?;
    let reference = q.get("repo").filter(|r| !r.is_empty()).map(|repo| {
        match q.get("tag").filter(|t| !t.is_empty()) {
            Some(tag) => format!("{repo}:{tag}"),
            None => repo.to_owned(),
        }
    });
    let req = CommitRequest {
        container: q.get("container").unwrap_or_default().to_owned(),
        reference,
        comment: q.get("comment").unwrap_or_default().to_owned(),
        author: q.get("author").unwrap_or_default().to_owned(),
        // Docker pauses unless told not to.
        pause: q.get("pause").is_none() || q.flag("pause")?,
        // Each value may hold several instructions, a line each (as
        // dockerd parses them, joined into one Dockerfile).
        changes: q
            .all("changes")
            .iter()
            .flat_map(|c| c.lines().map(str::to_owned).collect::<Vec<_>>())
            .filter(|c| !c.trim().is_empty())
            .collect(),
        config,
    };
    let id = blocking(move || b.containers.commit(&req)).await?;
    Ok((StatusCode::CREATED, Json(json!({ "Id": id }))).into_response())
}
