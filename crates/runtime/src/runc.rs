//! A [`Runtime`] that drives an installed `runc` binary: the oracle that
//! berth's own runtime is compared with in the differential tests.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use nix::sys::signal::Signal;
use oci_spec::runtime::LinuxResources;

use crate::error::{Result, RuntimeError};
use crate::lifecycle::{CreateOptions, ExecOptions, Runtime};
use crate::state::ContainerState;

/// runc with its own state root.
#[derive(Debug, Clone)]
pub struct Runc {
    binary: PathBuf,
    root: PathBuf,
}

impl Runc {
    /// `binary` is the runc executable (e.g. `/usr/sbin/runc`).
    pub fn new(binary: impl Into<PathBuf>, root: impl Into<PathBuf>) -> Self {
        Self {
            binary: binary.into(),
            root: root.into(),
        }
    }

    fn command(&self, args: &[OsString]) -> Command {
        let mut cmd = Command::new(&self.binary);
        cmd.arg("--root").arg(&self.root).args(args);
        cmd
    }

    /// Runs runc with captured output; its stderr becomes the error.
    fn output(&self, args: Vec<OsString>) -> Result<Vec<u8>> {
        let out = self
            .command(&args)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| RuntimeError::io("execute", &self.binary, e))?;
        if out.status.success() {
            Ok(out.stdout)
        } else {
            Err(self.failure(&args, &out.stderr))
        }
    }

    /// Runs runc with this process's stdio (the container inherits it).
    fn status(&self, args: Vec<OsString>) -> Result<i32> {
        let status = self
            .command(&args)
            .status()
            .map_err(|e| RuntimeError::io("execute", &self.binary, e))?;
        Ok(status.code().unwrap_or(-1))
    }

    fn failure(&self, args: &[OsString], stderr: &[u8]) -> RuntimeError {
        RuntimeError::Runc {
            command: args
                .first()
                .map(|a| a.to_string_lossy().into_owned())
                .unwrap_or_default(),
            stderr: String::from_utf8_lossy(stderr).trim().to_owned(),
        }
    }
}

fn create_args(verb: &str, id: &str, opts: &CreateOptions) -> Vec<OsString> {
    let mut args: Vec<OsString> = vec![verb.into(), "--bundle".into(), opts.bundle.clone().into()];
    if let Some(p) = &opts.pid_file {
        args.extend(["--pid-file".into(), p.clone().into()]);
    }
    if let Some(p) = &opts.console_socket {
        args.extend(["--console-socket".into(), p.clone().into()]);
    }
    if opts.no_pivot {
        args.push("--no-pivot".into());
    }
    if opts.preserve_fds > 0 {
        args.push(format!("--preserve-fds={}", opts.preserve_fds).into());
    }
    args.push(id.into());
    args
}

fn json<T: serde::de::DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| RuntimeError::Runc {
        command: what.to_owned(),
        stderr: format!("unexpected output: {e}"),
    })
}

impl Runtime for Runc {
    fn create(&self, id: &str, opts: &CreateOptions) -> Result<ContainerState> {
        // runc create keeps the container's stdio; null stdin keeps it from
        // holding ours.
        let args = create_args("create", id, opts);
        let out = self
            .command(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .map_err(|e| RuntimeError::io("execute", &self.binary, e))?;
        if !out.status.success() {
            return Err(self.failure(&args, &out.stderr));
        }
        self.state(id)
    }

    fn start(&self, id: &str) -> Result<()> {
        self.output(vec!["start".into(), id.into()]).map(drop)
    }

    fn run(&self, id: &str, opts: &CreateOptions, detach: bool) -> Result<i32> {
        let mut args = create_args("run", id, opts);
        if detach {
            args.insert(1, "--detach".into());
        }
        self.status(args)
    }

    fn state(&self, id: &str) -> Result<ContainerState> {
        json(&self.output(vec!["state".into(), id.into()])?, "state")
    }

    fn list(&self) -> Result<Vec<ContainerState>> {
        let out = self.output(vec!["list".into(), "--format".into(), "json".into()])?;
        // runc prints `null` for an empty list.
        Ok(json::<Option<Vec<ContainerState>>>(&out, "list")?.unwrap_or_default())
    }

    fn kill(&self, id: &str, signal: Signal, all: bool) -> Result<()> {
        let mut args: Vec<OsString> = vec!["kill".into()];
        if all {
            args.push("--all".into());
        }
        args.extend([id.into(), (signal as i32).to_string().into()]);
        self.output(args).map(drop)
    }

    fn delete(&self, id: &str, force: bool) -> Result<()> {
        let mut args: Vec<OsString> = vec!["delete".into()];
        if force {
            args.push("--force".into());
        }
        args.push(id.into());
        self.output(args).map(drop)
    }

    fn pause(&self, id: &str) -> Result<()> {
        self.output(vec!["pause".into(), id.into()]).map(drop)
    }

    fn resume(&self, id: &str) -> Result<()> {
        self.output(vec!["resume".into(), id.into()]).map(drop)
    }

    fn pids(&self, id: &str) -> Result<Vec<i32>> {
        let out = self.output(vec![
            "ps".into(),
            "--format".into(),
            "json".into(),
            id.into(),
        ])?;
        json(&out, "ps")
    }

    fn exec(&self, id: &str, opts: &ExecOptions) -> Result<i32> {
        let mut args: Vec<OsString> = vec!["exec".into()];
        if let Some(p) = &opts.process {
            args.extend(["--process".into(), p.clone().into()]);
        }
        for e in &opts.env {
            args.extend(["--env".into(), e.into()]);
        }
        if let Some(cwd) = &opts.cwd {
            args.extend(["--cwd".into(), cwd.clone().into()]);
        }
        if let Some((uid, gid)) = opts.user {
            let user = gid.map_or(uid.to_string(), |g| format!("{uid}:{g}"));
            args.extend(["--user".into(), user.into()]);
        }
        for g in &opts.additional_gids {
            args.extend(["--additional-gids".into(), g.to_string().into()]);
        }
        for c in &opts.caps {
            args.extend(["--cap".into(), c.into()]);
        }
        if opts.no_new_privs {
            args.push("--no-new-privs".into());
        }
        if opts.tty {
            args.push("--tty".into());
        }
        if opts.detach {
            args.push("--detach".into());
        }
        if let Some(p) = &opts.pid_file {
            args.extend(["--pid-file".into(), p.clone().into()]);
        }
        if let Some(p) = &opts.console_socket {
            args.extend(["--console-socket".into(), p.clone().into()]);
        }
        args.push(id.into());
        args.extend(opts.args.iter().map(OsString::from));
        self.status(args)
    }

    fn update(&self, id: &str, resources: &LinuxResources) -> Result<()> {
        let file = tempfile_in_root(&self.root, resources)?;
        let result = self.output(vec![
            "update".into(),
            "--resources".into(),
            file.clone().into(),
            id.into(),
        ]);
        let _ = std::fs::remove_file(&file);
        result.map(drop)
    }
}

fn tempfile_in_root(root: &std::path::Path, resources: &LinuxResources) -> Result<PathBuf> {
    let path = root.join(format!(".update-{}.json", std::process::id()));
    let body =
        serde_json::to_vec(resources).map_err(|e| RuntimeError::InvalidArgument(e.to_string()))?;
    std::fs::write(&path, body).map_err(|e| RuntimeError::io("write", &path, e))?;
    Ok(path)
}
