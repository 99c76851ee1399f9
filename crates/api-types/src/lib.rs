//! Docker Engine API models (<https://docs.docker.com/reference/api/engine/>)
//! as berth serves them, the API version constants, and the `filters` query
//! parameter. Pure data: shared by the server and clients.

pub mod build;
pub mod events;
pub mod filters;
pub mod images;
pub mod system;

pub use filters::Filters;

/// The newest API version berth serves.
pub const API_VERSION: &str = "1.41";
/// The oldest API version berth accepts (Docker's own minimum).
pub const MIN_API_VERSION: &str = "1.24";

/// The body of every error response.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ErrorBody {
    pub message: String,
}

/// A duration as Docker words it in `ps` and `images` ("Less than a
/// second", "About a minute", "3 hours", "2 weeks"): shared by the daemon's
/// status texts and the CLI's columns.
pub fn human_duration(secs: i64) -> String {
    match secs {
        s if s < 1 => "Less than a second".to_owned(),
        1 => "1 second".to_owned(),
        s if s < 60 => format!("{s} seconds"),
        s if s < 120 => "About a minute".to_owned(),
        s if s < 3600 => format!("{} minutes", s / 60),
        s if s < 7200 => "About an hour".to_owned(),
        s if s < 172_800 => format!("{} hours", s / 3600),
        s if s < 1_209_600 => format!("{} days", s / 86400),
        s if s < 5_259_600 => format!("{} weeks", s / 604_800),
        s if s < 63_115_200 => format!("{} months", s / 2_629_800),
        s => format!("{} years", s / 31_557_600),
    }
}

/// Unix nanoseconds of the time forms Docker's `since`/`until` take: RFC
/// 3339, `seconds[.fraction]` (what the CLI sends), or a Go duration
/// (`10m`, `1h30m`) counted back from `now_nanos`.
pub fn parse_time(v: &str, now_nanos: i64) -> Result<i64, String> {
    let bad =
        || format!("invalid time {v:?}: want Unix seconds, RFC 3339 or a duration such as 10m");
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(v) {
        return t.timestamp_nanos_opt().ok_or_else(bad);
    }
    if let Some(d) = go_duration_nanos(v) {
        return Ok(now_nanos.saturating_sub(d));
    }
    let (secs, frac) = v.split_once('.').unwrap_or((v, ""));
    let secs: i64 = secs.parse().map_err(|_| bad())?;
    let digits: String = frac.chars().chain(std::iter::repeat('0')).take(9).collect();
    let nanos: i64 = digits.parse().map_err(|_| bad())?;
    secs.checked_mul(1_000_000_000)
        .and_then(|s| s.checked_add(nanos))
        .ok_or_else(bad)
}

/// A Go duration (`1h30m`, `90s`, `1.5h`, `300ms`) in nanoseconds.
fn go_duration_nanos(v: &str) -> Option<i64> {
    const UNITS: [(&str, f64); 6] = [
        ("ns", 1.0),
        ("us", 1e3),
        ("ms", 1e6),
        ("s", 1e9),
        ("m", 60e9),
        ("h", 3600e9),
    ];
    let mut rest = v;
    let mut total = 0.0;
    if rest.is_empty() || rest.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return None; // a bare number is a timestamp
    }
    while !rest.is_empty() {
        let split = rest.find(|c: char| !c.is_ascii_digit() && c != '.')?;
        let (num, tail) = rest.split_at(split);
        let n: f64 = num.parse().ok()?;
        let (unit, scale) = UNITS
            .iter()
            .filter(|(u, _)| tail.starts_with(u))
            .max_by_key(|(u, _)| u.len())?;
        total += n * scale;
        rest = &tail[unit.len()..];
    }
    #[allow(clippy::cast_possible_truncation)] // bounded just below
    (total.is_finite() && total < 9.2e18).then_some(total as i64)
}

/// Parses `major.minor` into a comparable pair.
pub fn parse_version(v: &str) -> Option<(u32, u32)> {
    let (major, minor) = v.split_once('.')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_take_dockers_forms() {
        let now = 1_000_000_000_000_000_000;
        assert_eq!(parse_time("10", now), Ok(10_000_000_000));
        assert_eq!(parse_time("1.5", now), Ok(1_500_000_000));
        assert_eq!(parse_time("1970-01-01T00:00:02Z", now), Ok(2_000_000_000));
        assert_eq!(parse_time("1h30m", now), Ok(now - 5_400_000_000_000));
        assert_eq!(parse_time("300ms", now), Ok(now - 300_000_000));
        assert!(parse_time("soon", now).is_err());
        assert!(parse_time("10x", now).is_err());
    }

    #[test]
    fn durations_read_like_dockers() {
        assert_eq!(human_duration(0), "Less than a second");
        assert_eq!(human_duration(5), "5 seconds");
        assert_eq!(human_duration(90), "About a minute");
        assert_eq!(human_duration(600), "10 minutes");
        assert_eq!(human_duration(10_000), "2 hours");
        assert_eq!(human_duration(3 * 86400), "3 days");
        assert_eq!(human_duration(21 * 86400), "3 weeks");
        assert_eq!(human_duration(800 * 86400), "2 years");
    }

    #[test]
    fn versions_compare_numerically() {
        assert!(parse_version("1.9") < parse_version("1.41"));
        assert_eq!(parse_version("1.41"), Some((1, 41)));
        assert_eq!(parse_version("v1.41"), None);
    }
}
