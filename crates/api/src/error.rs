//! The one place where errors become HTTP statuses, by error kind, with
//! Docker's body: `{"message": "..."}`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use berth_api_types::ErrorBody;
use berth_engine::{EngineError, ErrorKind};

/// An error answered to a client.
#[derive(Debug)]
pub struct ApiError(pub EngineError);

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        Self(e)
    }
}

impl ApiError {
    /// A 400 with this message.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self(EngineError::invalid(message))
    }

    /// A 500 with this message.
    pub fn internal(message: impl Into<String>) -> Self {
        Self(EngineError::new(ErrorKind::Internal, message))
    }
}

/// Docker's status for each kind of failure.
pub fn status(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::Conflict => StatusCode::CONFLICT,
        ErrorKind::InvalidArgument => StatusCode::BAD_REQUEST,
        ErrorKind::NotModified => StatusCode::NOT_MODIFIED,
        ErrorKind::NotImplemented => StatusCode::NOT_IMPLEMENTED,
        ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorKind::Unauthorized => StatusCode::UNAUTHORIZED,
        ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = status(self.0.kind);
        if code.is_server_error() {
            tracing::error!(error = %self.0, "request failed");
        } else {
            tracing::debug!(error = %self.0, "request refused");
        }
        (
            code,
            Json(ErrorBody {
                message: self.0.message,
            }),
        )
            .into_response()
    }
}

/// Routes nobody serves.
pub async fn not_found() -> ApiError {
    page_not_found()
}

/// The 404 of a path no route serves.
/// A request's JSON body; an empty one is the default (Docker's clients
/// send none where every field is optional).
pub fn json_body<T: serde::de::DeserializeOwned + Default>(body: &[u8]) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|e| ApiError::invalid(format!("invalid JSON body: {e}")))
}

pub fn page_not_found() -> ApiError {
    ApiError(EngineError::new(ErrorKind::NotFound, "page not found"))
}

/// Runs a synchronous backend call on a blocking thread.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, EngineError> + Send + 'static,
) -> Result<T, ApiError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r.map_err(ApiError),
        Err(e) => Err(ApiError(EngineError::new(
            ErrorKind::Internal,
            format!("the request's worker failed: {e}"),
        ))),
    }
}
