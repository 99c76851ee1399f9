//! `berth system df`, `system prune`, `image prune` and `builder prune`:
//! what berth's data takes and what can go, as docker words it.

use std::path::Path;

use anyhow::{bail, Result};
use bollard::query_parameters::{PruneBuildOptions, PruneImagesOptions};
use bollard::Docker;
use clap::Subcommand;
use serde_json::{json, Value};

use super::containers::filters;
use super::format::{human_size, print_rows, Output};
use super::volumes::confirm;

#[derive(Debug, Subcommand)]
pub enum SystemCommand {
    /// Show docker disk usage
    Df {
        /// Format output using a custom template
        #[arg(long)]
        format: Option<String>,
    },
    /// Remove unused data
    Prune {
        /// Remove all unused images not just dangling ones
        #[arg(short, long)]
        all: bool,
        /// Prune anonymous volumes
        #[arg(long)]
        volumes: bool,
        /// Do not prompt for confirmation
        #[arg(short, long)]
        force: bool,
        /// Provide filter values (e.g. "label=<key>=<value>")
        #[arg(long)]
        filter: Vec<String>,
    },
    /// Display system-wide information
    Info {
        /// Format output using a custom template
        #[arg(short, long)]
        format: Option<String>,
    },
    /// Get real time events from the server
    Events(super::system::EventsArgs),
}

#[derive(Debug, Subcommand)]
pub enum PruneOnly {
    /// Remove unused data
    Prune {
        /// Remove all unused images (builder: all cache), not just dangling ones
        #[arg(short, long)]
        all: bool,
        /// Do not prompt for confirmation
        #[arg(short, long)]
        force: bool,
        /// Provide filter values
        #[arg(long)]
        filter: Vec<String>,
    },
}

fn n(v: &Value) -> i64 {
    v.as_i64().unwrap_or(0)
}

/// `SIZE` and `RECLAIMABLE` cells: docker's "1.98MB (100%)".
fn reclaimable(total: i64, free: i64) -> String {
    let percent = if total > 0 { free * 100 / total } else { 0 };
    if total > 0 {
        format!("{} ({percent}%)", human_size(free))
    } else {
        human_size(free)
    }
}

/// The four rows of `docker system df`.
fn df_rows(df: &Value) -> Vec<Value> {
    let list = |k: &str| df[k].as_array().cloned().unwrap_or_default();
    let images = list("Images");
    let layers = n(&df["LayersSize"]);
    let used: i64 = images
        .iter()
        .filter(|i| n(&i["Containers"]) > 0)
        .map(|i| n(&i["Size"]) - n(&i["SharedSize"]).max(0))
        .sum();
    let containers = list("Containers");
    let active = |c: &Value| {
        matches!(
            c["State"].as_str(),
            Some("running" | "paused" | "restarting")
        )
    };
    let rw = |c: &Value| n(&c["SizeRw"]);
    let volumes = list("Volumes");
    let vsize = |v: &Value| n(&v["UsageData"]["Size"]).max(0);
    let vused = |v: &Value| n(&v["UsageData"]["RefCount"]) > 0;
    let cache = list("BuildCache");
    let row = |kind: &str, total: usize, act: usize, size: i64, free: i64, pct: bool| {
        json!({
            "Type": kind, "TotalCount": total.to_string(), "Active": act.to_string(),
            "Size": human_size(size),
            "Reclaimable": if pct { reclaimable(size, free) } else { human_size(free) },
        })
    };
    vec![
        row(
            "Images",
            images.len(),
            images.iter().filter(|i| n(&i["Containers"]) > 0).count(),
            layers,
            (layers - used).max(0),
            true,
        ),
        row(
            "Containers",
            containers.len(),
            containers.iter().filter(|c| active(c)).count(),
            containers.iter().map(rw).sum(),
            containers.iter().filter(|c| !active(c)).map(rw).sum(),
            true,
        ),
        row(
            "Local Volumes",
            volumes.len(),
            volumes.iter().filter(|v| vused(v)).count(),
            volumes.iter().map(vsize).sum(),
            volumes.iter().filter(|v| !vused(v)).map(vsize).sum(),
            true,
        ),
        row(
            "Build Cache",
            cache.len(),
            cache.iter().filter(|c| c["InUse"] == true).count(),
            cache.iter().map(|c| n(&c["Size"])).sum(),
            cache
                .iter()
                .filter(|c| c["InUse"] != true)
                .map(|c| n(&c["Size"]))
                .sum(),
            false,
        ),
    ]
}

/// `berth system …`.
pub async fn system(d: &Docker, socket: &Path, cmd: &SystemCommand) -> Result<i32> {
    match cmd {
        SystemCommand::Df { format } => {
            let df = super::connect::get_json(socket, "/system/df").await?;
            print_rows(
                &df_rows(&df),
                &Output::parse(format.as_deref()),
                "{{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}",
                &[("TotalCount", "TOTAL")],
            )?;
            Ok(0)
        }
        SystemCommand::Prune {
            all,
            volumes,
            force,
            filter,
        } => prune(d, *all, *volumes, *force, filter).await,
        SystemCommand::Info { format } => super::system::info(d, format.as_deref()).await,
        SystemCommand::Events(a) => super::system::events(d, a).await,
    }
}

async fn prune(
    d: &Docker,
    all: bool,
    volumes: bool,
    force: bool,
    filter: &[String],
) -> Result<i32> {
    let mut warning = String::from("WARNING! This will remove:\n  - all stopped containers\n");
    if volumes {
        warning.push_str("  - all volumes not used by at least one container\n");
    }
    warning.push_str(if all {
        "  - all images without at least one container associated to them\n"
    } else {
        "  - all dangling images\n"
    });
    warning.push_str("  - unused build cache\n");
    if !force && !confirm(&warning)? {
        return Ok(0);
    }
    let f = filters(filter)?;
    // Refused before anything goes: the build cache's prune has none.
    if !f.is_empty() {
        bail!("berth system prune takes no --filter yet: the build cache cannot be filtered");
    }
    let mut freed: i64 = 0;
    let containers = d
        .prune_containers(Some(bollard::query_parameters::PruneContainersOptions {
            filters: Some(f.clone()),
        }))
        .await?;
    freed += containers.space_reclaimed.unwrap_or(0);
    section(
        "Deleted Containers:",
        containers.containers_deleted.unwrap_or_default(),
    );
    if volumes {
        let v = d
            .prune_volumes(Some(bollard::query_parameters::PruneVolumesOptions {
                filters: Some(f.clone()),
            }))
            .await?;
        freed += v.space_reclaimed.unwrap_or(0);
        section("Deleted Volumes:", v.volumes_deleted.unwrap_or_default());
    }
    freed += prune_images(d, all, f).await?;
    freed += prune_cache(d, all).await?;
    println!("Total reclaimed space: {}", human_size(freed));
    Ok(0)
}

fn section(title: &str, items: Vec<String>) {
    if items.is_empty() {
        return;
    }
    println!("{title}");
    for i in items {
        println!("{i}");
    }
    println!();
}

/// Prunes images (dangling, or all unused); returns the bytes freed.
async fn prune_images(
    d: &Docker,
    all: bool,
    mut f: std::collections::HashMap<String, Vec<String>>,
) -> Result<i64> {
    if all {
        f.insert("dangling".to_owned(), vec!["false".to_owned()]);
    }
    let r = d
        .prune_images(Some(PruneImagesOptions { filters: Some(f) }))
        .await?;
    let mut lines = Vec::new();
    for i in r.images_deleted.unwrap_or_default() {
        if let Some(u) = i.untagged {
            lines.push(format!("untagged: {u}"));
        }
        if let Some(d) = i.deleted {
            lines.push(format!("deleted: {d}"));
        }
    }
    section("Deleted Images:", lines);
    Ok(r.space_reclaimed.unwrap_or(0))
}

/// Prunes the build cache; returns the bytes freed.
async fn prune_cache(d: &Docker, all: bool) -> Result<i64> {
    let opts = PruneBuildOptions {
        all: Some(all),
        ..PruneBuildOptions::default()
    };
    let r = d.prune_build(Some(opts)).await?;
    section(
        "Deleted build cache objects:",
        r.caches_deleted.unwrap_or_default(),
    );
    Ok(r.space_reclaimed.unwrap_or(0))
}

/// `berth image prune` / `berth builder prune`.
pub async fn prune_one(d: &Docker, images: bool, cmd: &PruneOnly) -> Result<i32> {
    let PruneOnly::Prune { all, force, filter } = cmd;
    let f = filters(filter)?;
    if !images && !f.is_empty() {
        bail!("berth builder prune takes no --filter yet");
    }
    let what = match (images, all) {
        (true, true) => "WARNING! This will remove all images without at least one container associated to them.",
        (true, false) => "WARNING! This will remove all dangling images.",
        (false, _) => "WARNING! This will remove all dangling build cache.",
    };
    if !force && !confirm(what)? {
        return Ok(0);
    }
    let freed = if images {
        prune_images(d, *all, f).await?
    } else {
        prune_cache(d, *all).await?
    };
    println!("Total reclaimed space: {}", human_size(freed));
    Ok(0)
}
