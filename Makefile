# The two commands a newcomer needs: `make demo` and `make test`. Everything else is set up on the way.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
UV_VERSION := 0.13.9

GO ?= $(shell command -v go || echo /usr/local/go/bin/go)

# Deployment and operations tools, built from the Go module proxy into .tools/bin (once; the Go build
# cache makes a rebuild on the same machine take seconds). A stamp per version rebuilds on a bump.
TOOLS := $(abspath .tools/bin)
HELM_VERSION := v3.22.0
KUSTOMIZE_VERSION := v5.7.1
PROMTOOL_VERSION := v0.316.0
GRPCURL_VERSION := v1.9.4
TOOL_STAMPS := $(TOOLS)/.helm-$(HELM_VERSION) $(TOOLS)/.kustomize-$(KUSTOMIZE_VERSION) \
	$(TOOLS)/.promtool-$(PROMTOOL_VERSION) $(TOOLS)/.grpcurl-$(GRPCURL_VERSION)

.PHONY: demo shop test test-fast test-go system-packages bench genproto genproto-go clean tools grpcurl

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	$(VENV)/bin/uv pip install --quiet --python $(PY) -r requirements-dev.txt
	touch $@

## demo: start the dev stack and the service, generate a cart image with live progress, save it
demo: $(VENV)/.installed
	$(PY) -m devstack.demo $(ARGS)

## shop: the demo shop's cart page with "Generate image" (frontend kit + dev stack + service); prints its URL
shop: $(VENV)/.installed
	$(PY) -m devstack.shop

# pytest workers (pytest-xdist): every test takes free loopback ports and its own tmp_path, a module's tests
# run on one worker (its shared service started once). Three on a 2-core machine: about two thirds of the
# suite's time is spent waiting (leases, deadlines, peers held on purpose), which a third worker overlaps;
# `make test PYTEST_WORKERS=0` runs it in one process.
PYTEST_WORKERS ?= 3

## test: the whole test suite (what CI runs): system packages if missing, the kit's Go tests, then pytest
test: system-packages $(VENV)/.installed tools
	$(MAKE) test-go
	$(PY) -m pytest -q -n $(PYTEST_WORKERS) --dist loadfile

## test-fast: the in-memory tests (marker `fast`: no servers, no processes), for the edit-test loop
test-fast: $(VENV)/.installed
	$(PY) -m pytest -q -m fast

## system-packages: chromium, redis-server (and python3-venv for Debian's python3) when missing; before .venv
system-packages:
	PYTHON=$(PYTHON) .ci/install-system-packages

## tools: helm, kustomize, promtool and grpcurl at pinned versions in .tools/bin (first build a few minutes)
tools: $(TOOL_STAMPS)

## grpcurl: only grpcurl (.tools/bin/grpcurl), for the README's examples
grpcurl: $(TOOLS)/.grpcurl-$(GRPCURL_VERSION)

$(TOOLS)/.helm-$(HELM_VERSION):
	GOBIN=$(TOOLS) GOFLAGS=-trimpath $(GO) install helm.sh/helm/v3/cmd/helm@$(HELM_VERSION)
	touch $@
$(TOOLS)/.kustomize-$(KUSTOMIZE_VERSION):
	GOBIN=$(TOOLS) GOFLAGS=-trimpath $(GO) install sigs.k8s.io/kustomize/kustomize/v5@$(KUSTOMIZE_VERSION)
	touch $@
$(TOOLS)/.promtool-$(PROMTOOL_VERSION):
	GOBIN=$(TOOLS) GOFLAGS=-trimpath $(GO) install github.com/prometheus/prometheus/cmd/promtool@$(PROMTOOL_VERSION)
	touch $@
$(TOOLS)/.grpcurl-$(GRPCURL_VERSION):
	GOBIN=$(TOOLS) GOFLAGS=-trimpath $(GO) install github.com/fullstorydev/grpcurl/cmd/grpcurl@$(GRPCURL_VERSION)
	touch $@

## test-go: the frontend kit's Go tests (modules come from the Go module proxy on first run)
test-go:
	cd frontend-kit && $(GO) vet ./... && $(GO) test ./...

## bench: benchmark scripts (print numbers; not part of the tests)
bench: $(VENV)/.installed
	$(PY) benchmarks/bench_uploads.py
	$(PY) benchmarks/bench_generation.py
	$(PY) benchmarks/bench_operations.py
	$(PY) benchmarks/bench_capacity.py
	$(PY) benchmarks/bench_collage.py

## genproto: regenerate genproto/ from protos/
genproto: $(VENV)/.installed
	PYTHON=$(PY) ./genproto.sh

## genproto-go: regenerate frontend-kit/internal/genproto (protoc plugins pinned as tools in its go.mod)
genproto-go: $(VENV)/.installed
	PYTHON=$(abspath $(PY)) frontend-kit/genproto.sh

clean:
	rm -rf $(VENV) out .pytest_cache .hypothesis .tools
