# Two commands do all set-up on a fresh machine (see README):
#   make demo   install into .venv; track, promote, run the pipeline with its gates, nbops level
#   make test   install into .venv, lint, run the whole test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench lab clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	# an editable install skips data-files: JupyterLab's default to save widget state
	mkdir -p $(VENV)/share/jupyter/lab/settings/overrides.d
	cp jupyter-config/overrides.d/nbops.json $(VENV)/share/jupyter/lab/settings/overrides.d/
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/nbops demo --dir demo

lint: $(STAMP)
	$(BIN)/ruff check nbops tests benchmarks binder
	$(BIN)/ruff format --check nbops tests benchmarks binder
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

test: lint
	$(BIN)/python -m pytest -n 2 tests/unit
	$(BIN)/python -m pytest tests/integration tests/reliability

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py

lab: $(STAMP)
	$(BIN)/jupyter lab notebooks/

clean:
	rm -rf $(VENV) demo .nbops mlflow.db mlartifacts notebooks/.nbops notebooks/mlflow.db notebooks/mlartifacts
