//! The shim's control protocol: one JSON object per line each way on
//! `<dir>/control.sock`. Small on purpose: the daemon asks, the shim
//! answers; the exit status also lands in `<dir>/exit.json` so it survives
//! the shim.

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
}

/// An answer from the shim.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Response {
    State { pid: i32, running: bool },
    Ok,
    Exited(ExitStatus),
    Error { message: String },
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
