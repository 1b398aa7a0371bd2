# Two entry points for a fresh machine: `make run` (the demo workflow) and `make test`.
PY      ?= python3
VENV    ?= .venv
CORES   ?= 2
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed

.PHONY: run run-times test lint bench published-env dryrun report-check clean-results system-packages recipes

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

# After `make run`: the per-job times (results/benchmarks/), the DAG's critical path and how busy the cores were.
run-times: $(STAMP)
	$(BIN)/python bench/run_times.py --json results/run_times.json

# Every source recipe (issue 17): results/recipes/<name>/table.md per claim, with its own report. Long: the
# README lists each recipe target and its wall time on 2 cores; runs two recipes share are trained once.
recipes: $(STAMP)
	$(BIN)/python -m snakemake --cores $(CORES) --workflow-profile workflow/profiles/local recipes
	$(BIN)/python -m snakemake --report results/recipes/report.html recipes

# Open the report in headless Chromium: it renders, every headline table is inside it; a screenshot to look at.
report-check: $(STAMP) system-packages
	$(BIN)/python -m snakemake --report results/report.html
	$(BIN)/python tests/workflow/report_check.py results/report.html --screenshot results/report.png

test: $(STAMP) system-packages
	$(BIN)/python -m pytest

# The cluster test (tests/workflow/test_slurm.py) runs a one-node SLURM from Debian's slurm-wlm and munge; the
# report test opens the report in Debian's chromium. Installed where apt-get can (root on Debian); elsewhere
# those tests say they were skipped and why.
system-packages:
	@{ command -v slurmctld && command -v chromium; } >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    (DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge chromium >/dev/null 2>&1 || \
	     (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge chromium >/dev/null)) \
	    || echo "system-packages: apt-get could not install slurm-wlm munge chromium; the cluster and report tests will be skipped"; \
	  else echo "system-packages: not root or no apt-get; the cluster and report tests will be skipped"; fi; }

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/python -m snakemake --lint

dryrun: $(STAMP)
	$(BIN)/python -m snakemake -n -q rules

bench: $(STAMP) published-env
	$(BIN)/python bench/run_all.py

# The NaQ script's own pins (srama2512/NaQ requirements.txt: pandas==1.5.2; numpy 1.23.5, the first with
# wheels for Python 3.11, for its 1.22.4): its `read_csv(..., error_bad_lines=False)` fails on pandas 2.0 and
# later, so a user runs it there, and `bench_naq.py` times its method there too. Where they do not install
# (Python 3.12 and later), it says so.
PUBLISHED := .venv-published
published-env:
	@test -x $(PUBLISHED)/bin/python && $(PUBLISHED)/bin/python -c 'import pandas' 2>/dev/null || { \
	  $(PY) -m venv $(PUBLISHED) && $(PUBLISHED)/bin/pip install --quiet --only-binary=:all: \
	    pandas==1.5.2 numpy==1.23.5 || { rm -rf $(PUBLISHED); \
	    echo "published-env: pandas 1.5.2 does not install here; bench_naq times the method on this pandas only"; }; }

clean-results:
	rm -rf results/* .snakemake && touch results/.gitkeep
