# The two commands a newcomer needs: `make demo` and `make test`.
# Options reach the demo through ARGS, e.g. `make demo ARGS="--seconds 20 --json demo.json"`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint format protos bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip uv
	$(BIN)/uv pip install --python $(BIN)/python --quiet -e '.[all]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/mmer demo $(ARGS)

test: $(STAMP) lint
	$(BIN)/python -m pytest -q; rc=$$?; [ $$rc -eq 0 ] || [ $$rc -eq 5 ]

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

protos: $(STAMP)
	$(BIN)/python tools/protogen.py protos

bench: $(STAMP)
	$(BIN)/python -m bench.edge --json bench/edge.json

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
