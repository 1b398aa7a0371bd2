"""Zero-shot step decoding: chunk row ranges, the decoders on a planted similarity matrix (steps in order,
a substep inside its parent), DFS not run beyond its step limit, windows to seconds, the metric on it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from egonlq.evaluation.ground_truth import GroundTruth
from egonlq.evaluation.metric import evaluate_both
from egonlq.steps.zeroshot import DecodeParams, chunk_rows, decode_entry, to_predictions


def test_chunk_rows_follow_row_start_times() -> None:
    # 8 rows at 1.875/s span 4.27 s: rows 0-3 start in [0, 2), rows 4-7 in [2, 4), none in [4, 6)
    first, count = chunk_rows(8, 1.875, 2.0)
    assert first.tolist() == [0, 4, 7] and count.tolist() == [4, 4, 1]
    f, c = chunk_rows(3, 0.25, 2.0)  # one row per 4 s: every other chunk has no row of its own
    assert len(f) == 6 and (c >= 1).all() and f.tolist() == [0, 0, 1, 1, 2, 2]


def _queries() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "video_uid": "v",
            "annotation_uid": "v_0_20",
            "query_idx": [0, 1, 2],
            "query": ["a", "a now", "b"],
            "clip_start_sec": [2.0, 2.0, 12.0],
            "clip_end_sec": [8.0, 4.0, 16.0],
            "step_idx": [0, 0, 1],
            "is_substep": [False, True, False],
        }
    )


def _sim() -> np.ndarray:
    sim = np.zeros((3, 10))
    sim[0, 1:4] = 0.9  # step a: chunks 1-3
    sim[1, 1] = 0.9  # its substep: chunk 1 (and a decoder-fooling decoy at chunk 8)
    sim[1, 8] = 0.95
    sim[2, 6:8] = 0.9  # step b: chunks 6-7 ... but step b's text also likes chunk 0 (before a)
    sim[2, 0] = 0.92
    return sim


def test_dp_keeps_order_and_substeps_near_their_parent() -> None:
    params = DecodeParams(chunk_sec=2.0, lam_percentile=70, slack_sec=2.0)
    w = decode_entry(_sim(), _queries(), "dp", params)
    assert w.shape == (3, 5, 2)
    assert w[0, 0].tolist() == [1, 4] and w[1, 0].tolist() == [1, 2] and w[2, 0].tolist() == [6, 8]
    argmax = decode_entry(_sim(), _queries(), "argmax", params)
    assert argmax[1, 0].tolist() == [8, 9]  # unconstrained: the substep's decoy
    # windows 2-5 do not overlap the first
    assert all(not (a < w[0, 0, 1] and b > w[0, 0, 0]) for a, b in w[0, 1:] if (a, b) != tuple(w[0, 0]))
    assert decode_entry(_sim(), _queries(), "dfs", params)[:, 0].tolist() == w[:, 0].tolist()
    assert decode_entry(_sim(), _queries(), "dfs", DecodeParams(lam_percentile=70, dfs_max_steps=1)) is None
    v = decode_entry(_sim(), _queries(), "viterbi", params)
    assert v[0, 0, 0] <= 1 < v[0, 0, 1] and v[2, 0, 0] >= 6


def test_predictions_in_seconds_score_with_the_official_metric() -> None:
    queries = _queries()
    windows = decode_entry(_sim(), queries, "dp", DecodeParams(lam_percentile=70, slack_sec=2.0))
    rows = to_predictions(windows, queries, 2.0, duration=19.0)
    assert rows[0].predicted_times[0] == [2.0, 8.0] and rows[2].predicted_times[0] == [12.0, 16.0]
    assert max(e for r in rows for _, e in r.predicted_times) <= 19.0
    gt = GroundTruth.from_obj(
        {"videos": [{"clips": [{"clip_uid": "v", "annotations": [{"annotation_uid": "v_0_20",
         "language_queries": [{"clip_start_sec": s, "clip_end_sec": e, "query": q} for s, e, q in zip(
             queries["clip_start_sec"], queries["clip_end_sec"], queries["query"], strict=True)]}]}]}]}
    )  # fmt: skip

    def score(rows: list) -> dict:
        obj = {"version": "1.0", "challenge": "ego4d_nlq_challenge", "results": [r.to_json() for r in rows]}
        return evaluate_both(gt, obj)["official"]

    assert score(rows)["recall"]["R1@0.5"] == pytest.approx(1.0) and score(rows)["miou"] == pytest.approx(1.0)
    argmax = to_predictions(decode_entry(_sim(), queries, "argmax", DecodeParams(lam_percentile=70)), queries,
                            2.0, duration=19.0)  # fmt: skip
    assert score(argmax)["recall"]["R1@0.3"] == pytest.approx(2 / 3)  # the substep's decoy
