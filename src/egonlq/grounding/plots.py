"""Figures of the VSLNet experiments for the report: training curves, and recall per run against baselines.

Drawn with matplotlib's object API on the Agg canvas (no pyplot state, no display), written atomically as
PNG. Each function returns its :class:`~matplotlib.figure.Figure` so that callers and tests can inspect it;
artists carry a ``gid`` naming what they show: ``"{predictor}:val"`` and ``"{predictor}:loss"`` (curves),
``"{run}:{metric}"`` (bars), ``"baseline:{name}:{metric}"`` (reference lines).
With ``synthetic=True`` every title says that the numbers come from synthetic (demo) data.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from egonlq.errors import InputError
from egonlq.grounding.experiment_table import SUMMARY_METRICS, summarize_experiments
from egonlq.grounding.experiments import BASELINE_STAGE, STAGES, RunSpec, parse_predictor_name
from egonlq.io import atomic_path

logger = logging.getLogger(__name__)

SYNTHETIC_NOTE = "SYNTHETIC demo data"
# metrics.csv of egonlq.grounding.train: one row per evaluation
STEP_COLUMN, LOSS_COLUMN, VAL_COLUMN = "step", "loss", "R1@0.3"
BAR_METRICS = ("R1@0.3", "R1@0.5", "R5@0.3", "R5@0.5")
_SEED_STYLES = ("-", "--", ":", "-.")
_BASELINE_STYLES = ("--", ":", "-.", (0, (5, 1, 1, 1)))


def figure_title(text: str, synthetic: bool) -> str:
    """A figure's title, with the synthetic-data note on a line of its own (one long line is clipped at the
    figure's edges)."""
    return f"{text}\n[{SYNTHETIC_NOTE}]" if synthetic else text


def save_png(fig: Figure, out_png: Path) -> None:
    """Render ``fig`` to ``out_png`` atomically (no pyplot state: safe in any job)."""
    FigureCanvasAgg(fig)
    with atomic_path(out_png) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    logger.info("wrote %s", out_png)


def _read_curve(path: Path) -> pd.DataFrame:
    try:
        df = pd.read_csv(path)
    except (FileNotFoundError, pd.errors.EmptyDataError, pd.errors.ParserError) as e:
        raise InputError(path, f"cannot read training metrics: {e}") from e
    for column in (STEP_COLUMN, LOSS_COLUMN, VAL_COLUMN):
        if column not in df.columns:
            raise InputError(
                path, "column missing", field=column, expected="metrics.csv of egonlq.grounding.train"
            )
    return df.sort_values(STEP_COLUMN)


def plot_training_curves(
    metrics_csvs: Mapping[str, Path],
    out_png: Path,
    *,
    runs: Sequence[RunSpec],
    synthetic: bool = False,
) -> Figure:
    """Val R@1 IoU 0.3 (top) and train loss (bottom) against the step, one column of panels per stage.

    ``metrics_csvs``: predictor name (``vslnet_{run}_seed{seed}``) -> that training's ``metrics.csv``; one
    line per predictor in each row, coloured by run, dashed by seed.
    """
    by_name = {r.name: r for r in runs}
    curves: dict[str, list[tuple[str, str, int, pd.DataFrame]]] = {}
    for predictor, path in sorted(metrics_csvs.items()):
        parsed = parse_predictor_name(predictor)
        if parsed is None or parsed[0] not in by_name:
            raise ValueError(f"training curves of {predictor!r}: not a configured VSLNet run")
        run, seed = parsed
        curves.setdefault(by_name[run].stage, []).append((predictor, run, seed, _read_curve(Path(path))))
    stages = [s for s in STAGES if s in curves] or ["(no training)"]
    fig = Figure(figsize=(5.0 * len(stages), 7.0), layout="constrained")
    axes = fig.subplots(2, len(stages), squeeze=False, sharex="col")
    colors = {r.name: f"C{i % 10}" for i, r in enumerate(runs)}
    seed_rank = {s: i for i, s in enumerate(sorted({s for c in curves.values() for _, _, s, _ in c}))}
    for col, stage in enumerate(stages):
        top, bottom = axes[0][col], axes[1][col]
        for predictor, run, seed, df in curves.get(stage, []):
            style = dict(color=colors[run], linestyle=_SEED_STYLES[seed_rank[seed] % len(_SEED_STYLES)])
            name = f"{run} seed {seed}"
            val = df[[STEP_COLUMN, VAL_COLUMN]].dropna()
            top.plot(
                val[STEP_COLUMN],
                val[VAL_COLUMN] * 100,
                marker=".",
                label=name,
                gid=f"{predictor}:val",
                **style,
            )
            loss = df[[STEP_COLUMN, LOSS_COLUMN]].dropna()
            bottom.plot(loss[STEP_COLUMN], loss[LOSS_COLUMN], label=name, gid=f"{predictor}:loss", **style)
        top.set_title(stage)
        top.set_ylabel("val R@1, IoU 0.3 (%)")
        bottom.set_ylabel("train loss")
        bottom.set_xlabel("step")
        if curves.get(stage):
            top.legend(fontsize="small")
        else:
            top.text(0.5, 0.5, "no training curves", ha="center", va="center", transform=top.transAxes)
    fig.suptitle(figure_title("VSLNet training: val R@1 IoU 0.3 and train loss", synthetic))
    save_png(fig, out_png)
    return fig


def plot_recall_by_run(
    table: pd.DataFrame,
    out_png: Path,
    split: str = "val",
    *,
    mode: str = "official",
    runs: Sequence[RunSpec] = (),
    synthetic: bool = False,
) -> Figure:
    """Grouped bars: per run, R@1 and R@5 at IoU 0.3 and 0.5 (mean over seeds, std as error bars), and
    each baseline's values as horizontal lines in the colour of the metric.

    ``table``: rows of :data:`egonlq.grounding.experiments.EXPERIMENT_METRICS` (the output of
    :func:`egonlq.grounding.experiments.aggregate_experiments`); ``runs`` orders the groups as in the config.
    """
    summary = summarize_experiments(table, runs)
    summary = summary[(summary["split"] == split) & (summary["mode"] == mode) & (summary["seeds"] > 0)]
    models = summary[summary["stage"] != BASELINE_STAGE]
    baselines = summary[summary["stage"] == BASELINE_STAGE]
    fig = Figure(figsize=(max(6.0, 1.6 * len(models) + 3.0), 5.0), layout="constrained")
    ax = fig.subplots()
    colors = {m: f"C{i}" for i, m in enumerate(BAR_METRICS)}
    width = 0.8 / len(BAR_METRICS)
    x = np.arange(len(models))
    for i, metric in enumerate(BAR_METRICS):
        means = models[f"{metric}_mean"].to_numpy(dtype=float) * 100
        stds = np.nan_to_num(models[f"{metric}_std"].to_numpy(dtype=float) * 100)
        bars = ax.bar(
            x + (i - (len(BAR_METRICS) - 1) / 2) * width,
            means,
            width,
            yerr=stds,
            capsize=3,
            color=colors[metric],
            label=metric,
        )
        for bar, run in zip(bars, models["run"], strict=True):
            bar.set_gid(f"{run}:{metric}")
    handles: list = [Patch(color=colors[m], label=SUMMARY_METRICS[m]) for m in BAR_METRICS]
    for j, b in enumerate(baselines.to_dict("records")):
        style = _BASELINE_STYLES[j % len(_BASELINE_STYLES)]
        for metric in BAR_METRICS:
            value = b[f"{metric}_mean"]
            if not math.isnan(value):
                ax.axhline(
                    value * 100,
                    color=colors[metric],
                    linestyle=style,
                    linewidth=1.2,
                    gid=f"baseline:{b['run']}:{metric}",
                )
        handles.append(Line2D([], [], color="0.3", linestyle=style, label=f"baseline: {b['run']}"))
    ax.set_xticks(
        x,
        [
            f"{r}\n({s}, n={n})"
            for r, s, n in zip(models["run"], models["stage"], models["seeds"], strict=True)
        ],
    )
    ax.set_ylabel("recall (%)")
    if models.empty and baselines.empty:
        ax.text(
            0.5, 0.5, f"no scored run for {split} ({mode})", ha="center", va="center", transform=ax.transAxes
        )
    ax.legend(handles=handles, fontsize="small", loc="upper left")
    title = f"Recall by run, {split} split, {mode} metric (mean ± std over seeds)"
    fig.suptitle(figure_title(title, synthetic))
    save_png(fig, out_png)
    return fig
