//! The shim's control protocol: one JSON object per line each way on
//! `<dir>/control.sock`. Small on purpose: the daemon asks, the shim
//! answers; the exit status also lands in `<dir>/exit.json` so it survives
//! the shim. After an `attach` request is answered `ok`, the connection
//! carries raw bytes: output to the daemon, stdin from it; the shim closes
//! it once the container's output is all written.

use serde::{Deserialize, Serialize};

/// Control socket file name in the shim's directory.
pub const CONTROL_SOCKET: &str = "control.sock";
/// Exit status file name in the shim's directory.
pub const EXIT_FILE: &str = "exit.json";

/// A request to the shim.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// The container's pid and whether it still runs.
    State,
    /// Sends a signal to the container's init.
    Kill { signal: i32 },
    /// Answers once the container has exited.
    Wait,
    /// Starts the created container (the daemon attaches first, so no
    /// output is missed).
    Start,
    /// Turns this connection into a stream of the container's output
    /// (Docker's multiplexed frames, or raw with a TTY) and, with `stdin`,
    /// feeds what the client writes to the container's stdin.
    Attach {
        stdin: bool,
        stdout: bool,
        stderr: bool,
    },
    /// Sets the terminal size of the container, or of one of its execs.
    Resize {
        height: u16,
        width: u16,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        exec: Option<String>,
    },
    /// Starts a further process in the container; answered `started`.
    /// With `attach`, the connection then carries its stdio as after an
    /// `attach` (and ends once its output is all written); without, its
    /// output is dropped.
    Exec {
        spec: ExecSpec,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        attach: Option<Streams>,
    },
    /// Answers how an exec ended, once it has.
    ExecWait { id: String },
    /// Freezes every process of the container (the freezer cgroup).
    Pause,
    /// Thaws a paused container.
    Resume,
    /// Changes the container's cgroup limits: the OCI `linux.resources`.
    Update { resources: serde_json::Value },
}

/// A process to start in the container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecSpec {
    /// The daemon's exec ID.
    pub id: String,
    /// The OCI runtime spec's `process` object.
    pub process: serde_json::Value,
    pub tty: bool,
    /// Whether the process gets a stdin to feed (else /dev/null).
    pub stdin: bool,
}

/// Which streams an attached connection carries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Streams {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
}

/// An answer from the shim.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Response {
    State {
        pid: i32,
        running: bool,
    },
    Ok,
    /// An exec's process runs, with this host pid.
    Started {
        pid: i32,
    },
    Exited(ExitStatus),
    Error {
        message: String,
    },
}

/// How the container ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitStatus {
    /// The exit code, or 128 + the signal that killed it.
    pub exit_code: i32,
    /// RFC 3339, nanoseconds.
    pub finished_at: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_answers_are_tagged_json_lines() {
        let r: Request = serde_json::from_str(r#"{"op":"kill","signal":15}"#).unwrap();
        assert_eq!(r, Request::Kill { signal: 15 });
        let a = Response::Exited(ExitStatus {
            exit_code: 3,
            finished_at: "t".into(),
        });
        assert_eq!(
            serde_json::to_string(&a).unwrap(),
            r#"{"result":"exited","exit_code":3,"finished_at":"t"}"#
        );
    }
}

/// Longest unix socket path the kernel takes (sun_path, with its NUL).
const SUN_PATH_MAX: usize = 107;

/// Runs `f` with a path to `name` inside `dir` that fits in sun_path: the
/// path itself when short enough, else `/proc/self/fd/<dir fd>/<name>`
/// (data roots may be deep; a socket path may not).
pub(crate) fn short_path<T>(
    dir: &std::path::Path,
    name: &str,
    f: impl FnOnce(&std::path::Path) -> std::io::Result<T>,
) -> std::io::Result<T> {
    let full = dir.join(name);
    if full.as_os_str().len() <= SUN_PATH_MAX {
        return f(&full);
    }
    let handle = std::fs::File::open(dir)?;
    let via = std::path::PathBuf::from(format!(
        "/proc/self/fd/{}/{name}",
        std::os::fd::AsRawFd::as_raw_fd(&handle)
    ));
    let result = f(&via);
    drop(handle);
    result
}

/// Connects to the control socket in a shim directory.
pub fn connect(dir: &std::path::Path) -> std::io::Result<std::os::unix::net::UnixStream> {
    short_path(dir, CONTROL_SOCKET, |p| {
        std::os::unix::net::UnixStream::connect(p)
    })
}

/// Binds the control socket in a shim directory.
pub fn bind(dir: &std::path::Path) -> std::io::Result<std::os::unix::net::UnixListener> {
    let _ = std::fs::remove_file(dir.join(CONTROL_SOCKET));
    short_path(dir, CONTROL_SOCKET, |p| {
        std::os::unix::net::UnixListener::bind(p)
    })
}

#[cfg(test)]
mod socket_tests {
    use super::*;

    #[test]
    fn sockets_in_deep_directories_still_bind_and_connect() {
        let base = tempfile::tempdir().unwrap();
        let deep = base.path().join("d".repeat(60)).join("e".repeat(60));
        std::fs::create_dir_all(&deep).unwrap();
        assert!(deep.join(CONTROL_SOCKET).as_os_str().len() > SUN_PATH_MAX);
        let listener = bind(&deep).unwrap();
        let _client = connect(&deep).unwrap();
        assert!(listener.accept().is_ok());
        assert!(deep.join(CONTROL_SOCKET).exists());
    }
}
