"""Labels, pooling, decoding and jittering against the worked examples of vslnet.md and naq.md."""

from __future__ import annotations

import random
from collections import Counter

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from egonlq.grounding.spans import (
    compatible_duration,
    compatible_window,
    highlight_labels,
    index_to_times_compatible,
    index_to_times_corrected,
    jitter_span,
    labels_compatible,
    labels_corrected,
    pool_features,
    span_labels,
    span_times,
)
from egonlq.timegrid import OFFICIAL, FeatureGrid

# vslnet.md section 10: 480 s clip, 900 frames, L = 128, unit 3.75 s
# (GT exact, timestamps, compatible label, compatible decoded, corrected label, corrected decoded)
WORKED = [
    ((0.0, 43.6657), (0, 81), (0, 11), (0.0, 45.0), (0, 11), (0.0, 45.0)),
    ((10.0, 20.0), (18, 37), (2, 4), (7.5, 18.75), (3, 4), (11.25, 18.75)),
    ((150.49668, 154.489), (282, 289), (40, 40), (150.0, 153.75), (40, 40), (150.0, 153.75)),
    ((228.57423, 228.57423), (428, 428), (0, 0), (0.0, 3.75), (60, 60), (225.0, 228.75)),
    ((470.2, 480.0), (881, 900), (125, 127), (468.75, 480.0), (125, 127), (468.75, 480.0)),
]


@pytest.mark.parametrize(("gt", "stamps", "lab_c", "dec_c", "lab_x", "dec_x"), WORKED)
def test_worked_examples_section_10(gt, stamps, lab_c, dec_c, lab_x, dec_x):
    s_time, e_time, d = compatible_window(*gt, 480.0)
    assert d == 480.0
    assert (s_time, e_time) == (stamps[0] / 1.875, min(stamps[1] / 1.875, 480.0))
    assert labels_compatible(*gt, 480.0, 128) == lab_c
    assert index_to_times_compatible(*lab_c, 480.0, 128) == dec_c
    assert labels_corrected(*gt, 480.0, 128) == lab_x
    assert index_to_times_corrected(*lab_x, 480.0, 128) == dec_x
    assert span_labels("compatible", *gt, 480.0, 128) == lab_c
    assert span_times("corrected", *lab_x, 480.0, 128) == dec_x


def test_worked_example_section_3():
    # GT [0, 43.6657] -> timestamps (0, 81) -> [0, 43.2] s -> label (0, 11) with IoU 0.96
    assert compatible_window(0.0, 43.6657, 480.0) == (0.0, 43.2, 480.0)
    assert labels_compatible(0.0, 43.6657, 480.0, 128) == (0, 11)
    s, e = index_to_times_compatible(0, 11, 480.0, 128)
    assert (43.2 - 0.0) / (e - s) == pytest.approx(0.96)


def test_compatible_duration_is_floored_and_test_split_gets_first_unit():
    # 480.5 s -> int(900.9375) = 900 frames -> D = 480 s: the last 0.5 s is off the grid
    assert compatible_window(0.0, 480.5, 480.5) == (0.0, 480.0, 480.0)
    assert index_to_times_compatible(127, 127, 480.5, 128) == (476.25, 480.0)
    assert index_to_times_corrected(127, 127, 480.5, 128) == (127 * 480.5 / 128, 480.5)
    assert labels_compatible(0.0, 0.0, 480.0, 128) == (0, 0)  # test split placeholders


def test_compatible_grid_is_float32():
    # 20-min clip: D / L is not exact in float32, and decoding returns the float32 values
    s, e = index_to_times_compatible(3, 5, 1200.0, 128)
    assert s == float(np.float32(3) * np.float32(1200.0) / np.float32(128))
    assert e == float(np.float32(6) * np.float32(1200.0) / np.float32(128))
    assert labels_compatible(100.0, 200.0, 1200.0, 128) == (11, 20)


def test_short_clip_uses_its_own_v_len():
    # 40 s clip: 75 rows, v_len 75, unit 40/75 s; decoding divides by v_len, not 128
    assert labels_compatible(4.0, 8.0, 40.0, 75) == (7, 14)
    assert index_to_times_compatible(7, 14, 40.0, 75) == pytest.approx((3.7333333, 8.0))


SIX = FeatureGrid.of_windows(30.0, 5, 5)  # 6 rows/s: a frame-feature set
ROUNDED = FeatureGrid(30.0, 32, 16, 1.87)  # the rounded-rate variant of the official windows


def test_compatible_mode_floors_to_the_feature_sets_own_rows():
    # [10.7, 11.0] s lies inside official row 20 ([10.67, 11.2) s): floored to zero length, label (0, 0);
    # on 6 rows/s it keeps [64/6, 66/6] s and lands on its unit (2.5 s units: unit 4)
    assert compatible_window(10.7, 11.0, 40.0) == (20 / 1.875, 20 / 1.875, 40.0)
    assert labels_compatible(10.7, 11.0, 40.0, 16) == (0, 0)
    assert compatible_window(10.7, 11.0, 40.0, grid=SIX) == (64 / 6, 11.0, 40.0)
    assert labels_compatible(10.7, 11.0, 40.0, 16, grid=SIX) == (4, 4)
    assert span_labels("compatible", 10.7, 11.0, 40.0, 16, grid=SIX) == (4, 4)
    # 1.87 vs 1.875 rows/s: the floored duration of a 999.9 s clip is 1869 / 1.87 vs 1874 / 1.875 s
    assert compatible_duration(999.9, grid=ROUNDED) == 1869 / 1.87
    assert compatible_duration(999.9) == 1874 / 1.875
    assert index_to_times_compatible(127, 127, 999.9, 128, grid=ROUNDED)[1] == float(np.float32(1869 / 1.87))
    assert span_times("compatible", 127, 127, 999.9, 128, grid=ROUNDED)[1] == float(np.float32(1869 / 1.87))
    # the corrected mode works on exact times: no grid in it
    assert span_labels("corrected", 10.7, 11.0, 40.0, 16, grid=SIX) == labels_corrected(10.7, 11.0, 40.0, 16)


@pytest.mark.parametrize(("gt", "stamps", "lab_c", "dec_c", "lab_x", "dec_x"), WORKED)
def test_the_official_grid_is_the_default(gt, stamps, lab_c, dec_c, lab_x, dec_x):
    assert compatible_window(*gt, 480.0, grid=OFFICIAL) == compatible_window(*gt, 480.0)
    assert labels_compatible(*gt, 480.0, 128, grid=OFFICIAL) == lab_c
    assert index_to_times_compatible(*lab_c, 480.0, 128, grid=OFFICIAL) == dec_c


@settings(max_examples=60, deadline=None)
@given(row=st.integers(0, 2000), offset=st.floats(0.0, 0.99), rate=st.sampled_from([1.87, 1.875, 6.0, 30.0]))
def test_a_time_inside_a_row_floors_to_that_rows_start(row, offset, rate):
    grid = FeatureGrid(30.0, 1, 1, rate)
    t = (row + offset) / rate
    assume(int(t * rate) == row)  # not the float edge where (row + offset) / rate * rate rounds across
    s_time, e_time, _ = compatible_window(t, t, 1e6, grid=grid)
    assert s_time == e_time == row / rate


def test_corrected_zero_length_and_out_of_clip_windows():
    assert labels_corrected(3.75 * 5 + 1.0, 3.75 * 5 + 1.0 + 1 / 60, 480.0, 128) == (5, 5)
    assert labels_corrected(479.99, 480.0, 480.0, 128) == (127, 127)  # window of 0.01 s at the clip end
    assert labels_corrected(490.0, 500.0, 480.0, 128) == (127, 127)  # clamped to the clip: empty at the end
    assert labels_corrected(-5.0, 3.0, 480.0, 128) == (0, 0)
    with pytest.raises(ValueError, match="duration"):
        labels_corrected(0.0, 1.0, 0.0, 128)
    with pytest.raises(ValueError, match="label mode"):
        span_labels("exact", 0.0, 1.0, 480.0, 128)


def test_decoding_refuses_spans_outside_the_clip():
    with pytest.raises(ValueError, match="not a valid"):
        index_to_times_compatible(3, 128, 480.0, 128)
    with pytest.raises(ValueError, match="not a valid"):
        index_to_times_corrected(5, 4, 480.0, 128)


@settings(max_examples=60, deadline=None)
@given(
    start=st.floats(0.0, 470.0),
    length=st.floats(0.5, 200.0),
    v_len=st.integers(1, 128),
)
def test_labels_are_valid_spans_and_corrected_contains_the_midpoint(start, length, v_len):
    end = min(start + length, 480.0)
    for mode in ("compatible", "corrected"):
        s, e = span_labels(mode, start, end, 480.0, v_len)
        assert 0 <= s <= e < v_len
    s, e = labels_corrected(start, end, 480.0, v_len)
    t0, t1 = index_to_times_corrected(s, e, 480.0, v_len)
    assert t0 < end and t1 > start  # the label overlaps the window


# ---- pooling ----


def test_pool_features_short_clips_unchanged():
    x = np.arange(12, dtype=np.float32).reshape(6, 2)
    assert pool_features(x, 6) is x
    assert pool_features(x, 128) is x


def test_pool_features_901_rows_never_uses_the_last_one():
    x = np.zeros((901, 1), dtype=np.float32)
    x[900] = 1e6  # row 900 is beyond the last (clipped) edge
    x[:900, 0] = np.arange(900)
    pooled = pool_features(x, 128)
    assert pooled.shape == (128, 1)
    edges = np.minimum(np.round(np.arange(129) / 128 * 901).astype(int), 900)
    assert edges[-2:].tolist() == [894, 900]  # round(901.0) = 901 is clipped to 900, end-exclusive
    sizes = np.diff(edges)
    assert sizes.min() == 6 and sizes.max() == 8
    assert pooled[0, 0] == np.mean(np.arange(7))  # rows 0..6 (edge round(7.04) = 7)
    assert pooled[-1, 0] == np.mean(np.arange(894, 900), dtype=np.float32)
    assert pooled.max() < 900


def test_pool_features_129_rows_has_one_single_row_bin():
    x = np.arange(129, dtype=np.float32)[:, None]
    pooled = pool_features(x, 128)
    edges = np.minimum(np.round(np.arange(129) / 128 * 129).astype(int), 128)
    empty = np.flatnonzero(edges[:-1] == edges[1:])
    assert list(empty) == [127]  # the last edge is clipped onto the one before: a single-row bin
    assert pooled.shape == (128, 1)
    assert pooled[127, 0] == 128.0  # the empty bin takes row 128 alone
    assert pooled[64, 0] == 64.5  # edges round(64.5) = 64 (half to even) and round(65.51) = 66
    others = np.delete(pooled[:, 0], [64, 127])
    np.testing.assert_array_equal(others, np.delete(np.arange(128.0), [64, 127]) + (np.arange(126) >= 64))


def test_pool_features_round_half_even_edges():
    # N = 6, L = 4: k * 1.5 = 0, 1.5, 3, 4.5, 6 -> edges 0, 2, 3, 4, 5 (half to even, last clipped)
    x = np.array([[0.0], [10.0], [20.0], [30.0], [40.0], [50.0]], dtype=np.float32)
    np.testing.assert_array_equal(pool_features(x, 4)[:, 0], [5.0, 20.0, 30.0, 40.0])


# ---- jittering (naq.md 2.2) ----


def test_jitter_is_reproducible_and_uses_two_draws():
    a = [jitter_span(50, 52, 128, 2.5, rng) for rng in [random.Random(7)] for _ in range(20)]
    b = [jitter_span(50, 52, 128, 2.5, rng) for rng in [random.Random(7)] for _ in range(20)]
    assert a == b
    rng, ref = random.Random(3), random.Random(3)
    jitter_span(10, 10, 128, 2.5, rng)
    ref.random(), ref.random()
    assert rng.random() == ref.random()


def test_jitter_hand_computed():
    class Fixed(random.Random):
        def __init__(self, values):
            super().__init__(0)
            self.values = list(values)

        def random(self):
            return self.values.pop(0)

    # w = 3, scale 1 + 1.5 * 0.5 = 1.75 -> w2 = 5.25; shift -1.125 + 2.25 * 0.25 = -0.5625
    # c = 11 - 0.5625 = 10.4375 -> s = rint(7.8125) = 8, e = rint(13.0625) = 13
    assert jitter_span(10, 12, 128, 2.5, Fixed([0.5, 0.25])) == (8, 13)
    # clamped at both ends of a short clip
    assert jitter_span(0, 2, 3, 5.0, Fixed([0.99, 0.5])) == (0, 2)


@settings(max_examples=80, deadline=None)
@given(
    s=st.integers(0, 60),
    w=st.integers(1, 30),
    factor=st.sampled_from([2.5, 5.0]),
    seed=st.integers(0, 2**32 - 1),
)
def test_jitter_contains_the_original_and_grows(s, w, factor, seed):
    L = 64
    e = min(s + w - 1, L - 1)
    js, je = jitter_span(s, e, L, factor, random.Random(seed))
    assert 0 <= js <= s and e <= je <= L - 1
    assert js <= s - 1 or js == 0
    assert je >= e + 1 or je == L - 1
    # w2 = w * U(1, F) <= w * F; rounding each end to the nearest unit adds at most one unit per side
    assert je - js + 1 <= (e - s + 1) * factor + 2


def test_jitter_length_distribution():
    rng = random.Random(12345)
    lengths = Counter()
    for _ in range(20000):
        s, e = jitter_span(60, 60, 128, 2.5, rng)
        lengths[e - s + 1] += 1
    assert set(lengths) == {3, 4}
    assert lengths[3] / 20000 == pytest.approx(0.87, abs=0.02)
    four = Counter()
    for _ in range(20000):
        s, e = jitter_span(60, 63, 128, 2.5, rng)
        four[e - s + 1] += 1
    assert min(four) == 6 and max(four) == 11
    assert sum(k * v for k, v in four.items()) / 20000 == pytest.approx(8.13, abs=0.1)


def test_jitter_refuses_bad_arguments():
    with pytest.raises(ValueError, match="factor"):
        jitter_span(1, 2, 10, 1.0, random.Random(0))
    with pytest.raises(ValueError, match="valid"):
        jitter_span(3, 2, 10, 2.5, random.Random(0))


# ---- highlighting targets ----


def test_highlight_labels_extension_rounds_half_to_even():
    np.testing.assert_array_equal(highlight_labels(3, 5, 10), [0, 0, 0, 1, 1, 1, 0, 0, 0, 0])  # 0.3 -> 0
    y = highlight_labels(10, 14, 40)  # w = 5: 0.5 -> 0
    assert np.flatnonzero(y).tolist() == list(range(10, 15))
    y = highlight_labels(10, 24, 40)  # w = 15: 1.5000000000000002 -> 2
    assert np.flatnonzero(y).tolist() == list(range(8, 27))
    y = highlight_labels(10, 34, 40)  # w = 25: 2.5 -> 2
    assert np.flatnonzero(y).tolist() == list(range(8, 37))
    y = highlight_labels(0, 19, 22)  # w = 20: 2 each side, clipped to [0, 21]
    assert np.flatnonzero(y).tolist() == list(range(0, 22))
    assert y.dtype == np.float32
