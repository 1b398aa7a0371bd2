"""bench/bench_eval.py (issue 15): the VSLNet evaluation benchmark runs end to end at its ``--quick`` size,
prints the published and our rows with their ratio and stages, and finds the official metrics equal."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from tests.conftest import REPO

STAGES = ["collate", "model forward", "decode + times", "JSON write", "GT load", "metric"]


def test_quick_run_prints_rows_ratio_stages_and_agreement() -> None:
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    cmd = [sys.executable, "bench/bench_eval.py", "--quick", "--threads", "1"]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]

    lines = proc.stdout.splitlines()
    assert sum(line.startswith("  repeat ") for line in lines) == 6  # 3 runs per side
    header = next(i for i, line in enumerate(lines) if line.startswith("side") and "vs published" in line)
    number = r"\d+\.\d{3} s \(min \d+\.\d{3}, max \d+\.\d{3}\)"
    for side, line in zip(["published", "ours"], lines[header + 1 : header + 3], strict=True):
        assert re.fullmatch(rf"{side}\s+{number}\s+{number}\s+\d+\.\d\dx", line), line
    assert lines[header + 1].endswith(" 1.00x")  # the baseline

    ratio = next(line for line in lines if line.startswith("ratio: published / ours = "))
    assert re.search(r"= \d+\.\d\dx wall .* \d+\.\d\dx CPU", ratio), ratio

    stages = next(i for i, line in enumerate(lines) if line.startswith("stage (median s)"))
    for stage, line in zip(STAGES, lines[stages + 1 : stages + 1 + len(STAGES)], strict=True):
        assert re.fullmatch(rf"{re.escape(stage)}\s+\d+\.\d{{4}}\s+\d+\.\d{{4}}", line), line

    agreement = next(line for line in lines if line.startswith("agreement:"))
    assert "predictions identical for 24 / 24 queries; official metrics match" in agreement, agreement
    assert "Evaluated 24 / 24" in agreement and "exactly on the published predictions file" in agreement
