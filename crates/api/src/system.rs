//! `/_ping`, `/version`, `/info`, `/system/df`.

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
        .route("/system/df", get(df))
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

/// `GET /system/df`: images, containers, volumes and build cache, as
/// Docker lays them out.
async fn df(State(b): State<Backends>) -> Result<impl IntoResponse, ApiError> {
    let filters = berth_api_types::Filters::default();
    let opts = berth_engine::containers::ListOptions {
        all: true,
        limit: None,
        size: true,
    };
    let (layers, images, containers, cache, volumes) = blocking(move || {
        Ok::<_, berth_engine::EngineError>((
            b.images.layers_size()?,
            b.images.list(true, &filters, true)?,
            b.containers.list(&opts, &filters)?,
            b.build.usage()?,
            b.volumes.usage()?,
        ))
    })
    .await?;
    let cache: Vec<serde_json::Value> = cache
        .iter()
        .map(|c| {
            serde_json::json!({
                "ID": c.id,
                "Parent": c.parent,
                "Type": "regular",
                "Description": c.description,
                "InUse": c.in_use,
                "Shared": false,
                "Size": c.size,
                "CreatedAt": rfc3339(c.created),
                "LastUsedAt": rfc3339(c.last_used),
                "UsageCount": c.uses,
                // berth's own (clients ignore what they do not know):
                // what the build planner needs of the cache.
                "Image": c.image,
                "ParentImage": c.parent_image,
                "DurationMs": c.duration_ms,
            })
        })
        .collect();
    Ok(Json(serde_json::json!({
        "LayersSize": layers,
        "Images": images,
        "Containers": containers,
        "Volumes": volumes,
        "BuildCache": cache,
    })))
}

fn rfc3339(unix: i64) -> String {
    chrono::DateTime::from_timestamp(unix, 0)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}
