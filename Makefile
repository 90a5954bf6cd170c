# airlock — build, test, benchmark, demo.
GO      ?= go
BIN     ?= bin/airlock
export CGO_ENABLED = 0
export OTEL_TRACES_EXPORTER = none

.PHONY: all build test test-tools vet fmt bench demo clean

all: build

build:
	$(GO) build -trimpath -o $(BIN) ./cmd/airlock

vet:
	$(GO) vet ./...

fmt:
	gofmt -l -w $$(git ls-files '*.go')

# Unit, golden and integration tests (real registry, skopeo, podman).
test: build test-tools
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 15m ./...

# The real kube-apiserver and etcd of the live-cluster tests, built once
# through the module proxy into the user cache (a cold build takes ~15-25
# minutes on 2 cores): outside the test run, so it never counts against
# its timeout; a no-op once cached.
test-tools:
	$(GO) test -count=1 -timeout 60m -run '^TestBinaries$$' ./internal/testutil/kubeapi

bench: build
	./hack/bench.sh

demo: build
	./hack/demo.sh

clean:
	rm -rf bin
