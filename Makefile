# Everything runs inside .venv, created from the project's own files.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install demo test lint docs clean

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

# Regenerate docs/api/ from the docstrings (tests/test_docs.py fails when it is stale).
docs: install
	$(BIN)/python scripts/gen_api_docs.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
