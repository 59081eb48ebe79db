# Two commands for a new user (see README.md):
#   make demo   installs everything, runs the pipeline end to end locally, shows silver rows
#   make test   installs everything, runs the test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PLUGINS := $(wildcard plugins/*/pyproject.toml)
DEMO_OUT ?= elt-out

.PHONY: setup demo test synth bench clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml $(PLUGINS)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip setuptools wheel
	$(BIN)/python -m pip install --quiet -e '.[dev]' $(foreach p,$(PLUGINS),-e $(dir $(p)))
	touch $@

demo: setup
	$(BIN)/elt-sdk local run --out $(DEMO_OUT)
	$(BIN)/elt-sdk query --silver $(DEMO_OUT)

test: setup
	$(BIN)/python -m pytest -q

synth: setup
	cd deploy && JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION=20 ../$(BIN)/python app.py
	$(BIN)/cfn-lint -i W3005 -- deploy/cdk.out/*.template.json

bench: setup
	$(BIN)/elt-sdk bench

clean:
	rm -rf $(VENV) $(DEMO_OUT) deploy/cdk.out build
