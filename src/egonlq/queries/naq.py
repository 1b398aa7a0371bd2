"""Narrations-as-Queries (NaQ; naq.md section 1): EgoClip narration windows become NLQ-format train queries.

Faithful to ``srama2512/NaQ`` ``utils/create_naq_dataset.py``:

- the clip pool is the union of the episodic-memory TRAIN clips of VQ, NLQ and MQ (:func:`em_train_clips`);
- v1 keeps ``int(0.95 N)`` of the SORTED pool video uids after ``random.seed(300)`` and one shuffle;
- every EgoClip row (file order) lying entirely inside a pool clip becomes a query of that clip
  (video-absolute comparison), duplicated into every clip that contains it; the text is EgoClip's
  ``clip_text`` unchanged (``#C C ...``: the ``#`` marks narration samples for jittering downstream);
- one annotation per clip, ``annotation_uid = f"{video_uid}_{clip_uid}"`` (not a UUID);
- :func:`merge_naq_nlq` puts NLQ annotations first for shared clips and sorts by ``(video_uid, clip_uid)``;
- the NaQ job never builds a dict per query (the reference's ``json.dump`` of them runs Python's
  pure-Python encoder: most of its run time at Ego4D scale). NaQ stays in columns (:class:`NaqColumns`):
  the queries' JSON is built column by column (:func:`encoded_queries`, byte for byte orjson's), the
  training-queries table straight from the columns (:func:`query_table`); only the ~5k clips are objects.
  :func:`build_naq` gives the same NaQ as dicts for the callers that work on the object.

Without ``egoclip.csv``, :func:`naq_windows_from_narrations` rebuilds EgoClip-equivalent rows from the
NARRATIONS table with the EgoClip window rule (:mod:`egonlq.data.egoclip`).
"""

from __future__ import annotations

import itertools
import logging
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from operator import itemgetter
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from egonlq.data.annotations import NEGATIVE_TIME_TOLERANCE_SEC
from egonlq.data.egoclip import alpha_of, egoclip_windows, mean_gaps
from egonlq.data.tables import EGOCLIP
from egonlq.data.validation import as_finite_float
from egonlq.errors import InputError
from egonlq.io import atomic_path, read_json
from egonlq.queries.training_queries import TRAINING_QUERIES, derived_flags
from egonlq.timegrid import CANONICAL_FPS

logger = logging.getLogger(__name__)

SUBSAMPLE_FRACTION = 0.95  # v1 keeps int(0.95 N) of the shuffled pool videos
POOL_COLUMNS = ("video_uid", "clip_uid", "video_start_sec", "video_end_sec")
# The EgoClip columns build_naq reads: read only these (egonlq.io.read_parquet(..., columns=ROW_COLUMNS))
ROW_COLUMNS = ("video_uid", "clip_start", "clip_end", "clip_text")
CLIP_MD_FIELDS = ("video_start_sec", "video_end_sec", "video_start_frame", "video_end_frame")

# EgoClip-equivalent rows built from narration.json: the EGOCLIP columns NaQ and provenance need
EGOCLIP_ROWS = pa.schema(
    [
        EGOCLIP.field(name)
        for name in (
            "video_uid",
            "narration_source",
            "narration_ind",
            "narration_time",
            "clip_start",
            "clip_end",
            "clip_text",
        )
    ]
)


# ---------------------------------------------------------------------------------------------- the clip pool


def clamp_negative(seconds: float) -> float:
    """A time in ``[-NEGATIVE_TIME_TOLERANCE_SEC, 0)`` as 0.0 (the NLQ ingest's rule); others unchanged."""
    return 0.0 if -NEGATIVE_TIME_TOLERANCE_SEC <= seconds < 0 else seconds


def pool_file_order(nlq_train: Path, em_train: Sequence[Path]) -> list[Path]:
    """The pool files in the reference's reading order: VQ, then NLQ, then MQ (and any other EM file).

    A file whose name starts with ``vq`` (``vq_train.json``, ``vq_train_v2.json``) counts as VQ; the others
    keep their given order after the NLQ train file. The order decides the clip order within each NaQ video.
    """
    vq = [Path(p) for p in em_train if Path(p).name.lower().startswith("vq")]
    rest = [Path(p) for p in em_train if not Path(p).name.lower().startswith("vq")]
    return [*vq, Path(nlq_train), *rest]


def em_train_clips(
    paths: Sequence[Path], stats: dict | None = None, *, read: Callable[[Path], Any] = read_json
) -> pd.DataFrame:
    """Union of the episodic-memory train clips of ``paths`` (NLQ, VQ and MQ train files).

    Only ``video_uid``, ``clip_uid``, ``video_start_sec``, ``video_end_sec`` are read. Rows come in insertion
    order: file by file (the reference reads vq, nlq, moments: :func:`pool_file_order`), clips in file order,
    a clip seen before skipped. The same (video, clip) with different bounds in two places is an InputError
    (the reference asserts equality). A time in ``[-NEGATIVE_TIME_TOLERANCE_SEC, 0)`` is clamped to 0 like the
    NLQ ingest does (counted in ``stats["negative_time_clamped"]`` when ``stats`` is given); more negative is
    an InputError. Columns :data:`POOL_COLUMNS`. ``read`` parses a file (the naq job passes a cached
    :func:`~egonlq.io.read_json`: its NLQ train file is parsed once, for the pool and the merge).
    """
    pool: dict[tuple[str, str], tuple[float, float, str]] = {}
    clamped = 0
    for path in paths:
        path = Path(path)
        data = read(path)
        videos = data.get("videos") if isinstance(data, dict) else None
        if not isinstance(videos, list):
            raise InputError(path, "root has no list of videos", field="videos", expected="a JSON list")
        for v_idx, video in enumerate(videos):
            vrec = f"videos[{v_idx}]"
            if not isinstance(video, dict):
                raise InputError(path, "video is not an object", record=vrec)
            video_uid = video.get("video_uid")
            if not isinstance(video_uid, str) or not video_uid:
                raise InputError(path, "bad video_uid", record=vrec, field="video_uid", expected="a string")
            clips = video.get("clips")
            if not isinstance(clips, list):
                raise InputError(
                    path,
                    "clips missing",
                    record=f"video_uid={video_uid}",
                    field="clips",
                    expected="a JSON list",
                )
            for c_idx, clip in enumerate(clips):
                crec = f"video_uid={video_uid}, clips[{c_idx}]"
                if not isinstance(clip, dict):
                    raise InputError(path, "clip is not an object", record=crec)
                clip_uid = clip.get("clip_uid")
                if not isinstance(clip_uid, str) or not clip_uid:
                    raise InputError(path, "bad clip_uid", record=crec, field="clip_uid", expected="a string")
                crec = f"video_uid={video_uid}, clip_uid={clip_uid}"
                bounds = []
                for key in ("video_start_sec", "video_end_sec"):
                    value = as_finite_float(clip.get(key))
                    if value is None or value < -NEGATIVE_TIME_TOLERANCE_SEC:
                        raise InputError(
                            path,
                            f"bad value {clip.get(key, '<absent>')!r}",
                            record=crec,
                            field=key,
                            expected=f"a finite number >= -{NEGATIVE_TIME_TOLERANCE_SEC:g} (clamped to 0)",
                        )
                    bounds.append(clamp_negative(clip[key]))
                if bounds != [clip["video_start_sec"], clip["video_end_sec"]]:
                    clamped += 1
                    logger.warning("%s: %s: negative time clamped to 0", path, crec)
                vs, ve = bounds
                if ve < vs:
                    raise InputError(
                        path,
                        f"clip ends before it starts ({vs} > {ve})",
                        record=crec,
                        field="video_end_sec",
                        expected="video_end_sec >= video_start_sec",
                    )
                key = (video_uid, clip_uid)
                if key in pool:
                    pvs, pve, ppath = pool[key]
                    if (pvs, pve) != (vs, ve):
                        raise InputError(
                            path,
                            f"clip bounds ({vs}, {ve}) conflict with ({pvs}, {pve}) in {ppath}",
                            record=crec,
                            field="video_start_sec, video_end_sec",
                            expected="the same bounds in every EM train file",
                        )
                else:
                    pool[key] = (vs, ve, str(path))
    frame = pd.DataFrame(
        {
            "video_uid": pd.Series([k[0] for k in pool], dtype=object),
            "clip_uid": pd.Series([k[1] for k in pool], dtype=object),
            "video_start_sec": np.array([v[0] for v in pool.values()], dtype=np.float64),
            "video_end_sec": np.array([v[1] for v in pool.values()], dtype=np.float64),
        }
    )
    logger.info(
        "EM train pool: %d clips in %d videos from %d files (%d with a negative time clamped)",
        len(frame),
        frame["video_uid"].nunique(),
        len(paths),
        clamped,
    )
    if stats is not None:
        stats["negative_time_clamped"] = clamped
    return frame


# ---------------------------------------------------------------------------------------------- EgoClip rows


def naq_windows_from_narrations(
    narrations: pa.Table,
    videos: pa.Table,
    *,
    alpha: float | None,
    passes: Sequence[int] = (1, 2),
) -> tuple[pa.Table, dict]:
    """EgoClip-equivalent rows (:data:`EGOCLIP_ROWS`) from the NARRATIONS table, for runs without egoclip.csv.

    Which narrations become rows (EgoClip's 3,847,723 rows for ~3.85M narrations suggest it keeps almost all):
    every narration of the selected ``passes`` with a timestamp inside ``[0, duration]`` of a known video and
    non-empty text, ``#C``, ``#O``, ``#unsure`` and untagged alike; ``#summary`` entries are dropped. The text
    is kept raw (tags included), like EgoClip's ``clip_text``. ``beta`` is the mean gap of the rows of each
    (video, pass), ``alpha`` (unless given) the mean ``beta``; windows are clamped to the video. Row order
    stands in for EgoClip's file order: videos in order of first appearance, then pass, then narration index.

    Stats: ``rows_in``, ``rows_out``, ``dropped`` (reason -> count, each row under its first reason:
    ``pass_not_selected``, ``video_unknown``, ``tag_summary``, ``null_timestamp``,
    ``timestamp_outside_video``, ``empty_text``), ``alpha``, ``alpha_given``, ``passes``, ``videos_out``.
    """
    if alpha is not None and not alpha > 0:
        raise ValueError(f"alpha must be > 0, got {alpha}")
    n = narrations.num_rows
    encoded = pc.dictionary_encode(narrations.column("video_uid").combine_chunks())
    codes = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)  # first-appearance order
    known = pc.index_in(encoded.dictionary, value_set=videos.column("video_uid"))
    video_dur = pc.fill_null(pc.take(videos.column("duration_sec").cast(pa.float64()), known), np.nan)
    dur = video_dur.to_numpy()[codes] if n else np.zeros(0, dtype=np.float64)
    pass_no = narrations.column("pass").to_numpy(zero_copy_only=False).astype(np.int64)
    idx = narrations.column("narration_idx").to_numpy(zero_copy_only=False).astype(np.int64)
    t = pc.fill_null(narrations.column("timestamp_sec").cast(pa.float64()), np.nan).to_numpy()
    text = narrations.column("text")
    tag = pc.utf8_lower(narrations.column("tag")).to_numpy(zero_copy_only=False)
    empty = pc.fill_null(pc.equal(pc.utf8_length(pc.utf8_trim_whitespace(text)), 0), True)
    checks = [
        ("pass_not_selected", ~np.isin(pass_no, np.asarray(passes, dtype=np.int64))),
        ("video_unknown", ~np.isfinite(dur)),
        ("tag_summary", tag == "#summary"),
        ("null_timestamp", ~np.isfinite(t)),
        ("timestamp_outside_video", (t < 0) | (t > dur)),
        ("empty_text", empty.to_numpy(zero_copy_only=False)),
    ]
    dropped_mask = np.zeros(n, dtype=bool)
    dropped: dict[str, int] = {}
    for name, mask in checks:
        hit = mask & ~dropped_mask
        dropped[name] = int(hit.sum())
        dropped_mask |= hit
    keep = np.flatnonzero(~dropped_mask)
    keep = keep[np.lexsort((idx[keep], pass_no[keep], codes[keep]))]

    # beta per (video, pass): rows of a group are contiguous after the sort
    group = codes[keep] * 256 + pass_no[keep]
    starts = (
        np.flatnonzero(np.r_[True, group[1:] != group[:-1]]) if len(keep) else np.zeros(0, dtype=np.int64)
    )
    names = encoded.dictionary.to_pylist()
    keys = [(names[g // 256], int(g % 256)) for g in group[starts].tolist()]
    groups = np.split(t[keep], starts[1:]) if len(keep) else []
    betas = mean_gaps(dict(zip(keys, groups, strict=True)))
    alpha_value = float(alpha) if alpha is not None else alpha_of(betas)
    beta = np.repeat(np.array([betas[k] for k in keys], dtype=np.float64), np.diff(np.r_[starts, len(keep)]))
    start, end = egoclip_windows(t[keep], beta, alpha_value, duration=dur[keep])

    take = pa.array(keep, pa.int64())
    table = pa.table(
        {
            "video_uid": narrations.column("video_uid").take(take),
            "narration_source": pc.binary_join_element_wise(
                "narration_pass_", pc.cast(pa.array(pass_no[keep]), pa.string()), ""
            ),
            "narration_ind": pa.array(idx[keep], pa.int64()),
            "narration_time": pa.array(t[keep], pa.float64()),
            "clip_start": pa.array(start, pa.float64()),
            "clip_end": pa.array(end, pa.float64()),
            "clip_text": text.take(take),
        },
        schema=EGOCLIP_ROWS,
    )
    stats = {
        "rows_in": n,
        "rows_out": table.num_rows,
        "dropped": dropped,
        "alpha": alpha_value,
        "alpha_given": alpha is not None,
        "passes": list(passes),
        "videos_out": len(np.unique(codes[keep])),
    }
    logger.info(
        "EgoClip rows from narrations: %d in, %d out, dropped %s, alpha %.4f",
        n,
        table.num_rows,
        dropped,
        alpha_value,
    )
    return table, stats


# ---------------------------------------------------------------------------------------------- NaQ


def subsample_videos(video_uids: Sequence[str], *, seed: int = 300) -> list[str]:
    """The v1 95 % split: ``random.seed(seed)``, one shuffle of the SORTED uids, keep ``int(0.95 N)``."""
    videos = sorted(video_uids)
    random.Random(seed).shuffle(videos)  # same stream as random.seed(seed); random.shuffle(videos)
    return videos[: int(len(videos) * SUBSAMPLE_FRACTION)]


def _check_columns(frame_columns: Sequence[str], needed: Sequence[str], what: str) -> None:
    missing = [c for c in needed if c not in frame_columns]
    if missing:
        raise InputError(None, f"{what} lacks columns", field=", ".join(missing), expected=", ".join(needed))


@dataclass(frozen=True)
class NaqColumns:
    """NaQ as columns, the form :func:`naq_columns` finds it in. The NaQ object (:func:`naq_object`), its JSON
    (:func:`encoded_queries`) and the TRAINING_QUERIES rows (:func:`query_table`) all derive from it, each
    without building the others: the ~700k queries never have to exist as dicts to be written.

    ``clips``: one row per clip in output order (videos in order of first appearance in the EgoClip rows,
    a video's clips contiguous and in pool order) with ``video_uid``, ``clip_uid``, ``video_start_sec``,
    ``video_end_sec`` and the ``annotation_uid`` of its one annotation; ``counts``: queries per clip. Per
    query, clip by clip and in row order within a clip: ``start``/``end``, the EgoClip window in video
    seconds, and ``text``, the row's ``clip_text``.
    """

    clips: pd.DataFrame
    counts: np.ndarray
    start: np.ndarray
    end: np.ndarray
    text: pa.Array

    def bounds(self) -> np.ndarray:
        """Clip ``i``'s queries are positions ``bounds[i]:bounds[i + 1]``."""
        return np.concatenate([[0], np.cumsum(self.counts)]).astype(np.int64)

    def query_numbers(self) -> dict[str, np.ndarray]:
        """The numeric fields of every query, in the reference's key order (``query``, the text, comes last):
        clip seconds are video seconds minus the clip's start, frames ``floor``/``ceil`` of video seconds at
        30 fps."""
        clip_start = np.repeat(self.clips["video_start_sec"].to_numpy(np.float64), self.counts)
        return {
            "clip_start_sec": self.start - clip_start,
            "clip_end_sec": self.end - clip_start,
            "video_start_sec": self.start,
            "video_end_sec": self.end,
            "video_start_frame": np.floor(self.start * CANONICAL_FPS).astype(np.int64),
            "video_end_frame": np.ceil(self.end * CANONICAL_FPS).astype(np.int64),
        }


def naq_columns(
    egoclip_rows: pa.Table, pool: pd.DataFrame, *, subsample_v1: bool = True, seed: int = 300
) -> tuple[NaqColumns, dict]:
    """NaQ's clips and queries (:class:`NaqColumns`) and their stats.

    ``egoclip_rows``: EGOCLIP (or :data:`EGOCLIP_ROWS`) rows in file order; ``pool``: :func:`em_train_clips`.
    Videos come in order of first appearance in ``egoclip_rows`` (pool videos without rows are left out, as
    in the reference), their pool clips in pool order, queries in row order; a clip without contained
    narrations has no queries.

    Stats: ``pool_videos``, ``pool_clips``, ``kept_videos``, ``subsample_dropped_videos``, ``egoclip_rows``,
    ``rows_in_kept_videos``, ``kept_videos_without_rows``, ``videos``, ``clips``, ``clips_empty``,
    ``queries``, ``rows_used``, ``rows_duplicated`` (extra copies of rows inside several clips),
    ``rows_in_no_clip`` (rows of kept videos contained in no clip), ``partial_overlaps`` (row-clip pairs that
    overlap without containment, dropped), ``subsample_v1``, ``seed``.
    """
    _check_columns(egoclip_rows.column_names, ROW_COLUMNS, "EgoClip rows")
    _check_columns(list(pool.columns), POOL_COLUMNS, "clip pool")
    pool = pool.reset_index(drop=True)
    pool_videos = pool["video_uid"].unique().tolist()
    kept = subsample_videos(pool_videos, seed=seed) if subsample_v1 else sorted(pool_videos)
    selected, codes, uids = _rows_of_videos(egoclip_rows.column("video_uid"), pa.array(kept, pa.string()))
    ra = egoclip_rows.column("clip_start").to_numpy()[selected].astype(np.float64)
    rb = egoclip_rows.column("clip_end").to_numpy()[selected].astype(np.float64)
    bad = ~(np.isfinite(ra) & np.isfinite(rb))
    if bad.any():
        raise InputError(
            None,
            "EgoClip row has a non-finite window",
            record=f"video_uid={uids[codes[np.flatnonzero(bad)[0]]]}",
            field="clip_start, clip_end",
            expected="finite seconds",
        )
    video_rank = pd.Series(uids.to_pylist(), dtype=object)
    rank_of = pd.Series(np.arange(len(video_rank)), index=video_rank.to_numpy())

    clips = pool[pool["video_uid"].isin(rank_of.index)].copy()
    clips["pool_pos"] = clips.index.to_numpy()
    clips["video_rank"] = clips["video_uid"].map(rank_of).to_numpy()
    clips = clips.sort_values(["video_rank", "pool_pos"], kind="stable").reset_index(drop=True)

    # rows grouped by video (file order kept within a video); each clip is paired with its video's rows
    # only, all pairs at once: clip by clip, rows in file order within a clip
    by_code = np.argsort(codes, kind="stable")
    first = np.searchsorted(codes[by_code], np.arange(len(video_rank) + 1))
    rank = clips["video_rank"].to_numpy(np.int64)
    n_rows = first[rank + 1] - first[rank]
    pair_clip = np.repeat(np.arange(len(clips)), n_rows)
    # the j-th pair of a clip whose pairs start at position p takes the row at by_code[first[rank] + j]
    pair_row = by_code[np.arange(n_rows.sum()) - np.repeat(np.cumsum(n_rows) - n_rows - first[rank], n_rows)]
    a, b = ra[pair_row], rb[pair_row]
    cvs = clips["video_start_sec"].to_numpy(np.float64)[pair_clip]
    cve = clips["video_end_sec"].to_numpy(np.float64)[pair_clip]
    inside = (a >= cvs) & (b <= cve)
    partial = int((~inside & (a < cve) & (b > cvs)).sum())
    q_row = pair_row[inside]
    counts = np.bincount(pair_clip[inside], minlength=len(clips)).astype(np.int64)
    clips["annotation_uid"] = [f"{v}_{c}" for v, c in zip(clips["video_uid"], clips["clip_uid"], strict=True)]
    columns = NaqColumns(
        clips=clips[["video_uid", "clip_uid", "video_start_sec", "video_end_sec", "annotation_uid"]],
        counts=counts,
        start=ra[q_row],
        end=rb[q_row],
        text=_take(egoclip_rows.column("clip_text"), selected[q_row]),
    )

    rows_used = int(np.count_nonzero(np.bincount(q_row, minlength=len(selected))))
    stats = {
        "pool_videos": len(pool_videos),
        "pool_clips": len(pool),
        "kept_videos": len(kept),
        "subsample_dropped_videos": len(pool_videos) - len(kept),
        "egoclip_rows": egoclip_rows.num_rows,
        "rows_in_kept_videos": len(selected),
        "kept_videos_without_rows": len(kept) - len(video_rank),
        "videos": clips["video_uid"].nunique(),
        "clips": len(clips),
        "clips_empty": int((counts == 0).sum()),
        "queries": len(q_row),
        "rows_used": rows_used,
        "rows_duplicated": len(q_row) - rows_used,
        "rows_in_no_clip": len(selected) - rows_used,
        "partial_overlaps": partial,
        "subsample_v1": subsample_v1,
        "seed": seed,
    }
    logger.info(
        "NaQ: %d queries in %d clips of %d videos (%d empty clips); %d partial overlaps dropped",
        stats["queries"],
        stats["clips"],
        stats["videos"],
        stats["clips_empty"],
        stats["partial_overlaps"],
    )
    return columns, stats


def _rows_of_videos(video_uid: pa.ChunkedArray, videos: pa.Array) -> tuple[np.ndarray, np.ndarray, pa.Array]:
    """The rows of ``videos``: their positions (file order), each one's video as a number that counts
    videos in order of first appearance, and the uids of those videos in that order.

    A column read dictionary-encoded (``egonlq.io.read_parquet(..., dictionary=...)``) is matched through
    its few thousand distinct uids and numbered through its integer codes: no uid of a row is decoded.
    """
    names = None
    if pa.types.is_dictionary(video_uid.type):
        column = video_uid.unify_dictionaries().combine_chunks()
        keep = pc.is_in(column.dictionary, value_set=videos).take(column.indices)
        video_uid, names = pa.chunked_array([column.indices]), column.dictionary
    else:
        keep = pc.is_in(video_uid, value_set=videos)
    rows = np.flatnonzero(pc.fill_null(keep, False).to_numpy(zero_copy_only=False))
    first_seen = pc.dictionary_encode(_take(video_uid, rows))  # its dictionary: in order of appearance
    uids = first_seen.dictionary if names is None else names.take(first_seen.dictionary)
    return rows, first_seen.indices.to_numpy(zero_copy_only=False).astype(np.int64), uids


def _take(column: pa.ChunkedArray, rows: np.ndarray) -> pa.Array:
    """``column.take(rows)`` as one array, taken chunk by chunk: Arrow's take of a chunked column first
    concatenates all of it (~150 MB of EgoClip text, 3x the time of the take itself). ``rows`` switch chunks
    a few dozen times here (runs of increasing rows), so each run is one take from its chunk."""
    if not len(rows):
        return pa.array([], column.type)
    starts = np.cumsum([0, *(len(chunk) for chunk in column.chunks)])
    chunk_of = np.searchsorted(starts, rows, side="right") - 1
    cuts = np.concatenate([[0], np.flatnonzero(np.diff(chunk_of)) + 1, [len(rows)]]).tolist()
    pieces = [
        column.chunk(k).take(pa.array(rows[a:b] - starts[k]))
        for a, b, k in zip(cuts[:-1], cuts[1:], chunk_of[cuts[:-1]].tolist(), strict=True)
    ]
    return pa.concat_arrays(pieces)


def naq_object(columns: NaqColumns, language_queries: Sequence[list[dict] | EncodedQueries]) -> dict:
    """The NaQ object of ``columns`` (official NLQ layout, split "train"), ``language_queries[i]`` the
    queries of clip ``i``: its query dicts (:func:`query_dicts`) or, for writing, the same already encoded
    (:func:`encoded_queries`). One annotation per clip, ``annotation_uid = f"{video_uid}_{clip_uid}"`` (not
    a UUID, as in the reference)."""
    videos: dict[str, dict] = {}
    clips = columns.clips
    for video_uid, clip_uid, annotation_uid, cvs, cve, queries in zip(
        clips["video_uid"],
        clips["clip_uid"],
        clips["annotation_uid"],
        clips["video_start_sec"].tolist(),
        clips["video_end_sec"].tolist(),
        language_queries,
        strict=True,
    ):
        video = videos.setdefault(video_uid, {"video_uid": video_uid, "clips": [], "split": "train"})
        video["clips"].append(
            {
                "clip_uid": clip_uid,
                "video_start_sec": cvs,
                "video_end_sec": cve,
                "video_start_frame": math.floor(cvs * CANONICAL_FPS),
                "video_end_frame": math.ceil(cve * CANONICAL_FPS),
                "annotations": [{"language_queries": queries, "annotation_uid": annotation_uid}],
            }
        )
    return {"videos": list(videos.values())}


def query_dicts(columns: NaqColumns) -> list[list[dict]]:
    """Each clip's queries as dicts: the fields of :meth:`NaqColumns.query_numbers` in its order, then
    ``query`` (a dict display: 1.7x as fast as ``dict(zip(keys, values))`` for ~700k queries)."""
    n = {key: values.tolist() for key, values in columns.query_numbers().items()}
    queries = [
        {
            "clip_start_sec": s,
            "clip_end_sec": e,
            "video_start_sec": va,
            "video_end_sec": vb,
            "video_start_frame": fs,
            "video_end_frame": fe,
            "query": text,
        }
        for s, e, va, vb, fs, fe, text in zip(*n.values(), columns.text.to_pylist(), strict=True)
    ]
    return [queries[a:b] for a, b in itertools.pairwise(columns.bounds().tolist())]


def build_naq(
    egoclip_rows: pa.Table, pool: pd.DataFrame, *, subsample_v1: bool = True, seed: int = 300
) -> tuple[dict, dict]:
    """The NaQ annotation object (official NLQ layout, split "train") and its stats (:func:`naq_columns`),
    for the callers that work on the object; a clip without contained narrations gets an empty
    ``language_queries``. The NaQ job itself writes from the columns (:func:`encoded_queries`)."""
    columns, stats = naq_columns(egoclip_rows, pool, subsample_v1=subsample_v1, seed=seed)
    return naq_object(columns, query_dicts(columns)), stats


# ---------------------------------------------------------------------------------------------- JSON text


@dataclass(frozen=True)
class EncodedQueries:
    """A clip's ``language_queries`` already in JSON: ``data`` is the array of its ``count`` query objects
    (a view into the buffer :func:`encoded_queries` built, not a copy).

    It stands in for the list of query dicts in the NaQ object: :func:`merge_naq_nlq` moves it like any
    annotation content, :func:`count_queries` reads ``count`` and :func:`write_naq_json` writes ``data``.
    """

    data: memoryview
    count: int


def encoded_queries(columns: NaqColumns) -> list[EncodedQueries]:
    """Each clip's queries as the bytes orjson writes for its :func:`query_dicts`, built column by column.

    Why: making ~700k query dicts and encoding them again was most of the NaQ job's time. Here each field is
    encoded once for the whole column (:func:`json_numbers`, :func:`json_strings`) and one Arrow join puts the
    key literals around them, so that every clip's JSON array is one slice of a single buffer: a clip's first
    query is preceded by ``[``, its others by ``,``, and its last one followed by ``]``.
    """
    n, bounds = len(columns.start), columns.bounds()
    used = columns.counts > 0
    first, last = np.zeros(n, dtype=bool), np.zeros(n, dtype=bool)
    first[bounds[:-1][used]] = True
    last[bounds[1:][used] - 1] = True
    values = {key: json_numbers(v) for key, v in columns.query_numbers().items()}
    values["query"] = json_strings(columns.text)
    parts: list = [pc.if_else(pa.array(first), _text("[{"), _text(",{"))]
    for key, value in values.items():
        parts += [_text(orjson.dumps(key).decode() + ":"), value]  # each number brings its comma
    parts += [pc.if_else(pa.array(last), _text("}]"), _text("}")), _text("")]  # the last: the separator
    joined = pc.binary_join_element_wise(*parts)
    data = memoryview(joined.buffers()[2] or b"")  # no buffer when there is no query
    ends = _string_offsets(joined)[bounds].tolist()
    return [
        EncodedQueries(data[a:b] if count else memoryview(b"[]"), count)
        for a, b, count in zip(ends[:-1], ends[1:], columns.counts.tolist(), strict=True)
    ]


def _text(value: str) -> pa.Scalar:
    """A literal piece of the queries' JSON (large_string, like the columns joined with it)."""
    return pa.scalar(value, pa.large_string())


def _string_offsets(array: pa.Array) -> np.ndarray:
    """The ``len + 1`` offsets of a large_string array into its data buffer (its slice offset applied)."""
    return np.frombuffer(array.buffers()[1], np.int64)[array.offset : array.offset + len(array) + 1]


def json_numbers(values: np.ndarray) -> pa.LargeStringArray:
    """Each number as the JSON text orjson writes for it (floats in shortest round-trip form: ``0.1``,
    ``1e-7``, ``5.0``) followed by a comma, as in a JSON list: one orjson call for the whole column, the
    strings cut from its output after each comma (the closing ``]`` made one), without copying it."""
    if not len(values):
        return pa.array([], pa.large_string())
    encoded = bytearray(orjson.dumps(np.ascontiguousarray(values), option=orjson.OPT_SERIALIZE_NUMPY))
    encoded[-1] = ord(",")  # "[a,b,c]" -> "[a,b,c,"
    ends = np.flatnonzero(np.frombuffer(encoded, np.uint8) == ord(",")) + 1
    offsets = np.concatenate([[1], ends]).astype(np.int64)  # the first starts after "["
    buffers = [None, pa.py_buffer(offsets), pa.py_buffer(encoded)]
    return pa.Array.from_buffers(pa.large_string(), len(values), buffers)


def json_strings(texts: pa.Array) -> pa.LargeStringArray:
    """Each text as the JSON string orjson writes for it: quoted, UTF-8 as is, ``"``, ``\\`` and the control
    characters U+0000-U+001F escaped; a null as ``null``.

    Only the texts that hold one of those characters (a handful among the narrations) go through orjson; the
    others are only quoted. They are found with one scan of the character buffer: the characters are single
    ASCII bytes, and every byte of a multi-byte UTF-8 character is >= 0x80.
    """
    texts = texts.cast(pa.large_string())
    offsets = _string_offsets(texts)
    chars = np.frombuffer(texts.buffers()[2] or b"", np.uint8)[offsets[0] : offsets[-1]]
    special = (chars < 0x20) | (chars == ord('"')) | (chars == ord("\\"))
    rows = np.unique(np.searchsorted(offsets, offsets[0] + np.flatnonzero(special), side="right") - 1)
    quoted = pc.binary_join_element_wise(_text('"'), texts, _text('"'), _text(""))
    if len(rows):
        mask = np.zeros(len(texts), dtype=bool)
        mask[rows] = True
        escaped = [orjson.dumps(t).decode() for t in texts.take(pa.array(rows)).to_pylist()]
        quoted = pc.replace_with_mask(quoted, pa.array(mask), pa.array(escaped, pa.large_string()))
    return pc.fill_null(quoted, _text("null"))


# ---------------------------------------------------------------------------------------------- merge


def count_queries(data: dict) -> tuple[int, set[str], set[str]]:
    """The reference's ``calculate_stats``: (non-null query entries, videos with clips, clip uids); the
    queries of :class:`EncodedQueries` by their ``count``."""
    n_queries, video_uids, clip_uids = 0, set(), set()
    for video in data["videos"]:
        if video["clips"]:
            video_uids.add(video["video_uid"])
        for clip in video["clips"]:
            clip_uids.add(clip["clip_uid"])
            for ann in clip["annotations"]:
                queries = ann.get("language_queries", [])
                if isinstance(queries, EncodedQueries):
                    n_queries += queries.count  # NaQ's own queries: no null among them
                else:
                    n_queries += sum(1 for lq in queries if lq is not None)
    return n_queries, video_uids, clip_uids


def merge_naq_nlq(nlq_train: dict, naq: dict) -> tuple[dict, dict]:
    """Merge NLQ train and NaQ (naq.md 1.3) into the ``nlq_aug_naq_train.json`` object.

    For a clip in both, NLQ annotations come first and clip metadata comes from NLQ (NaQ's
    ``video_start_sec``/``video_end_sec`` must agree with ``math.isclose`` after :func:`clamp_negative`, as
    the pool clamps them, else InputError). Clips keep
    ``clip_uid``, the four ``video_*`` fields and ``annotations``; videos ``video_uid``, ``clips``,
    ``split``. Output sorted by ``(video_uid, clip_uid)``; videos without clips vanish (as in the reference).

    Stats: ``{nlq,naq,merged}_{queries,videos,clips}``, ``shared_clips``.
    """
    annotations: dict[tuple[str, str], list] = {}
    clip_md: dict[tuple[str, str], dict] = {}
    keys: dict[str, set[tuple[str, str]]] = {}
    for name, data in (("NLQ train", nlq_train), ("NaQ", naq)):
        videos = data.get("videos") if isinstance(data, dict) else None
        if not isinstance(videos, list):
            raise InputError(name, "no list of videos", field="videos", expected="a JSON list")
        seen: set[tuple[str, str]] = set()
        for video in videos:
            vid = video["video_uid"]
            if video.get("split") != "train":
                raise InputError(
                    name,
                    f"video has split {video.get('split')!r}",
                    record=f"video_uid={vid}",
                    field="split",
                    expected='"train"',
                )
            for clip in video["clips"]:
                key = (vid, clip["clip_uid"])
                record = f"video_uid={vid}, clip_uid={clip['clip_uid']}"
                if key in seen:
                    raise InputError(name, "clip listed twice", record=record, field="clip_uid")
                seen.add(key)
                bad = [f for f in CLIP_MD_FIELDS if f not in clip]
                times = ("video_start_sec", "video_end_sec")
                bad += [f for f in times if f in clip and as_finite_float(clip[f]) is None]
                if bad:
                    raise InputError(
                        name,
                        "clip metadata missing or not a number",
                        record=record,
                        field=", ".join(bad),
                        expected="the four video_* fields; seconds finite numbers",
                    )
                md = {f: clip[f] for f in CLIP_MD_FIELDS}
                if key in clip_md:
                    for f in ("video_start_sec", "video_end_sec"):
                        if not math.isclose(clamp_negative(clip_md[key][f]), clamp_negative(md[f])):
                            raise InputError(
                                name,
                                f"clip bound {md[f]} disagrees with NLQ's {clip_md[key][f]}",
                                record=record,
                                field=f,
                                expected="the NLQ clip's value",
                            )
                else:
                    clip_md[key] = md
                annotations.setdefault(key, []).extend(clip["annotations"])
        keys[name] = seen
    merged: dict[str, dict] = {}
    for vid, cid in sorted(annotations):
        video = merged.setdefault(vid, {"video_uid": vid, "clips": [], "split": "train"})
        video["clips"].append(
            {"clip_uid": cid, **clip_md[(vid, cid)], "annotations": annotations[(vid, cid)]}
        )
    out = {"videos": list(merged.values())}

    stats: dict[str, int] = {}
    sets = {}
    for name, data in (("nlq", nlq_train), ("naq", naq), ("merged", out)):
        n, vids, cids = count_queries(data)
        stats.update({f"{name}_queries": n, f"{name}_videos": len(vids), f"{name}_clips": len(cids)})
        sets[name] = (vids, cids)
    if stats["merged_queries"] != stats["nlq_queries"] + stats["naq_queries"]:
        raise AssertionError(f"merged query count {stats['merged_queries']} != NLQ + NaQ")
    for i, what in enumerate(("video", "clip")):
        if sets["merged"][i] != sets["nlq"][i] | sets["naq"][i]:
            raise AssertionError(f"merged {what} set is not the union of NLQ's and NaQ's")
    stats["shared_clips"] = len(keys["NLQ train"] & keys["NaQ"])
    logger.info("NLQ+NaQ merge: %s", stats)
    return out, stats


# ---------------------------------------------------------------------------------------------- output


def write_naq_json(obj: dict, path: str | Path) -> None:
    """Write a NaQ or merged NLQ+NaQ object as compact JSON, atomically.

    orjson serialises the object (``json.dump`` of the full set takes tens of seconds) with a marker
    ``\\0<i>\\0`` in place of the ``i``-th :class:`EncodedQueries` (orjson escapes control characters, so a
    NUL byte is never its own), and the file is the text between the markers with each one's queries
    written in its place: the ~150 MB of queries go from the buffer they were built in straight to the
    file, never copied into one big bytes object. Floats keep their shortest round-trip form, so the file
    parses back to the same values as the reference's ``json.dump`` output. orjson would write NaN as
    ``null``: every number here comes from checked input (:func:`naq_columns`, :func:`em_train_clips`,
    :func:`merge_naq_nlq`).
    """
    encoded: list[EncodedQueries] = []

    def marker(value: object) -> orjson.Fragment:
        if not isinstance(value, EncodedQueries):
            raise TypeError(f"{type(value).__name__} is not JSON serializable")
        encoded.append(value)
        return orjson.Fragment(b"\0%d\0" % (len(encoded) - 1))

    option = orjson.OPT_APPEND_NEWLINE | orjson.OPT_PASSTHROUGH_DATACLASS  # dataclasses go to marker()
    pieces = orjson.dumps(obj, default=marker, option=option).split(b"\0")
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        for i, piece in enumerate(pieces):
            f.write(encoded[int(piece)].data if i % 2 else piece)  # odd pieces: the marker numbers


# ---------------------------------------------------------------------------------------------- tables


def naq_clips(naq: dict) -> pd.DataFrame:
    """The clips of a NaQ object: clip_uid, video_uid, video_start/end_sec, clip_end_sec (length)."""
    rows = [
        (c["clip_uid"], v["video_uid"], c["video_start_sec"], c["video_end_sec"])
        for v in naq["videos"]
        for c in v["clips"]
    ]
    frame = pd.DataFrame(rows, columns=["clip_uid", "video_uid", "video_start_sec", "video_end_sec"])
    frame = frame.astype({"video_start_sec": np.float64, "video_end_sec": np.float64})
    frame["clip_end_sec"] = frame["video_end_sec"] - frame["video_start_sec"]
    return frame


def naq_table(naq: dict) -> pa.Table:
    """The TRAINING_QUERIES rows (:func:`training_rows`) of the queries of a NaQ object, flattened."""
    lqs: list[dict] = []  # every query, in order
    keys: dict[str, list] = {k: [] for k in ("video_uid", "clip_uid", "annotation_uid", "clip_len")}
    counts: list[int] = []  # queries per annotation
    for video in naq["videos"]:
        for clip in video["clips"]:
            for ann in clip["annotations"]:
                lqs += ann["language_queries"]
                counts.append(len(ann["language_queries"]))
                keys["video_uid"].append(video["video_uid"])
                keys["clip_uid"].append(clip["clip_uid"])
                keys["annotation_uid"].append(ann["annotation_uid"])
                keys["clip_len"].append(clip["video_end_sec"] - clip["video_start_sec"])
    n = len(lqs)
    return training_rows(
        keys,
        np.asarray(counts, dtype=np.int64),
        start=np.fromiter(map(itemgetter("clip_start_sec"), lqs), dtype=np.float64, count=n),
        end=np.fromiter(map(itemgetter("clip_end_sec"), lqs), dtype=np.float64, count=n),
        text=pa.array(list(map(itemgetter("query"), lqs)), pa.string()),
    )


def query_table(columns: NaqColumns) -> pa.Table:
    """The TRAINING_QUERIES rows of NaQ's columns: what :func:`naq_table` gives for its object, without it."""
    clips = columns.clips
    numbers = columns.query_numbers()
    keys = {k: clips[k].tolist() for k in ("video_uid", "clip_uid", "annotation_uid")}
    keys["clip_len"] = (clips["video_end_sec"] - clips["video_start_sec"]).to_numpy(np.float64)
    return training_rows(
        keys, columns.counts, start=numbers["clip_start_sec"], end=numbers["clip_end_sec"], text=columns.text
    )


def training_rows(
    annotations: dict[str, Sequence], sizes: np.ndarray, *, start: np.ndarray, end: np.ndarray, text: pa.Array
) -> pa.Table:
    """TRAINING_QUERIES rows (source "naq", ``query_uid`` "naq:<ann>:<idx>") of NaQ-layout annotations.

    ``annotations``: ``video_uid``, ``clip_uid``, ``annotation_uid`` and ``clip_len`` (its clip's
    ``video_end_sec - video_start_sec``) of each annotation, ``sizes`` its number of queries; per query, in
    annotation order: ``start``/``end`` (clip seconds) and ``text``. ``query_idx`` restarts in every
    annotation; ``ends_after_clip`` is relative to the NaQ clip.
    """
    n = int(sizes.sum())
    owner = pa.array(np.repeat(np.arange(len(sizes)), sizes))
    query_idx = np.arange(n) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    clip_len = np.repeat(np.asarray(annotations["clip_len"], dtype=np.float64), sizes)
    zero_length, ends_after = derived_flags(start, end, clip_len)
    annotation = pa.array(annotations["annotation_uid"], pa.string()).take(owner)
    idx = pa.array(query_idx, pa.int32())
    return pa.table(
        {
            "query_uid": pc.binary_join_element_wise(
                pa.scalar("naq"), annotation, pc.cast(idx, pa.string()), ":"
            ),
            "source": pa.repeat(pa.scalar("naq", pa.string()), n),
            "video_uid": pa.array(annotations["video_uid"], pa.string()).take(owner),
            "clip_uid": pa.array(annotations["clip_uid"], pa.string()).take(owner),
            "annotation_uid": annotation,
            "query_idx": idx,
            "query": text,
            "clip_start_sec": pa.array(start, pa.float64()),
            "clip_end_sec": pa.array(end, pa.float64()),
            "zero_length": pa.array(zero_length, pa.bool_()),
            "ends_after_clip": pa.array(ends_after, pa.bool_()),
        },
        schema=TRAINING_QUERIES,
    )
