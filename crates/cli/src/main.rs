//! `berth`: the command line. `berth runtime` is the runc-compatible OCI
//! runtime, `berth daemon` serves the Docker Engine API; the Docker-like
//! client commands arrive next.
//!
//! Invoked as `berth-runtime` (a symlink), it is `berth runtime` directly, so
//! containerd can name it as a runc-compatible `BinaryName`.

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
        eprintln!("{}", USAGE);
        2
    };
    std::process::exit(code);
}

const USAGE: &str = "usage: berth COMMAND [OPTIONS]\n\n\
Commands:\n  daemon    serve the Docker Engine API (berth daemon --help)\n  \
runtime   the runc-compatible OCI runtime (berth runtime --help)";
