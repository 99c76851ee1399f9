//! `images`, `rmi`, `tag`, `load`, `save`, `import`.

use std::io::{IsTerminal, Read, Write};

use anyhow::{bail, Context, Result};
use bollard::models::ImageDeleteResponseItem;
use bollard::query_parameters::{
    CreateImageOptions, ImportImageOptions, ListImagesOptions, RemoveImageOptions, TagImageOptions,
};
use bollard::Docker;
use clap::Args;
use futures_util::StreamExt;
use serde_json::{json, Value};

use super::containers::filters;
use super::describe;
use super::format::{ago, human_size, print_rows, Output};

#[derive(Debug, Args)]
pub struct ImagesArgs {
    /// Show all images (default hides intermediate images)
    #[arg(short, long)]
    pub all: bool,
    /// Only show image IDs
    #[arg(short, long)]
    pub quiet: bool,
    /// Filter output based on conditions provided (key=value)
    #[arg(short, long = "filter")]
    pub filter: Vec<String>,
    /// Format output using a custom template: 'table', 'json' or a template
    #[arg(long)]
    pub format: Option<String>,
    /// Don't truncate output
    #[arg(long)]
    pub no_trunc: bool,
    /// Show digests
    #[arg(long)]
    pub digests: bool,
    /// Only images of this repository (REPOSITORY[:TAG])
    pub reference: Option<String>,
}

const IMAGES_TABLE: &str = "{{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}";
const DIGESTS_TABLE: &str =
    "{{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}";

/// The digest of `repo` among an image's repo digests (`repo@sha256:…`).
fn digest_for(repo: &str, repo_digests: &[String]) -> String {
    repo_digests
        .iter()
        .find_map(|d| {
            d.split_once('@')
                .filter(|(r, _)| *r == repo)
                .map(|(_, d)| d.to_owned())
        })
        .unwrap_or_else(|| "<none>".to_owned())
}
const IMAGES_HEADERS: &[(&str, &str)] = &[
    ("ID", "IMAGE ID"),
    ("CreatedSince", "CREATED"),
    ("CreatedAt", "CREATED AT"),
];

pub async fn images(d: &Docker, a: &ImagesArgs) -> Result<i32> {
    let mut f = filters(&a.filter)?;
    if let Some(r) = &a.reference {
        f.entry("reference".to_owned()).or_default().push(r.clone());
    }
    let opts = ListImagesOptions {
        all: a.all,
        filters: Some(f),
        ..ListImagesOptions::default()
    };
    let list = d.list_images(Some(opts)).await?;
    let mut rows: Vec<Value> = Vec::new();
    for img in &list {
        let id = if a.no_trunc {
            img.id.clone()
        } else {
            img.id
                .trim_start_matches("sha256:")
                .chars()
                .take(12)
                .collect()
        };
        // An image pulled by digest only is listed under its repository.
        let tags = match (img.repo_tags.is_empty(), img.repo_digests.first()) {
            (false, _) => img.repo_tags.clone(),
            (true, Some(d)) => vec![format!(
                "{}:<none>",
                d.split_once('@').map_or(d.as_str(), |(r, _)| r)
            )],
            (true, None) => vec!["<none>:<none>".to_owned()],
        };
        for t in tags {
            let (repo, tag) = t.rsplit_once(':').unwrap_or((t.as_str(), "<none>"));
            rows.push(json!({
                "Repository": repo,
                "Tag": tag,
                "Digest": digest_for(repo, &img.repo_digests),
                "ID": id,
                "CreatedSince": ago(img.created),
                "CreatedAt": chrono::DateTime::from_timestamp(img.created, 0).map(|t| t.to_string()).unwrap_or_default(),
                "Size": human_size(img.size),
                "Containers": img.containers,
            }));
        }
    }
    if a.quiet {
        let mut seen = std::collections::BTreeSet::new();
        for r in &rows {
            let id = r["ID"].as_str().unwrap_or_default();
            if seen.insert(id.to_owned()) {
                println!("{id}");
            }
        }
        return Ok(0);
    }
    print_rows(
        &rows,
        &Output::parse(a.format.as_deref()),
        if a.digests {
            DIGESTS_TABLE
        } else {
            IMAGES_TABLE
        },
        IMAGES_HEADERS,
    )?;
    Ok(0)
}

#[derive(Debug, Args)]
pub struct RmiArgs {
    /// Force removal of the image
    #[arg(short, long)]
    pub force: bool,
    /// Do not delete untagged parents
    #[arg(long)]
    pub no_prune: bool,
    #[arg(required = true)]
    pub images: Vec<String>,
}

pub async fn rmi(d: &Docker, a: &RmiArgs) -> Result<i32> {
    let mut failed = false;
    for name in &a.images {
        let opts = RemoveImageOptions {
            force: a.force,
            noprune: a.no_prune,
            ..RemoveImageOptions::default()
        };
        match d.remove_image(name, Some(opts), None).await {
            Ok(items) => {
                for ImageDeleteResponseItem { untagged, deleted } in items {
                    if let Some(u) = untagged {
                        println!("Untagged: {u}");
                    }
                    if let Some(d) = deleted {
                        println!("Deleted: {d}");
                    }
                }
            }
            Err(e) => {
                eprintln!("{}", describe(&e.into()));
                failed = true;
            }
        }
    }
    Ok(i32::from(failed))
}

/// `REPOSITORY[:TAG]` apart: a colon after the last slash separates the
/// tag (a registry's port comes before a slash).
pub(crate) fn split_tag(reference: &str) -> (String, Option<String>) {
    match reference.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => (repo.to_owned(), Some(tag.to_owned())),
        _ => (reference.to_owned(), None),
    }
}

pub async fn tag(d: &Docker, source: &str, target: &str) -> Result<i32> {
    let (repo, tag) = split_tag(target);
    let opts = TagImageOptions {
        repo: Some(repo),
        tag,
    };
    d.tag_image(source, Some(opts)).await?;
    Ok(0)
}

/// A file's (or stdin's) bytes as a request body stream.
fn input_stream(path: Option<&str>) -> Result<super::chunks::ChunkStream> {
    let reader: Box<dyn Read + Send> = match path {
        Some("-") | None => Box::new(std::io::stdin()),
        Some(p) => Box::new(std::fs::File::open(p).with_context(|| format!("opening {p}"))?),
    };
    Ok(super::chunks::reader_stream(reader))
}

#[derive(Debug, Args)]
pub struct LoadArgs {
    /// Read from tar archive file, instead of STDIN
    #[arg(short, long)]
    pub input: Option<String>,
    /// Suppress the load output
    #[arg(short, long)]
    pub quiet: bool,
}

pub async fn load(d: &Docker, a: &LoadArgs) -> Result<i32> {
    if a.input.is_none() && std::io::stdin().is_terminal() {
        bail!("requested load from stdin, but stdin is empty");
    }
    let body = bollard::body_stream(input_stream(a.input.as_deref())?);
    let opts = ImportImageOptions {
        quiet: a.quiet,
        ..ImportImageOptions::default()
    };
    let mut stream = d.import_image(opts, body, None);
    while let Some(info) = stream.next().await {
        let info = info?;
        if let Some(line) = info.stream {
            if !a.quiet {
                print!("{line}");
            }
        }
    }
    Ok(0)
}

#[derive(Debug, Args)]
pub struct SaveArgs {
    /// Write to a file, instead of STDOUT
    #[arg(short, long)]
    pub output: Option<String>,
    #[arg(required = true)]
    pub images: Vec<String>,
}

pub async fn save(d: &Docker, a: &SaveArgs) -> Result<i32> {
    let mut out: Box<dyn Write> = match &a.output {
        Some(p) => Box::new(std::fs::File::create(p).with_context(|| format!("creating {p}"))?),
        None if std::io::stdout().is_terminal() => {
            bail!("cowardly refusing to save to a terminal. Use the -o flag or redirect")
        }
        None => Box::new(std::io::stdout().lock()),
    };
    let names: Vec<&str> = a.images.iter().map(String::as_str).collect();
    let mut stream = d.export_images(&names);
    while let Some(chunk) = stream.next().await {
        out.write_all(&chunk?)?;
    }
    out.flush()?;
    Ok(0)
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Apply Dockerfile instruction to the created image
    #[arg(short, long = "change")]
    pub change: Vec<String>,
    /// Set commit message for imported image
    #[arg(short, long)]
    pub message: Option<String>,
    /// file (or - for STDIN)
    pub file: String,
    /// REPOSITORY[:TAG]
    pub reference: Option<String>,
}

pub async fn import(d: &Docker, a: &ImportArgs) -> Result<i32> {
    let (repo, tag) = match a.reference.as_deref().map(split_tag) {
        Some((r, t)) => (Some(r), t),
        None => (None, None),
    };
    let opts = CreateImageOptions {
        from_src: Some("-".to_owned()),
        repo,
        tag,
        message: a.message.clone(),
        changes: a.change.clone(),
        ..CreateImageOptions::default()
    };
    let body = bollard::body_stream(input_stream(Some(&a.file))?);
    let mut stream = d.create_image(Some(opts), Some(body), None);
    while let Some(info) = stream.next().await {
        if let Some(status) = info?.status {
            println!("{status}");
        }
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_split_after_the_last_slash() {
        assert_eq!(
            split_tag("busybox:v2"),
            ("busybox".into(), Some("v2".into()))
        );
        assert_eq!(
            split_tag("localhost:5000/app"),
            ("localhost:5000/app".into(), None)
        );
        assert_eq!(
            split_tag("localhost:5000/app:1"),
            ("localhost:5000/app".into(), Some("1".into()))
        );
    }
}
