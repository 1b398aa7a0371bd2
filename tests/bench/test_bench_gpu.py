"""bench/bench_gpu.py (issue 15 goal 7): the script prepared for a GPU machine runs end to end on CPU at its
``--quick`` sizes, and its table and JSON hold every row."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO

ROWS = [
    ("VSLNet", "fp32"),
    ("VSLNet", "bf16"),
    ("dual encoder", "fp32"),
    ("dual encoder", "bf16"),
    ("hf", "fp32 one at a time"),
    ("hf", "fp32 batched (4)"),
    ("hf", "bf16 one at a time"),
    ("hf", "bf16 batched (4)"),
]


def test_quick_cpu_run_prints_and_writes_every_row(tmp_path: Path) -> None:
    out = tmp_path / "bench_gpu.json"
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    # The random text encoder: the path a GPU machine takes (its image has no MiniLM package).
    cmd = [sys.executable, "bench/bench_gpu.py", "--quick", "--device", "cpu", "--threads", "1"]
    cmd += ["--text-encoder", "random", "--json", str(out)]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]

    lines = proc.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("part") and "vs base" in line)
    table = lines[header + 1 : header + 1 + len(ROWS)]
    for (part, name), line in zip(ROWS, table, strict=True):
        assert line.startswith(part) and name in line and "x" in line, line
    assert "1.00x" in table[0] and "1.00x" in table[2] and "1.00x" in table[4]  # each part's baseline
    assert "best val R1@0.3" in table[0] and "loss" in table[2] and "new tok/s" in table[4]
    assert any(line.startswith("ratios: vslnet bf16/fp32 x") for line in lines)

    result = json.loads(out.read_text())
    assert result["environment"]["device"] == "cpu" and result["environment"]["torch"]
    assert [(r["part"], r["name"]) for r in result["rows"]] == ROWS
    for r in result["rows"]:
        assert len(r["seconds"]) == 3 and r["min_s"] <= r["median_s"] <= r["max_s"]
        assert r["rate"] > 0 and math.isfinite(r["vs_baseline"]) and r["peak_mib"] is None  # no CUDA here
        if r["part"] == "hf":
            assert r["items"] == 4 and r["checks"]["new_tokens"] > 0
        else:
            assert r["steps"] == 6 and r["steps_per_s"] > 0
            assert math.isfinite(r["checks"]["loss_first_epoch"]) and math.isfinite(
                r["checks"]["loss_last_epoch"]
            )
    baselines = {r["part"]: r["baseline"] for r in result["rows"]}
    assert baselines == {"VSLNet": "fp32", "dual encoder": "fp32", "hf": "fp32 one at a time"}
    assert set(result["ratios"]) == {
        "vslnet bf16/fp32",
        "dualenc bf16/fp32",
        "hf fp32 batched/one at a time",
        "hf bf16 batched/one at a time",
        "hf bf16/fp32 one at a time",
    }
    assert (
        result["parts"]["vslnet"]["steps"] == 6 and "random BERT" in result["parts"]["vslnet"]["text_encoder"]
    )
