# Two commands do everything: `make demo` and `make test`. Both create .venv first.
VENV := .venv
BIN := $(VENV)/bin
# The newest zarr needs Python >= 3.12: take the first interpreter that is new enough
# (pyenv's shims for versions that are not active fail the check and are skipped).
PYTHON ?= $(shell for p in python3.13 python3.12 $$HOME/.pyenv/versions/3.13*/bin/python3 \
	$$HOME/.pyenv/versions/3.12*/bin/python3 python3; do \
	"$$p" -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null && { echo "$$p"; break; }; done)

.PHONY: demo test lint bench serve clean

$(BIN)/.installed: pyproject.toml
	@test -n "$(PYTHON)" || { echo "Python >= 3.12 not found: install it (e.g. pyenv install 3.12) or pass PYTHON=/path/to/python3.12"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test,bench]'
	touch $@

demo: $(BIN)/.installed
	$(BIN)/python -m zarrstores.demo

test: $(BIN)/.installed
	bash scripts/install-ceph.sh
	$(BIN)/ruff check zarrstores tests benchmarks
	$(BIN)/python -m pytest -n 2 --dist loadfile --basetemp=.pytest-tmp -p no:cacheprovider $(PYTEST_ARGS)

lint: $(BIN)/.installed
	$(BIN)/ruff check zarrstores tests benchmarks
	$(BIN)/ruff format --check zarrstores tests benchmarks

bench: $(BIN)/.installed
	$(BIN)/python -m benchmarks.run

serve: $(BIN)/.installed
	$(BIN)/zarrstores serve

clean:
	rm -rf $(VENV) .venv-shoots .installed-venv .pytest-tmp build *.egg-info
