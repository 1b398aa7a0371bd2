"""The keyframe recipe's table and verdict on literal selections."""

from __future__ import annotations

import pandas as pd
import pyarrow.parquet as pq

from egonlq.video.keyframe_recipe import KEYFRAME_RECIPE_ROWS, RECIPE, write_keyframe_recipe

QUERIES = pd.DataFrame(
    {
        "clip_uid": ["c", "c"],
        "video_uid": ["v", "v"],
        "annotation_uid": ["a", "a"],
        "query_idx": [0, 1],
        "query": ["q0", "q1"],
        "clip_start_sec": [10.0, 50.0],
        "clip_end_sec": [20.0, 60.0],
    }
)
CLIPS = pd.DataFrame(
    {"clip_uid": ["c"], "video_uid": ["v"], "video_start_sec": [0.0], "video_end_sec": [100.0]}
)
AKS = {"mode": "reference", "L": 5, "t1": 0.8, "t2": -100.0, "ratio": 1}


def _selection(times: dict[str, list[list[float]]], short: bool = False) -> pd.DataFrame:
    """SELECTION rows: method -> selected times of query 0 and query 1."""
    rows = []
    for method, per_query in times.items():
        extra = AKS if method.startswith("aks") else dict.fromkeys(AKS)
        for i, t in enumerate(per_query):
            rows.append(
                {
                    "query_uid": f"c:a:{i}",
                    "method": method,
                    "M": 32,
                    **extra,
                    "selected_time_s": t,
                    "n_selected": len(t),
                    "short_video": short,
                    "scorer": "x",
                }
            )
    return pd.DataFrame(rows)


def _write(tmp_path, selections):
    out = {k: tmp_path / f"table.{k}" for k in ("parquet", "md", "png")}
    ok = write_keyframe_recipe(
        selections,
        QUERIES,
        CLIPS,
        out_parquet=out["parquet"],
        out_markdown=out["md"],
        out_png=out["png"],
        synthetic=True,
    )
    return ok, out


def test_aks_gaining_on_every_scorer_reproduces_the_claim(tmp_path):
    # AKS hits both queries, uniform one, top-k none, for each of three scorers
    hit_both = {"aks_reference": [[15.0], [55.0]], "uniform": [[15.0], [90.0]], "topk": [[0.0], [90.0]]}
    ok, out = _write(
        tmp_path, {s: _selection(hit_both) for s in ("encoder_demo", "vslnet_r_seed0", "dualenc_r_seed0")}
    )
    lines = out["md"].read_text().strip().splitlines()
    assert ok and lines[0] == f"Claim: {RECIPE.claim}" and "M 32, depth 5, t1 0.8, t2 -100" in lines[0]
    assert lines[-1] == "Demo reproduces the claim: yes (every comparison passes the rule)"
    assert "| AKS vs uniform | 100.00 | 50.00 | +50.00 ± 0.00 |" in out["md"].read_text()
    rows = pq.read_table(out["parquet"])
    assert rows.schema == KEYFRAME_RECIPE_ROWS and rows.num_rows == 9
    assert out["png"].stat().st_size > 0


def test_one_scorer_without_a_gain_fails_the_claim_and_short_videos_are_counted(tmp_path):
    gains = {"aks_reference": [[15.0], [55.0]], "uniform": [[15.0], [90.0]], "topk": [[0.0], [90.0]]}
    ties = {"aks_reference": [[15.0], [90.0]], "uniform": [[15.0], [90.0]], "topk": [[0.0], [90.0]]}
    ok, out = _write(tmp_path, {"a": _selection(gains), "b": _selection(ties, short=True)})
    text = out["md"].read_text()
    assert not ok
    assert (
        text.strip().splitlines()[-1]
        == "Demo reproduces the claim: no (AKS vs uniform: no gain on every seed)"
    )
    assert (
        "Short-video selections (fewer samples than M: every sample returned, the scores unused): 6 of 12"
        in text
    )
    assert "a: +50.00, b: +0.00" in text
