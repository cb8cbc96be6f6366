# devenv's Makefile. `make setup up` on a new machine, `make test` for the tests.
GO        ?= go
BIN       := bin/devenv
PKGS      := ./...
# Integration tests create kind clusters and containers: one package at a time on small machines.
IT_FLAGS  ?= -p 1 -count=1 -timeout 75m
export DEVENV_REQUIRE_IMAGES ?= 1

.PHONY: all build generate setup up down status render test unit integration faults engine29 lint modules fmt bench clean

all: build

build: ## build bin/devenv
	$(GO) build -o $(BIN) ./cmd/devenv

generate: ## rebuild the generated files (the live-update supervisor binaries in internal/supervise/bin); commit them
	$(GO) generate ./internal/supervise

setup: ## install packages, start Docker, build missing stand-in images
	scripts/setup.sh

up: build ## bring the example environment up (devenv.yaml)
	$(BIN) up

down: build ## tear the example environment down
	$(BIN) down

status: build
	$(BIN) status

render: build ## print the example's manifests
	$(BIN) render

test: lint unit integration faults ## all tests (lint builds and vets the nested modules too); the slowest, faults, last

unit: ## unit tests (no Docker needed)
	$(GO) vet $(PKGS)
	$(GO) test -race -short -count=1 $(PKGS)
	# the heap figures of the memory test mean nothing under the race detector: it runs without
	$(GO) test -short -count=1 -run 'TestLoopMemoryIsFlatOverSaves' ./internal/devenv/

integration: build ## integration tests against real Docker and kind (needs `make setup`)
	$(BIN) images build   # every stand-in the tests use; seconds when current
	$(GO) test $(IT_FLAGS) -run 'TestIntegration' -skip 'TestIntegrationFault|TestIntegrationEngine29' $(PKGS)

# The fault and engine29 tests' whole -v output is kept in $(LOGS); their figures (lines "fault: ...",
# "engine29: ...") and the results are printed.
LOGS    ?= ci-logs
FIGURES := grep -E '(^|: )(fault|engine29): |^(--- FAIL|FAIL|ok |panic)'

faults: build ## fault tests (kill -9 of up in each phase, a killed node, Docker restarted, a save burst): the slowest, run last
	@mkdir -p $(LOGS); status=0; \
	$(GO) test $(IT_FLAGS) -v -run 'TestIntegrationFault' $(PKGS) > $(LOGS)/faults.log 2>&1 || status=$$?; \
	$(FIGURES) $(LOGS)/faults.log; [ $$status -eq 0 ] || tail -n 150 $(LOGS)/faults.log; echo "faults: exit $$status; whole output in $(LOGS)/faults.log"; exit $$status

# A second engine, Docker Engine 29 on containerd 2, built from Go module sources and run beside the
# first in its own network namespace (scripts/engine29.sh); the stand-ins reach it through a bundle.
ENGINE29_BUNDLE ?= /var/lib/devenv-engine29/bundle.tar.gz

engine29: build ## the smoke test (TestIntegrationEngine29) against Docker Engine 29, started beside the first engine
	scripts/engine29.sh start
	scripts/engine29.sh bundle $(ENGINE29_BUNDLE)
	@mkdir -p $(LOGS); status=0; DEVENV_ENGINE29_BUNDLE=$(ENGINE29_BUNDLE) scripts/engine29.sh exec \
		$(GO) test -p 1 -count=1 -timeout 40m -v -run 'TestIntegrationEngine29' $(PKGS) > $(LOGS)/engine29.log 2>&1 || status=$$?; \
	scripts/engine29.sh stop; $(FIGURES) $(LOGS)/engine29.log; [ $$status -eq 0 ] || tail -n 150 $(LOGS)/engine29.log; \
	echo "engine29: exit $$status; whole output in $(LOGS)/engine29.log"; exit $$status

lint: modules ## go vet, gofmt, go mod tidy -diff, every nested module, and golangci-lint when installed
	$(GO) vet $(PKGS)
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); exit 1)
	$(GO) mod tidy -diff
	@command -v golangci-lint >/dev/null && golangci-lint run || echo "golangci-lint not installed; skipped"

# Nested modules (examples/api, ...): each must build, vet and be tidy on its own.
MODULES := $(patsubst %/go.mod,%,$(filter-out go.mod,$(shell git ls-files '*go.mod')))

modules: ## go build, go vet and go mod tidy -diff in every nested module
	@set -e; for m in $(MODULES); do \
		echo "== $$m"; \
		(cd $$m && $(GO) build -o /dev/null ./... && $(GO) vet ./... && $(GO) mod tidy -diff); \
	done

fmt:
	gofmt -w $$(git ls-files '*.go')

bench: build ## benchmarks (see bench/)
	$(BIN) images build   # every stand-in the benchmarks use (the registry's too); seconds when current
	$(GO) test -run '^$$' -bench . -benchtime 1x -timeout 120m -v ./bench/

clean:
	rm -rf bin
