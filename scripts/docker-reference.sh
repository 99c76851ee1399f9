#!/usr/bin/env bash
# docker-reference.sh — records Docker's own results for the Dockerfile corpus
# in crates/builder/tests/corpus/<case>/docker.json (the ground truth that
# berth's builder tests compare against). A development tool: CI never runs it.
#
# Needs, as root on Debian 12:
#   apt-get install -y docker.io busybox-static jq curl python3
#   (docker.io gives dockerd 20.10 and /usr/bin/docker 20.10, whose built-in
#   BuildKit runs the "buildkit" cases; the classic cases use the docker CLI at
#   $CLASSIC_DOCKER, /usr/local/bin/docker by default, which without a buildx
#   plugin builds with the classic builder, POST /build.)
#   Do not start the docker.io system service: this script starts a private
#   dockerd on $DREF (default /tmp/dref) and, unless KEEP_DAEMON=1, stops it and
#   removes $DREF at the end.
#
# Rerun all cases:      scripts/docker-reference.sh
# Rerun some cases:     scripts/docker-reference.sh copy-basics fail-run-exit
#   (a case whose base is another case's image, onbuild-child, needs that case
#   in the same run or still tagged in a kept daemon).
#
# Each case is built from a copy of its directory without docker.json, with
# every file mode set to 0644 and every directory to 0755 (git keeps no other
# modes) and then the modes the CASES table lists applied — berth's tests must
# prepare the context the same way ("context_modes" in docker.json).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
CORPUS=$ROOT/crates/builder/tests/corpus
DREF=${DREF:-/tmp/dref}
CLASSIC_DOCKER=${CLASSIC_DOCKER:-/usr/local/bin/docker}
BK_DOCKER=${BK_DOCKER:-/usr/bin/docker}
SOCK=$DREF/docker.sock
export DOCKER_HOST=unix://$SOCK

# case | builder | build args (K=V, space separated) | target | context modes (path=mode ...)
CASES=(
  "scratch-copy|classic|||"
  "scratch-env|classic|||"
  "run-forms|classic|||"
  "env-forms|classic|||"
  "label-maintainer|classic|||"
  "workdir|classic|||"
  "user|classic|||"
  "expose-volume|classic|||"
  "cmd-shell|classic|||"
  "cmd-exec|classic|||"
  "entrypoint-cmd|classic|||"
  "entrypoint-shell|classic|||"
  "entrypoint-resets-cmd|classic|||"
  "shell|classic|||"
  "stopsignal-healthcheck|classic|||"
  "healthcheck-none|classic|||"
  "onbuild-parent|classic|||"
  "onbuild-child|classic|||"
  "arg-before-from|classic|VER=1.2||"
  "arg-defaults|classic|B=given-b C=override-c NOT_DECLARED=zzz||"
  "predefined-args|classic|HTTP_PROXY=http://proxy.example:3128 no_proxy=localhost FTP_PROXY=ftp://ftp.example||"
  "multistage|classic|||"
  "multistage-target|classic||builder|"
  "stage-from-stage|classic|||"
  "copy-basics|classic|||"
  "copy-dir|classic|||"
  "copy-wildcard|classic|||"
  "copy-chown|classic|||"
  "copy-symlink|classic|||"
  "copy-workdir-relative|classic|||"
  "copy-modes|classic|||private.txt=0600 exec.sh=0755 privdir=0700 privdir/in.txt=0640 privdir/inner=0700 privdir/inner/x.txt=0604"
  "add-local|classic|||"
  "dockerignore|classic|||"
  "escape-directive|classic|||"
  "continuations-comments|classic|||"
  "run-build-args|classic|TWO=2||"
  "bk-basic|buildkit|VER=7 http_proxy=http://proxy.example:3128||"
  "bk-copy-chmod|buildkit|||"
  "bk-run-mount-cache|buildkit|||"
  "bk-run-mount-bind|buildkit|||"
  "fail-syntax|classic|||"
  "fail-unknown-instruction|classic|||"
  "fail-copy-missing|classic|||"
  "fail-copy-outside|classic|||"
  "fail-unknown-stage|classic|||"
  "fail-run-exit|classic|||"
  "fail-undefined-base|classic|||"
  "fail-no-from|classic|||"
  "fail-bk-run-exit|buildkit|||"
  "fail-bk-copy-missing|buildkit|||"
)

STARTED=0
start_daemon() {
    if curl -sf --unix-socket "$SOCK" http://x/_ping >/dev/null 2>&1; then
        return
    fi
    mkdir -p "$DREF"
    dockerd --data-root "$DREF/root" --exec-root "$DREF/exec" -H "unix://$SOCK" \
        --pidfile "$DREF/docker.pid" --bridge=none --iptables=false --ip-masq=false \
        >"$DREF/dockerd.log" 2>&1 &
    STARTED=1
    for _ in $(seq 1 60); do
        curl -sf --unix-socket "$SOCK" http://x/_ping >/dev/null 2>&1 && return
        sleep 0.5
    done
    echo "dockerd did not start; see $DREF/dockerd.log" >&2
    exit 1
}

stop_daemon() {
    [ "$STARTED" = 1 ] && [ "${KEEP_DAEMON:-0}" != 1 ] || return 0
    local pid
    pid=$(cat "$DREF/docker.pid")
    kill "$pid"
    while kill -0 "$pid" 2>/dev/null; do sleep 0.2; done
    awk -v d="$DREF" 'index($2, d) == 1 {print $2}' /proc/mounts | sort -r | xargs -r -n1 umount -l
    rm -rf "$DREF"
}
trap stop_daemon EXIT

# The base image, made exactly as berth's tests make theirs (tests/common make_rootfs).
make_base() {
    local rootfs=$DREF/base-rootfs
    rm -rf "$rootfs"
    mkdir -p "$rootfs/bin"
    cp /bin/busybox "$rootfs/bin/busybox"
    for applet in $(/bin/busybox --list); do
        [ "$applet" = busybox ] || ln -s busybox "$rootfs/bin/$applet"
    done
    for d in proc dev sys tmp mnt etc root; do mkdir -p "$rootfs/$d"; done
    printf 'root:x:0:0:root:/root:/bin/sh\n' >"$rootfs/etc/passwd"
    printf 'root:x:0:\n' >"$rootfs/etc/group"
    tar -C "$rootfs" -c . | "$BK_DOCKER" import - busybox:corpus >/dev/null
}

build_case() {
    local name=$1 builder=$2 args=$3 target=$4 modes=$5
    local ctx=$DREF/ctx/$name
    rm -rf "$ctx"
    mkdir -p "$ctx"
    cp -a "$CORPUS/$name/." "$ctx/"
    rm -f "$ctx/docker.json"
    find "$ctx" -type d -exec chmod 0755 {} +
    find "$ctx" -type f -exec chmod 0644 {} +
    local m
    for m in $modes; do chmod "${m#*=}" "$ctx/${m%%=*}"; done

    local -a cmd=(docker build)
    local a
    for a in $args; do cmd+=(--build-arg "$a"); done
    [ -n "$target" ] && cmd+=(--target "$target")
    local -a env
    local bin
    if [ "$builder" = buildkit ]; then
        # --network=none: this private dockerd has no bridge network and
        # BuildKit's default RUN network needs one; it does not touch the image.
        cmd+=(--network=none --progress=plain)
        env=(DOCKER_BUILDKIT=1)
        bin=$BK_DOCKER
    else
        env=(DOCKER_BUILDKIT=0)
        bin=$CLASSIC_DOCKER
    fi
    cmd+=(-t "corpus/$name" .)
    local rc=0
    (cd "$ctx" && env "${env[@]}" "$bin" "${cmd[@]:1}" >"$DREF/out.txt" 2>"$DREF/err.txt") || rc=$?
    local command="${env[*]} ${cmd[*]}"
    python3 - "$CORPUS/$name/docker.json" "$name" "$builder" "$args" "$target" "$modes" \
        "$command" "$rc" "$DREF" "$BK_DOCKER" <<'PY'
import hashlib, io, json, os, re, subprocess, sys, tarfile

out, name, builder, args, target, modes, command, rc, dref, docker = sys.argv[1:]
rc = int(rc)
sock = os.path.join(dref, "docker.sock")
stdout = open(os.path.join(dref, "out.txt"), encoding="utf-8", errors="replace").read()
stderr = open(os.path.join(dref, "err.txt"), encoding="utf-8", errors="replace").read()
build_args = dict(a.split("=", 1) for a in args.split())
context_modes = dict(m.split("=", 1) for m in modes.split())
tag = "corpus/" + name
doc = {"builder": builder, "build_args": build_args, "target": target or None,
       "tag": tag, "command": command}
if context_modes:
    doc["context_modes"] = context_modes


def write(doc):
    with open(out, "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=2, ensure_ascii=False)
        f.write("\n")


if name.startswith("fail-") or rc != 0:
    lines = [l for l in stderr.splitlines() if l.strip()]
    doc.update({"fails": True, "exit_code": rc, "stderr": stderr,
                "error": lines[-1] if lines else "", "stdout": stdout})
    if not name.startswith("fail-"):
        print(f"{name}: build failed unexpectedly (exit {rc}):\n{stderr}", file=sys.stderr)
    write(doc)
    sys.exit(0)


def api(path):
    return json.loads(subprocess.check_output(
        ["curl", "-sf", "--unix-socket", sock, "http://x/v1.41" + path]))


def norm(name):
    """A tar member name as an absolute path: "./a/b/" -> "/a/b"."""
    while name.startswith("./"):
        name = name[2:]
    name = name.strip("/")
    return "/" + name if name not in ("", ".") else "/"


def flatten(image):
    """The image's filesystem from `docker save`, whiteouts applied."""
    data = subprocess.check_output([docker, "save", image])
    outer = tarfile.open(fileobj=io.BytesIO(data))
    manifest = json.load(outer.extractfile("manifest.json"))[0]
    config = json.load(outer.extractfile(manifest["Config"]))
    fs = {}
    for layer in manifest["Layers"]:
        tf = tarfile.open(fileobj=io.BytesIO(outer.extractfile(layer).read()))
        here = set()
        for m in tf.getmembers():
            p = norm(m.name)
            if p == "/":
                continue
            d, base = os.path.split(p)
            if base == ".wh..wh..opq":
                for q in list(fs):
                    if q.startswith(d.rstrip("/") + "/") and q not in here:
                        del fs[q]
                continue
            if base.startswith(".wh."):
                victim = os.path.join(d, base[4:])
                for q in list(fs):
                    if q == victim or q.startswith(victim + "/"):
                        del fs[q]
                continue
            e = {"path": p}
            if m.isdir():
                e["type"] = "dir"
            elif m.issym():
                e["type"] = "symlink"
            elif m.islnk():
                e["type"] = "hardlink"
            elif m.isfile():
                e["type"] = "file"
            elif m.ischr():
                e["type"] = "char"
            elif m.isblk():
                e["type"] = "block"
            elif m.isfifo():
                e["type"] = "fifo"
            e["mode"] = "%04o" % (m.mode & 0o7777)
            e["uid"] = m.uid
            e["gid"] = m.gid
            if m.isfile() and not m.islnk():
                body = tf.extractfile(m).read()
                e["size"] = len(body)
                e["sha256"] = hashlib.sha256(body).hexdigest()
                if len(body) <= 512:
                    try:
                        e["_body"] = body.decode("utf-8")
                    except UnicodeDecodeError:
                        pass
            if m.issym():
                e["link"] = m.linkname
            if m.islnk():
                t = norm(m.linkname)
                e["link"] = t
                if t in fs and "sha256" in fs[t]:
                    e["size"] = fs[t]["size"]
                    e["sha256"] = fs[t]["sha256"]
                    if "_body" in fs[t]:
                        e["_body"] = fs[t]["_body"]
            xattrs = {k[len("SCHILY.xattr."):]: v for k, v in m.pax_headers.items()
                      if k.startswith("SCHILY.xattr.")}
            if xattrs:
                e["xattrs"] = xattrs
            if p in fs and fs[p]["type"] == "dir" and e["type"] != "dir":
                for q in list(fs):
                    if q.startswith(p + "/"):
                        del fs[q]
            fs[p] = e
            here.add(p)
    bodies = {p: e.pop("_body") for p, e in fs.items() if "_body" in e}
    return config, manifest, fs, bodies


inspect = api(f"/images/{tag}/json")
base_inspect = api("/images/busybox:corpus/json")
config, manifest, fs, bodies = flatten(tag)
base_cache = os.path.join(dref, "base-fs.json")
if not os.path.exists(base_cache):
    _, _, bfs, _ = flatten("busybox:corpus")
    json.dump(bfs, open(base_cache, "w"))
bfs = json.load(open(base_cache))
layers = inspect["RootFS"].get("Layers") or []
on_base = bool(layers) and layers[0] == base_inspect["RootFS"]["Layers"][0]
base = bfs if on_base else {}

history = []
for h in config.get("history", []):
    e = {"created_by": h.get("created_by", ""), "empty_layer": bool(h.get("empty_layer", False))}
    if "comment" in h:
        e["comment"] = h["comment"]
    if "author" in h:
        e["author"] = h["author"]
    history.append(e)

files = [e for p, e in sorted(fs.items()) if base.get(p) != e]
contents = {e["path"]: bodies[e["path"]] for e in files if e["path"] in bodies}
removed = sorted(p for p in base if p not in fs)
warnings = [re.sub(r"\x1b\[[0-9;]*m", "", l).strip()
            for l in stdout.splitlines() + stderr.splitlines() if "[Warning]" in l or "WARNING" in l]
doc.update({
    "config": inspect["Config"],
    "author": inspect.get("Author", ""),
    "comment": inspect.get("Comment", ""),
    "layers": len(layers),
    "files_base": "busybox:corpus" if on_base else "scratch",
    "base_history": len(api("/images/busybox:corpus/history")) if on_base else 0,
    "history": history,
    "files": files,
    "removed": removed,
    "contents": contents,
})
if warnings:
    doc["warnings"] = warnings
write(doc)
PY
    echo "$name: exit $rc"
}

start_daemon
"$BK_DOCKER" image inspect busybox:corpus >/dev/null 2>&1 || make_base
rm -f "$DREF/base-fs.json"
want=" $* "
for row in "${CASES[@]}"; do
    IFS='|' read -r name builder args target modes <<<"$row"
    if [ $# -gt 0 ] && [[ "$want" != *" $name "* ]]; then continue; fi
    build_case "$name" "$builder" "$args" "$target" "$modes"
done
