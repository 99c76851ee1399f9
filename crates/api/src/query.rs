//! Query strings as Docker sends them: repeated keys (`names=a&names=b`),
//! booleans as `1`/`true`/`0`/`false`, `filters` as JSON.

use berth_api_types::Filters;

use crate::error::ApiError;

/// A parsed query string.
#[derive(Debug, Default)]
pub struct Query(Vec<(String, String)>);

impl Query {
    /// Parses the raw query (absent → empty).
    pub fn parse(raw: Option<&str>) -> Self {
        Self(
            form_urlencoded::parse(raw.unwrap_or("").as_bytes())
                .into_owned()
                .collect(),
        )
    }

    /// The first value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `key`.
    pub fn all(&self, key: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// A boolean: absent is false; Docker's clients send `1`/`true`.
    pub fn flag(&self, key: &str) -> Result<bool, ApiError> {
        match self.get(key) {
            None | Some("" | "0" | "false" | "False") => Ok(false),
            Some("1" | "true" | "True") => Ok(true),
            Some(other) => Err(ApiError::invalid(format!("invalid boolean {key}={other}"))),
        }
    }

    /// The `filters` parameter.
    pub fn filters(&self) -> Result<Filters, ApiError> {
        Filters::parse(self.get("filters").unwrap_or("")).map_err(ApiError::invalid)
    }
}
