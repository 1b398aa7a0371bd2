"""Window features served from memory: every needed video's feature rows in ONE tensor with per-video offsets.

The usual dataset pattern loads an item's feature file on every fetch (a ``torch.load`` per pair); here each
video file is read once (:func:`egonlq.data.features.load_video_features`, which validates it), the rows go
into one float32 tensor ``[R, D]``, and a batch of windows is one vectorised gather
(bench/bench_dualenc.py measures the difference).

Window -> rows (video time on the set's grid, ``r`` rows/s, row ``i`` starting at ``i / r`` s; 1.875 for the
official sets, the folder's sidecar says): from the row holding the start (``floor(s * r)``) to the last row
starting before the end (``ceil(e * r) - 1``), at least one row, clipped to the video. Windows longer than
``max_rows`` rows are subsampled uniformly to ``max_rows``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from egonlq.data.feature_sets import folder_grid
from egonlq.data.features import load_video_features
from egonlq.errors import InputError
from egonlq.progress import tqdm
from egonlq.timegrid import OFFICIAL, FeatureGrid

logger = logging.getLogger(__name__)

_SHOW = 5


class FeatureBank:
    """``rows [R, D]`` float32 and ``start``/``count`` per video (``videos`` maps video_uid -> position), on
    the feature set's time ``grid``."""

    def __init__(
        self,
        videos: list[str],
        rows: torch.Tensor,
        start: np.ndarray,
        count: np.ndarray,
        grid: FeatureGrid = OFFICIAL,
    ) -> None:
        self.videos = {v: i for i, v in enumerate(videos)}
        self.rows, self.start, self.count, self.grid = rows, start, count, grid
        self.dim = rows.shape[1]

    @classmethod
    def load(
        cls,
        feature_dir: str | Path,
        video_uids: Sequence[str],
        *,
        dim: int,
        num_frames: dict[str, int] | None = None,
        progress: bool = True,
    ) -> FeatureBank:
        """Load ``<feature_dir>/<video_uid>.pt`` of every distinct video once, after checking all exist; the
        grid is the folder's (:func:`egonlq.data.feature_sets.folder_grid`)."""
        feature_dir = Path(feature_dir)
        grid = folder_grid(feature_dir)
        videos = sorted(set(video_uids))
        missing = [v for v in videos if not (feature_dir / f"{v}.pt").is_file()]
        if missing:
            raise InputError(
                feature_dir / f"{missing[0]}.pt",
                f"{len(missing)} of {len(videos)} videos have no feature file (first {missing[:_SHOW]})",
                record=f"video_uid={missing[0]}",
                expected="<feature_dir>/<video_uid>.pt for every video of the pairs",
            )
        arrays = [
            load_video_features(
                feature_dir / f"{v}.pt",
                expected_dim=dim,
                num_frames=None if num_frames is None else num_frames.get(v),
                video_uid=v,
                grid=grid,
            )
            for v in tqdm(videos, desc="load features", unit="video", disable=not progress or None)
        ]
        count = np.array([len(a) for a in arrays], dtype=np.int64)
        start = np.concatenate([[0], np.cumsum(count)[:-1]]).astype(np.int64)
        rows = torch.from_numpy(np.concatenate(arrays) if arrays else np.zeros((0, dim), np.float32))
        logger.info(
            "feature bank: %d videos, %d rows of %d-d, %.1f MiB",
            len(videos),
            len(rows),
            dim,
            rows.numel() * 4 / 2**20,
        )
        return cls(videos, rows, start, count, grid)

    def window_rows(
        self,
        video_uids: Sequence[str],
        start_sec: np.ndarray,
        end_sec: np.ndarray,
        *,
        where: str | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Absolute first row and row count of each window (``[N]`` int64 each)."""
        pos = np.array([self.videos.get(v, -1) for v in video_uids], dtype=np.int64)
        if (pos < 0).any():
            bad = video_uids[int(np.argmax(pos < 0))]
            raise InputError(where, "video not in the feature bank", record=f"video_uid={bad}")
        n = self.count[pos]
        rate = self.grid.rows_per_second
        first = np.clip(np.floor(np.asarray(start_sec) * rate).astype(np.int64), 0, n - 1)
        last = np.clip(np.ceil(np.asarray(end_sec) * rate).astype(np.int64) - 1, first, n - 1)
        return self.start[pos] + first, last - first + 1

    def gather(
        self, first: torch.Tensor, count: torch.Tensor, max_rows: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Rows ``[B, L, D]`` and mask ``[B, L]`` (``L = min(max_rows, max count)``) of windows given as
        (first row, count); longer windows are subsampled uniformly. One indexing operation."""
        length = int(min(max_rows, int(count.max()) if len(count) else 1))
        steps = torch.arange(length)
        long = count > length
        offset = torch.where(long[:, None], steps[None, :] * count[:, None] // length, steps[None, :])
        mask = steps[None, :] < count.clamp(max=length)[:, None]
        index = (first[:, None] + offset.clamp(max=(count - 1)[:, None])).clamp(min=0)
        return self.rows[index], mask
