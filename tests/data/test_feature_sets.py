"""Feature provenance: sidecars written and read, official sets inferred from the shipped table, the grid
driving row counts and the time-to-row mapping, and the row check telling 1.875 from 1.87 rows/s."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from hypothesis import given
from hypothesis import strategies as st

from egonlq.data import feature_sets as FS
from egonlq.data.features import GRID_KEY, clip_features_grid, clip_rows, cut_clips, save_video_features
from egonlq.errors import InputError
from egonlq.timegrid import OFFICIAL, FeatureGrid, num_features

ROUNDED = FeatureGrid(30.0, 32, 16, 1.87)  # the 1.87 rows/s variant


def test_official_sets_come_from_the_table() -> None:
    known = FS.known_feature_sets()
    omni = known["omnivore_video_swinl"]
    assert (omni.grid, omni.dim, omni.origin) == (OFFICIAL, 1536, "table")
    assert known["slowfast8x8_r101_k400"].dim == 2304 and known["egovlp"].dim == 256
    image = known["omnivore_image_swinl"].grid
    assert (image.window, image.stride, image.rows_per_second) == (1, 5, 6.0) and image.follows_stride
    assert FS.known_rates() == (1.87, 1.875, 6.0)


def test_sidecar_round_trip_and_resolution(tmp_path: Path) -> None:
    FS.write_sidecar(tmp_path, "mine", "my encoder", ROUNDED, 64)
    found = FS.resolve_feature_set(tmp_path, "mine")
    assert (found.name, found.backbone, found.grid, found.dim, found.origin) == (
        "mine",
        "my encoder",
        ROUNDED,
        64,
        "sidecar",
    )
    with pytest.raises(InputError, match="sidecar names the set 'mine'"):
        FS.resolve_feature_set(tmp_path, "other")
    # a known set without sidecar is inferred; an unknown one is refused
    empty = tmp_path / "empty"
    empty.mkdir()
    assert FS.resolve_feature_set(empty, "slowfast8x8_r101_k400").origin == "table"
    with pytest.raises(InputError, match="'mystery' has no sidecar and is not a known set"):
        FS.resolve_feature_set(empty, "mystery")


def test_a_sidecar_disagreeing_with_the_known_set_or_malformed_is_refused(tmp_path: Path) -> None:
    FS.write_sidecar(tmp_path, "omnivore_video_swinl", "Omnivore", ROUNDED, 1536)
    with pytest.raises(InputError, match="rows_per_second is 1.87, the known set") as info:
        FS.resolve_feature_set(tmp_path, "omnivore_video_swinl")
    assert info.value.field == "rows_per_second"
    doc = json.loads((tmp_path / FS.SIDECAR).read_text())
    (tmp_path / FS.SIDECAR).write_text(json.dumps({**doc, "stride": 0}))
    with pytest.raises(InputError, match="stride is 0") as info:
        FS.read_sidecar(tmp_path / FS.SIDECAR)
    assert info.value.field == "stride" and info.value.record == "omnivore_video_swinl"


@given(st.integers(min_value=0, max_value=400_000))
def test_grid_row_counts(frames: int) -> None:
    """The official grid keeps the official count; a rate grid counts started 1/rate s; the two rates
    differ by at most one row plus 0.005 rows per second of video."""
    assert OFFICIAL.num_rows(frames) == num_features(frames)
    assert ROUNDED.num_rows(frames) == max(1, math.ceil(frames / 30 * 1.87 - 1e-9))
    assert abs(OFFICIAL.num_rows(frames) - ROUNDED.num_rows(frames)) <= 2 + frames / 30 * 0.005


def test_the_grid_drives_the_time_to_row_mapping() -> None:
    assert clip_rows(0.0, 480.0, 10_000) == (0, 900)
    assert clip_rows(0.0, 480.0, 10_000, grid=ROUNDED) == (0, 897)  # int(480 * 1.87) = 897
    assert ROUNDED.time_to_index(100.0) == 187 and OFFICIAL.time_to_index(100.0) == 187
    assert ROUNDED.time_to_index(1000.0) == 1870 and OFFICIAL.time_to_index(1000.0) == 1875


def _videos(folder: Path, frames: dict[str, int], grids: dict[str, FeatureGrid]) -> None:
    for uid, n in frames.items():
        save_video_features(np.zeros((grids[uid].num_rows(n), 4), np.float32), folder / f"{uid}.pt")


def test_row_check_finds_the_1_87_variant_on_long_videos(tmp_path: Path) -> None:
    frames = {"long": 54_000, "mid": 18_000, "short": 3_000}  # 30 min, 10 min, 100 s
    _videos(tmp_path, frames, dict.fromkeys(frames, ROUNDED))
    fset = FS.FeatureSet("omnivore_video_swinl", "Omnivore", OFFICIAL, 4, "table")
    rows = FS.check_rows(tmp_path, fset, {**frames, "absent": 90_000})
    assert rows["sampled"] == ["long", "mid", "short"]  # the longest first, files only
    assert rows["offending"] == [
        {"video_uid": "long", "rows": 3366, "expected": 3374, "fits": [1.87]},
        {"video_uid": "mid", "rows": 1122, "expected": 1124, "fits": [1.87]},
    ]
    assert rows["separates_rates"] and rows["unreadable"] == {}
    # the same files declared at 1.87 pass; a 100 s sample alone cannot tell the rates apart
    assert FS.check_rows(tmp_path, FS.FeatureSet("x", "", ROUNDED, 4, "sidecar"), frames)["offending"] == []
    short = FS.check_rows(tmp_path, fset, {"short": 3_000})
    assert short["offending"] == [] and not short["separates_rates"]
    line = FS.describe_offending("features", fset, rows["offending"])
    assert line.startswith("features: 2 sampled videos do not have the rows of 1.875 rows/s")
    assert "long (3366 rows, 3374 expected, fits 1.87 rows/s)" in line


def test_row_check_names_a_wrong_stride_and_an_unreadable_file(tmp_path: Path) -> None:
    frames = {"a": 9_000, "b": 9_000, "c": 9_000}
    _videos(tmp_path, frames, {"a": OFFICIAL, "b": FeatureGrid.of_windows(30.0, 32, 32), "c": OFFICIAL})
    (tmp_path / "c.pt").write_bytes(b"not a tensor")
    fset = FS.FeatureSet("s", "", OFFICIAL, 4, "sidecar")
    rows = FS.check_rows(tmp_path, fset, frames, sample=3)
    assert rows["offending"] == [{"video_uid": "b", "rows": 282, "expected": 562, "fits": []}]
    assert list(rows["unreadable"]) == ["c"] and "cannot read feature file" in rows["unreadable"]["c"]
    assert FS.check_rows(tmp_path, fset, frames, sample=1)["sampled"] == ["a"]


def test_clip_features_record_the_grid_they_were_cut_on(tmp_path: Path) -> None:
    save_video_features(np.ones((ROUNDED.num_rows(27_000), 4), np.float32), tmp_path / "v.pt")
    clips = pd.DataFrame(
        {"clip_uid": ["c"], "video_uid": ["v"], "video_start_sec": [0.0], "video_end_sec": [480.0]}
    )
    stats = cut_clips(clips, tmp_path, tmp_path / "rounded.parquet", expected_dim=4, grid=ROUNDED)
    assert stats["rows_per_second"] == 1.87 and stats["rows_written"] == 898  # rows 0..int(480 * 1.87)
    assert clip_features_grid(tmp_path / "rounded.parquet") == ROUNDED
    # the default grid, and a file whose metadata was damaged
    cut_clips(clips, tmp_path, tmp_path / "official.parquet", expected_dim=4)
    assert clip_features_grid(tmp_path / "official.parquet") == OFFICIAL
    table = pq.read_table(tmp_path / "official.parquet")
    pq.write_table(table.replace_schema_metadata({GRID_KEY: b'{"fps": 30}'}), tmp_path / "bad.parquet")
    with pytest.raises(InputError, match="unreadable feature grid metadata") as info:
        clip_features_grid(tmp_path / "bad.parquet")
    assert info.value.field == "feature_grid"


def test_folder_grid_from_sidecar_known_name_or_official(tmp_path: Path, caplog) -> None:
    """A folder of per-video files is read on its sidecar's grid, else its known set's, else the official."""
    six = FeatureGrid(30.0, 1, 5, 6.0)
    FS.write_sidecar(tmp_path / "mine", "mine", "test", six, 4)
    assert FS.folder_grid(tmp_path / "mine") == six
    (tmp_path / "omnivore_image_swinl").mkdir()
    assert FS.folder_grid(tmp_path / "omnivore_image_swinl").rows_per_second == 6.0  # the table's image set
    (tmp_path / "mystery").mkdir()
    assert FS.folder_grid(tmp_path / "mystery") == OFFICIAL
    assert "not a known set" in caplog.text
