#!/usr/bin/env bash
# The main job, on a fresh Debian machine as root: install, build, then run a
# container from a busybox bundle and show its isolation and limits.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-host.sh
cargo build --release --quiet
berth=$PWD/target/release/berth

bundle=$(mktemp -d /tmp/berth-demo.XXXXXX)
state=$(mktemp -d /tmp/berth-demo-state.XXXXXX)
trap 'rm -rf "$bundle" "$state"' EXIT
mkdir -p "$bundle/rootfs/bin"
cp /bin/busybox "$bundle/rootfs/bin/"
for applet in $(/bin/busybox --list); do
    [ "$applet" = busybox ] || ln -s busybox "$bundle/rootfs/bin/$applet"
done

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
"$berth" runtime --root "$state" run --bundle "$bundle" demo
