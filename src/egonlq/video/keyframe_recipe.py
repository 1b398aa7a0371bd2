"""The keyframe recipe (issue 17): AKS at the source's defaults against uniform sampling and top-k relevance
at the same budget, on "does a selected frame land in the query's moment?".

Input: the selections of every scorer with the AKS parameter set ``seed`` (:data:`~egonlq.video.aks.
PARAMETER_SETS`: M 32, depth 5, t1 0.8, t2 -100, the source's defaults), re-selected from the stored scores
(:func:`egonlq.video.keyframes.select_from_scores`). Per scorer and method, the moment-hit figures of
:func:`egonlq.video.moment_hits.moment_hit_table`; the headline is ``query_hit_share`` (queries with at least
one selected frame inside the GT window).

Verdict: the rule of the other recipes (:class:`egonlq.grounding.recipes.Gain`), with the scorers as the
paired units: AKS (reference mode) gains over a control when the mean difference of the hit share is > 0 and
every scorer's difference is > 0; the demo reproduces the claim when AKS gains over both uniform and top-k.
Clips with fewer samples than M are ``short_video`` selections (all samples returned, the scores unused, as
the reference does): counted in the table, never hidden.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
from matplotlib.figure import Figure

from egonlq.grounding.plots import figure_title, save_png
from egonlq.grounding.recipes import (
    GAIN_RULE,
    Comparison,
    Gain,
    Recipe,
    bars_with_seeds,
    gain_table,
    verdict,
)
from egonlq.io import write_parquet, write_text
from egonlq.video.aks import PARAMETER_SETS
from egonlq.video.moment_hits import moment_hit_table

NAME = "keyframes"
AKS_SET = "seed"  # the source's defaults
TREATMENT = "aks_reference"
METHODS = ("aks_reference", "aks_improved", "uniform", "topk")  # table order
HEADLINE = "query_hit_share"
_P = PARAMETER_SETS[AKS_SET][0]
RECIPE = Recipe(
    name=NAME,
    claim=(
        'AKS (Tang et al., "Adaptive Keyframe Sampling for Long Video Understanding", CVPR 2025): keyframes'
        " chosen for both relevance to the question and coverage of the video (the judge-and-split"
        f" recursion at the source's defaults: M {_P.M}, depth {_P.depth}, t1 {_P.t1:g}, t2 {_P.t2:g}) hold"
        " more of what the question needs than uniform sampling or top-k relevance alone at the same budget"
        " (the paper measures video QA accuracy; our proxy: a selected frame inside the NLQ moment)."
    ),
    runs=(),
    comparisons=(
        Comparison("AKS vs uniform", TREATMENT, "uniform"),
        Comparison("AKS vs top-k", TREATMENT, "topk"),
    ),
    rule=(
        f"val queries with a selected frame in the GT window (points), per scorer:"
        f" {GAIN_RULE.split(': ', 1)[1]} (a seed here is one scorer: the frame encoder, or one training seed"
        " of a VSLNet or dual encoder run); reproduced when AKS gains over both uniform and top-k."
    ),
)

# results/recipes/keyframes/table.parquet: one row per (scorer, method)
KEYFRAME_RECIPE_ROWS = pa.schema(
    [
        pa.field("scorer", pa.string(), nullable=False),  # the keyframes output folder (encoder_demo, ...)
        pa.field("method", pa.string(), nullable=False),
        pa.field("M", pa.int32(), nullable=False),
        pa.field("n_queries", pa.int64(), nullable=False),
        pa.field("mean_n_selected", pa.float64(), nullable=False),
        pa.field("short_video_rows", pa.int64(), nullable=False),  # clips with fewer samples than M
        pa.field("query_hit_share", pa.float64()),
        pa.field("frame_share_in_window", pa.float64()),
        pa.field("chance_frame_share", pa.float64()),
    ]
)


def recipe_rows(
    selections: Mapping[str, pd.DataFrame], queries: pd.DataFrame, clips: pd.DataFrame
) -> pd.DataFrame:
    """Moment-hit figures per scorer (``selections``: scorer -> its SELECTION rows) and method."""
    rows = []
    for scorer, selection in selections.items():
        selection = selection[selection["method"].isin(METHODS)]
        hits = moment_hit_table(selection.assign(scorer=scorer), queries, clips=clips)
        short = selection.groupby("method")["short_video"].sum()
        for r in hits.itertuples(index=False):
            rows.append(
                {
                    "scorer": scorer,
                    "method": r.method,
                    "M": int(r.M),
                    "n_queries": int(r.n_queries),
                    "mean_n_selected": float(r.mean_n_selected),
                    "short_video_rows": int(short.get(r.method, 0)),
                    **{k: getattr(r, k) for k in (HEADLINE, "frame_share_in_window", "chance_frame_share")},
                }
            )
    table = pa.Table.from_pylist(rows, schema=KEYFRAME_RECIPE_ROWS).to_pandas()
    order = {m: i for i, m in enumerate(METHODS)}
    return table.sort_values(["scorer", "method"], key=lambda c: c.map(order) if c.name == "method" else c)


def compare(rows: pd.DataFrame, comparison: Comparison) -> Gain:
    """Treatment minus control hit share per scorer, in points (scorers lacking either are left out)."""
    share = rows.pivot_table(index="scorer", columns="method", values=HEADLINE, aggfunc="first") * 100
    t = share.get(comparison.treatment, pd.Series(dtype=float))
    c = share.get(comparison.control, pd.Series(dtype=float))
    per_scorer = {s: float(t[s] - c[s]) for s in share.index if not (pd.isna(t.get(s)) or pd.isna(c.get(s)))}
    diffs = np.array(list(per_scorer.values()), dtype=float)
    return Gain(
        comparison=comparison,
        mean=float(diffs.mean()) if len(diffs) else math.nan,
        std=float(diffs.std(ddof=1)) if len(diffs) > 1 else math.nan,
        per_seed=per_scorer,
        treatment_mean=float(t.mean()) if len(t.dropna()) else math.nan,
        control_mean=float(c.mean()) if len(c.dropna()) else math.nan,
    )


def _pct(values: pd.Series) -> str:
    values = values.dropna().astype(float) * 100
    if values.empty:
        return "–"
    return f"{values.mean():.1f}" if len(values) < 2 else f"{values.mean():.1f} ± {values.std(ddof=1):.1f}"


def recipe_markdown(rows: pd.DataFrame, gains: list[Gain], *, synthetic: bool) -> str:
    """First line the claim, last line ``Demo reproduces the claim: yes|no (why)``."""
    ok, why = verdict(RECIPE, gains)
    parts = [f"Claim: {RECIPE.claim}", "", f"# Recipe {NAME}", ""]
    if synthetic:
        parts += ["**SYNTHETIC demo data: these numbers say nothing about real Ego4D performance.**", ""]
    short = int(rows["short_video_rows"].sum())
    parts += [
        f"AKS parameter set `{AKS_SET}` (M {_P.M}, depth {_P.depth}, t1 {_P.t1:g}, t2 {_P.t2:g}); uniform and"
        f" top-k at M {_P.M}. Percent of val queries, mean ± sample std over {rows['scorer'].nunique()}"
        f" scorers ({', '.join(sorted(rows['scorer'].unique()))}). Short-video selections (fewer samples than"
        f" M: every sample returned, the scores unused): {short} of {int(rows['n_queries'].sum())} rows.",
        "",
        "| method | scorers | queries (per scorer) | frames selected (mean) | short-video rows"
        " | queries with a hit % | frames in GT window % | chance % |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for method, group in rows.groupby("method", sort=False):
        parts.append(
            f"| {method} | {len(group)} | {int(group['n_queries'].max())}"
            f" | {group['mean_n_selected'].mean():.1f} | {int(group['short_video_rows'].sum())}"
            f" | {_pct(group[HEADLINE])}"
            f" | {_pct(group['frame_share_in_window'])} | {_pct(group['chance_frame_share'])} |"
        )
    parts += [
        "",
        "## Comparisons (queries with a hit; points)",
        "",
        *gain_table(gains, unit="scorer", label=str),
    ]
    parts += ["", f"Rule: {RECIPE.rule}", "", f"Demo reproduces the claim: {'yes' if ok else 'no'} ({why})"]
    return "\n".join(parts)


def plot_recipe(rows: pd.DataFrame, out_png: Path, *, synthetic: bool) -> Figure:
    """Queries with a hit per method (mean ± std over scorers, each scorer a dot); artists' ``gid`` is the
    method."""
    fig = Figure(figsize=(7, 4.5))
    ax = fig.add_subplot()
    methods = list(dict.fromkeys(rows["method"]))
    shares = {m: rows.loc[rows["method"] == m, HEADLINE].dropna().astype(float) * 100 for m in methods}
    bars_with_seeds(ax, shares, rotation=0)
    ax.set_ylabel("val queries with a selected frame in the GT window (%)")
    ax.set_ylim(0, 100)
    title = f"Recipe {NAME}: AKS (M {_P.M}, depth {_P.depth}) vs uniform and top-k"
    fig.suptitle(figure_title(title, synthetic))
    fig.tight_layout()
    save_png(fig, out_png)
    return fig


def write_keyframe_recipe(
    selections: Mapping[str, pd.DataFrame],
    queries: pd.DataFrame,
    clips: pd.DataFrame,
    *,
    out_parquet: Path,
    out_markdown: Path,
    out_png: Path,
    synthetic: bool = False,
) -> bool:
    """Write the parquet rows, the markdown table and the plot; returns the verdict."""
    if not selections:
        raise ValueError("the keyframe recipe needs the selections of at least one scorer")
    rows = recipe_rows(selections, queries, clips)
    gains = [compare(rows, c) for c in RECIPE.comparisons]
    write_parquet(
        pa.Table.from_pandas(rows, schema=KEYFRAME_RECIPE_ROWS, preserve_index=False),
        out_parquet,
        KEYFRAME_RECIPE_ROWS,
    )
    write_text(recipe_markdown(rows, gains, synthetic=synthetic) + "\n", out_markdown)
    plot_recipe(rows, out_png, synthetic=synthetic)
    return verdict(RECIPE, gains)[0]
