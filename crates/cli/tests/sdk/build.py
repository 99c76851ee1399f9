"""docker-py's builder API (images.build, the low-level build stream,
prune_builds) against berth's daemon. argv: socket, busybox rootfs tar.
Prints "ok" when every assertion holds."""

import os
import sys
import tempfile

import docker

socket, rootfs_tar = sys.argv[1], sys.argv[2]
client = docker.DockerClient(base_url="unix://" + socket, version="1.41")
api = client.api

with open(rootfs_tar, "rb") as f:
    api.import_image_from_data(f.read(), repository="busybox", tag="sdk")

ctx = tempfile.mkdtemp()
with open(os.path.join(ctx, "Dockerfile"), "w") as f:
    f.write(
        "FROM busybox:sdk AS base\n"
        "ARG GREETING=hello\n"
        "COPY msg.txt /msg.txt\n"
        "RUN echo \"$GREETING $(cat /msg.txt)\" > /out.txt\n"
        "FROM base AS final\n"
        "LABEL stage=final\n"
        "CMD [\"cat\", \"/out.txt\"]\n"
    )
with open(os.path.join(ctx, "msg.txt"), "w") as f:
    f.write("world")

# images.build: the image, the log stream; build args, labels, target.
image, logs = client.images.build(
    path=ctx, tag="sdk/built:1", buildargs={"GREETING": "hi"}, labels={"by": "sdk"}
)
lines = "".join(chunk.get("stream", "") for chunk in logs)
assert "Step 1/8 : FROM busybox:sdk AS base" in lines, lines  # the labels are a step
assert "Successfully tagged sdk/built:1" in lines, lines
assert image.tags == ["sdk/built:1"], image.tags
assert image.labels == {"stage": "final", "by": "sdk"}, image.labels
out = client.containers.run("sdk/built:1", remove=True)
assert out == b"hi world\n", out

# The same build again comes from the cache, to the same image.
again, logs = client.images.build(path=ctx, tag="sdk/built:1", buildargs={"GREETING": "hi"}, labels={"by": "sdk"})
lines = "".join(chunk.get("stream", "") for chunk in logs)
assert again.id == image.id, (again.id, image.id)
assert lines.count("Using cache") == 6, lines

# --target: only the base stage.
base, _ = client.images.build(path=ctx, tag="sdk/base:1", target="base")
assert base.attrs["Config"]["Cmd"] is None, base.attrs["Config"]

# A failing RUN is a BuildError with the step's output and moves no tag.
with open(os.path.join(ctx, "Dockerfile"), "a") as f:
    f.write("RUN echo failing-step && exit 4\n")
try:
    client.images.build(path=ctx, tag="sdk/built:1", buildargs={"GREETING": "hi"}, labels={"by": "sdk"})
    raise AssertionError("a failing RUN built")
except docker.errors.BuildError as e:
    assert "returned a non-zero code: 4" in str(e), e
    assert any("failing-step" in c.get("stream", "") for c in e.build_log), e.build_log
assert client.images.get("sdk/built:1").id == image.id
assert client.containers.list(all=True) == [], client.containers.list(all=True)

# A Dockerfile that does not parse is refused before anything streams.
with open(os.path.join(ctx, "Dockerfile"), "w") as f:
    f.write("FROM busybox:sdk\nFROBNICATE now\n")
try:
    client.images.build(path=ctx)
    raise AssertionError("a bad Dockerfile built")
except docker.errors.APIError as e:
    assert e.status_code == 400 and "unknown instruction: FROBNICATE" in str(e), e
except docker.errors.BuildError as e:
    raise AssertionError("parse errors must be HTTP errors, not stream errors: %s" % e)

# prune_builds forgets the cache; the untagged steps go with it.
report = api.prune_builds()
assert report["CachesDeleted"], report
assert client.images.get("sdk/built:1").id == image.id, "prune removed a tagged image"

print("ok")
