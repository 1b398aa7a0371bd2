"""Baselines: uniform windows, the greedy-coverage train prior, and their predictions."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from egonlq.errors import InputError
from egonlq.evaluation.baselines import PriorModel, fit_prior, predict_baseline, uniform_windows
from egonlq.evaluation.ground_truth import GroundTruth
from egonlq.evaluation.metric import evaluate
from egonlq.evaluation.predictions import validate_predictions, write_predictions
from egonlq.timegrid import is_zero_length


def queries_frame(rows: list[tuple], split: str = "train") -> pd.DataFrame:
    """rows: (clip_uid, annotation_uid, query_idx, start, end, has_text); start None = unannotated."""
    df = pd.DataFrame(
        rows,
        columns=["clip_uid", "annotation_uid", "query_idx", "clip_start_sec", "clip_end_sec", "has_text"],
    )
    df["split"] = split
    df["annotated"] = df["clip_start_sec"].notna()
    df["zero_length"] = [
        bool(a) and is_zero_length(s, e)
        for a, s, e in zip(df["annotated"], df["clip_start_sec"], df["clip_end_sec"], strict=True)
    ]
    df["query"] = np.where(df["has_text"], "where is it?", None)
    return df


def clips_frame(durations: dict[str, float]) -> pd.DataFrame:
    return pd.DataFrame({"clip_uid": list(durations), "clip_end_sec": list(durations.values())})


def test_uniform_windows_exact() -> None:
    assert uniform_windows(480.0) == [
        [0.0, 96.0],
        [96.0, 192.0],
        [192.0, 288.0],
        [288.0, 384.0],
        [384.0, 480.0],
    ]
    assert uniform_windows(10.0, 3) == [[0.0, 10 / 3], [10 / 3, 20 / 3], [20 / 3, 10.0]]
    assert uniform_windows(7.0, 1) == [[0.0, 7.0]]
    with pytest.raises(ValueError):
        uniform_windows(0.0)
    with pytest.raises(ValueError):
        uniform_windows(10.0, 0)


TRAIN = queries_frame(
    [
        ("c1", "a", 0, 0.0, 25.0, True),  # [0, .25]
        ("c1", "a", 1, 0.0, 25.0, True),  # [0, .25]
        ("c2", "b", 0, 0.0, 50.0, True),  # [0, .25] of a 200 s clip
        ("c2", "b", 1, 150.0, 200.3, True),  # ends after the clip: clamped to [.75, 1]
        ("c1", "a", 2, 75.0, 100.0, True),  # [.75, 1]
        ("c1", "a", 3, 50.0, 75.0, True),  # [.5, .75]
        ("c1", "a", 4, 10.0, 10.0, True),  # zero-length: dropped
        ("c1", "a", 5, 20.0, 60.0, False),  # no text: dropped
        ("c1", "a", 6, None, None, True),  # unannotated: dropped
        ("c1", "a", 7, 100.2, 100.5, True),  # entirely after the clip: dropped
    ]
)
CLIPS = clips_frame({"c1": 100.0, "c2": 200.0})


def test_fit_prior_greedy_coverage() -> None:
    prior = fit_prior(TRAIN, CLIPS, n=3, grid=4, iou_threshold=0.4)
    # 1st: [0, .25], [0, .5] and [.5, 1] each hit 3 (IoU 1 or .5 > .4), 3 in total: the earliest wins;
    # 2nd: [.5, 1] covers the 3 left; 3rd: nothing left to cover, so the unpicked window hitting most in
    # total, the earliest on ties: [0, .5] (3).
    assert prior.windows == [(0.0, 0.25), (0.5, 1.0), (0.0, 0.5)]
    assert prior.train_recall == [0.5, 1.0, 1.0]
    assert prior.num_train == 6
    # at 0.3, IoU 1/3 counts: [0, .75] hits 4 and goes first; [.25, 1] and [.5, 1] tie on gain (2) and total
    # (3), the earlier wins
    at_03 = fit_prior(TRAIN, CLIPS, n=3, grid=4, iou_threshold=0.3)
    assert at_03.windows == [(0.0, 0.75), (0.25, 1.0), (0.0, 0.25)] and at_03.train_recall == [
        4 / 6,
        1.0,
        1.0,
    ]
    assert prior.dropped == {"unannotated": 1, "no_text": 1, "zero_length": 1, "outside_clip": 1}
    back = PriorModel.from_dict(json.loads(json.dumps(prior.to_dict())))
    assert back == prior
    with pytest.raises(InputError, match="not a prior model"):
        PriorModel.from_dict({"windows": []})


def test_fit_prior_errors() -> None:
    with pytest.raises(InputError, match="no usable train windows"):
        fit_prior(TRAIN[TRAIN["zero_length"]], CLIPS, n=1, grid=4)
    with pytest.raises(InputError, match="clip_uid=c2"):
        fit_prior(TRAIN, clips_frame({"c1": 100.0}), n=1, grid=4)
    with pytest.raises(InputError, match="several durations"):
        fit_prior(TRAIN, pd.concat([CLIPS, clips_frame({"c1": 99.0})]), n=1, grid=4)


def test_predict_baseline_windows_and_skips() -> None:
    val = queries_frame(
        [("c2", "b", 0, 1.0, 2.0, True), ("c2", "b", 1, 3.0, 9.0, False), ("c1", "a", 2, None, None, True)],
        "val",
    )
    uniform = predict_baseline(val, CLIPS, kind="uniform", n=2)
    assert [(p.clip_uid, p.query_idx, p.predicted_times) for p in uniform] == [
        ("c2", 0, [[0.0, 100.0], [100.0, 200.0]]),
        ("c1", 2, [[0.0, 50.0], [50.0, 100.0]]),  # original query_idx kept after the text-less one
    ]
    prior = fit_prior(TRAIN, CLIPS, n=3, grid=4, iou_threshold=0.4)
    rows = predict_baseline(val, CLIPS, kind="prior", prior=prior, n=3)
    assert rows[0].predicted_times == [[0.0, 50.0], [100.0, 200.0], [0.0, 100.0]]
    assert rows[1].predicted_times == [[0.0, 25.0], [50.0, 100.0], [0.0, 50.0]]
    assert all(type(x) is float for r in rows + uniform for w in r.predicted_times for x in w)
    with pytest.raises(ValueError, match=">= 5 windows"):
        predict_baseline(val, CLIPS, kind="prior", prior=prior, n=5)
    with pytest.raises(ValueError, match="no prior"):
        predict_baseline(val, CLIPS, kind="prior", prior=None)
    with pytest.raises(ValueError, match="kind"):
        predict_baseline(val, CLIPS, kind="random")


def draw_split(rng: np.random.Generator, split: str, num_clips: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Queries whose windows all sit early in their clip: a distribution a prior can learn."""
    rows, durations = [], {}
    for c in range(num_clips):
        clip, duration = f"{split}{c}", float(rng.choice([480.0, 600.0, 1200.0]))
        durations[clip] = duration
        for i in range(8):
            start = rng.uniform(0.0, 0.15) * duration
            rows.append((clip, "a", i, start, start + rng.uniform(0.03, 0.1) * duration, i != 7))
    return queries_frame(rows, split), clips_frame(durations)


def ground_truth(queries: pd.DataFrame) -> GroundTruth:
    clips = []
    for clip_uid, q in queries.groupby("clip_uid", sort=False):
        lq = [
            {"clip_start_sec": s, "clip_end_sec": e}
            for s, e in zip(q.clip_start_sec, q.clip_end_sec, strict=True)
        ]
        clips.append({"clip_uid": clip_uid, "annotations": [{"annotation_uid": "a", "language_queries": lq}]})
    return GroundTruth.from_obj({"videos": [{"clips": clips}]})


def test_prior_beats_uniform_on_its_own_distribution(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    train_q, train_c = draw_split(rng, "train", 40)
    val_q, val_c = draw_split(rng, "val", 20)
    gt = ground_truth(val_q)
    prior = fit_prior(train_q, train_c, n=5, grid=50)
    assert all(0.0 <= s < e <= 0.3 for s, e in prior.windows)
    scores = {}
    for kind in ("uniform", "prior"):
        rows = predict_baseline(val_q, val_c, kind=kind, prior=prior)
        assert len(rows) == 20 * 7  # text-less queries skipped
        path = tmp_path / f"{kind}.json"
        write_predictions(rows, path)
        assert validate_predictions(path, gt=gt) == []
        scores[kind] = evaluate(gt, path, mode="strict")
        assert scores[kind].num_missing == 20
    u, p = scores["uniform"].recall, scores["prior"].recall
    assert p[(0.3, 5)] > u[(0.3, 5)] + 0.1 and p[(0.3, 1)] > u[(0.3, 1)] and p[(0.5, 5)] > u[(0.5, 5)]
    assert scores["prior"].miou > scores["uniform"].miou
    assert p[(0.3, 5)] <= 7 / 8  # the text-less query of each clip is a miss in strict mode
