//! Docker Engine API models (<https://docs.docker.com/reference/api/engine/>)
//! as berth serves them, the API version constants, and the `filters` query
//! parameter. Pure data: shared by the server and clients.

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

/// Parses `major.minor` into a comparable pair.
pub fn parse_version(v: &str) -> Option<(u32, u32)> {
    let (major, minor) = v.split_once('.')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

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
