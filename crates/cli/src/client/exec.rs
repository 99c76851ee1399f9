//! `berth exec`: docker's sequence — create the exec, start it attached
//! (or detached with `-d`), stream its output with stdin and a raw
//! terminal for `-it` (resized with the window), then exit with its code.

use anyhow::Result;
use bollard::exec::{ResizeExecOptions, StartExecOptions, StartExecResults};
use bollard::models::ExecConfig;
use bollard::Docker;
use clap::Args;

use super::flags::env_list;
use super::run::{feed, follow_window, print_output, terminal_size};

#[derive(Debug, Args)]
pub struct ExecArgs {
    /// Detached mode: run command in the background
    #[arg(short, long)]
    pub detach: bool,
    /// Keep STDIN open even if not attached
    #[arg(short, long)]
    pub interactive: bool,
    /// Allocate a pseudo-TTY
    #[arg(short, long)]
    pub tty: bool,
    /// Set environment variables
    #[arg(short, long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// Username or UID (format: "<name|uid>[:<group|gid>]")
    #[arg(short, long)]
    pub user: Option<String>,
    /// Working directory inside the container
    #[arg(short, long)]
    pub workdir: Option<String>,
    /// Give extended privileges to the command
    #[arg(long)]
    pub privileged: bool,
    /// CONTAINER COMMAND [ARG...]
    #[arg(
        required = true,
        num_args = 2..,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "CONTAINER COMMAND [ARG...]"
    )]
    pub args: Vec<String>,
}

/// `berth exec`.
pub async fn exec(d: &Docker, a: &ExecArgs) -> Result<i32> {
    let (container, command) = a
        .args
        .split_first()
        .ok_or_else(|| anyhow::anyhow!("a container and a command are required"))?;
    let attached = !a.detach;
    let console = if a.tty { terminal_size() } else { None };
    let config = ExecConfig {
        attach_stdin: Some(a.interactive && attached),
        attach_stdout: Some(attached),
        attach_stderr: Some(attached),
        tty: Some(a.tty),
        env: (!a.env.is_empty()).then(|| env_list(&a.env)),
        cmd: Some(command.to_vec()),
        privileged: Some(a.privileged),
        user: a.user.clone(),
        working_dir: a.workdir.clone(),
        console_size: console.map(|(h, w)| vec![usize::from(h), usize::from(w)]),
        ..ExecConfig::default()
    };
    let id = d.create_exec(container, config).await?.id;
    let opts = StartExecOptions {
        detach: a.detach,
        tty: a.tty,
        output_capacity: None,
    };
    let StartExecResults::Attached { output, input } = d.start_exec(&id, Some(opts)).await? else {
        return Ok(0);
    };
    let _raw = (a.tty && a.interactive).then(berth_runtime::console::RawStdin::enter);
    let resizer = a.tty.then(|| {
        let (d, id) = (d.clone(), id.clone());
        follow_window(move |height, width| {
            let (d, id) = (d.clone(), id.clone());
            async move {
                let _ = d
                    .resize_exec(&id, ResizeExecOptions { height, width })
                    .await;
            }
        })
    });
    let (detach_tx, detach_rx) = tokio::sync::oneshot::channel::<()>();
    let feeder = a.interactive.then(|| tokio::spawn(feed(input, detach_tx)));
    let detached = print_output(output, detach_rx).await?;
    for task in [feeder, resizer].into_iter().flatten() {
        task.abort();
    }
    if detached {
        return Ok(0);
    }
    let code = d.inspect_exec(&id).await?.exit_code.unwrap_or(0);
    Ok(i32::try_from(code).unwrap_or(255))
}
