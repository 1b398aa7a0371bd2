# Two entry points for a fresh machine: `make run` (the demo workflow) and `make test`.
PY      ?= python3
VENV    ?= .venv
CORES   ?= 2
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed

.PHONY: run test lint bench dryrun report clean-results slurm-packages

$(BIN)/python:
	$(PY) -m venv $(VENV)

# torch is installed first with its exact pin so pip takes the local CPU build, not a multi-GB CUDA one.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev,slurm]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/python -m snakemake --cores $(CORES) --workflow-profile workflow/profiles/local
	$(BIN)/python -m snakemake --report results/report.html

test: $(STAMP) slurm-packages
	$(BIN)/python -m pytest

# The cluster test (tests/workflow/test_slurm.py) runs a one-node SLURM from Debian's slurm-wlm and munge.
# Installed here where apt-get can (root on Debian); elsewhere the test says it was skipped and why.
slurm-packages:
	@command -v slurmctld >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    (DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge >/dev/null 2>&1 || \
	     (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge >/dev/null)) \
	    || echo "slurm-packages: apt-get could not install slurm-wlm munge; the cluster test will be skipped"; \
	  else echo "slurm-packages: not root or no apt-get; the cluster test will be skipped"; fi; }

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/python -m snakemake --lint

dryrun: $(STAMP)
	$(BIN)/python -m snakemake -n -q rules

bench: $(STAMP)
	$(BIN)/python bench/run_all.py

clean-results:
	rm -rf results/* .snakemake && touch results/.gitkeep
