"""NLQ clip summaries: the ``#summary`` entries of ``narration.json`` that overlap each clip of a split.

Ego4D annotators write a free-text summary beside their narrations (``summaries`` of a narration pass:
``start_sec``, ``end_sec``, ``summary_text``); the ingest keeps them in the SUMMARIES table. A clip's summary
says what the clip is about, independent of any one query: the text of summary-guided keyframe selection
(:mod:`egonlq.video.keyframes`, ``text_source`` ``summary`` / ``both``).

Per clip: every summary of its video (either pass) whose ``[start_sec, end_sec]`` overlaps the clip window
``[video_start_sec, video_end_sec]`` by more than zero seconds, with times made clip-relative
(``start_sec - video_start_sec``; not clamped, so a summary that began before the clip has a negative
start). The clip's one scoring text (:func:`clip_summary_texts`) joins the distinct texts, ``#summary`` tag
removed, longest overlap first. Clips with no overlapping summary are counted; summaries without times or
text are skipped and counted.

Outputs: the :data:`CLIP_SUMMARIES` table (one row per clip and summary) and a JSON export keyed by clip uid
(the ``nlq_<split>_summaries.json`` of the keyframe source system, there a list of ``{video_uid, summary}``;
here one object per clip, so that a clip's window and its summaries travel together).
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pyarrow as pa

from egonlq.data.narrations import SUMMARY_PATTERN

# results/keyframes/summaries/nlq_{split}_summaries.parquet: one row per (clip, overlapping summary)
CLIP_SUMMARIES = pa.schema(
    [
        pa.field("clip_uid", pa.string(), nullable=False),
        pa.field("video_uid", pa.string(), nullable=False),
        pa.field("video_start_sec", pa.float64(), nullable=False),  # the clip window in the video
        pa.field("video_end_sec", pa.float64(), nullable=False),
        pa.field("pass", pa.int8(), nullable=False),  # narration pass of the summary
        pa.field("start_sec", pa.float64(), nullable=False),  # clip-relative, may lie outside the clip
        pa.field("end_sec", pa.float64(), nullable=False),
        pa.field("overlap_sec", pa.float64(), nullable=False),  # seconds of the clip the summary covers
        pa.field("text", pa.string(), nullable=False),  # as annotated (with its #summary tag)
        pa.field("annotation_uid", pa.string()),
    ]
)

_TAG = re.compile(SUMMARY_PATTERN + r"[ \t\n\r\f\v:]*", re.ASCII)


def summary_text(text: str) -> str:
    """A summary without its leading ``#summary`` tag ("#summary C cooks" -> "C cooks")."""
    return _TAG.sub("", text, count=1).strip()


def clip_summaries(summaries: pd.DataFrame, clips: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    """The summaries overlapping each clip (rows of :data:`CLIP_SUMMARIES`, by clip, pass, start) and stats.

    ``summaries``: rows of ``tables.SUMMARIES``; ``clips``: rows of ``tables.CLIPS`` (one split).
    Stats: ``clips``, ``clips_with_summary``, ``clips_without_summary``, ``summaries_in``,
    ``summaries_no_time`` (null or reversed start/end), ``summaries_no_text``, ``rows``,
    ``summaries_per_clip_mean`` and ``summary_sec_mean`` (mean length of the usable summaries, the density
    check: Ego4D writes one per narrated chunk).
    """
    bounds = clips.loc[:, ["clip_uid", "video_uid", "video_start_sec", "video_end_sec"]].drop_duplicates(
        "clip_uid"
    )
    start, end = summaries["start_sec"], summaries["end_sec"]
    no_time = start.isna() | end.isna() | (end < start)
    text = summaries["text"].fillna("").astype(str)
    no_text = ~no_time & (text.map(summary_text) == "")
    usable = summaries.loc[~no_time & ~no_text]
    joined = bounds.merge(usable, on="video_uid", how="inner")
    overlap = np.minimum(joined["end_sec"], joined["video_end_sec"]) - np.maximum(
        joined["start_sec"], joined["video_start_sec"]
    )
    joined = joined.assign(overlap_sec=overlap).loc[overlap > 0]
    rows = joined.assign(
        start_sec=joined["start_sec"] - joined["video_start_sec"],
        end_sec=joined["end_sec"] - joined["video_start_sec"],
    )
    rows = rows.sort_values(["clip_uid", "pass", "start_sec"], kind="stable").reset_index(drop=True)
    rows = rows.loc[:, CLIP_SUMMARIES.names]
    with_summary = rows["clip_uid"].nunique()
    stats = {
        "clips": len(bounds),
        "clips_with_summary": int(with_summary),
        "clips_without_summary": int(len(bounds) - with_summary),
        "summaries_in": len(summaries),
        "summaries_no_time": int(no_time.sum()),
        "summaries_no_text": int(no_text.sum()),
        "rows": len(rows),
        "summaries_per_clip_mean": round(len(rows) / with_summary, 3) if with_summary else None,
        "summary_sec_mean": round(float((usable["end_sec"] - usable["start_sec"]).mean()), 3)
        if len(usable)
        else None,
    }
    return rows, stats


def clip_summary_texts(rows: pd.DataFrame) -> dict[str, str]:
    """Each clip's scoring text: its distinct summary texts (tag removed), longest overlap first, joined by
    ". " (two passes often say the same thing once each)."""
    out: dict[str, str] = {}
    ordered = rows.sort_values(
        ["clip_uid", "overlap_sec", "pass", "start_sec"], ascending=[True, False, True, True]
    )
    for clip_uid, group in ordered.groupby("clip_uid", sort=True):
        texts = list(dict.fromkeys(t for t in group["text"].map(summary_text) if t))
        out[str(clip_uid)] = ". ".join(texts)
    return out


def summaries_json(rows: pd.DataFrame, clips: pd.DataFrame) -> dict[str, dict]:
    """The JSON export keyed by clip uid: window, joined ``summary`` text (null without one) and the entries.

    Every clip of ``clips`` is a key, so a clip without summary is visible as ``"summary": null``.
    """
    texts = clip_summary_texts(rows)
    entries = {uid: group for uid, group in rows.groupby("clip_uid", sort=False)}
    out: dict[str, dict] = {}
    for clip in clips.drop_duplicates("clip_uid").sort_values("clip_uid").itertuples(index=False):
        group = entries.get(clip.clip_uid)
        out[clip.clip_uid] = {
            "video_uid": clip.video_uid,
            "video_start_sec": float(clip.video_start_sec),
            "video_end_sec": float(clip.video_end_sec),
            "summary": texts.get(clip.clip_uid),
            "summaries": []
            if group is None
            else [
                {
                    "pass": int(r.pass_),
                    "start_sec": float(r.start_sec),
                    "end_sec": float(r.end_sec),
                    "text": r.text,
                    "annotation_uid": r.annotation_uid,
                }
                for r in group.rename(columns={"pass": "pass_"}).itertuples(index=False)
            ],
        }
    return out
