"""The alignment decoders: the segment DP on hand examples, DP == DFS on random small cases, the
sliding-window maximum, the per-step best windows and their R@5 alternatives, peak Viterbi."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from egonlq.steps.align import (
    align_dfs,
    align_dp,
    align_substeps,
    background_bias,
    best_windows,
    grow_windows,
    peak_viterbi,
    segment_score,
    sliding_max,
    top_windows,
)


def test_dp_hand_example_places_each_step_on_its_block() -> None:
    # step 0 likes chunks 1-2, step 1 likes chunk 4; chunk 0, 3, 5 are background
    gain = np.array([[-1.0, 2.0, 1.0, -1.0, -1.0, -1.0], [-1.0, -1.0, -1.0, -1.0, 3.0, -1.0]])
    a = align_dp(gain)
    assert a.starts.tolist() == [1, 4] and a.ends.tolist() == [3, 5]
    assert a.score == pytest.approx(6.0)


def test_dp_order_disambiguates_repeated_descriptions() -> None:
    # two identical rows (the same description twice): the order puts the first on the first peak
    row = [3.0, -1.0, -1.0, 3.0]
    a = align_dp(np.array([row, row]))
    assert a.starts.tolist() == [0, 3] and a.ends.tolist() == [1, 4]


def test_dp_order_constraint_beats_greedy() -> None:
    # step 1's best chunk (0) is before step 0's; the order forces step 1 later
    gain = np.array([[-1.0, 2.0, -1.0, -1.0], [5.0, -1.0, -1.0, 1.0]])
    a = align_dp(gain)
    assert a.starts.tolist() == [1, 3] and a.score == pytest.approx(3.0)
    s, e, _ = best_windows(gain)
    assert s.tolist() == [1, 0]  # unconstrained: out of order


def test_dp_skip_drops_a_step_that_costs_more_than_mu() -> None:
    gain = np.array([[2.0, -1.0, -1.0], [-5.0, -5.0, -5.0], [-1.0, -1.0, 2.0]])
    assert align_dp(gain).score == pytest.approx(-1.0)  # forced to place step 1 at -5 + ... best is 2-5+2
    a = align_dp(gain, mu=1.0)
    assert a.starts.tolist() == [0, -1, 2] and a.score == pytest.approx(3.0)


def test_dp_max_len_caps_segments() -> None:
    gain = np.ones((1, 10))
    assert (align_dp(gain).starts[0], align_dp(gain).ends[0]) == (0, 10)
    a = align_dp(gain, max_len=4)
    assert a.ends[0] - a.starts[0] == 4 and a.score == pytest.approx(4.0)


def test_dp_infeasible_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="3 steps cannot be placed in 2 chunks"):
        align_dp(np.zeros((3, 2)))
    with pytest.raises(ValueError, match="no feasible alignment"):
        align_dfs(np.zeros((3, 2)))


def test_background_bias_is_the_percentile() -> None:
    sim = np.arange(101, dtype=float).reshape(1, -1)
    assert background_bias(sim, 90) == pytest.approx(90.0)


@settings(max_examples=150, deadline=None)
@given(
    k=st.integers(1, 6),
    extra=st.integers(0, 34),
    seed=st.integers(0, 2**31 - 1),
    mu=st.sampled_from([math.inf, 0.3, 2.0]),
    max_len=st.sampled_from([None, 1, 3, 8]),
)
def test_dp_equals_dfs_optimum(k: int, extra: int, seed: int, mu: float, max_len: int | None) -> None:
    n = k + extra
    gain = np.random.default_rng(seed).normal(size=(k, n)).round(2)
    dp, dfs = align_dp(gain, mu=mu, max_len=max_len), align_dfs(gain, mu=mu, max_len=max_len)
    assert dp.score == pytest.approx(dfs.score, abs=1e-9)
    assert segment_score(gain, dp.starts, dp.ends, mu) == pytest.approx(dp.score, abs=1e-9)
    placed = dp.starts >= 0
    lengths = dp.ends[placed] - dp.starts[placed]
    assert (lengths >= 1).all() and (max_len is None or (lengths <= max_len).all())
    assert (dp.starts[placed][1:] >= dp.ends[placed][:-1]).all()  # ordered, non-overlapping


@settings(max_examples=100, deadline=None)
@given(values=st.lists(st.floats(-100, 100), min_size=1, max_size=40), width=st.integers(1, 45))
def test_sliding_max_matches_naive(values: list[float], width: int) -> None:
    x = np.array(values)
    out = sliding_max(x, width)
    assert out.tolist() == [x[max(0, i - width + 1) : i + 1].max() for i in range(len(x))]


def test_best_windows_is_the_max_subarray_and_respects_mask() -> None:
    gain = np.array([[-2.0, 3.0, -1.0, 4.0, -9.0, 5.0]])
    s, e, v = best_windows(gain)
    assert (s[0], e[0], v[0]) == (1, 4, 6.0)
    mask = np.zeros_like(gain, dtype=bool)
    mask[0, 1:4] = True
    s, e, v = best_windows(gain, mask=mask)
    assert (s[0], e[0], v[0]) == (5, 6, 5.0)
    s, _, v = best_windows(gain, mask=np.ones_like(mask))
    assert s[0] == -1 and v[0] == -np.inf


def test_top_windows_first_is_the_decoder_then_disjoint_alternatives() -> None:
    gain = np.array([[1.0, -1.0, 2.0, -1.0, 3.0, -1.0, 0.5]])
    top = top_windows(gain, (np.array([2]), np.array([3])), 5)
    assert top[0, 0].tolist() == [2, 3]
    assert top[0, 1].tolist() == [4, 5] and top[0, 2].tolist() == [0, 1] and top[0, 3].tolist() == [6, 7]
    assert top[0, 4].tolist() == [1, 2]  # only masked-free chunks left: the best of them
    # a skipped step (-1) gets the unconstrained best window first
    assert top_windows(gain, (np.array([-1]), np.array([-1])), 2)[0, 0].tolist() == [2, 5]


def test_top_windows_repeats_last_when_no_room() -> None:
    top = top_windows(np.array([[1.0, 1.0]]), (np.array([0]), np.array([2])), 3)
    assert top[0].tolist() == [[0, 2], [0, 2], [0, 2]]


def test_peak_viterbi_keeps_order_within_tolerance() -> None:
    sim = np.array([[0.0, 0.5, 0.0, 0.9], [0.8, 0.0, 0.6, -1.0]])
    assert peak_viterbi(sim).tolist() == [1, 2]  # 0.5 + 0.6 beats (0, 0) = 0.8 and (3, 3) = -0.1
    assert peak_viterbi(sim, tolerance=3).tolist() == [3, 0]  # far enough back is allowed


def test_grow_windows_over_positive_gain() -> None:
    gain = np.array([[-1.0, 0.5, 2.0, 0.1, -0.2, 1.0]])
    s, e = grow_windows(gain, np.array([2]))
    assert (s[0], e[0]) == (1, 4)
    s, e = grow_windows(gain, np.array([2]), max_len=2)
    assert (s[0], e[0]) == (1, 3)


def test_substeps_are_aligned_inside_the_parent_window_plus_slack() -> None:
    # 12 chunks; parent = [4, 8). Substep 0 peaks at 5, substep 1 at 8 (just past the parent) and both
    # have a stronger decoy far outside (chunk 0 / 11) that the slice must not reach.
    gain = np.full((2, 12), -1.0)
    gain[0, 5], gain[1, 8] = 2.0, 2.0
    gain[0, 0], gain[1, 11] = 5.0, 5.0
    a = align_substeps(gain, (4, 8), slack=1)
    assert a.starts.tolist() == [5, 8] and a.ends.tolist() == [6, 9]
    assert a.score == pytest.approx(4.0)
    # without slack the second substep must stay inside [4, 8)
    tight = align_substeps(gain, (4, 8), slack=0)
    assert tight.ends.max() <= 8 and tight.starts.min() >= 4
    # the whole video as the slice finds the decoys: the restriction is what keeps them out
    assert align_dp(gain).starts.tolist() == [0, 11]


def test_substeps_slice_widens_until_they_fit() -> None:
    gain = np.zeros((3, 10))
    a = align_substeps(gain, (5, 6), slack=0)  # 3 substeps, a 1-chunk parent
    assert (a.starts >= 4).all() and (a.ends <= 7).all()
    assert (np.diff(a.starts) > 0).all()
    with pytest.raises(ValueError, match="parent window"):
        align_substeps(gain, (6, 6), slack=1)


def test_dp_leaves_zero_gain_chunks_to_the_background() -> None:
    # chunks 1-2 gain nothing: on the tie the segment stays [0, 1) instead of padding itself to [0, 3)
    placed = align_dp(np.array([[1.0, 0.0, 0.0, -1.0], [-1.0, -1.0, -1.0, 1.0]]))
    assert placed.starts.tolist() == [0, 3] and placed.ends.tolist() == [1, 4]
