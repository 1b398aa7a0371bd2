"""Do the keyframes cover what happens in the clip? The share of the clip's narrated moments that have a
selected frame nearby, per selection setting: summary-guided selection against uniform sampling and
query-guided selection at the same budget M.

A clip's narrated moments are the ``timestamp_sec`` of its video's narrations (both passes, ``#summary``
entries and untimed ones left out) inside the clip window, made clip-relative. A moment is covered when a
selected frame lies within ``window`` seconds of it. Each selection row (one query and setting) counts the
moments of the query's clip; the table pools them over queries. Only queries that every scorer of the
``selection`` selected for count, so the rows compare the same queries (a summary source skips clips without
a summary).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from egonlq.io import write_parquet, write_text
from egonlq.video.keyframes import query_uids
from egonlq.video.moment_hits import setting_groups

# One row per selection setting (and scorer).
SUMMARY_COVERAGE = pa.schema(
    [
        pa.field("setting", pa.string(), nullable=False),
        pa.field(
            "scorer", pa.string()
        ),  # "<scorer>|summary", "<scorer>|both:<w>", the query's; null: uniform
        pa.field("method", pa.string(), nullable=False),
        pa.field("mode", pa.string()),
        pa.field("M", pa.int32(), nullable=False),
        pa.field("L", pa.int32()),
        pa.field("t1", pa.float64()),
        pa.field("t2", pa.float64()),
        pa.field("ratio", pa.int32()),
        pa.field("window_sec", pa.float64(), nullable=False),  # +-w around each narrated moment
        pa.field("n_queries", pa.int64(), nullable=False),
        pa.field("n_moments", pa.int64(), nullable=False),  # pooled over the queries' clips
        pa.field("mean_n_selected", pa.float64(), nullable=False),
        pa.field("moment_coverage", pa.float64()),  # covered moments / moments; null without moments
    ]
)


def clip_moments(narrations: pd.DataFrame, clips: pd.DataFrame) -> dict[str, np.ndarray]:
    """Clip uid -> sorted clip-relative narration times inside the clip window (NARRATIONS rows)."""
    timed = narrations.loc[narrations["timestamp_sec"].notna() & (narrations["tag"] != "#summary")]
    by_video = {v: np.sort(g["timestamp_sec"].to_numpy(np.float64)) for v, g in timed.groupby("video_uid")}
    out = {}
    for clip in clips.drop_duplicates("clip_uid").itertuples(index=False):
        times = by_video.get(clip.video_uid, np.zeros(0))
        inside = times[(times >= clip.video_start_sec) & (times <= clip.video_end_sec)]
        out[clip.clip_uid] = inside - clip.video_start_sec
    return out


def covered(moments: np.ndarray, selected: np.ndarray, window: float) -> int:
    """How many ``moments`` have a ``selected`` time within ``window`` seconds (both in seconds)."""
    selected = np.sort(np.asarray(selected, dtype=np.float64))
    if len(moments) == 0 or len(selected) == 0:
        return 0
    at = np.clip(np.searchsorted(selected, moments), 1, len(selected)) - 1  # nearest at `at` or `at + 1`
    nearest = np.abs(selected[at] - moments)
    after = np.minimum(at + 1, len(selected) - 1)
    nearest = np.minimum(nearest, np.abs(selected[after] - moments))
    return int((nearest <= window + 1e-9).sum())


def summary_coverage_table(
    selection: pd.DataFrame,
    queries: pd.DataFrame,
    narrations: pd.DataFrame,
    clips: pd.DataFrame,
    *,
    window: float = 2.0,
) -> pd.DataFrame:
    """Per setting (:func:`~egonlq.video.moment_hits.setting_groups`): the pooled share of narrated moments
    covered within ``+-window`` s (module docstring), rows of :data:`SUMMARY_COVERAGE`."""
    if not np.isfinite(window) or window < 0:
        raise ValueError(f"window must be a finite number of seconds >= 0, got {window!r}")
    clip_of = pd.Series(queries["clip_uid"].to_numpy(), index=query_uids(queries)).groupby(level=0).first()
    moments = clip_moments(narrations, clips)
    if "scorer" in selection.columns and len(selection):
        per_scorer = [set(g["query_uid"]) for _, g in selection.groupby("scorer")]
        common = set.intersection(*per_scorer)
        selection = selection[selection["query_uid"].isin(common)]
    selection = selection[selection["query_uid"].isin(clip_of.index)]
    rows = []
    for setting, group in setting_groups(selection):
        clip_moment = [moments.get(clip_of[q], np.zeros(0)) for q in group["query_uid"]]
        n = sum(len(m) for m in clip_moment)
        hit = sum(
            covered(m, np.asarray(t), window)
            for m, t in zip(clip_moment, group["selected_time_s"], strict=True)
        )
        rows.append(
            {
                **setting,
                "window_sec": float(window),
                "n_queries": len(group),
                "n_moments": n,
                "mean_n_selected": float(group["n_selected"].mean()),
                "moment_coverage": hit / n if n else None,
            }
        )
    return pa.Table.from_pylist(rows, schema=SUMMARY_COVERAGE).to_pandas()


def write_summary_coverage(
    table: pd.DataFrame, out_parquet: Path, out_markdown: Path, *, synthetic: bool = False
) -> None:
    """The coverage table as parquet (:data:`SUMMARY_COVERAGE`) and as markdown for the report."""
    write_parquet(pa.Table.from_pandas(table, preserve_index=False), out_parquet, SUMMARY_COVERAGE)
    window = f"{table['window_sec'].iloc[0]:g}" if len(table) else "w"
    lines = [
        "| setting | queries | narrated moments | frames selected (mean) "
        f"| moments with a frame within ±{window} s % |",
        "|---|---|---|---|---|",
    ]
    for r in table.itertuples(index=False):
        share = (
            "–"
            if r.moment_coverage is None or pd.isna(r.moment_coverage)
            else f"{r.moment_coverage * 100:.1f}"
        )
        lines.append(f"| {r.setting} | {r.n_queries} | {r.n_moments} | {r.mean_n_selected:.1f} | {share} |")
    note = "\n_Synthetic demo data._\n" if synthetic else ""
    write_text("\n".join(lines) + "\n" + note, out_markdown)
