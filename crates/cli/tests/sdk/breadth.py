"""The Python Docker SDK (docker-py) against berth, beyond the basics:
exec (exec_run with output, exit codes, streams, environment, user,
workdir, detach; exec_inspect); files (put_archive, get_archive with its
stat, diff); volumes (create, run with a volume, data kept after the
container, list filters, in-use conflict, remove, prune); running
containers (stats, top, pause/unpause, update, rename, containers.prune);
commit. Usage: breadth.py SOCKET BUSYBOX_ROOTFS_TAR.
Prints "ok" when every assertion held."""

import io
import sys
import tarfile

import docker

sock_path, rootfs_tar = sys.argv[1], sys.argv[2]
client = docker.DockerClient(base_url=f"unix://{sock_path}", version="1.41")
api = client.api

with open(rootfs_tar, "rb") as f:
    api.import_image_from_data(f.read(), repository="busybox", tag="sdk")
box = client.containers.run("busybox:sdk", ["sleep", "1000"], detach=True, name="box")

# exec: output, exit code, separate streams, environment, user, workdir
r = box.exec_run(["sh", "-c", "echo out; echo err >&2; exit 3"])
assert r.exit_code == 3 and r.output == b"out\nerr\n", r
r = box.exec_run(["sh", "-c", "echo out; echo err >&2"], demux=True)
assert r.output == (b"out\n", b"err\n"), r
r = box.exec_run(
    ["sh", "-c", "echo $A; id -u; pwd"], environment={"A": "b"}, user="7", workdir="/tmp"
)
assert r.output == b"b\n7\n/tmp\n", r
# detached: no output; the exit code is whatever the inspect right after saw
r = box.exec_run(["sh", "-c", "exit 0"], detach=True)
assert r.exit_code in (None, 0) and not r.output, r
# the low-level calls: create, start, inspect
e = api.exec_create(box.id, ["sh", "-c", "exit 9"])
assert api.exec_start(e["Id"]) == b""
info = api.exec_inspect(e["Id"])
assert info["ExitCode"] == 9 and info["Running"] is False, info
assert info["ContainerID"] == box.id, info
# files: a tar in, the same bytes out, the stat, the diff
buf = io.BytesIO()
with tarfile.open(fileobj=buf, mode="w") as t:
    data = b"from the sdk\n"
    info = tarfile.TarInfo("sdk.txt")
    info.size = len(data)
    info.mode = 0o640
    t.addfile(info, io.BytesIO(data))
assert box.put_archive("/tmp", buf.getvalue()) is True
assert box.exec_run(["cat", "/tmp/sdk.txt"]).output == b"from the sdk\n"
chunks, stat = box.get_archive("/tmp/sdk.txt")
assert stat["name"] == "sdk.txt" and stat["size"] == 13 and stat["mode"] == 0o640, stat
with tarfile.open(fileobj=io.BytesIO(b"".join(chunks))) as t:
    assert t.getnames() == ["sdk.txt"], t.getnames()
    assert t.extractfile("sdk.txt").read() == b"from the sdk\n"
changes = {c["Path"]: c["Kind"] for c in box.diff()}
assert changes.get("/tmp/sdk.txt") == 1 and changes.get("/tmp") == 0, changes
try:
    box.get_archive("/nope")
    raise AssertionError("a missing path")
except docker.errors.NotFound:
    pass

# errors: a stopped container refuses
box.stop(timeout=1)
try:
    box.exec_run(["true"])
    raise AssertionError("exec in a stopped container")
except docker.errors.APIError as err:
    assert err.status_code == 409 and "is not running" in str(err), err
box.remove()

# volumes: create, use, data kept, filters, in use, remove, prune
vol = client.volumes.create("sdk-data", labels={"app": "sdk"})
assert vol.attrs["Driver"] == "local" and vol.attrs["Labels"] == {"app": "sdk"}, vol.attrs
out = client.containers.run(
    "busybox:sdk",
    ["sh", "-c", "echo kept > /data/f; cat /data/f"],
    volumes={"sdk-data": {"bind": "/data", "mode": "rw"}},
    remove=True,
)
assert out == b"kept\n", out
out = client.containers.run(
    "busybox:sdk", ["cat", "/data/f"], volumes=["sdk-data:/data:ro"], remove=True
)
assert out == b"kept\n", out
assert [v.name for v in client.volumes.list(filters={"label": "app=sdk"})] == ["sdk-data"]
user = client.containers.run(
    "busybox:sdk", ["sleep", "100"], volumes=["sdk-data:/data"], detach=True
)
try:
    vol.remove()
    raise AssertionError("removed a volume in use")
except docker.errors.APIError as err:
    assert err.status_code == 409 and "in use" in str(err), err
user.remove(force=True)
vol.remove()
client.volumes.create("sdk-unused")
pruned = client.volumes.prune()
assert pruned["VolumesDeleted"] == ["sdk-unused"], pruned
try:
    client.volumes.get("sdk-data")
    raise AssertionError("a removed volume")
except docker.errors.NotFound:
    pass

# running containers: stats, top, pause, update, rename, prune
c = client.containers.run(
    "busybox:sdk", ["sh", "-c", "sleep 1000 & wait"], detach=True, mem_limit="64m", name="sdk-run"
)
s = c.stats(stream=False)
assert s["memory_stats"]["limit"] == 64 * 1024 * 1024, s["memory_stats"]
assert s["precpu_stats"]["system_cpu_usage"] > 0, "a baseline sample came first"
assert s["name"] == "/sdk-run", s["name"]
top = c.top()
assert "PID" in top["Titles"] and len(top["Processes"]) == 2, top
c.pause()
c.reload()
assert c.status == "paused" and c.attrs["State"]["Paused"] is True, c.attrs["State"]
c.unpause()
c.update(mem_limit="128m")
c.reload()
assert c.attrs["HostConfig"]["Memory"] == 128 * 1024 * 1024, c.attrs["HostConfig"]["Memory"]
c.rename("sdk-renamed")
c.reload()
assert c.name == "sdk-renamed", c.name
client.containers.run("busybox:sdk", ["true"], name="sdk-exited")
pruned = client.containers.prune()
assert len(pruned["ContainersDeleted"]) == 1, pruned
assert [x.name for x in client.containers.list(all=True)] == ["sdk-renamed"]
# commit: the new image holds the change and the given config
c.exec_run(["sh", "-c", "echo committed > /from-sdk"])
img = c.commit(repository="sdk-commit", tag="v1", message="by sdk", changes=['CMD ["cat", "/from-sdk"]'])
assert "sdk-commit:v1" in img.tags, img.tags
assert client.containers.run("sdk-commit:v1", remove=True) == b"committed\n"
assert img.attrs["Comment"] == "by sdk", img.attrs["Comment"]
c.remove(force=True)

print("ok")
