"""Video features from a frame encoder: one frame per official feature time, plus per-frame embeddings.

:func:`extract_video_features` samples the frame nearest to each official feature time and encodes it, so
the result ``[N, D]`` has exactly the official row count ``N = timegrid.num_features(F)`` of a canonical
video of ``F`` frames and plugs into the same clip cutting and training path as the official features
(ego4d-formats.md, section 5). Feature ``i`` sees the window starting at canonical frame ``16 i`` (the last,
unaligned window shifted back to end at the last frame), so its frame is the one at ``min(16 i, F - 32) / 30``
seconds. :func:`extract_many` writes one ``<video_uid>.pt`` per video (float32 ``[N, D]``, byte-identical
across runs) and, on request, the per-frame table :data:`FRAME_EMBEDDINGS` sampled on the keyframe grid of
:func:`sample_grid`, which ``egonlq.video.keyframes`` can score from without decoding again.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from egonlq import timegrid
from egonlq.data.feature_sets import write_sidecar
from egonlq.data.features import save_video_features
from egonlq.errors import InputError
from egonlq.io import write_parquet
from egonlq.video.decode import (
    VideoInfo,
    check_canonical_length,
    iter_frames,
    probe,
    process_videos,
    sample_indices,
)
from egonlq.video.frame_encoders import FrameEncoder

logger = logging.getLogger(__name__)

# Per-frame embeddings on the keyframe grid; schema metadata names the encoder (``encoder``, ``fingerprint``).
FRAME_EMBEDDINGS = pa.schema(
    [
        pa.field("video_uid", pa.string(), nullable=False),
        pa.field("frame_idx", pa.int64(), nullable=False),  # native index in the decoded stream
        pa.field("time_sec", pa.float64(), nullable=False),  # frame_idx / native fps (video time)
        pa.field("embedding", pa.list_(pa.float32()), nullable=False),  # L2-normalised, encoder's dim
    ]
)


@dataclass(frozen=True)
class VideoJob:
    """One video to encode: its uid, its mp4, and its canonical frame count (None: use the mp4's length)."""

    video_uid: str
    path: Path
    num_frames_canonical: int | None


def feature_times(num_frames_canonical: int | None, duration_sec: float, rate: float) -> np.ndarray:
    """Times (s) of the frames that stand for each feature row.

    With the canonical frame count ``F`` (official grid, ``rate`` must be 1.875): the start of each 32-frame
    window, ``min(16 i, F - 32) / 30`` for ``i < num_features(F)`` (0 for ``F < 32``). Without it:
    ``i / rate`` for ``i < floor(duration * rate)``.
    """
    if num_frames_canonical is not None:
        if not math.isclose(rate, timegrid.FEATURES_PER_SEC):
            raise ValueError(
                f"the canonical row count num_features(F) is defined at {timegrid.FEATURES_PER_SEC} rows/s, "
                f"got rate {rate}; pass num_frames_canonical=None for another rate"
            )
        n = timegrid.num_features(num_frames_canonical)
        last_start = max(num_frames_canonical - timegrid.FEATURE_WINDOW, 0)
        starts = np.minimum(np.arange(n) * timegrid.FEATURE_STRIDE, last_start)
        return starts / timegrid.CANONICAL_FPS
    if not math.isfinite(rate) or rate <= 0:
        raise ValueError(f"rate must be a finite number > 0, got {rate!r}")
    return np.arange(math.floor(duration_sec * rate + 1e-9)) / rate


def feature_grid(rate: float) -> timegrid.FeatureGrid:
    """The grid of features sampled at ``rate`` rows/s, one frame per row (for the set's sidecar): the
    official grid at 1.875 (rows follow its windows), else one frame every ``30 / rate`` canonical frames."""
    if math.isclose(rate, timegrid.FEATURES_PER_SEC):
        return timegrid.OFFICIAL
    return timegrid.FeatureGrid(timegrid.CANONICAL_FPS, 1, max(1, round(timegrid.CANONICAL_FPS / rate)), rate)


def nearest_frames(times: np.ndarray, info: VideoInfo) -> np.ndarray:
    """Native index of the frame nearest to each time, ``floor(t * fps + 0.5)`` clipped to the stream."""
    idx = np.floor(np.asarray(times, dtype=np.float64) * info.fps + 0.5).astype(np.int64)
    return np.clip(idx, 0, info.num_frames - 1)


def sample_grid(info: VideoInfo, rate: float) -> tuple[np.ndarray, int | None]:
    """The keyframe sampling grid of a video: native indices and the AKS step (None off the AKS grid).

    At ``rate == 1`` with ``fps >= 1`` it is the AKS reference grid ``j * int(fps)`` (aks.md, section 2;
    30 fps gives one sample per second, 29.97 fps one per 0.968 s); otherwise ``rate`` samples per second
    (:func:`egonlq.video.decode.sample_indices`).
    """
    if rate == 1.0 and info.fps >= 1.0:
        return sample_indices(info.num_frames, info.fps, reference_step=True), int(info.fps)
    return sample_indices(info.num_frames, info.fps, rate=rate), None


def encode_frames(
    path: Path,
    indices: np.ndarray,
    encoder: FrameEncoder,
    *,
    batch_size: int = 32,
    size: tuple[int, int] | None = None,
) -> np.ndarray:
    """Embeddings ``[len(indices), D]`` of the frames at ``indices`` (repeats decoded once), in batches."""
    indices = np.asarray(indices, dtype=np.int64)
    unique, inverse = np.unique(indices, return_inverse=True)
    out = np.zeros((len(unique), encoder.dim), dtype=np.float32)
    at = 0
    for batch, frames in iter_frames(path, unique, batch_size=batch_size, size=size):
        out[at : at + len(batch)] = encoder.encode_images(frames)
        at += len(batch)
    return out[inverse]


def extract_video_features(
    video_path: Path,
    encoder: FrameEncoder,
    *,
    num_frames_canonical: int | None,
    rate: float = timegrid.FEATURES_PER_SEC,
    batch_size: int = 32,
) -> np.ndarray:
    """Features ``[N, D]`` float32 of one video, one encoded frame per feature row (see module docstring).

    Raises InputError for an unreadable video and for one whose length differs from its canonical length
    ``F / 30`` by more than :data:`~egonlq.video.decode.DURATION_TOLERANCE_SEC` (the wrong file).
    """
    info = probe(video_path)
    check_canonical_length(info, num_frames_canonical)
    indices = nearest_frames(feature_times(num_frames_canonical, info.duration_sec, rate), info)
    if len(indices) == 0:
        raise InputError(
            video_path, f"video of {info.duration_sec:.3f} s has no feature row at {rate} rows/s"
        )
    return encode_frames(video_path, indices, encoder, batch_size=batch_size)


def extract_many(
    videos: Sequence[tuple[str, Path, int | None]],
    encoder: FrameEncoder,
    out_dir: Path,
    *,
    rate: float = timegrid.FEATURES_PER_SEC,
    batch_size: int = 32,
    frames_path: Path | None = None,
    frame_rate: float = 1.0,
) -> dict:
    """Write ``out_dir/<video_uid>.pt`` (float32 ``[N, D]``) for each ``(video_uid, path, canonical frames)``.

    A video that cannot be read (missing, corrupt, wrong length) is logged, counted and skipped; the others
    go on. ``frames_path``: also write the per-frame table :data:`FRAME_EMBEDDINGS` on the
    :func:`sample_grid` at ``frame_rate`` (each frame decoded once for both outputs).

    Stats: ``videos_in``, ``videos_ok``, ``videos_failed``, ``failed`` (``{video_uid: message}``),
    ``feature_rows``, ``frame_rows``, ``frames_decoded``, ``dim``, ``encoder``, ``encoder_fingerprint``,
    ``seconds``. ``out_dir/feature_set.json`` records the set's provenance (``egonlq.data.feature_sets``).
    """
    started = time.perf_counter()
    jobs = {Path(path): VideoJob(uid, Path(path), frames) for uid, path, frames in videos}
    if len(jobs) != len(videos) or len({j.video_uid for j in jobs.values()}) != len(videos):
        raise ValueError("every video must appear once (one video_uid and one path each)")
    per_frame: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    decoded = 0

    def one(path: Path) -> int:
        nonlocal decoded
        job = jobs[path]
        info = probe(path)
        check_canonical_length(info, job.num_frames_canonical)
        feature_idx = nearest_frames(feature_times(job.num_frames_canonical, info.duration_sec, rate), info)
        if len(feature_idx) == 0:
            raise InputError(path, f"video of {info.duration_sec:.3f} s has no feature row at {rate} rows/s")
        frame_idx = sample_grid(info, frame_rate)[0] if frames_path is not None else np.zeros(0, np.int64)
        wanted = np.union1d(feature_idx, frame_idx)
        embeddings = encode_frames(path, wanted, encoder, batch_size=batch_size)
        decoded += len(wanted)
        save_video_features(
            embeddings[np.searchsorted(wanted, feature_idx)], Path(out_dir) / f"{job.video_uid}.pt"
        )
        if frames_path is not None:
            rows = embeddings[np.searchsorted(wanted, frame_idx)]
            per_frame[job.video_uid] = (frame_idx, frame_idx / info.fps, rows)
        return len(feature_idx)

    run = process_videos(list(jobs), one, desc=f"frame features ({encoder.name})")
    write_sidecar(
        Path(out_dir),
        f"frames_{encoder.name}",
        f"frame encoder {encoder.name}",
        feature_grid(rate),
        encoder.dim,
    )
    frame_rows = 0
    if frames_path is not None:
        frame_rows = write_frame_embeddings(per_frame, frames_path, encoder)
    stats = {
        **run.stats(),
        "failed": {jobs[p].video_uid: message for p, message in sorted(run.failures.items())},
        "feature_rows": int(sum(run.results.values())),
        "frame_rows": frame_rows,
        "frames_decoded": decoded,
        "dim": encoder.dim,
        "encoder": encoder.name,
        "encoder_fingerprint": encoder.fingerprint(),
        "seconds": round(time.perf_counter() - started, 3),
    }
    logger.info(
        "frame features: %d of %d videos written to %s (%d failed), %d feature rows, %d per-frame rows",
        stats["videos_ok"],
        stats["videos_in"],
        out_dir,
        stats["videos_failed"],
        stats["feature_rows"],
        frame_rows,
    )
    return stats


def write_frame_embeddings(
    per_video: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]], path: Path, encoder: FrameEncoder
) -> int:
    """Write ``{video_uid: (frame_idx, time_sec, embeddings [n, D])}`` as :data:`FRAME_EMBEDDINGS`, sorted by
    (video_uid, frame_idx); returns the row count."""
    uids = sorted(per_video)
    dim = encoder.dim
    counts = [len(per_video[u][0]) for u in uids]
    flat = (
        np.concatenate([per_video[u][2] for u in uids]).astype(np.float32).ravel()
        if uids
        else np.zeros(0, np.float32)
    )
    offsets = np.arange(sum(counts) + 1, dtype=np.int32) * dim
    table = pa.table(
        {
            "video_uid": pa.array(
                [u for u, c in zip(uids, counts, strict=True) for _ in range(c)], pa.string()
            ),
            "frame_idx": pa.array(
                np.concatenate([per_video[u][0] for u in uids] or [np.zeros(0)]), pa.int64()
            ),
            "time_sec": pa.array(
                np.concatenate([per_video[u][1] for u in uids] or [np.zeros(0)]), pa.float64()
            ),
            "embedding": pa.ListArray.from_arrays(pa.array(offsets), pa.array(flat, pa.float32())),
        }
    )
    schema = FRAME_EMBEDDINGS.with_metadata({"encoder": encoder.name, "fingerprint": encoder.fingerprint()})
    write_parquet(table.cast(schema), path)
    return table.num_rows
