"""The table 'VSLNet on the input features vs on the dual encoder's': values per seed, mean ± std, paired
difference; mismatched seeds are refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from egonlq.cli import main
from egonlq.dualenc.feature_table import FEATURE_TABLE, build_table
from egonlq.evaluation.metric import EvalResult, write_metrics
from egonlq.io import read_parquet


def _metrics(folder: Path, predictor: str, r1: float, r5: float, miou: float) -> Path:
    """A val metrics JSON whose official R@1 / R@5 are ``r1`` / ``r5`` at every IoU."""
    recall = {(t, k): (r1 if k == 1 else r5) for t in (0.3, 0.5) for k in (1, 5)}
    entry = EvalResult("official", (0.3, 0.5), (1, 5), recall, miou, 10, 10, 10, 0).to_dict()
    path = folder / predictor / "val.json"
    write_metrics({"predictor": predictor, "split": "val", "official": entry}, path)
    return path


def test_table_rows_means_and_paired_difference(tmp_path: Path) -> None:
    base = [_metrics(tmp_path, f"vslnet_scratch_seed{s}", r, 0.5, 0.1) for s, r in ((0, 0.10), (1, 0.20))]
    ours = [
        _metrics(tmp_path, f"vslnet_scratch_on_dualenc_gt100_seed0_seed{s}", r, 0.6, 0.2)
        for s, r in ((1, 0.40), (0, 0.20))
    ]
    parquet, md = tmp_path / "t.parquet", tmp_path / "t.md"
    main(
        [
            "dualenc-feature-table",
            *("--baseline-label", "demo_features", "--baseline", *map(str, base)),
            *("--dualenc-label", "dualenc_gt100_seed0", "--dualenc", *map(str, ours)),
            *("--synthetic", "--parquet", str(parquet), "--markdown", str(md)),
        ]
    )
    table = read_parquet(parquet, FEATURE_TABLE).to_pandas()
    assert table[["features", "seed"]].values.tolist() == [
        ["demo_features", 0],
        ["demo_features", 1],
        ["dualenc_gt100_seed0", 0],
        ["dualenc_gt100_seed0", 1],
    ]
    assert table["R1@0.3"].round(6).tolist() == [10.0, 20.0, 20.0, 40.0]
    assert table["mIoU"].round(6).tolist() == [10.0, 10.0, 20.0, 20.0]
    text = md.read_text()
    assert "VSLNet on demo_features vs on dualenc_gt100_seed0 (SYNTHETIC demo data)" in text
    lines = {
        line.split(" | ")[0].strip("| "): line.split(" | ") for line in text.splitlines() if " | " in line
    }
    assert lines["demo_features"][2] == "15.0 ± 7.1"  # R1@0.3 over seeds 0, 1
    assert lines["dualenc_gt100_seed0"][2] == "30.0 ± 14.1"
    assert lines["difference"][2] == "+15.0 ± 7.1"  # per seed: +10, +20
    assert lines["difference"][3] == "+10.0 ± 0.0"  # R5@0.3: 60 - 50 on both seeds


def test_the_two_sets_need_the_same_seeds(tmp_path: Path) -> None:
    base = [_metrics(tmp_path, "vslnet_scratch_seed0", 0.1, 0.5, 0.1)]
    ours = [_metrics(tmp_path, "vslnet_scratch_on_x_seed1", 0.1, 0.5, 0.1)]
    with pytest.raises(ValueError, match=r"same distinct seeds: a has \[0\], b has \[1\]"):
        build_table(("a", base), ("b", ours))
