//! `berth`: the command line. `berth runtime` is the runc-compatible OCI
//! runtime, `berth daemon` serves the Docker Engine API, `berth shim`
//! supervises one container for the daemon; every other command is a
//! Docker-like client of the daemon (`berth run`, `berth ps`, …).
//!
//! Invoked as `berth-runtime` (a symlink), it is `berth runtime` directly, so
//! containerd can name it as a runc-compatible `BinaryName`.

mod client;

use std::ffi::OsString;
use std::path::Path;

fn main() {
    let mut argv: Vec<OsString> = std::env::args_os().collect();
    let invoked_as = argv
        .first()
        .and_then(|a| Path::new(a).file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let code = if invoked_as == "berth-runtime" {
        berth_runtime::cli::main(argv)
    } else if argv.get(1).is_some_and(|a| a == "runtime") {
        // `berth runtime ARGS` is `berth-runtime ARGS`.
        argv.remove(0);
        berth_runtime::cli::main(argv)
    } else if argv.get(1).is_some_and(|a| a == "shim") {
        argv.remove(0);
        berth_shim::main(argv)
    } else if argv.get(1).is_some_and(|a| a == "daemon") {
        argv.remove(0);
        berth_daemon::main(argv)
    } else {
        client::main(argv)
    };
    std::process::exit(code);
}
