//! API version negotiation: `/v1.41/…` and unversioned paths both reach the
//! same routes; a version outside what berth serves is refused as Docker
//! does; every response names the server's version.

use axum::extract::Request;
use axum::http::{HeaderValue, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use berth_api_types::{parse_version, API_VERSION, MIN_API_VERSION};

use crate::error::ApiError;

/// Strips the version prefix and adds Docker's headers.
pub fn wrap(routes: Router) -> Router {
    Router::new()
        .fallback_service(routes)
        .layer(middleware::from_fn(negotiate))
}

async fn negotiate(mut req: Request, next: Next) -> Response {
    let path = req.uri().path().to_owned();
    if let Some((version, rest)) = split_version(&path) {
        if let Err(e) = check(version) {
            return with_headers(e.into_response());
        }
        let query = req
            .uri()
            .query()
            .map(|q| format!("?{q}"))
            .unwrap_or_default();
        match format!("{rest}{query}").parse::<Uri>() {
            Ok(uri) => *req.uri_mut() = uri,
            Err(_) => {
                return with_headers(
                    ApiError::invalid(format!("invalid path {path}")).into_response(),
                )
            }
        }
    }
    with_headers(next.run(req).await)
}

/// `/v1.41/images/json` → `("1.41", "/images/json")`.
fn split_version(path: &str) -> Option<(&str, &str)> {
    let rest = path.strip_prefix("/v")?;
    let end = rest.find('/').unwrap_or(rest.len());
    let (version, tail) = rest.split_at(end);
    parse_version(version)?;
    Some((version, if tail.is_empty() { "/" } else { tail }))
}

fn check(version: &str) -> Result<(), ApiError> {
    let v = parse_version(version);
    if v > parse_version(API_VERSION) {
        return Err(ApiError::invalid(format!(
            "client version {version} is too new. Maximum supported API version is {API_VERSION}"
        )));
    }
    if v < parse_version(MIN_API_VERSION) {
        return Err(ApiError::invalid(format!(
            "client version {version} is too old. Minimum supported API version is {MIN_API_VERSION}, please upgrade your client to a newer version"
        )));
    }
    Ok(())
}

fn with_headers(mut res: Response) -> Response {
    let h = res.headers_mut();
    h.insert("api-version", HeaderValue::from_static(API_VERSION));
    h.insert("docker-experimental", HeaderValue::from_static("false"));
    h.insert("ostype", HeaderValue::from_static("linux"));
    h.insert(
        "server",
        HeaderValue::from_static(concat!("berth/", env!("CARGO_PKG_VERSION"), " (linux)")),
    );
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_prefixes_are_split_off() {
        assert_eq!(
            split_version("/v1.41/images/json"),
            Some(("1.41", "/images/json"))
        );
        assert_eq!(split_version("/v1.24/_ping"), Some(("1.24", "/_ping")));
        assert_eq!(split_version("/version"), None);
        assert_eq!(split_version("/volumes"), None);
    }

    #[test]
    fn versions_outside_the_range_are_refused() {
        assert!(check("1.41").is_ok() && check("1.30").is_ok());
        assert!(check("1.50")
            .unwrap_err()
            .0
            .message
            .contains("too new. Maximum supported API version is 1.41"));
        assert!(check("1.12").unwrap_err().0.message.contains("too old"));
    }
}
