//! The instructions of words and key-value pairs: `ENV`, `LABEL`, `ARG`,
//! `EXPOSE`, `VOLUME`, and the single-argument `WORKDIR`, `USER`,
//! `STOPSIGNAL`, `MAINTAINER`.

use super::Invocation;
use crate::ast::{ArgDecl, KeyValue};
use crate::json::{parse_string_array, JsonArray, NOT_STRINGS};
use crate::span::{Fault, Span, Word};
use crate::words::{is_separator, parse_words, split_whitespace};

/// `ENV`/`LABEL`: `k=v k2="v 2"`, or the legacy `k the rest of the line`.
/// Keys and values are kept as written, quotes and escapes included: they
/// are removed when the builder expands them.
pub(super) fn key_values(
    inv: &Invocation<'_>,
    name: &str,
    escape: char,
) -> Result<Vec<KeyValue>, Fault> {
    inv.no_flags()?;
    let words = parse_words(inv.args, escape);
    let Some(first) = words.first() else {
        return Err(inv.fault(format!("{name} requires at least one argument")));
    };
    if !first.text.contains('=') {
        return legacy_pair(inv, name);
    }
    words.iter().map(|word| pair(word, name)).collect()
}

fn legacy_pair(inv: &Invocation<'_>, name: &str) -> Result<Vec<KeyValue>, Fault> {
    let text = inv.args.text;
    let Some(split) = text.find(is_separator) else {
        return Err(inv.fault(format!("{name} must have two arguments")));
    };
    let value = text[split..].trim_start_matches(is_separator);
    Ok(vec![KeyValue {
        key: text[..split].to_string(),
        value: value.to_string(),
    }])
}

fn pair(word: &Word, name: &str) -> Result<KeyValue, Fault> {
    let Some((key, value)) = word.text.split_once('=') else {
        return Err(word.fault(format!(
            "syntax error - can't find = in {:?}. must be of the form: name=value",
            word.text
        )));
    };
    if key.is_empty() {
        return Err(word.fault(format!("{name} names can not be blank")));
    }
    Ok(KeyValue {
        key: key.into(),
        value: value.into(),
    })
}

/// `ARG name[=default] …`.
pub(super) fn arg(inv: &Invocation<'_>, escape: char) -> Result<Vec<ArgDecl>, Fault> {
    inv.no_flags()?;
    let words = parse_words(inv.args, escape);
    if words.is_empty() {
        return Err(inv.fault("ARG requires at least one argument"));
    }
    words
        .into_iter()
        .map(|word| match word.text.split_once('=') {
            Some(("", _)) => Err(word.fault("ARG names can not be blank")),
            Some((name, default)) => Ok(ArgDecl {
                name: name.into(),
                default: Some(default.into()),
            }),
            None => Ok(ArgDecl {
                name: word.text,
                default: None,
            }),
        })
        .collect()
}

/// The rest of the line, as one argument.
pub(super) fn one(inv: &Invocation<'_>, name: &str) -> Result<String, Fault> {
    inv.no_flags()?;
    if inv.args.is_empty() {
        return Err(inv.fault(format!("{name} requires exactly one argument")));
    }
    Ok(inv.args.text.to_string())
}

pub(super) fn expose(inv: &Invocation<'_>) -> Result<Vec<String>, Fault> {
    inv.no_flags()?;
    let ports = split_whitespace(inv.args);
    if ports.is_empty() {
        return Err(inv.fault("EXPOSE requires at least one argument"));
    }
    Ok(ports.into_iter().map(|w| w.text).collect())
}

pub(super) fn volume(inv: &Invocation<'_>) -> Result<Vec<String>, Fault> {
    inv.no_flags()?;
    let (paths, _) = json_or_words(inv.args)?;
    if paths.is_empty() {
        return Err(inv.fault("VOLUME requires at least one argument"));
    }
    paths
        .into_iter()
        .map(|path| match path.text.trim() {
            "" => Err(path.fault("VOLUME specified can not be an empty string")),
            trimmed => Ok(trimmed.to_string()),
        })
        .collect()
}

/// A JSON array of strings, or whitespace-separated words (BuildKit's
/// parseMaybeJSONToList); true for JSON.
pub(super) fn json_or_words(args: Span<'_>) -> Result<(Vec<Word>, bool), Fault> {
    match parse_string_array(args.text) {
        JsonArray::Strings(items) => {
            let words = items
                .into_iter()
                .map(|text| Word { text, at: args.at })
                .collect();
            Ok((words, true))
        }
        JsonArray::NotStrings => Err(args.fault(NOT_STRINGS)),
        JsonArray::NotJson => Ok((split_whitespace(args), false)),
    }
}
