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

/// Parses `major.minor` into a comparable pair.
pub fn parse_version(v: &str) -> Option<(u32, u32)> {
    let (major, minor) = v.split_once('.')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_numerically() {
        assert!(parse_version("1.9") < parse_version("1.41"));
        assert_eq!(parse_version("1.41"), Some((1, 41)));
        assert_eq!(parse_version("v1.41"), None);
    }
}
