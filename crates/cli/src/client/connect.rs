//! Reaching the daemon: the socket from `-H`/`BERTH_HOST`; a daemon started
//! in the background when none answers on the default socket and the user
//! is root (DESIGN.md: a first run needs no setup); and the one request
//! made by hand, `wait`, whose headers must be in before the start.

use std::future::Future;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use bollard::{ClientVersion, Docker};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;

/// Where the daemon listens unless told otherwise.
pub const DEFAULT_SOCKET: &str = "/run/berth/berth.sock";
/// The API version the CLI speaks (the daemon's).
const API: ClientVersion = ClientVersion {
    major_version: 1,
    minor_version: 41,
};
/// No request of the CLI's is cut short (`stop -t`, `logs -f` take long).
const NO_TIMEOUT: u64 = 365 * 24 * 3600;
/// How long a daemon the CLI started gets to answer.
const START_LIMIT: Duration = Duration::from_secs(30);

/// The socket a `-H` value names.
pub fn socket_path(host: Option<&str>) -> Result<PathBuf> {
    match host {
        None => Ok(PathBuf::from(DEFAULT_SOCKET)),
        Some(h) => match h.strip_prefix("unix://") {
            Some(p) => Ok(PathBuf::from(p)),
            None => bail!("unsupported host {h:?}: berth talks to unix sockets (unix:///path)"),
        },
    }
}

async fn answers(socket: &Path) -> bool {
    match Docker::connect_with_unix(&socket.to_string_lossy(), 5, &API) {
        Ok(d) => d.ping().await.is_ok(),
        Err(_) => false,
    }
}

/// A client of the daemon on `socket`, starting one if needed and allowed.
pub async fn connect(socket: &Path) -> Result<Docker> {
    if !answers(socket).await {
        let root = nix::unistd::geteuid().is_root();
        if socket != Path::new(DEFAULT_SOCKET) || !root {
            bail!(
                "Cannot connect to the berth daemon at unix://{}. Is the daemon running?",
                socket.display()
            );
        }
        start_daemon(socket).await?;
    }
    Docker::connect_with_unix(&socket.to_string_lossy(), NO_TIMEOUT, &API)
        .with_context(|| format!("connecting to unix://{}", socket.display()))
}

/// Starts `berth daemon` in the background (its own process group, its
/// output in /run/berth/daemon.log) and waits until it answers.
async fn start_daemon(socket: &Path) -> Result<()> {
    let exe = std::env::current_exe().context("finding the berth binary")?;
    let dir = socket.parent().unwrap_or(Path::new("/run/berth"));
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let log_path = dir.join("daemon.log");
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .with_context(|| format!("opening {}", log_path.display()))?;
    let mut child = std::process::Command::new(exe)
        .arg("daemon")
        .arg("-H")
        .arg(format!("unix://{}", socket.display()))
        .stdin(std::process::Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .process_group(0)
        .spawn()
        .context("starting berth daemon")?;
    let deadline = tokio::time::Instant::now() + START_LIMIT;
    while !answers(socket).await {
        if let Some(status) = child.try_wait()? {
            bail!(
                "berth daemon exited ({status}) before answering; see {}",
                log_path.display()
            );
        }
        if tokio::time::Instant::now() > deadline {
            bail!(
                "berth daemon did not answer within {START_LIMIT:?}; see {}",
                log_path.display()
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// Sends `POST /containers/{id}/wait` and returns once the daemon has
/// answered the headers (the wait is registered); the future gives the
/// exit code.
pub async fn wait_registered(
    socket: &Path,
    id: &str,
    condition: &str,
) -> Result<impl Future<Output = Result<i64>>> {
    let req = hyper::Request::post(format!("/v1.41/containers/{id}/wait?condition={condition}"))
        .header(hyper::header::HOST, "berth")
        .body(Empty::<Bytes>::new())?;
    let resp = send(socket, req).await?;
    if !resp.status().is_success() {
        return Err(daemon_error(resp).await);
    }
    Ok(async move {
        let body = resp.into_body().collect().await?.to_bytes();
        let v: serde_json::Value = serde_json::from_slice(&body).context("the wait answer")?;
        if let Some(m) = v["Error"]["Message"].as_str() {
            return Err(anyhow!(super::DaemonError(m.to_owned())));
        }
        v["StatusCode"]
            .as_i64()
            .ok_or_else(|| anyhow!("the wait answer has no StatusCode: {v}"))
    })
}

/// `GET path` (unversioned) as JSON, for answers whose API 1.41 layout
/// the client library no longer models (`/system/df`).
pub async fn get_json(socket: &Path, path: &str) -> Result<serde_json::Value> {
    request_json(socket, hyper::Method::GET, path, None).await
}

/// `POST path` (unversioned) with a JSON body, for endpoints the client
/// library lacks (`/auth`).
pub async fn post_json(
    socket: &Path,
    path: &str,
    body: &serde_json::Value,
) -> Result<serde_json::Value> {
    request_json(socket, hyper::Method::POST, path, Some(body)).await
}

async fn request_json(
    socket: &Path,
    method: hyper::Method,
    path: &str,
    body: Option<&serde_json::Value>,
) -> Result<serde_json::Value> {
    let bytes = body.map(|b| Bytes::from(b.to_string())).unwrap_or_default();
    let req = hyper::Request::builder()
        .method(method)
        .uri(format!("/v1.41{path}"))
        .header(hyper::header::HOST, "berth")
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .body(Full::new(bytes))?;
    let resp = send(socket, req).await?;
    if !resp.status().is_success() {
        return Err(daemon_error(resp).await);
    }
    let body = resp
        .into_body()
        .collect()
        .await
        .context("reading the daemon's answer")?
        .to_bytes();
    serde_json::from_slice(&body).context("the daemon's answer")
}

/// One request on a connection of its own.
async fn send<B>(socket: &Path, req: hyper::Request<B>) -> Result<hyper::Response<Incoming>>
where
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let what = format!("{} {}", req.method(), req.uri());
    let stream = tokio::net::UnixStream::connect(socket)
        .await
        .with_context(|| format!("connecting to {}", socket.display()))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .context("talking to the daemon")?;
    tokio::spawn(conn);
    sender.send_request(req).await.context(what)
}

/// The daemon's error answer: its `message`, else the status.
async fn daemon_error(resp: hyper::Response<Incoming>) -> anyhow::Error {
    let status = resp.status();
    let body = match resp.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => return anyhow!(e).context(format!("reading the daemon's {status} answer")),
    };
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    match v["message"].as_str() {
        Some(m) => anyhow!(super::DaemonError(m.to_owned())),
        None => anyhow!(super::DaemonError(status.to_string())),
    }
}

/// `POST path` (unversioned) whose answer is a stream of JSON lines, for
/// requests with berth's own parameters (`push?oci=1`); a failed answer
/// is the daemon's error. Each line goes to `each` as it comes.
pub async fn post_json_lines(
    socket: &Path,
    path: &str,
    headers: &[(&str, String)],
    mut each: impl FnMut(serde_json::Value) -> Result<()>,
) -> Result<()> {
    let mut req =
        hyper::Request::post(format!("/v1.41{path}")).header(hyper::header::HOST, "berth");
    for (k, v) in headers {
        req = req.header(*k, v.as_str());
    }
    let resp = send(socket, req.body(Empty::<Bytes>::new())?).await?;
    if !resp.status().is_success() {
        return Err(daemon_error(resp).await);
    }
    let mut body = resp.into_body();
    let mut pending: Vec<u8> = Vec::new();
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame?.into_data() else {
            continue;
        };
        pending.extend_from_slice(&data);
        while let Some(end) = pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            each(serde_json::from_slice(&line).context("a line of the daemon's stream")?)?;
        }
    }
    Ok(())
}
