//! `/containers/…`: create, start, stop, kill, wait, remove, list,
//! inspect, logs.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use berth_engine::containers::model::CreateRequest;
use berth_engine::containers::{ListOptions, LogOptions};
use serde_json::json;

use crate::error::{blocking, ApiError};
use crate::query::Query;
use crate::stream::writer_body;
use crate::Backends;

pub fn routes() -> Router<Backends> {
    Router::new()
        .route("/containers/create", post(create))
        .route("/containers/json", get(list))
        .route("/containers/{id}/json", get(inspect))
        .route("/containers/{id}/start", post(start))
        .route("/containers/{id}/stop", post(stop))
        .route("/containers/{id}/restart", post(restart))
        .route("/containers/{id}/kill", post(kill))
        .route("/containers/{id}/wait", post(wait))
        .route("/containers/{id}/logs", get(logs))
        .route("/containers/{id}/export", get(export))
        .route("/containers/{id}", axum::routing::delete(remove))
}

type Result<T> = std::result::Result<T, ApiError>;

/// A 404 for a missing container, decided before a streamed answer's 200
/// headers go out.
pub(crate) async fn container_exists(b: &Backends, id: &str) -> Result<()> {
    let (b, id) = (b.clone(), id.to_owned());
    blocking(move || b.containers.inspect(&id).map(drop)).await
}

async fn create(State(b): State<Backends>, RawQuery(q): RawQuery, body: Bytes) -> Result<Response> {
    let name = Query::parse(q.as_deref()).get("name").map(str::to_owned);
    let req: CreateRequest = serde_json::from_slice(&body)
        .map_err(|e| ApiError::invalid(format!("invalid JSON body: {e}")))?;
    if req.image.is_empty() {
        return Err(ApiError::invalid("config.Image is required"));
    }
    let id = blocking(move || b.containers.create(name.as_deref(), req)).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "Id": id, "Warnings": [] })),
    )
        .into_response())
}

async fn list(State(b): State<Backends>, RawQuery(q): RawQuery) -> Result<Response> {
    let q = Query::parse(q.as_deref());
    let all = q.flag("all")?;
    let limit = q
        .get("limit")
        .map(str::parse::<i64>)
        .transpose()
        .map_err(|_| ApiError::invalid("invalid limit"))?;
    let opts = ListOptions {
        all,
        limit: limit.and_then(|l| usize::try_from(l).ok()),
        size: q.flag("size")?,
    };
    let filters = q.filters()?;
    Ok(Json(blocking(move || b.containers.list(&opts, &filters)).await?).into_response())
}

async fn inspect(State(b): State<Backends>, Path(id): Path<String>) -> Result<Response> {
    Ok(Json(blocking(move || b.containers.inspect(&id)).await?).into_response())
}

async fn start(State(b): State<Backends>, Path(id): Path<String>) -> Result<Response> {
    blocking(move || b.containers.start(&id)).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

fn timeout(q: &Query) -> Result<Option<u64>> {
    q.get("t")
        .map(|t| t.parse::<i64>().map(|t| u64::try_from(t).unwrap_or(0)))
        .transpose()
        .map_err(|_| ApiError::invalid("invalid timeout t"))
}

async fn stop(
    State(b): State<Backends>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response> {
    let t = timeout(&Query::parse(q.as_deref()))?;
    let was_running = blocking(move || b.containers.stop(&id, t)).await?;
    Ok(if was_running {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::NOT_MODIFIED
    }
    .into_response())
}

async fn restart(
    State(b): State<Backends>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response> {
    let t = timeout(&Query::parse(q.as_deref()))?;
    blocking(move || b.containers.restart(&id, t)).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn kill(
    State(b): State<Backends>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response> {
    let signal = Query::parse(q.as_deref()).get("signal").map(str::to_owned);
    blocking(move || b.containers.kill(&id, signal.as_deref())).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Docker's clients read the response headers before they start the
/// container (`docker run` waits for next-exit first): the headers go out
/// at once, the body when the condition holds.
async fn wait(
    State(b): State<Backends>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response> {
    let condition = Query::parse(q.as_deref())
        .get("condition")
        .unwrap_or("not-running")
        .to_owned();
    if !matches!(condition.as_str(), "not-running" | "next-exit" | "removed") {
        return Err(ApiError::invalid(format!(
            "invalid condition: {condition:?}"
        )));
    }
    // A missing container is a 404, decided before the 200 headers; what
    // "next exit" means is fixed before them too.
    let waiter = b.clone();
    let ticket = blocking(move || waiter.containers.prepare_wait(&id, &condition)).await?;
    let body = writer_body(move |out| {
        let code = b.containers.wait_for(&ticket);
        let answer = json!({ "StatusCode": code, "Error": null });
        std::io::Write::write_all(out, answer.to_string().as_bytes()).map_err(|e| e.to_string())
    });
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

async fn remove(
    State(b): State<Backends>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response> {
    let q = Query::parse(q.as_deref());
    let (force, volumes) = (q.flag("force")?, q.flag("v")?);
    blocking(move || b.containers.remove(&id, force, volumes)).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn logs(
    State(b): State<Backends>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response> {
    let q = Query::parse(q.as_deref());
    let seconds = |k: &str| -> Result<Option<f64>> {
        q.get(k)
            .filter(|v| !v.is_empty() && *v != "0")
            .map(str::parse::<f64>)
            .transpose()
            .map_err(|_| ApiError::invalid(format!("invalid {k}")))
    };
    let opts = LogOptions {
        stdout: q.flag("stdout")?,
        stderr: q.flag("stderr")?,
        follow: q.flag("follow")?,
        timestamps: q.flag("timestamps")?,
        tail: q
            .get("tail")
            .filter(|t| *t != "all")
            .map(str::parse)
            .transpose()
            .map_err(|_| ApiError::invalid("invalid tail"))?,
        since: seconds("since")?,
        until: seconds("until")?,
    };
    if !opts.stdout && !opts.stderr {
        return Err(ApiError::invalid("you must choose at least one stream"));
    }
    container_exists(&b, &id).await?;
    let body = writer_body(move |out| {
        b.containers
            .logs(&id, &opts, out)
            .map_err(|e| e.to_string())
    });
    Ok((
        [(
            header::CONTENT_TYPE,
            "application/vnd.docker.multiplexed-stream",
        )],
        body,
    )
        .into_response())
}

async fn export(State(b): State<Backends>, Path(id): Path<String>) -> Result<Response> {
    container_exists(&b, &id).await?;
    let body = writer_body(move |out| b.containers.export(&id, out).map_err(|e| e.to_string()));
    Ok(([(header::CONTENT_TYPE, "application/x-tar")], body).into_response())
}
