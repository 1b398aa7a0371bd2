"""Per-clip feature cutting: row ranges of both modes, input validation, the parquet store."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from egonlq.data import features as F
from egonlq.errors import InputError
from egonlq.timegrid import FEATURES_PER_SEC, num_features

R = FEATURES_PER_SEC
COLUMNS = ["clip_uid", "video_uid", "video_start_sec", "video_end_sec"]


def row_ids(n: int, dim: int = 3) -> np.ndarray:
    """Features whose row ``i`` is ``[i, i + 0.5, ...]``: a cut shows which rows it took."""
    return (np.arange(n, dtype=np.float32)[:, None] + 0.5 * np.arange(dim, dtype=np.float32)).copy()


def save(path, tensor) -> None:
    torch.save(tensor, path)


# --- counts and row ranges ----------------------------------------------------------------------------------


@pytest.mark.parametrize("frames, rows", [(0, 1), (31, 1), (32, 1), (39, 2), (48, 2), (49, 3), (14_401, 900)])
def test_num_features_formula(frames, rows):
    assert num_features(frames) == rows


@pytest.mark.parametrize(
    "vs, ve, compatible, corrected",
    [
        (0.0, 480.0, (0, 900), (0, 899)),  # ve * r = 900.0 is integral: the modes differ by that row
        (8.0, 488.0, (15, 915), (15, 914)),  # vs * r = 15.0 integral: both start at row 15
        (10.3, 490.3, (19, 919), (19, 919)),  # 19.3125 .. 919.3125: no integral end, no difference
        (1.0, 2.0, (1, 3), (1, 3)),  # 1.875 .. 3.75
        (0.5, 0.5, (0, 0), (0, 0)),  # zero-length clip keeps one row
        (8.0, 8.0, (15, 15), (15, 15)),  # corrected would give 15..14: at least one row
        (0.53, 0.54, (0, 1), (0, 1)),  # 0.99375 .. 1.0125
    ],
)
def test_clip_rows_both_modes(vs, ve, compatible, corrected):
    assert F.clip_rows(vs, ve, 10_000, mode="compatible") == compatible
    assert F.clip_rows(vs, ve, 10_000, mode="corrected") == corrected


def test_480s_clip_gets_901_rows_compatible_900_corrected():
    feats = row_ids(2000)
    assert F.cut_clip(feats, 0.0, 480.0).shape == (901, 3)
    assert F.cut_clip(feats, 0.0, 480.0, mode="corrected").shape == (900, 3)
    cut = F.cut_clip(feats, 100.0, 580.0)  # rows 187 .. 1087
    np.testing.assert_array_equal(cut, feats[187:1088])
    assert cut[0, 0] == 187.0 and cut[-1, 0] == 1087.0


def test_clip_past_video_end_is_truncated():
    feats = row_ids(100)  # rows start at 0 .. 52.8 s
    cut = F.cut_clip(feats, 40.0, 100.0)  # nominal rows 75 .. 187
    np.testing.assert_array_equal(cut, feats[75:100])
    assert F.cut_clip(feats, 52.8, 60.0)[:, 0].tolist() == [99.0]  # starts on the last row


def test_clip_starting_after_last_row_names_the_clip():
    with pytest.raises(InputError, match="clip_uid=c9") as e:
        F.cut_clip(row_ids(100), 60.0, 70.0, clip_uid="c9")  # row 112 of 100
    assert "row 112" in str(e.value) and "100 feature rows" in str(e.value)
    assert e.value.field == "video_start_sec"


@pytest.mark.parametrize(
    "vs, ve, field",
    [
        (-1.0, 5.0, "video_start_sec"),
        (5.0, 4.0, "video_end_sec"),
        (float("nan"), 5.0, "video_start_sec"),
        (0.0, float("inf"), "video_end_sec"),
    ],
)
def test_bad_clip_times(vs, ve, field):
    with pytest.raises(InputError) as e:
        F.cut_clip(row_ids(10), vs, ve, clip_uid="c1")
    assert e.value.field == field and e.value.record == "clip_uid=c1"


def test_unknown_mode():
    with pytest.raises(ValueError, match="unknown cut mode"):
        F.cut_clip(row_ids(10), 0.0, 1.0, mode="exact")


endpoints = st.one_of(
    st.floats(min_value=0.0, max_value=1200.0, allow_nan=False),
    st.integers(min_value=0, max_value=150).map(lambda k: k * 8.0),  # k * 8 * 1.875 = 15k: integral
)


@settings(max_examples=300, deadline=None)
@given(n=st.integers(min_value=1, max_value=2000), a=endpoints, b=endpoints)
def test_cut_rows_property(n, a, b):
    vs, ve = min(a, b), max(a, b)
    if int(vs * R) > n - 1:
        with pytest.raises(InputError):
            F.cut_clip(row_ids(n, 1), vs, ve)
        return
    feats = row_ids(n, 1)
    cut = F.cut_clip(feats, vs, ve)
    assert len(cut) == min(int(ve * R), n - 1) - int(vs * R) + 1
    first = int(cut[0, 0])
    assert first / R <= vs + 1e-9 and vs < (first + 1) / R  # the latest window start at or before vs
    np.testing.assert_array_equal(cut[:, 0], np.arange(first, first + len(cut), dtype=np.float32))
    corrected = F.cut_clip(feats, vs, ve, mode="corrected")
    assert corrected[0, 0] == first
    end_integral = ve * R == math.floor(ve * R)
    extra = 1 if end_integral and int(ve * R) <= n - 1 and int(ve * R) > first else 0
    assert len(cut) - len(corrected) == extra


# --- loading one video's features ---------------------------------------------------------------------------


def test_load_casts_float16_exactly(tmp_path):
    half = torch.randn(40, 16).half()
    save(tmp_path / "v1.pt", half)
    feats = F.load_video_features(tmp_path / "v1.pt", expected_dim=16)
    assert feats.dtype == np.float32 and feats.shape == (40, 16)
    np.testing.assert_array_equal(feats, half.float().numpy())
    assert np.array_equal(feats.astype(np.float16), half.numpy())


def test_load_float32_unchanged(tmp_path):
    x = torch.randn(5, 4)
    save(tmp_path / "v1.pt", x)
    assert F.load_video_features(tmp_path / "v1.pt", expected_dim=4).tobytes() == x.numpy().tobytes()


def test_load_missing_file(tmp_path):
    with pytest.raises(InputError, match="not found") as e:
        F.load_video_features(tmp_path / "abc.pt", expected_dim=4)
    assert e.value.path == str(tmp_path / "abc.pt") and e.value.record == "video_uid=abc"


@pytest.mark.parametrize("keep", [0.5, 0.1, 0.0])
def test_load_truncated_file(tmp_path, keep):
    path = tmp_path / "v1.pt"
    save(path, torch.randn(100, 8))
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(InputError, match="cannot read feature file") as e:
        F.load_video_features(path, expected_dim=8, video_uid="v1")
    assert e.value.path == str(path) and e.value.record == "video_uid=v1"


@pytest.mark.parametrize(
    "obj, message, field",
    [
        (torch.zeros(10), r"shape \(10,\)", "shape"),
        (torch.zeros(2, 3, 4), r"shape \(2, 3, 4\)", "shape"),
        (torch.zeros(10, 4, dtype=torch.int64), "dtype torch.int64", "dtype"),
        (torch.zeros(0, 4), "no rows", "num_rows"),
        ({"features": torch.zeros(10, 4)}, "holds a dict, not a tensor", None),
    ],
)
def test_load_wrong_object(tmp_path, obj, message, field):
    save(tmp_path / "v1.pt", obj)
    with pytest.raises(InputError, match=message) as e:
        F.load_video_features(tmp_path / "v1.pt", expected_dim=4)
    assert e.value.field == field and e.value.record == "video_uid=v1"


def test_load_wrong_dim(tmp_path):
    save(tmp_path / "v1.pt", torch.zeros(10, 2304))
    with pytest.raises(InputError, match="feature dim is 2304, expected 256") as e:
        F.load_video_features(tmp_path / "v1.pt", expected_dim=256)
    assert "config's feature dim must match" in str(e.value) and e.value.field == "dim"


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_load_non_finite_rows(tmp_path, bad):
    x = torch.zeros(20, 4)
    x[7, 2] = bad
    x[12, 0] = bad
    x[12, 3] = bad
    save(tmp_path / "v1.pt", x)
    with pytest.raises(InputError, match="2 rows hold NaN or Inf, the first is row 7") as e:
        F.load_video_features(tmp_path / "v1.pt", expected_dim=4)
    assert e.value.field == "features" and e.value.path == str(tmp_path / "v1.pt")


@pytest.mark.parametrize("rows, ok", [(898, False), (899, True), (900, True), (901, True), (902, False)])
def test_load_row_count_tolerance(tmp_path, rows, ok):
    path = tmp_path / "v1.pt"
    save(path, torch.zeros(rows, 4))
    if ok:
        assert F.load_video_features(path, expected_dim=4, num_frames=14_401).shape == (rows, 4)
    else:
        with pytest.raises(InputError, match=f"{rows} rows but a video of 14401 frames has 900") as e:
            F.load_video_features(path, expected_dim=4, num_frames=14_401)
        assert e.value.field == "num_rows" and e.value.expected == "900 +/- 1"


# --- the parquet store --------------------------------------------------------------------------------------


@pytest.fixture
def videos(tmp_path):
    """Two videos (1000 rows float32, 50 rows float16), dim 8, and clips on them."""
    rng = np.random.default_rng(0)
    v1 = rng.standard_normal((1000, 8)).astype(np.float32)
    v1[3, 0] = -0.0
    v2 = rng.standard_normal((50, 8)).astype(np.float16)
    feature_dir = tmp_path / "features"
    feature_dir.mkdir()
    save(feature_dir / "v1.pt", torch.from_numpy(v1))
    save(feature_dir / "v2.pt", torch.from_numpy(v2))
    rows = [
        ("c2", "v2", 0.0, 40.0),
        ("c1", "v1", 0.0, 480.0),
        ("c3", "v1", 100.0, 600.0),
        ("c4", "v1", 8.0, 9.0),
    ]
    clips = pd.DataFrame(rows, columns=COLUMNS)
    return feature_dir, clips, {"v1": v1, "v2": v2.astype(np.float32)}


@pytest.mark.parametrize("group_bytes", [None, 40_000, 1])  # one group; 2 groups (buffer reused); 1 per clip
def test_cut_clips_round_trip_bit_exact(tmp_path, videos, monkeypatch, group_bytes):
    feature_dir, clips, sources = videos
    if group_bytes is not None:
        monkeypatch.setattr(F, "ROW_GROUP_BYTES", group_bytes)
    out, shapes = tmp_path / "out" / "clips.parquet", tmp_path / "out" / "feature_shapes.json"
    stats = F.cut_clips(clips, feature_dir, out, expected_dim=8, shapes_json=shapes)
    expected = {
        c.clip_uid: F.cut_clip(sources[c.video_uid], c.video_start_sec, c.video_end_sec)
        for c in clips.itertuples()
    }
    got = F.read_clip_features(out)
    assert list(got) == ["c1", "c3", "c4", "c2"]  # sorted by (video_uid, clip_uid)
    for uid, array in expected.items():
        assert got[uid].dtype == np.float32 and got[uid].tobytes() == array.tobytes()
    assert np.signbit(got["c1"][3, 0])  # -0.0 survives
    assert json.loads(shapes.read_text()) == {"c1": 901, "c3": 813, "c4": 2, "c2": 50}
    assert {
        k: stats[k]
        for k in (
            "clips_in",
            "clips_written",
            "videos_loaded",
            "rows_written",
            "clips_cut_short",
            "clips_skipped_missing_video",
            "row_count_off_by_one",
            "videos_row_count_unchecked",
        )
    } == {
        "clips_in": 4,
        "clips_written": 4,
        "videos_loaded": 2,
        "rows_written": 901 + 813 + 2 + 50,
        "clips_cut_short": 2,
        "clips_skipped_missing_video": 0,
        "row_count_off_by_one": 0,
        "videos_row_count_unchecked": 2,
    }
    assert stats["bytes_written"] == out.stat().st_size and stats["mode"] == "compatible"
    assert pq.ParquetFile(out).num_row_groups == {None: 1, 40_000: 2, 1: 4}[group_bytes]
    table = pq.read_table(out)
    assert table.schema.equals(F.CLIP_FEATURES)
    row = table.slice(0, 1).to_pylist()[0]
    assert {k: v for k, v in row.items() if k != "features"} == {
        "clip_uid": "c1",
        "video_uid": "v1",
        "video_start_sec": 0.0,
        "video_end_sec": 480.0,
        "mode": "compatible",
        "num_rows": 901,
        "dim": 8,
    }


def test_cut_clips_tiny_values_round_trip(tmp_path):
    """Values of at most 12 bytes are stored inline in parquet's binary views: 1 row of dim 3, 2 of dim 1."""
    for name, dim in (("v3", 3), ("v1", 1)):
        (tmp_path / name).mkdir()
        save(tmp_path / name / "v.pt", torch.from_numpy(row_ids(5, dim)))
        clips = pd.DataFrame(
            [("one", "v", 0.0, 0.0), ("two", "v", 0.0, 0.6), ("all", "v", 0.0, 9.0)], columns=COLUMNS
        )
        F.cut_clips(clips, tmp_path / name, tmp_path / f"{name}.parquet", expected_dim=dim)
        got = F.read_clip_features(tmp_path / f"{name}.parquet")
        np.testing.assert_array_equal(got["one"], row_ids(5, dim)[:1])
        np.testing.assert_array_equal(got["two"], row_ids(5, dim)[:2])
        np.testing.assert_array_equal(got["all"], row_ids(5, dim))


def test_cut_clips_corrected_mode(tmp_path, videos):
    feature_dir, clips, sources = videos
    out = tmp_path / "clips.parquet"
    stats = F.cut_clips(clips, feature_dir, out, expected_dim=8, mode="corrected")
    got = F.read_clip_features(out)
    np.testing.assert_array_equal(got["c1"], sources["v1"][0:900])
    assert got["c4"].shape == (2, 8)  # 15.0 .. 16.875: rows 15, 16
    assert pq.read_table(out, columns=["mode"]).column(0).to_pylist() == ["corrected"] * 4
    assert stats["rows_written"] == 900 + 813 + 2 + 50


def test_cut_clips_small_row_groups_and_subset_read(tmp_path, videos, monkeypatch):
    feature_dir, clips, sources = videos
    monkeypatch.setattr(F, "ROW_GROUP_BYTES", 1)  # every clip its own row group
    out = tmp_path / "clips.parquet"
    F.cut_clips(clips, feature_dir, out, expected_dim=8)
    assert pq.ParquetFile(out).num_row_groups == 4
    got = F.read_clip_features(out, ["c2", "c4", "c2"])
    assert list(got) == ["c2", "c4"]
    np.testing.assert_array_equal(got["c2"], sources["v2"])
    np.testing.assert_array_equal(got["c4"], sources["v1"][15:17])
    with pytest.raises(InputError, match="clip not in the feature file") as e:
        F.read_clip_features(out, ["c1", "nope"])
    assert e.value.record == "clip_uid=nope" and e.value.path == str(out)


def test_cut_clips_missing_video(tmp_path, videos):
    feature_dir, clips, _ = videos
    on_v3 = pd.DataFrame([("c5", "v3", 0.0, 1.0), ("c6", "v3", 1.0, 2.0)], columns=COLUMNS)
    clips = pd.concat([clips, on_v3])
    with pytest.raises(InputError, match="not found") as e:
        F.cut_clips(clips, feature_dir, tmp_path / "a.parquet", expected_dim=8)
    assert e.value.record == "video_uid=v3" and e.value.path == str(feature_dir / "v3.pt")
    assert not (tmp_path / "a.parquet").exists()
    stats = F.cut_clips(clips, feature_dir, tmp_path / "b.parquet", expected_dim=8, on_missing="skip")
    assert (
        stats["clips_in"],
        stats["clips_written"],
        stats["clips_skipped_missing_video"],
        stats["videos_missing"],
    ) == (6, 4, 2, 1)
    assert sorted(F.read_clip_features(tmp_path / "b.parquet")) == ["c1", "c2", "c3", "c4"]


def test_cut_clips_row_count_check(tmp_path, videos):
    feature_dir, clips, _ = videos
    # v1 has 1000 rows: 16000 frames -> 999 features (one off, accepted); v2 has 50: 816 frames -> 50
    stats = F.cut_clips(
        clips, feature_dir, tmp_path / "a.parquet", expected_dim=8, num_frames={"v1": 16_000, "v2": 816}
    )
    assert (stats["row_count_off_by_one"], stats["videos_row_count_unchecked"]) == (1, 0)
    with pytest.raises(InputError, match="1000 rows but a video of 15984 frames has 998"):
        F.cut_clips(clips, feature_dir, tmp_path / "b.parquet", expected_dim=8, num_frames={"v1": 15_984})


def test_cut_clips_is_atomic(tmp_path, videos):
    feature_dir, clips, _ = videos
    data = (feature_dir / "v2.pt").read_bytes()
    (feature_dir / "v2.pt").write_bytes(data[: len(data) // 2])  # v1 is cut and buffered first, then v2 fails
    out, shapes = tmp_path / "out" / "clips.parquet", tmp_path / "out" / "shapes.json"
    with pytest.raises(InputError, match="cannot read feature file"):
        F.cut_clips(clips, feature_dir, out, expected_dim=8, shapes_json=shapes)
    assert list((tmp_path / "out").iterdir()) == []  # no out_path, no shapes, no temporary file


def test_cut_clips_is_atomic_with_flushed_row_groups(tmp_path, videos, monkeypatch):
    feature_dir, clips, _ = videos
    monkeypatch.setattr(F, "ROW_GROUP_BYTES", 1)
    out = tmp_path / "clips.parquet"
    out.write_bytes(b"previous")
    past_end = pd.DataFrame([("c9", "v2", 60.0, 70.0)], columns=COLUMNS)  # v2's rows end at 26.7 s
    with pytest.raises(InputError, match="clip_uid=c9"):
        F.cut_clips(pd.concat([clips, past_end]), feature_dir, out, expected_dim=8)
    assert out.read_bytes() == b"previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clips.parquet", "features"]


def test_cut_clips_duplicates(tmp_path, videos):
    feature_dir, clips, _ = videos
    twice = pd.concat([clips, clips.iloc[:2]])
    stats = F.cut_clips(twice, feature_dir, tmp_path / "a.parquet", expected_dim=8)
    assert (stats["clips_in"], stats["clips_duplicate"], stats["clips_written"]) == (6, 2, 4)
    conflict = pd.concat([clips, pd.DataFrame([("c1", "v1", 0.0, 470.0)], columns=COLUMNS)])
    with pytest.raises(InputError, match="clip listed twice") as e:
        F.cut_clips(conflict, feature_dir, tmp_path / "b.parquet", expected_dim=8)
    assert e.value.record == "clip_uid=c1"


def test_cut_clips_accepts_clips_table_and_checks_columns(tmp_path, videos):
    feature_dir, clips, _ = videos
    table = clips.assign(
        split="val", clip_end_sec=480.0, source_clip_uid=None, num_annotations=1, num_queries=3
    )
    assert F.cut_clips(table, feature_dir, tmp_path / "a.parquet", expected_dim=8)["clips_written"] == 4
    with pytest.raises(InputError, match="lacks a column") as e:
        F.cut_clips(clips.drop(columns="video_end_sec"), feature_dir, tmp_path / "b.parquet", expected_dim=8)
    assert e.value.field == "video_end_sec"


def test_cut_clips_empty_set(tmp_path, videos):
    feature_dir, clips, _ = videos
    stats = F.cut_clips(clips.iloc[:0], feature_dir, tmp_path / "a.parquet", expected_dim=8)
    assert stats["clips_written"] == 0 and F.read_clip_features(tmp_path / "a.parquet") == {}


def test_read_clip_features_checks_file(tmp_path):
    with pytest.raises(InputError, match="not found"):
        F.read_clip_features(tmp_path / "none.parquet")
    pq.write_table(pa.table({"clip_uid": ["a"]}), tmp_path / "other.parquet")
    with pytest.raises(InputError, match="column missing") as e:
        F.read_clip_features(tmp_path / "other.parquet")
    assert e.value.field == "video_uid"
