# The two commands the README opens with, and a few more. Everything runs offline.
VENV      ?= .venv
PYTHON    := $(VENV)/bin/python
PROFILE   ?= workflows/profiles/local
# scripts/snakemake.sh: snakemake, with a lock left by a killed run removed first
SNAKEMAKE := VENV=$(VENV) bash scripts/snakemake.sh --workflow-profile $(PROFILE)
export HF_HUB_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1

.PHONY: smoke medium test test-fast lint install check report bench clean-results

## smoke: every card's smoke table, leaderboards, plots, MLflow runs and the HTML report
smoke: install
	$(SNAKEMAKE)
	@bash scripts/report.sh $(VENV) $(PROFILE)

## medium: the medium tables of the cards that define one (RLVR through TRL on SmolLM2-135M, causal PINNs: 1 h 40 min on 2 cores)
medium: install
	$(SNAKEMAKE) --config scale=medium

## test: lint, then the whole test suite (tiny cards end to end, SLURM where it can run)
test: install lint
	$(PYTHON) -m pytest

## test-fast: lint and the tests that take seconds (no `slow` DAG runs, no `slurm`): minutes
test-fast: install lint
	$(PYTHON) -m pytest -m "not slow and not slurm"

## lint: ruff over the tree (settings in pyproject.toml)
lint: install
	$(PYTHON) -m ruff check .

## install: build .venv (skipped when pyproject.toml is unchanged)
install:
	@bash scripts/install.sh

## check: validate every card
check: install
	$(PYTHON) -m entrobench check

## bench: throughput and wall-time figures, written to bench/results/
bench: install
	$(PYTHON) bench/run.py throughput
	$(PYTHON) bench/run.py noop
	$(PYTHON) bench/run.py decoding

clean-results:
	rm -rf results .snakemake
