#!/usr/bin/env bash
# The main job, on a fresh Debian machine as root: install and build; start
# berth's daemon; make a base image offline (import of Debian's static
# busybox), build an image from a Dockerfile on it with `berth build` (then
# again, from the cache) and run a container from it with the berth CLI, in
# the foreground, limited and isolated; the same with the docker CLI
# against berth's socket when docker is installed; then the runtime alone
# on an OCI bundle.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-host.sh
cargo build --release --quiet
berth=$PWD/target/release/berth

bundle=$(mktemp -d /tmp/berth-demo.XXXXXX)
context=$(mktemp -d /tmp/berth-demo-context.XXXXXX)
state=$(mktemp -d /tmp/berth-demo-state.XXXXXX)
daemon_dir=$(mktemp -d /tmp/berth-demo-daemon.XXXXXX)
daemon_pid=
cleanup() {
    if [ -n "$daemon_pid" ]; then
        BERTH_HOST=unix://$daemon_dir/berth.sock "$berth" rm -f demo >/dev/null 2>&1 || true
        kill "$daemon_pid" 2>/dev/null && wait "$daemon_pid" 2>/dev/null || true
    fi
    rm -rf "$bundle" "$state" "$daemon_dir" "$context"
}
trap cleanup EXIT
mkdir -p "$bundle/rootfs/bin"
cp /bin/busybox "$bundle/rootfs/bin/"
for applet in $(/bin/busybox --list); do
    [ "$applet" = busybox ] || ln -s busybox "$bundle/rootfs/bin/$applet"
done
mkdir -p "$bundle/rootfs/etc" "$bundle/rootfs/tmp"
echo 'root:x:0:0:root:/root:/bin/sh' > "$bundle/rootfs/etc/passwd"
echo 'root:x:0:' > "$bundle/rootfs/etc/group"

# Docker's defaults (capabilities, seccomp, masked paths), plus limits.
"$berth" runtime spec --docker --bundle "$bundle"
script='echo "pid in container: $$   hostname: $(hostname)   user: $(id)"
grep -E "^(CapEff|Seccomp|NoNewPrivs):" /proc/self/status
echo "processes visible: $(ls -d /proc/[0-9]* | wc -l)"
echo "memory limit: $(cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max)"
echo "pids limit: $(cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max)"
unshare -U true 2>/dev/null || echo "unshare(CLONE_NEWUSER): refused by seccomp"
(echo x > /proc/sysrq-trigger) 2>/dev/null || echo "/proc/sysrq-trigger: read-only"'
jq --arg s "$script" '.process.args = ["sh", "-c", $s]
    | .hostname = "berth-demo"
    | .linux.resources.memory = {limit: 67108864}
    | .linux.resources.pids = {limit: 64}
    | .linux.cgroupsPath = "/berth-demo"' "$bundle/config.json" > "$bundle/config.tmp"
mv "$bundle/config.tmp" "$bundle/config.json"

echo "host: pid $$, hostname $(hostname)"
echo
echo "== berth daemon + the berth CLI =="
"$berth" daemon --data-root "$daemon_dir/data" --exec-root "$daemon_dir/exec" \
    -H "unix://$daemon_dir/berth.sock" 2>"$daemon_dir/daemon.log" &
daemon_pid=$!
export BERTH_HOST=unix://$daemon_dir/berth.sock
for _ in $(seq 100); do [ -S "$daemon_dir/berth.sock" ] && break; sleep 0.05; done
tar -C "$bundle/rootfs" -c . | "$berth" import -c 'CMD ["sh"]' - busybox:demo >/dev/null
printf '#!/bin/sh\n%s\n' "$script" > "$context/isolation.sh"
cat > "$context/Dockerfile" <<'EOF'
FROM busybox:demo
RUN echo 'app:x:1000:1000::/app:/bin/sh' >> /etc/passwd && echo 'app:x:1000:' >> /etc/group
WORKDIR /app
COPY isolation.sh .
RUN chmod 0755 isolation.sh
USER app
CMD ["./isolation.sh"]
EOF
echo "-- berth build -t demo-app (cold) --"
"$berth" build --progress=plain -t demo-app "$context"
echo "-- berth build -t demo-app (again: every step from the cache) --"
start=$(date +%s%N)
"$berth" build -q -t demo-app "$context"
echo "cached rebuild: $(( ($(date +%s%N) - start) / 1000000 )) ms"
"$berth" images
set +e
"$berth" run --rm --name demo --hostname berth-demo -m 64m --pids-limit 64 demo-app
echo "exit code: $?"
set -e

if command -v docker >/dev/null; then
    echo
    echo "== the docker CLI, against berth's socket =="
    export DOCKER_HOST=$BERTH_HOST
    docker version --format 'server: {{.Server.Platform.Name}} {{.Server.Version}}, API {{.Server.APIVersion}}'
    DOCKER_BUILDKIT=0 docker build -q -t demo-app "$context" 2>/dev/null
    docker history demo-app --format 'table {{.CreatedBy}}\t{{.Size}}' | head -8
    docker run -d --name demo busybox:demo sh -c 'echo hello from docker run; exit 7' >/dev/null
    echo "exit code: $(docker wait demo)"
    docker logs demo
    docker ps -a --format 'table {{.Names}}\t{{.Image}}\t{{.Status}}'
    docker rm demo >/dev/null
fi

echo
echo "== the runtime alone, on an OCI bundle =="
"$berth" runtime --root "$state" run --bundle "$bundle" demo
