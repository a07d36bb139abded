# Set-up and everyday targets. `make demo` and `make test` each install whatever is missing:
# Debian's ngspice and libngspice0-dev (PySpice loads the unversioned libngspice.so from -dev)
# and chromium,
# a virtual environment in .venv, and the package with its test extras.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
PYTEST_ARGS ?=
NGSPICE_MODE ?= required

.PHONY: demo test fuzz system venv bench lint clean

# The main job: a small design study (digits MLP in situ on 16..128 tiles, 0 and 2.5 Ω wires,
# SSM vs sgd-pulse) on a local Dask cluster, then its report; see `cosim demo --help`.
DEMO_DIR ?= demo
demo: $(STAMP)
	$(BIN)/cosim demo --output-dir $(DEMO_DIR)

test: $(STAMP)
	$(BIN)/python -m pytest --ngspice=$(NGSPICE_MODE) $(PYTEST_ARGS)

# The fuzz tests at 10,000+ generated cases each (a nightly-style run; `make test` runs a few
# hundred of each): exit 0 or 2, never a traceback or an internal error.
fuzz: $(STAMP)
	HYPOTHESIS_PROFILE=fuzz $(BIN)/python -m pytest -m fuzz --ngspice=$(NGSPICE_MODE) $(PYTEST_ARGS)

# Debian packages: ngspice (+ -dev for the unversioned libngspice.so PySpice loads), binutils
# (`ld`, which verilogae links with), chromium (the report's headless-browser test).

system:
	@missing=""; \
	command -v ngspice >/dev/null 2>&1 || missing="$$missing ngspice"; \
	ldconfig -p | grep -q 'libngspice.so ' || missing="$$missing libngspice0-dev"; \
	command -v ld >/dev/null 2>&1 || missing="$$missing binutils"; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	if [ -n "$$missing" ]; then \
		echo "installing (apt):$$missing"; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing >/dev/null; \
	fi

$(STAMP): pyproject.toml | system
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip >/dev/null
	$(BIN)/python -m pip install -q -e '.[dev]'
	@touch $(STAMP)

venv: $(STAMP)

bench: $(STAMP)
	@for f in benchmarks/bench_*.py; do echo "== $$f"; $(BIN)/python $$f || exit 1; done

lint: $(STAMP)
	$(BIN)/ruff check cosim tests benchmarks examples

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
