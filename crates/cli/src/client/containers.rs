//! `ps`, `logs`, `stop`, `kill`, `restart`, `rm`, `wait`, `inspect`.

use std::collections::HashMap;
use std::io::Write;

use anyhow::{bail, Result};
use bollard::container::LogOutput;
use bollard::query_parameters::{
    InspectContainerOptions, KillContainerOptions, ListContainersOptions, LogsOptions,
    RemoveContainerOptions, RestartContainerOptions, StopContainerOptions, WaitContainerOptions,
};
use bollard::Docker;
use clap::Args;
use futures_util::StreamExt;
use serde_json::{json, Value};

use super::describe;
use super::format::{ago, human_size, print_rows, render, Output};

#[derive(Debug, Args)]
pub struct PsArgs {
    /// Show all containers (default shows just running)
    #[arg(short, long)]
    pub all: bool,
    /// Only display container IDs
    #[arg(short, long)]
    pub quiet: bool,
    /// Filter output based on conditions provided (key=value)
    #[arg(short, long = "filter")]
    pub filter: Vec<String>,
    /// Format output using a custom template: 'table', 'json' or a template
    #[arg(long)]
    pub format: Option<String>,
    /// Show n last created containers (includes all states)
    #[arg(short = 'n', long)]
    pub last: Option<i32>,
    /// Show the latest created container (includes all states)
    #[arg(short, long)]
    pub latest: bool,
    /// Don't truncate output
    #[arg(long)]
    pub no_trunc: bool,
    /// Display total file sizes
    #[arg(short, long)]
    pub size: bool,
}

const PS_TABLE: &str =
    "{{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}";
const PS_HEADERS: &[(&str, &str)] = &[
    ("ID", "CONTAINER ID"),
    ("RunningFor", "CREATED"),
    ("CreatedAt", "CREATED AT"),
];

/// `key=value` filter flags as the API's map.
pub fn filters(flags: &[String]) -> Result<HashMap<String, Vec<String>>> {
    let mut out: HashMap<String, Vec<String>> = HashMap::new();
    for f in flags {
        let Some((k, v)) = f.split_once('=') else {
            bail!("bad format of filter (expected name=value): {f}");
        };
        out.entry(k.to_owned()).or_default().push(v.to_owned());
    }
    Ok(out)
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_owned()
    } else {
        format!("{}…", s.chars().take(n - 1).collect::<String>())
    }
}

pub async fn ps(d: &Docker, a: &PsArgs) -> Result<i32> {
    let limit = if a.latest { Some(1) } else { a.last };
    let opts = ListContainersOptions {
        all: a.all || limit.is_some(),
        limit,
        size: a.size,
        filters: Some(filters(&a.filter)?),
    };
    let list = d.list_containers(Some(opts)).await?;
    let rows: Vec<Value> = list
        .iter()
        .map(|c| {
            let id = c.id.clone().unwrap_or_default();
            let command = c.command.clone().unwrap_or_default();
            let created = c.created.unwrap_or_default();
            let names: Vec<String> = c
                .names
                .iter()
                .flatten()
                .map(|n| n.trim_start_matches('/').to_owned())
                .collect();
            json!({
                "ID": if a.no_trunc { id.clone() } else { id.chars().take(12).collect() },
                "Image": c.image,
                "Command": if a.no_trunc { format!("\"{command}\"") } else { format!("\"{}\"", truncate(&command, 20)) },
                "CreatedAt": chrono::DateTime::from_timestamp(created, 0).map(|t| t.to_string()).unwrap_or_default(),
                "RunningFor": ago(created),
                "Status": c.status,
                "State": c.state.map(|s| s.to_string()),
                "Ports": "",
                "Names": names.join(","),
                "Labels": c.labels.iter().flatten().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(","),
                "Size": c.size_rw.map(|rw| format!(
                    "{} (virtual {})",
                    human_size(rw),
                    human_size(c.size_root_fs.unwrap_or(rw))
                )),
            })
        })
        .collect();
    if a.quiet {
        for r in &rows {
            println!("{}", r["ID"].as_str().unwrap_or_default());
        }
        return Ok(0);
    }
    print_rows(
        &rows,
        &Output::parse(a.format.as_deref()),
        PS_TABLE,
        PS_HEADERS,
    )?;
    Ok(0)
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Follow log output
    #[arg(short, long)]
    pub follow: bool,
    /// Number of lines to show from the end of the logs
    #[arg(short = 'n', long, default_value = "all")]
    pub tail: String,
    /// Show timestamps
    #[arg(short, long)]
    pub timestamps: bool,
    /// Show logs since a timestamp (Unix seconds or RFC 3339) or relative (e.g. 42m)
    #[arg(long)]
    pub since: Option<String>,
    /// Show logs before a timestamp or relative time
    #[arg(long)]
    pub until: Option<String>,
    pub container: String,
}

/// Unix seconds of docker's time arguments: seconds, RFC 3339, or a
/// duration ago ("10s", "5m", "2h").
pub fn parse_time(s: &str) -> Result<i64> {
    if let Ok(n) = s.split('.').next().unwrap_or(s).parse::<i64>() {
        return Ok(n);
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(t.timestamp());
    }
    let (num, unit) = s.split_at(s.len().saturating_sub(1));
    let n: i64 = num
        .parse()
        .map_err(|_| anyhow::anyhow!("invalid time {s:?}"))?;
    let secs = match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        _ => bail!("invalid time {s:?}: use Unix seconds, RFC 3339 or a duration like 10m"),
    };
    Ok(chrono::Utc::now().timestamp() - secs)
}

pub async fn logs(d: &Docker, a: &LogsArgs) -> Result<i32> {
    let opts = LogsOptions {
        follow: a.follow,
        stdout: true,
        stderr: true,
        since: a
            .since
            .as_deref()
            .map(parse_time)
            .transpose()?
            .map_or(0, |t| i32::try_from(t).unwrap_or(0)),
        until: a
            .until
            .as_deref()
            .map(parse_time)
            .transpose()?
            .map_or(0, |t| i32::try_from(t).unwrap_or(0)),
        timestamps: a.timestamps,
        tail: a.tail.clone(),
    };
    let mut stream = d.logs(&a.container, Some(opts));
    while let Some(chunk) = stream.next().await {
        match chunk? {
            LogOutput::StdErr { message } => std::io::stderr().write_all(&message)?,
            LogOutput::StdOut { message } | LogOutput::Console { message } => {
                let mut out = std::io::stdout().lock();
                out.write_all(&message)?;
                out.flush()?;
            }
            LogOutput::StdIn { .. } => {}
        }
    }
    Ok(0)
}

#[derive(Debug, Args)]
pub struct StopArgs {
    /// Seconds to wait before killing the container
    #[arg(short = 't', long = "time", alias = "timeout")]
    pub time: Option<i32>,
    /// Signal to send to the container
    #[arg(short, long)]
    pub signal: Option<String>,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Debug, Args)]
pub struct KillArgs {
    /// Signal to send to the container
    #[arg(short, long, default_value = "KILL")]
    pub signal: String,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Debug, Args)]
pub struct RmArgs {
    /// Force the removal of a running container (uses SIGKILL)
    #[arg(short, long)]
    pub force: bool,
    /// Remove anonymous volumes associated with the container
    #[arg(short, long)]
    pub volumes: bool,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

/// Runs `op` on each name, printing the name on success and docker's
/// error otherwise; exit 1 if any failed.
pub(super) async fn each<F, Fut>(names: &[String], op: F) -> Result<i32>
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = Result<(), bollard::errors::Error>>,
{
    let mut failed = false;
    for n in names {
        match op(n.clone()).await {
            Ok(()) => println!("{n}"),
            Err(e) => {
                eprintln!("{}", describe(&e.into()));
                failed = true;
            }
        }
    }
    Ok(i32::from(failed))
}

pub async fn stop(d: &Docker, a: &StopArgs) -> Result<i32> {
    each(&a.containers, |n| async move {
        let opts = StopContainerOptions {
            t: a.time,
            signal: a.signal.clone(),
        };
        d.stop_container(&n, Some(opts)).await
    })
    .await
}

pub async fn restart(d: &Docker, a: &StopArgs) -> Result<i32> {
    each(&a.containers, |n| async move {
        let opts = RestartContainerOptions {
            t: a.time,
            signal: a.signal.clone(),
        };
        d.restart_container(&n, Some(opts)).await
    })
    .await
}

pub async fn kill(d: &Docker, a: &KillArgs) -> Result<i32> {
    each(&a.containers, |n| async move {
        let opts = KillContainerOptions {
            signal: a.signal.clone(),
        };
        d.kill_container(&n, Some(opts)).await
    })
    .await
}

pub async fn rm(d: &Docker, a: &RmArgs) -> Result<i32> {
    each(&a.containers, |n| async move {
        let opts = RemoveContainerOptions {
            force: a.force,
            v: a.volumes,
            ..RemoveContainerOptions::default()
        };
        d.remove_container(&n, Some(opts)).await
    })
    .await
}

pub async fn wait(d: &Docker, names: &[String]) -> Result<i32> {
    let mut failed = false;
    for n in names {
        let mut s = d.wait_container(
            n,
            Some(WaitContainerOptions {
                condition: "not-running".into(),
            }),
        );
        match s.next().await {
            Some(Ok(r)) => println!("{}", r.status_code),
            // bollard reports a non-zero exit as an error carrying the code.
            Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. })) => {
                println!("{code}")
            }
            Some(Err(e)) => {
                eprintln!("{}", describe(&e.into()));
                failed = true;
            }
            None => failed = true,
        }
    }
    Ok(i32::from(failed))
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Format output using a custom template
    #[arg(short, long)]
    pub format: Option<String>,
    /// Only inspect objects of the given type (container, image)
    #[arg(long = "type")]
    pub kind: Option<String>,
    #[arg(required = true)]
    pub names: Vec<String>,
}

async fn inspect_one(d: &Docker, name: &str, kind: Option<&str>) -> Result<Value> {
    if kind != Some("image") {
        match d
            .inspect_container(name, None::<InspectContainerOptions>)
            .await
        {
            Ok(c) => return Ok(serde_json::to_value(c)?),
            Err(e) if kind == Some("container") => return Err(e.into()),
            Err(_) => {}
        }
    }
    if kind != Some("volume") {
        if let Ok(i) = d.inspect_image(name).await {
            return Ok(serde_json::to_value(i)?);
        }
    }
    let volume = match kind {
        None | Some("volume") => d.inspect_volume(name).await.ok(),
        Some(_) => None,
    };
    match volume {
        Some(v) => Ok(serde_json::to_value(v)?),
        None => bail!(super::DaemonError(format!("No such object: {name}"))),
    }
}

pub async fn inspect(d: &Docker, a: &InspectArgs) -> Result<i32> {
    let mut found = Vec::new();
    let mut failed = false;
    for n in &a.names {
        match inspect_one(d, n, a.kind.as_deref()).await {
            Ok(v) => found.push(v),
            Err(e) => {
                eprintln!("{}", describe(&e));
                failed = true;
            }
        }
    }
    match a.format.as_deref() {
        Some(f) => {
            for v in &found {
                println!("{}", render(f, v)?);
            }
        }
        None => println!("{}", serde_json::to_string_pretty(&found)?),
    }
    Ok(i32::from(failed))
}

/// `berth export`: the container's filesystem as a tarball.
pub async fn export(d: &Docker, name: &str, output: Option<&str>) -> Result<i32> {
    use std::io::IsTerminal;
    let mut out: Box<dyn Write> = match output {
        Some(p) => {
            Box::new(std::fs::File::create(p).map_err(|e| anyhow::anyhow!("creating {p}: {e}"))?)
        }
        None if std::io::stdout().is_terminal() => {
            bail!("cowardly refusing to save to a terminal. Use the -o flag or redirect")
        }
        None => Box::new(std::io::stdout().lock()),
    };
    let mut stream = d.export_container(name);
    while let Some(chunk) = stream.next().await {
        out.write_all(&chunk?)?;
    }
    out.flush()?;
    Ok(0)
}

/// `berth diff`: the container's changes, `C`/`A`/`D` and the path.
pub async fn diff(d: &Docker, name: &str) -> Result<i32> {
    let changes = d.container_changes(name).await?.unwrap_or_default();
    let mut out = std::io::stdout().lock();
    for c in changes {
        let kind = match c.kind {
            bollard::models::ChangeType::_0 => "C",
            bollard::models::ChangeType::_1 => "A",
            bollard::models::ChangeType::_2 => "D",
        };
        writeln!(out, "{kind} {}", c.path)?;
    }
    Ok(0)
}
