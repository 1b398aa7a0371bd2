"""The narrator's texts as NaQ-style VSLNet training queries (source ``narrator``).

Each narrated window of a TRAINING video (``egoclip``: re-narrated GT windows; ``dense``: the windows tiled
over un-narrated stretches; never ``heldout``, which only scores the narrator) becomes one or more
EgoClip-like rows: the narrator's text is the query, the window is the response. The rows then go through
NaQ's own placement (:func:`egonlq.queries.naq.build_naq` with NaQ's clips as the pool, no second
subsampling): a window lying entirely inside a NaQ clip becomes a query of that clip, duplicated into every
clip that holds it, and a window inside no NaQ clip is dropped and counted. NaQ's clips are episodic-memory
TRAIN clips of the videos NaQ kept, so the narrator's queries sit on the same clips and videos as NaQ's; the
training-queries build's leakage guard still checks every row against the NLQ val/test videos.

Text choice per window (``texts``): ``best``, the text of lowest entropy score (the score is
exp(mean per-token entropy), an uncertainty: lower is more confident; ties go to the first text); ``all``,
every distinct non-empty text (LaViLa's N sequences, each its own query).
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from egonlq.errors import InputError
from egonlq.queries.naq import build_naq, naq_clips, naq_table
from egonlq.queries.training_queries import CLIP_COLUMNS, TRAINING_QUERIES

logger = logging.getLogger(__name__)

NARRATOR_QUERY_SOURCE = "narrator"
QUERY_KINDS = ("egoclip", "dense")  # heldout windows only score the narrator
TEXT_CHOICES = ("best", "all")


def window_texts(narrations: pa.Table, *, texts: str = "best") -> tuple[pd.DataFrame, dict]:
    """EgoClip-like rows (video_uid, clip_start, clip_end, clip_text, kind) of the training windows.

    Sorted by (video_uid, clip_start, item_uid, text order). Stats: ``windows`` (per kind, heldout
    included), ``windows_without_text``, ``empty_texts``, ``duplicate_texts`` (``all`` only), ``rows``
    (per kind).
    """
    if texts not in TEXT_CHOICES:
        raise ValueError(f"texts {texts!r}: expected one of {TEXT_CHOICES}")
    frame = narrations.select(
        ["item_uid", "kind", "video_uid", "start_sec", "end_sec", "texts", "entropy_scores"]
    ).to_pandas()
    bad = frame["texts"].map(len) != frame["entropy_scores"].map(len)
    if bad.any():
        raise InputError(
            "narrations",
            "texts and entropy_scores differ in length",
            record=f"item_uid={frame.loc[bad, 'item_uid'].iloc[0]}",
            field="entropy_scores",
            expected="one score per text",
        )
    stats: dict = {"windows": {k: int(n) for k, n in frame["kind"].value_counts().sort_index().items()}}
    frame = frame[frame["kind"].isin(QUERY_KINDS)]
    rows = frame.explode(["texts", "entropy_scores"]).dropna(subset=["texts"])
    rows = rows.rename(columns={"texts": "clip_text", "entropy_scores": "score"})
    rows["clip_text"] = rows["clip_text"].astype(str).str.strip()
    rows["order"] = rows.groupby(level=0).cumcount()
    empty = rows["clip_text"] == ""
    stats["empty_texts"] = int(empty.sum())
    rows = rows[~empty]
    if texts == "best":
        rows = rows.astype({"score": np.float64}).sort_values(["score", "order"], kind="stable")
        rows = rows[~rows.index.duplicated(keep="first")]
    else:
        before = len(rows)
        rows = rows.drop_duplicates(["item_uid", "clip_text"])
        stats["duplicate_texts"] = before - len(rows)
    stats["windows_without_text"] = int(len(frame) - rows.index.nunique())
    rows = rows.rename(columns={"start_sec": "clip_start", "end_sec": "clip_end"})
    rows = rows.sort_values(["video_uid", "clip_start", "item_uid", "order"], kind="stable")
    stats["rows"] = {k: int((rows["kind"] == k).sum()) for k in QUERY_KINDS}
    return rows[["video_uid", "clip_start", "clip_end", "clip_text", "kind"]].reset_index(drop=True), stats


def narrator_queries(
    narrations: pa.Table, pool: pd.DataFrame, *, texts: str = "best"
) -> tuple[pa.Table, pd.DataFrame, dict]:
    """TRAINING_QUERIES rows of source ``narrator``, the clips they use (:data:`CLIP_COLUMNS`), and stats.

    ``pool``: NaQ's clips (``results/queries/naq/clips.parquet``). ``query_uid`` is
    ``narrator:<annotation_uid>:<idx>`` (NaQ's annotation of the clip; NaQ's own ids start with ``naq:``).
    Stats: those of :func:`window_texts`, NaQ's placement (``placement``), ``rows_outside_naq_clips``
    (window texts in no NaQ clip, dropped) and ``queries``.
    """
    missing = [c for c in CLIP_COLUMNS if c not in pool.columns]
    if missing:
        raise InputError("NaQ clips", "clip table lacks columns", field=", ".join(missing))
    rows, stats = window_texts(narrations, texts=texts)
    egoclip_rows = pa.Table.from_pandas(rows, preserve_index=False)
    obj, stats["placement"] = build_naq(egoclip_rows, pool[list(CLIP_COLUMNS)], subsample_v1=False)
    table = naq_table(obj)
    uid = pc.binary_join_element_wise(
        pa.scalar(NARRATOR_QUERY_SOURCE),
        table.column("annotation_uid"),
        pc.cast(table.column("query_idx"), pa.string()),
        ":",
    )
    table = table.set_column(0, TRAINING_QUERIES.field("query_uid"), uid)
    i = TRAINING_QUERIES.get_field_index("source")
    table = table.set_column(
        i, TRAINING_QUERIES.field("source"), pa.array([NARRATOR_QUERY_SOURCE] * table.num_rows, pa.string())
    )
    placed = stats["placement"]
    stats["rows_outside_naq_clips"] = placed["egoclip_rows"] - placed["rows_used"]
    stats["texts"] = texts
    stats["queries"] = table.num_rows
    logger.info(
        "narrator queries: %d from %d window texts (%s per window); %d in no NaQ clip (dropped)",
        table.num_rows,
        len(rows),
        texts,
        stats["rows_outside_naq_clips"],
    )
    return table, naq_clips(obj)[list(CLIP_COLUMNS)], stats
