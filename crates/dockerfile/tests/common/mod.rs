//! Realistic Dockerfiles shared by the integration tests.

#![allow(dead_code)]

/// A Go service: directives, meta ARGs, cache and bind mounts, two stages.
pub const GO_SERVICE: &str = r#"# syntax=docker/dockerfile:1.7
# check=error=true

ARG GO_VERSION=1.22
ARG ALPINE_VERSION=3.19

FROM --platform=$BUILDPLATFORM golang:${GO_VERSION}-alpine${ALPINE_VERSION} AS Build
WORKDIR /src
ENV CGO_ENABLED=0 \
    GOFLAGS="-trimpath -mod=readonly"
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build,sharing=locked \
    go mod download
ARG TARGETOS TARGETARCH
RUN --mount=type=bind,target=. \
    # the build cache again
    --mount=type=cache,target=/root/.cache/go-build \
    GOOS=$TARGETOS GOARCH=$TARGETARCH go build -ldflags="-s -w" -o /out/app ./cmd/app

FROM gcr.io/distroless/static:nonroot AS runtime
LABEL org.opencontainers.image.title="app" \
      org.opencontainers.image.source=https://example.com/app
COPY --from=build --chown=nonroot:nonroot /out/app /usr/local/bin/app
USER nonroot:nonroot
EXPOSE 8080/tcp
HEALTHCHECK --interval=30s --timeout=3s --retries=3 CMD ["/usr/local/bin/app", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/app"]
CMD ["serve", "--addr=:8080"]
"#;

/// A Node app: heredocs for RUN and COPY, a secret mount, CRLF endings.
pub const NODE_APP: &str = "FROM node:20-bookworm-slim AS deps\r\n\
WORKDIR /app\r\n\
COPY package.json package-lock.json ./\r\n\
RUN --mount=type=cache,target=/root/.npm npm ci --omit=dev\r\n\
\r\n\
FROM node:20-bookworm-slim\r\n\
ENV NODE_ENV=production\r\n\
WORKDIR /app\r\n\
RUN <<EOF\r\n\
set -eux\r\n\
apt-get update\r\n\
apt-get install -y --no-install-recommends tini\r\n\
EOF\r\n\
COPY --from=deps /app/node_modules ./node_modules\r\n\
COPY --chmod=0755 <<-'SCRIPT' /usr/local/bin/start\r\n\
\t#!/bin/sh\r\n\
\texec node server.js \"$@\"\r\n\
\tSCRIPT\r\n\
COPY . .\r\n\
RUN --mount=type=secret,id=npmrc,target=/root/.npmrc,required \\\r\n\
    --network=none \\\r\n\
    node scripts/check.js\r\n\
STOPSIGNAL SIGTERM\r\n\
VOLUME [\"/app/data\"]\r\n\
ENTRYPOINT [\"tini\", \"--\"]\r\n\
CMD start\r\n";

/// Windows: the backtick escape, so backslashes are plain.
pub const WINDOWS: &str = r#"# escape=`
FROM mcr.microsoft.com/windows/servercore:ltsc2022
SHELL ["powershell", "-Command", "$ErrorActionPreference = 'Stop';"]
RUN Invoke-WebRequest -Uri https://example.com/tool.zip -OutFile C:\tool.zip ; `
    Expand-Archive C:\tool.zip -DestinationPath C:\tool
WORKDIR C:\tool
ENV PATH="C:\tool;C:\Windows\system32"
CMD ["C:\\tool\\tool.exe"]
"#;

/// A Python base image: legacy ENV, MAINTAINER, ONBUILD triggers.
pub const PYTHON_BASE: &str = r#"FROM python:3.12-slim as base
MAINTAINER Jane Doe <jane@example.com>
ENV PYTHONDONTWRITEBYTECODE 1
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=on
RUN pip install --upgrade pip
ONBUILD COPY requirements.txt /app/
ONBUILD RUN pip install -r /app/requirements.txt
ONBUILD ADD --chown=app . /app
HEALTHCHECK NONE
"#;

/// A C toolchain: tmpfs and ssh mounts, ADD with checksum and git, COPY
/// --parents and --exclude, a stage based on another.
pub const C_TOOLCHAIN: &str = r#"# syntax=docker/dockerfile:1-labs
FROM debian:bookworm AS toolchain
RUN --mount=type=tmpfs,target=/tmp,size=512m \
    --mount=type=ssh,required=true \
    --security=insecure \
    apt-get update && apt-get install -y build-essential
ADD --checksum=sha256:24454f830cdb571e2c4ad15481119c43b3cafd48dd869a9b2945d1036d1dc68d https://example.com/src.tar.gz /src/
ADD --keep-git-dir=true https://github.com/moby/buildkit.git#v0.13.0 /buildkit
COPY --parents --exclude=*.o src/**/*.c /build/

FROM toolchain AS test
RUN make -C /build test
"#;

pub const ALL: [&str; 5] = [GO_SERVICE, NODE_APP, WINDOWS, PYTHON_BASE, C_TOOLCHAIN];
