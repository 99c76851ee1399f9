"""The Python Docker SDK (docker-py) against berth: run, ps, logs -f, stop,
wait, rm, inspect, attach with stdin, import, tag, save, load, rmi, events,
and Docker's errors. Usage: scenarios.py SOCKET BUSYBOX_ROOTFS_TAR.
Prints "ok" when every assertion held."""

import socket
import sys
import time

import docker

sock_path, rootfs_tar = sys.argv[1], sys.argv[2]
client = docker.DockerClient(base_url=f"unix://{sock_path}", version="1.41")
api = client.api
t0 = time.time()

assert client.ping() is True
assert client.version()["ApiVersion"] == "1.41"

# import, tag, inspect
with open(rootfs_tar, "rb") as f:
    api.import_image_from_data(f.read(), repository="busybox", tag="sdk")
image = client.images.get("busybox:sdk")
assert "busybox:sdk" in image.tags, image.tags
assert image.tag("busybox", "extra")
assert sorted(client.images.get("busybox:sdk").tags) == ["busybox:extra", "busybox:sdk"]

# run in the foreground: the output comes back
out = client.containers.run("busybox:sdk", ["sh", "-c", "echo hi; echo err >&2"], remove=True)
assert out == b"hi\n", out

# run detached, list, follow the logs, stop, wait, inspect, remove
c = client.containers.run(
    "busybox:sdk",
    ["sh", "-c", "echo one; echo two; sleep 100"],
    detach=True,
    name="sdk-web",
    labels={"tier": "front"},
)
assert [x.name for x in client.containers.list(filters={"label": "tier=front"})] == ["sdk-web"]
lines = c.logs(stream=True, follow=True)
assert next(lines) == b"one\n"
assert next(lines) == b"two\n"
c.stop(timeout=1)
assert c.wait()["StatusCode"] == 137
c.reload()
assert c.status == "exited" and c.attrs["State"]["ExitCode"] == 137, c.attrs["State"]
assert c.attrs["Config"]["Labels"] == {"tier": "front"}
c.remove()
assert client.containers.list(all=True) == []

# attach with stdin before the start: the container reads what we send
cid = api.create_container(
    "busybox:sdk", ["sh", "-c", "read l; echo got $l"], stdin_open=True
)["Id"]
s = api.attach_socket(cid, params={"stdin": 1, "stdout": 1, "stream": 1})
api.start(cid)
raw = s._sock
raw.sendall(b"hello\n")
raw.shutdown(socket.SHUT_WR)
data = b""
while True:
    chunk = raw.recv(4096)
    if not chunk:
        break
    data += chunk
# one multiplexed stdout frame
assert data[:1] == b"\x01" and data[8:] == b"got hello\n", data
assert api.wait(cid)["StatusCode"] == 0
api.remove_container(cid)

# save, remove, load
saved = b"".join(client.images.get("busybox:sdk").save(named="busybox:sdk"))
client.images.remove("busybox:extra")
client.images.remove("busybox:sdk")
assert client.images.list() == []
loaded = client.images.load(saved)
assert [i.tags for i in loaded] == [["busybox:sdk"]], [i.tags for i in loaded]

# events of all that, in order
events = api.events(since=t0, until=time.time(), decode=True, filters={"type": "container"})
actions = [e["Action"] for e in events if e["Actor"]["Attributes"].get("name") == "sdk-web"]
assert actions[:2] == ["create", "start"] and "die" in actions and actions[-1] == "destroy", actions

# Docker's errors
try:
    client.containers.create("nosuch:image")
    raise AssertionError("created from a missing image")
except docker.errors.ImageNotFound:
    pass
client.containers.create("busybox:sdk", "true", name="sdk-taken")
try:
    client.containers.create("busybox:sdk", "true", name="sdk-taken")
    raise AssertionError("a name was taken twice")
except docker.errors.APIError as e:
    assert e.status_code == 409, e
client.containers.get("sdk-taken").remove()
try:
    client.containers.get("sdk-taken")
    raise AssertionError("a removed container was found")
except docker.errors.NotFound:
    pass

print("ok")
