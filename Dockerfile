# The etcdgate image the Kubernetes manifests (deploy/kubernetes) run:
#   docker build -t ghcr.io/etcdgate/etcdgate:$(git describe --tags) .
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 make build VERSION=$(git describe --tags --always 2>/dev/null || echo dev)

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /src/bin/etcdgate /usr/local/bin/etcdgate
USER 65532:65532
EXPOSE 9390
ENTRYPOINT ["/usr/local/bin/etcdgate"]
CMD ["serve", "--listen-address", "0.0.0.0:9390", "--data-dir", "/var/lib/etcdgate"]
