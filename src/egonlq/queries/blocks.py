"""Contextual blocks (llm-queries.md, step 2) and their textual form in prompts.

Within a video, consecutive curated narrations are grouped into blocks of K so that the model sees the
surrounding actions and writes one question per narration. A block's id is stable (video uid plus a hash of
its narration uids) and so is its shard (a hash of the id), whatever the order blocks are produced in.

The numbered-list form of a block is defined here once: prompts are rendered with :func:`format_block` and the
rule-based writer reads prompts back with :func:`parse_numbered_list`.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from egonlq.errors import InputError
from egonlq.queries.curation import ASSIGNED


class BlockRow(NamedTuple):
    """One narration of a block with its window (video-relative and in its pseudo-clip)."""

    narration_uid: str
    time_sec: float
    text: str  # raw, with tags
    text_clean: str
    window_start_sec: float
    window_end_sec: float
    clip_uid: str
    clip_video_start_sec: float  # the pseudo-clip's start in the video
    clip_duration_sec: float
    clip_start_sec: float  # window, clip-relative
    clip_end_sec: float


@dataclass(frozen=True)
class Block:
    block_id: str
    video_uid: str
    rows: tuple[BlockRow, ...]


def block_id_of(video_uid: str, narration_uids: list[str] | tuple[str, ...]) -> str:
    """``"<video_uid>:<12 hex>"``, the hex a SHA-256 of the member narration uids (first one included)."""
    digest = hashlib.sha256("\n".join(narration_uids).encode("utf-8")).hexdigest()[:12]
    return f"{video_uid}:{digest}"


_ROW_COLUMNS = (
    "narration_uid",
    "timestamp_sec",
    "text",
    "text_clean",
    "window_start_sec",
    "window_end_sec",
    "clip_uid",
    "clip_video_start_sec",
    "clip_duration_sec",
    "clip_start_sec",
    "clip_end_sec",
)  # BlockRow's fields, in order


def make_blocks(
    assigned: pa.Table, *, block_size: int = 8, shard: int | None = None, num_shards: int = 1
) -> list[Block]:
    """Group the narrations of each video, in time order, into blocks of ``block_size``.

    ``assigned`` is an :data:`egonlq.queries.curation.ASSIGNED` table (curated narrations with pseudo-clips).
    The last
    block of a video may be shorter. Blocks come out sorted by video, then time. With ``shard`` given, only
    the blocks of that shard (:func:`shard_of` over ``num_shards``) are built: what one shard job needs.
    """
    if block_size < 1:
        raise ValueError(f"block_size must be >= 1, got {block_size}")
    if shard is not None and not 0 <= shard < num_shards:
        raise ValueError(f"shard must be in [0, {num_shards}), got {shard}")
    missing = [n for n in ASSIGNED.names if n not in assigned.column_names]
    if missing:
        raise InputError(
            None, "curated narrations lack pseudo-clip columns", field=missing[0], expected="ASSIGNED"
        )
    order = pc.sort_indices(
        assigned, [("video_uid", "ascending"), ("timestamp_sec", "ascending"), ("narration_uid", "ascending")]
    )
    table = assigned.select(list(_ROW_COLUMNS) + ["video_uid"]).take(order)
    videos = table.column("video_uid").to_numpy(zero_copy_only=False)
    uids = table.column("narration_uid").to_pylist()
    n = len(videos)
    new_video = np.ones(n, dtype=bool)
    new_video[1:] = videos[1:] != videos[:-1]
    video_start = np.maximum.accumulate(np.where(new_video, np.arange(n), 0)) if n else np.zeros(0, dtype=int)
    position = np.arange(n) - video_start
    starts = np.flatnonzero(new_video | (position % block_size == 0)).tolist() + [n]
    spans = []
    for a, b in zip(starts[:-1], starts[1:], strict=True):
        block_id = block_id_of(videos[a], uids[a:b])
        if shard is None or shard_of(block_id, num_shards) == shard:
            spans.append((block_id, a, b))
    if shard is not None:  # build rows only for the selected blocks
        keep = (
            np.concatenate([np.arange(a, b) for _, a, b in spans]) if spans else np.zeros(0, dtype=np.int64)
        )
        offsets = np.cumsum([0] + [b - a for _, a, b in spans]).tolist()
        spans = [(bid, offsets[k], offsets[k + 1]) for k, (bid, _, _) in enumerate(spans)]
        videos = videos[keep]
        table = table.take(pa.array(keep, type=pa.int64()))
    columns = [table.column(name).to_numpy(zero_copy_only=False).tolist() for name in _ROW_COLUMNS]
    rows = [BlockRow._make(values) for values in zip(*columns, strict=True)]
    return [Block(block_id, str(videos[a]), tuple(rows[a:b])) for block_id, a, b in spans]


def shard_of(block_id: str, num_shards: int) -> int:
    """Stable shard of a block: SHA-256 of its id modulo ``num_shards``."""
    if num_shards < 1:
        raise ValueError(f"num_shards must be >= 1, got {num_shards}")
    return int(hashlib.sha256(block_id.encode("utf-8")).hexdigest()[:16], 16) % num_shards


def format_time(seconds: float) -> str:
    """``mm:ss`` (minutes not capped at 59), as shown to the model."""
    total = int(round(seconds))
    return f"{total // 60:02d}:{total % 60:02d}"


def format_block(block: Block) -> str:
    """The block as the prompt shows it: ``"1. [00:12] The camera wearer picks a knife"`` per line."""
    return "\n".join(f"{i}. [{format_time(r.time_sec)}] {r.text_clean}" for i, r in enumerate(block.rows, 1))


def format_sentences(sentences: list[str]) -> str:
    """A numbered list of plain sentences (the rephrasing prompt): ``"1. Where did I put the knife?"``."""
    return "\n".join(f"{i}. {' '.join(s.split())}" for i, s in enumerate(sentences, 1))


_NUMBERED = re.compile(r"^(\d+)\. (?:\[(\d+:\d\d)\] )?(.+)$")


def parse_numbered_list(prompt: str) -> tuple[list[tuple[str | None, str]], bool]:
    """The LAST numbered list of a prompt (the block after any example), as ``(time or None, text)`` items.

    Returns the items and whether the list carries times (a narration block) or not (sentences). A list is a
    run of lines numbered 1, 2, 3, ...; an empty result means the prompt holds no list.
    """
    runs: list[list[tuple[str | None, str]]] = []
    current: list[tuple[str | None, str]] = []
    for line in prompt.splitlines():
        m = _NUMBERED.match(line.strip())
        if m and int(m.group(1)) == len(current) + 1:
            current.append((m.group(2), m.group(3).strip()))
            continue
        if current:
            runs.append(current)
        current = [(m.group(2), m.group(3).strip())] if m and m.group(1) == "1" else []
    if current:
        runs.append(current)
    if not runs:
        return [], False
    last = runs[-1]
    return last, all(t is not None for t, _ in last)
