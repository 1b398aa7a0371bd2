"""(window, text) pairs for the dual encoder: GT narrations and pseudo-text, each pair keeping its source.

- GT narrations come from the curated table (:mod:`egonlq.queries.curation`): the EgoClip window of each
  narration (dual-encoder-and-steps.md section 3), text = ``text_clean``, source ``narration``.
- Pseudo-text comes from the generated tables of the query generators (``template``, ``llm:<model>``) and of
  the ``rephrase`` rule (``rephrase:narration``, ...): each row names the narration it was written from, and
  becomes one more text of that narration's window (the item), so an item may carry several texts.
- Leakage guard: no pair on a video listed by the NLQ val or test split files (their NLQ_VIDEOS tables,
  which keep the videos listed with no clip: those are absent from the clip tables).
- Held-out videos (a seeded hash of the video uid < ``heldout_fraction``) give the evaluation pool (their GT
  narrations only; no pair of any source on them trains).
- ``gt_rank``: a seeded uniform number per narration; a run keeping a fraction ``f`` of the GT narrations
  keeps those with ``gt_rank < f``, so the subsets are nested (10 % is inside 50 %). Pseudo-text written
  from a narration's text (rephrasings, generated questions) follows its narration: a run that does not
  have the narration does not have its paraphrase either (else "GT 10 % + rephrased" would see the content
  of all the GT). Only :data:`VIDEO_SOURCES` (the narrator, written from video by a model trained on the
  kept GT) are kept on every window.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from egonlq.data.tables import NLQ_VIDEOS
from egonlq.errors import InputError
from egonlq.grounding.nlq_dataset import sources_matching
from egonlq.io import read_parquet
from egonlq.queries.curation import CURATED
from egonlq.queries.llm_queries import GENERATED

logger = logging.getLogger(__name__)

GT_SOURCE = "narration"
# Sources written from video, not from a narration's text: kept on every window whatever the GT fraction.
VIDEO_SOURCES = frozenset({"narrator"})
ROLES = ("train", "heldout")

# results/dualenc/pairs.parquet: one row per (window, text)
PAIRS = pa.schema(
    [
        pa.field("item_uid", pa.string(), nullable=False),  # the narration whose window this is
        pa.field("video_uid", pa.string(), nullable=False),
        pa.field("window_start_sec", pa.float64(), nullable=False),  # EgoClip window, video-relative
        pa.field("window_end_sec", pa.float64(), nullable=False),
        pa.field("text", pa.string(), nullable=False),
        pa.field("source", pa.string(), nullable=False),  # "narration", "template", "rephrase:narration", ...
        pa.field("role", pa.string(), nullable=False),  # "train" or "heldout"
        pa.field("gt_rank", pa.float64(), nullable=False),  # seeded uniform [0, 1) per item (GT subsampling)
        pa.field("timestamp_sec", pa.float64(), nullable=False),  # the narration's time (intra-video MCQ)
    ]
)


def uniform_hash(keys: Sequence[str], salt: str) -> np.ndarray:
    """A reproducible uniform number in [0, 1) per key (blake2b of ``salt:key``)."""
    out = np.empty(len(keys), dtype=np.float64)
    for i, key in enumerate(keys):
        digest = hashlib.blake2b(f"{salt}:{key}".encode(), digest_size=8).digest()
        out[i] = int.from_bytes(digest, "big") / 2**64
    return out


def guard_videos(paths: Sequence[str | Path]) -> set[str]:
    """Every video of the NLQ_VIDEOS tables of the evaluation splits (videos listed with no clip included)."""
    return {v for path in paths for v in read_parquet(path, NLQ_VIDEOS).column("video_uid").to_pylist()}


def build_pairs(
    curated: pa.Table,
    generated: Sequence[pa.Table],
    *,
    guard: Collection[str],
    heldout_fraction: float,
    seed: int = 0,
) -> tuple[pa.Table, dict]:
    """All pairs of every source as a :data:`PAIRS` table, and stats of what was kept and dropped.

    ``guard``: the NLQ val/test video uids (:func:`guard_videos`). Rows on them are dropped and
    counted (``dropped.nlq_eval_video``). Generated rows whose narration is not in ``curated`` are dropped
    (``dropped.unknown_narration``), as are pseudo rows on held-out videos (``dropped.heldout_pseudo``) and
    exact duplicates of (item, text, source) (``dropped.duplicate``).
    """
    if not 0.0 <= heldout_fraction < 1.0:
        raise ValueError(f"heldout_fraction {heldout_fraction} is not in [0, 1)")
    gt = curated.select(CURATED.names).to_pandas()
    windows = gt.set_index("narration_uid")[
        ["video_uid", "window_start_sec", "window_end_sec", "timestamp_sec"]
    ]
    frames = [pd.DataFrame({"item_uid": gt["narration_uid"], "text": gt["text_clean"], "source": GT_SOURCE})]
    dropped = {
        "nlq_eval_video": 0,
        "unknown_narration": 0,
        "heldout_pseudo": 0,
        "duplicate": 0,
        "empty_text": 0,
    }
    for table in generated:
        rows = table.select(GENERATED.names).to_pandas()
        known = rows["narration_uid"].isin(windows.index)
        dropped["unknown_narration"] += int((~known).sum())
        rows = rows[known]
        frames.append(
            pd.DataFrame({"item_uid": rows["narration_uid"], "text": rows["query"], "source": rows["source"]})
        )
    pairs = pd.concat(frames, ignore_index=True)
    pairs["text"] = pairs["text"].astype(str).str.strip()
    empty = pairs["text"] == ""
    dropped["empty_text"] = int(empty.sum())
    pairs = pairs[~empty].join(windows, on="item_uid")

    on_guard = pairs["video_uid"].isin(set(guard)).to_numpy()
    dropped["nlq_eval_video"] = int(on_guard.sum())
    pairs = pairs[~on_guard]
    video_uids = sorted(set(pairs["video_uid"]))
    heldout_videos = {
        v
        for v, h in zip(video_uids, uniform_hash(video_uids, f"heldout:{seed}"), strict=True)
        if h < heldout_fraction
    }
    pairs["role"] = np.where(pairs["video_uid"].isin(heldout_videos), "heldout", "train")
    pseudo_heldout = (pairs["role"] == "heldout").to_numpy() & (pairs["source"] != GT_SOURCE).to_numpy()
    dropped["heldout_pseudo"] = int(pseudo_heldout.sum())
    pairs = pairs[~pseudo_heldout]
    dup = pairs.duplicated(["item_uid", "text", "source"])
    dropped["duplicate"] = int(dup.sum())
    pairs = pairs[~dup].sort_values(
        ["video_uid", "timestamp_sec", "item_uid", "source", "text"], kind="stable"
    )
    pairs["gt_rank"] = uniform_hash(pairs["item_uid"].tolist(), f"gt:{seed}")
    table = pa.Table.from_pandas(pairs[PAIRS.names], schema=PAIRS, preserve_index=False)
    leaked = set(pairs["video_uid"]) & set(guard)
    if leaked:  # the filter above makes this impossible; the check states the contract
        raise RuntimeError(f"leakage guard failed: pairs on NLQ evaluation videos {sorted(leaked)[:5]}")
    stats = {
        "pairs": table.num_rows,
        "items": int(pairs["item_uid"].nunique()),
        "videos": int(pairs["video_uid"].nunique()),
        "heldout_videos": len(heldout_videos & set(pairs["video_uid"])),
        "per_source": {
            f"{role}:{src}": int(n) for (role, src), n in pairs.groupby(["role", "source"]).size().items()
        },
        "dropped": dropped,
        "heldout_fraction": heldout_fraction,
        "seed": seed,
    }
    logger.info(
        "pairs: %d (%d items on %d videos), dropped %s",
        stats["pairs"],
        stats["items"],
        stats["videos"],
        dropped,
    )
    return table, stats


def select_pairs(
    pairs: pa.Table,
    *,
    sources: Collection[str],
    gt_fraction: float,
    role: str = "train",
    where: str | Path = "pairs",
) -> pd.DataFrame:
    """The rows of a run: ``role`` rows whose source matches one of ``sources`` (fnmatch patterns), rows of
    narrations (GT and the pseudo-text written from it) kept only when ``gt_rank < gt_fraction``; rows of
    :data:`VIDEO_SOURCES` always. An empty selection is an error naming the sources."""
    if role not in ROLES:
        raise ValueError(f"role {role!r} is not one of {ROLES}")
    df = pairs.to_pandas()
    keep = (df["role"] == role).to_numpy() & sources_matching(df["source"].tolist(), sources)
    keep &= df["source"].isin(VIDEO_SOURCES).to_numpy() | (df["gt_rank"] < gt_fraction).to_numpy()
    out = df[keep].reset_index(drop=True)
    if out.empty:
        available = sorted(set(df.loc[df["role"] == role, "source"]))
        raise InputError(
            where,
            f"no {role} pair for sources {sorted(sources)} with gt_fraction {gt_fraction}",
            field="source",
            expected=f"sources among {available}",
        )
    return out


def read_pairs(path: str | Path) -> pa.Table:
    """A pairs table written by the ``dualenc-pairs`` command (schema checked)."""
    if not Path(path).is_file():
        raise InputError(path, "pairs table not found")
    return read_parquet(path, PAIRS)


def source_counts(rows: pd.DataFrame) -> Mapping[str, int]:
    return {str(k): int(v) for k, v in rows["source"].value_counts().sort_index().items()}
