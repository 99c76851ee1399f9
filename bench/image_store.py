#!/usr/bin/env python3
"""Benchmark: loading, unpacking and saving a realistic multi-layer image
with berth's store, side by side with skopeo + umoci (and `docker load` /
`docker save` when Debian's docker.io is installed), interleaved run by run.

The image (built once, deterministic): 5 layers, ~200 MB unpacked: tens of
thousands of small text-like files, a few large files (half incompressible),
and a last layer that deletes and replaces content (whiteouts).

Workloads, each from a fresh destination:
  load-docker  docker-archive (uncompressed layers, as `docker save` writes)
               → blobs stored and verified + every layer unpacked.
               peers: skopeo copy docker-archive: → oci: + umoci unpack;
                      docker load.
  load-oci     OCI archive with gzip layers (what registries serve)
               → same. peer: skopeo copy oci-archive: → oci: + umoci unpack.
  save         the loaded image → docker-archive.
               peers: skopeo copy oci: → docker-archive:; docker save.

Reports the median wall time of each, throughput (archive MB / s) and the
ratio berth / peer. Run as root:

    bench/image_store.py --runs 5 [--docker]

berth is driven through `store_bench` (crates/store/examples), the store
library's load/save without a daemon; the script builds it.
"""

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time

from peers import Docker
import io
import hashlib

BENCH = "target/release/examples/store_bench"
WORDS = [w.encode() for w in "the quick brown fox jumps over lazy dog lorem ipsum dolor sit amet "
         "container image layer overlay kernel namespace cgroup".split()]


def text(rng, n):
    out = bytearray()
    while len(out) < n:
        out += rng.choice(WORDS) + b" "
    return bytes(out[:n])


def layer_tar(entries):
    """entries: list of (path, bytes|None for dir, or ('wh',) for whiteout)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path, data in entries:
            info = tarfile.TarInfo(path)
            info.mtime = 1_700_000_000
            if data is None:
                info.type = tarfile.DIRTYPE
                info.mode = 0o755
                tar.addfile(info)
            else:
                info.size = len(data)
                info.mode = 0o644
                tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def build_layers(seed=42):
    rng = random.Random(seed)
    layers = []
    # 1: a distribution-like tree of many small files (~60 MB).
    e = [("usr", None), ("usr/share", None)]
    for d in range(150):
        e.append((f"usr/share/pkg{d}", None))
        for f in range(100):
            e.append((f"usr/share/pkg{d}/f{f}.txt", text(rng, rng.randint(512, 7600))))
    layers.append(e)
    # 2: two large files, each half incompressible (~80 MB).
    e = [("opt", None)]
    for i in range(2):
        e.append((f"opt/big{i}.bin", rng.randbytes(20 << 20) + text(rng, 20 << 20)))
    layers.append(e)
    # 3: application code (~20 MB in 5000 files).
    e = [("app", None)]
    for d in range(50):
        e.append((f"app/mod{d}", None))
        for f in range(100):
            e.append((f"app/mod{d}/src{f}.py", text(rng, rng.randint(1000, 7000))))
    layers.append(e)
    # 4: one 30 MB data file.
    layers.append([("data", None), ("data/model.bin", rng.randbytes(15 << 20) + text(rng, 15 << 20))])
    # 5: deletions (whiteouts) and replacements.
    e = [("usr", None), ("usr/share", None)]
    for d in range(0, 150, 10):
        e.append((f"usr/share/.wh.pkg{d}", b""))
    e.append(("app", None))
    for f in range(1000):
        e.append((f"app/patch{f}.py", text(rng, 2000)))
    layers.append(e)
    return [layer_tar(x) for x in layers]


def docker_archive(path, layer_tars):
    diff_ids = ["sha256:" + hashlib.sha256(t).hexdigest() for t in layer_tars]
    config = json.dumps({
        "architecture": "amd64", "os": "linux",
        "config": {"Cmd": ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created_by": f"layer {i}"} for i in range(len(layer_tars))],
    }).encode()
    cfg_name = hashlib.sha256(config).hexdigest() + ".json"
    with tarfile.open(path, "w") as tar:
        def add(name, data):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        names = []
        for t in layer_tars:
            name = hashlib.sha256(t).hexdigest() + "/layer.tar"
            add(name, t)
            names.append(name)
        add(cfg_name, config)
        add("manifest.json", json.dumps([{"Config": cfg_name, "RepoTags": ["bench/app:latest"],
                                          "Layers": names}]).encode())


def run(cmd, **kw):
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **kw)


def timed(cmds):
    start = time.perf_counter()
    for c in cmds:
        run(c)
    return time.perf_counter() - start


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--docker", action="store_true", help="also measure docker load/save (needs docker.io)")
    args = ap.parse_args()
    run(["cargo", "build", "--release", "-p", "berth-store", "--example", "store_bench"])
    tmp = tempfile.mkdtemp(prefix="berth-bench-store-", dir="/var/tmp")
    docker = None
    try:
        print("building the image...", file=sys.stderr)
        layers = build_layers()
        unpacked = sum(len(t) for t in layers)
        darchive = os.path.join(tmp, "docker.tar")
        docker_archive(darchive, layers)
        oarchive = os.path.join(tmp, "oci.tar")
        run(["skopeo", "--insecure-policy", "copy", "-q", "--dest-compress", "--dest-compress-format", "gzip",
             "docker-archive:" + darchive, "oci-archive:" + oarchive + ":bench/app:latest"])
        sizes = {"load-docker": os.path.getsize(darchive), "load-oci": os.path.getsize(oarchive),
                 "save": os.path.getsize(darchive)}
        if args.docker:
            docker = Docker(tmp)
        results = {}

        def record(work, who, seconds):
            results.setdefault(work, {}).setdefault(who, []).append(seconds)

        # Outputs stay until the end: deleting tens of thousands of files
        # between runs makes ext4's inode allocator slow for whoever creates
        # files next ("recently deleted" inodes are skipped), which would
        # favour whichever tool runs last. The order rotates run by run.
        jobs = [
            ("load-docker", "berth", lambda d: [[BENCH, d + "/berth1", "load", darchive]]),
            ("load-docker", "skopeo+umoci", lambda d: [
                ["skopeo", "--insecure-policy", "copy", "-q", "docker-archive:" + darchive, "oci:" + d + "/sk1:app"],
                ["umoci", "unpack", "--image", d + "/sk1:app", d + "/bundle1"]]),
            ("load-oci", "berth", lambda d: [[BENCH, d + "/berth2", "load", oarchive]]),
            ("load-oci", "skopeo+umoci", lambda d: [
                ["skopeo", "--insecure-policy", "copy", "-q", "oci-archive:" + oarchive, "oci:" + d + "/sk2:app"],
                ["umoci", "unpack", "--image", d + "/sk2:app", d + "/bundle2"]]),
        ]
        saves = [
            ("save", "berth", lambda d: [[BENCH, d + "/berth1", "save", "docker", d + "/saved.tar", "bench/app"]]),
            ("save", "skopeo", lambda d: [["skopeo", "--insecure-policy", "copy", "-q", "oci:" + d + "/sk1:app",
                                           "docker-archive:" + d + "/sk.tar:bench/app:latest"]]),
        ]
        if docker:
            jobs.append(("load-docker", "docker", lambda d: [docker.cli("load", "-q", "-i", darchive)]))
            saves.append(("save", "docker", lambda d: [docker.cli("save", "-o", d + "/dk.tar", "bench/app:latest")]))
        for i in range(args.runs):
            print(f"run {i + 1}/{args.runs}", file=sys.stderr)
            d = os.path.join(tmp, f"r{i}")
            os.makedirs(d)
            if docker and i:
                run(docker.cli("rmi", "-f", "bench/app:latest"))
            for group in (jobs, saves):
                k = i % len(group)
                for work, who, cmds in group[k:] + group[:k]:
                    run(["sync"])
                    record(work, who, timed(cmds(d)))
        print(f"\nimage: 5 layers, {unpacked / 1e6:.0f} MB of layer tar; docker archive "
              f"{sizes['load-docker'] / 1e6:.0f} MB, OCI gzip archive {sizes['load-oci'] / 1e6:.0f} MB; "
              f"{args.runs} runs, medians\n")
        print("| workload | tool | median s | MB/s | berth / tool |")
        print("|---|---|---|---|---|")
        for work, by in results.items():
            b = statistics.median(by["berth"])
            for who, xs in by.items():
                m = statistics.median(xs)
                ratio = "" if who == "berth" else f"{b / m:.2f}"
                print(f"| {work} | {who} | {m:.3f} | {sizes[work] / 1e6 / m:.0f} | {ratio} |")
    finally:
        if docker:
            docker.stop()
        subprocess.run(["umount", "-R", tmp], stderr=subprocess.DEVNULL)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
