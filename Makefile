# The two commands a newcomer needs: `make demo` and `make test`. Everything else is set up on the way.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
UV_VERSION := 0.13.9

.PHONY: demo test bench genproto clean

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	$(VENV)/bin/uv pip install --quiet --python $(PY) -r requirements-dev.txt
	touch $@

## demo: start the dev stack and the service, generate a cart image with live progress, save it
demo: $(VENV)/.installed
	$(PY) -m devstack.demo $(ARGS)

## test: the whole test suite (what CI runs)
test: $(VENV)/.installed
	$(PY) -m pytest -q

## bench: benchmark scripts (print numbers; not part of the tests)
bench: $(VENV)/.installed
	$(PY) benchmarks/bench_uploads.py
	$(PY) benchmarks/bench_generation.py
	$(PY) benchmarks/bench_collage.py

## genproto: regenerate genproto/ from protos/
genproto: $(VENV)/.installed
	PYTHON=$(PY) ./genproto.sh

clean:
	rm -rf $(VENV) out .pytest_cache .hypothesis
