//! `POST /images/create?fromImage=` (`docker pull`): a pull through the
//! registry client, reported as Docker's JSON progress stream. What fails
//! before the first layer (an unknown image, a refused login) fails the
//! request itself, with Docker's status; later failures end the stream
//! with an `errorDetail`.

use std::io::Write;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use berth_image::manifest::Platform;
use berth_image::Reference;
use berth_registry::{
    ClientOptions, DockerConfig, Event, Progress, PullOptions, Registry, RegistryError,
};
use berth_store::Store;
use serde_json::{json, Value};

use crate::error::{EngineError, ErrorKind, Result};
use crate::events::Events;

/// What `POST /images/create?fromImage=` asks for.
#[derive(Debug, Clone, Default)]
pub struct PullRequest {
    /// `fromImage`, with `tag` applied when given.
    pub image: String,
    pub tag: String,
    /// `os/arch[/variant]`.
    pub platform: String,
    /// The `X-Registry-Auth` header, as the client sent it.
    pub registry_auth: String,
}

/// A pull under way: its progress lines, then its end.
#[derive(Debug)]
pub struct PullStream {
    lines: mpsc::Receiver<Value>,
}

impl PullStream {
    /// The progress lines, as they come.
    pub fn lines(self) -> mpsc::IntoIter<Value> {
        self.lines.into_iter()
    }

    /// Writes every progress line as it comes.
    pub fn write_to(self, out: &mut dyn Write) -> std::io::Result<()> {
        for line in self.lines {
            let mut text = line.to_string();
            text.push('\n');
            out.write_all(text.as_bytes())?;
            out.flush()?;
        }
        Ok(())
    }
}

/// Docker's status for a registry failure.
pub fn registry_error(e: RegistryError) -> EngineError {
    let kind = match &e {
        RegistryError::NotFound(_) => ErrorKind::NotFound,
        RegistryError::Unauthorized { .. } => ErrorKind::NotFound,
        RegistryError::Image(_) | RegistryError::Invalid(_) => ErrorKind::InvalidArgument,
        _ => ErrorKind::Internal,
    };
    let message = match &e {
        RegistryError::Unauthorized { message } => format!("unauthorized: {message}"),
        other => other.to_string(),
    };
    EngineError::new(kind, message)
}

/// Turns pull events into Docker's progress lines, a layer's bytes at
/// most a hundred times.
struct Lines {
    tx: Mutex<mpsc::Sender<Value>>,
    /// Told once: the stream has begun (`Ok`), or the pull failed before.
    outcome: Mutex<Option<mpsc::Sender<Result<()>>>>,
    last: Mutex<std::collections::HashMap<String, u64>>,
}

impl Lines {
    fn send(&self, v: Value) {
        if let Some(o) = self
            .outcome
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
        {
            let _ = o.send(Ok(()));
        }
        let _ = self
            .tx
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .send(v);
    }
}

/// Docker's progress bar: `[====>     ] 1.2MB/3.4MB`.
fn bar(current: u64, total: u64) -> String {
    const WIDTH: usize = 50;
    let done = (current.min(total) * WIDTH as u64)
        .checked_div(total)
        .and_then(|d| usize::try_from(d).ok())
        .unwrap_or(0);
    let body = match done {
        0 => " ".repeat(WIDTH),
        d if d >= WIDTH => "=".repeat(WIDTH),
        d => format!("{}>{}", "=".repeat(d - 1), " ".repeat(WIDTH - d)),
    };
    format!("[{body}] {}/{}", human(current), human(total))
}

fn human(n: u64) -> String {
    let units = ["B", "kB", "MB", "GB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1000.0 && u + 1 < units.len() {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 {
        format!("{n}B")
    } else {
        format!("{v:.3}{}", units[u])
    }
}

impl Progress for Lines {
    fn event(&self, e: Event) {
        let line = match e {
            Event::Resolved { repository, tag } => {
                json!({ "status": format!("Pulling from {repository}"), "id": tag })
            }
            Event::AlreadyExists { id } => {
                json!({ "status": "Already exists", "progressDetail": {}, "id": id })
            }
            Event::Waiting { id } => {
                json!({ "status": "Pulling fs layer", "progressDetail": {}, "id": id })
            }
            Event::Downloading { id, current, total } => {
                let mut last = self
                    .last
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                let prev = last.get(&id).copied().unwrap_or(0);
                if current < total && current - prev < (total / 100).max(256 << 10) {
                    return;
                }
                last.insert(id.clone(), current);
                json!({
                    "status": "Downloading",
                    "progressDetail": { "current": current, "total": total },
                    "progress": bar(current, total),
                    "id": id,
                })
            }
            Event::DownloadComplete { id } => {
                json!({ "status": "Download complete", "progressDetail": {}, "id": id })
            }
            Event::PullComplete { id } => {
                json!({ "status": "Pull complete", "progressDetail": {}, "id": id })
            }
            Event::Digest(d) => json!({ "status": format!("Digest: {d}") }),
        };
        self.send(line);
    }
}

/// One reference, with Docker's closing status line.
fn pull_one(
    registry: &Registry,
    store: &Store,
    events: &Events,
    reference: &Reference,
    opts: &PullOptions,
    lines: &Lines,
) -> Result<()> {
    let before = store.resolve(&reference.to_string()).ok();
    let p =
        berth_registry::pull(registry, store, reference, opts, lines).map_err(registry_error)?;
    let familiar = reference.familiar();
    let status = if before.as_ref() == Some(&p.id) {
        format!("Status: Image is up to date for {familiar}")
    } else {
        format!("Status: Downloaded newer image for {familiar}")
    };
    lines.send(json!({ "status": status }));
    events.publish("image", "pull", &familiar, Default::default());
    Ok(())
}

/// Starts a pull; returns once it has begun streaming (or failed before).
pub fn start(
    store: Arc<Store>,
    events: Arc<Events>,
    registry_opts: &ClientOptions,
    req: &PullRequest,
) -> Result<PullStream> {
    // The docker CLI sends a digest as the `tag` too.
    let name = match req.tag.as_str() {
        "" => req.image.clone(),
        t if t.contains(':') => format!("{}@{t}", req.image),
        t => format!("{}:{t}", req.image),
    };
    let reference: Reference = name
        .parse()
        .map_err(|e| EngineError::invalid(format!("invalid reference format: {e}")))?;
    let platform = match req.platform.as_str() {
        "" => Platform::host(),
        p => Platform::parse(p).ok_or_else(|| {
            EngineError::invalid(format!("invalid platform {p:?}: want os/arch[/variant]"))
        })?,
    };
    // The client's credentials, else the daemon's own docker config.
    let creds = berth_registry::auth::from_registry_auth(&req.registry_auth)
        .or_else(|| DockerConfig::load().credentials(reference.domain()));
    let registry = Registry::new(&reference, creds, registry_opts);
    let (tx, rx) = mpsc::channel();
    let (outcome_tx, outcome_rx) = mpsc::channel();
    let lines = Lines {
        tx: Mutex::new(tx),
        outcome: Mutex::new(Some(outcome_tx)),
        last: Mutex::new(std::collections::HashMap::new()),
    };
    // No tag and no digest: every tag of the repository, as dockerd does.
    let all_tags = reference.tag().is_none() && reference.digest().is_none();
    let opts = PullOptions {
        platform,
        parallel: registry_opts.concurrent_downloads,
        attempts: registry_opts.download_attempts,
    };
    std::thread::spawn(move || {
        let result = if all_tags {
            registry
                .tags(reference.path())
                .map_err(registry_error)
                .and_then(|tags| {
                    for t in tags {
                        let one = reference
                            .with_tag(&t)
                            .map_err(|e| EngineError::invalid(e.to_string()))?;
                        pull_one(&registry, &store, &events, &one, &opts, &lines)?;
                    }
                    Ok(())
                })
        } else {
            pull_one(&registry, &store, &events, &reference, &opts, &lines)
        };
        if let Err(e) = result {
            let early = lines
                .outcome
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .take();
            match early {
                Some(o) => {
                    let _ = o.send(Err(e));
                }
                None => {
                    let m = e.message;
                    lines.send(json!({ "errorDetail": { "message": m }, "error": m }));
                }
            }
        }
    });
    // The stream's beginning, or the failure that came before it.
    match outcome_rx.recv() {
        Ok(Err(e)) => Err(e),
        _ => Ok(PullStream { lines: rx }),
    }
}
