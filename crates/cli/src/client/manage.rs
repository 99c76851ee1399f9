//! `berth top`, `pause`, `unpause`, `update`, `rename` and `container
//! prune`, with docker's flags and output.

use anyhow::Result;
use bollard::models::ContainerUpdateBody;
use bollard::query_parameters::{
    CommitContainerOptions, PruneContainersOptions, RenameContainerOptions, TopOptions,
};
use bollard::Docker;
use clap::{Args, Subcommand};

use super::containers::{each, filters};
use super::flags::parse_bytes;
use super::format::human_size;

#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// Memory limit
    #[arg(short, long)]
    memory: Option<String>,
    /// Swap limit equal to memory plus swap: -1 to enable unlimited swap
    #[arg(long)]
    memory_swap: Option<String>,
    /// Number of CPUs
    #[arg(long)]
    cpus: Option<f64>,
    /// CPU shares (relative weight)
    #[arg(short, long)]
    cpu_shares: Option<i64>,
    /// Limit CPU CFS quota
    #[arg(long)]
    cpu_quota: Option<i64>,
    /// Limit CPU CFS period
    #[arg(long)]
    cpu_period: Option<i64>,
    /// CPUs in which to allow execution (0-3, 0,1)
    #[arg(long)]
    cpuset_cpus: Option<String>,
    /// Tune container pids limit (-1 for unlimited)
    #[arg(long)]
    pids_limit: Option<i64>,
    /// Restart policy to apply when a container exits
    #[arg(long)]
    restart: Option<String>,
    #[arg(required = true)]
    containers: Vec<String>,
}

#[derive(Debug, Args)]
pub struct CommitArgs {
    /// Author (e.g., "John Hannibal Smith <hannibal@a-team.com>")
    #[arg(short, long)]
    author: Option<String>,
    /// Apply Dockerfile instruction to the created image
    #[arg(short, long)]
    change: Vec<String>,
    /// Commit message
    #[arg(short, long)]
    message: Option<String>,
    /// Pause container during commit
    #[arg(short, long, default_value_t = true, action = clap::ArgAction::Set)]
    pause: bool,
    container: String,
    /// REPOSITORY[:TAG]
    reference: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum ContainerCommand {
    /// Remove all stopped containers
    Prune {
        /// Do not prompt for confirmation
        #[arg(short, long)]
        force: bool,
        /// Provide filter values (e.g. "until=<timestamp>")
        #[arg(long)]
        filter: Vec<String>,
    },
}

/// `berth top CONTAINER [ps OPTIONS]`.
pub async fn top(d: &Docker, container: &str, ps_args: &[String]) -> Result<i32> {
    let opts = TopOptions {
        ps_args: if ps_args.is_empty() {
            "-ef".to_owned()
        } else {
            ps_args.join(" ")
        },
    };
    let t = d.top_processes(container, Some(opts)).await?;
    let mut lines = vec![t.titles.unwrap_or_default().join("\t")];
    for p in t.processes.unwrap_or_default() {
        lines.push(p.join("\t"));
    }
    for l in super::format::align(&lines) {
        println!("{l}");
    }
    Ok(0)
}

pub async fn pause(d: &Docker, names: &[String]) -> Result<i32> {
    each(names, |n| async move { d.pause_container(&n).await }).await
}

pub async fn unpause(d: &Docker, names: &[String]) -> Result<i32> {
    each(names, |n| async move { d.unpause_container(&n).await }).await
}

pub async fn update(d: &Docker, a: &UpdateArgs) -> Result<i32> {
    let memory_swap = match a.memory_swap.as_deref() {
        Some("-1") => Some(-1),
        other => other.map(parse_bytes).transpose()?,
    };
    let restart_policy = a
        .restart
        .as_deref()
        .map(super::flags::restart_policy)
        .transpose()?;
    let body = ContainerUpdateBody {
        memory: a.memory.as_deref().map(parse_bytes).transpose()?,
        memory_swap,
        nano_cpus: a
            .cpus
            .map(|c| super::flags::whole(c * 1e9, "--cpus"))
            .transpose()?,
        cpu_shares: a.cpu_shares,
        cpu_quota: a.cpu_quota,
        cpu_period: a.cpu_period,
        cpuset_cpus: a.cpuset_cpus.clone(),
        pids_limit: a.pids_limit,
        restart_policy,
        ..ContainerUpdateBody::default()
    };
    each(&a.containers, |n| {
        let body = body.clone();
        async move { d.update_container(&n, body).await.map(drop) }
    })
    .await
}

pub async fn rename(d: &Docker, old: &str, new: &str) -> Result<i32> {
    let opts = RenameContainerOptions {
        name: new.to_owned(),
    };
    d.rename_container(old, opts).await?;
    Ok(0)
}

pub async fn container(d: &Docker, cmd: &ContainerCommand) -> Result<i32> {
    match cmd {
        ContainerCommand::Prune { force, filter } => {
            if !force
                && !super::volumes::confirm("WARNING! This will remove all stopped containers.")?
            {
                return Ok(0);
            }
            let opts = PruneContainersOptions {
                filters: Some(filters(filter)?),
            };
            let report = d.prune_containers(Some(opts)).await?;
            let deleted = report.containers_deleted.unwrap_or_default();
            if !deleted.is_empty() {
                println!("Deleted Containers:");
                for c in &deleted {
                    println!("{c}");
                }
                println!();
            }
            println!(
                "Total reclaimed space: {}",
                human_size(report.space_reclaimed.unwrap_or(0))
            );
            Ok(0)
        }
    }
}

/// `berth commit`: prints the new image's ID.
pub async fn commit(d: &Docker, a: &CommitArgs) -> Result<i32> {
    let (repo, tag) = match a.reference.as_deref() {
        Some(r) => {
            let (repo, tag) = super::images::split_tag(r);
            (Some(repo), tag)
        }
        None => (None, None),
    };
    let opts = CommitContainerOptions {
        container: Some(a.container.clone()),
        repo,
        tag,
        comment: a.message.clone(),
        author: a.author.clone(),
        pause: a.pause,
        changes: (!a.change.is_empty()).then(|| a.change.join("\n")),
    };
    let id = d
        .commit_container(opts, bollard::models::ContainerConfig::default())
        .await?
        .id;
    println!("{id}");
    Ok(0)
}
