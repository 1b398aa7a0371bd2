"""Baseline predictors that need no model: the floor every trained model must beat.

* ``uniform``: the clip cut into n equal windows in time order (the chance row of naq.md, section 4.2).
* ``prior``: n windows, in clip-duration units, chosen on the train split by greedy maximum coverage: each
  pick maximises the number of not-yet-covered train GT windows it hits at IoU > threshold, which is exactly
  what Recall@n on train rewards. Every query of a clip gets the same windows scaled by the clip's duration.

Queries without text are not predicted (as VSLNet does); their ``query_idx`` keeps its original value for
the others.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from egonlq.errors import InputError
from egonlq.evaluation.metric import iou
from egonlq.evaluation.predictions import Prediction

logger = logging.getLogger(__name__)

KINDS = ("uniform", "prior")


def uniform_windows(duration: float, n: int = 5) -> list[list[float]]:
    """``[[0, d/n], [d/n, 2d/n], ...]``: ``n`` equal windows covering ``[0, duration]`` in time order."""
    if n < 1 or not duration > 0:
        raise ValueError(f"need n >= 1 and a positive duration, got n={n}, duration={duration}")
    return [[duration * i / n, duration * (i + 1) / n] for i in range(n)]


@dataclass(frozen=True)
class PriorModel:
    """Ranked windows in clip-duration units (0 = clip start, 1 = clip end), fitted on train GT windows.

    ``train_recall[r]`` is the fraction of the ``num_train`` train windows hit (IoU > ``iou_threshold``) by
    the first r + 1 windows; ``dropped`` counts the train queries left out and why.
    """

    windows: list[tuple[float, float]]
    grid: int
    iou_threshold: float
    num_train: int
    train_recall: list[float]
    dropped: dict[str, int]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["windows"] = [list(w) for w in self.windows]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PriorModel:
        try:
            return cls(
                windows=[(float(s), float(e)) for s, e in d["windows"]],
                grid=int(d["grid"]),
                iou_threshold=float(d["iou_threshold"]),
                num_train=int(d["num_train"]),
                train_recall=[float(x) for x in d["train_recall"]],
                dropped={str(k): int(v) for k, v in d["dropped"].items()},
            )
        except (KeyError, TypeError, ValueError) as e:
            raise InputError(
                None, f"not a prior model: {e!r}", expected="the output of PriorModel.to_dict"
            ) from e


def _clip_durations(clips: pd.DataFrame) -> pd.Series:
    """``clip_uid -> clip_end_sec`` (the clip duration), refusing conflicting or non-positive values."""
    durations = clips[["clip_uid", "clip_end_sec"]].drop_duplicates()
    conflict = durations["clip_uid"].duplicated(keep=False)
    if conflict.any():
        uid = durations.loc[conflict, "clip_uid"].iloc[0]
        raise InputError(
            None, "clip listed with several durations", record=f"clip_uid={uid}", field="clip_end_sec"
        )
    bad = ~(durations["clip_end_sec"] > 0)
    if bad.any():
        row = durations[bad].iloc[0]
        raise InputError(
            None,
            f"duration {row.clip_end_sec}",
            record=f"clip_uid={row.clip_uid}",
            field="clip_end_sec",
            expected="> 0",
        )
    return durations.set_index("clip_uid")["clip_end_sec"]


def _durations_for(queries: pd.DataFrame, clips: pd.DataFrame) -> np.ndarray:
    durations = _clip_durations(clips).reindex(queries["clip_uid"])
    if durations.isna().any():
        uid = durations.index[durations.isna()][0]
        raise InputError(None, "query of a clip missing from the clips table", record=f"clip_uid={uid}")
    return durations.to_numpy(dtype=np.float64)


def _candidates(grid: int) -> np.ndarray:
    """Every window ``[i/grid, (i+j)/grid]`` inside [0, 1] with j >= 1, ordered by start then length."""
    return np.array(
        [(i / grid, (i + j) / grid) for i in range(grid) for j in range(1, grid - i + 1)], dtype=np.float64
    )


def fit_prior(
    train_queries: pd.DataFrame,
    train_clips: pd.DataFrame,
    *,
    n: int = 5,
    grid: int = 50,
    iou_threshold: float = 0.3,
) -> PriorModel:
    """Choose ``n`` ranked windows (clip-duration units) by greedy maximum coverage of the train GT windows.

    Train windows are normalised by their clip's duration and clamped to [0, 1]; unannotated, text-less and
    zero-length queries are dropped (counted in ``dropped``). Ties go to the candidate hitting most train
    windows in total, then to the earliest (start, length) on the grid.
    """
    if n < 1 or grid < 2:
        raise ValueError(f"need n >= 1 and grid >= 2, got n={n}, grid={grid}")
    q = train_queries
    dropped = {
        "unannotated": int((~q["annotated"]).sum()),
        "no_text": int((q["annotated"] & ~q["has_text"]).sum()),
        "zero_length": int((q["annotated"] & q["has_text"] & q["zero_length"]).sum()),
    }
    q = q[q["annotated"] & q["has_text"] & ~q["zero_length"]]
    durations = _durations_for(q, train_clips)
    starts = np.clip(q["clip_start_sec"].to_numpy(dtype=np.float64) / durations, 0.0, 1.0)
    ends = np.clip(q["clip_end_sec"].to_numpy(dtype=np.float64) / durations, 0.0, 1.0)
    outside = ~(ends > starts)  # nothing left inside the clip after clamping
    dropped["outside_clip"] = int(outside.sum())
    train = np.stack([starts[~outside], ends[~outside]], axis=1)
    if len(train) == 0:
        raise InputError(None, f"no usable train windows to fit the prior (dropped: {dropped})")

    candidates = _candidates(grid)
    hits = np.empty((len(candidates), len(train)), dtype=bool)  # [C, N]
    for lo in range(0, len(candidates), 256):
        chunk = candidates[lo : lo + 256]
        hits[lo : lo + 256] = iou(chunk[:, None, :], train[None, :, :], strict=True) > iou_threshold
    total = hits.sum(axis=1)
    covered = np.zeros(len(train), dtype=bool)
    picked: list[int] = []
    train_recall = []
    for _ in range(min(n, len(candidates))):
        gain = (hits & ~covered).sum(axis=1)
        score = gain.astype(np.int64) * (len(train) + 1) + total
        score[picked] = -1
        best = int(np.argmax(score))
        picked.append(best)
        covered |= hits[best]
        train_recall.append(float(covered.mean()))
    windows = [(float(s), float(e)) for s, e in candidates[picked]]
    logger.info(
        "prior: %d train windows (dropped %s), %d candidates, R@%d on train at IoU>%g: %.4f",
        len(train),
        dropped,
        len(candidates),
        len(picked),
        iou_threshold,
        train_recall[-1],
    )
    return PriorModel(windows, grid, float(iou_threshold), len(train), train_recall, dropped)


def predict_baseline(
    queries: pd.DataFrame, clips: pd.DataFrame, *, kind: str, prior: PriorModel | None = None, n: int = 5
) -> list[Prediction]:
    """One prediction with ``n`` windows (clip-relative seconds) per query with text, in table order.

    ``kind`` is ``"uniform"`` or ``"prior"`` (needs ``prior`` with at least ``n`` windows). Text-less queries
    are skipped and their number logged.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    if kind == "prior" and (prior is None or len(prior.windows) < n):
        have = "no prior" if prior is None else f"a prior with {len(prior.windows)} windows"
        raise ValueError(f"the prior baseline needs a prior with >= {n} windows, got {have}")
    with_text = queries[queries["has_text"]]
    durations = _durations_for(with_text, clips)
    rows = []
    for (clip_uid, annotation_uid, query_idx), duration in zip(
        with_text[["clip_uid", "annotation_uid", "query_idx"]].itertuples(index=False, name=None),
        durations,
        strict=True,
    ):
        duration = float(duration)
        if kind == "uniform":
            windows = uniform_windows(duration, n)
        else:
            windows = [[s * duration, e * duration] for s, e in prior.windows[:n]]
        rows.append(Prediction(clip_uid, annotation_uid, int(query_idx), windows))
    logger.info(
        "%s baseline: %d predictions, %d queries without text not predicted",
        kind,
        len(rows),
        len(queries) - len(rows),
    )
    return rows
