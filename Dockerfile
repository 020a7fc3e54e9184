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
# .git stays out of the build context, so "tokencache version" learns the
# commit from build arguments:
#   docker build --build-arg VCS_REVISION=$(git rev-parse HEAD) \
#     --build-arg VCS_TIME=$(git show -s --format=%cI) --build-arg VERSION=v1.2.3 .
ARG VERSION=""
ARG VCS_REVISION=""
ARG VCS_TIME=""
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath -buildvcs=false \
        -ldflags="-s -w -X github.com/tokencache/tokencache/internal/version.linkedVersion=${VERSION} -X github.com/tokencache/tokencache/internal/version.linkedRevision=${VCS_REVISION} -X github.com/tokencache/tokencache/internal/version.linkedTime=${VCS_TIME}" \
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
