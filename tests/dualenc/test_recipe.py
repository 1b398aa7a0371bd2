"""The dual-encoder recipe: LaViLa's claim against the dual encoder's table, claim first, verdict last."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest

from egonlq.dualenc.experiments import DUALENC_TABLE
from egonlq.dualenc.recipe import recipe_arms, write_dualenc_recipe
from egonlq.errors import InputError
from egonlq.io import write_parquet


def _table(path: Path, t2v: dict[str, list[float]], not_run: dict[str, str] | None = None) -> Path:
    rows = []
    for run, values in t2v.items():
        for seed, v in enumerate(values):
            rows.append({"run": run, "kind": "dual_encoder", "seed": seed, "sources": "narration", "note": "",
                         "t2v_R@1": v})  # fmt: skip
    for run, why in (not_run or {}).items():
        rows.append({"run": run, "kind": "not_run", "seed": None, "sources": "", "note": why})
    rows.append({"run": "vslnet_scratch_seed0", "kind": "vslnet", "seed": None, "sources": "", "note": "ref"})
    frame = pd.DataFrame(rows).reindex(columns=DUALENC_TABLE.names)
    table = pa.Table.from_pandas(frame, schema=DUALENC_TABLE, preserve_index=False)
    write_parquet(table, path, DUALENC_TABLE)
    return path


def _write(tmp_path: Path, table: Path) -> tuple[bool, list[str]]:
    out = {k: tmp_path / f"r.{k}" for k in ("parquet", "markdown", "png")}
    ok = write_dualenc_recipe(
        table, out_parquet=out["parquet"], out_markdown=out["markdown"], out_png=out["png"], synthetic=True
    )
    return ok, out["markdown"].read_text().splitlines()


def test_claim_holds_when_every_pseudo_text_arm_gains_on_every_seed(tmp_path: Path) -> None:
    table = _table(
        tmp_path / "t.parquet",
        {"gt100": [60, 62], "gt10": [40, 42], "gt10narrator": [45, 43], "gt10llm": [41, 44]},
        not_run={"gt10rephrase": "rephrase:* is not produced (queries.rephrase.enabled is false)"},
    )
    ok, lines = _write(tmp_path, table)
    assert ok and lines[0].startswith("Claim: LaViLa")
    assert lines[-1].startswith("Demo reproduces the claim: yes")
    text = "\n".join(lines)
    row = "| GT 10 % + narrator text vs GT 10 % | 44.00 | 41.00 | +3.00 ± 2.83 | s0: +5.00, s1: +1.00 |"
    assert row in text
    assert "Not run: gt10rephrase (rephrase:* is not produced" in text  # said, not dropped
    assert "rephrased narrations vs" not in text  # a run that did not run is no comparison


def test_claim_fails_when_one_seed_loses(tmp_path: Path) -> None:
    table = _table(tmp_path / "t.parquet", {"gt100": [60, 62], "gt10": [40, 42], "gt10narrator": [45, 41]})
    ok, lines = _write(tmp_path, table)
    assert not ok and lines[-1] == (
        "Demo reproduces the claim: no (GT 10 % + narrator text vs GT 10 %: no gain on every seed)"
    )
    arms = recipe_arms(pd.read_parquet(table))
    assert list(dict.fromkeys(arms["arm"])) == ["gt100", "gt10", "gt10narrator"]  # GT arms first
    assert pd.read_parquet(tmp_path / "r.parquet")["recipe"].unique().tolist() == ["dualenc"]


def test_a_table_without_gt10_is_refused(tmp_path: Path) -> None:
    table = _table(tmp_path / "t.parquet", {"gt100": [60, 62]})
    with pytest.raises(InputError, match="no run 'gt10'"):
        _write(tmp_path, table)
