# Canopy — run `make help` for the targets.
GO ?= go
BIN := bin

.PHONY: help build run test test-short lint fmt bench peers check proto

help: ## Show this help.
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  %-12s %s\n", $$1, $$2}'

build: ## Build the canopy binary into bin/.
	$(GO) build -o $(BIN)/canopy ./cmd/canopy

run: ## Start the complete single-process Canopy (data under ./data, HTTP on :9009).
	$(GO) run ./cmd/canopy

peers: ## Install the pinned third-party programs the tests use (Prometheus, Alertmanager, memcached, MinIO, telemetrygen) and the protobuf generators.
	bash tools/install-peers.sh
	@# The tests do not need protoc: a machine without it still tests.
	bash tools/install-protoc.sh || echo "peers: protoc not installed; make proto and make check need it" >&2

proto: ## Regenerate the Go code of the internal gRPC contracts (pkg/rpc/**/*.proto).
	bash tools/install-protoc.sh
	bash tools/genproto.sh

test: peers ## Run every test: unit, PromQL scripts, integration (builds and starts the real binaries).
	$(GO) test -count=1 -timeout 40m ./...

test-short: ## Unit tests only (no real binaries, no peers).
	$(GO) test -short -count=1 ./...

lint: ## go vet and a gofmt check.
	@# stdmethods is off: Prometheus's chunkenc.Iterator has Seek(int64) ValueType,
	@# which vet mistakes for a wrong io.Seeker.
	$(GO) vet -stdmethods=false ./...
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

fmt: ## Format the code.
	gofmt -w $$(git ls-files '*.go')

check: lint ## Check generated files (canopy -help golden file, the gRPC contracts' generated code).
	$(GO) test -count=1 -run TestHelpGolden ./cmd/canopy
	bash tools/install-protoc.sh
	@tmp=$$(mktemp -d); trap 'rm -rf $$tmp' EXIT; bash tools/genproto.sh $$tmp; \
	for f in $$(cd $$tmp && find . -name '*.pb.go'); do \
		cmp -s $$tmp/$$f pkg/rpc/$$f || { echo "pkg/rpc/$$f is stale: run make proto"; exit 1; }; \
	done; \
	stale=$$(cd pkg/rpc && find . -name '*.pb.go' | while read -r f; do [ -f $$tmp/$$f ] || echo $$f; done); \
	if [ -n "$$stale" ]; then echo "generated files without a .proto: $$stale"; exit 1; fi

bench: ## Go benchmarks of the hot paths, the write load harness and the store benchmark, each against Prometheus, the logs benchmark against VictoriaLogs, the rule evaluation benchmark against Prometheus, and the hostile-input harness.
	$(GO) test -run '^$$' -bench . -benchmem ./pkg/...
	bash tools/bench.sh
	bash tools/storebench.sh
	bash tools/logbench.sh
	bash tools/tracebench.sh
	bash tools/rulebench.sh
	bash tools/attack.sh
