//! `/images/…`: list, inspect, history, tag, remove, prune, load, save,
//! import, pull and push; search answers 501 (berth searches no registry).
//! Image names contain slashes, so `/images/{name}/…` routes match the
//! whole tail and split off the action.

use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use berth_engine::images::ImportRequest;
use berth_engine::pull::PullRequest;
use berth_engine::push::PushRequest;
use berth_engine::{EngineError, ErrorKind};
use serde_json::json;

use crate::error::{blocking, page_not_found, ApiError};
use crate::query::Query;
use crate::stream::{consume_body, json_line, writer_body};
use crate::Backends;

pub fn routes() -> Router<Backends> {
    Router::new()
        .route("/images/json", get(list))
        .route("/images/load", post(load))
        .route("/images/get", get(save_many))
        .route("/images/create", post(create))
        .route("/images/prune", post(prune))
        .route("/images/search", get(not_yet))
        .route(
            "/images/{*rest}",
            get(get_one).post(post_one).delete(remove),
        )
}

type Result<T> = std::result::Result<T, ApiError>;

/// The `X-Registry-Auth` header, as the client sent it.
pub fn registry_auth(headers: &axum::http::HeaderMap) -> String {
    headers
        .get("x-registry-auth")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

fn not_implemented(what: &str) -> ApiError {
    ApiError(EngineError::new(
        ErrorKind::NotImplemented,
        format!("{what} is not supported by berth"),
    ))
}

async fn not_yet() -> ApiError {
    not_implemented("searching a registry (docker search)")
}

async fn list(State(b): State<Backends>, RawQuery(q): RawQuery) -> Result<Response> {
    let query = Query::parse(q.as_deref());
    let filters = query.filters()?;
    let all = query.flag("all")?;
    let shared = query.flag("shared-size")?;
    Ok(Json(blocking(move || b.images.list(all, &filters, shared)).await?).into_response())
}

/// `docker.io/library/busybox:latest/json` → (the name, `json`).
fn split_action(rest: &str) -> Result<(String, &str)> {
    let (name, action) = rest.rsplit_once('/').ok_or_else(page_not_found)?;
    Ok((name.to_owned(), action))
}

/// `GET /images/{name}/json|history|get`.
async fn get_one(
    State(b): State<Backends>,
    axum::extract::Path(rest): axum::extract::Path<String>,
) -> Result<Response> {
    let (name, action) = split_action(&rest)?;
    match action {
        "json" => Ok(Json(blocking(move || b.images.inspect(&name)).await?).into_response()),
        "history" => Ok(Json(blocking(move || b.images.history(&name)).await?).into_response()),
        "get" => save(b, vec![name]).await,
        _ => Err(page_not_found()),
    }
}

/// `POST /images/{name}/tag|push`.
async fn post_one(
    State(b): State<Backends>,
    axum::extract::Path(rest): axum::extract::Path<String>,
    RawQuery(q): RawQuery,
    headers: axum::http::HeaderMap,
) -> Result<Response> {
    let q = Query::parse(q.as_deref());
    let (name, action) = split_action(&rest)?;
    match action {
        "tag" => {
            let repo = q.get("repo").unwrap_or_default().to_owned();
            let tag = q.get("tag").map(str::to_owned);
            if repo.is_empty() {
                return Err(ApiError::invalid("repository name (repo) is required"));
            }
            blocking(move || b.images.tag(&name, &repo, tag.as_deref())).await?;
            Ok(StatusCode::CREATED.into_response())
        }
        "push" => {
            let req = PushRequest {
                name,
                tag: q.get("tag").unwrap_or_default().to_owned(),
                registry_auth: registry_auth(&headers),
                oci: q.flag("oci")?,
            };
            let pushing = blocking(move || b.images.push(&req)).await?;
            let body = writer_body(move |out| pushing.write_to(out).map_err(|e| e.to_string()));
            Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
        }
        _ => Err(page_not_found()),
    }
}

async fn remove(
    State(b): State<Backends>,
    axum::extract::Path(name): axum::extract::Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response> {
    let force = Query::parse(q.as_deref()).flag("force")?;
    Ok(Json(blocking(move || b.images.remove(&name, force)).await?).into_response())
}

async fn prune(State(b): State<Backends>, RawQuery(q): RawQuery) -> Result<Response> {
    let filters = Query::parse(q.as_deref()).filters()?;
    Ok(Json(blocking(move || b.images.prune(&filters)).await?).into_response())
}

/// `POST /images/load`: the archive is the body; the answer is Docker's
/// JSON message stream.
async fn load(State(b): State<Backends>, body: Body) -> Result<Response> {
    let lines = consume_body(body, move |reader| b.images.load(reader)).await?;
    let out: String = lines
        .iter()
        .map(|l| json_line(&json!({ "stream": format!("{l}\n") })))
        .collect();
    Ok(([(header::CONTENT_TYPE, "application/json")], out).into_response())
}

async fn save_many(State(b): State<Backends>, RawQuery(q): RawQuery) -> Result<Response> {
    let names = Query::parse(q.as_deref()).all("names");
    if names.is_empty() {
        return Err(ApiError::invalid("no image names given (names=…)"));
    }
    save(b, names).await
}

/// Streams a docker archive. Names are checked first so a missing image is
/// a 404, not a truncated archive.
async fn save(b: Backends, names: Vec<String>) -> Result<Response> {
    let check = b.clone();
    let checked = names.clone();
    blocking(move || {
        checked
            .iter()
            .try_for_each(|n| check.images.inspect(n).map(drop))
    })
    .await?;
    let body = writer_body(move |out| b.images.save(&names, out).map_err(|e| e.to_string()));
    Ok(([(header::CONTENT_TYPE, "application/x-tar")], body).into_response())
}

/// `POST /images/create`: `fromSrc=-` imports the body; `fromImage`
/// pulls from a registry, answering Docker's progress stream.
async fn create(
    State(b): State<Backends>,
    RawQuery(q): RawQuery,
    headers: axum::http::HeaderMap,
    body: Body,
) -> Result<Response> {
    let q = Query::parse(q.as_deref());
    match (q.get("fromSrc"), q.get("fromImage")) {
        (Some("-"), _) => {}
        (Some(url), _) => return Err(not_implemented(&format!("importing from a URL ({url})"))),
        (None, Some(image)) => {
            let req = PullRequest {
                image: image.to_owned(),
                tag: q.get("tag").unwrap_or_default().to_owned(),
                platform: q.get("platform").unwrap_or_default().to_owned(),
                registry_auth: registry_auth(&headers),
            };
            let pulling = blocking(move || b.images.pull(&req)).await?;
            let body = writer_body(move |out| pulling.write_to(out).map_err(|e| e.to_string()));
            return Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response());
        }
        (None, None) => return Err(ApiError::invalid("fromSrc or fromImage is required")),
    }
    let req = ImportRequest {
        repo: q.get("repo").map(str::to_owned),
        tag: q.get("tag").map(str::to_owned),
        changes: q.all("changes"),
        message: q.get("message").map(str::to_owned),
    };
    let id = consume_body(body, move |reader| b.images.import(reader, &req)).await?;
    let out = json_line(&json!({ "status": id }));
    Ok(([(header::CONTENT_TYPE, "application/json")], out).into_response())
}
