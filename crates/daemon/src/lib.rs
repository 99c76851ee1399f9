//! `berth daemon`: wiring only. Opens the store, builds the services,
//! listens on unix sockets with dockerd's flag names, stops on SIGINT or
//! SIGTERM (removing its sockets).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use berth_api::Backends;
use berth_engine::volumes::VolumeService;
use berth_engine::{BuildService, ContainerService, Events, ImageService, SystemService};
use berth_store::{Store, StoreOptions};
use clap::Parser;

/// How long open requests may finish after a stop signal.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

/// The default API socket.
pub const DEFAULT_SOCKET: &str = "/run/berth/berth.sock";

/// dockerd-compatible options.
#[derive(Debug, Clone, Parser)]
#[command(name = "berth daemon", about = "Serve the Docker Engine API")]
pub struct Config {
    /// Root of persistent state (images, layers, containers).
    #[arg(long, default_value = "/var/lib/berth", env = "BERTH_DATA_ROOT")]
    pub data_root: PathBuf,
    /// Root of runtime state (sockets of shims, runtime state).
    #[arg(long, default_value = "/run/berth", env = "BERTH_EXEC_ROOT")]
    pub exec_root: PathBuf,
    /// Socket(s) to listen on: unix:///path (repeatable).
    #[arg(
        short = 'H',
        long = "host",
        default_value = "unix:///run/berth/berth.sock"
    )]
    pub hosts: Vec<String>,
    /// Also listen on /var/run/docker.sock, so clients that only know that
    /// path find berth.
    #[arg(long)]
    pub docker_socket: bool,
    /// Where the daemon writes its pid (default: <exec-root>/berth.pid).
    #[arg(short = 'p', long)]
    pub pidfile: Option<PathBuf>,
    /// debug, info, warn, error.
    #[arg(short = 'l', long, default_value = "info")]
    pub log_level: String,
    /// A registry spoken to over plain HTTP (repeatable; loopback ones
    /// always are).
    #[arg(long = "insecure-registry")]
    pub insecure_registries: Vec<String>,
    /// A mirror tried for Docker Hub images (repeatable; https://host).
    #[arg(long = "registry-mirror")]
    pub registry_mirrors: Vec<String>,
    /// Layers a pull downloads at the same time.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..))]
    pub max_concurrent_downloads: u16,
    /// Layers a push uploads at the same time.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u16).range(1..))]
    pub max_concurrent_uploads: u16,
    /// Tries per layer download, each resuming where the last broke off.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u16).range(1..))]
    pub max_download_attempts: u16,
    /// Seconds a registry may stay silent mid-transfer before the
    /// transfer is given up (and resumed, while attempts remain).
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..))]
    pub registry_timeout: u64,
}

/// Entry point of `berth daemon ARGS` (argv without "berth").
pub fn main(args: Vec<std::ffi::OsString>) -> i32 {
    let config = match Config::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 2 } else { 0 };
        }
    };
    init_logging(&config.log_level);
    match run(config) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("berth daemon: {e:#}");
            1
        }
    }
}

fn init_logging(level: &str) {
    let filter = match level {
        "debug" => tracing::Level::DEBUG,
        "warn" => tracing::Level::WARN,
        "error" | "fatal" => tracing::Level::ERROR,
        _ => tracing::Level::INFO,
    };
    let _ = tracing_subscriber::fmt()
        .with_max_level(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Runs the daemon until a signal asks it to stop.
pub fn run(config: Config) -> Result<()> {
    let sockets = socket_paths(&config)?;
    std::fs::create_dir_all(&config.exec_root)
        .with_context(|| format!("creating {}", config.exec_root.display()))?;
    let store = Arc::new(
        Store::open(&config.data_root, StoreOptions::default()).with_context(|| {
            format!("opening the image store at {}", config.data_root.display())
        })?,
    );
    // After the store's lock: only the daemon that owns the root writes it.
    let pidfile = config
        .pidfile
        .clone()
        .unwrap_or_else(|| config.exec_root.join("berth.pid"));
    std::fs::write(&pidfile, format!("{}\n", std::process::id()))
        .with_context(|| format!("writing {}", pidfile.display()))?;
    let shim_bin = std::env::current_exe().context("finding the berth binary for shims")?;
    let events = Arc::new(Events::default());
    let volumes = Arc::new(
        VolumeService::new(&config.data_root, events.clone())
            .with_context(|| "opening the volumes")?,
    );
    let containers = ContainerService::new(
        store.clone(),
        &config.data_root,
        &config.exec_root,
        shim_bin,
        events.clone(),
        volumes.clone(),
    )
    .with_context(|| "opening the container records")?;
    let registries = berth_registry::ClientOptions {
        insecure: config.insecure_registries.clone(),
        mirrors: config.registry_mirrors.clone(),
        read_timeout: std::time::Duration::from_secs(config.registry_timeout),
        concurrent_downloads: usize::from(config.max_concurrent_downloads),
        concurrent_uploads: usize::from(config.max_concurrent_uploads),
        download_attempts: usize::from(config.max_download_attempts),
    };
    let build = BuildService::new(
        store.clone(),
        containers.clone(),
        &config.data_root,
        events.clone(),
        registries.clone(),
    )
    .with_context(|| "opening the build cache")?;
    let backends = Backends {
        containers: Arc::new(containers.clone()),
        exec: Arc::new(containers.clone()),
        files: Arc::new(containers),
        volumes: Arc::new(volumes),
        build: Arc::new(build),
        images: Arc::new(ImageService::new(store.clone(), events.clone(), registries)),
        events,
        system: Arc::new(SystemService::new(store, config.data_root.clone())),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let result = rt.block_on(serve(sockets, backends));
    // Blocking workers may sit in a container `wait`: do not wait for them.
    rt.shutdown_background();
    let _ = std::fs::remove_file(&pidfile);
    result
}

fn socket_paths(config: &Config) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for host in &config.hosts {
        let Some(path) = host.strip_prefix("unix://") else {
            bail!("unsupported host {host:?}: berth listens on unix sockets only (unix:///path)");
        };
        out.push(PathBuf::from(path));
    }
    if config.docker_socket {
        out.push(PathBuf::from("/var/run/docker.sock"));
    }
    Ok(out)
}

/// Binds a socket, refusing to take over one another daemon answers on.
fn bind(path: &Path) -> Result<tokio::net::UnixListener> {
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            bail!(
                "another daemon is listening on {}; stop it or choose another -H",
                path.display()
            );
        }
        std::fs::remove_file(path)
            .with_context(|| format!("removing stale socket {}", path.display()))?;
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let listener = tokio::net::UnixListener::bind(path)
        .with_context(|| format!("listening on {}", path.display()))?;
    // Root and the socket's group only: the API is root-equivalent.
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))
        .with_context(|| format!("setting the mode of {}", path.display()))?;
    Ok(listener)
}

async fn serve(sockets: Vec<PathBuf>, backends: Backends) -> Result<()> {
    let app = berth_api::app(backends);
    let (stop_tx, _) = tokio::sync::broadcast::channel::<()>(1);
    let mut servers = tokio::task::JoinSet::new();
    for path in &sockets {
        let listener = bind(path)?;
        let mut stop = stop_tx.subscribe();
        servers.spawn(berth_api::serve(listener, app.clone(), async move {
            let _ = stop.recv().await;
        }));
        tracing::info!(socket = %path.display(), "API listening");
    }
    wait_for_signal().await?;
    tracing::info!("shutting down");
    let _ = stop_tx.send(());
    // In-flight requests get a moment; long ones (a `wait`, `logs -f`)
    // would hold shutdown forever, so they are dropped after it.
    let drain = async {
        while let Some(r) = servers.join_next().await {
            if let Ok(Err(e)) = r {
                tracing::warn!(error = %e, "server ended with an error");
            }
        }
    };
    if tokio::time::timeout(SHUTDOWN_GRACE, drain).await.is_err() {
        tracing::info!("dropping requests still open at shutdown");
    }
    for path in &sockets {
        let _ = std::fs::remove_file(path);
    }
    Ok(())
}

async fn wait_for_signal() -> Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).context("handling SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("handling SIGINT")?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    Ok(())
}
