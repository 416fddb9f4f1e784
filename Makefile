# Two commands do everything on a fresh machine (see README): `make run` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?= -m "not slow"

.PHONY: install llm run test test-all lint clean

install: $(VENV)/.installed llm

llm:
	PYTHON=$(PYTHON) bash scripts/setup_llm.sh

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

run: install
	$(BIN)/medagent serve

lint: install
	$(BIN)/ruff check .

test: lint
	$(BIN)/pytest $(PYTEST_ARGS)

test-all:
	$(MAKE) test PYTEST_ARGS=""

clean:
	rm -rf $(VENV) .venv-llm var/llm .pytest_cache .ruff_cache .hypothesis
