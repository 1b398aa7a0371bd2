"""From ground-truth windows in seconds to VSLNet's unit indices and back (vslnet.md 1-3, 6, 9, 10).

A clip's features are pooled to at most ``max_pos_len`` *units* (:func:`pool_features`); a window becomes
the pair of inclusive unit indices ``(s, e)`` whose grid window has the highest IoU with it (the
``time_to_index`` rule), and a predicted pair becomes seconds again on the same grid.

Two label modes (vslnet.md 10):

- ``compatible`` reproduces the reference bit for bit: window ends and the clip duration are first
  floored to the feature set's row grid (``int(t * r)`` with ``r = grid.rows_per_second``, the reference's
  1.875 on the official grid), grids are float32, and a zero-length window gets the label ``(0, 0)``.
- ``corrected`` labels the exact window against the true clip duration, places windows of at most 1/30 s
  on the unit holding their midpoint, and decodes over the whole clip.

Every function takes the clip's true duration ``video_end_sec - video_start_sec``; each mode derives the
duration it works with. ``grid`` is the :class:`~egonlq.timegrid.FeatureGrid` the clip's feature rows sit on
(``egonlq.data.features.clip_features_grid``); only the compatible mode's flooring depends on it, and the
default (:data:`~egonlq.timegrid.OFFICIAL`) gives the reference's results bit for bit.
"""

from __future__ import annotations

import math
import random

import numpy as np

from egonlq.timegrid import OFFICIAL, FeatureGrid, is_zero_length

LABEL_MODES = ("compatible", "corrected")


def pool_features(x: np.ndarray, max_len: int) -> np.ndarray:
    """Pool clip features ``[N, D]`` to ``[min(N, max_len), D]`` with the reference's bin rule.

    Bin edges are ``round_half_even(k / max_len * N)`` for ``k = 0..max_len``, clipped to ``N - 1``; a bin
    is the mean of rows ``[edge_k, edge_k+1)``, or the single row ``edge_k`` when that range is empty. The
    last row is never used when ``N > max_len``.
    """
    if max_len < 1:
        raise ValueError(f"max_len must be >= 1, got {max_len}")
    n = x.shape[0]
    if n == 0:
        raise ValueError("cannot pool an empty feature array")
    if n <= max_len:
        return x
    edges = np.round(np.arange(0, max_len + 1, 1.0) / max_len * n).astype(np.int64)
    edges = np.minimum(edges, n - 1)
    units = [x[a:b].mean(axis=0) if a < b else x[a] for a, b in zip(edges[:-1], edges[1:], strict=True)]
    return np.stack(units)


# ---- the argmax-IoU rule shared by both modes ----


def _best_pair(
    start: float, end: float, unit_starts: np.ndarray, unit_ends: np.ndarray
) -> tuple[int, int, float]:
    """The pair ``(i, j)`` whose window ``[unit_starts[i], unit_ends[j]]`` best overlaps ``[start, end]``.

    IoU in float64 with the union floored at 1e-12; the first maximum in row-major order wins (ties: smallest
    ``i``, then smallest ``j``). Pairs with ``i > j`` have no intersection, hence IoU 0.
    """
    starts = unit_starts.astype(np.float64)[:, None]  # [L, 1]
    ends = unit_ends.astype(np.float64)[None, :]  # [1, L]
    inter = np.maximum(0.0, np.minimum(ends, end) - np.maximum(starts, start))
    union = np.maximum(1e-12, np.maximum(ends, end) - np.minimum(starts, start))
    iou = inter / union  # [L, L]
    flat = int(np.argmax(iou))
    i, j = divmod(flat, iou.shape[1])
    return i, j, float(iou[i, j])


def _check_v_len(v_len: int) -> None:
    if v_len < 1:
        raise ValueError(f"v_len must be >= 1, got {v_len}")


# ---- compatible mode ----


def _floor_to_rows(t: float, grid: FeatureGrid) -> float:
    """``int(t * r) / r`` with ``r = grid.rows_per_second``: the start of ``t``'s row, as the reference
    computes it (``int`` truncates, so its intended ceil of end times never applies)."""
    r = grid.rows_per_second
    return float(int(t * r)) / r


def compatible_window(
    clip_start_sec: float, clip_end_sec: float, duration: float, *, grid: FeatureGrid = OFFICIAL
) -> tuple[float, float, float]:
    """The reference's quantised window and duration: ``(s_time, e_time, D)`` in seconds.

    With ``r = grid.rows_per_second`` (1.875 officially): ``timestamps = int(t * r)`` (a floor, for ends
    too), ``D = int(duration * r) / r``, ``s_time = max(0, ts0 / r)``, ``e_time = min(ts1 / r, D)``.
    """
    d = compatible_duration(duration, grid=grid)
    s_time = max(0.0, _floor_to_rows(clip_start_sec, grid))
    e_time = min(_floor_to_rows(clip_end_sec, grid), d)
    return s_time, e_time, d


def compatible_duration(duration: float, *, grid: FeatureGrid = OFFICIAL) -> float:
    """``D = num_frames / r`` with ``num_frames = int(duration * r)``: up to one row (0.53 s officially)
    short."""
    return _floor_to_rows(duration, grid)


def labels_compatible(
    clip_start_sec: float, clip_end_sec: float, duration: float, v_len: int, *, grid: FeatureGrid = OFFICIAL
) -> tuple[int, int]:
    """Reference label ``(s_ind, e_ind)``: argmax IoU of the quantised window on the float32 grid."""
    _check_v_len(v_len)
    s_time, e_time, d = compatible_window(clip_start_sec, clip_end_sec, duration, grid=grid)
    units = np.arange(v_len, dtype=np.float32)
    length, d32 = np.float32(v_len), np.float32(d)
    i, j, _ = _best_pair(s_time, e_time, units / length * d32, (units + 1) / length * d32)
    return i, j


def index_to_times_compatible(
    s: int, e: int, duration: float, v_len: int, *, grid: FeatureGrid = OFFICIAL
) -> tuple[float, float]:
    """Reference decoding: ``(s * D / L, (e + 1) * D / L)`` in float32 with the floored duration ``D``."""
    _check_indices(s, e, v_len)
    length, d32 = np.float32(v_len), np.float32(compatible_duration(duration, grid=grid))
    return float(np.float32(s) * d32 / length), float(np.float32(e + 1) * d32 / length)


# ---- corrected mode ----


def labels_corrected(
    clip_start_sec: float, clip_end_sec: float, duration: float, v_len: int
) -> tuple[int, int]:
    """Label of the exact window (clamped to ``[0, duration]``) on the float64 grid of unit ``duration / L``.

    A window of at most 1/30 s, or one that overlaps no unit, is placed on the unit holding its midpoint.
    """
    _check_v_len(v_len)
    if duration <= 0:
        raise ValueError(f"clip duration must be > 0, got {duration}")
    start = min(max(clip_start_sec, 0.0), duration)
    end = min(max(clip_end_sec, 0.0), duration)
    units = np.arange(v_len, dtype=np.float64)
    i, j, iou = _best_pair(start, end, units * duration / v_len, (units + 1) * duration / v_len)
    if is_zero_length(start, end) or iou == 0.0:
        unit = min(math.floor((start + end) / 2 / (duration / v_len)), v_len - 1)
        return unit, unit
    return i, j


def index_to_times_corrected(s: int, e: int, duration: float, v_len: int) -> tuple[float, float]:
    """Decoding over the whole clip: ``(s * D* / L, min((e + 1) * D* / L, D*))`` in float64."""
    _check_indices(s, e, v_len)
    return s * duration / v_len, min((e + 1) * duration / v_len, duration)


# ---- mode dispatch ----


def span_labels(
    mode: str,
    clip_start_sec: float,
    clip_end_sec: float,
    duration: float,
    v_len: int,
    *,
    grid: FeatureGrid = OFFICIAL,
) -> tuple[int, int]:
    """:func:`labels_compatible` (on ``grid``) or :func:`labels_corrected`, by ``mode``."""
    if mode == "compatible":
        return labels_compatible(clip_start_sec, clip_end_sec, duration, v_len, grid=grid)
    if mode == "corrected":
        return labels_corrected(clip_start_sec, clip_end_sec, duration, v_len)
    raise ValueError(f"unknown label mode {mode!r}, expected one of {LABEL_MODES}")


def span_times(
    mode: str, s: int, e: int, duration: float, v_len: int, *, grid: FeatureGrid = OFFICIAL
) -> tuple[float, float]:
    """:func:`index_to_times_compatible` (on ``grid``) or :func:`index_to_times_corrected`, by ``mode``."""
    if mode == "compatible":
        return index_to_times_compatible(s, e, duration, v_len, grid=grid)
    if mode == "corrected":
        return index_to_times_corrected(s, e, duration, v_len)
    raise ValueError(f"unknown label mode {mode!r}, expected one of {LABEL_MODES}")


# ---- training-time targets ----


def _check_indices(s: int, e: int, v_len: int) -> None:
    if not 0 <= s <= e < v_len:
        raise ValueError(f"span ({s}, {e}) is not a valid inclusive span of {v_len} units")


def jitter_span(s: int, e: int, L: int, factor: float, rng: random.Random) -> tuple[int, int]:  # noqa: N803
    """NaQ temporal response jittering of an inclusive unit span (naq.md 2.2), translation on.

    The window is scaled by ``U(1, factor)`` around its centre, shifted by up to half the growth, rounded
    half to even and clamped to ``[0, L - 1]``. Two draws from ``rng`` per call, in the reference's order.
    """
    _check_indices(s, e, L)
    if factor <= 1:
        raise ValueError(f"the window expansion factor must be > 1, got {factor}")
    c = (s + e) / 2.0
    w = e - s + 1
    w2 = w * rng.uniform(1.0, factor)
    c = c + rng.uniform(-(w2 - w) / 2.0, (w2 - w) / 2.0)
    s = max(round(c - w2 / 2.0), 0)  # round() on a float is round half to even, like np.rint
    e = min(round(c + w2 / 2.0), L - 1)
    s, e = min(max(s, 0), L - 1), min(max(e, 0), L - 1)
    if s > e:
        raise ValueError(f"jittered span ({s}, {e}) is empty")
    return s, e


def highlight_labels(s: int, e: int, v_len: int, extend: float = 0.1) -> np.ndarray:
    """Query-guided highlighting target ``[v_len]`` (float32 0/1): the span widened by ``round(extend * w)``.

    The rounding is half to even (``w = 5`` adds nothing, ``w = 15`` adds 2); the widening is clipped to
    the clip's units.
    """
    _check_indices(s, e, v_len)
    y = np.zeros(v_len, dtype=np.float32)
    ext = round(extend * float(e - s + 1))
    if ext > 0:
        y[max(0, s - ext) : min(e + ext, v_len - 1) + 1] = 1.0
    else:
        y[s : e + 1] = 1.0
    return y
