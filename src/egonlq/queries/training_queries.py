"""The single table of training queries in which every source lands (NLQ, NaQ, template, LLM, rephrasings).

Each source is flattened into :data:`TRAINING_QUERIES` rows (:func:`nlq_rows`, :func:`generated_rows`,
``egonlq.queries.naq.naq_table``, the narrator's NaQ-style rows of ``egonlq.narrator.queries``, read from
their table); :func:`build_training_queries` concatenates them, checks that
``query_uid`` is
unique, builds :data:`TRAINING_CLIPS` (one row per clip used) and enforces the LEAKAGE GUARD: a row of an NLQ
val/test video, in any source, is an error, so training can never silently see an evaluation video.

``query_uid`` forms: NLQ ``f"{clip_uid}:{annotation_uid}:{query_idx}"`` (``query_idx`` = index in the
annotation's ORIGINAL list, text-less entries counted), NaQ ``f"naq:{annotation_uid}:{idx}"``, generated
sources their own ``query_uid``. ``source`` tells the training loader which rows are narrations (jittering,
naq.md 2.4) without relying on the ``#`` prefix.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Collection, Mapping, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from egonlq.data.annotations import ENDS_AFTER_CLIP_TOLERANCE_SEC
from egonlq.data.tables import nlq_query_uids
from egonlq.errors import InputError
from egonlq.queries.llm_queries import QUERY_NAMESPACE
from egonlq.timegrid import ZERO_LENGTH_SEC

logger = logging.getLogger(__name__)

# results/queries/training_queries.parquet: one row per training query, every source
TRAINING_QUERIES = pa.schema(
    [
        pa.field("query_uid", pa.string(), nullable=False),  # unique over all sources
        pa.field(
            "source", pa.string(), nullable=False
        ),  # nlq | naq | narrator | template | llm:<model> | rephrase:<origin>
        pa.field("video_uid", pa.string(), nullable=False),
        pa.field("clip_uid", pa.string(), nullable=False),  # NLQ/EM clip or pseudo-clip
        pa.field("annotation_uid", pa.string(), nullable=False),
        pa.field(
            "query_idx", pa.int32(), nullable=False
        ),  # nlq: index in the ORIGINAL list; others: exported
        pa.field("query", pa.string(), nullable=False),  # raw text (NaQ keeps "#C C ...")
        pa.field("clip_start_sec", pa.float64(), nullable=False),  # GT window, clip-relative
        pa.field("clip_end_sec", pa.float64(), nullable=False),
        pa.field("zero_length", pa.bool_(), nullable=False),  # |end - start| <= 1/30 s
        pa.field("ends_after_clip", pa.bool_(), nullable=False),  # end > clip duration (+1e-6)
    ]
)

# results/queries/training_clips.parquet: one row per clip used by a training query
TRAINING_CLIPS = pa.schema(
    [
        pa.field("clip_uid", pa.string(), nullable=False),
        pa.field("video_uid", pa.string(), nullable=False),
        pa.field("video_start_sec", pa.float64(), nullable=False),
        pa.field("video_end_sec", pa.float64(), nullable=False),
        pa.field("clip_end_sec", pa.float64(), nullable=False),  # clip duration
        pa.field("sources", pa.list_(pa.string()), nullable=False),  # sorted sources with a query in the clip
    ]
)

CLIP_COLUMNS = ("clip_uid", "video_uid", "video_start_sec", "video_end_sec", "clip_end_sec")
FIXED_SOURCES = ("nlq", "naq", "narrator", "template")
SOURCE_PREFIXES = ("llm:", "rephrase:")
CLIP_BOUND_TOLERANCE_SEC = 1e-6
_SHOW = 10  # how many offending ids an error message lists


def derived_flags(start: np.ndarray, end: np.ndarray, clip_len: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``zero_length`` (``|end - start| <= 1/30``) and ``ends_after_clip`` (``end > clip_len + 1e-6``)."""
    start, end = np.asarray(start, dtype=np.float64), np.asarray(end, dtype=np.float64)
    zero_length = np.abs(end - start) <= ZERO_LENGTH_SEC
    ends_after = end > np.asarray(clip_len, dtype=np.float64) + ENDS_AFTER_CLIP_TOLERANCE_SEC
    return zero_length, ends_after


def is_valid_source(source: str) -> bool:
    """``nlq``, ``naq``, ``narrator``, ``template``, ``llm:<model>`` or ``rephrase:<origin>``."""
    return source in FIXED_SOURCES or any(
        source.startswith(p) and len(source) > len(p) for p in SOURCE_PREFIXES
    )


def _show(values: Collection[str]) -> str:
    values = sorted(values)
    more = f" (+{len(values) - _SHOW} more)" if len(values) > _SHOW else ""
    return ", ".join(values[:_SHOW]) + more


def nlq_rows(queries: pa.Table) -> tuple[pa.Table, dict]:
    """TRAINING_QUERIES rows (source "nlq") from the QUERIES table of the TRAIN split.

    Kept: rows with text and an annotated window; ``query_idx`` stays the ORIGINAL index (gaps left by
    text-less entries survive). A row of another split is an InputError (val/test must never train).
    Stats: ``rows_in``, ``rows_out``, ``dropped_no_text``, ``dropped_not_annotated`` (text but no window).
    """
    splits = set(pc.unique(queries.column("split")).to_pylist())
    if splits - {"train"}:
        raise InputError(
            None,
            f"NLQ training rows from split(s) {sorted(splits - {'train'})}",
            field="split",
            expected='only "train"',
        )
    has_text = queries.column("has_text")
    annotated = queries.column("annotated")
    keep = pc.and_(has_text, annotated)
    kept = queries.filter(keep)
    table = pa.table(
        {
            "query_uid": nlq_query_uids(
                kept.column("clip_uid"), kept.column("annotation_uid"), kept.column("query_idx")
            ),
            "source": pa.array(["nlq"] * kept.num_rows, pa.string()),
            "video_uid": kept.column("video_uid"),
            "clip_uid": kept.column("clip_uid"),
            "annotation_uid": kept.column("annotation_uid"),
            "query_idx": kept.column("query_idx").cast(pa.int32()),
            "query": kept.column("query"),
            "clip_start_sec": kept.column("clip_start_sec"),
            "clip_end_sec": kept.column("clip_end_sec"),
            "zero_length": kept.column("zero_length"),
            "ends_after_clip": kept.column("ends_after_clip"),
        },
    ).cast(TRAINING_QUERIES)
    stats = {
        "rows_in": queries.num_rows,
        "rows_out": table.num_rows,
        "dropped_no_text": int(pc.sum(pc.invert(has_text)).as_py() or 0),
        "dropped_not_annotated": int(pc.sum(pc.and_(has_text, pc.invert(annotated))).as_py() or 0),
    }
    logger.info("NLQ training rows: %s", stats)
    return table, stats


def generated_rows(generated: pa.Table, pseudo_clips: pd.DataFrame) -> pa.Table:
    """TRAINING_QUERIES rows from the GENERATED table (template / LLM / rephrase queries on pseudo-clips).

    ``annotation_uid`` and ``query_idx`` are those of :func:`egonlq.queries.llm_queries.export_nlq_json`: one
    annotation per pseudo-clip (uuid5 of the clip uid), queries ordered by (clip start, query uid).
    ``pseudo_clips`` (clip_uid, video_uid, clip_end_sec = duration) gives ``ends_after_clip``; a clip
    missing there or of another video is an InputError. Rows come out in the GENERATED table's order.
    """
    frame = generated.select(
        ["query_uid", "source", "video_uid", "clip_uid", "query", "clip_start_sec", "clip_end_sec"]
    ).to_pandas()
    clips = pseudo_clips.drop_duplicates("clip_uid").set_index("clip_uid")
    missing = set(frame["clip_uid"]) - set(clips.index)
    if missing:
        raise InputError(
            None,
            "generated queries on clips absent from the pseudo-clips",
            field="clip_uid",
            record=_show(missing),
        )
    wrong = frame["video_uid"].to_numpy() != clips["video_uid"].reindex(frame["clip_uid"]).to_numpy()
    if wrong.any():
        raise InputError(
            None,
            "generated query's video differs from its pseudo-clip's",
            field="video_uid",
            record=_show(set(frame.loc[wrong, "query_uid"])),
        )
    frame["annotation_uid"] = [str(uuid.uuid5(QUERY_NAMESPACE, f"annotation:{c}")) for c in frame["clip_uid"]]
    order = frame.sort_values(["clip_uid", "clip_start_sec", "query_uid"], kind="stable")
    frame["query_idx"] = order.groupby("clip_uid", sort=False).cumcount().astype(np.int32)  # aligns on index
    clip_len = clips["clip_end_sec"].reindex(frame["clip_uid"]).to_numpy(np.float64)
    frame["zero_length"], frame["ends_after_clip"] = derived_flags(
        frame["clip_start_sec"].to_numpy(np.float64), frame["clip_end_sec"].to_numpy(np.float64), clip_len
    )
    return pa.Table.from_pandas(frame[TRAINING_QUERIES.names], schema=TRAINING_QUERIES, preserve_index=False)


def _check_part(name: str, table: pa.Table) -> pa.Table:
    missing = [f.name for f in TRAINING_QUERIES if f.name not in table.column_names]
    if missing:
        raise InputError(name, "training-query part lacks columns", field=", ".join(missing))
    table = table.select(TRAINING_QUERIES.names).cast(TRAINING_QUERIES)
    for field in TRAINING_QUERIES:
        if table.column(field.name).null_count:
            raise InputError(name, "null values", field=field.name, expected="no nulls")
    bad = [s for s in pc.unique(table.column("source")).to_pylist() if not is_valid_source(s)]
    if bad:
        raise InputError(
            name,
            f"unknown source(s) {bad}",
            field="source",
            expected="nlq, naq, narrator, template, llm:<model> or rephrase:<origin>",
        )
    return table


def _leak_check(what: str, video_uid: pa.ChunkedArray, label: pa.ChunkedArray, leak_guard: set[str]) -> None:
    """InputError listing, per label (source or clip table), the leak-guard videos it touches."""
    hit = pc.is_in(video_uid, value_set=pa.array(sorted(leak_guard), pa.string()))
    n_hit = pc.sum(hit).as_py() or 0
    if n_hit:
        rows = pa.table({"video_uid": video_uid, "label": label}).filter(hit).to_pandas()
        by = {k: sorted(set(g["video_uid"])) for k, g in rows.groupby("label")}
        detail = "; ".join(f"{k}: {len(v)} video(s) [{_show(v)}]" for k, v in sorted(by.items()))
        raise InputError(
            what,
            f"LEAKAGE: {n_hit} row(s) on NLQ val/test videos ({detail})",
            field="video_uid",
            expected="no training row on an evaluation video",
        )


def _training_clips(clips: Sequence[pd.DataFrame], leak_guard: set[str]) -> pd.DataFrame:
    frames = []
    for i, frame in enumerate(clips):
        missing = [c for c in CLIP_COLUMNS if c not in frame.columns]
        if missing:
            raise InputError(f"clips[{i}]", "clip table lacks columns", field=", ".join(missing))
        frames.append(frame[list(CLIP_COLUMNS)].assign(_table=f"clips[{i}]"))
    all_clips = (
        pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=[*CLIP_COLUMNS, "_table"])
    )
    _leak_check(
        "clip tables",
        pa.chunked_array([pa.array(all_clips["video_uid"].astype(object), pa.string())]),
        pa.chunked_array([pa.array(all_clips["_table"].astype(object), pa.string())]),
        leak_guard,
    )
    all_clips = all_clips.astype({c: np.float64 for c in CLIP_COLUMNS[2:]})
    first = all_clips.drop_duplicates("clip_uid", keep="first").set_index("clip_uid")
    ref = first.reindex(all_clips["clip_uid"])
    conflict = ref["video_uid"].to_numpy() != all_clips["video_uid"].to_numpy()
    for c in ("video_start_sec", "video_end_sec"):
        a, b = ref[c].to_numpy(), all_clips[c].to_numpy()
        conflict |= ~np.isclose(a, b, rtol=1e-9, atol=CLIP_BOUND_TOLERANCE_SEC)
    if conflict.any():
        row = all_clips[conflict].iloc[0]
        prev = first.loc[row["clip_uid"]]
        raise InputError(
            row["_table"],
            f"clip bounds conflict: ({row['video_uid']}, {row['video_start_sec']}, "
            f"{row['video_end_sec']}) vs ({prev['video_uid']}, {prev['video_start_sec']}, "
            f"{prev['video_end_sec']}) in {prev['_table']}",
            record=f"clip_uid={row['clip_uid']}",
            field="video_uid, video_start_sec, video_end_sec",
            expected="one clip, one set of bounds",
        )
    return first.drop(columns="_table").reset_index()


def build_training_queries(
    parts: Mapping[str, pa.Table], clips: Sequence[pd.DataFrame], *, leak_guard: Collection[str]
) -> tuple[pa.Table, pa.Table, dict]:
    """Concatenate the sources into TRAINING_QUERIES and TRAINING_CLIPS, with the leakage guard.

    ``parts`` maps a label to a TRAINING_QUERIES table (in order); ``clips`` are tables with
    :data:`CLIP_COLUMNS` (NLQ train CLIPS, NaQ clips, pseudo-clips; for a clip in several, the first table's
    ``clip_end_sec`` wins and the bounds must agree within 1e-6 s). ``leak_guard``: the NLQ val/test video
    uids; any query or clip row on one of them raises InputError naming the sources and videos.
    ``ends_after_clip`` is recomputed against the TRAINING_CLIPS duration (what label building clamps to).
    Clips used by no query are left out and counted.

    Stats: ``queries``, ``clips``, ``videos``, ``clips_without_queries``, ``leak_guard_videos``,
    ``parts`` (label -> rows), ``per_source`` (source -> ``queries``, ``clips``, ``videos``, ``zero_length``,
    ``ends_after_clip``).
    """
    leak_guard = set(leak_guard)
    checked = [_check_part(name, table) for name, table in parts.items()]
    table = pa.concat_tables(checked) if checked else TRAINING_QUERIES.empty_table()
    _leak_check("training queries", table.column("video_uid"), table.column("source"), leak_guard)

    if pc.count_distinct(table.column("query_uid")).as_py() != table.num_rows:
        counts = pc.value_counts(table.column("query_uid"))
        dups = counts.field("values").filter(pc.greater(counts.field("counts"), 1)).to_pylist()
        raise InputError(
            None,
            f"{len(dups)} duplicate query_uid(s)",
            field="query_uid",
            record=_show(dups),
            expected="unique ids over all sources",
        )

    known = _training_clips(clips, leak_guard)
    pos = pc.index_in(
        table.column("clip_uid"), value_set=pa.array(known["clip_uid"].astype(object), pa.string())
    )
    if pos.null_count:
        missing = pc.unique(table.column("clip_uid").filter(pc.is_null(pos))).to_pylist()
        raise InputError(
            None, "queries on clips absent from every clip table", field="clip_uid", record=_show(missing)
        )
    pos = pos.to_numpy(zero_copy_only=False)
    clip_video = pa.array(known["video_uid"].astype(object), pa.string()).take(pos)
    wrong = pc.not_equal(table.column("video_uid"), clip_video)
    if pc.any(wrong).as_py():
        raise InputError(
            None,
            "query's video differs from its clip's",
            field="video_uid",
            record=_show(table.column("query_uid").filter(wrong).to_pylist()),
        )

    clip_len = known["clip_end_sec"].to_numpy(np.float64)[pos]
    zero_length, ends_after = derived_flags(
        table.column("clip_start_sec").to_numpy(), table.column("clip_end_sec").to_numpy(), clip_len
    )
    for name, values in (("zero_length", zero_length), ("ends_after_clip", ends_after)):
        i = TRAINING_QUERIES.get_field_index(name)
        table = table.set_column(i, TRAINING_QUERIES.field(name), pa.array(values))

    pairs = table.group_by(["clip_uid", "source"]).aggregate([]).to_pandas()
    sources = pairs.sort_values(["clip_uid", "source"]).groupby("clip_uid", sort=True)["source"].agg(list)
    used = known.set_index("clip_uid").loc[sources.index].reset_index()
    used["sources"] = sources.to_numpy()
    used = used.sort_values(["video_uid", "clip_uid"], kind="stable")
    clips_table = pa.Table.from_pandas(
        used[TRAINING_CLIPS.names], schema=TRAINING_CLIPS, preserve_index=False
    )

    per = table.group_by("source").aggregate(
        [
            ("query_uid", "count"),
            ("clip_uid", "count_distinct"),
            ("video_uid", "count_distinct"),
            ("zero_length", "sum"),
            ("ends_after_clip", "sum"),
        ]
    )
    per_source = {
        row["source"]: {
            "queries": row["query_uid_count"],
            "clips": row["clip_uid_count_distinct"],
            "videos": row["video_uid_count_distinct"],
            "zero_length": row["zero_length_sum"],
            "ends_after_clip": row["ends_after_clip_sum"],
        }
        for row in sorted(per.to_pylist(), key=lambda r: r["source"])
    }
    stats = {
        "queries": table.num_rows,
        "clips": clips_table.num_rows,
        "videos": pc.count_distinct(table.column("video_uid")).as_py(),
        "clips_without_queries": len(known) - clips_table.num_rows,
        "leak_guard_videos": len(leak_guard),
        "parts": {name: t.num_rows for name, t in zip(parts, checked, strict=True)},
        "per_source": per_source,
    }
    logger.info(
        "training queries: %d queries, %d clips, per source %s",
        stats["queries"],
        stats["clips"],
        {k: v["queries"] for k, v in per_source.items()},
    )
    return table, clips_table, stats
