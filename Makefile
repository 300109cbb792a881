# The two commands a newcomer needs: `make demo` and `make test`. Everything else is set up on the way.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
UV_VERSION := 0.13.9

GO ?= $(shell command -v go || echo /usr/local/go/bin/go)

.PHONY: demo shop test test-go system-packages bench genproto genproto-go clean

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

## test: the whole test suite (what CI runs): system packages if missing, the kit's Go tests, then pytest
test: system-packages $(VENV)/.installed
	$(MAKE) test-go
	$(PY) -m pytest -q

## system-packages: chromium, redis-server (and python3-venv for Debian's python3) when missing; before .venv
system-packages:
	PYTHON=$(PYTHON) .ci/install-system-packages

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
	rm -rf $(VENV) out .pytest_cache .hypothesis
