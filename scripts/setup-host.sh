#!/usr/bin/env bash
# Installs what berth needs on a Debian 12 host, as root: the C library the
# runtime links (libseccomp), the busybox the tests and demo build images
# from, runc (the tests' oracle), containerd (a real client of the runtime)
# and the tools the demo and tests call.
set -euo pipefail
if [ "$(id -u)" -ne 0 ]; then
    echo "setup-host.sh: run as root (it installs packages with apt-get)" >&2
    exit 1
fi
packages=(busybox-static libseccomp-dev pkg-config runc containerd jq procps iproute2 util-linux skopeo umoci)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
if ! command -v cargo >/dev/null; then
    echo "setup-host.sh: cargo not found: install Rust (rustup) first" >&2
    exit 1
fi
