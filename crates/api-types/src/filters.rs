//! The `filters` query parameter: a JSON object of filter name → values,
//! either `{"label":["a=b"]}` or the older `{"label":{"a=b":true}}`.

use std::collections::BTreeMap;

/// Parsed filters: name → values, in the order given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filters(pub BTreeMap<String, Vec<String>>);

impl Filters {
    /// Parses the parameter; an empty string means no filters.
    pub fn parse(raw: &str) -> Result<Self, String> {
        if raw.trim().is_empty() {
            return Ok(Self::default());
        }
        let value: serde_json::Value =
            serde_json::from_str(raw).map_err(|e| format!("invalid filters {raw:?}: {e}"))?;
        let obj = value
            .as_object()
            .ok_or_else(|| format!("invalid filters {raw:?}: not a JSON object"))?;
        let mut out = BTreeMap::new();
        for (name, v) in obj {
            let values = match v {
                serde_json::Value::Array(a) => a
                    .iter()
                    .map(|x| x.as_str().map(str::to_owned))
                    .collect::<Option<Vec<_>>>(),
                serde_json::Value::Object(o) => Some(o.keys().cloned().collect()),
                _ => None,
            }
            .ok_or_else(|| format!("invalid filter {name:?}: values must be strings"))?;
            out.insert(name.clone(), values);
        }
        Ok(Self(out))
    }

    /// The values of one filter.
    pub fn get(&self, name: &str) -> &[String] {
        self.0.get(name).map_or(&[], Vec::as_slice)
    }

    /// Refuses filters outside `allowed`, as Docker does.
    pub fn only(&self, allowed: &[&str]) -> Result<(), String> {
        match self.0.keys().find(|k| !allowed.contains(&k.as_str())) {
            Some(k) => Err(format!("invalid filter '{k}'")),
            None => Ok(()),
        }
    }

    /// A boolean filter (`dangling=true`).
    pub fn bool(&self, name: &str) -> Result<Option<bool>, String> {
        match self.get(name) {
            [] => Ok(None),
            [v] if v.eq_ignore_ascii_case("true") || v == "1" => Ok(Some(true)),
            [v] if v.eq_ignore_ascii_case("false") || v == "0" => Ok(Some(false)),
            other => Err(format!("invalid filter '{name}={}'", other.join(","))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_json_shapes_parse() {
        let a = Filters::parse(r#"{"dangling":["true"],"label":["a=b","c"]}"#).unwrap();
        assert_eq!(a.get("label"), ["a=b", "c"]);
        assert_eq!(a.bool("dangling").unwrap(), Some(true));
        let b = Filters::parse(r#"{"dangling":{"true":true}}"#).unwrap();
        assert_eq!(b.bool("dangling").unwrap(), Some(true));
        assert!(Filters::parse("").unwrap().0.is_empty());
    }

    #[test]
    fn bad_filters_are_named() {
        assert!(Filters::parse("[1]")
            .unwrap_err()
            .contains("not a JSON object"));
        let f = Filters::parse(r#"{"colour":["red"]}"#).unwrap();
        assert_eq!(f.only(&["label"]).unwrap_err(), "invalid filter 'colour'");
        let f = Filters::parse(r#"{"dangling":["maybe"]}"#).unwrap();
        assert!(f.bool("dangling").unwrap_err().contains("dangling=maybe"));
    }
}
