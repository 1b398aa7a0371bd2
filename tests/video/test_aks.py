"""AKS selection: the worked examples of spec/aks.md section 6, the reference's quirks, and properties."""

from __future__ import annotations

import heapq
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from egonlq.video.aks import (
    AKSParams,
    ConstantScoresWarning,
    select_keyframes,
    topk_selection,
    uniform_selection,
)

# Section 6: M = 4, L = 2, t1 = 0.8, fps 29.97 so sample j is native frame 29 * j.
EXAMPLE_PARAMS = {"M": 4, "depth": 2, "t1": 0.8, "t2": -100.0, "ratio": 1}
SCORES_A = [0.12, 0.40, 0.35, 0.10, 0.05, 0.08, 0.60, 0.55, 0.20, 0.22, 0.18, 0.90, 0.30, 0.31, 0.29, 0.02]
SCORES_B = [0.90 if j in (3, 4, 10, 17) else 0.05 for j in range(24)] + [
    0.30 + 0.05 * ((j - 24) % 7) for j in range(24, 48)
]
SCORES_C = [0.3, 0.5, 0.1]
SCORES_D = [0.9 if j in (2, 3) else 0.1 for j in range(12)] + [
    0.30 + 0.05 * ((j - 12) % 5) for j in range(12, 24)
]


def ids_for(scores: list[float]) -> list[int]:
    return [29 * j for j in range(len(scores))]


def select(scores, mode="reference", ids=None, **params) -> list[int]:
    ids = ids_for(scores) if ids is None else ids
    return select_keyframes(scores, ids, AKSParams(**{**EXAMPLE_PARAMS, **params, "mode": mode})).frame_ids


BINNED_TRACE_16 = [
    (0, 16, 0, "split"),
    (0, 8, 1, "split"),
    (8, 16, 1, "split"),
    (0, 4, 2, "leaf-max-depth"),
    (4, 8, 2, "leaf-max-depth"),
    (8, 12, 2, "leaf-max-depth"),
    (12, 16, 2, "leaf-max-depth"),
]


@pytest.mark.parametrize(
    ("scores", "mode", "expected"),
    [
        (SCORES_A, "reference", [29, 174, 319, 377]),
        (SCORES_A, "improved", [29, 174, 319, 377]),
        (SCORES_B, "reference", [87, 116, 870, 1073]),
        (SCORES_B, "improved", [87, 116, 870, 1073]),
        (SCORES_C, "reference", [0, 29, 58]),
        (SCORES_C, "improved", [0, 29, 58]),
        (SCORES_D, "reference", [58, 174, 464, 609]),
        (SCORES_D, "improved", [58, 87, 464, 609]),
    ],
    ids=["A-ref", "A-imp", "B-ref", "B-imp", "C-ref", "C-imp", "D-ref", "D-imp"],
)
def test_worked_examples(scores, mode, expected):
    assert select(scores, mode) == expected


def test_example_a_degenerates_to_bins():
    sel = select_keyframes(SCORES_A, ids_for(SCORES_A), AKSParams(**EXAMPLE_PARAMS))
    assert sel.trace == BINNED_TRACE_16
    assert not sel.short_video and sel.n_topped_up == 0
    # Global top-4 would take frame 203; binning swaps it for 377.
    assert topk_selection(SCORES_A, ids_for(SCORES_A), 4).frame_ids == [29, 174, 203, 319]
    assert select(SCORES_A, t1=-1.0) == [29, 174, 203, 319]
    assert select(SCORES_A, t1=1.0) == [29, 174, 319, 377]


def test_example_b_keeps_left_half_at_depth_1():
    for mode in ("reference", "improved"):
        sel = select_keyframes(SCORES_B, ids_for(SCORES_B), AKSParams(**EXAMPLE_PARAMS, mode=mode))
        assert sel.trace == [
            (0, 48, 0, "split"),
            (0, 24, 1, "keep"),
            (24, 48, 1, "split"),
            (24, 36, 2, "leaf-max-depth"),
            (36, 48, 2, "leaf-max-depth"),
        ]


def test_example_c_short_video_flag():
    for mode in ("reference", "improved"):
        sel = select_keyframes(SCORES_C, ids_for(SCORES_C), AKSParams(**EXAMPLE_PARAMS, mode=mode))
        assert sel.short_video and sel.trace == []


def test_example_d_improved_keeps_the_peaked_half():
    ref = select_keyframes(SCORES_D, ids_for(SCORES_D), AKSParams(**EXAMPLE_PARAMS))
    imp = select_keyframes(SCORES_D, ids_for(SCORES_D), AKSParams(**EXAMPLE_PARAMS, mode="improved"))
    assert [t[3] for t in ref.trace] == ["split"] * 3 + ["leaf-max-depth"] * 4
    assert imp.trace[:3] == [(0, 24, 0, "split"), (0, 12, 1, "keep"), (12, 24, 1, "split")]


# ---- the reference's behaviour at the defaults (section 5) ----


def noise(n: int, seed: int = 0) -> list[float]:
    return np.random.default_rng(seed).normal(size=n).tolist()


@pytest.mark.parametrize("n", [600, 1800, 3600])
def test_defaults_on_noise_are_32_bins_of_2(n):
    sel = select_keyframes(noise(n), list(range(n)), AKSParams())
    leaves = [t for t in sel.trace if t[3] != "split"]
    assert len(leaves) == 32 and all(t[2] == 5 and t[3] == "leaf-max-depth" for t in leaves)
    assert len(sel.frame_ids) == 64
    assert all(sum(lo <= f < hi for f in sel.frame_ids) == 2 for lo, hi, _, _ in leaves)


def test_wide_plateau_keeps_root_narrow_plateau_does_not():
    wide = [1.0 if 200 <= j < 270 else 0.05 for j in range(600)]
    sel = select_keyframes(wide, list(range(600)), AKSParams())
    assert sel.trace == [(0, 600, 0, "keep")]
    assert sel.frame_ids == list(range(200, 264))
    narrow = [1.0 if 200 <= j < 240 else 0.2 for j in range(600)]
    sel = select_keyframes(narrow, list(range(600)), AKSParams())
    assert {t[2] for t in sel.trace if t[3] != "split"} == {5}


@given(
    curve=st.lists(st.floats(0, 1), min_size=64, max_size=700),
    t1=st.floats(0.05, 0.95),
)
@settings(max_examples=60, deadline=None)
def test_reference_never_keeps_a_segment_of_at_most_M_before_depth_L(curve, t1):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConstantScoresWarning)
        sel = select_keyframes(curve, list(range(len(curve))), AKSParams(t1=t1))
    for lo, hi, d, action in sel.trace:
        if action == "keep":
            assert hi - lo > 64 and d < 5
            assert hi - lo > 64 / (1 - t1)  # the necessary condition of section 5


def test_threshold_one_gives_floor_split_bins():
    n, M, L = 301, 16, 3
    scores = noise(n, seed=3)
    bins = [(0, n)]
    for _ in range(L):
        bins = [half for lo, hi in bins for half in ((lo, lo + (hi - lo) // 2), (lo + (hi - lo) // 2, hi))]
    per_bin = M // 2**L
    expected = sorted(lo + int(i) for lo, hi in bins for i in np.argsort(-np.array(scores[lo:hi]))[:per_bin])
    sel = select_keyframes(scores, list(range(n)), AKSParams(M=M, depth=L, t1=1.0))
    assert sel.frame_ids == expected
    assert [(lo, hi) for lo, hi, _, a in sel.trace if a == "leaf-max-depth"] == bins


@given(
    scores=st.lists(st.integers(0, 6).map(float), min_size=1, max_size=300),
    M=st.integers(1, 40),
)
@settings(max_examples=80, deadline=None)
def test_threshold_minus_one_gives_global_stable_topk(scores, M):
    ids = [3 * j + 1 for j in range(len(scores))]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConstantScoresWarning)
        sel = select_keyframes(scores, ids, AKSParams(M=M, t1=-1.0))
    if len(scores) < M:
        assert sel.short_video and sel.frame_ids == ids
    elif max(scores) > min(scores):
        order = sorted(range(len(scores)), key=lambda j: (-scores[j], j))[:M]
        assert sel.frame_ids == sorted(ids[j] for j in order)
        assert sel.frame_ids == topk_selection(scores, ids, M).frame_ids


# ---- edge cases ----


@pytest.mark.parametrize(
    ("M", "L", "ref_count", "imp_count"), [(48, 5, 32, 48), (32, 6, 0, 32), (64, 5, 64, 64)]
)
def test_budgets_that_do_not_divide(M, L, ref_count, imp_count):
    scores = noise(600, seed=1)
    ref = select_keyframes(scores, list(range(600)), AKSParams(M=M, depth=L))
    imp = select_keyframes(scores, list(range(600)), AKSParams(M=M, depth=L, mode="improved"))
    assert (len(ref.frame_ids), len(imp.frame_ids)) == (ref_count, imp_count)


def test_fewer_samples_than_M_returns_them_all():
    for mode in ("reference", "improved"):
        sel = select_keyframes([0.5] * 10, list(range(0, 100, 10)), AKSParams(mode=mode))
        assert sel.short_video and sel.frame_ids == list(range(0, 100, 10)) and sel.trace == []
    sel = select_keyframes([], [], AKSParams())
    assert sel.short_video and sel.frame_ids == []


def test_ratio_subsamples_before_the_short_video_test():
    sel = select_keyframes(noise(100), list(range(100)), AKSParams(ratio=2))
    assert sel.short_video and sel.frame_ids == list(range(0, 100, 2))
    # 129 samples at ratio 2 keep 64: the selection can only use even samples.
    sel = select_keyframes(noise(129), list(range(129)), AKSParams(ratio=2, depth=0, t1=-1.0))
    assert not sel.short_video and sel.frame_ids == list(range(0, 128, 2))


def test_constant_scores_reference_warns_and_takes_leaf_heads():
    with pytest.warns(ConstantScoresWarning):
        sel = select_keyframes([0.7] * 100, list(range(100)), AKSParams(M=8, depth=2))
    # depth-2 leaves [0:25], [25:50], [50:75], [75:100], int(8 / 4) = 2 each: their first two samples.
    assert sel.frame_ids == [0, 1, 25, 26, 50, 51, 75, 76]
    assert all(a != "keep" for *_, a in sel.trace)


def test_constant_scores_improved_are_zeros_without_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sel = select_keyframes([0.7] * 100, list(range(100)), AKSParams(M=8, depth=2, mode="improved"))
        assert sel.frame_ids == [0, 1, 25, 26, 50, 51, 75, 76]
        sel = select_keyframes([0.7] * 100, list(range(100)), AKSParams(M=8, t1=-1.0, mode="improved"))
        assert sel.frame_ids == list(range(8))


def test_improved_keeps_a_segment_no_longer_than_its_budget():
    sel = select_keyframes([0.1, 0.9, 0.3, 0.2], [0, 5, 9, 14], AKSParams(M=4, depth=2, mode="improved"))
    assert sel.trace == [(0, 4, 0, "keep")] and sel.frame_ids == [0, 5, 9, 14]


@pytest.mark.parametrize(
    "params",
    [
        {"M": 0},
        {"M": 2.0},
        {"depth": -1},
        {"ratio": 0},
        {"t1": "0.8"},
        {"t1": True},
        {"t2": float("nan")},
        {"t1": float("inf")},
        {"mode": "fast"},
        {"t1": 1.5, "mode": "improved"},
        {"t1": -1.01, "mode": "improved"},
    ],
)
def test_invalid_params_are_refused(params):
    with pytest.raises(ValueError, match="AKS"):
        AKSParams(**params)


def test_reference_accepts_thresholds_outside_the_unit_range_and_int_thresholds():
    assert AKSParams(t1=2.0).t1 == 2.0
    assert AKSParams(t1=1, mode="improved").t1 == 1


def test_bad_scores_are_refused():
    with pytest.raises(ValueError, match="equal length"):
        select_keyframes([0.1, 0.2], [0], AKSParams(M=1))
    with pytest.raises(ValueError, match="finite; sample 1"):
        select_keyframes([0.1, float("nan")], [0, 1], AKSParams(M=1))
    with pytest.raises(ValueError, match="strictly increasing"):
        select_keyframes([0.1, 0.2], [5, 5], AKSParams(M=1))


# ---- baselines ----


def test_uniform_selection():
    ids = list(range(0, 300, 30))  # 10 samples
    assert uniform_selection(ids, 4).frame_ids == [0, 90, 180, 270]  # positions 0, 3, 6, 9
    assert uniform_selection(ids, 1).frame_ids == [0]
    assert uniform_selection(ids, 10).frame_ids == ids
    short = uniform_selection(ids[:3], 4)
    assert short.short_video and short.frame_ids == [0, 30, 60]
    with pytest.raises(ValueError, match="budget"):
        uniform_selection(ids, 0)


def test_topk_selection_is_stable_and_sorted():
    sel = topk_selection([0.5, 0.9, 0.5, 0.9, 0.1], [10, 20, 30, 40, 50], 3)
    assert sel.frame_ids == [10, 20, 40] and not sel.short_video


# ---- parity with a faithful re-implementation of frame_select.py, and properties ----


def reference_oracle(scores, fns, M, L, t1, t2, ratio):
    """frame_select.py's semantics written the way it computes: heapq.nlargest, np.mean, list slicing."""
    nums = int(len(scores) / ratio)
    score = [scores[i * ratio] for i in range(nums)]
    fn = [fns[i * ratio] for i in range(nums)]
    if len(score) < M:
        return fn
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        x = (np.array(score) - np.min(score)) / (np.max(score) - np.min(score))
        level, leaves = [(x, fn, 0)], []
        while level:
            nxt = []
            for seg, f, d in level:
                top = heapq.nlargest(M, range(len(seg)), seg.__getitem__)
                if np.mean([seg[t] for t in top]) - np.mean(seg) > t1 and np.std(seg) > t2:
                    leaves.append((seg, f, d))
                elif d < L:
                    mid = len(seg) // 2
                    nxt += [(seg[:mid], f[:mid], d + 1), (seg[mid:], f[mid:], d + 1)]
                else:
                    leaves.append((seg, f, d))
            level = nxt
    out = []
    for seg, f, d in leaves:
        out += [f[t] for t in heapq.nlargest(int(M / 2**d), range(len(seg)), seg.__getitem__)]
    return sorted(out)


score_lists = st.one_of(
    st.lists(st.integers(0, 5).map(float), max_size=400),  # many ties
    st.lists(st.floats(-3, 3, allow_nan=False), max_size=400),
)
params_st = st.builds(
    AKSParams,
    M=st.integers(1, 40),
    depth=st.integers(0, 6),
    t1=st.one_of(st.sampled_from([0.8, 0.0, -1.0, 1.0]), st.floats(-1, 1)),
    t2=st.one_of(st.just(-100.0), st.floats(0, 0.5)),
    ratio=st.integers(1, 3),
)


@given(scores=score_lists, params=params_st)
@settings(max_examples=150, deadline=None)
def test_reference_mode_matches_the_reference_code(scores, params):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConstantScoresWarning)
        got = select_keyframes(scores, ids_for(scores), params).frame_ids
    assert got == reference_oracle(
        scores, ids_for(scores), params.M, params.depth, params.t1, params.t2, params.ratio
    )


@given(scores=score_lists, params=params_st, mode=st.sampled_from(["reference", "improved"]))
@settings(max_examples=150, deadline=None)
def test_selection_is_a_sorted_unique_subset(scores, params, mode):
    ids = ids_for(scores)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConstantScoresWarning)
        got = select_keyframes(scores, ids, AKSParams(**{**params.__dict__, "mode": mode})).frame_ids
    assert got == sorted(set(got)) and set(got) <= set(ids[:: params.ratio])


@given(
    scores=st.lists(st.integers(0, 100), max_size=300),
    a=st.one_of(st.integers(1, 1000), st.sampled_from([0.5, 0.25, 0.125])),
    b=st.integers(-(10**6), 10**6),
    params=params_st,
    mode=st.sampled_from(["reference", "improved"]),
)
@settings(max_examples=120, deadline=None)
def test_invariant_to_positive_affine_rescaling(scores, a, b, params, mode):
    # Integer scores and these a, b keep a * s + b exact, so the normalised values are identical.
    params = AKSParams(**{**params.__dict__, "mode": mode})
    ids = ids_for(scores)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConstantScoresWarning)
        plain = select_keyframes([float(s) for s in scores], ids, params)
        scaled = select_keyframes([a * s + b for s in scores], ids, params)
    assert plain.frame_ids == scaled.frame_ids and plain.trace == scaled.trace


@given(data=st.data(), L=st.integers(0, 5), per_leaf=st.integers(1, 4), t1=st.floats(-1, 1))
@settings(max_examples=100, deadline=None)
def test_reference_gives_exactly_M_when_budgets_divide(data, L, per_leaf, t1):
    M = per_leaf * 2**L
    scores = data.draw(st.lists(st.floats(0, 1), min_size=M, max_size=M + 300))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConstantScoresWarning)
        sel = select_keyframes(scores, list(range(len(scores))), AKSParams(M=M, depth=L, t1=t1))
    assert len(sel.frame_ids) == M


@given(scores=score_lists, params=params_st)
@settings(max_examples=150, deadline=None)
def test_improved_gives_min_M_n_always(scores, params):
    params = AKSParams(**{**params.__dict__, "mode": "improved"})
    sel = select_keyframes(scores, ids_for(scores), params)
    n = len(scores) // params.ratio
    assert len(sel.frame_ids) == min(params.M, n)
    assert sel.short_video == (n < params.M)
    # Budgets split as floor/rest along floor/rest splits, so every leaf fills its budget: no top-up needed.
    assert sel.n_topped_up == 0
