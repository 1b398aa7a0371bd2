"""Reading video frames with decord: probing, frame sampling grids, batched decoding, many-video runs.

Frame indices are always native (0-based positions in the decoded stream) and a frame's time is
``index / fps`` with the native average fps, as in the AKS reference (``spec/aks.md``, section 2).
Unreadable input raises :class:`egonlq.errors.InputError` naming the file; :func:`process_videos` turns
those into counted failures so one bad video does not stop a run over thousands.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Generic, TypeVar

import decord
import numpy as np
from decord._ffi.base import DECORDError

from egonlq import timegrid
from egonlq.errors import InputError
from egonlq.progress import tqdm

logger = logging.getLogger(__name__)

T = TypeVar("T")

# decord reports some failures as DECORDError and others (e.g. a missing moov atom) as RuntimeError.
_DECORD_ERRORS = (DECORDError, RuntimeError)
_DECORD_PREFIX = re.compile(r"^\[[\d:]+\] \S+:\d+: ")
# Guards floor(duration * rate) against 99.99999999 for what is exactly 100 samples.
_COUNT_EPS = 1e-9
# How far a decoded video's length may be from its canonical length (Ego4D metadata: num_frames at 30 fps)
# before it is refused as the wrong file. A faithful copy differs by a few frames (re-encoding, a demo
# rendering at 5 fps rounds to 0.2 s); a truncated download or another video differs by far more, and a
# window of the metadata's timeline that the file does not hold would be scored as if it did.
DURATION_TOLERANCE_SEC = 1.0


@dataclass
class VideoInfo:
    """What decord reports for a video; ``duration_sec`` is ``num_frames / fps``."""

    path: Path
    num_frames: int
    fps: float
    width: int
    height: int
    duration_sec: float


def probe(path: Path, *, num_threads: int = 1) -> VideoInfo:
    """Frame count, average fps and frame size of a video (decodes its first frame for the size)."""
    path = Path(path)
    vr = _open(path, num_threads=num_threads)
    num_frames, fps = len(vr), float(vr.get_avg_fps())
    if num_frames == 0 or not math.isfinite(fps) or fps <= 0:
        raise InputError(path, f"video has {num_frames} frames at {fps} fps", expected="frames and a fps > 0")
    try:
        height, width = vr[0].shape[:2]
    except _DECORD_ERRORS as e:
        raise InputError(path, f"cannot decode the first frame: {_message(e)}") from e
    return VideoInfo(path, num_frames, fps, int(width), int(height), num_frames / fps)


def check_canonical_length(info: VideoInfo, num_frames_canonical: int | None) -> None:
    """Refuse (InputError naming the file) a video whose decoded length ``info.duration_sec`` differs from its
    canonical length ``num_frames_canonical / 30`` by more than :data:`DURATION_TOLERANCE_SEC`; None skips
    the check (metadata without a frame count)."""
    if num_frames_canonical is None:
        return
    canonical = num_frames_canonical / timegrid.CANONICAL_FPS
    if abs(info.duration_sec - canonical) > DURATION_TOLERANCE_SEC:
        raise InputError(
            info.path,
            f"video lasts {info.duration_sec:.3f} s but its canonical video has {num_frames_canonical} frames"
            f" ({canonical:.3f} s): the wrong or a truncated file",
            field="num_frames",
            expected=f"the same length within {DURATION_TOLERANCE_SEC} s",
        )


def sample_indices(
    num_frames: int, fps: float, *, rate: float | None = None, reference_step: bool = False
) -> np.ndarray:
    """Native frame indices to decode, ascending and unique.

    ``reference_step=True`` is AKS's grid: ``step = int(fps)``, ``count = num_frames // step``, indices
    ``j * step`` (29.97 fps gives step 29, one sample every 0.968 s). It needs ``fps >= 1``: the reference
    divides by zero below that.

    Otherwise samples at ``rate`` per second: ``count = floor(num_frames / fps * rate)`` samples (``+1e-9``
    against float error), sample ``i`` being the frame nearest to time ``i / rate``, i.e.
    ``floor(i * fps / rate + 0.5)`` (halves round up). ``rate`` may not exceed ``fps``, which would repeat
    frames.
    """
    if isinstance(num_frames, bool) or not isinstance(num_frames, int | np.integer) or num_frames < 0:
        raise ValueError(f"num_frames must be an integer >= 0, got {num_frames!r}")
    if not math.isfinite(fps) or fps <= 0:
        raise ValueError(f"fps must be a finite number > 0, got {fps!r}")
    if reference_step:
        if rate is not None:
            raise ValueError("give either rate or reference_step=True, not both")
        if fps < 1:
            raise ValueError(
                f"AKS reference sampling needs fps >= 1 (step = int(fps) = 0 at {fps} fps); "
                f"sample at a rate instead"
            )
        step = int(fps)
        return np.arange(num_frames // step, dtype=np.int64) * step
    if rate is None:
        raise ValueError("give a sampling rate (samples per second) or reference_step=True")
    if not math.isfinite(rate) or not 0 < rate <= fps:
        raise ValueError(f"rate must be in (0, fps = {fps}] samples per second, got {rate!r}")
    count = math.floor(num_frames / fps * rate + _COUNT_EPS)
    indices = np.floor(np.arange(count) * fps / rate + 0.5).astype(np.int64)
    return np.minimum(indices, num_frames - 1)


def iter_frames(
    path: Path,
    indices: np.ndarray,
    *,
    batch_size: int = 32,
    size: tuple[int, int] | None = None,
    num_threads: int = 1,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Decode the frames at ``indices`` in batches, yielding ``(indices [b], RGB frames [b, H, W, 3] uint8)``.

    ``size = (height, width)`` makes decord resize while decoding. ``num_threads`` is decord's decoder
    thread count (0: decord picks). Raises InputError for a missing or unreadable file and for an index
    outside ``[0, num_frames)``.
    """
    path = Path(path)
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    indices = np.asarray(indices, dtype=np.int64)
    if indices.ndim != 1:
        raise ValueError(f"indices must be 1-D, got shape {indices.shape}")
    vr = _open(path, num_threads=num_threads, size=size)
    num_frames = len(vr)
    bad = (indices < 0) | (indices >= num_frames)
    if bad.any():
        raise InputError(
            path,
            f"frame index {int(indices[bad][0])} out of range",
            expected=f"0 <= index < {num_frames} (the decoded frame count)",
        )
    for start in range(0, len(indices), batch_size):
        batch = indices[start : start + batch_size]
        try:
            frames = vr.get_batch(batch.tolist()).asnumpy()
        except _DECORD_ERRORS as e:
            raise InputError(path, f"cannot decode frames {batch[0]}..{batch[-1]}: {_message(e)}") from e
        yield batch, frames


@dataclass
class VideoRun(Generic[T]):
    """Results of :func:`process_videos`: per-video results and per-video error messages, keyed by path."""

    results: dict[Path, T] = field(default_factory=dict)
    failures: dict[Path, str] = field(default_factory=dict)

    def stats(self) -> dict[str, int]:
        return {
            "videos_in": len(self.results) + len(self.failures),
            "videos_ok": len(self.results),
            "videos_failed": len(self.failures),
        }


def process_videos(paths: Iterable[Path], fn: Callable[[Path], T], *, desc: str = "videos") -> VideoRun[T]:
    """Apply ``fn`` to every video; an InputError (missing, corrupt, undecodable) is logged and counted.

    Any other exception propagates: it is a bug or a resource problem, not a bad video.
    """
    run: VideoRun[T] = VideoRun()
    for path in tqdm(list(paths), desc=desc, unit="video", disable=None):
        path = Path(path)
        try:
            run.results[path] = fn(path)
        except InputError as e:
            logger.warning("skipping video: %s", e)
            run.failures[path] = str(e)
    logger.info("%s: %d processed, %d failed", desc, len(run.results), len(run.failures))
    return run


def _open(path: Path, *, num_threads: int, size: tuple[int, int] | None = None) -> decord.VideoReader:
    if not path.is_file():
        raise InputError(path, "video file not found (or not a regular file)")
    height, width = size if size is not None else (-1, -1)
    try:
        return decord.VideoReader(
            str(path), ctx=decord.cpu(0), num_threads=num_threads, width=width, height=height
        )
    except _DECORD_ERRORS as e:
        raise InputError(path, f"cannot open video: {_message(e)}") from e


def _message(e: Exception) -> str:
    """decord's message without its ``[hh:mm:ss] file.cc:123: `` prefix."""
    lines = str(e).strip().splitlines()
    return _DECORD_PREFIX.sub("", lines[-1]) if lines else type(e).__name__
