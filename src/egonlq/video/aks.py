"""Adaptive Keyframe Sampling (AKS): choose at most M keyframes from per-frame query-relevance scores.

A pure function (no I/O) in two modes, specified in ``spec/aks.md``:

- ``reference`` reproduces ncTimTang/AKS ``frame_select.py`` exactly, quirks included: the judge always
  compares the top-M mean with the segment mean (so segments of at most M samples are never kept before the
  maximum depth), budgets ``int(M / 2**d)`` may floor to 0, constant scores normalise to NaN.
- ``improved`` judges each segment with its own budget, splits budgets so they always sum to M, keeps a
  segment no longer than its budget whole, normalises constant scores to zeros and tops the result up to
  ``min(M, n)`` frames.

Both normalise the scores once per video (min-max), so the selection is invariant to positive affine
rescaling of the scores, and break ties towards the earlier sample.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

MODES = ("reference", "improved")

TraceAction = Literal["keep", "split", "leaf-max-depth"]


class ConstantScoresWarning(RuntimeWarning):
    """Reference mode got constant scores: min-max normalisation is 0/0 (NaN), as in the original code."""


@dataclass(frozen=True)
class AKSParams:
    """Selection parameters, with the reference CLI defaults (``--max_num_frames 64 --all_depth 5``).

    ``M`` is the frame budget, ``depth`` the maximum split depth L, ``t1`` the threshold on
    ``mean(top) - mean(segment)`` of the normalised scores, ``t2`` the threshold on the segment's population
    std (``-100`` disables it), ``ratio`` keeps every ratio-th score before anything else.
    """

    M: int = 64
    depth: int = 5
    t1: float = 0.8
    t2: float = -100.0
    ratio: int = 1
    mode: str = "reference"

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"AKS mode must be one of {MODES}, got {self.mode!r}")
        for name, low in (("M", 1), ("depth", 0), ("ratio", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"AKS parameter {name} must be an integer >= {low}, got {value!r}")
        for name in ("t1", "t2"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise ValueError(f"AKS threshold {name} must be a finite float, got {value!r}")
        if self.mode == "improved" and not -1.0 <= self.t1 <= 1.0:
            raise ValueError(
                f"AKS threshold t1 must lie in [-1, 1] in improved mode (a difference of normalised "
                f"scores), got {self.t1!r}"
            )


# Named parameter sets (config ``keyframes.aks: <name>``). ``seed``: the keyframe source system's settings
# (32 frames, depth 5, t1 0.8, t2 off); ``demo``: smaller budgets for the demo's short clips.
PARAMETER_SETS: dict[str, tuple[AKSParams, ...]] = {
    "seed": (AKSParams(M=32, depth=5, t1=0.8, t2=-100.0),),
    "demo": (AKSParams(M=8, depth=3, t1=0.8, t2=-100.0), AKSParams(M=16, depth=3, t1=0.5, t2=-100.0)),
}


def parameter_sets(spec: str | Sequence[dict]) -> list[AKSParams]:
    """AKS parameter sets from a name of :data:`PARAMETER_SETS` or a list of ``{M, depth, t1, t2, ratio}``."""
    if isinstance(spec, str):
        if spec not in PARAMETER_SETS:
            raise ValueError(f"unknown AKS parameter set {spec!r}, expected one of {sorted(PARAMETER_SETS)}")
        return list(PARAMETER_SETS[spec])
    return [AKSParams(**entry) for entry in spec]


@dataclass
class Selection:
    """The chosen native frame ids (ascending) and how they were chosen.

    ``short_video``: fewer than M samples, all of them returned unscored. ``n_topped_up``: frames added by
    improved mode's top-up. ``trace``: one ``(lo, hi, depth, action)`` per judged segment in breadth-first
    order, ``lo:hi`` being sample positions after ``ratio`` subsampling.
    """

    frame_ids: list[int]
    short_video: bool
    n_topped_up: int = 0
    trace: list[tuple[int, int, int, TraceAction]] = field(default_factory=list)


def select_keyframes(scores: Sequence[float], frame_ids: Sequence[int], params: AKSParams) -> Selection:
    """Select keyframes from one video; ``frame_ids[i]`` is the native frame index scored by ``scores[i]``."""
    s, ids = _check_inputs(scores, frame_ids)
    n = len(s) // params.ratio
    s, ids = s[: n * params.ratio : params.ratio], ids[: n * params.ratio : params.ratio]
    if n < params.M:
        return Selection(frame_ids=ids.tolist(), short_video=True)

    improved = params.mode == "improved"
    x = _normalise(s, constant_to_zero=improved)
    leaves, trace = _judge_and_split(x, params, improved=improved)

    chosen = np.zeros(n, dtype=bool)
    for lo, hi, budget in leaves:
        chosen[lo + _stable_topk(x[lo:hi], budget)] = True
    n_topped_up = 0
    if improved:
        # Section 7, rule 5. Budgets split floor/rest along floor/rest splits, so every leaf holds at least
        # its budget and this never fires today; it keeps the min(M, n) guarantee if the split rules change.
        missing = min(params.M, n) - int(chosen.sum())
        if missing > 0:
            rest = np.flatnonzero(~chosen)
            chosen[rest[_stable_topk(x[rest], missing)]] = True
            n_topped_up = missing
    return Selection(
        frame_ids=sorted(ids[chosen].tolist()), short_video=False, n_topped_up=n_topped_up, trace=trace
    )


def uniform_selection(frame_ids: Sequence[int], M: int) -> Selection:
    """Baseline: M samples evenly spread over the sampled frames, first and last included.

    Positions are ``floor(i * (n - 1) / (M - 1))`` (the reference consumer's ``linspace(0, n-1, M)`` cast to
    int, in exact integer arithmetic); fewer than M samples are all returned with ``short_video``.
    """
    ids = _check_ids(frame_ids)
    _check_budget(M)
    n = len(ids)
    if n < M:
        return Selection(frame_ids=ids.tolist(), short_video=True)
    positions = [0] if M == 1 else [i * (n - 1) // (M - 1) for i in range(M)]
    return Selection(frame_ids=ids[positions].tolist(), short_video=False)


def topk_selection(scores: Sequence[float], frame_ids: Sequence[int], M: int) -> Selection:
    """Baseline: the M highest scores of the whole video, ties to the earlier sample, ids ascending."""
    s, ids = _check_inputs(scores, frame_ids)
    _check_budget(M)
    if len(s) < M:
        return Selection(frame_ids=ids.tolist(), short_video=True)
    return Selection(frame_ids=sorted(ids[_stable_topk(s, M)].tolist()), short_video=False)


def _judge_and_split(
    x: np.ndarray, params: AKSParams, *, improved: bool
) -> tuple[list[tuple[int, int, int]], list[tuple[int, int, int, TraceAction]]]:
    """Breadth-first judge-and-split from the whole video; returns leaves ``(lo, hi, budget)``, trace."""
    M, L = params.M, params.depth
    level = [(0, len(x), 0, M)]
    leaves: list[tuple[int, int, int]] = []
    trace: list[tuple[int, int, int, TraceAction]] = []
    while level:
        next_level = []
        for lo, hi, d, budget in level:
            seg = x[lo:hi]
            judge_k = max(1, budget) if improved else M
            if (improved and hi - lo <= budget) or (
                _top_mean_gap(seg, judge_k) > params.t1 and _pstd(seg) > params.t2
            ):
                action: TraceAction = "keep"
                leaves.append((lo, hi, budget))
            elif d < L:
                action = "split"
                mid = lo + (hi - lo) // 2
                if improved:
                    left_budget, right_budget = budget // 2, budget - budget // 2
                else:
                    left_budget = right_budget = int(M / 2 ** (d + 1))
                next_level += [(lo, mid, d + 1, left_budget), (mid, hi, d + 1, right_budget)]
            else:
                action = "leaf-max-depth"
                leaves.append((lo, hi, budget))
            trace.append((lo, hi, d, action))
        level = next_level
    return leaves, trace


def _top_mean_gap(seg: np.ndarray, k: int) -> float:
    """``mean(k largest) - mean(seg)``, summed in the reference's order (descending) so floats match it.

    An empty segment gives NaN, as ``np.mean([])`` does in the reference, which never passes the judge.
    """
    if len(seg) == 0:
        return math.nan
    top = np.ascontiguousarray(np.sort(seg)[::-1][:k])
    return float(np.mean(top)) - float(np.mean(seg))


def _pstd(seg: np.ndarray) -> float:
    return float(np.std(seg)) if len(seg) else math.nan


def _stable_topk(values: np.ndarray, k: int) -> np.ndarray:
    """Positions of the k largest values, ties to the earlier position; NaNs last (all-NaN: the first k)."""
    return np.argsort(-values, kind="stable")[:k]


def _normalise(s: np.ndarray, *, constant_to_zero: bool) -> np.ndarray:
    """Min-max normalisation over the whole video. Constant scores: zeros, or NaN (with a warning)."""
    lo, hi = s.min(), s.max()
    if hi > lo:
        return (s - lo) / (hi - lo)
    if constant_to_zero:
        return np.zeros_like(s)
    warnings.warn(
        "constant scores: min-max normalisation gives NaN as in the reference; the selection is the first "
        "int(M / 2**L) samples of every depth-L segment",
        ConstantScoresWarning,
        stacklevel=3,
    )
    return np.full_like(s, np.nan)


def _check_inputs(scores: Sequence[float], frame_ids: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    s = np.asarray(scores, dtype=np.float64)
    ids = _check_ids(frame_ids)
    if s.ndim != 1 or len(s) != len(ids):
        raise ValueError(f"scores and frame_ids must be 1-D of equal length, got {s.shape} and {ids.shape}")
    finite = np.isfinite(s)
    if not finite.all():
        raise ValueError(f"scores must be finite; sample {int(np.argmin(finite))} is {s[~finite][0]}")
    return s, ids


def _check_ids(frame_ids: Sequence[int]) -> np.ndarray:
    ids = np.asarray(frame_ids, dtype=np.int64)
    if ids.ndim != 1 or (len(ids) > 1 and not (np.diff(ids) > 0).all()):
        raise ValueError("frame_ids must be strictly increasing and 1-D (native frame indices of samples)")
    return ids


def _check_budget(M: int) -> None:
    if isinstance(M, bool) or not isinstance(M, int) or M < 1:
        raise ValueError(f"frame budget M must be an integer >= 1, got {M!r}")
