# etcdgate — build, run, test.
GO        ?= go
BIN       := bin/etcdgate
PKGS      := ./...
# Packages whose concurrency the race detector must check.
RACE_PKGS := ./ingest/... ./tsdb/... ./api/... ./bench/... ./relabel/... ./evaluator/... ./probe/... ./ring/...
FUZZTIME  ?= 20s
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2

# The last release tag (v0.x.y) and the commits since: v0.3.0, v0.3.0-5-gabc1234[-dirty];
# "dev" without a tag. buildinfo reports it as a semantic version (cmd/etcdgate/version.go).
VERSION   ?= $(shell git describe --tags --match 'v[0-9]*.[0-9]*.[0-9]*' --dirty 2>/dev/null || echo dev)
BRANCH    ?= $(shell git rev-parse --abbrev-ref HEAD 2>/dev/null)
REVISION  ?= $(shell git rev-parse HEAD 2>/dev/null)
LDFLAGS   := -X main.version=$(VERSION) -X main.branch=$(BRANCH) -X main.revision=$(REVISION) \
             -X main.buildUser=$(shell whoami)@$(shell hostname) \
             -X main.buildDate=$(shell date -u +%Y%m%d-%H:%M:%S)

.PHONY: prometheus3 build run test test-race bench bench-go bench-query fuzz lint vet fmt-check staticcheck clean

build:
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/etcdgate

# Prometheus 3, built from the Go module proxy (no UI assets): the remote
# write 2.0 sender and remote read client of the integration tests
# (internal/testbin.Prometheus3). About 6 minutes on 2 cores, once.
PROM3_VERSION := v0.316.0
PROM3         := $(shell $(GO) env GOPATH)/bin/prometheus3
prometheus3:
	@if [ ! -x $(PROM3) ]; then \
	  tmp=$$(mktemp -d) && GOBIN=$$tmp $(GO) install github.com/prometheus/prometheus/cmd/prometheus@$(PROM3_VERSION) && \
	  mkdir -p $$(dirname $(PROM3)) && mv $$tmp/prometheus $(PROM3) && rmdir $$tmp; \
	fi
	@$(PROM3) --version | head -1

# The gateway on the embedded defaults: one node, state under ./data,
# listening on 127.0.0.1:9390.
run: build
	./$(BIN) serve

# Unit and integration tests, then the race detector on the concurrent
# packages. Integration tests run Debian's prometheus, promtool and
# prometheus-alertmanager (.ci/run installs them); a missing one fails them.
test:
	$(GO) test -count=1 $(PKGS)
	$(GO) test -count=1 -race $(RACE_PKGS)

# The standard capacity scenario (bench/run-standard.sh): a fresh
# etcdgate takes ~1,000,000 series of a synthetic etcd fleet, steady for
# 5 minutes; prints the table, writes bin/bench/standard.{json,svg}.
# BENCH_FLAGS adds `etcdgate bench` flags; BENCH_SCENARIO=10m runs the
# ten-million-series scenario (~10,000,000 series for 4 minutes; about
# 8 GiB of memory for node and generator), and with
# BENCH_FLAGS='--duration 33m' long enough for the open chunks to fill
# and close as in production (at 15 s a chunk holds 30 minutes). Not part
# of `make test`.
BENCH_FLAGS ?=
BENCH_SCENARIO ?= standard
bench: build
	SCENARIO=$(BENCH_SCENARIO) BENCH_OUT=bin/bench bench/run-standard.sh ./$(BIN) $(BENCH_FLAGS)

# Micro-benchmarks of the write path (decode, validate, head append).
bench-go:
	$(GO) test -run '^$$' -bench . -benchmem -benchtime 2s ./ingest/... ./tsdb/...

# Query engine benchmarks: etcd SLO queries (error ratio, p99 latency,
# leader changes) over 100k series, with this engine and Prometheus's on
# the same data. QUERY_BENCH='Query/series=1M' for the 1M-series fleet
# (loading it into both stores takes minutes and ~8 GiB).
QUERY_BENCH ?= Query/series=100k
bench-query:
	$(GO) test -run '^$$' -bench '$(QUERY_BENCH)' -benchmem -benchtime 10x -timeout 60m ./evaluator/

# A short run of every fuzz target; FUZZTIME=5m for a longer one.
fuzz:
	@set -e; for pkg in $$($(GO) list ./...); do \
	  for target in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "fuzz $$pkg $$target"; \
	    $(GO) test -run '^$$' -fuzz "^$$target$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; \
	done

lint: fmt-check vet staticcheck

fmt-check:
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet $(PKGS)

staticcheck:
	$(GO) run $(STATICCHECK) $(PKGS)

clean:
	rm -rf bin
