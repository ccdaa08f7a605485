# syntax=docker/dockerfile:1
# The one AccountDB binary (serve, agent, migrate, pvesim, ...) in a small
# runtime image that runs as an unprivileged user.

FROM golang:1.26 AS build
WORKDIR /src
# Dependencies first: this layer is reused until go.mod or go.sum change.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
# Static binary (no cgo), no VCS stamping (.git is not in the build context).
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOFLAGS=-buildvcs=false \
    go build -trimpath -ldflags="-s -w" -o /out/accountdb ./cmd/accountdb

# Alpine rather than distroless: the API and agent healthchecks run
# `accountdb healthcheck`, but the simulator's needs a token header over HTTPS,
# which busybox wget (with ssl_client) sends; ca-certificates lets the agent
# verify a real Proxmox cluster's certificate.
FROM alpine:3.22
# /nats/* exist so that the named volumes the compose file mounts there start
# out owned by the unprivileged user (Docker copies the image's ownership).
RUN apk add --no-cache ca-certificates tzdata \
 && addgroup -S -g 10001 accountdb \
 && adduser -S -D -H -u 10001 -G accountdb -s /sbin/nologin accountdb \
 && mkdir -p /var/lib/accountdb /nats/keys /nats/server /nats/core /nats/agent \
 && chown accountdb:accountdb /var/lib/accountdb /nats/keys /nats/server /nats/core /nats/agent \
 && chmod 0700 /nats/keys /nats/core /nats/agent
COPY --from=build /out/accountdb /usr/local/bin/accountdb
ENV ACCOUNTDB_DATA_DIR=/var/lib/accountdb \
    ACCOUNTDB_HTTP_ADDR=0.0.0.0:8080
VOLUME /var/lib/accountdb
EXPOSE 8080
USER 10001:10001
ENTRYPOINT ["/usr/local/bin/accountdb"]
CMD ["serve"]
