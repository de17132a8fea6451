# knowlearn: `make demo` runs the embedded default end to end; `make test` runs the tests.
# Both set up .venv first (CPU build of torch where no GPU is present).
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: setup demo test lint format slow clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml scripts/setup.sh
	bash scripts/setup.sh $(VENV)
	touch $@

demo: setup
	$(VENV)/bin/knowlearn demo

test: setup
	$(VENV)/bin/ruff check src tests bench
	$(PY) -m pytest $(PYTEST_ARGS)

slow: setup
	$(PY) -m pytest -m slow $(PYTEST_ARGS)

lint: setup
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench

format: setup
	$(VENV)/bin/ruff check --fix src tests bench
	$(VENV)/bin/ruff format src tests bench

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache .hypothesis
