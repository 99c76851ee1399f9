#!/usr/bin/env bash
# Installs what berth needs on a Debian 12 host, as root: the C library the
# runtime links (libseccomp), the busybox the tests and demo build images
# from, runc (the tests' oracle), containerd (a real client of the runtime)
# and the tools the demo and tests call; and the Python Docker SDK, in a
# venv the compatibility tests use (tests themselves never download).
set -euo pipefail
if [ "$(id -u)" -ne 0 ]; then
    echo "setup-host.sh: run as root (it installs packages with apt-get)" >&2
    exit 1
fi
packages=(busybox-static libseccomp-dev pkg-config runc containerd jq procps iproute2 util-linux bsdutils skopeo umoci python3-venv docker-registry apache2-utils openssl)
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
# The docker SDK for Python, pinned, where tests/python_sdk.rs looks.
venv=/var/cache/berth/python
if ! "$venv/bin/python" -c 'import docker' 2>/dev/null; then
    mkdir -p "$(dirname "$venv")"
    /usr/bin/python3 -m venv "$venv"
    "$venv/bin/pip" install -q 'docker==7.1.0'
fi
