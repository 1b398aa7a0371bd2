"""Monotonic alignment of ordered steps to video chunks: the exact segment DP, its DFS reference, peak
Viterbi, the unconstrained per-step best window, and R@5 alternatives.

Every decoder reads a similarity matrix ``S[k, n]`` (step k, chunk n) and the gain ``G = S - lam``: a
chunk inside step k's segment scores ``G[k, n]``, a background chunk 0, a skipped step (optional) ``-mu``.
A segment is a half-open chunk range ``[a, b)``; skipped steps get ``(-1, -1)``.

The segment DP (spec dual-encoder-and-steps §6) is exact and O(K·N): for each step, both maxima of the
recurrence are prefix maxima over n, so a row is two ``np.maximum.accumulate`` calls (a sliding-window maximum
when segments have a maximum length), never a Python loop over chunks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

NEG = -np.inf


@dataclass(frozen=True)
class Alignment:
    """Segments ``[start, end)`` in chunks per step (``-1`` for a skipped step) and the optimal score."""

    starts: np.ndarray  # [K] int
    ends: np.ndarray  # [K] int
    score: float


def background_bias(sim: np.ndarray, percentile: float) -> float:
    """lambda: the ``percentile`` of one video's similarities; only chunks above it gain by joining a step."""
    return float(np.percentile(sim, percentile))


def segment_score(gain: np.ndarray, starts: np.ndarray, ends: np.ndarray, mu: float = math.inf) -> float:
    """Score of a placement: the gains inside each segment minus ``mu`` per skipped step."""
    total = 0.0
    for k, (a, b) in enumerate(zip(starts, ends, strict=True)):
        total += -mu if a < 0 else float(gain[k, a:b].sum())
    return total


def sliding_max(x: np.ndarray, width: int) -> np.ndarray:
    """``out[n] = max(x[max(0, n-width+1) : n+1])`` in O(len) (van Herk / Gil-Werman: prefix maxima of blocks
    of ``width`` plus their suffix maxima, all vectorised). Values only: the decoders recompute the few
    argmaxes they need, which halves the cost of the DP's forward pass."""
    n = len(x)
    if width >= n:
        return np.maximum.accumulate(x)
    pad = (-n) % width
    blocks = np.concatenate([x, np.full(pad, NEG)]).reshape(-1, width)
    pre = np.maximum.accumulate(blocks, axis=1).ravel()
    suf = np.maximum.accumulate(blocks[:, ::-1], axis=1)[:, ::-1].ravel()
    out = pre[:n].copy()
    # the window ending at m >= width-1 is the suffix of the block holding m-width+1 plus the prefix of m's
    np.maximum(suf[: n - width + 1], pre[width - 1 : n], out=out[width - 1 :])
    return out


def _last_argmax(x: np.ndarray) -> int:
    """Index of the last maximum of ``x``: on a tie the latest start wins, i.e. the shortest segment."""
    return len(x) - 1 - int(np.argmax(x[::-1]))


def _prefix_argmax(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    out = np.maximum.accumulate(x)
    idx = np.maximum.accumulate(np.where(x >= out, np.arange(len(x)), 0))
    return out, idx


def align_dp(gain: np.ndarray, *, mu: float = math.inf, max_len: int | None = None) -> Alignment:
    """The exact segment DP: K ordered, non-empty, non-overlapping segments in N chunks maximising the summed
    gain (``mu`` finite allows skipping a step at cost ``mu``; ``max_len`` caps a segment's length in chunks).

    ``F[k, n]`` = best score with steps 1..k inside chunks ``[0, n)``;
    ``F[k, n] = max(F[k, n-1], max_{a<n} (F[k-1, a] - P[k, a]) + P[k, n], F[k-1, n] - mu)`` with ``P`` the
    prefix sums of ``gain[k]``. The inner max over ``a`` is a running (or sliding-window) maximum. The forward
    pass keeps only the values of ``F``; the backtrack recomputes the K argmaxes on the optimal path.
    """
    k_steps, n_chunks = gain.shape
    skips = math.isfinite(mu)
    if k_steps > n_chunks and not skips:
        raise ValueError(f"{k_steps} steps cannot be placed in {n_chunks} chunks without skips")
    prefix = np.zeros((k_steps, n_chunks + 1))
    np.cumsum(gain, axis=1, out=prefix[:, 1:])
    table = np.empty((k_steps + 1, n_chunks + 1))  # table[k] = F[k, :], F[0, :] = 0
    table[0] = 0.0
    opening = np.empty(n_chunks + 1)
    cand = np.empty(n_chunks + 1)
    for k in range(k_steps):
        prev = table[k]
        cand[0] = NEG  # no segment ends at chunk 0
        np.subtract(prev, prefix[k], out=opening)  # value of starting step k at chunk a
        best = np.maximum.accumulate(opening) if max_len is None else sliding_max(opening, max_len)
        np.add(best[:-1], prefix[k, 1:], out=cand[1:])  # step k = [a, n) with a <= n-1
        if skips:
            np.maximum(cand, prev - mu, out=cand)
        np.maximum.accumulate(cand, out=table[k + 1])  # or chunk n-1 is background
    score = float(table[k_steps, n_chunks])
    if not math.isfinite(score):
        raise ValueError(f"no feasible alignment of {k_steps} steps in {n_chunks} chunks (max_len={max_len})")
    starts = np.full(k_steps, -1, dtype=np.int64)
    ends = np.full(k_steps, -1, dtype=np.int64)
    n = n_chunks
    for k in range(k_steps - 1, -1, -1):
        prev, cur = table[k], table[k + 1]
        # the first n' <= n reaching F[k, n]: on a tie the earlier end wins, so a chunk of zero gain stays
        # background instead of padding a segment
        m = int(np.searchsorted(cur[: n + 1], cur[n], side="left"))
        lo = 0 if max_len is None else max(0, m - max_len)
        opening_m = prev[lo:m] - prefix[k, lo:m]
        a = lo + _last_argmax(opening_m) if m > lo else -1
        if a < 0 or (skips and prev[m] - mu > opening_m[a - lo] + prefix[k, m]):
            n = m  # step k skipped (the same comparison as the forward pass)
            continue
        starts[k], ends[k] = a, m
        n = a
    return Alignment(starts, ends, score)


def align_dfs(gain: np.ndarray, *, mu: float = math.inf, max_len: int | None = None) -> Alignment:
    """Reference: depth-first search over placements with branch-and-bound pruning; exact, exponential in K.

    The bound for the steps still to place is the sum of each step's best segment (or ``-mu``) in the chunks
    left, so a branch is cut only when it cannot beat the best placement found so far.
    """
    k_steps, n_chunks = gain.shape
    width = max_len or n_chunks
    prefix = np.zeros((k_steps, n_chunks + 1))
    np.cumsum(gain, axis=1, out=prefix[:, 1:])
    # best_after[k, p]: best single segment of step k inside [p, N) (the bound of one step)
    best_after = np.full((k_steps + 1, n_chunks + 1), NEG)
    for k in range(k_steps):
        for p in range(n_chunks - 1, -1, -1):
            ends_ = prefix[k, p + 1 : min(n_chunks, p + width) + 1] - prefix[k, p]
            best_after[k, p] = max(best_after[k, p + 1], float(ends_.max()))
        if math.isfinite(mu):
            best_after[k] = np.maximum(best_after[k], -mu)
    bound = np.zeros((k_steps + 1, n_chunks + 1))
    for k in range(k_steps - 1, -1, -1):
        bound[k] = bound[k + 1] + best_after[k]
    best = {"score": NEG, "starts": None, "ends": None}
    starts = np.full(k_steps, -1, dtype=np.int64)
    ends = np.full(k_steps, -1, dtype=np.int64)

    def visit(k: int, p: int, score: float) -> None:
        if k == k_steps:
            if score > best["score"]:
                best.update(score=score, starts=starts.copy(), ends=ends.copy())
            return
        if score + bound[k, p] <= best["score"]:
            return
        if math.isfinite(mu):
            starts[k] = ends[k] = -1
            visit(k + 1, p, score - mu)
        for a in range(p, n_chunks):
            for b in range(a + 1, min(n_chunks, a + width) + 1):
                starts[k], ends[k] = a, b
                visit(k + 1, b, score + prefix[k, b] - prefix[k, a])
        starts[k] = ends[k] = -1

    visit(0, 0, 0.0)
    if best["starts"] is None:
        raise ValueError(f"no feasible alignment of {k_steps} steps in {n_chunks} chunks (max_len={max_len})")
    return Alignment(best["starts"], best["ends"], float(best["score"]))


def best_windows(
    gain: np.ndarray, *, max_len: int | None = None, mask: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The best single segment of every row independently (max-sum subarray): the unconstrained per-step
    decoder. ``mask`` (bool [K, N]) marks chunks a segment may not cover. Returns starts, ends (exclusive) and
    scores; a row with every chunk masked gets ``(-1, -1, -inf)``."""
    k_steps, n_chunks = gain.shape
    if mask is not None:
        # a masked chunk costs more than any unmasked segment can lose, so it is covered only if all are
        penalty = 2.0 * (np.abs(gain).sum(axis=1, keepdims=True) + 1.0)
        gain = np.where(mask, -penalty, gain)
    prefix = np.zeros((k_steps, n_chunks + 1))
    np.cumsum(gain, axis=1, out=prefix[:, 1:])
    starts = np.full(k_steps, -1, dtype=np.int64)
    ends = np.full(k_steps, -1, dtype=np.int64)
    scores = np.full(k_steps, NEG)
    for k in range(k_steps):
        opening = -prefix[k, :-1]  # starting at a costs -P[a]
        best = np.maximum.accumulate(opening) if max_len is None else sliding_max(opening, max_len)
        value = best + prefix[k, 1:]  # the best segment ending at n + 1
        n = int(np.argmax(value))
        lo = 0 if max_len is None else max(0, n + 1 - max_len)
        a = lo + _last_argmax(opening[lo : n + 1])
        if mask is None or not mask[k, a : n + 1].any():
            starts[k], ends[k], scores[k] = a, n + 1, value[n]
    return starts, ends, scores


def top_windows(
    gain: np.ndarray, first: tuple[np.ndarray, np.ndarray], count: int, *, max_len: int | None = None
) -> np.ndarray:
    """``count`` ranked windows per step: the decoder's window first, then masked re-runs of the per-step
    best segment (each new window may not overlap the ones before it). Returns ``[K, count, 2]`` chunk ranges;
    a row with no room left repeats its last window, so every query has ``count`` windows."""
    k_steps, n_chunks = gain.shape
    out = np.zeros((k_steps, count, 2), dtype=np.int64)
    mask = np.zeros((k_steps, n_chunks), dtype=bool)
    s0, e0 = first
    for k in range(k_steps):
        out[k, 0] = (s0[k], e0[k])
        if s0[k] >= 0:
            mask[k, s0[k] : e0[k]] = True
    fallback_s, fallback_e, _ = best_windows(gain, max_len=max_len)
    skipped = s0 < 0
    out[skipped, 0, 0], out[skipped, 0, 1] = fallback_s[skipped], fallback_e[skipped]
    for k in np.flatnonzero(skipped):
        mask[k, fallback_s[k] : fallback_e[k]] = True
    for r in range(1, count):
        s, e, _ = best_windows(gain, max_len=max_len, mask=mask)
        none = s < 0
        s[none], e[none] = out[none, r - 1, 0], out[none, r - 1, 1]
        out[:, r, 0], out[:, r, 1] = s, e
        for k in np.flatnonzero(~none):
            mask[k, s[k] : e[k]] = True
    return out


def peak_viterbi(sim: np.ndarray, *, tolerance: int = 0) -> np.ndarray:
    """One peak chunk per query in (near) order, maximising the summed similarity at the peaks:
    ``dp[q, n] = sim[q, n] + max{dp[q-1, m] : m <= n + tolerance}`` (HiERO-StepG's decoding, on chunks).
    Returns the [K] peak chunks."""
    k_steps, n_chunks = sim.shape
    dp = np.empty_like(sim, dtype=float)
    back = np.zeros((k_steps, n_chunks), dtype=np.int64)
    dp[0] = sim[0]
    for q in range(1, k_steps):
        best, arg = _prefix_argmax(dp[q - 1])
        reach = np.minimum(np.arange(n_chunks) + tolerance, n_chunks - 1)
        dp[q] = sim[q] + best[reach]
        back[q] = arg[reach]
    peaks = np.zeros(k_steps, dtype=np.int64)
    peaks[-1] = int(np.argmax(dp[-1]))
    for q in range(k_steps - 1, 0, -1):
        peaks[q - 1] = back[q, peaks[q]]
    return peaks


def grow_windows(
    gain: np.ndarray, peaks: np.ndarray, *, max_len: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Grow a window around each peak chunk over the contiguous chunks with positive gain (at least the peak
    itself), up to ``max_len`` chunks: turns point decoders (Viterbi, argmax) into windows."""
    k_steps, n_chunks = gain.shape
    limit = max_len or n_chunks
    starts = peaks.astype(np.int64).copy()
    ends = starts + 1
    for k in range(k_steps):
        row = gain[k]
        while ends[k] - starts[k] < limit:
            left = row[starts[k] - 1] if starts[k] > 0 else NEG
            right = row[ends[k]] if ends[k] < n_chunks else NEG
            if max(left, right) <= 0:
                break
            if left >= right:
                starts[k] -= 1
            else:
                ends[k] += 1
    return starts, ends


def align_substeps(
    gain: np.ndarray,
    parent: tuple[int, int],
    *,
    slack: int,
    mu: float = math.inf,
    max_len: int | None = None,
) -> Alignment:
    """Align one step's ``J`` ordered substeps (``gain [J, N]``) inside the parent's chunk window
    ``[a, b)`` widened by ``slack`` chunks on each side (substeps may extend past their parent, spec §4):
    the segment DP on that slice, segments returned in absolute chunks. A slice narrower than ``J`` chunks
    is widened around the parent until the substeps fit (or the video ends)."""
    n_sub, n_chunks = gain.shape
    a, b = parent
    if not 0 <= a < b <= n_chunks:
        raise ValueError(f"parent window [{a}, {b}) is not inside {n_chunks} chunks")
    lo, hi = max(0, a - slack), min(n_chunks, b + slack)
    while hi - lo < n_sub and (lo > 0 or hi < n_chunks):
        lo, hi = max(0, lo - 1), min(n_chunks, hi + 1)
    inner = align_dp(gain[:, lo:hi], mu=mu, max_len=max_len)
    placed = inner.starts >= 0
    starts = np.where(placed, inner.starts + lo, -1)
    ends = np.where(placed, inner.ends + lo, -1)
    return Alignment(starts, ends, inner.score)
