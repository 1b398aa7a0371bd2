# Two entry points for a fresh machine: `make run` (the demo workflow) and `make test`.
PY      ?= python3
VENV    ?= .venv
CORES   ?= 2
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed

.PHONY: run test lint bench dryrun report clean-results

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

test: $(STAMP)
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/python -m snakemake --lint

dryrun: $(STAMP)
	$(BIN)/python -m snakemake -n -q rules

bench: $(STAMP)
	$(BIN)/python bench/run_all.py

clean-results:
	rm -rf results/* .snakemake && touch results/.gitkeep
