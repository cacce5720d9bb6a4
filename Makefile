# playlist-tools: every target sets up .venv by itself on first use.
#   make lab    JupyterLab on notebooks/, against the embedded PostgreSQL
#   make test   ruff, the import-linter contracts (pyproject.toml), then the whole test suite (what .ci/run runs)
#   make bench  the loading benchmarks (bench/results.md), then the before-you-migrate timings
#   make docs   the documentation site in site/ (mkdocs, strict), to open in a browser offline

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip install --quiet --disable-pip-version-check
# JupyterLab refuses to run as root unless told; containers often are root.
LAB_OVERRIDES := $(VENV)/share/jupyter/lab/settings/overrides.d/playlist-tools.json
ALLOW_ROOT := $(if $(filter 0,$(shell id -u)),--allow-root,)

.PHONY: lab test bench docs clean

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

$(VENV)/.installed-docs: $(VENV)/.installed
	$(PIP) -e ".[notebooks,test,docs]"
	touch $@

# Two browser scripts come from the npm registry at build time, so the repo holds no
# minified copies and the site loads nothing from a CDN: Mermaid draws the diagrams, and
# iframe-worker lets Material's search run from file://. `npm pack` fetches the one tarball
# of the pinned version and checks its integrity (no node_modules); its LICENSE travels along.
VENDOR        := docs/assets/vendor
MERMAID       := mermaid@12.3.0
IFRAME_WORKER := iframe-worker@1.0.4
VENDORED      := $(VENDOR)/mermaid.min.js $(VENDOR)/iframe-worker-shim.js

# $(call npm_vendor,PACKAGE@VERSION,FILE IN ITS TARBALL,TARGET)
define npm_vendor
	@command -v npm >/dev/null || { echo "make docs needs npm (Debian: apt-get install npm) to fetch $(1)"; exit 1; }
	mkdir -p $(@D)
	tmp=$$(mktemp -d) && \
	  npm pack --silent --pack-destination "$$tmp" $(1) >/dev/null && \
	  tar -xzf "$$tmp"/*.tgz -C "$$tmp" package/$(2) package/LICENSE && \
	  mv "$$tmp/package/LICENSE" $(3).LICENSE && \
	  mv "$$tmp/package/$(2)" $(3) && touch $(3) && \
	  rm -rf "$$tmp"
endef

$(VENDOR)/mermaid.min.js: Makefile
	$(call npm_vendor,$(MERMAID),dist/mermaid.min.js,$@)

$(VENDOR)/iframe-worker-shim.js: Makefile
	$(call npm_vendor,$(IFRAME_WORKER),shim/index.js,$@)

docs: $(VENV)/.installed-docs $(VENDORED)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict  # Material 9 is in maintenance: docs/dependencies.md

lab: $(VENV)/.installed $(LAB_OVERRIDES)
	$(BIN)/playlist-tools db start
	$(BIN)/jupyter lab --notebook-dir=notebooks $(ALLOW_ROOT)

test: $(VENV)/.installed $(LAB_OVERRIDES)
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/python -m pytest

bench: $(VENV)/.installed-bench  # make bench BENCH_ARGS=--quick: small sizes, print only
	$(BIN)/python bench/run.py $(BENCH_ARGS)
	$(BIN)/python bench/before_you_migrate.py $(if $(findstring --quick,$(BENCH_ARGS)),--runs 1 --output -,)

clean:
	rm -rf $(VENV) build *.egg-info site docs/assets/vendor
