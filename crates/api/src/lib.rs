//! The Docker Engine API (<https://docs.docker.com/reference/api/engine/>)
//! over HTTP/1.1 on a unix socket. Handlers only translate: parse the
//! request, make one backend call (on a blocking thread: the engine is
//! synchronous), write the response. Errors become statuses in exactly one
//! place ([`error`]).

mod absent;
mod archive;
mod attach;
mod build;
mod containers;
mod error;
mod events;
mod exec;
mod images;
mod manage;
mod query;
mod registry;
mod stream;
mod system;
mod version;
mod volumes;

use std::sync::Arc;

use axum::Router;
use berth_engine::containers::exec::ExecBackend;
use berth_engine::containers::files::FilesBackend;
use berth_engine::containers::ContainerBackend;
use berth_engine::volumes::VolumeBackend;
use berth_engine::{BuildBackend, ImageBackend, SystemBackend};

pub use error::ApiError;

/// The backends the API calls.
#[derive(Clone)]
pub struct Backends {
    pub containers: Arc<dyn ContainerBackend>,
    pub exec: Arc<dyn ExecBackend>,
    pub files: Arc<dyn FilesBackend>,
    pub volumes: Arc<dyn VolumeBackend>,
    pub images: Arc<dyn ImageBackend>,
    pub system: Arc<dyn SystemBackend>,
    pub build: Arc<dyn BuildBackend>,
    pub events: Arc<berth_engine::Events>,
}

impl std::fmt::Debug for Backends {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Backends")
    }
}

/// The whole API: routes, the version prefix (`/v1.41/…`) and Docker's
/// response headers.
pub fn app(backends: Backends) -> Router {
    let routes = Router::new()
        .merge(system::routes())
        .merge(images::routes())
        .merge(registry::routes())
        .merge(containers::routes())
        .merge(manage::routes())
        .merge(attach::routes())
        .merge(exec::routes())
        .merge(archive::routes())
        .merge(volumes::routes())
        .merge(absent::routes())
        .merge(build::routes())
        .merge(events::routes())
        .fallback(error::not_found)
        .with_state(backends);
    version::wrap(routes)
}

/// Serves `app` on a unix listener until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::UnixListener,
    app: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}
