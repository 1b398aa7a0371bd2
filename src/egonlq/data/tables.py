"""Schemas of the ingest tables: the contract between ingest and every later stage.

Ingest (``annotations.py``, ``narrations.py``, ``metadata.py``, ``egoclip.py``) writes these tables and
every reader goes through :func:`egonlq.io.read_parquet` with the same schema. Later stages define the
schemas of the tables they write next to their own code.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

# results/data/videos.parquet: one row per video of ego4d.json
VIDEOS = pa.schema(
    [
        pa.field("video_uid", pa.string(), nullable=False),
        pa.field("duration_sec", pa.float64(), nullable=False),
        pa.field("fps", pa.float64(), nullable=False),
        pa.field("num_frames", pa.int64(), nullable=False),
    ]
)

# results/data/nlq/{split}_clips.parquet: one row per NLQ clip
CLIPS = pa.schema(
    [
        pa.field("split", pa.string(), nullable=False),
        pa.field("video_uid", pa.string(), nullable=False),
        pa.field("clip_uid", pa.string(), nullable=False),
        pa.field("video_start_sec", pa.float64(), nullable=False),
        pa.field("video_end_sec", pa.float64(), nullable=False),
        pa.field("clip_end_sec", pa.float64(), nullable=False),  # clip duration as annotated
        pa.field("source_clip_uid", pa.string()),
        pa.field("num_annotations", pa.int32(), nullable=False),
        pa.field("num_queries", pa.int32(), nullable=False),  # all entries, text-less ones included
        # a slightly negative time was clamped to 0 (ingest always sets it; null in tables built elsewhere)
        pa.field("negative_time_clamped", pa.bool_()),
    ]
)

# results/data/nlq/{split}_videos.parquet: one row per video the split file lists, with or without clips.
# A split's videos are these, not those of its clip or query tables: exclusion sets and leakage guards use it.
NLQ_VIDEOS = pa.schema(
    [
        pa.field("split", pa.string(), nullable=False),
        pa.field("video_uid", pa.string(), nullable=False),
        pa.field("num_clips", pa.int32(), nullable=False),
    ]
)

# results/data/nlq/{split}_queries.parquet: one row per entry of language_queries (text-less included)
QUERIES = pa.schema(
    [
        pa.field("split", pa.string(), nullable=False),
        pa.field("video_uid", pa.string(), nullable=False),
        pa.field("clip_uid", pa.string(), nullable=False),
        pa.field("annotation_uid", pa.string(), nullable=False),
        pa.field("query_idx", pa.int32(), nullable=False),  # index in the ORIGINAL language_queries list
        pa.field("query", pa.string()),  # raw text as annotated (null when the key is absent)
        pa.field("query_clean", pa.string()),  # v2 form labels ("Query Text:") removed, stripped
        pa.field("template", pa.string()),
        pa.field("slot_x", pa.string()),
        pa.field("verb_x", pa.string()),
        pa.field("slot_y", pa.string()),
        pa.field("verb_y", pa.string()),
        pa.field("answer", pa.string()),  # v2 only
        pa.field("raw_tags", pa.list_(pa.string())),
        pa.field("clip_start_sec", pa.float64()),  # null in the unannotated test split
        pa.field("clip_end_sec", pa.float64()),
        pa.field("video_start_sec", pa.float64()),
        pa.field("video_end_sec", pa.float64()),
        pa.field("annotated", pa.bool_(), nullable=False),  # has a ground-truth window
        pa.field("has_text", pa.bool_(), nullable=False),  # query present and non-empty
        pa.field("zero_length", pa.bool_(), nullable=False),  # |end - start| <= 1/30 s
        pa.field("ends_after_clip", pa.bool_(), nullable=False),  # clip_end_sec > clip duration
        pa.field("negative_time_clamped", pa.bool_()),  # as in CLIPS
    ]
)

# results/data/narrations.parquet: one row per narration of narration.json (both passes)
NARRATIONS = pa.schema(
    [
        pa.field("video_uid", pa.string(), nullable=False),
        pa.field("pass", pa.int8(), nullable=False),  # 1 or 2
        pa.field("narration_idx", pa.int32(), nullable=False),  # position in the pass's original list
        pa.field("timestamp_sec", pa.float64()),  # null when missing or not numeric (flagged)
        pa.field("timestamp_frame", pa.int64()),
        pa.field("text", pa.string()),
        pa.field("tag", pa.string(), nullable=False),  # "#C", "#O", "#unsure", "#summary" or "none"
        pa.field("unsure", pa.bool_(), nullable=False),  # "#unsure" anywhere in the text
        pa.field("annotation_uid", pa.string()),
    ]
)

# results/data/summaries.parquet
SUMMARIES = pa.schema(
    [
        pa.field("video_uid", pa.string(), nullable=False),
        pa.field("pass", pa.int8(), nullable=False),
        pa.field("start_sec", pa.float64()),
        pa.field("end_sec", pa.float64()),
        pa.field("text", pa.string()),
        pa.field("annotation_uid", pa.string()),
    ]
)

# results/data/egoclip.parquet (only when egoclip.csv is given)
EGOCLIP = pa.schema(
    [
        pa.field("clip_idx", pa.int64(), nullable=False),
        pa.field("video_uid", pa.string(), nullable=False),
        pa.field("video_dur", pa.float64(), nullable=False),
        pa.field("narration_source", pa.string(), nullable=False),
        pa.field("narration_ind", pa.int64(), nullable=False),
        pa.field("narration_time", pa.float64(), nullable=False),
        pa.field("clip_start", pa.float64(), nullable=False),
        pa.field("clip_end", pa.float64(), nullable=False),
        pa.field("clip_text", pa.string(), nullable=False),
        pa.field("tag_verb", pa.string()),
        pa.field("tag_noun", pa.string()),
    ]
)


def nlq_query_uids(clip_uid: pa.Array, annotation_uid: pa.Array, query_idx: pa.Array) -> pa.Array:
    """The NLQ ``query_uid`` of each row of :data:`QUERIES`: ``f"{clip_uid}:{annotation_uid}:{query_idx}"``.

    The one definition of the key that ties a query to its predictions, training rows and keyframes.
    """
    idx = pc.cast(pc.cast(query_idx, pa.int64()), pa.string())
    return pc.binary_join_element_wise(
        pc.cast(clip_uid, pa.string()), pc.cast(annotation_uid, pa.string()), idx, ":"
    )
