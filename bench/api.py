#!/usr/bin/env python3
"""Benchmark: the everyday API beyond run — exec, stats, cp — berth's
daemon against dockerd (docker.io), side by side in one run.

1. `exec C true` round trip: the berth CLI and the docker CLI against
   berth's daemon, the docker CLI against dockerd; interleaved; medians.
2. `stats` with N containers running: the wall time of one one-shot
   sample (`GET /containers/{id}/stats?stream=0&one-shot=1`, raw, every
   container in turn) and the CPU time the daemon side spends per sample
   (berth: the daemon; docker: dockerd + containerd + the shims).
3. `cp` of a tree (files of 1 MiB, `--cp-mib` in all) into a running
   container and back out: the berth CLI and the docker CLI against
   berth, the docker CLI against dockerd.

Root; dockerd is started here on private roots:

    bench/api.py --runs 30 --stats-containers 100 --cp-mib 500 [--no-docker]
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

from daemon import median_ms, pids_named, quiet, rootfs_tar, timed
from peers import Berth, Docker

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids):
    """utime + stime of `pids` (and their reaped children), in seconds."""
    total = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # utime stime cutime cstime: fields 14-17 of stat(5), 12-15 here.
        total += sum(int(x) for x in fields[11:15])
    return total / TICK


def interleaved(runs, cases):
    times = {name: [] for name, _ in cases}
    for i in range(runs):
        k = i % len(cases)
        for name, cmd in cases[k:] + cases[:k]:
            times[name].append(timed(cmd))
    return {name: round(median_ms(t), 2) for name, t in times.items()}


def one_shot(sock, cid):
    return ["curl", "-sf", "--unix-socket", sock,
            f"http://x/containers/{cid}/stats?stream=0&one-shot=1"]


def stats_cost(start, sock, daemon_pids, count, rounds):
    """(median ms per one-shot sample, daemon-side CPU ms per sample)."""
    ids = [quiet(start(i)).stdout.decode().strip() for i in range(count)]
    time.sleep(1)
    walls = []
    pids = daemon_pids()
    before = cpu_seconds(pids)
    for _ in range(rounds):
        for cid in ids:
            walls.append(timed(one_shot(sock, cid)))
    cpu = cpu_seconds(pids) - before
    return ids, round(median_ms(walls), 2), round(cpu * 1000 / (rounds * count), 3)


def make_tree(tmp, mib):
    tree = os.path.join(tmp, "tree")
    for i in range(mib):
        d = os.path.join(tree, f"d{i // 50}")
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, f"f{i}"), "wb") as f:
            f.write(os.urandom(1 << 20))
    return tree


def cp_times(cli, container, tree, out_dir, runs, env=None):
    into, back = [], []
    for i in range(runs):
        dst = f"/data{i}"
        into.append(timed_env(cli("cp", tree, f"{container}:{dst}"), env))
        local = os.path.join(out_dir, f"back{i}")
        back.append(timed_env(cli("cp", f"{container}:{dst}", local), env))
        shutil.rmtree(local)
        quiet(cli("exec", container, "rm", "-rf", dst), env=env)
    return round(statistics.median(into), 3), round(statistics.median(back), 3)


def timed_env(cmd, env):
    start = time.perf_counter()
    quiet(cmd, env=env)
    return time.perf_counter() - start


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--stats-containers", type=int, default=100)
    ap.add_argument("--stats-rounds", type=int, default=3)
    ap.add_argument("--cp-mib", type=int, default=500)
    ap.add_argument("--cp-runs", type=int, default=3)
    ap.add_argument("--berth", default=os.path.join(REPO, "target/release/berth"))
    ap.add_argument("--no-docker", action="store_true")
    args = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root")
    tmp = tempfile.mkdtemp(prefix="berth-bench-api-")
    b = d = None
    report = {}
    try:
        _, tar = rootfs_tar(tmp)
        b = Berth(tmp, args.berth)
        quiet(b.cli("import", tar, "busybox:bench"), env=b.env)
        if not args.no_docker:
            d = Docker(tmp)
            quiet(d.cli("import", tar, "busybox:bench"))
        quiet(b.cli("run", "-d", "--name", "ex", "busybox:bench", "sleep", "100000"), env=b.env)
        cases = [
            ("berth exec", b.cli("exec", "ex", "true")),
            ("docker CLI -> berth", b.docker("exec", "ex", "true")),
        ]
        if d:
            quiet(d.cli("run", "-d", "--name", "ex", "busybox:bench", "sleep", "100000"))
            cases.append(("docker exec (dockerd)", d.cli("exec", "ex", "true")))
        report["exec_true_median_ms"] = interleaved(args.runs, cases)

        start = lambda i: b.cli("run", "-d", "busybox:bench", "sleep", "100000")
        ids, wall, cpu = stats_cost(start, b.sock, lambda: [b.proc.pid],
                                    args.stats_containers, args.stats_rounds)
        report["stats_one_shot"] = {"containers": args.stats_containers,
                                    "berth": {"median_ms": wall, "daemon_cpu_ms_per_sample": cpu}}
        quiet(b.cli("rm", "-f", *ids), env=b.env)
        if d:
            start = lambda i: d.cli("run", "-d", "busybox:bench", "sleep", "100000")
            side = lambda: [d.proc.pid] + pids_named("containerd")
            ids, wall, cpu = stats_cost(start, d.sock, side, args.stats_containers,
                                        args.stats_rounds)
            report["stats_one_shot"]["dockerd"] = {"median_ms": wall,
                                                   "daemon_cpu_ms_per_sample": cpu}
            quiet(d.cli("rm", "-f", *ids))

        tree = make_tree(tmp, args.cp_mib)
        out = os.path.join(tmp, "out")
        os.makedirs(out)
        report["cp_seconds_median"] = {"MiB": args.cp_mib}
        report["cp_seconds_median"]["berth cp (in, out)"] = cp_times(
            b.cli, "ex", tree, out, args.cp_runs, b.env)
        report["cp_seconds_median"]["docker CLI -> berth (in, out)"] = cp_times(
            b.docker, "ex", tree, out, args.cp_runs)
        if d:
            report["cp_seconds_median"]["docker cp (dockerd) (in, out)"] = cp_times(
                d.cli, "ex", tree, out, args.cp_runs)
        print(json.dumps(report, indent=2))
    finally:
        for daemon in (b, d):
            if daemon:
                ids = subprocess.run(daemon.cli("ps", "-aq"), capture_output=True,
                                     text=True, env=getattr(daemon, "env", None)).stdout.split()
                for chunk in range(0, len(ids), 100):
                    subprocess.run(daemon.cli("rm", "-f", *ids[chunk:chunk + 100]),
                                   capture_output=True, env=getattr(daemon, "env", None))
                daemon.stop()
        subprocess.run(["umount", "-R", "-l", tmp], capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
