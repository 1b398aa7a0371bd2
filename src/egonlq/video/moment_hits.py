"""Does keyframe selection find the moment? Per selection setting, the share of selected frames inside the
query's ground-truth window and of queries with at least one such frame, against chance; as a table and a
bar plot.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from egonlq.io import atomic_path, write_parquet, write_text
from egonlq.video.keyframes import query_uids

# One row per selection setting (and scorer).
MOMENT_HITS = pa.schema(
    [
        pa.field("setting", pa.string(), nullable=False),  # method and parameters, for tables and plots
        pa.field("scorer", pa.string()),  # null for uniform (it reads no score) or a single-scorer table
        pa.field("method", pa.string(), nullable=False),
        pa.field("mode", pa.string()),
        pa.field("M", pa.int32(), nullable=False),
        pa.field("L", pa.int32()),
        pa.field("t1", pa.float64()),
        pa.field("t2", pa.float64()),
        pa.field("ratio", pa.int32()),
        pa.field("n_queries", pa.int64(), nullable=False),  # queries with a GT window and a selection
        pa.field("mean_n_selected", pa.float64(), nullable=False),
        pa.field("frame_share_in_window", pa.float64()),  # selected frames inside the GT window / selected
        pa.field("query_hit_share", pa.float64()),  # queries with >= 1 selected frame inside the GT window
        pa.field("chance_frame_share", pa.float64()),  # mean GT length / clip length (random frames)
    ]
)


def moment_hit_table(
    selection: pd.DataFrame, queries: pd.DataFrame, *, clips: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Per setting: how often the selected frames fall inside the query's ground-truth window.

    ``frame_share_in_window``: selected frames with a clip-relative time in ``[clip_start_sec,
    clip_end_sec]``, over all selected frames (pooled over queries); ``query_hit_share``: queries with at
    least one such frame; ``mean_n_selected``. Only queries with a GT window count. With ``clips``,
    ``chance_frame_share`` is the mean of GT length / clip length: the share of a uniformly random frame.
    Rows follow :data:`MOMENT_HITS`, one per setting of :func:`setting_groups` (several scorers: one row per
    scorer and setting, uniform once).
    """
    gt = queries.assign(query_uid=query_uids(queries)).dropna(subset=["clip_start_sec", "clip_end_sec"])
    gt = gt.drop_duplicates("query_uid").set_index("query_uid")
    chance = None
    if clips is not None:
        bounds = clips.drop_duplicates("clip_uid").set_index("clip_uid")
        length = (bounds["video_end_sec"] - bounds["video_start_sec"]).reindex(gt["clip_uid"]).to_numpy()
        share = np.clip((gt["clip_end_sec"] - gt["clip_start_sec"]).to_numpy() / length, 0.0, 1.0)
        chance = pd.Series(share, index=gt.index)
    rows = []
    for setting, group in setting_groups(selection[selection["query_uid"].isin(gt.index)]):
        start = gt.loc[group["query_uid"], "clip_start_sec"].to_numpy()
        end = gt.loc[group["query_uid"], "clip_end_sec"].to_numpy()
        inside = [
            int(((np.asarray(t) >= s) & (np.asarray(t) <= e)).sum())
            for t, s, e in zip(group["selected_time_s"], start, end, strict=True)
        ]
        n_sel = group["n_selected"].to_numpy(np.int64)
        total = int(n_sel.sum())
        rows.append(
            {
                **setting,
                "n_queries": len(group),
                "mean_n_selected": float(n_sel.mean()),
                "frame_share_in_window": sum(inside) / total if total else None,
                "query_hit_share": float(np.mean([n > 0 for n in inside])),
                "chance_frame_share": float(chance.loc[group["query_uid"]].mean())
                if chance is not None
                else None,
            }
        )
    table = pa.Table.from_pylist(rows, schema=MOMENT_HITS)
    return table.to_pandas()


SETTING_KEYS = ("scorer", "method", "mode", "M", "L", "t1", "t2", "ratio")


def setting_groups(selection: pd.DataFrame) -> Iterator[tuple[dict, pd.DataFrame]]:
    """The rows of a SELECTION table per setting, in method and parameter order: ``({"setting": label,
    scorer, method, mode, M, L, t1, t2, ratio}, rows)`` (nulls as None).

    A ``selection`` pooling several scorers (its ``scorer`` column) gets one group per scorer and setting,
    the scorer named in the label; ``uniform`` reads no score, so its rows count once (scorer None).
    """
    keys = list(SETTING_KEYS)
    several = "scorer" in selection.columns and selection["scorer"].nunique() > 1
    if several:
        uniform = selection["method"] == "uniform"
        selection = selection.assign(scorer=selection["scorer"].where(~uniform, None))
        selection = selection.drop_duplicates(["query_uid", *keys])  # uniform: the same frames for any scorer
    else:
        selection = selection.assign(scorer=None)
    for values, group in selection.groupby(keys, dropna=False, sort=True):
        setting = {k: (None if pd.isna(v) else v) for k, v in zip(keys, values, strict=True)}
        yield {"setting": _setting_label(setting), **setting}, group


def _setting_label(s: dict) -> str:
    scorer = "" if s.get("scorer") is None or pd.isna(s["scorer"]) else f"{s['scorer']}: "
    if s["method"] in ("uniform", "topk"):
        return f"{scorer}{s['method']} M={int(s['M'])}"
    return f"{scorer}{s['method']} M={int(s['M'])} L={int(s['L'])} t1={s['t1']:g}"


def write_moment_hits(
    table: pd.DataFrame, out_parquet: Path, out_markdown: Path, *, synthetic: bool = False
) -> None:
    """The moment-hit table as parquet (:data:`MOMENT_HITS`) and as a markdown table for the report."""
    write_parquet(pa.Table.from_pandas(table, preserve_index=False), out_parquet, MOMENT_HITS)

    def pct(x: object) -> str:
        return "–" if x is None or pd.isna(x) else f"{float(x) * 100:.1f}"

    lines = [
        "| setting | queries | frames selected (mean) | frames in GT window % | queries with a hit % "
        "| chance % |",
        "|---|---|---|---|---|---|",
    ]
    for r in table.itertuples(index=False):
        lines.append(
            f"| {r.setting} | {r.n_queries} | {r.mean_n_selected:.1f} | {pct(r.frame_share_in_window)} "
            f"| {pct(r.query_hit_share)} | {pct(r.chance_frame_share)} |"
        )
    note = "\n_Synthetic demo data._\n" if synthetic else ""
    write_text("\n".join(lines) + "\n" + note, out_markdown)


def plot_moment_hits(table: pd.DataFrame, out_png: Path, *, synthetic: bool = False):
    """Horizontal bars per setting (one row each, in table order from the top): frames inside the GT window
    and queries with a hit (%), chance as a tick.

    Returns the matplotlib Figure; bars carry ``gid`` ``"{setting}:frames"`` / ``"{setting}:queries"`` and
    their value as width.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8.0, 1.6 + 0.42 * len(table)))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    y = np.arange(len(table))[::-1]  # first row at the top
    height = 0.38
    frames = ax.barh(
        y + height / 2,
        100 * table["frame_share_in_window"].fillna(0).to_numpy(float),
        height,
        label="selected frames in GT window",
    )
    hits = ax.barh(
        y - height / 2,
        100 * table["query_hit_share"].fillna(0).to_numpy(float),
        height,
        label="queries with >= 1 frame in GT window",
    )
    for bar, setting in zip(frames, table["setting"], strict=True):
        bar.set_gid(f"{setting}:frames")
    for bar, setting in zip(hits, table["setting"], strict=True):
        bar.set_gid(f"{setting}:queries")
    if table["chance_frame_share"].notna().any():
        ax.scatter(
            100 * table["chance_frame_share"].to_numpy(float),
            y + height / 2,
            marker="|",
            s=200,
            color="black",
            label="chance (random frame)",
            zorder=3,
        )
    ax.set_yticks(y, table["setting"], fontsize=8)
    ax.set_xlabel("%")
    ax.set_xlim(0, 100)
    ax.grid(axis="x", alpha=0.3)
    title = "Does keyframe selection find the moment?"
    ax.set_title(f"{title} [SYNTHETIC demo data]" if synthetic else title)
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.08 - 0.9 / (len(table) + 2)), ncol=3)
    fig.tight_layout()
    with atomic_path(out_png) as tmp:
        fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
    return fig
