#!/usr/bin/env python3
"""Benchmark: pull and push through a registry on 127.0.0.1 — berth's
daemon against dockerd (docker.io) and skopeo, side by side in one run.

The image: 5 layers, ~300 MB unpacked (half incompressible bytes, half
text-like bytes that gzip ~3x, in files of 4 KiB to 4 MiB), written as a
docker-archive and loaded into each daemon. Debian's docker-registry
serves it on a free loopback port.

1. Pull (nothing of the image local before each run): `berth pull`, the
   docker CLI against berth, `docker pull` against dockerd, `skopeo copy`
   to a `dir:` (which downloads and verifies but unpacks nothing).
2. The floor a pull cannot beat: every layer blob fetched with curl and
   gunzipped to /dev/null, all layers at once (`curl | zcat` each).
3. Push (into an empty registry each run; layers gzipped on the way):
   `berth push`, `docker push` against dockerd, `skopeo copy` from the
   docker-archive.

Medians of wall time, throughput (pulls: compressed MB fetched per
second; pushes: unpacked MB compressed and sent per second) and
CPU seconds (berth: its daemon and CLI; docker: dockerd, containerd and
the CLI; skopeo: itself). Root:

    bench/registry.py --runs 5 [--no-docker]
"""

import argparse
import hashlib
import io
import json
import os
import random
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time

from api import cpu_seconds
from daemon import pids_named, quiet
from peers import Berth, Docker

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
LAYER_MB = [120, 80, 50, 30, 20]
NAME = "bench/big:1"


def text_pool(rng, size):
    """Bytes that compress like source code and text (gzip ~3x)."""
    words = ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz_") for _ in range(rng.randint(2, 12)))
             for _ in range(4000)]
    out = io.StringIO()
    n = 0
    while n < size:
        line = " ".join(rng.choices(words, k=rng.randint(3, 14))) + "\n"
        out.write(line)
        n += len(line)
    return out.getvalue().encode()[:size]


def layer_tar(path, mb, index, pool, rng):
    """A layer of `mb` MB of files; returns its diff ID (sha256 of the tar)."""
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        left, n = mb << 20, 0
        while left > 0:
            size = min(left, rng.choice([4 << 10, 64 << 10, 512 << 10, 1 << 20, 4 << 20]))
            if n % 2:
                data = os.urandom(size)
            else:
                start = rng.randrange(0, len(pool) - size)
                data = pool[start:start + size]
            info = tarfile.TarInfo(f"layer{index}/d{n // 64}/f{n}")
            info.size, info.mode, info.mtime = size, 0o644, 1700000000
            tar.addfile(info, io.BytesIO(data))
            left -= size
            n += 1
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


def docker_archive(tmp):
    """The benchmark image as a docker-archive tarball."""
    rng = random.Random(7)
    pool = text_pool(rng, 8 << 20)
    work = os.path.join(tmp, "archive")
    os.makedirs(work)
    layers, diff_ids = [], []
    for i, mb in enumerate(LAYER_MB):
        name = f"layer{i}.tar"
        diff_ids.append(layer_tar(os.path.join(work, name), mb, i, pool, rng))
        layers.append(name)
    config = json.dumps({
        "architecture": "amd64", "os": "linux", "created": "2026-01-01T00:00:00Z",
        "config": {"Cmd": ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created": "2026-01-01T00:00:00Z", "created_by": f"layer {i}"}
                    for i in range(len(layers))],
    }).encode()
    config_name = hashlib.sha256(config).hexdigest() + ".json"
    with open(os.path.join(work, config_name), "wb") as f:
        f.write(config)
    with open(os.path.join(work, "manifest.json"), "w") as f:
        json.dump([{"Config": config_name, "RepoTags": [NAME], "Layers": layers}], f)
    archive = os.path.join(tmp, "big.tar")
    quiet(["tar", "-C", work, "-cf", archive, "."])
    shutil.rmtree(work)
    return archive


class Registry:
    """Debian's docker-registry on a fixed loopback port, storage wiped on reset."""

    def __init__(self, tmp):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.addr = f"127.0.0.1:{self.port}"
        self.storage = os.path.join(tmp, "registry")
        self.config = os.path.join(tmp, "registry.yml")
        with open(self.config, "w") as f:
            f.write(f"version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n"
                    f"storage:\n  filesystem:\n    rootdirectory: {self.storage}\n"
                    f"http:\n  addr: {self.addr}\n")
        self.proc = None
        self.reset()

    def reset(self):
        self.stop()
        shutil.rmtree(self.storage, ignore_errors=True)
        self.proc = subprocess.Popen(["docker-registry", "serve", self.config],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        raise SystemExit("docker-registry did not start")

    def stop(self):
        if self.proc:
            self.proc.terminate()
            self.proc.wait()
            self.proc = None

    def compressed_mb(self):
        return round(sum(size for _, size in self.blobs()) / 1e6, 1)

    def blobs(self):
        """(digest, size) of each layer of the benchmark image."""
        url = f"http://{self.addr}/v2/bench/big/manifests/1"
        out = quiet(["curl", "-sf", "-H",
                     "Accept: application/vnd.docker.distribution.manifest.v2+json", url])
        return [(l["digest"], l["size"]) for l in json.loads(out.stdout)["layers"]]


def measured(cmd, pids, env=None):
    """(wall s, CPU s of the command and of `pids`) for one command."""
    before_children = resource.getrusage(resource.RUSAGE_CHILDREN)
    before = cpu_seconds(pids())
    start = time.perf_counter()
    r = quiet(cmd, env=env)
    wall = time.perf_counter() - start
    after_children = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = cpu_seconds(pids()) - before
    cpu += (after_children.ru_utime - before_children.ru_utime
            + after_children.ru_stime - before_children.ru_stime)
    return wall, cpu, r.stdout.decode(errors="replace")


def floor_seconds(reg):
    """All layers at once: curl of each blob piped into zcat, to /dev/null."""
    script = " & ".join(
        f"curl -sf http://{reg.addr}/v2/bench/big/blobs/{d} | zcat > /dev/null"
        for d, _ in reg.blobs()) + " & wait"
    seq = " ; ".join(f"curl -sf -o /dev/null http://{reg.addr}/v2/bench/big/blobs/{d}"
                     for d, _ in reg.blobs())
    return measured(["sh", "-c", script], list)[:2], measured(["sh", "-c", seq], list)[0]


def summary(samples, mb):
    walls = [w for w, _ in samples]
    wall = statistics.median(walls)
    return {"wall_s": round(wall, 3), "MB_per_s": round(mb / wall, 1),
            "cpu_s": round(statistics.median([c for _, c in samples]), 2)}


class Peers:
    """The pull and push commands of each client, with what to measure."""

    def __init__(self, b, d, reg, archive, tmp):
        self.b, self.d, self.reg, self.archive, self.tmp = b, d, reg, archive, tmp
        self.remote = f"{reg.addr}/{NAME}"
        self.berth_pids = lambda: [b.proc.pid]
        self.docker_pids = (lambda: [d.proc.pid] + pids_named("containerd")) if d else list
        self.pushed_mb = {}

    def pulls(self):
        cases = [("berth pull", self.pull_berth), ("docker CLI -> berth", self.pull_docker_berth)]
        if self.d:
            cases.append(("docker pull (dockerd)", self.pull_dockerd))
        cases.append(("skopeo copy", self.pull_skopeo))
        return cases

    def pushes(self):
        cases = [("berth push", self.push_berth)]
        if self.d:
            cases.append(("docker push (dockerd)", self.push_dockerd))
        cases.append(("skopeo copy", self.push_skopeo))
        return cases

    def pull_berth(self):
        subprocess.run(self.b.cli("rmi", "-f", self.remote), capture_output=True)
        wall, cpu, out = measured(self.b.cli("pull", self.remote), self.berth_pids)
        assert "Already exists" not in out, out
        return wall, cpu

    def pull_docker_berth(self):
        subprocess.run(self.b.cli("rmi", "-f", self.remote), capture_output=True)
        wall, cpu, out = measured(self.b.docker("pull", self.remote), self.berth_pids)
        assert out.count("Pull complete") == len(LAYER_MB), out
        return wall, cpu

    def pull_dockerd(self):
        subprocess.run(self.d.cli("rmi", "-f", self.remote), capture_output=True)
        wall, cpu, out = measured(self.d.cli("pull", self.remote), self.docker_pids)
        assert out.count("Pull complete") == len(LAYER_MB), out
        return wall, cpu

    def pull_skopeo(self):
        dest = os.path.join(self.tmp, "skopeo-dir")
        shutil.rmtree(dest, ignore_errors=True)
        wall, cpu, _ = measured(["skopeo", "copy", "-q", "--src-tls-verify=false",
                                 f"docker://{self.remote}", f"dir:{dest}"], list)
        shutil.rmtree(dest)
        return wall, cpu

    def push_berth(self):
        self.reg.reset()
        wall, cpu, _ = measured(self.b.cli("push", "-q", self.remote), self.berth_pids)
        self.pushed_mb["berth push"] = self.reg.compressed_mb()
        return wall, cpu

    def push_dockerd(self):
        self.reg.reset()
        wall, cpu, _ = measured(self.d.cli("push", "-q", self.remote), self.docker_pids)
        self.pushed_mb["docker push (dockerd)"] = self.reg.compressed_mb()
        return wall, cpu

    def push_skopeo(self):
        self.reg.reset()
        wall, cpu, _ = measured(["skopeo", "copy", "-q", "--dest-tls-verify=false",
                                 f"docker-archive:{self.archive}",
                                 f"docker://{self.remote}"], list)
        self.pushed_mb["skopeo copy"] = self.reg.compressed_mb()
        return wall, cpu


def round_robin(runs, cases):
    samples = {name: [] for name, _ in cases}
    for i in range(runs):
        k = i % len(cases)
        for name, run in cases[k:] + cases[:k]:
            samples[name].append(run())
    return samples


def with_ratios(samples, mb, ours):
    out = {name: summary(s, mb) for name, s in samples.items()}
    base = out[ours]["wall_s"]
    for name, row in out.items():
        # Below 1: berth is faster than this row.
        row["berth_over_this"] = round(base / row["wall_s"], 2)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--berth", default=os.path.join(REPO, "target/release/berth"))
    ap.add_argument("--no-docker", action="store_true")
    args = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root")
    tmp = tempfile.mkdtemp(prefix="berth-bench-registry-")
    b = d = reg = None
    try:
        archive = docker_archive(tmp)
        reg = Registry(tmp)
        b = Berth(tmp, args.berth)
        quiet(b.cli("load", "-i", archive))
        quiet(b.cli("tag", NAME, f"{reg.addr}/{NAME}"))
        if not args.no_docker:
            d = Docker(tmp)
            quiet(d.cli("load", "-i", archive))
            quiet(d.cli("tag", NAME, f"{reg.addr}/{NAME}"))
        peers = Peers(b, d, reg, archive, tmp)
        pushed = round_robin(args.runs, peers.pushes())
        # Every pull fetches the blobs skopeo (Go's gzip) pushed, into
        # daemons that have nothing of the image.
        for daemon in (b, d):
            if daemon:
                quiet(daemon.cli("rmi", NAME, peers.remote))
        reg.reset()
        quiet(["skopeo", "copy", "-q", "--dest-tls-verify=false",
               f"docker-archive:{archive}", f"docker://{peers.remote}"])
        blobs = reg.blobs()
        gz_mb = sum(size for _, size in blobs) / 1e6
        pulled = round_robin(args.runs, peers.pulls())
        floors = [floor_seconds(reg) for _ in range(args.runs)]
        report = {
            "image": {"layers": len(LAYER_MB), "unpacked_MB": round(sum(LAYER_MB) * 1.048576, 1),
                      "compressed_MB": round(gz_mb, 1)},
            "pull": with_ratios(pulled, gz_mb, "berth pull"),
            "floor (curl | zcat, all layers at once)": summary([f[0] for f in floors], gz_mb),
            "curl only, one blob after another": {
                "wall_s": round(statistics.median(f[1] for f in floors), 3)},
            "push": with_ratios(pushed, sum(LAYER_MB) * 1.048576, "berth push"),
        }
        for name, mb in peers.pushed_mb.items():
            report["push"][name]["compressed_MB"] = mb
        floor = report["floor (curl | zcat, all layers at once)"]["wall_s"]
        report["pull"]["berth pull"]["berth_over_floor"] = round(
            report["pull"]["berth pull"]["wall_s"] / floor, 2)
        print(json.dumps(report, indent=2))
    finally:
        for daemon in (b, d):
            if daemon:
                daemon.stop()
        if reg:
            reg.stop()
        subprocess.run(["umount", "-R", "-l", tmp], capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
