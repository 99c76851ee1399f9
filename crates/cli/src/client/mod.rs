//! The Docker-like client commands of `berth`: a thin client of the daemon's
//! Docker Engine API (through `bollard`), with docker's command names,
//! flags, output and exit codes.

mod build;
mod chunks;
mod connect;
mod containers;
mod cp;
mod detach;
mod disk;
mod exec;
mod flags;
mod format;
mod images;
mod login;
mod manage;
mod plan;
mod progress;
mod pull;
mod push;
mod run;
mod stats;
mod system;
mod volumes;

use std::ffi::OsString;

use anyhow::Result;
use clap::{Parser, Subcommand};

/// An error message from the daemon, shown as docker shows it.
#[derive(Debug)]
pub struct DaemonError(pub String);

impl std::fmt::Display for DaemonError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Error response from daemon: {}", self.0)
    }
}

impl std::error::Error for DaemonError {}

/// How docker words a failure: the daemon's message, or ours.
pub fn describe(e: &anyhow::Error) -> String {
    match e.downcast_ref::<bollard::errors::Error>() {
        Some(bollard::errors::Error::DockerResponseServerError { message, .. }) => {
            DaemonError(message.clone()).to_string()
        }
        _ => format!("{e:#}"),
    }
}

#[derive(Debug, Parser)]
#[command(
    name = "berth",
    version,
    about = "berth: build, ship and run Linux containers",
    after_help = "Also: berth daemon (the API server), berth runtime (the OCI runtime)."
)]
struct Cli {
    /// Daemon socket to connect to (unix:///path)
    #[arg(short = 'H', long = "host", env = "BERTH_HOST", global = true)]
    host: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create and run a new container from an image
    #[command(disable_help_flag = true)]
    Run {
        #[command(flatten)]
        args: run::RunArgs,
        /// Print help
        #[arg(long, action = clap::ArgAction::Help)]
        help: Option<bool>,
    },
    /// Create a new container
    #[command(disable_help_flag = true)]
    Create {
        #[command(flatten)]
        args: run::RunArgs,
        /// Print help
        #[arg(long, action = clap::ArgAction::Help)]
        help: Option<bool>,
    },
    /// Start one or more stopped containers
    Start(run::StartArgs),
    /// Attach local standard input, output, and error streams to a running container
    Attach(run::AttachArgs),
    /// Execute a command in a running container
    Exec(exec::ExecArgs),
    /// Copy files/folders between a container and the local filesystem
    Cp(cp::CpArgs),
    /// Inspect changes to files or directories on a container's filesystem
    Diff { container: String },
    /// Display a live stream of container(s) resource usage statistics
    Stats(stats::StatsArgs),
    /// Display the running processes of a container
    Top {
        container: String,
        /// ps options
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        ps_args: Vec<String>,
    },
    /// Pause all processes within one or more containers
    Pause {
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Unpause all processes within one or more containers
    Unpause {
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Update configuration of one or more containers
    Update(manage::UpdateArgs),
    /// Rename a container
    Rename { container: String, new_name: String },
    /// Manage containers
    #[command(subcommand)]
    Container(manage::ContainerCommand),
    /// Create a new image from a container's changes
    Commit(manage::CommitArgs),
    /// Stop one or more running containers
    Stop(containers::StopArgs),
    /// Kill one or more running containers
    Kill(containers::KillArgs),
    /// Restart one or more containers
    Restart(containers::StopArgs),
    /// Remove one or more containers
    Rm(containers::RmArgs),
    /// List containers
    Ps(containers::PsArgs),
    /// Fetch the logs of a container
    Logs(containers::LogsArgs),
    /// Return low-level information on containers or images
    Inspect(containers::InspectArgs),
    /// Block until one or more containers stop, then print their exit codes
    Wait {
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Export a container's filesystem as a tar archive
    Export {
        /// Write to a file, instead of STDOUT
        #[arg(short, long)]
        output: Option<String>,
        container: String,
    },
    /// Download an image from a registry
    Pull(pull::PullArgs),
    /// Upload an image to a registry
    Push(push::PushArgs),
    /// Log in to a registry
    Login(login::LoginArgs),
    /// Log out from a registry
    Logout {
        /// The registry (Docker Hub when omitted)
        server: Option<String>,
    },
    /// Build an image from a Dockerfile
    Build(build::BuildArgs),
    /// Order the steps of a family of images so they share the most layers
    Plan(plan::PlanArgs),
    /// List images
    Images(images::ImagesArgs),
    /// Remove one or more images
    Rmi(images::RmiArgs),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
    Tag { source: String, target: String },
    /// Load an image from a tar archive or STDIN
    Load(images::LoadArgs),
    /// Save one or more images to a tar archive (streamed to STDOUT by default)
    Save(images::SaveArgs),
    /// Import the contents from a tarball to create a filesystem image
    Import(images::ImportArgs),
    /// Get real time events from the server
    Events(system::EventsArgs),
    /// Manage volumes
    #[command(subcommand)]
    Volume(volumes::VolumeCommand),
    /// Manage berth: disk usage, pruning, info, events
    #[command(subcommand)]
    System(disk::SystemCommand),
    /// Manage images
    #[command(subcommand)]
    Image(disk::PruneOnly),
    /// Manage builds
    #[command(subcommand)]
    Builder(disk::PruneOnly),
    /// Display system-wide information
    Info {
        /// Format output using a custom template
        #[arg(short, long)]
        format: Option<String>,
    },
    /// Show the berth version information
    Version,
}

/// Entry point of `berth COMMAND …` for the client commands.
pub fn main(argv: Vec<OsString>) -> i32 {
    // Like docker (and every filter): a closed pipe ends us quietly
    // (`berth ps | head`), not with a panic of println!.
    let _ = berth_runtime::set_default_disposition(nix::sys::signal::Signal::SIGPIPE);
    let cli = match Cli::try_parse_from(argv) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 125 } else { 0 };
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("berth: starting the async runtime: {e}");
            return 1;
        }
    };
    let is_run = matches!(cli.command, Command::Run { .. } | Command::Create { .. });
    let result = rt.block_on(dispatch(cli));
    // A blocking read of stdin may still be pending: do not wait for it.
    rt.shutdown_background();
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("{}", describe(&e));
            // docker run's own failures exit 125, the container's code otherwise.
            if is_run {
                125
            } else {
                1
            }
        }
    }
}

async fn dispatch(cli: Cli) -> Result<i32> {
    let socket = connect::socket_path(cli.host.as_deref())?;
    // No daemon involved in these.
    match &cli.command {
        Command::Logout { server } => return login::logout(server.as_deref()),
        Command::Plan(a) => return plan::plan(&socket, a).await,
        _ => {}
    }
    let d = connect::connect(&socket).await?;
    match &cli.command {
        Command::Run { args, .. } => run::run(&d, &socket, args).await,
        Command::Create { args, .. } => run::create_cmd(&d, args).await,
        Command::Start(a) => run::start(&d, &socket, a).await,
        Command::Attach(a) => run::attach(&d, &socket, a).await,
        Command::Exec(a) => exec::exec(&d, a).await,
        Command::Cp(a) => cp::cp(&d, a).await,
        Command::Diff { container } => containers::diff(&d, container).await,
        Command::Stats(a) => stats::stats(&d, a).await,
        Command::Top { container, ps_args } => manage::top(&d, container, ps_args).await,
        Command::Pause { containers } => manage::pause(&d, containers).await,
        Command::Unpause { containers } => manage::unpause(&d, containers).await,
        Command::Update(a) => manage::update(&d, a).await,
        Command::Rename {
            container,
            new_name,
        } => manage::rename(&d, container, new_name).await,
        Command::Container(c) => manage::container(&d, c).await,
        Command::Commit(a) => manage::commit(&d, a).await,
        Command::Stop(a) => containers::stop(&d, a).await,
        Command::Kill(a) => containers::kill(&d, a).await,
        Command::Restart(a) => containers::restart(&d, a).await,
        Command::Rm(a) => containers::rm(&d, a).await,
        Command::Ps(a) => containers::ps(&d, a).await,
        Command::Logs(a) => containers::logs(&d, a).await,
        Command::Inspect(a) => containers::inspect(&d, a).await,
        Command::Wait { containers } => containers::wait(&d, containers).await,
        Command::Export { output, container } => {
            containers::export(&d, container, output.as_deref()).await
        }
        Command::Pull(a) => pull::pull(&d, a).await,
        Command::Push(a) => push::push(&socket, a).await,
        Command::Login(a) => login::login(&socket, a).await,
        Command::Logout { .. } | Command::Plan(_) => unreachable!("answered before connecting"),
        Command::Build(a) => build::build(&d, a).await,
        Command::Images(a) => images::images(&d, a).await,
        Command::Rmi(a) => images::rmi(&d, a).await,
        Command::Tag { source, target } => images::tag(&d, source, target).await,
        Command::Load(a) => images::load(&d, a).await,
        Command::Save(a) => images::save(&d, a).await,
        Command::Import(a) => images::import(&d, a).await,
        Command::Events(a) => system::events(&d, a).await,
        Command::Volume(c) => volumes::volume(&d, c).await,
        Command::System(c) => disk::system(&d, &socket, c).await,
        Command::Image(c) => disk::prune_one(&d, true, c).await,
        Command::Builder(c) => disk::prune_one(&d, false, c).await,
        Command::Info { format } => system::info(&d, format.as_deref()).await,
        Command::Version => system::version(&d).await,
    }
}
