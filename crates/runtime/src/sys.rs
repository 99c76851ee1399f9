//! The runtime crate's only `unsafe` code: thin wrappers over system calls
//! that nix exposes as unsafe, each turning its result into a named error.

use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};

use crate::error::{Result, RuntimeError};

/// Sets `signal` to its default disposition; returns the previous one.
///
/// A runtime started from a non-interactive shell's background job inherits
/// SIGINT and SIGQUIT as ignored, and an ignored signal is discarded even
/// while blocked, so sigwait(2) would never see it to forward it.
pub fn set_default_disposition(signal: Signal) -> Result<SigAction> {
    let default = SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty());
    // SAFETY: installing SIG_DFL runs no handler code in signal context, so
    // none of sigaction's handler-safety requirements apply.
    unsafe { sigaction(signal, &default) }
        .map_err(|e| RuntimeError::sys(format!("reset disposition of {signal}"), e))
}

/// Puts back a disposition saved by [`set_default_disposition`].
pub fn restore_disposition(signal: Signal, previous: &SigAction) {
    // SAFETY: `previous` was returned by the kernel for this very signal, so
    // it is a disposition this process already had installed.
    let _ = unsafe { sigaction(signal, previous) };
}
