"""Frame features on the tiny demo world: the official row count, the per-frame table, failures."""

from __future__ import annotations

import math

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from egonlq.data.feature_sets import SIDECAR, read_sidecar
from egonlq.data.features import load_video_features
from egonlq.demo.world import OBJECTS, make_world
from egonlq.errors import InputError
from egonlq.timegrid import OFFICIAL, FeatureGrid, num_features
from egonlq.video.decode import iter_frames, probe
from egonlq.video.frame_features import (
    FRAME_EMBEDDINGS,
    extract_many,
    extract_video_features,
    feature_grid,
    feature_times,
    sample_grid,
)

torch.set_num_threads(1)


def test_feature_times_follow_the_official_windows():
    assert feature_times(39, 1.3, 1.875).tolist() == [
        0.0,
        7 / 30,
    ]  # the docs' example: windows [0,31], [7,38]
    t = feature_times(14_401, 480.03, 1.875)
    assert len(t) == 900 and t[1] == 16 / 30 and t[-1] == (14_401 - 32) / 30
    assert feature_times(20, 0.67, 1.875).tolist() == [0.0]
    assert feature_times(None, 2.0, 1.5).tolist() == [0.0, 2 / 3, 4 / 3]
    with pytest.raises(ValueError, match="1.875"):
        feature_times(100, 3.3, 1.0)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 20_000))
def test_feature_times_count_and_order(frames):
    t = feature_times(frames, frames / 30, 1.875)
    assert len(t) == num_features(frames)
    assert np.all(np.diff(t) > 0) and t[0] == 0.0
    assert t[-1] <= max(frames - 32, 0) / 30


def test_extract_video_features_has_the_official_row_count(world, demo):
    frames = world.num_frames[world.video_uid]
    x = extract_video_features(world.mp4, demo, num_frames_canonical=frames)
    assert x.shape == (num_features(frames), demo.dim) and x.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-5)
    # row i is the frame nearest to the window start min(16 i, F - 32) / 30 of the 5 fps rendering
    info = probe(world.mp4)
    for i in (0, 1, 17, len(x) - 1):
        k = min(math.floor(min(16 * i, frames - 32) / 30 * info.fps + 0.5), info.num_frames - 1)
        ((_, image),) = iter_frames(world.mp4, np.array([k]))
        np.testing.assert_allclose(x[i], demo.encode_images(image)[0], atol=1e-6)


def test_extract_video_features_refuses_the_wrong_video(world, demo):
    with pytest.raises(InputError, match="canonical video"):
        extract_video_features(world.mp4, demo, num_frames_canonical=world.num_frames[world.video_uid] + 90)


def test_extract_many_writes_features_and_frames_and_counts_failures(world, demo, tmp_path):
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(b"not a video")
    frames = world.num_frames[world.video_uid]
    videos = [
        (world.video_uid, world.mp4, frames),
        ("missing", tmp_path / "missing.mp4", 300),
        ("corrupt", corrupt, 300),
    ]
    stats = extract_many(videos, demo, tmp_path / "a", frames_path=tmp_path / "a_frames.parquet")
    assert (stats["videos_in"], stats["videos_ok"], stats["videos_failed"]) == (3, 1, 2)
    assert sorted(stats["failed"]) == ["corrupt", "missing"]
    assert stats["feature_rows"] == num_features(frames)
    pt = tmp_path / "a" / f"{world.video_uid}.pt"
    loaded = load_video_features(
        pt, expected_dim=demo.dim, num_frames=frames
    )  # the official loader accepts it
    np.testing.assert_array_equal(
        loaded, extract_video_features(world.mp4, demo, num_frames_canonical=frames)
    )
    # per-frame table on the keyframe grid (5 fps: every 5th frame)
    table = pq.read_table(tmp_path / "a_frames.parquet")
    assert table.schema.remove_metadata() == FRAME_EMBEDDINGS
    assert table.schema.metadata[b"fingerprint"].decode() == demo.fingerprint()
    info = probe(world.mp4)
    grid, step = sample_grid(info, 1.0)
    assert step == 5 and table.column("frame_idx").to_pylist() == grid.tolist() == list(
        range(0, len(grid) * 5, 5)
    )
    np.testing.assert_allclose(table.column("time_sec").to_numpy(), grid / 5.0)
    assert stats["frame_rows"] == len(grid)
    # the set's provenance: the official grid (one frame per 32-frame window), the encoder's dim
    sidecar = read_sidecar(tmp_path / "a" / SIDECAR)
    assert (sidecar.name, sidecar.grid, sidecar.dim) == (f"frames_{demo.name}", OFFICIAL, demo.dim)
    assert feature_grid(6.0) == FeatureGrid(30.0, 1, 5, 6.0)
    # same input, same bytes
    extract_many(videos[:1], demo, tmp_path / "b")
    assert (tmp_path / "b" / pt.name).read_bytes() == pt.read_bytes()


def test_demo_encoder_reads_the_rendered_video(world, demo):
    """Decoded H.264 frames (not just clean renders): the object and place match the world's ground truth."""
    video = next(v for v in make_world("tiny", 0).videos if v.uid == world.video_uid)
    info = probe(world.mp4)
    idx = np.arange(0, info.num_frames, 3)
    place, event = video.state_at(idx / info.fps)
    emb = np.concatenate([demo.encode_images(f) for _, f in iter_frames(world.mp4, idx)])
    objects = emb[:, demo.offsets["object"] : demo.offsets["object"] + len(OBJECTS)]
    places = emb[:, demo.offsets["place"] : demo.offsets["place"] + 15]
    on = event >= 0
    assert on.sum() > 50 and (~on).sum() > 20
    assert (objects[on].argmax(axis=1) == video.ev_obj[event[on]]).mean() >= 0.97
    assert objects[~on].sum(axis=1).max() < 0.05  # no object drawn: no object found
    assert (places.argmax(axis=1) == place).mean() >= 0.97
