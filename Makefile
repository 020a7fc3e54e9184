# tokencache — build, test and lint entry points. Run `make` or `make help` for the list.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c

GO        ?= go
PKGS      ?= ./...
REDIS_URL ?= redis://127.0.0.1:6379/0
BENCH     ?= .
BENCHTIME ?=
COUNT     ?= 1
DEMO_ARGS ?=

.PHONY: help build test test-redis test-cluster bench bench-ratios bench-100k lint compose-check demo
.PHONY: bench-scale bench-scale-cluster bench-l1

help:
	@echo "Targets:"
	@echo "  build         go build ./..."
	@echo "  test          unit tests with -race against embedded miniredis (no real Redis needed)"
	@echo "  test-redis    same suites against a real Redis at REDIS_URL (default $(REDIS_URL))"
	@echo "  test-cluster  same suites against a throwaway 3-node Redis Cluster (scripts/redis-cluster.sh)"
	@echo "  bench         benchmarks: BENCH=regex BENCHTIME=2s COUNT=5"
	@echo "  bench-ratios  the figures of BENCHMARKS.md: ratios to a raw HGETALL and waiter latency, on REDIS_URL"
	@echo "  bench-100k    memory per token and GetTokens over 100,000 tokens, on REDIS_URL"
	@echo "  bench-scale   1k/10k/100k/1M tokens on a private redis-server (port 7710): memory, lookups, walk, DeleteTokens"
	@echo "  bench-scale-cluster  the same on a private 3-node Cluster (ports from 7701), up to 100k tokens"
	@echo "  bench-l1      local cache: Token with WithLocalCache vs raw HGETALL, invalidation latency, on REDIS_URL"
	@echo "  lint          gofmt, go vet, staticcheck (scripts/lint.sh)"
	@echo "  compose-check validate docker-compose.yml with the Compose-spec loader (tools/composecheck)"
	@echo "  demo          go run ./cmd/tokencache demo \$$DEMO_ARGS"

build:
	$(GO) build $(PKGS)

# Miniredis only: drop any real-Redis settings inherited from the environment.
test:
	env -u REDIS_URL -u TOKENCACHE_CLUSTER_ADDRS -u TOKENCACHE_REQUIRE_REDIS \
		$(GO) test -race -count=1 $(PKGS)

# Real standalone Redis; TOKENCACHE_REQUIRE_REDIS=1 (from the environment) turns skips into failures.
test-redis:
	env -u TOKENCACHE_CLUSTER_ADDRS REDIS_URL='$(REDIS_URL)' \
		$(GO) test -race -count=1 $(PKGS)

# Throwaway Redis Cluster on spare loopback ports; always torn down, test exit status kept.
test-cluster:
	dir=$$(mktemp -d "$${TMPDIR:-/tmp}/tokencache-cluster.XXXXXX"); \
	trap 'bash scripts/redis-cluster.sh stop "$$dir"' EXIT; trap 'exit 130' INT TERM HUP; \
	bash scripts/redis-cluster.sh start "$$dir" >/dev/null; \
	addrs=$$(cat "$$dir/addrs"); \
	echo "TOKENCACHE_CLUSTER_ADDRS=$$addrs"; \
	env -u REDIS_URL TOKENCACHE_CLUSTER_ADDRS="$$addrs" TOKENCACHE_REQUIRE_REDIS=1 \
		$(GO) test -race -count=1 $(PKGS)

bench:
	$(GO) test -run '^$$' -bench '$(BENCH)' -benchmem -count=$(COUNT) \
		$(if $(BENCHTIME),-benchtime=$(BENCHTIME)) $(PKGS)

# The project's bench command: each figure is a ratio to a baseline measured in the same run.
bench-ratios:
	REDIS_URL='$(REDIS_URL)' TOKENCACHE_BENCH_RATIOS=1 $(GO) test -count=1 -v -timeout 30m \
		-run 'TestBenchmarkRatios|TestRefresherBenchRatios|TestWaiterLatency|TestRefreshCallsPerExpiry' ./redisstore/ ./refresher/

bench-100k:
	REDIS_URL='$(REDIS_URL)' TOKENCACHE_BENCH_100K=1 $(GO) test -count=1 -v -timeout 30m -run TestMemoryPerToken ./redisstore/
	REDIS_URL='$(REDIS_URL)' TOKENCACHE_BENCH_100K=1 $(GO) test -count=1 -run '^$$' -bench GetTokens100k -benchtime 3x -timeout 30m ./redisstore/

# Scale figures of BENCHMARKS.md (issue 11) on a redis-server of their own, never the shared one.
bench-scale:
	bash scripts/bench-scale.sh

bench-scale-cluster:
	SCALE_CLUSTER=1 bash scripts/bench-scale.sh

lint:
	bash scripts/lint.sh

# docker-compose.yml cannot run here (no Docker engine): load it with the Compose-spec loader instead.
compose-check:
	cd tools/composecheck && $(GO) vet ./... && $(GO) test -count=1 ./... && $(GO) run . ../../docker-compose.yml

demo:
	$(GO) run ./cmd/tokencache demo $(DEMO_ARGS)
