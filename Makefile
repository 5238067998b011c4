# Set-up and everyday commands. Each target works alone on a fresh machine with Python 3.11.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: demo pictures test test-all lint docs clean node_modules

# The virtual environment: the CPU build of torch first (a plain `pip install torch` would pull
# gigabytes of CUDA packages), then this package with its extras (docs: the site, `make docs`).
$(BIN)/sketchrnn: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev,figures,web,docs,onnx]'
	touch $@

demo: $(BIN)/sketchrnn          ## the draw-together page with the built-in models (prints the URL; Ctrl-C stops it)
	$(BIN)/sketchrnn serve

pictures: $(BIN)/sketchrnn      ## draw PNG/SVG with the built-in shapes models (sketchrnn demo)
	$(BIN)/sketchrnn demo

test: $(BIN)/sketchrnn          ## the fast tests (the ones marked slow are skipped)
	$(BIN)/python -m pytest -q -m "not slow"

test-all: $(BIN)/sketchrnn node_modules/.package-lock.json  ## every test: the slow ones too (extension build, DDP, Node and Chromium, CLI runs, training); CI runs this
	$(BIN)/python -m pytest -q

# The npm packages pinned by package-lock.json: onnxruntime-node/-web, which sketchrnn.js runs on
# in the tests and benchmarks, and @magenta/sketch to compare with. ONNXRUNTIME_NODE_INSTALL=skip:
# onnxruntime-node's install script would fetch CUDA libraries from outside npm (its CPU
# library is in the package).
node_modules: node_modules/.package-lock.json
node_modules/.package-lock.json: package.json package-lock.json
	ONNXRUNTIME_NODE_INSTALL=skip npm ci --no-audit --no-fund
	touch $@

lint: $(BIN)/sketchrnn          ## ruff (lint and format) and mypy on src/
	$(BIN)/ruff check . && $(BIN)/ruff format --check . && $(BIN)/mypy

docs: $(BIN)/sketchrnn          ## the documentation site (guides + API reference) in build/docs; warnings are errors
	$(BIN)/sphinx-build -b html -W --keep-going -q docs build/docs

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis build/docs docs/api node_modules
