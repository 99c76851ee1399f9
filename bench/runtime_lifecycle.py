#!/usr/bin/env python3
"""Benchmark: the whole lifecycle of /bin/true in a busybox bundle
(create + start + wait + delete, i.e. `RUNTIME run`) under berth, runc and
crun, side by side, interleaved run by run.

Per run: wall time, CPU time (user + system of the runtime and everything it
reaped, from wait4) and peak RSS (the largest process of that tree, wait4's
ru_maxrss). Reports medians and the ratios berth/peer.

crun 1.8 (Debian 12) refuses this machine's hybrid cgroup layout, so the
whole benchmark runs in a private mount namespace where an empty file hides
/sys/fs/cgroup/unified/cgroup.controllers; every runtime runs under the same
conditions. Needs GNU time (Debian package `time`). Run as root:

    bench/runtime_lifecycle.py --runs 200 [--berth target/release/berth]

`--docker-spec` uses Docker's default spec instead of runc's (`berth runtime
spec --docker`: Docker's capabilities, masked paths and seccomp profile).
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

CONTROLLERS = "/sys/fs/cgroup/unified/cgroup.controllers"


def make_bundle(berth, path, docker_spec):
    rootfs = os.path.join(path, "rootfs")
    os.makedirs(os.path.join(rootfs, "bin"))
    shutil.copy("/bin/busybox", os.path.join(rootfs, "bin", "busybox"))
    os.symlink("busybox", os.path.join(rootfs, "bin", "true"))
    spec = [berth, "runtime", "spec", "--bundle", path] + (["--docker"] if docker_spec else [])
    subprocess.run(spec, check=True)
    with open(os.path.join(path, "config.json")) as f:
        config = json.load(f)
    config["process"]["args"] = ["/bin/true"]
    config["process"]["terminal"] = False
    with open(os.path.join(path, "config.json"), "w") as f:
        json.dump(config, f)


def runtimes(berth):
    # berth-runtime (the runtime alone) beside berth, as containerd runs it;
    # `berth runtime` when only the full binary is given.
    alone = os.path.join(os.path.dirname(berth), "berth-runtime")
    found = {"berth": [alone] if os.path.exists(alone) else [berth, "runtime"]}
    for name in ("runc", "crun"):
        binary = shutil.which(name)
        if binary:
            found[name] = [binary]
    return found


def measure(argv, rss_file):
    """One run: (wall seconds, cpu seconds, peak rss KiB, exit status).

    Peak RSS comes from GNU time, whose small process forks the runtime: a
    process forked straight from Python would inherit Python's RSS
    high-water mark (ru_maxrss survives exec). Wall and CPU (user + system,
    of everything the runtime reaped) come from wait4 here.
    """
    start = time.perf_counter()
    proc = subprocess.Popen(["/usr/bin/time", "-f", "%M", "-o", rss_file] + argv,
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    with open(rss_file) as f:
        rss = int(f.read().split()[-1])
    return wall, usage.ru_utime + usage.ru_stime, rss, proc.returncode


def bench(berth, runs, warmup, docker_spec):
    work = tempfile.mkdtemp(prefix="berth-bench-")
    bundle = os.path.join(work, "bundle")
    os.makedirs(bundle)
    make_bundle(berth, bundle, docker_spec)
    peers = runtimes(berth)
    samples = {name: [] for name in peers}
    try:
        for i in range(warmup + runs):
            for name, prefix in peers.items():
                root = os.path.join(work, "state-" + name)
                cid = f"bench-{name}-{i}"
                wall, cpu, rss, code = measure(
                    prefix + ["--root", root, "run", "--bundle", bundle, cid],
                    os.path.join(work, "rss"))
                if code != 0:
                    sys.exit(f"{name} run failed with status {code}")
                if i >= warmup:
                    samples[name].append((wall, cpu, rss))
    finally:
        shutil.rmtree(work, ignore_errors=True)
        remove_empty_parent_cgroups()
    return samples


def remove_empty_parent_cgroups():
    """berth puts containers without a cgroupsPath under /berth; the parent
    stays after the last delete, as runc leaves parents."""
    root = "/sys/fs/cgroup"
    for controller in os.listdir(root):
        try:
            os.rmdir(os.path.join(root, controller, "berth"))
        except OSError:
            pass


def report(samples, runs):
    med = {n: [statistics.median(s[k] for s in v) for k in range(3)] for n, v in samples.items()}
    lines = [f"runs per runtime: {runs} (interleaved), medians", "",
             "| runtime | wall ms | CPU ms | peak RSS MiB |", "|---|---|---|---|"]
    for name, (wall, cpu, rss) in med.items():
        lines.append(f"| {name} | {wall * 1000:.1f} | {cpu * 1000:.1f} | {rss / 1024:.2f} |")
    lines += ["", "| ratio | wall | CPU | peak RSS |", "|---|---|---|---|"]
    for peer in ("runc", "crun"):
        if peer in med:
            b, p = med["berth"], med[peer]
            lines.append(f"| berth / {peer} | {b[0] / p[0]:.2f} | {b[1] / p[1]:.2f} | {b[2] / p[2]:.2f} |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--berth", default="target/release/berth")
    parser.add_argument("--docker-spec", action="store_true",
                        help="Docker's default spec (seccomp on) instead of runc's")
    parser.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    berth = os.path.abspath(args.berth)
    if not args.inner:
        # Re-run inside a private mount namespace with the controllers hidden.
        os.execvp("unshare", ["unshare", "--mount", "--propagation", "private",
                              sys.executable, __file__, "--inner", "--runs", str(args.runs),
                              "--warmup", str(args.warmup), "--berth", berth]
                   + (["--docker-spec"] if args.docker_spec else []))
    if os.path.exists(CONTROLLERS):
        empty = tempfile.NamedTemporaryFile(prefix="berth-bench-empty-")
        subprocess.run(["mount", "--bind", empty.name, CONTROLLERS], check=True)
    print(report(bench(berth, args.runs, args.warmup, args.docker_spec), args.runs))


if __name__ == "__main__":
    main()
