# Two commands for a new user (see README.md):
#   make demo   installs everything, runs the pipeline end to end locally, shows silver rows
#   make test   installs everything, runs the test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PLUGINS := $(wildcard plugins/*/pyproject.toml)
DEMO_OUT ?= elt-out

# Test workers (pytest-xdist): one per core; a module's tests stay on one worker (they share its
# moto endpoint and synthesized stacks). TEST_WORKERS=0 runs them in this process.
TEST_WORKERS ?= auto
PYTEST := -m pytest -q -n $(TEST_WORKERS) --dist loadfile

PYARROW_LOWEST ?= 17.0.0
LOWEST := .venv-pyarrow-lowest
# Tests that package or deploy (they need the deploy extra, not a particular pyarrow) run once, in `make test`.
PACKAGING_TESTS := tests/test_deploy.py tests/test_lambda_asset.py tests/test_bundled.py tests/test_walkthroughs.py tests/test_scaffold.py

.PHONY: setup demo test test-lowest synth bundle bench clean

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
	$(BIN)/python $(PYTEST)

# The suite on the lowest pyarrow the SDK supports (pyproject's lower bound), without the packaging tests.
test-lowest: $(LOWEST)/.installed
	$(LOWEST)/bin/python $(PYTEST) -p no:cacheprovider -m "not synth" $(foreach t,$(PACKAGING_TESTS),--ignore=$(t))

$(LOWEST)/.installed: pyproject.toml $(PLUGINS)
	$(PYTHON) -m venv $(LOWEST)
	$(LOWEST)/bin/python -m pip install --quiet --upgrade pip setuptools wheel
	$(LOWEST)/bin/python -m pip install --quiet -e '.[local,testing,scaffold]' regress pytest-xdist 'pyarrow==$(PYARROW_LOWEST)' \
		$(foreach p,$(PLUGINS),-e $(dir $(p)))
	touch $@

# The CDK app, as cdk.json runs it (app.sh, on this venv); fails over deploy/cdk.json's bundle_budget_mb.
synth: setup
	cd deploy && ELT_PYTHON=$(abspath $(BIN))/python JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION=20 sh app.sh
	$(BIN)/cfn-lint -i W3005 -- deploy/cdk.out/*.template.json

# The Lambda assets for both architectures: the one step that needs PyPI (Lambda-platform wheels,
# fetched once into deploy/.bundle/wheels/); synth runs offline after it.
bundle: setup
	cd deploy && ../$(BIN)/python -m elt_deploy.bundle

bench: setup
	$(BIN)/elt-sdk bench

clean:
	rm -rf $(VENV) $(LOWEST) $(DEMO_OUT) deploy/cdk.out build
