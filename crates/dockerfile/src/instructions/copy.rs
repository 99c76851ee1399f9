//! `COPY` and `ADD`: flags, sources and destination (whitespace-separated
//! or a JSON array), and inline files from heredocs (`COPY <<EOF /dest`).

use super::simple::json_or_words;
use super::Invocation;
use crate::ast::{Copy, Heredoc};
use crate::flags::{FlagKind, Spec};
use crate::heredoc::opener;
use crate::span::{Fault, Word};

const COPY_FLAGS: &Spec = &[
    ("from", FlagKind::String),
    ("chown", FlagKind::String),
    ("chmod", FlagKind::String),
    ("link", FlagKind::Bool),
    ("parents", FlagKind::Bool),
    ("exclude", FlagKind::Strings),
];

const ADD_FLAGS: &Spec = &[
    ("chown", FlagKind::String),
    ("chmod", FlagKind::String),
    ("link", FlagKind::Bool),
    ("keep-git-dir", FlagKind::Bool),
    ("checksum", FlagKind::String),
    ("exclude", FlagKind::Strings),
];

pub(super) fn copy(inv: &Invocation<'_>, heredocs: &[Heredoc], add: bool) -> Result<Copy, Fault> {
    let name = if add { "ADD" } else { "COPY" };
    let (mut args, json) = json_or_words(inv.args)?;
    let dest = match args.pop() {
        Some(dest) if !args.is_empty() => dest,
        _ => {
            return Err(inv.fault(format!(
                "{name} requires at least two arguments, but only one was provided. Destination could not be determined"
            )))
        }
    };
    let flags = inv.flags(if add { ADD_FLAGS } else { COPY_FLAGS })?;
    if matches!(opener(&dest.text), Ok(Some(_))) {
        return Err(dest.fault(format!("{name} cannot accept a heredoc as a destination")));
    }
    let (sources, inline) = split_sources(args, heredocs, json);
    let text = |flag: &str| flags.string(flag).map(|w| w.text.clone());
    Ok(Copy {
        sources,
        dest: dest.text,
        from: text("from"),
        chown: text("chown"),
        chmod: text("chmod"),
        link: flags.bool("link"),
        parents: flags.bool("parents"),
        exclude: flags
            .strings("exclude")
            .iter()
            .map(|w| w.text.clone())
            .collect(),
        keep_git_dir: flags.bool("keep-git-dir"),
        checksum: text("checksum"),
        heredocs: inline,
    })
}

/// Paths, and the heredocs that stand for inline files. Words of a JSON
/// array are always paths.
fn split_sources(args: Vec<Word>, heredocs: &[Heredoc], json: bool) -> (Vec<String>, Vec<Heredoc>) {
    let mut paths = Vec::new();
    let mut inline = Vec::new();
    for word in args {
        match opener(&word.text) {
            Ok(Some(found)) if !json => {
                // A name used twice refers to its last body, as in BuildKit.
                let body = heredocs.iter().rev().find(|h| h.name == found.name);
                inline.push(body.cloned().unwrap_or(Heredoc {
                    name: found.name,
                    content: String::new(),
                    expand: found.expand,
                }));
            }
            _ => paths.push(word.text),
        }
    }
    (paths, inline)
}
