//! `berth volume create|ls|inspect|rm|prune`, with docker's flags and
//! output.

use std::collections::HashMap;
use std::io::{BufRead, Write};

use anyhow::{bail, Result};
use bollard::models::VolumeCreateRequest;
use bollard::query_parameters::{ListVolumesOptions, PruneVolumesOptions, RemoveVolumeOptions};
use bollard::Docker;
use clap::{Args, Subcommand};
use serde_json::{json, Value};

use super::containers::filters;
use super::format::{human_size, print_rows, render, Output};

#[derive(Debug, Subcommand)]
pub enum VolumeCommand {
    /// Create a volume
    Create {
        /// Volume driver name
        #[arg(short, long, default_value = "local")]
        driver: String,
        /// Set metadata for a volume
        #[arg(short, long = "label")]
        label: Vec<String>,
        /// Set driver specific options
        #[arg(short, long = "opt")]
        opt: Vec<String>,
        /// Specify volume name
        #[arg(long = "name")]
        name_flag: Option<String>,
        name: Option<String>,
    },
    /// List volumes
    #[command(alias = "list")]
    Ls(LsArgs),
    /// Display detailed information on one or more volumes
    Inspect {
        /// Format output using a custom template
        #[arg(short, long)]
        format: Option<String>,
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Remove one or more volumes
    #[command(alias = "remove")]
    Rm {
        /// Force the removal of one or more volumes
        #[arg(short, long)]
        force: bool,
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Remove unused local volumes
    Prune {
        /// Do not prompt for confirmation
        #[arg(short, long)]
        force: bool,
        /// Provide filter values (e.g. "label=<label>")
        #[arg(long)]
        filter: Vec<String>,
    },
}

#[derive(Debug, Args)]
pub struct LsArgs {
    /// Only display volume names
    #[arg(short, long)]
    quiet: bool,
    /// Provide filter values (e.g. "dangling=true")
    #[arg(short, long)]
    filter: Vec<String>,
    /// Format output using a custom template
    #[arg(long)]
    format: Option<String>,
}

fn pairs(items: &[String]) -> HashMap<String, String> {
    items
        .iter()
        .map(|i| {
            let (k, v) = i.split_once('=').unwrap_or((i, ""));
            (k.to_owned(), v.to_owned())
        })
        .collect()
}

/// `berth volume …`.
pub async fn volume(d: &Docker, cmd: &VolumeCommand) -> Result<i32> {
    match cmd {
        VolumeCommand::Create {
            driver,
            label,
            opt,
            name_flag,
            name,
        } => {
            if let (Some(a), Some(b)) = (name_flag, name) {
                if a != b {
                    bail!("conflicting options: either specify --name or provide positional arg, not both");
                }
            }
            let req = VolumeCreateRequest {
                name: name_flag.clone().or_else(|| name.clone()),
                driver: Some(driver.clone()),
                driver_opts: Some(pairs(opt)),
                labels: Some(pairs(label)),
                ..VolumeCreateRequest::default()
            };
            println!("{}", d.create_volume(req).await?.name);
            Ok(0)
        }
        VolumeCommand::Ls(a) => ls(d, a).await,
        VolumeCommand::Inspect { format, names } => inspect(d, format.as_deref(), names).await,
        VolumeCommand::Rm { force, names } => {
            let mut failed = false;
            for n in names {
                let opts = RemoveVolumeOptions { force: *force };
                match d.remove_volume(n, Some(opts)).await {
                    Ok(()) => println!("{n}"),
                    Err(e) => {
                        eprintln!("{}", super::describe(&e.into()));
                        failed = true;
                    }
                }
            }
            Ok(i32::from(failed))
        }
        VolumeCommand::Prune { force, filter } => prune(d, *force, filter).await,
    }
}

async fn ls(d: &Docker, a: &LsArgs) -> Result<i32> {
    let opts = ListVolumesOptions {
        filters: Some(filters(&a.filter)?),
    };
    let list = d.list_volumes(Some(opts)).await?;
    let mut volumes = list.volumes.unwrap_or_default();
    volumes.sort_by(|x, y| x.name.cmp(&y.name));
    if a.quiet {
        for v in volumes {
            println!("{}", v.name);
        }
        return Ok(0);
    }
    let rows: Vec<Value> = volumes
        .iter()
        .map(|v| {
            let labels: Vec<String> = v.labels.iter().map(|(k, x)| format!("{k}={x}")).collect();
            json!({
                "Driver": v.driver,
                "Name": v.name,
                "Mountpoint": v.mountpoint,
                "Scope": "local",
                "Labels": labels.join(","),
            })
        })
        .collect();
    print_rows(
        &rows,
        &Output::parse(a.format.as_deref()),
        "{{.Driver}}\t{{.Name}}",
        &[("Name", "VOLUME NAME")],
    )?;
    Ok(0)
}

async fn inspect(d: &Docker, format: Option<&str>, names: &[String]) -> Result<i32> {
    let mut found = Vec::new();
    let mut failed = false;
    for n in names {
        match d.inspect_volume(n).await {
            Ok(v) => found.push(serde_json::to_value(v)?),
            Err(e) => {
                eprintln!("{}", super::describe(&e.into()));
                failed = true;
            }
        }
    }
    match format {
        Some(f) => {
            for v in &found {
                println!("{}", render(f, v)?);
            }
        }
        None => println!("{}", serde_json::to_string_pretty(&found)?),
    }
    Ok(i32::from(failed))
}

/// docker's confirmation prompt; true when the user answers yes.
pub fn confirm(warning: &str) -> Result<bool> {
    print!("{warning}\nAre you sure you want to continue? [y/N] ");
    std::io::stdout().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes"))
}

async fn prune(d: &Docker, force: bool, filter: &[String]) -> Result<i32> {
    if !force
        && !confirm(
            "WARNING! This will remove all local volumes not used by at least one container.",
        )?
    {
        return Ok(0);
    }
    let opts = PruneVolumesOptions {
        filters: Some(filters(filter)?),
    };
    let report = d.prune_volumes(Some(opts)).await?;
    let deleted = report.volumes_deleted.unwrap_or_default();
    if !deleted.is_empty() {
        println!("Deleted Volumes:");
        for v in &deleted {
            println!("{v}");
        }
        println!();
    }
    println!(
        "Total reclaimed space: {}",
        human_size(report.space_reclaimed.unwrap_or(0))
    );
    Ok(0)
}
