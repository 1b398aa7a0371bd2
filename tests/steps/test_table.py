"""The step-grounding table: means over seeds per model x decoder, "not run" with its reason, DP vs argmax."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from egonlq.cli import main
from egonlq.errors import InputError
from egonlq.steps.table import steps_table


def _metrics(root: Path, model: str, seed: int, decoder: str, r1: float | None, run: str = "gt100") -> Path:
    path = root / model / run / f"seed{seed}" / f"{decoder}_metrics.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    if r1 is None:
        entry = {"error": "not run: an entry has more than 8 steps (dfs_max_steps)"}
    else:
        recall = {"R1@0.3": r1, "R1@0.5": r1 / 2, "R5@0.3": min(1.0, r1 * 1.5), "R5@0.5": r1}
        entry = {"recall": recall, "miou": r1 / 3}
    obj = {"predictor": f"{model}_{decoder}_{seed}", "split": "valid", "official": entry, "strict": entry}
    path.write_text(json.dumps(obj))
    return path


def test_table_means_over_seeds_and_not_run_rows(tmp_path: Path) -> None:
    runs = [(0, "argmax", 0.1), (1, "argmax", 0.2), (0, "dp", 0.5), (1, "dp", 0.7), (0, "dfs", None)]
    paths = [_metrics(tmp_path, "zeroshot", s, d, r) for s, d, r in runs]
    rows = {(r["decoder"], r["mode"]): r for r in steps_table(paths)}
    assert rows["argmax", "official"]["R1@0.3_mean"] == pytest.approx(15.0)
    assert rows["dp", "official"]["R1@0.3_mean"] == pytest.approx(60.0)
    assert rows["dp", "official"]["R1@0.3_std"] == pytest.approx(14.1421356)
    assert rows["dfs", "strict"]["seeds"] == 0 and "dfs_max_steps" in rows["dfs", "strict"]["note"]
    example = tmp_path / "example.npz"
    sim = np.random.default_rng(0).random((3, 20))
    dp, gt = np.array([[0, 5], [5, 9], [12, 18]]), np.array([[0, 4], [5, 10], [12, 17]])
    np.savez(example, video_uid="v1", sim=sim, dp=dp, gt=gt, chunk_sec=2.0)
    out = tmp_path / "out"
    outputs = ["--parquet", str(out / "t.parquet"), "--markdown", str(out / "t.md")]
    outputs += ["--plot", str(out / "a.png")]
    main(["steps-table", "--metrics", *map(str, paths), "--example", str(example), *outputs, "--synthetic"])
    md = (out / "t.md").read_text()
    assert "SYNTHETIC" in md and "zeroshot gt100: DP vs argmax, official R1@0.3: +45.00 points" in md
    assert pq.read_table(out / "t.parquet").num_rows == 6 and (out / "a.png").stat().st_size > 5000


def test_vslnet_is_a_row_after_the_dual_encoders(tmp_path: Path) -> None:
    paths = [_metrics(tmp_path, "vslnet", s, "span", 0.3, run="scratch") for s in (0, 1)]
    paths += [_metrics(tmp_path, m, 0, "dp", 0.5) for m in ("adapters", "zeroshot")]
    rows = steps_table(paths)
    assert [r["model"] for r in rows if r["mode"] == "official"] == ["zeroshot", "adapters", "vslnet"]
    assert rows[-1]["seeds"] == 2 and rows[-1]["R1@0.3_mean"] == pytest.approx(30.0)
    out = tmp_path / "out"
    example = tmp_path / "example.npz"
    np.savez(example, video_uid="v1", sim=np.zeros((1, 4)), dp=np.array([[0, 2]]), gt=np.array([[0, 2]]),
             chunk_sec=2.0)  # fmt: skip
    outputs = [
        "--parquet",
        str(out / "t.parquet"),
        "--markdown",
        str(out / "t.md"),
        "--plot",
        str(out / "a.png"),
    ]
    main(["steps-table", "--metrics", *map(str, paths), "--example", str(example), *outputs])
    assert "| VSLNet | scratch | span | 2 | 30.00 ± 0.00 |" in (out / "t.md").read_text()


def test_a_file_outside_the_layout_is_named(tmp_path: Path) -> None:
    bad = tmp_path / "metrics.json"
    bad.write_text("{}")
    with pytest.raises(InputError, match="not a steps-decode metrics file"):
        steps_table([bad])
