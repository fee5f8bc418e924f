# dotproxy as a container image: one static binary on scratch, with the CA
# bundle and the default configuration. See README.md, "Docker".
#
#   docker build -t dotproxy .
#
# Multi-arch: the build stage runs on the build machine's own platform and
# cross-compiles for the target (Go needs no emulation for that), so
#
#   docker buildx build --platform linux/amd64,linux/arm64,linux/arm/v7 .
#
# builds every image at native speed; the final stage has no RUN at all.
#
# Offline (CI, see .ci/docker-setup): run `go mod vendor` first so that the
# modules are in the build context, and name a local builder image:
#
#   docker build --network none --build-arg GO_IMAGE=dotproxy-builder:bookworm .

# Any bookworm image with Go at least go.mod's version and the CA bundle.
ARG GO_IMAGE=golang:1.26-bookworm

FROM --platform=$BUILDPLATFORM ${GO_IMAGE} AS build
ARG VERSION=dev
# BUILD_TIME (RFC 3339, e.g. from `date -u +%FT%TZ`) is the build time an
# unset clock is judged against (README, "Running on a router"); the
# context has no .git for Go to take the commit time from. Empty: the
# date committed in internal/buildtime.
ARG BUILD_TIME=
# Set by BuildKit from --platform (default: the build machine's own).
ARG TARGETOS TARGETARCH TARGETVARIANT
WORKDIR /src
# The modules come from vendor/ when the context has it, else from the
# module proxy. (No separate layer that downloads them from go.mod alone:
# it could not run offline, and there are only a handful to fetch.)
COPY . .
# /rootfs is the final image's whole file system, made here so that modes
# do not depend on the builder's umask and scratch needs one COPY.
#
# No file capability: in a container's own network namespace Docker lowers
# net.ipv4.ip_unprivileged_port_start to 0, so the non-root user binds port
# 53 with no capability at all and --cap-drop ALL just works. (A forced
# "+ep" capability would make the kernel refuse to start the binary under
# --cap-drop ALL.) On the host's network see README.md, "Docker".
#
# GOARM from the variant (linux/arm/v6, v7); GOMIPS=softfloat because
# router MIPS SoCs have no FPU (it means nothing to other architectures).
RUN if [ -f vendor/modules.txt ]; then mod=vendor; else mod=readonly; fi \
 && export GOOS="${TARGETOS:-$(go env GOOS)}" GOARCH="${TARGETARCH:-$(go env GOARCH)}" GOMIPS=softfloat \
 && if [ "$GOARCH" = arm ]; then export GOARM="${TARGETVARIANT#v}"; GOARM="${GOARM:-7}"; fi \
 && CGO_ENABLED=0 go build -mod="$mod" -trimpath \
        -ldflags "-s -w -X main.version=${VERSION} -X github.com/dotproxy/dotproxy/internal/buildtime.stamp=${BUILD_TIME}" \
        -o /rootfs/dotproxy ./cmd/dotproxy \
 && install -D -m 0444 /etc/ssl/certs/ca-certificates.crt /rootfs/etc/ssl/certs/ca-certificates.crt \
 && install -D -m 0444 config.yaml /rootfs/etc/dotproxy/config.yaml

FROM scratch
ARG VERSION=dev
LABEL org.opencontainers.image.title="dotproxy" \
      org.opencontainers.image.description="DNS-over-TLS forwarding proxy" \
      org.opencontainers.image.version="${VERSION}"
COPY --from=build /rootfs/ /
# Numeric: scratch has no /etc/passwd to look a name up in. 65532 is the
# "nonroot" user of the distroless images.
USER 65532:65532
EXPOSE 53/udp 53/tcp
# No shell in the image: the binary asks the running proxy itself (at the
# first listen address of /etc/dotproxy/config.yaml) and exits 0 or 1. Its
# own timeout is 5 s; the start period covers the first upstream dials.
HEALTHCHECK --interval=30s --timeout=10s --start-period=10s --retries=3 \
    CMD ["/dotproxy", "healthcheck"]
ENTRYPOINT ["/dotproxy"]
