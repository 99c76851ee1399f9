#!/usr/bin/env python3
"""Benchmark: berth's daemon path against docker's, side by side in one run.

1. `run --rm IMG /bin/true` end to end: the berth CLI against berth's
   daemon, the docker CLI against dockerd (docker.io), the docker CLI
   against berth's daemon, and the bare runtime (`berth-runtime run` of a
   prepared bundle with Docker's default spec); interleaved run by run;
   medians and ratios.
2. Per-container overhead with N `sleep` containers running: RSS and PSS
   of berth's shims and of docker's containerd-shim-runc-v2 (smaps_rollup).
3. `ps -a` with 1,000 containers (created, not running): the berth CLI and
   the raw API call.
4. The daemons' idle RSS (after the image import, before any container).

Each daemon runs on temporary roots and sockets; dockerd only here. Root:

    bench/daemon.py --runs 30 --sleepers 100 --listed 1000 [--no-docker]
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

from peers import Berth, Docker

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)


def rootfs_tar(tmp):
    root = os.path.join(tmp, "rootfs")
    os.makedirs(os.path.join(root, "bin"))
    shutil.copy("/bin/busybox", os.path.join(root, "bin", "busybox"))
    for applet in ["sh", "true", "sleep", "rm"]:
        os.symlink("busybox", os.path.join(root, "bin", applet))
    tar = os.path.join(tmp, "rootfs.tar")
    subprocess.run(["tar", "-C", root, "-cf", tar, "."], check=True)
    return root, tar


def quiet(cmd, **kw):
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)
    if r.returncode != 0:
        raise SystemExit(f"{cmd} failed ({r.returncode}): {r.stderr.decode(errors='replace')}")
    return r


def timed(cmd):
    start = time.perf_counter()
    quiet(cmd)
    return time.perf_counter() - start


def rss_kib(pid):
    """(RSS, PSS) in KiB from /proc/PID/smaps_rollup."""
    rss = pss = 0
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            if line.startswith("Rss:"):
                rss = int(line.split()[1])
            elif line.startswith("Pss:"):
                pss = int(line.split()[1])
    return rss, pss


def pids_named(fragment):
    out = []
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open(f"/proc/{p}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if fragment in cmd:
            out.append(int(p))
    return out


def bundle(tmp, binary, root):
    path = os.path.join(tmp, "bundle")
    os.makedirs(path)
    os.symlink(root, os.path.join(path, "rootfs"))
    quiet([binary, "runtime", "spec", "--docker", "--bundle", path])
    with open(os.path.join(path, "config.json")) as f:
        config = json.load(f)
    config["process"]["args"] = ["/bin/true"]
    config["process"]["terminal"] = False
    config["root"] = {"path": root, "readonly": True}
    with open(os.path.join(path, "config.json"), "w") as f:
        json.dump(config, f)
    return path


def median_ms(xs):
    return statistics.median(xs) * 1000


def bench_run(runs, cases):
    times = {name: [] for name, _ in cases}
    for i in range(runs):
        # Rotate the order: no case always runs right after another.
        k = i % len(cases)
        for name, cmd in cases[k:] + cases[:k]:
            # A pause first: a run right after another finds the kernel's
            # cgroup lock still warm from it (its first cgroup move would
            # skip an RCU grace period, 6-25 ms here); each case starts
            # from the state a lone `run` meets.
            time.sleep(0.1)
            times[name].append(timed(cmd()))
    return {name: median_ms(t) for name, t in times.items()}


def overhead(start_cmd, rm_cmd, count, shim_fragment):
    ids = [quiet(start_cmd(i)).stdout.decode().strip() for i in range(count)]
    time.sleep(1)
    shims = pids_named(shim_fragment)
    sizes = [rss_kib(p) for p in shims]
    for chunk in range(0, len(ids), 50):
        quiet(rm_cmd(ids[chunk:chunk + 50]))
    if not sizes:
        return None
    return {
        "shims": len(sizes),
        "rss_kib": statistics.median(s[0] for s in sizes),
        "pss_kib": statistics.median(s[1] for s in sizes),
        "pss_total_kib": sum(s[1] for s in sizes),
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--sleepers", type=int, default=100)
    ap.add_argument("--listed", type=int, default=1000)
    ap.add_argument("--berth", default=os.path.join(REPO, "target/release/berth"))
    ap.add_argument("--runtime", default=os.path.join(REPO, "target/release/berth-runtime"))
    ap.add_argument("--no-docker", action="store_true")
    args = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root")
    tmp = tempfile.mkdtemp(prefix="berth-bench-daemon-")
    b = d = None
    report = {}
    try:
        root, tar = rootfs_tar(tmp)
        b = Berth(tmp, args.berth)
        quiet(b.cli("import", tar, "busybox:bench"), env=b.env)
        report["berth_daemon_idle_rss_kib"] = rss_kib(b.proc.pid)[0]
        if not args.no_docker:
            d = Docker(tmp)
            quiet(d.cli("import", tar, "busybox:bench"))
            time.sleep(1)
            report["dockerd_idle_rss_kib"] = rss_kib(d.proc.pid)[0]
        path = bundle(tmp, args.berth, root)
        state = os.path.join(tmp, "runtime-state")
        counter = iter(range(10**9))
        cases = [
            ("berth run --rm", lambda: b.cli("run", "--rm", "busybox:bench", "/bin/true")),
            ("docker CLI -> berth", lambda: b.docker("run", "--rm", "busybox:bench", "/bin/true")),
            ("berth-runtime run", lambda: [args.runtime, "--root", state, "run", "--bundle", path,
                                           f"bench-{next(counter)}"]),
        ]
        if d:
            cases.append(("docker run --rm", lambda: d.cli("run", "--rm", "busybox:bench",
                                                           "/bin/true")))
        report["run_rm_median_ms"] = bench_run(args.runs, cases)
        report["berth_shim"] = overhead(
            lambda i: b.cli("run", "-d", "busybox:bench", "sleep", "1000"),
            lambda ids: b.cli("rm", "-f", *ids), args.sleepers, " shim --id ")
        if d:
            report["containerd_shim_runc_v2"] = overhead(
                lambda i: d.cli("run", "-d", "busybox:bench", "sleep", "1000"),
                lambda ids: d.cli("rm", "-f", *ids), args.sleepers, "containerd-shim-runc-v2")
        for i in range(args.listed):
            quiet(b.cli("create", "busybox:bench", "/bin/true"))
        ps_cli = [timed(b.cli("ps", "-a", "-q")) for _ in range(10)]
        api = ["curl", "-s", "--unix-socket", b.sock, "http://berth/containers/json?all=1"]
        ps_api = [timed(api) for _ in range(10)]
        report["ps_a_median_ms"] = {"containers": args.listed, "berth ps -a -q": median_ms(ps_cli),
                                    "GET /containers/json?all=1 (curl)": median_ms(ps_api)}
        if d:
            for i in range(args.listed):
                quiet(d.cli("create", "busybox:bench", "/bin/true"))
            report["ps_a_median_ms"]["docker ps -a -q (dockerd)"] = median_ms(
                [timed(d.cli("ps", "-a", "-q")) for _ in range(10)])
        print(json.dumps(report, indent=2))
    finally:
        for daemon, cli in ((b, b.cli if b else None), (d, d.cli if d else None)):
            if daemon:
                ids = subprocess.run(cli("ps", "-aq"), capture_output=True, text=True).stdout.split()
                for chunk in range(0, len(ids), 100):
                    subprocess.run(cli("rm", "-f", *ids[chunk:chunk + 100]), capture_output=True)
                daemon.stop()
        subprocess.run(["umount", "-R", "-l", tmp], capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
