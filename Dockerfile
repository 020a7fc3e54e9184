# syntax=docker/dockerfile:1
#
# The tokencache command in a small image that runs as a non-root user.
#
#   docker build -t tokencache:local .
#   docker run --rm tokencache:local oauth-server --addr :8080
#
# docker-compose.yml builds it for its oauth and worker services.

# --- build -----------------------------------------------------------------
FROM golang:1.26 AS build
WORKDIR /src

# Modules first, so that a source change does not download them again.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download

COPY . .
# A static binary (no cgo), without paths of the build machine or debug data.
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath -buildvcs=false -ldflags="-s -w" \
        -o /out/tokencache ./cmd/tokencache
# An empty directory for the grant code that oauth-server hands to the
# workers in docker-compose.yml; the runtime image has no shell to make it.
RUN mkdir -p /out/shared

# --- runtime ---------------------------------------------------------------
# Distroless "static": CA certificates, tzdata and /etc/passwd, no shell and
# no package manager. The :nonroot tag runs as uid/gid 65532.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/tokencache /usr/local/bin/tokencache
COPY --from=build --chown=65532:65532 /out/shared /shared
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/tokencache"]
CMD ["help"]
