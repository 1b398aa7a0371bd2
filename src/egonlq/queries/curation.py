"""Narration curation for synthetic queries (llm-queries.md, step 1) and pseudo-clips for unused videos.

:func:`curate_narrations` keeps the narrations that may become training material: videos outside the excluded
NLQ splits (val and test always excluded, train by default), ``#C`` and optionally ``#O`` entries, one pass or
both, valid timestamps and text; it sorts them by time, removes exact duplicates and gives every narration its
EgoClip window. Every dropped row is counted under exactly one reason.

:func:`pseudo_clips` cuts the kept videos into 480 s pseudo-clips (unused videos have no NLQ clips) and
:func:`assign_pseudo_clips` places every narration window in one of them, clip-relative.

``text_clean`` is the narration made readable for prompts: every ``#tag`` removed and the camera wearer ``C``
written as "the camera wearer" (no verb conjugation is needed, unlike "I"), first letter upper-cased, trailing
period dropped: ``"#C C picks a knife from the table"`` ->
``"The camera wearer picks a knife from the table"``.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Collection, Mapping

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from egonlq.data.egoclip import alpha_of, egoclip_windows, mean_gaps

logger = logging.getLogger(__name__)

# results/llm/curated_narrations.parquet: one row per kept narration
CURATED = pa.schema(
    [
        pa.field("video_uid", pa.string(), nullable=False),
        pa.field("narration_uid", pa.string(), nullable=False),  # f"{video_uid}:{pass}:{narration_idx}"
        pa.field("pass", pa.int8(), nullable=False),
        pa.field("narration_idx", pa.int32(), nullable=False),
        pa.field("timestamp_sec", pa.float64(), nullable=False),  # video-relative point in time
        pa.field("text", pa.string(), nullable=False),  # raw, tags kept
        pa.field("text_clean", pa.string(), nullable=False),  # tags removed, "C" -> "the camera wearer"
        pa.field("actor", pa.string(), nullable=False),  # "C" (camera wearer) or "O" (someone else)
        pa.field("window_start_sec", pa.float64(), nullable=False),  # EgoClip window, video-relative
        pa.field("window_end_sec", pa.float64(), nullable=False),
        pa.field("video_duration_sec", pa.float64(), nullable=False),
    ]
)

# results/llm/pseudo_clips.parquet: 480 s windows cut from the videos that have curated narrations
PSEUDO_CLIPS = pa.schema(
    [
        pa.field("clip_uid", pa.string(), nullable=False),  # uuid5 of f"{video_uid}:{video_start_sec}"
        pa.field("video_uid", pa.string(), nullable=False),
        pa.field("video_start_sec", pa.float64(), nullable=False),
        pa.field("video_end_sec", pa.float64(), nullable=False),
        pa.field("clip_end_sec", pa.float64(), nullable=False),  # clip duration
    ]
)

# CURATED plus the pseudo-clip of each narration and its window in clip-relative seconds
ASSIGNED = pa.schema(
    list(CURATED)
    + [
        pa.field("clip_uid", pa.string(), nullable=False),
        pa.field("clip_video_start_sec", pa.float64(), nullable=False),  # the clip's start in the video
        pa.field("clip_duration_sec", pa.float64(), nullable=False),
        pa.field("clip_start_sec", pa.float64(), nullable=False),  # window, clip-relative
        pa.field("clip_end_sec", pa.float64(), nullable=False),
        pa.field("window_clamped", pa.bool_(), nullable=False),  # window straddled a clip boundary
    ]
)

# Every reason a narration can be dropped, in the order they are tested (a row counts under the first).
DROP_REASONS = (
    "video_unknown",
    "pass_not_selected",
    "tag_summary",
    "tag_unsure",
    "tag_none",
    "tag_other_person",
    "bad_timestamp",
    "empty_text",
    "duplicate",
)
ALWAYS_EXCLUDED_SPLITS = ("val", "test")
PASS_CHOICES = ("1", "2", "merge")
PSEUDO_CLIP_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "egonlq:pseudo-clip")
CAMERA_WEARER = "the camera wearer"


def clean_narration_text(text: pa.Array | pa.ChunkedArray) -> pa.ChunkedArray:
    """Vectorised ``text`` -> ``text_clean`` (module docstring); nulls stay null."""
    t = pc.replace_substring_regex(text, r"^\s*(?i:#c)\s+[cC]\b", CAMERA_WEARER)
    t = pc.replace_substring_regex(t, r"#\w+", " ")
    t = pc.replace_substring_regex(t, r"\bC\b", CAMERA_WEARER)
    t = pc.replace_substring_regex(t, r"\s+", " ")
    t = pc.utf8_trim(t, " .")
    first = pc.utf8_upper(pc.utf8_slice_codeunits(t, 0, 1))
    return pa.chunked_array([pc.binary_join_element_wise(first, pc.utf8_slice_codeunits(t, 1), "")])


def _exclusion_reasons(
    video_uid: pd.Series, exclude_videos: Mapping[str, Collection[str]], allow_splits: Collection[str]
) -> tuple[np.ndarray, list[str]]:
    """Per row: the name of the excluded split its video belongs to, or "" (val/test tested first)."""
    missing = [s for s in ALWAYS_EXCLUDED_SPLITS if s not in exclude_videos]
    if missing:
        raise ValueError(f"exclude_videos must list the videos of splits {missing}: they are always excluded")
    forbidden = [s for s in ALWAYS_EXCLUDED_SPLITS if s in allow_splits]
    if forbidden:
        raise ValueError(
            f"splits {forbidden} can never be allowed: their narrations would leak into training"
        )
    order = list(ALWAYS_EXCLUDED_SPLITS) + sorted(
        s for s in exclude_videos if s not in ALWAYS_EXCLUDED_SPLITS
    )
    excluded = [s for s in order if s not in allow_splits]
    reason = np.full(len(video_uid), "", dtype=object)
    for split in excluded:
        hit = (reason == "") & video_uid.isin(exclude_videos[split]).to_numpy()  # hash lookup
        reason[hit] = f"excluded_split:{split}"
    return reason, excluded


def curate_narrations(
    narrations: pa.Table,
    videos: pa.Table,
    *,
    exclude_videos: Mapping[str, Collection[str]],
    allow_splits: Collection[str] = (),
    keep_other: bool = True,
    passes: str = "1",
    alpha: float | None = None,
    window_scale: float = 1.0,
) -> tuple[pa.Table, dict]:
    """Curate the NARRATIONS table into a CURATED table with EgoClip windows.

    ``exclude_videos`` maps NLQ split names to their video uids; it must contain ``val`` and ``test``. Every
    listed split is excluded except those named in ``allow_splits`` (e.g. ``("train",)``; val and test can
    never be allowed). ``passes`` is ``"1"``, ``"2"`` or ``"merge"``. ``beta`` is the mean gap of the kept
    narrations of each (video, pass); ``alpha``, unless given, is the mean ``beta`` over the whole input
    (every narration with a valid timestamp except ``#summary``, whatever its split or pass), so it does not
    depend on the curation choices. Windows are widened by ``window_scale`` and clamped to the video.

    Stats: ``rows_in``, ``rows_out``, ``dropped`` (reason -> count; reasons ``excluded_split:<name>`` and
    :data:`DROP_REASONS`), ``alpha``, ``alpha_given``, ``videos_out``, ``passes``, ``keep_other``,
    ``window_scale``, ``excluded_splits``. ``rows_in == rows_out + sum(dropped)``.
    """
    if passes not in PASS_CHOICES:
        raise ValueError(f"passes must be one of {PASS_CHOICES}, got {passes!r}")
    if window_scale <= 0:
        raise ValueError(f"window_scale must be > 0, got {window_scale}")
    if alpha is not None and not alpha > 0:
        raise ValueError(f"alpha must be > 0, got {alpha}")

    df = pd.DataFrame(
        {
            "video_uid": narrations.column("video_uid").to_numpy(zero_copy_only=False).astype(object),
            "pass": narrations.column("pass").to_numpy(zero_copy_only=False).astype(np.int8),
            "narration_idx": narrations.column("narration_idx")
            .to_numpy(zero_copy_only=False)
            .astype(np.int32),
            "timestamp_sec": pc.fill_null(narrations.column("timestamp_sec").cast(pa.float64()), np.nan)
            .to_numpy()
            .astype(np.float64),
            "text": narrations.column("text").to_numpy(zero_copy_only=False).astype(object),
            "tag": narrations.column("tag").to_numpy(zero_copy_only=False).astype(object),
            "unsure": narrations.column("unsure").to_numpy(zero_copy_only=False).astype(bool),
        }
    )
    durations = pd.Series(
        videos.column("duration_sec").to_numpy(zero_copy_only=False).astype(np.float64),
        index=videos.column("video_uid").to_numpy(zero_copy_only=False).astype(object),
    )
    durations = durations[~durations.index.duplicated(keep="first")]
    df["video_duration_sec"] = df["video_uid"].map(durations).astype(np.float64)
    t, dur = df["timestamp_sec"].to_numpy(), df["video_duration_sec"].to_numpy()
    tag = df["tag"].str.lower().to_numpy()
    valid_time = np.isfinite(t) & (t >= 0) & (~np.isfinite(dur) | (t <= dur))

    if alpha is None:
        eligible = df[valid_time & (tag != "#summary")]
        alpha_value = alpha_of(_betas(eligible)[0])
    else:
        alpha_value = float(alpha)

    reason, excluded = _exclusion_reasons(df["video_uid"], exclude_videos, allow_splits)
    selected_pass = {"1": [1], "2": [2], "merge": [1, 2]}[passes]
    words = pc.replace_substring_regex(
        pc.replace_substring_regex(narrations.column("text"), r"#\w+", ""), r"\bC\b", ""
    )
    # nothing left but tags and the subject "C"
    text_missing = pc.fill_null(pc.equal(pc.utf8_length(pc.utf8_trim(words, " .")), 0), True)
    text_missing = text_missing.to_numpy(zero_copy_only=False).astype(bool)
    checks = [
        ("video_unknown", ~np.isfinite(dur)),
        ("pass_not_selected", ~np.isin(df["pass"].to_numpy(), selected_pass)),
        ("tag_summary", tag == "#summary"),
        ("tag_unsure", (tag == "#unsure") | df["unsure"].to_numpy()),
        ("tag_none", ~((tag == "#c") | (tag == "#o"))),
        ("tag_other_person", (tag == "#o") if not keep_other else np.zeros(len(df), dtype=bool)),
        ("bad_timestamp", ~valid_time),
        ("empty_text", text_missing),
    ]
    for name, mask in checks:
        reason[(reason == "") & mask] = name
    df["reason"] = reason

    kept = df[df["reason"] == ""].sort_values(
        ["video_uid", "timestamp_sec", "pass", "narration_idx"], kind="stable"
    )
    dup = kept.duplicated(["video_uid", "timestamp_sec", "text"], keep="first")
    df.loc[kept.index[dup.to_numpy()], "reason"] = "duplicate"
    kept = kept[~dup.to_numpy()].copy()

    _, beta = _betas(kept)
    start, end = egoclip_windows(
        kept["timestamp_sec"].to_numpy(),
        beta,
        alpha_value,
        duration=kept["video_duration_sec"].to_numpy(),
        scale=window_scale,
    )
    kept["window_start_sec"], kept["window_end_sec"] = start, end
    kept["text_clean"] = clean_narration_text(pa.array(kept["text"].to_numpy(), type=pa.string())).to_numpy(
        zero_copy_only=False
    )
    kept["actor"] = np.where(kept["tag"].str.lower() == "#o", "O", "C")
    kept["narration_uid"] = (
        kept["video_uid"] + ":" + kept["pass"].astype(str) + ":" + kept["narration_idx"].astype(str)
    )
    table = pa.Table.from_pandas(kept[CURATED.names], schema=CURATED, preserve_index=False)

    counts = df["reason"].value_counts()
    dropped = {f"excluded_split:{s}": int(counts.get(f"excluded_split:{s}", 0)) for s in excluded}
    dropped.update({r: int(counts.get(r, 0)) for r in DROP_REASONS})
    stats = {
        "rows_in": len(df),
        "rows_out": table.num_rows,
        "dropped": dropped,
        "alpha": alpha_value,
        "alpha_given": alpha is not None,
        "videos_out": int(kept["video_uid"].nunique()),
        "passes": passes,
        "keep_other": keep_other,
        "window_scale": window_scale,
        "excluded_splits": excluded,
    }
    logger.info("curated narrations: %d in, %d out, dropped %s", len(df), table.num_rows, dropped)
    return table, stats


def _betas(df: pd.DataFrame) -> tuple[dict[object, float], np.ndarray]:
    """EgoClip ``beta`` per (video_uid, pass) of the rows' timestamps, as a dict and broadcast to the rows."""
    if len(df) == 0:
        return {}, np.zeros(0, dtype=np.float64)
    video_codes, video_names = pd.factorize(df["video_uid"])
    group = video_codes.astype(np.int64) * 256 + (df["pass"].to_numpy().astype(np.int64) + 128)
    uniq, inverse = np.unique(group, return_inverse=True)
    order = np.argsort(inverse, kind="stable")
    times = np.split(df["timestamp_sec"].to_numpy()[order], np.flatnonzero(np.diff(inverse[order])) + 1)
    keys = [(video_names[u // 256], int(u % 256) - 128) for u in uniq]
    betas = mean_gaps(dict(zip(keys, times, strict=True)))
    per_group = np.array([betas[k] for k in keys], dtype=np.float64)
    return betas, per_group[inverse]


def pseudo_clip_uid(video_uid: str, start_sec: float) -> str:
    """Stable pseudo-clip id: uuid5 of ``f"{video_uid}:{start_sec}"`` (start as a Python float)."""
    return str(uuid.uuid5(PSEUDO_CLIP_NAMESPACE, f"{video_uid}:{float(start_sec)}"))


def pseudo_clips(curated: pa.Table, *, clip_len: float = 480.0, min_tail_sec: float = 2.0) -> pd.DataFrame:
    """Cut every video of ``curated`` into consecutive ``clip_len`` pseudo-clips covering [0, duration].

    The last clip is shorter; a remainder shorter than ``min_tail_sec`` is merged into the clip before it, so
    no clip is too short to carry features. Columns of :data:`PSEUDO_CLIPS`, sorted by video and start.
    """
    if clip_len <= 0:
        raise ValueError(f"clip_len must be > 0, got {clip_len}")
    videos = (
        pd.DataFrame(
            {
                "video_uid": curated.column("video_uid").to_numpy(zero_copy_only=False),
                "duration": curated.column("video_duration_sec").to_numpy(zero_copy_only=False),
            }
        )
        .drop_duplicates("video_uid")
        .sort_values("video_uid")
    )
    rows = []
    for video_uid, duration in zip(videos["video_uid"], videos["duration"], strict=True):
        n = max(1, int(np.ceil(duration / clip_len)))
        if n > 1 and duration - (n - 1) * clip_len < min_tail_sec:
            n -= 1
        for k in range(n):
            start = k * clip_len
            end = duration if k == n - 1 else (k + 1) * clip_len
            rows.append((pseudo_clip_uid(video_uid, start), video_uid, start, end, end - start))
    return pd.DataFrame(rows, columns=PSEUDO_CLIPS.names)


def assign_pseudo_clips(curated: pa.Table, clips: pd.DataFrame) -> tuple[pa.Table, dict]:
    """Give every curated narration the pseudo-clip containing its time and its clip-relative window.

    A window straddling a clip boundary is clamped to the clip of the narration time and counted.
    Returns an :data:`ASSIGNED` table (same row order) and stats ``rows``, ``window_clamped``.
    """
    df = curated.to_pandas()
    clips = clips.sort_values(["video_uid", "video_start_sec"], kind="stable").reset_index(drop=True)
    df["_order"] = np.arange(len(df))
    merged = pd.merge_asof(
        df.sort_values("timestamp_sec"),
        clips.rename(
            columns={"video_start_sec": "clip_video_start_sec", "clip_end_sec": "_clip_len"}
        ).sort_values("clip_video_start_sec"),
        left_on="timestamp_sec",
        right_on="clip_video_start_sec",
        by="video_uid",
        direction="backward",
    ).sort_values("_order")
    if merged["clip_uid"].isna().any():
        missing = merged.loc[merged["clip_uid"].isna(), "narration_uid"].iloc[0]
        raise ValueError(f"no pseudo-clip contains narration {missing}: clips do not cover the video")
    lo, hi = merged["clip_video_start_sec"].to_numpy(), merged["video_end_sec"].to_numpy()
    ws, we = merged["window_start_sec"].to_numpy(), merged["window_end_sec"].to_numpy()
    clamped = (ws < lo) | (we > hi)
    merged["clip_start_sec"] = np.clip(ws, lo, hi) - lo
    merged["clip_end_sec"] = np.clip(we, lo, hi) - lo
    merged["window_clamped"] = clamped
    merged["clip_duration_sec"] = hi - lo
    table = pa.Table.from_pandas(merged[ASSIGNED.names], schema=ASSIGNED, preserve_index=False)
    stats = {"rows": table.num_rows, "window_clamped": int(clamped.sum())}
    logger.info(
        "pseudo-clips: %d narrations assigned, %d windows clamped", table.num_rows, stats["window_clamped"]
    )
    return table, stats
