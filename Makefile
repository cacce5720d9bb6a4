# playlist-tools: every target sets up .venv by itself on first use.
#   make lab    JupyterLab on notebooks/, against the embedded PostgreSQL
#   make test   ruff, then the whole test suite (what .ci/run runs)
#   make bench  the loading benchmarks (bench/results.md), then the before-you-migrate timings

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip install --quiet --disable-pip-version-check
# JupyterLab refuses to run as root unless told; containers often are root.
LAB_OVERRIDES := $(VENV)/share/jupyter/lab/settings/overrides.d/playlist-tools.json
ALLOW_ROOT := $(if $(filter 0,$(shell id -u)),--allow-root,)

.PHONY: lab test bench clean

$(BIN)/python:
	$(PYTHON) -c 'import sys; sys.exit("playlist-tools needs Python 3.10+, found " + sys.version.split()[0]) if sys.version_info < (3, 10) else None'
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(PIP) -e ".[notebooks,test]"
	touch $@

# JupyterLab's settings for this .venv only (never your home): no "get notified about Jupyter news?" pop-up,
# no news or update requests. overrides.d/ is where JupyterLab reads a package's defaults from.
$(LAB_OVERRIDES): jupyter/overrides.json | $(BIN)/python
	mkdir -p $(@D)
	cp jupyter/overrides.json $@

$(VENV)/.installed-bench: $(VENV)/.installed
	$(PIP) -e ".[notebooks,test,bench]"
	touch $@

lab: $(VENV)/.installed $(LAB_OVERRIDES)
	$(BIN)/playlist-tools db start
	$(BIN)/jupyter lab --notebook-dir=notebooks $(ALLOW_ROOT)

test: $(VENV)/.installed $(LAB_OVERRIDES)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

bench: $(VENV)/.installed-bench  # make bench BENCH_ARGS=--quick: small sizes, print only
	$(BIN)/python bench/run.py $(BENCH_ARGS)
	$(BIN)/python bench/before_you_migrate.py $(if $(findstring --quick,$(BENCH_ARGS)),--runs 1 --output -,)

clean:
	rm -rf $(VENV) build *.egg-info
