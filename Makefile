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
FAILOVER_BASE_PORT ?= 7301
# Scenarios whose gates `make chaos` / `make chaos-short` enforce ("all", "none" or names; see RELIABILITY.md).
CHAOS_GATE ?= baseline,cuts,stall-3s,stall-6s,refuse,sigstop-holder,kill-after-lock,kill-before-send,kill-random,restart,rollback
CHAOS_ARGS ?=

.PHONY: help build test test-redis test-cluster test-sql bench-durable bench bench-ratios bench-100k lint compose-check demo chaos chaos-short soak
.PHONY: bench-scale bench-scale-cluster bench-l1

help:
	@echo "Targets:"
	@echo "  build         go build ./..."
	@echo "  test          unit tests with -race against embedded miniredis (no real Redis needed)"
	@echo "  test-redis    same suites against a real Redis at REDIS_URL (default $(REDIS_URL))"
	@echo "  test-sql      sqlstore, zohofmt and redisstore with a record against PostgreSQL and MariaDB (POSTGRES_URL, MYSQL_URL)"
	@echo "  test-cluster  same suites against a throwaway 3-node Redis Cluster (scripts/redis-cluster.sh)"
	@echo "  test-failover SIGKILL a Sentinel-managed master mid-load; count lost saves (scripts/redis-failover.sh, FAILOVER_BASE_PORT=$(FAILOVER_BASE_PORT))"
	@echo "  bench         benchmarks: BENCH=regex BENCHTIME=2s COUNT=5"
	@echo "  bench-ratios  the figures of BENCHMARKS.md: ratios to a raw HGETALL and waiter latency, on REDIS_URL"
	@echo "  bench-durable the record's figures of BENCHMARKS.md part 3: Redis with a record (SQLite, POSTGRES_URL) vs alone"
	@echo "  bench-100k    memory per token and GetTokens over 100,000 tokens, on REDIS_URL"
	@echo "  bench-scale   1k/10k/100k/1M tokens on a private redis-server (port 7710): memory, lookups, walk, DeleteTokens"
	@echo "  bench-scale-cluster  the same on a private 3-node Cluster (ports from 7701), up to 100k tokens"
	@echo "  bench-l1      local cache: Token with WithLocalCache vs raw HGETALL, invalidation latency, on REDIS_URL"
	@echo "  lint          gofmt, go vet, staticcheck (scripts/lint.sh)"
	@echo "  compose-check validate docker-compose.yml with the Compose-spec loader (tools/composecheck)"
	@echo "  demo          go run ./cmd/tokencache demo \$$DEMO_ARGS"
	@echo "  chaos         the fault suite (RELIABILITY.md), minutes; gates: CHAOS_GATE=$(CHAOS_GATE)"
	@echo "  chaos-short   its CI version (under 3 minutes)"
	@echo "  soak          model-based test with faults for SOAK (default $(SOAK)) on REDIS_URL, then on a throwaway Cluster"

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

# Real PostgreSQL and MariaDB (scripts/ensure-sql.sh starts them); a missing server fails, never skips.
POSTGRES_URL ?= postgres://root@127.0.0.1:5432/test?sslmode=disable
MYSQL_URL    ?= mysql://root@127.0.0.1:3306/test
test-sql:
	env -u TOKENCACHE_CLUSTER_ADDRS TOKENCACHE_POSTGRES_URL='$(POSTGRES_URL)' TOKENCACHE_MYSQL_URL='$(MYSQL_URL)' TOKENCACHE_REQUIRE_DB=1 \
		REDIS_URL='$(REDIS_URL)' TOKENCACHE_REQUIRE_REDIS=1 \
		$(GO) test -race -count=1 ./sqlstore/ ./internal/zohofmt/ ./internal/sqltest/
	env -u TOKENCACHE_CLUSTER_ADDRS TOKENCACHE_POSTGRES_URL='$(POSTGRES_URL)' TOKENCACHE_MYSQL_URL='$(MYSQL_URL)' TOKENCACHE_REQUIRE_DB=1 \
		REDIS_URL='$(REDIS_URL)' TOKENCACHE_REQUIRE_REDIS=1 \
		$(GO) test -race -count=1 -run 'Durable' ./redisstore/

# BENCHMARKS.md part 3: what the durable record costs, ratios measured in one run.
bench-durable:
	REDIS_URL='$(REDIS_URL)' TOKENCACHE_POSTGRES_URL='$(POSTGRES_URL)' TOKENCACHE_BENCH_RATIOS=1 \
		$(GO) test -count=1 -v -timeout 10m -run TestDurableBenchRatios ./redisstore/

# Throwaway Redis Cluster on spare loopback ports; always torn down, test exit status kept.
test-cluster:
	dir=$$(mktemp -d "$${TMPDIR:-/tmp}/tokencache-cluster.XXXXXX"); \
	trap 'bash scripts/redis-cluster.sh stop "$$dir"' EXIT; trap 'exit 130' INT TERM HUP; \
	bash scripts/redis-cluster.sh start "$$dir" >/dev/null; \
	addrs=$$(cat "$$dir/addrs"); \
	echo "TOKENCACHE_CLUSTER_ADDRS=$$addrs"; \
	env -u REDIS_URL TOKENCACHE_CLUSTER_ADDRS="$$addrs" TOKENCACHE_REQUIRE_REDIS=1 \
		$(GO) test -race -count=1 $(PKGS)

# Master, replica and three Sentinels on FAILOVER_BASE_PORT..+4; always torn down, test exit status kept.
test-failover:
	dir=$$(mktemp -d "$${TMPDIR:-/tmp}/tokencache-failover.XXXXXX"); \
	trap 'bash scripts/redis-failover.sh stop "$$dir"' EXIT; trap 'exit 130' INT TERM HUP; \
	BASE_PORT='$(FAILOVER_BASE_PORT)' bash scripts/redis-failover.sh start "$$dir" >/dev/null; \
	set -a; . "$$dir/env"; set +a; \
	env -u REDIS_URL -u TOKENCACHE_CLUSTER_ADDRS $(GO) test -race -count=1 -v -timeout 10m \
		-run 'TestFailover|TestReplicaAcks' ./redisstore/

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

# Local cache with fleet-wide invalidation (issue 11): throughput vs raw HGETALL, invalidation latency.
bench-l1:
	REDIS_URL='$(REDIS_URL)' TOKENCACHE_BENCH_RATIOS=1 $(GO) test -count=1 -v -timeout 10m \
		-run 'TestLocalCacheBenchRatio|TestLocalCacheInvalidation|TestLocalCacheMissedAnnouncements' ./refresher/

lint:
	bash scripts/lint.sh

# docker-compose.yml cannot run here (no Docker engine): load it with the Compose-spec loader instead.
compose-check:
	cd tools/composecheck && $(GO) vet ./... && $(GO) test -count=1 ./... && $(GO) run . ../../docker-compose.yml

demo:
	$(GO) run ./cmd/tokencache demo $(DEMO_ARGS)

# The chaos suite (internal/chaos): its own redis-server processes, fault proxy, OAuth server and
# worker processes on loopback ports 7600-7699. Fails when a scenario in CHAOS_GATE fails its gate.
chaos chaos-short:
	dir=$$(mktemp -d "$${TMPDIR:-/tmp}/tokencache-chaosrun.XXXXXX"); trap 'rm -rf "$$dir"' EXIT; \
	$(GO) build -o "$$dir/chaosrun" ./internal/chaos/chaosrun; \
	"$$dir/chaosrun" -gate '$(CHAOS_GATE)' $(if $(filter chaos-short,$@),-short) $(CHAOS_ARGS)

# Model-based soak (issue 7): random seeds, a fault at every Redis command of half the operations,
# checked against memstore; SOAK long on REDIS_URL, then as long on a throwaway Cluster
# (BASE_PORT picks its ports). Prints operation and fault counts; the first failure stops it.
SOAK       ?= 10m
SOAK_FLAGS ?=
soak:
	env -u TOKENCACHE_CLUSTER_ADDRS REDIS_URL='$(REDIS_URL)' TOKENCACHE_REQUIRE_REDIS=1 TOKENCACHE_SOAK='$(SOAK)' \
		$(GO) test -count=1 -v -timeout 0 $(SOAK_FLAGS) -run '^TestModel$$' ./redisstore/ | grep -v '^=== RUN'
	dir=$$(mktemp -d "$${TMPDIR:-/tmp}/tokencache-soak.XXXXXX"); \
	trap 'bash scripts/redis-cluster.sh stop "$$dir"' EXIT; trap 'exit 130' INT TERM HUP; \
	bash scripts/redis-cluster.sh start "$$dir" >/dev/null; \
	env -u REDIS_URL TOKENCACHE_CLUSTER_ADDRS="$$(cat "$$dir/addrs")" TOKENCACHE_REQUIRE_REDIS=1 TOKENCACHE_SOAK='$(SOAK)' \
		$(GO) test -count=1 -v -timeout 0 $(SOAK_FLAGS) -run '^TestModel$$' ./redisstore/ | grep -v '^=== RUN'
