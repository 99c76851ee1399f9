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

/// Takes ownership of a descriptor the kernel just passed us (SCM_RIGHTS).
pub fn own_received_fd(fd: std::os::fd::RawFd) -> std::os::fd::OwnedFd {
    use std::os::fd::FromRawFd;
    // SAFETY: the kernel installed `fd` in this process's table while
    // receiving the message; nothing else refers to it yet.
    unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) }
}

nix::ioctl_read_bad!(tiocgwinsz, libc::TIOCGWINSZ, libc::winsize);
nix::ioctl_write_ptr_bad!(tiocswinsz, libc::TIOCSWINSZ, libc::winsize);

/// Copies the window size of terminal `from` to terminal `to` (TIOCGWINSZ,
/// TIOCSWINSZ: tty_ioctl(4)).
pub fn copy_window_size(
    from: std::os::fd::BorrowedFd<'_>,
    to: std::os::fd::BorrowedFd<'_>,
) -> Result<()> {
    let (rows, cols) = window_size(from)?;
    set_window_size(to, rows, cols)
}

/// Sets the window size of terminal `fd` (TIOCSWINSZ).
pub fn set_window_size(fd: std::os::fd::BorrowedFd<'_>, rows: u16, cols: u16) -> Result<()> {
    use std::os::fd::AsRawFd;
    let size = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: `fd` is a live descriptor and `size` a valid winsize.
    unsafe { tiocswinsz(fd.as_raw_fd(), &size) }
        .map_err(|e| RuntimeError::sys("set terminal size", e))?;
    Ok(())
}

/// The window size of terminal `fd` as (rows, columns) (TIOCGWINSZ).
pub fn window_size(fd: std::os::fd::BorrowedFd<'_>) -> Result<(u16, u16)> {
    use std::os::fd::AsRawFd;
    let mut size = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: `fd` is a live descriptor and `size` a writable winsize.
    unsafe { tiocgwinsz(fd.as_raw_fd(), &mut size) }
        .map_err(|e| RuntimeError::sys("read terminal size", e))?;
    Ok((size.ws_row, size.ws_col))
}
