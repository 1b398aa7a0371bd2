"""The experiment table: per-seed metrics of VSLNet runs and baselines gathered into one parquet table and a
markdown report (mean ± std over seeds, each fine-tuning run against training from scratch).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from egonlq.data.provenance import markdown_footer, with_schema_metadata
from egonlq.errors import InputError
from egonlq.evaluation.metric import METRIC_COLUMNS, MODES, read_metrics
from egonlq.grounding.experiments import BASELINE_STAGE, RunSpec, parse_predictor_name
from egonlq.io import write_parquet, write_text

logger = logging.getLogger(__name__)

# results/experiments/metrics.parquet: one row per (predictor, split, mode); recall and mIoU as fractions
EXPERIMENT_METRICS = pa.schema(
    [
        pa.field("predictor", pa.string(), nullable=False),
        pa.field("run", pa.string(), nullable=False),  # the run's name; the predictor name for baselines
        pa.field("stage", pa.string(), nullable=False),  # scratch | finetune | zeroshot | baseline
        pa.field("seed", pa.int64()),  # null for baselines
        pa.field("split", pa.string(), nullable=False),
        pa.field("mode", pa.string(), nullable=False),  # official | strict
        pa.field("error", pa.string()),  # null when the mode succeeded; the metrics are then null
        *(pa.field(name, pa.float64()) for name in METRIC_COLUMNS),
        pa.field("MR1", pa.float64()),
        pa.field("MR5", pa.float64()),
        pa.field("mIoU", pa.float64()),
        pa.field("evaluated", pa.int64()),  # x of "Evaluated: x / y"
        pa.field("total", pa.int64()),  # y
    ]
)
# The columns of the summary (mean ± std over seeds), in display order, with their markdown headers.
SUMMARY_METRICS = {
    "R1@0.3": "R@1 IoU0.3",
    "R1@0.5": "R@1 IoU0.5",
    "R5@0.3": "R@5 IoU0.3",
    "R5@0.5": "R@5 IoU0.5",
    "MR1": "MR@1",
    "MR5": "MR@5",
    "mIoU": "mIoU",
}
HEADLINE_SPLIT, HEADLINE_METRIC = "val", "R1@0.3"
_SPLIT_ORDER = ("val", "test", "train")


def _metric_rows(path: Path, runs: Mapping[str, RunSpec]) -> list[dict[str, Any]]:
    """The :data:`EXPERIMENT_METRICS` rows of one metrics JSON (checked by :func:`read_metrics`)."""
    obj = read_metrics(path)
    predictor, split = obj["predictor"], obj["split"]
    try:
        parsed = parse_predictor_name(predictor)
    except ValueError as e:
        raise InputError(path, str(e), field="predictor") from e
    if parsed is None:
        run, stage, seed = predictor, BASELINE_STAGE, None
    else:
        run, seed = parsed
        if run not in runs:
            raise InputError(
                path, f"run {run!r} is not configured", field="predictor", expected=f"one of {sorted(runs)}"
            )
        stage = runs[run].stage
    rows = []
    for mode in (m for m in MODES if m in obj):
        entry = obj[mode]
        row: dict[str, Any] = dict.fromkeys(EXPERIMENT_METRICS.names)
        row.update(predictor=predictor, run=run, stage=stage, seed=seed, split=split, mode=mode)
        if "error" in entry:
            row["error"] = entry["error"]
        else:
            row.update({name: entry["recall"].get(name) for name in METRIC_COLUMNS})
            mean_recall = entry["mean_recall"]
            row.update(MR1=mean_recall.get("MR1"), MR5=mean_recall.get("MR5"), mIoU=entry["miou"])
            row["evaluated"], row["total"] = entry["evaluated"]
        rows.append(row)
    return rows


def _order_key(runs: Sequence[RunSpec]):
    run_rank = {r.name: i for i, r in enumerate(runs)}

    def key(split: str, mode: str, stage: str, run: str, first_seen: int) -> tuple:
        split_rank = _SPLIT_ORDER.index(split) if split in _SPLIT_ORDER else len(_SPLIT_ORDER)
        is_run = stage != BASELINE_STAGE
        return (
            split_rank,
            split,
            MODES.index(mode),
            is_run,
            run_rank.get(run, first_seen) if is_run else first_seen,
        )

    return key


def aggregate_experiments(
    metric_jsons: list[Path],
    runs: list[RunSpec],
    *,
    out_parquet: Path,
    out_markdown: Path,
    synthetic: bool = False,
    provenance: Mapping[str, Any] | None = None,
) -> pd.DataFrame:
    """Gather metrics JSONs (:func:`egonlq.evaluation.metric.write_metrics`) of VSLNet runs and baselines.

    Writes :data:`EXPERIMENT_METRICS` rows (one per predictor, split and mode) to ``out_parquet`` and a
    markdown report to ``out_markdown``: headline lines (each finetune run against the scratch run with the
    same ``nlq_fraction`` on val R1@0.3), then one table per (split, mode) of mean ± std over seeds (sample
    std, ddof 1). Predictor names without the ``vslnet_`` prefix are baselines. ``synthetic``: say in the
    report that the numbers come from synthetic (demo) data. ``provenance`` (the table's resolved config
    and data fingerprint, ``egonlq.data.provenance``) goes into the parquet schema metadata and the
    markdown footer, which warns when the metrics files ran on different data. Returns the rows.
    """
    by_name = {r.name: r for r in runs}
    rows = [row for path in metric_jsons for row in _metric_rows(Path(path), by_name)]
    seen: dict[tuple[str, str, str], int] = {}
    for row in rows:
        key = (row["predictor"], row["split"], row["mode"])
        seen[key] = seen.get(key, 0) + 1
        if seen[key] > 1:
            raise InputError(
                None, f"several metrics files for predictor={key[0]}, split={key[1]}, mode={key[2]}"
            )
    first_seen = {}
    for row in rows:
        first_seen.setdefault(row["run"], len(first_seen))
    order = _order_key(runs)
    rows.sort(
        key=lambda r: (
            *order(r["split"], r["mode"], r["stage"], r["run"], first_seen[r["run"]]),
            -1 if r["seed"] is None else r["seed"],
        )
    )
    table = pa.Table.from_pylist(rows, schema=EXPERIMENT_METRICS)
    write_parquet(table, out_parquet, with_schema_metadata(EXPERIMENT_METRICS, provenance))
    df = table.to_pandas()
    sources = [read_metrics(Path(path)).get("provenance") for path in metric_jsons]
    markdown = experiments_markdown(df, runs, synthetic=synthetic) + markdown_footer(provenance, sources)
    write_text(markdown, out_markdown)
    logger.info(
        "experiments: %d rows from %d metrics files (%d runs, %d baselines)",
        len(rows),
        len(metric_jsons),
        len({r["run"] for r in rows if r["stage"] != BASELINE_STAGE}),
        len({r["run"] for r in rows if r["stage"] == BASELINE_STAGE}),
    )
    return df


def summarize_experiments(table: pd.DataFrame, runs: Sequence[RunSpec] = ()) -> pd.DataFrame:
    """Mean and sample std (ddof 1; NaN for one seed) over seeds per (split, mode, stage, run).

    ``table``: rows of :data:`EXPERIMENT_METRICS`. Columns: ``split, mode, stage, run, seeds`` (seeds with
    numbers), ``failed`` (seeds whose mode failed), ``{metric}_mean`` and ``{metric}_std`` for every metric of
    :data:`SUMMARY_METRICS`, ``evaluated`` (``"x / y"``, or ``"x1–x2 / y"`` when seeds differ). Rows come in
    display order: splits val, test, train; modes official, strict; baselines, then runs in config order.
    """
    order = _order_key(runs)
    first_seen: dict[str, int] = {}
    for run in table["run"]:
        first_seen.setdefault(run, len(first_seen))
    out = []
    for (split, mode, stage, run), group in table.groupby(["split", "mode", "stage", "run"], sort=False):
        ok = group[group["error"].isna()]
        row: dict[str, Any] = {
            "split": split,
            "mode": mode,
            "stage": stage,
            "run": run,
            "seeds": len(ok),
            "failed": len(group) - len(ok),
        }
        for metric in SUMMARY_METRICS:
            values = ok[metric].astype(float)
            row[f"{metric}_mean"] = float(values.mean()) if len(values) else math.nan
            row[f"{metric}_std"] = float(values.std(ddof=1)) if len(values) > 1 else math.nan
        row["evaluated"] = _evaluated_cell(ok)
        row["_key"] = order(split, mode, stage, run, first_seen[run])
        out.append(row)
    out.sort(key=lambda r: r["_key"])
    columns = ["split", "mode", "stage", "run", "seeds", "failed"]
    columns += [f"{m}_{s}" for m in SUMMARY_METRICS for s in ("mean", "std")] + ["evaluated"]
    return pd.DataFrame([{c: r[c] for c in columns} for r in out], columns=columns)


def _evaluated_cell(ok: pd.DataFrame) -> str:
    if ok.empty:
        return "–"
    xs, ys = sorted(set(ok["evaluated"].astype(int))), sorted(set(ok["total"].astype(int)))
    x = str(xs[0]) if len(xs) == 1 else f"{xs[0]}–{xs[-1]}"
    y = str(ys[0]) if len(ys) == 1 else f"{ys[0]}–{ys[-1]}"
    return f"{x} / {y}"


def _pct(mean: float, std: float) -> str:
    if math.isnan(mean):
        return "–"
    return f"{mean * 100:.2f}" if math.isnan(std) else f"{mean * 100:.2f} ± {std * 100:.2f}"


def headlines(table: pd.DataFrame, runs: Sequence[RunSpec]) -> list[str]:
    """One line per (finetune run, mode): difference of means against the scratch run(s) of the same
    ``nlq_fraction`` on val R1@0.3, in points, and whether every seed both runs share agrees in sign."""
    lines = []
    ok = table[table["error"].isna() & (table["split"] == HEADLINE_SPLIT)]
    for ft in (r for r in runs if r.stage == "finetune"):
        refs = [r for r in runs if r.stage == "scratch" and r.nlq_fraction == ft.nlq_fraction]
        if not refs:
            lines.append(f"- {ft.name}: no scratch run with nlq_fraction {ft.nlq_fraction:g} to compare with")
            continue
        for ref in refs:
            for mode in MODES:
                a = ok[(ok["run"] == ft.name) & (ok["mode"] == mode) & (ok["stage"] == "finetune")]
                b = ok[(ok["run"] == ref.name) & (ok["mode"] == mode) & (ok["stage"] == "scratch")]
                a = a.set_index("seed")[HEADLINE_METRIC].astype(float).dropna()
                b = b.set_index("seed")[HEADLINE_METRIC].astype(float).dropna()
                if a.empty or b.empty:
                    continue
                diff = (a.mean() - b.mean()) * 100
                line = (
                    f"- {ft.name} vs {ref.name}, {HEADLINE_SPLIT} {HEADLINE_METRIC} ({mode}):"
                    f" {diff:+.2f} points"
                    f" ({a.mean() * 100:.2f} over {len(a)} seed(s) vs {b.mean() * 100:.2f} over {len(b)})"
                )
                paired = sorted(set(a.index) & set(b.index))
                if not paired:
                    line += "; no seed in common"
                else:
                    signs = np.sign([a[s] - b[s] for s in paired])
                    agree = int((signs == np.sign(diff)).sum())
                    verdict = "yes" if agree == len(paired) else "no"
                    line += f"; every seed agrees: {verdict} ({agree}/{len(paired)} paired seeds)"
                lines.append(line)
    return lines


def experiments_markdown(table: pd.DataFrame, runs: Sequence[RunSpec], *, synthetic: bool = False) -> str:
    """The markdown report of :func:`aggregate_experiments` (percent, two decimals, mean ± std)."""
    summary = summarize_experiments(table, runs)
    parts = ["# VSLNet experiments", ""]
    if synthetic:
        parts += ["**SYNTHETIC demo data: these numbers say nothing about real Ego4D performance.**", ""]
    parts += [
        "Percent, mean ± sample std (ddof 1) over seeds; `seeds` counts the seeds scored. Evaluated x / y:"
        " official = submitted results / GT queries, strict = predicted / evaluated GT queries.",
        "",
    ]
    head = headlines(table, runs)
    parts += ["## Fine-tuning against training from scratch", "", *(head or ["- no finetune run scored"]), ""]
    headers = ["run", "stage", "seeds", *SUMMARY_METRICS.values(), "Evaluated"]
    for (split, mode), group in summary.groupby(["split", "mode"], sort=False):
        parts += [f"## {split}, {mode}", "", "| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
        for r in group.to_dict("records"):
            cells = [
                r["run"],
                r["stage"],
                str(r["seeds"]) + (f" ({r['failed']} failed)" if r["failed"] else ""),
                *(_pct(r[f"{m}_mean"], r[f"{m}_std"]) for m in SUMMARY_METRICS),
                r["evaluated"],
            ]
            parts.append("| " + " | ".join(cells) + " |")
        parts.append("")
    errors = table[table["error"].notna()]
    if not errors.empty:
        parts += ["## Failed evaluations", ""]
        for r in errors.itertuples(index=False):
            parts.append(f"- {r.predictor} {r.split} {r.mode}: {str(r.error).splitlines()[0]}")
        parts.append("")
    return "\n".join(parts)
