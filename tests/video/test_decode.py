"""Video reading with decord on small mp4 files written here with PyAV."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import av
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from egonlq.errors import InputError
from egonlq.video.decode import iter_frames, probe, process_videos, sample_indices

N_FRAMES, FPS, SIDE = 40, 5, 64
CODEC = "libx264" if "libx264" in av.codecs_available else "mpeg4"


def colour(k: int) -> np.ndarray:
    """A distinct solid RGB colour per frame index."""
    return np.array([(k * 53) % 256, (k * 101 + 40) % 256, 255 - 6 * k], dtype=np.uint8)


def write_mp4(path: Path, n_frames: int = N_FRAMES, fps: int = FPS, side: int = SIDE) -> Path:
    with av.open(str(path), "w") as container:
        options = {"crf": "12"} if CODEC == "libx264" else {}
        stream = container.add_stream(CODEC, rate=fps, options=options)
        stream.width, stream.height, stream.pix_fmt = side, side, "yuv420p"
        if CODEC == "mpeg4":
            stream.bit_rate = 2_000_000
        for k in range(n_frames):
            image = np.broadcast_to(colour(k), (side, side, 3)).copy()
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode())
    return path


@pytest.fixture(scope="module")
def mp4(tmp_path_factory) -> Path:
    return write_mp4(tmp_path_factory.mktemp("video") / "colours.mp4")


def assert_colours(indices: np.ndarray, frames: np.ndarray) -> None:
    for k, frame in zip(indices, frames, strict=True):
        mean = frame.reshape(-1, 3).mean(axis=0)
        assert np.abs(mean - colour(int(k))).max() < 8, (int(k), mean, colour(int(k)))


def test_probe(mp4):
    info = probe(mp4)
    assert (info.num_frames, info.fps, info.width, info.height) == (N_FRAMES, 5.0, SIDE, SIDE)
    assert info.duration_sec == pytest.approx(8.0) and info.path == mp4


def test_iter_frames_reads_every_frame_in_batches(mp4):
    batches = list(iter_frames(mp4, np.arange(N_FRAMES), batch_size=16))
    assert [len(idx) for idx, _ in batches] == [16, 16, 8]
    for idx, frames in batches:
        assert frames.shape == (len(idx), SIDE, SIDE, 3) and frames.dtype == np.uint8
        assert_colours(idx, frames)


def test_iter_frames_sparse_access_and_resize(mp4):
    idx = np.array([0, 7, 13, 39])
    [(got_idx, frames)] = list(iter_frames(mp4, idx))
    assert got_idx.tolist() == [0, 7, 13, 39]
    assert_colours(got_idx, frames)
    [(_, small)] = list(iter_frames(mp4, idx, size=(16, 32)))  # (height, width)
    assert small.shape == (4, 16, 32, 3)
    assert_colours(idx, small)


def test_index_out_of_range_is_an_input_error(mp4):
    with pytest.raises(InputError, match="frame index 40 out of range") as e:
        list(iter_frames(mp4, np.array([3, 40])))
    assert e.value.path == str(mp4)


def test_missing_file(tmp_path):
    path = tmp_path / "absent.mp4"
    for read in (lambda: probe(path), lambda: list(iter_frames(path, np.arange(3)))):
        with pytest.raises(InputError, match="not found") as e:
            read()
        assert e.value.path == str(path)


@pytest.mark.parametrize("kind", ["random", "truncated", "empty"])
def test_corrupt_file(tmp_path, mp4, kind):
    path = tmp_path / f"{kind}.mp4"
    data = mp4.read_bytes()
    content = {
        "random": np.random.default_rng(0).bytes(5000),
        "truncated": data[: len(data) // 2],
        "empty": b"",
    }[kind]
    path.write_bytes(content)
    with pytest.raises(InputError, match="cannot open video") as e:
        probe(path)
    assert e.value.path == str(path) and str(path) in str(e.value)


def test_process_videos_counts_failures_and_goes_on(tmp_path, mp4, caplog):
    good_copy = shutil.copy(mp4, tmp_path / "copy.mp4")
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video")
    paths = [mp4, broken, Path(good_copy)]
    with caplog.at_level(logging.WARNING, logger="egonlq.video.decode"):
        run = process_videos(paths, lambda p: probe(p).num_frames)
    assert run.results == {mp4: N_FRAMES, Path(good_copy): N_FRAMES}
    assert list(run.failures) == [broken] and "cannot open video" in run.failures[broken]
    assert run.stats() == {"videos_in": 3, "videos_ok": 2, "videos_failed": 1}
    assert "broken.mp4" in caplog.text


def test_process_videos_lets_other_errors_through(mp4):
    def crash(path: Path) -> None:
        raise KeyError("bug")

    with pytest.raises(KeyError):
        process_videos([mp4], crash)


# ---- sampling grids ----


@pytest.mark.parametrize(
    ("num_frames", "fps", "step", "count"),
    [(1800, 30.0, 30, 60), (1798, 29.97, 29, 62), (1798, 30000 / 1001, 29, 62), (1500, 25.0, 25, 60)],
)
def test_reference_step(num_frames, fps, step, count):
    idx = sample_indices(num_frames, fps, reference_step=True)
    assert len(idx) == count and idx.tolist() == [j * step for j in range(count)]


def test_reference_step_refuses_fps_below_one():
    with pytest.raises(ValueError, match="fps >= 1"):
        sample_indices(100, 0.5, reference_step=True)
    assert sample_indices(10, 1.0, reference_step=True).tolist() == list(range(10))


def test_rate_sampling_values():
    assert sample_indices(1800, 30.0, rate=1.875).tolist() == [16 * i for i in range(112)]
    at_25 = sample_indices(1500, 25.0, rate=1.875)
    assert len(at_25) == 112 and at_25[:6].tolist() == [0, 13, 27, 40, 53, 67]
    at_ntsc = sample_indices(2997, 29.97, rate=1.0)  # exactly 100 s: 100 samples despite float error
    assert len(at_ntsc) == 100 and at_ntsc[:4].tolist() == [0, 30, 60, 90]
    assert sample_indices(7, 5.0, rate=5.0).tolist() == list(range(7))
    assert sample_indices(0, 30.0, rate=1.0).tolist() == []


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({}, "give a sampling rate"),
        ({"rate": 1.0, "reference_step": True}, "not both"),
        ({"rate": 31.0}, r"rate must be in \(0, fps"),
        ({"rate": 0.0}, "rate must be"),
    ],
)
def test_sample_indices_refuses_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        sample_indices(100, 30.0, **kwargs)


@given(
    num_frames=st.integers(0, 20_000),
    fps=st.floats(1.0, 120.0),
    rate_fraction=st.floats(0.01, 1.0),
)
@settings(max_examples=200, deadline=None)
def test_rate_sampling_properties(num_frames, fps, rate_fraction):
    rate = fps * rate_fraction
    idx = sample_indices(num_frames, fps, rate=rate)
    assert len(idx) == int(np.floor(num_frames / fps * rate + 1e-9))
    assert (np.diff(idx) > 0).all() and (idx >= 0).all() and (idx < max(num_frames, 1)).all()
    # Each sample is the existing frame nearest to time i / rate.
    off = np.abs(idx / fps - np.arange(len(idx)) / rate)
    assert ((off <= 0.5 / fps + 1e-9) | (idx == num_frames - 1)).all()
