"""bench/bench_dualenc.py: runs at the size `make bench --quick` gives it (fewer pairs than its default
baseline batches once broke it), prints each rate as a median with min and max, and refuses a set smaller
than a batch with a clear message."""

from __future__ import annotations

import re
import subprocess
import sys

from tests.conftest import REPO

RATE = r"[\d,]+ \(min [\d,]+, max [\d,]+\)"


def _run(*args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "bench/bench_dualenc.py", "--videos", "3", "--seconds", "30", *args]
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)


def test_small_set_prints_medians_and_the_ratio() -> None:
    proc = _run("--pairs", "300", "--batch", "128", "--baseline-batches", "10")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    assert "medians of 3 runs (min, max)" in lines
    rows = [line for line in lines if line.startswith("| ") and "/s" in line]
    assert len(rows) == 3 and all(re.search(rf"\| {RATE} \|", row) for row in rows), rows
    assert "| 2 batches |" in rows[1]  # 300 pairs: two full batches of 128 on the baseline side too
    assert any(re.fullmatch(r"ratio bank / per-item loading: [\d,]+x", line) for line in lines)


def test_fewer_pairs_than_a_batch_is_a_clear_error() -> None:
    proc = _run("--pairs", "100", "--batch", "128")
    assert proc.returncode != 0 and "--pairs (100) must be at least --batch (128)" in proc.stderr
