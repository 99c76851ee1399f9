//! `events`, `info`, `version`.

use anyhow::Result;
use bollard::query_parameters::EventsOptions;
use bollard::Docker;
use clap::Args;
use futures_util::StreamExt;

use super::containers::{filters, parse_time};
use super::format::render;

#[derive(Debug, Args)]
pub struct EventsArgs {
    /// Show all events created since timestamp
    #[arg(long)]
    pub since: Option<String>,
    /// Stream events until this timestamp
    #[arg(long)]
    pub until: Option<String>,
    /// Filter output based on conditions provided (key=value)
    #[arg(short, long = "filter")]
    pub filter: Vec<String>,
    /// Format output using a custom template ('json' or a template)
    #[arg(long)]
    pub format: Option<String>,
}

/// Docker's time arguments, passed on with their fractions.
fn api_time(s: &str) -> Result<String> {
    if s.contains('.') && s.split('.').all(|p| p.chars().all(|c| c.is_ascii_digit())) {
        return Ok(s.to_owned());
    }
    Ok(parse_time(s)?.to_string())
}

pub async fn events(d: &Docker, a: &EventsArgs) -> Result<i32> {
    let opts = EventsOptions {
        since: a.since.as_deref().map(api_time).transpose()?,
        until: a.until.as_deref().map(api_time).transpose()?,
        filters: Some(filters(&a.filter)?),
    };
    let mut stream = d.events(Some(opts));
    while let Some(e) = stream.next().await {
        let e = e?;
        let v = serde_json::to_value(&e)?;
        match a.format.as_deref() {
            Some("json") => println!("{v}"),
            Some(f) => println!("{}", render(f, &v)?),
            None => {
                let nanos = e.time_nano.unwrap_or_default();
                let time = chrono::DateTime::from_timestamp(
                    nanos / 1_000_000_000,
                    (nanos % 1_000_000_000) as u32,
                )
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true))
                .unwrap_or_default();
                let actor = e.actor.unwrap_or_default();
                let sorted: std::collections::BTreeMap<String, String> =
                    actor.attributes.unwrap_or_default().into_iter().collect();
                let attrs: Vec<String> = sorted.iter().map(|(k, v)| format!("{k}={v}")).collect();
                let kind = e.typ.map(|t| t.to_string()).unwrap_or_default();
                println!(
                    "{time} {kind} {} {} ({})",
                    e.action.unwrap_or_default(),
                    actor.id.unwrap_or_default(),
                    attrs.join(", ")
                );
            }
        }
    }
    Ok(0)
}

pub async fn info(d: &Docker, format: Option<&str>) -> Result<i32> {
    let info = d.info().await?;
    let v = serde_json::to_value(&info)?;
    if let Some(f) = format {
        println!(
            "{}",
            if f == "json" {
                v.to_string()
            } else {
                render(f, &v)?
            }
        );
        return Ok(0);
    }
    let field = |k: &str| super::format::render(&format!("{{{{.{k}}}}}"), &v).unwrap_or_default();
    println!("Server:");
    for (label, key) in [
        ("Containers", "Containers"),
        (" Running", "ContainersRunning"),
        (" Paused", "ContainersPaused"),
        (" Stopped", "ContainersStopped"),
        ("Images", "Images"),
        ("Server Version", "ServerVersion"),
        ("Storage Driver", "Driver"),
        ("Cgroup Driver", "CgroupDriver"),
        ("Cgroup Version", "CgroupVersion"),
        ("Kernel Version", "KernelVersion"),
        ("Operating System", "OperatingSystem"),
        ("Architecture", "Architecture"),
        ("CPUs", "NCPU"),
        ("Total Memory", "MemTotal"),
        ("Name", "Name"),
        ("Docker Root Dir", "DockerRootDir"),
    ] {
        println!(" {label}: {}", field(key));
    }
    Ok(0)
}

pub async fn version(d: &Docker) -> Result<i32> {
    println!("Client:");
    println!(" Version:           {}", env!("CARGO_PKG_VERSION"));
    println!(" API version:       1.41");
    println!(" OS/Arch:           linux/{}", std::env::consts::ARCH);
    let v = d.version().await?;
    println!();
    println!("Server: berth");
    println!(" Engine:");
    println!("  Version:          {}", v.version.unwrap_or_default());
    println!(
        "  API version:      {} (minimum version {})",
        v.api_version.unwrap_or_default(),
        v.min_api_version.unwrap_or_default()
    );
    println!(
        "  OS/Arch:          {}/{}",
        v.os.unwrap_or_default(),
        v.arch.unwrap_or_default()
    );
    println!(
        "  Kernel Version:   {}",
        v.kernel_version.unwrap_or_default()
    );
    Ok(0)
}
