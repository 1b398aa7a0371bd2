"""The dual-encoder experiment: runs (text sources x GT fraction) over seeds, in one table and one plot.

A run is ``{name, sources, gt_fraction}`` (config ``dual_encoder.runs``); a run naming a source that the
workflow does not produce (e.g. ``rephrase:*`` while the rephrase rule is off) is kept in the table as
``not run`` with the reason, never silently dropped. Per (run, seed) the table reads the held-out evaluation
(:mod:`egonlq.dualenc.evaluate`) and the official NLQ metrics of the zero-shot predictions on val; VSLNet's
predictors are added as reference rows for the NLQ columns.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from egonlq.evaluation.metric import read_metrics
from egonlq.grounding.experiments import source_matches
from egonlq.io import atomic_path, read_json, write_parquet, write_text

logger = logging.getLogger(__name__)

HELDOUT_COLUMNS = (
    "egomcq_inter",
    "egomcq_intra",
    "t2v_R@1",
    "t2v_R@5",
    "t2v_R@10",
    "t2v_medR",
    "v2t_R@1",
    "v2t_R@5",
    "v2t_R@10",
    "v2t_medR",
)
NLQ_COLUMNS = ("R1@0.3", "R5@0.3", "R1@0.5", "R5@0.5")
PLOT_COLUMNS = ("egomcq_inter", "egomcq_intra", "t2v_R@1", "R1@0.3")

# results/dualenc/table.parquet: one row per (run, seed), VSLNet rows with run = the predictor
DUALENC_TABLE = pa.schema(
    [
        pa.field("run", pa.string(), nullable=False),
        pa.field("kind", pa.string(), nullable=False),  # dual_encoder | vslnet (reference) | not_run
        pa.field("seed", pa.int64()),
        pa.field("sources", pa.string(), nullable=False),
        pa.field("gt_fraction", pa.float64()),
        pa.field("train_items", pa.int64()),
        pa.field("note", pa.string(), nullable=False),
        *(pa.field(c, pa.float64()) for c in HELDOUT_COLUMNS),
        *(pa.field(c, pa.float64()) for c in NLQ_COLUMNS),  # percent, official mode, val
    ]
)


@dataclass(frozen=True)
class DualEncoderRun:
    name: str
    sources: tuple[str, ...]
    gt_fraction: float

    @property
    def label(self) -> str:
        return f"{', '.join(self.sources)} (GT {self.gt_fraction:.0%})"


def parse_runs(
    runs: Sequence[Mapping], available_sources: Collection[str]
) -> tuple[list[DualEncoderRun], dict[str, str]]:
    """The runs of the config that can run, and ``{name: reason}`` for those that cannot."""
    ok, skipped, names = [], {}, set()
    for i, raw in enumerate(runs):
        unknown = sorted(set(raw) - {"name", "sources", "gt_fraction"})
        if unknown or "name" not in raw or not raw.get("sources"):
            raise ValueError(
                f"dual_encoder.runs[{i}]: needs name and sources (and gt_fraction); unknown {unknown}"
            )
        run = DualEncoderRun(str(raw["name"]), tuple(raw["sources"]), float(raw.get("gt_fraction", 1.0)))
        if run.name in names:
            raise ValueError(f"dual_encoder.runs[{i}]: run name {run.name!r} is used twice")
        if not 0.0 < run.gt_fraction <= 1.0:
            raise ValueError(
                f"dual_encoder.runs[{i}] ({run.name}): gt_fraction {run.gt_fraction} not in (0, 1]"
            )
        names.add(run.name)
        dead = [p for p in run.sources if not any(source_matches(s, [p]) for s in available_sources)]
        if dead:
            skipped[run.name] = f"no source matches {dead} (available: {sorted(available_sources)})"
        else:
            ok.append(run)
    return ok, skipped


def _row(run: str, kind: str, **values: object) -> dict:
    row = dict.fromkeys(DUALENC_TABLE.names)
    row.update(run=run, kind=kind, note="", sources="")
    row.update(values)
    return row


def nlq_recall(path: Path) -> dict[str, float | None]:
    """The official-mode recalls of :data:`NLQ_COLUMNS` (percent, None when undefined) of a metrics JSON."""
    recall = read_metrics(path).get("official", {}).get("recall", {})
    return {c: None if recall.get(c) is None else recall[c] * 100 for c in NLQ_COLUMNS}


def build_table(
    runs: Sequence[DualEncoderRun],
    skipped: Mapping[str, str],
    seeds: Sequence[int],
    *,
    run_dirs: Mapping[tuple[str, int], Path],
    nlq_metrics: Mapping[tuple[str, int], Path],
    reference_metrics: Sequence[Path] = (),
) -> pd.DataFrame:
    """Rows of :data:`DUALENC_TABLE`; ``run_dirs[(run, seed)]`` holds heldout.json and summary.json."""
    rows = []
    for run in runs:
        for seed in seeds:
            folder = run_dirs[(run.name, seed)]
            heldout, summary = read_json(folder / "heldout.json"), read_json(folder / "summary.json")
            rows.append(
                _row(
                    run.name,
                    "dual_encoder",
                    seed=seed,
                    sources=", ".join(run.sources),
                    gt_fraction=run.gt_fraction,
                    train_items=summary["items"],
                    **{c: heldout[c] for c in HELDOUT_COLUMNS},
                    **nlq_recall(nlq_metrics[(run.name, seed)]),
                )
            )
    for name, reason in skipped.items():
        rows.append(_row(name, "not_run", note=reason))
    for path in reference_metrics:
        predictor = read_metrics(path)["predictor"]
        rows.append(_row(predictor, "vslnet", note="reference (trained on NLQ)", **nlq_recall(path)))
    return pd.DataFrame(rows, columns=DUALENC_TABLE.names)


def summarize(table: pd.DataFrame) -> pd.DataFrame:
    """Mean and std over seeds per run (in table order)."""
    numeric = [*HELDOUT_COLUMNS, *NLQ_COLUMNS]
    groups = table.groupby(["run", "kind"], sort=False)
    out = groups.agg(
        sources=("sources", "first"),
        gt_fraction=("gt_fraction", "first"),
        train_items=("train_items", "mean"),
        seeds=("seed", "count"),
        note=("note", "first"),
    )
    for column in numeric:
        values = groups[column].agg(["mean", "std"])
        out[f"{column}_mean"], out[f"{column}_std"] = values["mean"], values["std"]
    return out.reset_index()


def mean_std_cell(mean: float, std: float) -> str:
    """``mean ± std`` with one decimal; ``mean`` alone for one seed, ``-`` for no value."""
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "-"
    return f"{mean:.1f}" if std is None or math.isnan(std) else f"{mean:.1f} ± {std:.1f}"


def markdown(summary: pd.DataFrame, *, synthetic: bool) -> str:
    columns = [
        "egomcq_inter",
        "egomcq_intra",
        "t2v_R@1",
        "t2v_R@5",
        "v2t_R@1",
        "t2v_medR",
        "R1@0.3",
        "R5@0.3",
        "R1@0.5",
    ]
    head = ["run", "sources", "GT", "items", "seeds", *columns, "note"]
    lines = [
        "# Dual encoder: pseudo-text vs GT narrations" + (" (SYNTHETIC demo data)" if synthetic else ""),
        "",
        "EgoMCQ accuracy and retrieval (percent, median rank) on held-out narration videos; zero-shot NLQ "
        "on val (official metric, percent). Mean ± std over seeds.",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    for r in summary.to_dict("records"):
        gt = "-" if pd.isna(r["gt_fraction"]) else f"{r['gt_fraction']:.0%}"
        items = "-" if pd.isna(r["train_items"]) else f"{r['train_items']:.0f}"
        cells = [mean_std_cell(r[f"{c}_mean"], r[f"{c}_std"]) for c in columns]
        lines.append(
            "| "
            + " | ".join(
                [r["run"], r["sources"] or r["kind"], gt, items, str(r["seeds"]), *cells, r["note"] or ""]
            )
            + " |"
        )
    return "\n".join(lines) + "\n"


def plot(summary: pd.DataFrame, out_png: Path, *, synthetic: bool) -> None:
    """Grouped bars per dual-encoder run (mean over seeds, std as error bars)."""
    from matplotlib.figure import Figure  # here: the workflow imports this module to plan, without plots

    runs = summary[summary["kind"] == "dual_encoder"]
    fig = Figure(figsize=(max(6.0, 1.5 * len(runs) + 3.0), 4.5), layout="constrained")
    ax = fig.subplots()
    width = 0.8 / len(PLOT_COLUMNS)
    x = np.arange(len(runs))
    for i, column in enumerate(PLOT_COLUMNS):
        ax.bar(
            x + (i - (len(PLOT_COLUMNS) - 1) / 2) * width,
            runs[f"{column}_mean"].to_numpy(float),
            width,
            yerr=np.nan_to_num(runs[f"{column}_std"].to_numpy(float)),
            capsize=3,
            label=column,
        )
    ax.set_xticks(x, runs["run"].tolist())
    ax.set_ylabel("percent")
    ax.set_title("Dual encoder runs" + (" (synthetic demo data)" if synthetic else ""))
    ax.legend(fontsize="small", ncols=2)
    with atomic_path(out_png) as tmp:
        fig.savefig(tmp, format="png", dpi=110)


def write_outputs(
    table: pd.DataFrame, *, parquet: Path, md: Path, png: Path, synthetic: bool
) -> pd.DataFrame:
    write_parquet(
        pa.Table.from_pandas(table, schema=DUALENC_TABLE, preserve_index=False), parquet, DUALENC_TABLE
    )
    summary = summarize(table)
    write_text(markdown(summary, synthetic=synthetic), md)
    plot(summary, png, synthetic=synthetic)
    return summary
