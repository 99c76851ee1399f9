"""The Python Docker SDK (docker-py) pushing to and pulling from a registry
through berth: login (refused, then accepted), images.push with its
progress stream, images.pull of what was pushed, inspect_distribution.
Usage: registry.py SOCKET BUSYBOX_ROOTFS_TAR REGISTRY USER PASSWORD.
Prints "ok" when every assertion held."""

import json
import sys

import docker

sock_path, rootfs_tar, registry, user, password = sys.argv[1:6]
client = docker.DockerClient(base_url=f"unix://{sock_path}", version="1.41")
api = client.api
repo = f"{registry}/sdk/bb"

with open(rootfs_tar, "rb") as f:
    api.import_image_from_data(f.read(), repository=repo, tag="1")
image_id = client.images.get(f"{repo}:1").id

# Without credentials the push fails in its stream.
lines = [json.loads(l) for l in client.images.push(repo, tag="1").splitlines() if l.strip()]
assert any("unauthorized" in l.get("error", "") for l in lines), lines

try:
    client.login(username=user, password="wrong", registry=registry)
    raise AssertionError("a wrong password logged in")
except docker.errors.APIError as e:
    assert e.status_code == 401, e

r = client.login(username=user, password=password, registry=registry)
assert r["Status"] == "Login Succeeded", r

digest = None
for line in client.images.push(repo, tag="1", stream=True, decode=True):
    assert "error" not in line, line
    if "aux" in line:
        digest = line["aux"]["Digest"]
assert digest and digest.startswith("sha256:"), digest

dist = api.inspect_distribution(f"{repo}:1")
assert dist["Descriptor"]["digest"] == digest, dist
assert dist["Platforms"][0]["os"] == "linux", dist

client.images.remove(f"{repo}:1")
pulled = client.images.pull(repo, tag="1")
assert pulled.id == image_id, (pulled.id, image_id)
assert f"{repo}@{digest}" in pulled.attrs["RepoDigests"], pulled.attrs
print("ok")
