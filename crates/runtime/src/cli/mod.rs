//! `berth runtime`: a runc-compatible command line over [`Libcontainer`].
//!
//! Exit status: 0 on success, the container's status for `run` and a
//! foreground `exec`, 1 on any error (reported in the log and on stderr),
//! 2 for a malformed command line.

mod args;
mod features;
mod log;
mod output;
mod resources;
mod signal;

use std::ffi::OsString;
use std::path::Path;

use clap::Parser;

pub use args::{Args, Command, LogFormat};

use crate::defaults::{docker_spec, runc_spec};
use crate::error::{Result, RuntimeError};
use crate::lifecycle::{CreateOptions, ExecOptions, Runtime};
use crate::native::Libcontainer;

/// Runs `berth runtime` with `argv` (program name first); returns the exit status.
pub fn main<I, T>(argv: I) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let args = match Args::try_parse_from(argv) {
        Ok(args) => args,
        Err(e) => {
            let _ = e.print();
            return e.exit_code();
        }
    };
    let sink = match log::Sink::install(args.log.as_deref(), args.log_format, args.debug) {
        Ok(sink) => sink,
        Err(e) => {
            eprintln!("berth runtime: open log file: {e}");
            return 1;
        }
    };
    match dispatch(args) {
        Ok(code) => code,
        Err(e) => {
            sink.fatal(&error_chain(&e));
            1
        }
    }
}

/// The error and its sources, each once: `a: b: c`.
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let part = cause.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = cause.source();
    }
    text
}

fn dispatch(args: Args) -> Result<i32> {
    if args.systemd_cgroup {
        return Err(RuntimeError::Unsupported(
            "--systemd-cgroup is not supported: berth manages cgroups through cgroupfs; \
             drop the flag (containerd: SystemdCgroup = false)"
                .into(),
        ));
    }
    let runtime = Libcontainer::new(&args.root);
    match args.command {
        Command::Create(c) => runtime.create(&c.id, &create_options(&c)).map(|_| 0),
        Command::Start { id } => runtime.start(&id).map(|()| 0),
        Command::Run { create, detach, .. } => {
            runtime.run(&create.id, &create_options(&create), detach)
        }
        Command::State { id } => output::state(&runtime.state(&id)?).map(|()| 0),
        Command::Kill { all, id, signal } => {
            runtime.kill(&id, signal::parse(&signal)?, all).map(|()| 0)
        }
        Command::Delete { force, id } => delete(&runtime, &id, force).map(|()| 0),
        Command::Exec(e) => runtime.exec(&e.id.clone(), &exec_options(*e)?),
        Command::Ps {
            format,
            id,
            ps_args,
        } => output::ps(&runtime.pids(&id)?, format, &ps_args).map(|()| 0),
        Command::List { format, quiet } => {
            output::list(&runtime.list()?, format, quiet).map(|()| 0)
        }
        Command::Pause { id } => runtime.pause(&id).map(|()| 0),
        Command::Resume { id } => runtime.resume(&id).map(|()| 0),
        Command::Update(u) => runtime
            .update(&u.id, &resources::from_args(&u)?)
            .map(|()| 0),
        Command::Spec { bundle, docker } => write_spec(&bundle, docker).map(|()| 0),
        Command::Features => output::json(&features::features()).map(|()| 0),
    }
}

/// `delete --force` of a container that does not exist succeeds, as in runc.
fn delete(runtime: &Libcontainer, id: &str, force: bool) -> Result<()> {
    match runtime.delete(id, force) {
        Err(RuntimeError::NotFound(_)) if force => Ok(()),
        other => other,
    }
}

fn create_options(c: &args::CreateArgs) -> CreateOptions {
    CreateOptions {
        bundle: c.bundle.clone(),
        pid_file: c.pid_file.clone(),
        console_socket: c.console_socket.clone(),
        no_pivot: c.no_pivot,
        preserve_fds: c.preserve_fds,
    }
}

fn exec_options(e: args::ExecArgs) -> Result<ExecOptions> {
    if e.process.is_none() && e.command.is_empty() {
        return Err(RuntimeError::InvalidArgument(
            "exec needs a command after the container id, or --process FILE".into(),
        ));
    }
    for cap in &e.cap {
        crate::validate::check_capability(cap).map_err(RuntimeError::InvalidArgument)?;
    }
    Ok(ExecOptions {
        user: e.user.as_deref().map(parse_user).transpose()?,
        process: e.process,
        args: e.command,
        env: e.env,
        cwd: e.cwd,
        additional_gids: e.additional_gids,
        caps: e.cap,
        no_new_privs: e.no_new_privs,
        tty: e.tty,
        detach: e.detach,
        pid_file: e.pid_file,
        console_socket: e.console_socket,
        preserve_fds: e.preserve_fds,
    })
}

/// `UID[:GID]`, numeric as in runc.
fn parse_user(user: &str) -> Result<(u32, Option<u32>)> {
    let bad =
        || RuntimeError::InvalidArgument(format!("--user {user:?}: expected UID[:GID] in numbers"));
    let (uid, gid) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    let uid = uid.parse().map_err(|_| bad())?;
    let gid = gid.map(str::parse).transpose().map_err(|_| bad())?;
    Ok((uid, gid))
}

fn write_spec(bundle: &Path, docker: bool) -> Result<()> {
    let path = bundle.join("config.json");
    if path.exists() {
        return Err(RuntimeError::InvalidArgument(format!(
            "{} exists: remove it first",
            path.display()
        )));
    }
    let spec = if docker {
        docker_spec(vec!["sh".into()])
    } else {
        runc_spec()
    };
    let body = serde_json::to_string_pretty(&spec)
        .map_err(|e| RuntimeError::InvalidArgument(e.to_string()))?;
    std::fs::write(&path, body + "\n").map_err(|e| RuntimeError::io("write", &path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_are_accepted_after_the_id() {
        let before =
            Args::try_parse_from(["r", "--root", "/x", "create", "--bundle", "/b", "id1"]).unwrap();
        let after =
            Args::try_parse_from(["r", "create", "id1", "--bundle", "/b", "--root", "/x"]).unwrap();
        for args in [before, after] {
            assert_eq!(args.root, Path::new("/x"));
            let Command::Create(c) = args.command else {
                panic!("not create")
            };
            assert_eq!(
                (c.id.as_str(), c.bundle.as_path()),
                ("id1", Path::new("/b"))
            );
        }
    }

    #[test]
    fn exec_command_keeps_its_own_flags() {
        let args =
            Args::try_parse_from(["r", "exec", "--tty", "c1", "sh", "-c", "echo -n hi"]).unwrap();
        let Command::Exec(e) = args.command else {
            panic!("not exec")
        };
        assert!(e.tty);
        assert_eq!(e.command, ["sh", "-c", "echo -n hi"]);
    }

    #[test]
    fn kill_takes_an_optional_signal() {
        let args = Args::try_parse_from(["r", "kill", "--all", "c1", "KILL"]).unwrap();
        let Command::Kill { all, id, signal } = args.command else {
            panic!("not kill")
        };
        assert!(all);
        assert_eq!((id.as_str(), signal.as_str()), ("c1", "KILL"));
    }

    #[test]
    fn users_parse() {
        assert_eq!(parse_user("1000").unwrap(), (1000, None));
        assert_eq!(parse_user("1000:10").unwrap(), (1000, Some(10)));
        assert!(parse_user("root").is_err());
    }

    #[test]
    fn error_chain_skips_repeated_sources() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        let err = RuntimeError::io("read", "/b/config.json", io);
        assert_eq!(error_chain(&err), "read /b/config.json: no such file");
    }
}
