"""w-second chunk features for step grounding, on the video or group timeline (spec §6).

Chunk ``n`` covers ``[n·w, (n+1)·w)`` s and is the mean of the feature rows whose start time ``i / rate`` lies
in it. A ``grp-`` entry's features are its members' feature rows concatenated in the listed order (the
official ``aggregate_features.py``). The source's own layout, a folder per video of ``chunk_<n>.pt`` tensors,
is read as is.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from egonlq.data.features import load_video_features
from egonlq.errors import InputError

_CHUNK_FILE = re.compile(r"chunk_(\d+)\.pt")


def pool_chunks(rows: np.ndarray, rate: float, width: float) -> np.ndarray:
    """Mean-pool feature rows ``[R, D]`` at ``rate`` rows/s into ``ceil(R / rate / width)`` chunks."""
    if len(rows) == 0:
        raise ValueError("no feature rows to pool")
    n_chunks = max(1, math.ceil(len(rows) / rate / width - 1e-9))
    chunk = np.minimum((np.arange(len(rows)) / rate // width).astype(np.int64), n_chunks - 1)
    sums = np.zeros((n_chunks, rows.shape[1]), dtype=np.float64)
    np.add.at(sums, chunk, rows)
    counts = np.bincount(chunk, minlength=n_chunks)[:, None]
    filled = counts[:, 0] > 0
    # a chunk with no row (rate < 1 / width) takes the previous row's value
    sums[filled] /= counts[filled]
    for n in np.flatnonzero(~filled):
        sums[n] = sums[n - 1]
    return sums.astype(np.float32)


def entry_rows(
    uid: str, groups: dict[str, list[str]], load: Callable[[str], np.ndarray], *, source: str | Path
) -> np.ndarray:
    """The feature rows of an entry: one video's, or a group's members' concatenated in order. A member
    without features is an InputError naming the group and the member."""
    members = groups.get(uid, [uid]) if uid.startswith("grp-") else [uid]
    if uid.startswith("grp-") and uid not in groups:
        raise InputError(source, "group not listed in goalstep_video_groups.tsv", record=f"video_uid={uid}")
    parts = []
    for member in members:
        try:
            parts.append(load(member))
        except InputError as e:
            raise InputError(
                source, f"group member {member} has no usable features: {e}", record=f"video_uid={uid}"
            ) from e
    return np.concatenate(parts)


def read_chunk_folder(folder: str | Path) -> np.ndarray:
    """The source's layout: ``folder/chunk_<n>.pt`` tensors ``[D]`` (or ``[1, D]``), n = 0..N-1, stacked."""
    folder = Path(folder)
    files = {int(m.group(1)): p for p in folder.glob("chunk_*.pt") if (m := _CHUNK_FILE.fullmatch(p.name))}
    if not files:
        raise InputError(folder, "no chunk_<n>.pt files", record=f"video_uid={folder.name}")
    missing = sorted(set(range(max(files) + 1)) - set(files))
    if missing:
        raise InputError(folder, f"chunks missing: {missing[:5]}", record=f"video_uid={folder.name}")
    rows = []
    for n in range(len(files)):
        t = torch.load(files[n], map_location="cpu", weights_only=True)
        rows.append(np.asarray(t, dtype=np.float32).reshape(-1))
    return np.stack(rows)


def entry_loader(
    feature_dir: str | Path, groups: dict[str, list[str]], *, dim: int, groups_path: str | Path
) -> Callable[[str], np.ndarray]:
    """``uid -> rows``: an entry's feature rows from ``<feature_dir>/<video_uid>.pt`` (validated), a group's
    concatenated (:func:`entry_rows`)."""
    folder = Path(feature_dir)

    def load(video_uid: str) -> np.ndarray:
        return load_video_features(folder / f"{video_uid}.pt", expected_dim=dim, video_uid=video_uid)

    return lambda uid: entry_rows(uid, groups, load, source=groups_path)
