//! Waiting for a container process and relaying signals to it, for the
//! foreground `run` and `exec` (like runc's signal proxy).
//!
//! The signals are blocked and taken with sigwait(2), and the child is polled
//! with waitpid(WNOHANG) before every wait: a SIGCHLD that arrived before the
//! loop stays pending, so the exit is never missed (youki 0.4's `run` could
//! hang on exactly that).

use nix::errno::Errno;
use nix::sys::signal::{kill, SigAction, SigSet, SigmaskHow, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use crate::error::{Result, RuntimeError};
use crate::sys;

/// Signals a foreground runtime passes on to the container.
const FORWARDED: [Signal; 8] = [
    Signal::SIGHUP,
    Signal::SIGINT,
    Signal::SIGQUIT,
    Signal::SIGTERM,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGWINCH,
    Signal::SIGCONT,
];

/// While alive, the forwarded signals and SIGCHLD are blocked for this
/// (single-threaded) process; dropping it restores the previous mask.
#[derive(Debug)]
pub struct Forwarder {
    set: SigSet,
    previous: SigSet,
    dispositions: Vec<(Signal, SigAction)>,
}

impl Forwarder {
    /// Blocks SIGCHLD and the forwarded signals.
    pub fn block() -> Result<Self> {
        let mut set = SigSet::empty();
        set.add(Signal::SIGCHLD);
        for signal in FORWARDED {
            set.add(signal);
        }
        let mut previous = SigSet::empty();
        nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), Some(&mut previous))
            .map_err(|e| RuntimeError::sys("block signals", e))?;
        let mut forwarder = Self {
            set,
            previous,
            dispositions: Vec::new(),
        };
        // Blocked, a default-disposition signal waits for sigwait; ignored,
        // it would be dropped (see `sys::set_default_disposition`).
        for signal in FORWARDED {
            let old = sys::set_default_disposition(signal)?;
            forwarder.dispositions.push((signal, old));
        }
        Ok(forwarder)
    }

    /// The blocked signals (for a signalfd that takes them instead).
    pub fn signals(&self) -> &SigSet {
        &self.set
    }

    /// Relays signals to `pid` until it exits; returns its exit status.
    pub fn wait(&self, pid: Pid) -> Result<i32> {
        loop {
            if let Some(code) = try_reap(pid)? {
                return Ok(code);
            }
            let signal = self
                .set
                .wait()
                .map_err(|e| RuntimeError::sys("wait for signals", e))?;
            if signal != Signal::SIGCHLD {
                forward(pid, signal)?;
            }
        }
    }
}

/// Passes `signal` on to `pid`; a process already gone is not an error.
pub(crate) fn forward(pid: Pid, signal: Signal) -> Result<()> {
    match kill(pid, signal) {
        Ok(()) | Err(Errno::ESRCH) => Ok(()),
        Err(e) => Err(RuntimeError::sys(format!("forward {signal} to {pid}"), e)),
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        for (signal, old) in &self.dispositions {
            sys::restore_disposition(*signal, old);
        }
        let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&self.previous), None);
    }
}

/// Reaps `pid` if it has exited.
pub(crate) fn try_reap(pid: Pid) -> Result<Option<i32>> {
    loop {
        match waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) => return Ok(None),
            Ok(status) => {
                if let Some(code) = exit_code(status) {
                    return Ok(Some(code));
                }
            }
            Err(Errno::EINTR) => {}
            Err(e) => return Err(RuntimeError::sys(format!("wait for {pid}"), e)),
        }
    }
}

/// Blocks until `pid` exits; returns its exit status.
pub fn wait_exit(pid: Pid) -> Result<i32> {
    loop {
        match waitpid(pid, None) {
            Ok(status) => {
                if let Some(code) = exit_code(status) {
                    return Ok(code);
                }
            }
            Err(Errno::EINTR) => {}
            Err(e) => return Err(RuntimeError::sys(format!("wait for {pid}"), e)),
        }
    }
}

/// The shell's convention: the exit code, or 128 + the signal that killed it.
pub fn exit_code(status: WaitStatus) -> Option<i32> {
    match status {
        WaitStatus::Exited(_, code) => Some(code),
        WaitStatus::Signaled(_, signal, _) => Some(128 + signal as i32),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_the_shell_convention() {
        let pid = Pid::from_raw(1);
        assert_eq!(exit_code(WaitStatus::Exited(pid, 7)), Some(7));
        assert_eq!(
            exit_code(WaitStatus::Signaled(pid, Signal::SIGKILL, false)),
            Some(137)
        );
        assert_eq!(exit_code(WaitStatus::Stopped(pid, Signal::SIGSTOP)), None);
    }
}
