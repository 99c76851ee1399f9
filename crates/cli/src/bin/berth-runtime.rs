//! `berth-runtime`: the runc-compatible runtime alone, for containerd's
//! `BinaryName` and for anything that starts many short runtime processes.
//! Same code as `berth runtime`, without the daemon linked in: a smaller
//! binary pages in less at every container start (docs/PERFORMANCE.md).

fn main() {
    std::process::exit(berth_runtime::cli::main(
        std::env::args_os().collect::<Vec<_>>(),
    ));
}
