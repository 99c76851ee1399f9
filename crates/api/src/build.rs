//! `POST /build` (the classic builder API, as `docker build` without
//! BuildKit and the SDKs' `images.build` use it) and `POST /build/prune`.

use std::collections::BTreeMap;

use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use berth_api_types::build::LocalContext;
use berth_engine::build::BuildRequest;
use serde_json::json;

use crate::error::{blocking, ApiError};

type Result<T, E = ApiError> = std::result::Result<T, E>;
use crate::query::Query;
use crate::stream::{consume_body, writer_body};
use crate::Backends;

pub fn routes() -> Router<Backends> {
    Router::new()
        .route("/build", post(build))
        .route("/build/prune", post(prune))
}

/// A JSON object of strings (`buildargs`, `labels`); `null` values (an
/// argument named without a value) are dropped, as dockerd drops them.
fn string_map(q: &Query, key: &str) -> Result<BTreeMap<String, String>> {
    let Some(raw) = q.get(key).filter(|r| !r.is_empty()) else {
        return Ok(BTreeMap::new());
    };
    let map: BTreeMap<String, Option<String>> =
        serde_json::from_str(raw).map_err(|e| ApiError::invalid(format!("invalid {key}: {e}")))?;
    Ok(map.into_iter().filter_map(|(k, v)| Some((k, v?))).collect())
}

fn request(q: &Query) -> Result<BuildRequest> {
    let local =
        match q.get("remote").filter(|r| !r.is_empty()) {
            None => None,
            Some(remote) => match LocalContext::from_remote(remote) {
                Some(local) => Some(local.map_err(ApiError::invalid)?),
                None => return Err(ApiError::invalid(
                    "remote build contexts are not supported: send the context as the request body",
                )),
            },
        };
    Ok(BuildRequest {
        local,
        tags: q.all("t").into_iter().filter(|t| !t.is_empty()).collect(),
        dockerfile: q.get("dockerfile").unwrap_or_default().to_owned(),
        build_args: string_map(q, "buildargs")?,
        target: q.get("target").filter(|t| !t.is_empty()).map(str::to_owned),
        no_cache: q.flag("nocache")?,
        pull: q.flag("pull")?,
        labels: string_map(q, "labels")?,
        quiet: q.flag("q")?,
        network: q
            .get("networkmode")
            .filter(|n| !n.is_empty())
            .map(str::to_owned),
        cache_from: match q.get("cachefrom").filter(|c| !c.is_empty()) {
            None => Vec::new(),
            Some(raw) => serde_json::from_str(raw)
                .map_err(|e| ApiError::invalid(format!("invalid cachefrom: {e}")))?,
        },
    })
}

async fn build(State(b): State<Backends>, RawQuery(q): RawQuery, body: Body) -> Result<Response> {
    let req = request(&Query::parse(q.as_deref()));
    let backend = b.clone();
    let job = consume_body(body, move |context| {
        backend.build.prepare(context, &req.map_err(|e| e.0)?)
    })
    .await?;
    let body = writer_body(move |out| b.build.run(job, out).map_err(|e| e.to_string()));
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

async fn prune(State(b): State<Backends>) -> Result<Response> {
    let report = blocking(move || b.build.prune()).await?;
    Ok(Json(json!({
        "CachesDeleted": report.deleted,
        "SpaceReclaimed": report.space_reclaimed,
    }))
    .into_response())
}
