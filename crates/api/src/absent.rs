//! What berth does not run, answered as dockerd answers when it is not
//! there: swarm endpoints as a node outside any swarm (503), plugins as a
//! daemon with none installed, network pruning with no user-defined
//! networks to remove.

use axum::extract::Path;
use axum::response::IntoResponse;
use axum::routing::{any, get, post};
use axum::{Json, Router};
use berth_engine::{EngineError, ErrorKind};
use serde_json::json;

use crate::error::ApiError;
use crate::Backends;

const NOT_MANAGER: &str = "This node is not a swarm manager. Use \"docker swarm init\" or \"docker swarm join\" to connect this node to swarm and try again.";

pub fn routes() -> Router<Backends> {
    let mut r = Router::new()
        .route("/swarm/leave", post(not_in_swarm))
        .route("/swarm/init", post(no_swarm_mode))
        .route("/swarm/join", post(no_swarm_mode))
        .route("/plugins", get(no_plugins))
        .route("/plugins/{name}/json", get(no_such_plugin))
        .route("/plugins/pull", post(no_plugin_install))
        .route("/networks/prune", post(no_networks_to_prune));
    for path in [
        "/swarm",
        "/swarm/update",
        "/swarm/unlock",
        "/swarm/unlockkey",
        "/nodes",
        "/nodes/{id}",
        "/services",
        "/services/{id}",
        "/services/create",
        "/tasks",
        "/tasks/{id}",
        "/secrets",
        "/secrets/{id}",
        "/secrets/create",
        "/configs",
        "/configs/{id}",
        "/configs/create",
    ] {
        r = r.route(path, any(not_manager));
    }
    r
}

fn unavailable(message: &str) -> ApiError {
    ApiError(EngineError::new(ErrorKind::Unavailable, message))
}

async fn not_manager() -> ApiError {
    unavailable(NOT_MANAGER)
}

async fn not_in_swarm() -> ApiError {
    unavailable("This node is not part of a swarm")
}

async fn no_swarm_mode() -> ApiError {
    ApiError(EngineError::new(
        ErrorKind::NotImplemented,
        "swarm mode is not part of berth: run multi-container apps with docker-compose, or move to Kubernetes with berth's runtime",
    ))
}

async fn no_plugins() -> impl IntoResponse {
    Json(json!([]))
}

async fn no_such_plugin(Path(name): Path<String>) -> ApiError {
    ApiError(EngineError::new(
        ErrorKind::NotFound,
        format!("plugin \"{name}\" not found"),
    ))
}

async fn no_plugin_install() -> ApiError {
    ApiError(EngineError::new(
        ErrorKind::NotImplemented,
        "plugins are not supported by berth",
    ))
}

async fn no_networks_to_prune() -> impl IntoResponse {
    Json(json!({ "NetworksDeleted": [] }))
}
