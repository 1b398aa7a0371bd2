"""Zero-shot NLQ with the dual encoder: candidate windows of each clip scored by cosine with the query.

Candidates: for every length ``w`` of ``window_sec``, windows ``[k * stride * w, k * stride * w + w]`` inside
the clip (plus one ending at the clip end; a clip shorter than ``w`` gets one window, the whole clip). Each
candidate is embedded by the video tower from its feature rows (video time = clip start + clip time), each
query by the text tower; candidates are ranked by cosine, non-maximum suppression drops those whose IoU with a
better kept one exceeds ``nms_iou``, and the first 5 are the prediction (the best one repeated when fewer
survive). Queries without text are not predicted, as for the baselines. The official metric scores the file.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from egonlq.data.tables import CLIPS, QUERIES
from egonlq.dualenc.evaluate import Embedder
from egonlq.evaluation.predictions import Prediction
from egonlq.io import read_parquet
from egonlq.progress import tqdm

logger = logging.getLogger(__name__)

NUM_WINDOWS = 5


def candidate_windows(duration: float, window_sec: Sequence[float], stride: float) -> np.ndarray:
    """``[M, 2]`` clip-relative candidate windows (see the module docstring), distinct, sorted."""
    out = []
    for w in window_sec:
        if w >= duration:
            out.append((0.0, duration))
            continue
        starts = np.arange(0.0, duration - w + 1e-9, stride * w)
        out += [(float(s), float(s + w)) for s in starts]
        if starts[-1] + w < duration:
            out.append((duration - w, duration))
    return np.unique(np.round(np.array(out, dtype=np.float64), 6), axis=0)


def nms(windows: np.ndarray, scores: np.ndarray, *, iou: float, k: int = NUM_WINDOWS) -> np.ndarray:
    """Indices of up to ``k`` windows by decreasing score, each with IoU <= ``iou`` to those kept before."""
    kept: list[int] = []
    for i in np.argsort(-scores, kind="stable"):
        s, e = windows[i]
        if all(_iou(s, e, *windows[j]) <= iou for j in kept):
            kept.append(int(i))
            if len(kept) == k:
                break
    return np.array(kept, dtype=np.int64)


def _iou(s1: float, e1: float, s2: float, e2: float) -> float:
    inter = max(0.0, min(e1, e2) - max(s1, s2))
    union = max(e1, e2) - min(s1, s2)
    return inter / union if union > 0 else 0.0


def predict_zero_shot(
    embedder: Embedder,
    queries_path: Path,
    clips_path: Path,
    *,
    window_sec: Sequence[float],
    stride: float = 0.5,
    nms_iou: float = 0.5,
    progress: bool = True,
) -> tuple[list[Prediction], dict]:
    """Ranked windows for every query with text of a split (QUERIES and CLIPS tables); and counts."""
    queries = read_parquet(queries_path, QUERIES).to_pandas()
    clips = read_parquet(clips_path, CLIPS).to_pandas().drop_duplicates("clip_uid").set_index("clip_uid")
    with_text = queries[queries["has_text"]].reset_index(drop=True)
    text = embedder.text(with_text["query"].tolist(), where=queries_path)  # [Q, E]
    rows: list[Prediction] = []
    for clip_uid, group in tqdm(
        with_text.groupby("clip_uid", sort=True), desc="clips", disable=not progress or None
    ):
        clip = clips.loc[clip_uid]
        duration = float(clip["video_end_sec"] - clip["video_start_sec"])
        windows = candidate_windows(duration, window_sec, stride)
        first, count = embedder.bank.window_rows(
            [clip["video_uid"]] * len(windows),
            clip["video_start_sec"] + windows[:, 0],
            clip["video_start_sec"] + windows[:, 1],
            where=str(clips_path),
        )
        scores = (text[torch.tensor(group.index.to_numpy())] @ embedder.windows(first, count).T).numpy()
        for q, query in enumerate(group.itertuples(index=False)):
            best = nms(windows, scores[q], iou=nms_iou)
            best = np.concatenate([best, np.repeat(best[:1], NUM_WINDOWS - len(best))])
            rows.append(
                Prediction(clip_uid, query.annotation_uid, int(query.query_idx), windows[best].tolist())
            )
    stats = {
        "queries": len(queries),
        "predicted": len(rows),
        "without_text": int((~queries["has_text"]).sum()),
        "clips": int(with_text["clip_uid"].nunique()),
        "window_sec": list(window_sec),
        "stride": stride,
        "nms_iou": nms_iou,
    }
    logger.info("zero-shot NLQ: %s", stats)
    return rows, stats


def clip_videos(clips_path: Path) -> list[str]:
    """The videos of a CLIPS table (to load their features)."""
    return sorted(set(read_parquet(clips_path, CLIPS).column("video_uid").to_pylist()))
