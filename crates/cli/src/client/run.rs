//! `run`, `create`, `start` and `attach`: docker's sequence — create,
//! attach, register the wait, start, stream until the output ends, exit
//! with the container's code — with stdin, a raw terminal for `-t`
//! (resized with the window) and, without a terminal, signals passed on to
//! the container as docker's `--sig-proxy` does.

use std::io::{IsTerminal, Write};
use std::path::Path;

use anyhow::{anyhow, bail, Result};
use bollard::container::LogOutput;
use bollard::query_parameters::{
    AttachContainerOptions, CreateContainerOptions, KillContainerOptions, ResizeContainerTTYOptions,
};
use bollard::Docker;
use clap::Args;
use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;

use super::connect;
use super::flags::ContainerFlags;

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Run container in background and print container ID
    #[arg(short, long)]
    pub detach: bool,
    #[command(flatten)]
    pub flags: ContainerFlags,
    /// IMAGE [COMMAND] [ARG...]
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "IMAGE [COMMAND] [ARG...]"
    )]
    pub args: Vec<String>,
}

#[derive(Debug, Args)]
pub struct StartArgs {
    /// Attach STDOUT/STDERR and forward signals
    #[arg(short, long)]
    pub attach: bool,
    /// Attach container's STDIN
    #[arg(short, long)]
    pub interactive: bool,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Debug, Args)]
pub struct AttachArgs {
    /// Do not attach STDIN
    #[arg(long)]
    pub no_stdin: bool,
    /// Proxy all received signals to the process
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub sig_proxy: bool,
    pub container: String,
}

/// The terminal's size, when stdout is one.
pub(super) fn terminal_size() -> Option<(u16, u16)> {
    let out = std::io::stdout();
    out.is_terminal()
        .then(|| berth_runtime::console::window_size(std::os::fd::AsFd::as_fd(&out)).ok())
        .flatten()
}

/// Creates the container; returns its ID.
async fn create(d: &Docker, a: &RunArgs, attach: bool) -> Result<String> {
    let (image, command) = a
        .args
        .split_first()
        .ok_or_else(|| anyhow!("an image is required"))?;
    let console = if a.flags.tty { terminal_size() } else { None };
    let body = a.flags.body(image, command, attach, console)?;
    let opts = CreateContainerOptions {
        name: a.flags.name.clone(),
        ..CreateContainerOptions::default()
    };
    match d.create_container(Some(opts.clone()), body.clone()).await {
        Ok(r) => Ok(r.id),
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404,
            message,
        }) if message.starts_with("No such image") => {
            // docker's run: pull the image, then create again.
            eprintln!("Unable to find image '{image}' locally");
            super::pull::pull_quietly(d, image).await?;
            Ok(d.create_container(Some(opts), body).await?.id)
        }
        Err(e) => Err(e.into()),
    }
}

/// `berth create`: prints the new container's ID.
pub async fn create_cmd(d: &Docker, a: &RunArgs) -> Result<i32> {
    println!("{}", create(d, a, false).await?);
    Ok(0)
}

/// `berth run`.
pub async fn run(d: &Docker, socket: &Path, a: &RunArgs) -> Result<i32> {
    let id = create(d, a, !a.detach).await?;
    if a.detach {
        d.start_container(&id, None).await?;
        println!("{id}");
        return Ok(0);
    }
    let condition = if a.flags.rm { "removed" } else { "next-exit" };
    let session = Session {
        d,
        id: &id,
        tty: a.flags.tty,
        stdin: a.flags.interactive,
        sig_proxy: true,
    };
    session.run(socket, condition, true).await
}

/// `berth start`.
pub async fn start(d: &Docker, socket: &Path, a: &StartArgs) -> Result<i32> {
    if !a.attach && !a.interactive {
        let mut failed = false;
        for c in &a.containers {
            match d.start_container(c, None).await {
                Ok(()) => println!("{c}"),
                Err(e) => {
                    eprintln!("{}", super::describe(&e.into()));
                    failed = true;
                }
            }
        }
        return Ok(i32::from(failed));
    }
    let [name] = a.containers.as_slice() else {
        bail!("you cannot start and attach multiple containers at once");
    };
    let c = d.inspect_container(name, None).await?;
    let id = c.id.unwrap_or_else(|| name.clone());
    let config = c.config.unwrap_or_default();
    let session = Session {
        d,
        id: &id,
        tty: config.tty.unwrap_or(false),
        stdin: a.interactive && config.open_stdin.unwrap_or(false),
        sig_proxy: true,
    };
    session.run(socket, "next-exit", true).await
}

/// `berth attach`.
pub async fn attach(d: &Docker, socket: &Path, a: &AttachArgs) -> Result<i32> {
    let c = d.inspect_container(&a.container, None).await?;
    let running = c.state.as_ref().and_then(|s| s.running).unwrap_or(false);
    if !running {
        bail!("You cannot attach to a stopped container, start it first");
    }
    let id = c.id.clone().unwrap_or_else(|| a.container.clone());
    let config = c.config.unwrap_or_default();
    let session = Session {
        d,
        id: &id,
        tty: config.tty.unwrap_or(false),
        stdin: !a.no_stdin && config.open_stdin.unwrap_or(false),
        sig_proxy: a.sig_proxy,
    };
    session.run(socket, "not-running", false).await
}

/// Copies our stdin to the container until it ends (then the container's
/// stdin ends too) or the detach keys are typed (then it does not).
pub(super) async fn feed(
    mut input: std::pin::Pin<Box<dyn tokio::io::AsyncWrite + Send>>,
    detach: tokio::sync::oneshot::Sender<()>,
) {
    use tokio::io::AsyncReadExt;
    let mut stdin = tokio::io::stdin();
    let mut buf = vec![0u8; 16 << 10];
    let mut escape = super::detach::Escape::default();
    loop {
        let n = match stdin.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let mut forward = Vec::with_capacity(n);
        let hit = escape.scan(&buf[..n], &mut forward);
        if input.write_all(&forward).await.is_err() {
            return;
        }
        if hit {
            let _ = detach.send(());
            return;
        }
    }
    let _ = input.shutdown().await;
}

/// Prints a container's or an exec's output until it ends (false) or the
/// detach keys are typed (true).
pub(super) async fn print_output(
    mut output: std::pin::Pin<
        Box<dyn futures_util::Stream<Item = Result<LogOutput, bollard::errors::Error>> + Send>,
    >,
    detach_rx: tokio::sync::oneshot::Receiver<()>,
) -> Result<bool> {
    let mut detached = Box::pin(async move {
        // Without stdin nobody can type the keys: never.
        if detach_rx.await.is_err() {
            std::future::pending::<()>().await;
        }
    });
    loop {
        let chunk = tokio::select! {
            c = output.next() => c,
            () = &mut detached => return Ok(true),
        };
        let Some(chunk) = chunk else {
            return Ok(false);
        };
        match chunk {
            Ok(LogOutput::StdErr { message }) => {
                let mut err = std::io::stderr().lock();
                err.write_all(&message)?;
                err.flush()?;
            }
            Ok(LogOutput::StdOut { message } | LogOutput::Console { message }) => {
                let mut out = std::io::stdout().lock();
                out.write_all(&message)?;
                out.flush()?;
            }
            Ok(LogOutput::StdIn { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
}

/// Follows our terminal's size: `resize(height, width)` now and at every
/// SIGWINCH.
pub(super) fn follow_window<F, Fut>(resize: F) -> tokio::task::JoinHandle<()>
where
    F: Fn(u16, u16) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    use tokio::signal::unix::{signal, SignalKind};
    tokio::spawn(async move {
        let Ok(mut winch) = signal(SignalKind::window_change()) else {
            return;
        };
        loop {
            if let Some((h, w)) = terminal_size() {
                resize(h, w).await;
            }
            if winch.recv().await.is_none() {
                return;
            }
        }
    })
}

/// One attached container.
struct Session<'a> {
    d: &'a Docker,
    id: &'a str,
    tty: bool,
    stdin: bool,
    sig_proxy: bool,
}

impl Session<'_> {
    /// Attaches, registers the wait, starts (when `start`), streams until
    /// the output ends; returns the exit code.
    async fn run(&self, socket: &Path, condition: &str, start: bool) -> Result<i32> {
        let opts = AttachContainerOptions {
            stream: true,
            stdin: self.stdin,
            stdout: true,
            stderr: true,
            ..AttachContainerOptions::default()
        };
        let attached = self.d.attach_container(self.id, Some(opts)).await?;
        let exit = connect::wait_registered(socket, self.id, condition).await?;
        if start {
            self.d.start_container(self.id, None).await?;
        }
        let _raw = (self.tty && self.stdin).then(berth_runtime::console::RawStdin::enter);
        let watchers = self.watch_signals();
        let (detach_tx, detach_rx) = tokio::sync::oneshot::channel::<()>();
        let feeder = self
            .stdin
            .then(|| tokio::spawn(feed(attached.input, detach_tx)));
        let detached = print_output(attached.output, detach_rx).await?;
        if let Some(f) = feeder {
            f.abort();
        }
        watchers.abort();
        if detached {
            // The container keeps running; so does its stdin.
            return Ok(0);
        }
        let code = exit.await?;
        Ok(i32::try_from(code).unwrap_or(255))
    }

    /// Resizes the container's terminal with ours; without a terminal,
    /// passes the signals the user sends us on to the container.
    fn watch_signals(&self) -> tokio::task::JoinHandle<()> {
        use tokio::signal::unix::{signal, SignalKind};
        let d = self.d.clone();
        let id = self.id.to_owned();
        if self.tty {
            return follow_window(move |h, w| {
                let (d, id) = (d.clone(), id.clone());
                async move {
                    let opts = ResizeContainerTTYOptions {
                        h: i32::from(h),
                        w: i32::from(w),
                    };
                    let _ = d.resize_container_tty(&id, opts).await;
                }
            });
        }
        let proxy = self.sig_proxy;
        tokio::spawn(async move {
            if !proxy {
                return;
            }
            let kinds = [
                (SignalKind::interrupt(), "SIGINT"),
                (SignalKind::terminate(), "SIGTERM"),
                (SignalKind::hangup(), "SIGHUP"),
                (SignalKind::quit(), "SIGQUIT"),
                (SignalKind::user_defined1(), "SIGUSR1"),
                (SignalKind::user_defined2(), "SIGUSR2"),
            ];
            let mut streams = Vec::new();
            for (kind, name) in kinds {
                if let Ok(s) = signal(kind) {
                    streams.push(
                        futures_util::stream::unfold(s, move |mut s| async move {
                            s.recv().await.map(|()| (name, s))
                        })
                        .boxed(),
                    );
                }
            }
            let mut all = futures_util::stream::select_all(streams);
            while let Some(name) = all.next().await {
                let opts = KillContainerOptions {
                    signal: name.to_owned(),
                };
                let _ = d.kill_container(&id, Some(opts)).await;
            }
        })
    }
}
