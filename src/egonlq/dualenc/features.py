"""A trained dual encoder's frozen video tower as a feature extractor: a new per-video feature set for VSLNet.

Row ``i`` of a video's new file is the tower's embedding (``embed_dim``, L2-normalised) of the window of
``window_rows`` input rows centred on row ``i`` (rows ``i - h .. i + h``, ``h = window_rows // 2``, clipped to
the video), so the new set sits on the input set's time grid row for row: same ``<video_uid>.pt`` names, same
row counts, the input's sidecar grid. The windowed embedding, not the per-row tokens, is what the contrastive
loss aligned with text; a window of about the training windows' length (EgoClip windows of narrations, about
1 s = 2 rows on the demo) keeps the tower on the inputs it was trained for: 3 rows by default.

Every ``*.pt`` of the input folder is embedded, one video at a time (memory stays one video's rows); a bad
file stops the run with the error of :func:`egonlq.data.features.load_video_features` (file, video, field).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
import torch

from egonlq.data.feature_sets import resolve_feature_set, write_sidecar
from egonlq.data.features import load_video_features, save_video_features
from egonlq.dualenc.bank import FeatureBank
from egonlq.dualenc.evaluate import embed_windows
from egonlq.dualenc.model import DualEncoder
from egonlq.errors import InputError
from egonlq.progress import tqdm

logger = logging.getLogger(__name__)

DEFAULT_WINDOW_ROWS = 3


def centred_windows(num_rows: int, window_rows: int) -> tuple[np.ndarray, np.ndarray]:
    """First row and row count ``[N]`` of the window centred on each of ``num_rows`` rows, clipped."""
    if window_rows < 1 or window_rows % 2 == 0:
        raise ValueError(f"window_rows must be an odd number >= 1, got {window_rows}")
    half = window_rows // 2
    centre = np.arange(num_rows, dtype=np.int64)
    first = np.maximum(centre - half, 0)
    last = np.minimum(centre + half, num_rows - 1)
    return first, last - first + 1


def embed_video(
    model: DualEncoder, rows: np.ndarray, *, window_rows: int, batch_size: int = 1024
) -> np.ndarray:
    """``[N, E]`` float32: the tower's embedding of the window centred on each of the ``[N, Dv]`` rows."""
    bank = FeatureBank(["video"], torch.from_numpy(rows), np.zeros(1, np.int64), np.array([len(rows)]))
    first, count = centred_windows(len(rows), window_rows)
    return embed_windows(model, bank, first, count, batch_size=batch_size).numpy().astype(np.float32)


def embed_feature_set(
    model: DualEncoder,
    feature_dir: Path,
    input_set: str,
    out_dir: Path,
    *,
    name: str,
    backbone: str,
    window_rows: int = DEFAULT_WINDOW_ROWS,
    progress: bool = True,
) -> dict:
    """Write ``out_dir/<video_uid>.pt`` for every video file of ``feature_dir`` (the set ``input_set``) and
    the new set's sidecar (``name``, ``backbone``, the input's grid); return counts."""
    started = time.perf_counter()
    feature_dir, out_dir = Path(feature_dir), Path(out_dir)
    source = resolve_feature_set(feature_dir, input_set)
    if source.dim != model.config.video_dim:
        raise InputError(
            feature_dir / "feature_set.json",
            f"the set {input_set!r} has {source.dim}-d rows, the dual encoder's video tower takes "
            f"{model.config.video_dim}-d",
            field="dim",
            expected=str(model.config.video_dim),
        )
    paths = sorted(feature_dir.glob("*.pt"))
    if not paths:
        raise InputError(feature_dir, "no per-video feature file", expected="<video_uid>.pt files")
    out_dir.mkdir(parents=True, exist_ok=True)
    rows_out = 0
    for path in tqdm(paths, desc="dual encoder features", unit="video", disable=not progress or None):
        rows = load_video_features(path, expected_dim=source.dim, video_uid=path.stem, grid=source.grid)
        embedded = embed_video(model, rows, window_rows=window_rows)
        save_video_features(embedded, out_dir / path.name)
        rows_out += len(embedded)
    written = {p.name for p in paths}
    stale = [p for p in out_dir.glob("*.pt") if p.name not in written]
    for p in stale:  # left by an earlier run over other videos: not part of this set
        p.unlink()
    write_sidecar(out_dir, name, backbone, source.grid, model.config.embed_dim)
    stats = {
        "videos": len(paths),
        "rows": rows_out,
        "input_set": input_set,
        "input_dim": source.dim,
        "dim": model.config.embed_dim,
        "window_rows": window_rows,
        "stale_files_removed": len(stale),
        "seconds": round(time.perf_counter() - started, 3),
    }
    logger.info(
        "dual encoder features: %d videos, %d rows of %d-d (from %d-d %s) in %s",
        len(paths),
        rows_out,
        model.config.embed_dim,
        source.dim,
        input_set,
        out_dir,
    )
    return stats
