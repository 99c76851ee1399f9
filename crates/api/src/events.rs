//! `GET /events`: the events since `since` (when given), then new ones as
//! they happen, until `until` (when given) or the client leaves; one JSON
//! object per line, filtered.

use std::convert::Infallible;

use axum::body::{Body, Bytes};
use axum::extract::{RawQuery, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use berth_api_types::events::Event;
use berth_engine::events;
use tokio::sync::mpsc;

use crate::error::ApiError;
use crate::query::Query;
use crate::stream::json_line;
use crate::Backends;

pub fn routes() -> Router<Backends> {
    Router::new().route("/events", get(stream))
}

fn parse_time(key: &str, v: &str) -> Result<i64, ApiError> {
    let now = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(i64::MAX);
    berth_api_types::parse_time(v, now)
        .map_err(|e| ApiError::invalid(format!("invalid {key}: {e}")))
}

async fn stream(State(b): State<Backends>, RawQuery(q): RawQuery) -> Result<Response, ApiError> {
    let q = Query::parse(q.as_deref());
    let filters = q.filters()?;
    events::check_filters(&filters)?;
    let since = q
        .get("since")
        .filter(|v| !v.is_empty())
        .map(|v| parse_time("since", v))
        .transpose()?;
    let until = q
        .get("until")
        .filter(|v| !v.is_empty())
        .map(|v| parse_time("until", v))
        .transpose()?;
    let (tx, rx) = mpsc::unbounded_channel::<Event>();
    b.events.subscribe(
        since,
        Box::new(move |e| {
            if events::matches(e, &filters) {
                tx.send(e.clone()).is_ok()
            } else {
                !tx.is_closed()
            }
        }),
    );
    let now = chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default();
    let deadline = until.map(|u| {
        let wait = u64::try_from(u.saturating_sub(now)).unwrap_or(0);
        tokio::time::Instant::now() + std::time::Duration::from_nanos(wait)
    });
    let lines = futures_util::stream::unfold(rx, move |mut rx| async move {
        // What is queued goes out even when the deadline has passed.
        let next = match rx.try_recv() {
            Ok(e) => Some(e),
            Err(_) => match deadline {
                Some(d) => tokio::time::timeout_at(d, rx.recv()).await.ok().flatten(),
                None => rx.recv().await,
            },
        };
        let e = next.filter(|e| until.is_none_or(|u| e.time_nano <= u))?;
        let line = json_line(&serde_json::to_value(&e).unwrap_or_default());
        Some((Ok::<_, Infallible>(Bytes::from(line)), rx))
    });
    Ok((
        [(header::CONTENT_TYPE, "application/json")],
        Body::from_stream(lines),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_as_docker_sends_them() {
        assert_eq!(parse_time("since", "12").unwrap(), 12_000_000_000);
        assert_eq!(parse_time("since", "12.5").unwrap(), 12_500_000_000);
        assert_eq!(parse_time("since", "12.000000001").unwrap(), 12_000_000_001);
        assert_eq!(
            parse_time("since", "1970-01-01T00:00:01Z").unwrap(),
            1_000_000_000
        );
        assert!(parse_time("since", "yesterday").is_err());
    }
}
