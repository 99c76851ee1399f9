#!/usr/bin/env python3
"""Benchmark: image builds — berth's builder against docker's two, side by side.

Builders (one run, interleaved round by round, the order rotating):

- berth: `berth daemon` on private roots; the client is berth's own CLI
  (`berth build`) and, as a second row, the docker CLI (`DOCKER_BUILDKIT=0
  docker build` with DOCKER_HOST at berth's socket).
- docker classic: a private dockerd (docker.io, peers.Docker) and
  `DOCKER_BUILDKIT=0 docker build` (/usr/local/bin/docker).
- BuildKit: the same dockerd and Debian's 20.10 CLI (/usr/bin/docker, with
  BuildKit built in): `DOCKER_BUILDKIT=1 docker build --progress=plain`.

Every build runs with `--network none` (dockerd runs with --bridge=none,
where BuildKit's RUN needs it). The base image is a busybox root filesystem
imported as busybox:bench into each engine.

Two Dockerfiles: "small" (ENV, WORKDIR, COPY of one file, RUN, CMD) and
"realistic" (a 2,000-file, 20 MB context with a .dockerignore that excludes
a 50 MB directory; stages deps, build FROM deps, test, and a final stage
copying from build and test, then one file from the context, LABEL,
EXPOSE, ENTRYPOINT). Rows, per builder and round:

1. cold: the builder's image and cache removed first (berth: rmi +
   POST /build/prune; classic: rmi + image prune of the dangling
   intermediates; BuildKit: rmi + builder prune -af); the output is
   checked for no cache hit;
2. cached: the same build again, every step from the cache; checked to
   give the same image ID;
3. one file: the content of the file only the last COPY reads changed,
   then the build; checked to give a new image ID and to reuse the steps
   before that COPY from the cache.

Times are the client command's wall time; medians; ratios berth / peer.
Root:

    bench/build.py --small-runs 20 --realistic-runs 9 [--berth target/release/berth]

Then (--phases N) N raw `POST /build` requests per row against berth's
daemon, without a CLI: when the context was sent (the daemon reads it as it
unpacks it), when the last step's event came, the image ID, the end.
"""

import argparse
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

from peers import Berth, Docker

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
CLI28 = "/usr/local/bin/docker"
CLI20 = "/usr/bin/docker"

SMALL = """\
FROM busybox:bench
ENV APP_HOME=/app MODE=bench
WORKDIR /app
COPY hello.txt /app/hello.txt
RUN echo built > /app/built.txt
CMD ["cat", "/app/hello.txt"]
"""

REALISTIC = """\
FROM busybox:bench AS deps
WORKDIR /deps
COPY manifest.txt ./
RUN mkdir -p lib && while read name; do echo "$name" > "lib/$name"; done < manifest.txt

FROM deps AS build
COPY src/ /src/
RUN mkdir -p /out && find /src -type f | sort | xargs cat > /out/bundle.bin \\
 && find /src -type f | wc -l > /out/count

FROM busybox:bench AS test
COPY tests/ /tests/
RUN find /tests -type f | sort | xargs md5sum > /report.txt

FROM busybox:bench
COPY --from=build /out/ /app/
COPY --from=build /deps/lib/ /app/lib/
COPY --from=test /report.txt /app/test-report.txt
COPY app.conf /app/app.conf
LABEL org.example.bench=realistic
EXPOSE 8080
ENTRYPOINT ["/bin/sh", "-c", "cat /app/count"]
"""


def quiet(cmd, **kw):
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, **kw)
    if r.returncode != 0:
        raise SystemExit(f"{cmd} failed ({r.returncode}): {r.stdout.decode(errors='replace')}")
    return r.stdout.decode(errors="replace")


def rootfs_tar(tmp):
    root = os.path.join(tmp, "rootfs")
    for d in ["bin", "proc", "dev", "sys", "tmp", "etc", "root"]:
        os.makedirs(os.path.join(root, d))
    os.chmod(os.path.join(root, "tmp"), 0o1777)
    shutil.copy("/bin/busybox", os.path.join(root, "bin", "busybox"))
    applets = subprocess.run(["/bin/busybox", "--list"], capture_output=True, text=True,
                             check=True).stdout.split()
    for applet in applets:
        if applet != "busybox":
            os.symlink("busybox", os.path.join(root, "bin", applet))
    with open(os.path.join(root, "etc", "passwd"), "w") as f:
        f.write("root:x:0:0:root:/root:/bin/sh\n")
    tar = os.path.join(tmp, "rootfs.tar")
    subprocess.run(["tar", "--numeric-owner", "-C", root, "-cf", tar, "."], check=True)
    return tar


def small_context(path):
    os.makedirs(path)
    with open(os.path.join(path, "Dockerfile"), "w") as f:
        f.write(SMALL)
    with open(os.path.join(path, "hello.txt"), "w") as f:
        f.write("hello\n")
    return "hello.txt"


def realistic_context(path):
    """2,000 files in 100 directories (~20 MB; src/ 1,800, tests/ 200), a
    manifest, app.conf, and ignored/ (50 MB) plus *.log files that the
    .dockerignore excludes."""
    rng = random.Random(42)
    os.makedirs(path)
    with open(os.path.join(path, "Dockerfile"), "w") as f:
        f.write(REALISTIC)
    with open(os.path.join(path, ".dockerignore"), "w") as f:
        f.write("ignored\n**/*.log\n")
    with open(os.path.join(path, "manifest.txt"), "w") as f:
        f.write("".join(f"pkg{i:03d}\n" for i in range(50)))
    with open(os.path.join(path, "app.conf"), "w") as f:
        f.write("listen = 8080\n")
    for d in range(100):
        top, sub = ("src", f"mod{d:02d}") if d < 90 else ("tests", f"suite{d - 90}")
        dir_ = os.path.join(path, top, sub)
        os.makedirs(dir_)
        for i in range(20):
            with open(os.path.join(dir_, f"file{i:02d}.c"), "wb") as f:
                f.write(rng.randbytes(rng.randint(1024, 19 * 1024)))
        if d % 10 == 0:
            with open(os.path.join(dir_, "build.log"), "w") as f:
                f.write("ignored\n")
    ign = os.path.join(path, "ignored")
    os.makedirs(ign)
    with open(os.path.join(ign, "big.bin"), "wb") as f:
        f.write(rng.randbytes(50 << 20))
    return "app.conf"


class Builder:
    """One builder: how to build, to get an image ID, to make it cold."""

    def __init__(self, name, build, env, inspect, clean, cached_marker):
        self.name = name
        self.build = build      # (context, tag) -> argv
        self.env = env
        self.inspect = inspect  # tag -> argv printing the image ID
        self.clean = clean      # tag -> [argv...]
        self.cached_marker = cached_marker


def builders(b, d, tmp, berth_bin):
    cfg = os.path.join(tmp, "docker-config")
    os.makedirs(cfg, exist_ok=True)
    base = dict(os.environ, DOCKER_CONFIG=cfg)
    benv = dict(base, BERTH_HOST="unix://" + b.sock)
    bdocker = dict(base, DOCKER_HOST="unix://" + b.sock, DOCKER_BUILDKIT="0")
    prune = ["curl", "-sf", "-X", "POST", "--unix-socket", b.sock, "http://berth/build/prune"]
    # Inspection and cleaning (not timed) go through the docker CLI for all.
    on_b = [CLI28, "-H", "unix://" + b.sock]
    inspect_b = lambda tag: on_b + ["image", "inspect", "-f", "{{.Id}}", tag]  # noqa: E731
    clean_b = lambda tag: [on_b + ["rmi", "-f", tag], prune]  # noqa: E731
    out = [
        Builder("berth (berth CLI)",
                lambda ctx, tag: [berth_bin, "build", "--network", "none", "-t", tag, ctx],
                benv, inspect_b, clean_b, "Using cache"),
        Builder("berth (docker CLI)",
                lambda ctx, tag: [CLI28, "build", "--network", "none", "-t", tag, ctx],
                bdocker, inspect_b, clean_b, "Using cache"),
    ]
    if d:
        ddocker = dict(base, DOCKER_HOST="unix://" + d.sock, DOCKER_BUILDKIT="0")
        dkit = dict(base, DOCKER_HOST="unix://" + d.sock, DOCKER_BUILDKIT="1")
        on_d = [CLI28, "-H", "unix://" + d.sock]
        inspect_d = lambda tag: on_d + ["image", "inspect", "-f", "{{.Id}}", tag]  # noqa: E731
        out += [
            Builder("docker classic",
                    lambda ctx, tag: [CLI28, "build", "--network", "none", "-t", tag, ctx],
                    ddocker, inspect_d,
                    lambda tag: [on_d + ["rmi", "-f", tag], on_d + ["image", "prune", "-f"]],
                    "Using cache"),
            Builder("BuildKit",
                    lambda ctx, tag: [CLI20, "build", "--progress=plain", "--network", "none",
                                      "-t", tag, ctx],
                    dkit, inspect_d,
                    lambda tag: [on_d + ["rmi", "-f", tag], on_d + ["builder", "prune", "-af"]],
                    "CACHED"),
        ]
    return out


def slug(name):
    return "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-")


def run_build(bl, ctx, tag):
    start = time.perf_counter()
    r = subprocess.run(bl.build(ctx, tag), env=bl.env, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT)
    took = time.perf_counter() - start
    text = r.stdout.decode(errors="replace")
    if r.returncode != 0:
        raise SystemExit(f"{bl.name}: build of {ctx} failed ({r.returncode}):\n{text}")
    image = quiet(bl.inspect(tag)).strip()
    return took, image, text


def bench_case(case, make_context, builders_, runs, tmp):
    """Rounds of cold, cached and one-file builds for each builder."""
    contexts = {}
    for bl in builders_:
        ctx = os.path.join(tmp, "ctx", case, slug(bl.name))
        changed = make_context(ctx)
        contexts[bl.name] = (ctx, os.path.join(ctx, changed))
    rows = ("cold", "cached", "one file")
    times = {bl.name: {r: [] for r in rows} for bl in builders_}
    failures = []
    for i in range(runs):
        k = i % len(builders_)
        for bl in builders_[k:] + builders_[:k]:
            ctx, changed = contexts[bl.name]
            tag = f"bench-{case}-{slug(bl.name)}:latest"
            for cmd in bl.clean(tag):
                subprocess.run(cmd, capture_output=True)
            t, cold, text = run_build(bl, ctx, tag)
            times[bl.name]["cold"].append(t)
            if bl.cached_marker in text:
                failures.append(f"{case} round {i} {bl.name}: cold build hit the cache")
            t, cached, text = run_build(bl, ctx, tag)
            times[bl.name]["cached"].append(t)
            if cached != cold:
                failures.append(f"{case} round {i} {bl.name}: cached rebuild gave {cached}, "
                                f"not {cold}")
            with open(changed, "w") as f:
                f.write(f"changed in round {i}\n")
            t, one, text = run_build(bl, ctx, tag)
            times[bl.name]["one file"].append(t)
            if one == cached:
                failures.append(f"{case} round {i} {bl.name}: one-file rebuild kept {one}")
            if bl.cached_marker not in text:
                failures.append(f"{case} round {i} {bl.name}: one-file rebuild used no cache")
            print(f"{case} round {i + 1}/{runs} {bl.name}: " + ", ".join(
                f"{r} {times[bl.name][r][-1] * 1000:.0f} ms" for r in rows), file=sys.stderr)
    medians = {name: {r: statistics.median(v) * 1000 for r, v in t.items()}
               for name, t in times.items()}
    return medians, failures, {n: {r: [round(x * 1000, 1) for x in v] for r, v in t.items()}
                               for n, t in times.items()}


def same_config(builders_, case):
    """The final images' configs (what a user sees) from every builder."""
    keys = ["Cmd", "Entrypoint", "Env", "WorkingDir", "Labels", "ExposedPorts"]
    seen = {}
    for bl in builders_:
        tag = f"bench-{case}-{slug(bl.name)}:latest"
        out = quiet(bl.inspect(tag)[:-3] + ["-f", "{{json .Config}}", tag])
        cfg = json.loads(out)
        seen[bl.name] = {k: cfg.get(k) for k in keys}
    first = next(iter(seen.values()))
    return [f"{case}: {n} config {c} differs from {builders_[0].name}'s {first}"
            for n, c in seen.items() if c != first]


def post_build(sock, ctx, tag, ignore=()):
    """POST /build over berth's socket with a raw client: times (ms from
    the start) when the context tar was sent, when the last step's event
    came, when the image ID came, and when the answer ended."""
    tar = subprocess.run(["tar", "-C", ctx, "-cf", "-", *(f"--exclude={p}" for p in ignore),
                          "."], capture_output=True, check=True).stdout
    start = time.perf_counter()
    s = socket.socket(socket.AF_UNIX)
    s.connect(sock)
    s.sendall(f"POST /build?t={tag}&networkmode=none HTTP/1.1\r\nHost: berth\r\n"
              f"Content-Type: application/x-tar\r\nContent-Length: {len(tar)}\r\n"
              "Connection: close\r\n\r\n".encode() + tar)
    out = {"sent": time.perf_counter() - start}
    buf = b""
    while True:
        data = s.recv(65536)
        if not data:
            break
        now = time.perf_counter() - start
        buf += data
        *lines, buf = buf.split(b"\n")
        for line in lines:
            if b'"aux"' in line:
                out["image ID"] = now
            elif b'" ---> ' in line and "image ID" not in out:
                out["last step"] = now
    out["end"] = time.perf_counter() - start
    s.close()
    return {k: v * 1000 for k, v in out.items()}


def phases(b, tmp, runs):
    """Where a berth build's time goes: raw POST /build (no CLI) of the
    cached and one-file builds, medians of each moment."""
    report = {}
    for case, ignore in (("small", ()), ("realistic", ("./ignored", "*.log"))):
        ctx = os.path.join(tmp, "ctx", case, slug("berth (berth CLI)"))
        if not os.path.isdir(ctx):
            continue
        changed = os.path.join(ctx, "hello.txt" if case == "small" else "app.conf")
        tag = f"bench-{case}-phases:latest"
        post_build(b.sock, ctx, tag, ignore)
        for row in ("cached", "one file"):
            got = []
            for i in range(runs):
                if row == "one file":
                    with open(changed, "w") as f:
                        f.write(f"phases {i}\n")
                got.append(post_build(b.sock, ctx, tag, ignore))
            report[f"{case} {row}"] = {k: round(statistics.median(g[k] for g in got), 1)
                                       for k in got[0]}
    return report


def mounts_under(path):
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            mp = line.split()[4]
            if mp.startswith(path + "/"):
                out.append(mp)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--small-runs", type=int, default=15)
    ap.add_argument("--realistic-runs", type=int, default=7)
    ap.add_argument("--berth", default=os.path.join(REPO, "target/release/berth"))
    ap.add_argument("--no-docker", action="store_true")
    ap.add_argument("--phases", type=int, default=5, metavar="N",
                    help="then N raw POST /build per row against berth (0: none)")
    ap.add_argument("--keep", action="store_true", help="leave daemons up (debugging): print "
                    "their sockets and wait for Enter")
    args = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root")
    berth_bin = os.path.abspath(args.berth)
    tmp = tempfile.mkdtemp(prefix="berth-bench-build-")
    b = d = None
    report = {}
    try:
        tar = rootfs_tar(tmp)
        b = Berth(tmp, berth_bin)
        quiet(b.cli("import", tar, "busybox:bench"))
        if not args.no_docker:
            d = Docker(tmp)
            quiet(d.cli("import", tar, "busybox:bench"))
        bls = builders(b, d, tmp, berth_bin)
        failures = []
        for case, make, runs in (("small", small_context, args.small_runs),
                                 ("realistic", realistic_context, args.realistic_runs)):
            if runs <= 0:
                continue
            medians, fails, raw = bench_case(case, make, bls, runs, tmp)
            fails += same_config(bls, case)
            failures += fails
            report[case] = {"runs": runs, "median_ms": medians, "raw_ms": raw}
            if d:
                best = {r: min(medians["docker classic"][r], medians["BuildKit"][r])
                        for r in medians["docker classic"]}
                report[case]["berth_over_peer"] = {
                    f"{bn} / {pn}": {r: round(medians[bn][r] / medians[pn][r], 3)
                                     for r in medians[bn]}
                    for bn in ("berth (berth CLI)", "berth (docker CLI)")
                    for pn in ("docker classic", "BuildKit")}
                report[case]["berth_cli_over_best_docker"] = {
                    r: round(medians["berth (berth CLI)"][r] / best[r], 3) for r in best}
        report["check_failures"] = failures
        if args.phases:
            report["berth_post_build_ms"] = phases(b, tmp, args.phases)
        if args.keep:
            print(f"berth: {b.sock}  dockerd: {d.sock if d else '-'}", file=sys.stderr)
            input()
        print(json.dumps({k: v for k, v in report.items()}, indent=2))
        return 1 if failures else 0
    finally:
        for daemon in (b, d):
            if daemon:
                daemon.stop()
        for mp in sorted(mounts_under(tmp), key=len, reverse=True):
            subprocess.run(["umount", "-l", mp], capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
