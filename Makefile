# airlock — build, test, benchmark, demo.
GO      ?= go
BIN     ?= bin/airlock
export CGO_ENABLED = 0
export OTEL_TRACES_EXPORTER = none

.PHONY: all build test vet fmt bench demo clean

all: build

build:
	$(GO) build -trimpath -o $(BIN) ./cmd/airlock

vet:
	$(GO) vet ./...

fmt:
	gofmt -l -w $$(git ls-files '*.go')

# Unit, golden and integration tests (real registry, skopeo, podman).
test: build
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 15m ./...

bench: build
	./hack/bench.sh

demo: build
	./hack/demo.sh

clean:
	rm -rf bin
