"""The step-grounding table: zero-shot and adapter-tuned dual encoders x decoders, and the VSLNet baseline
trained on the converted queries, mean +- std over seeds, from the metrics files of ``steps-decode`` (and of
``evaluate`` for VSLNet, filed as ``vslnet/scratch/seed<s>/span_metrics.json``); and a plot of one video's
step-by-chunk similarities with the DP path against the ground truth.

Rows: (model, decoder); columns: R@1 and R@5 at IoU 0.3 and 0.5 and mIoU in percent, both metric modes.
A decoder that did not run (DFS on entries with too many steps) is shown as "not run" with its reason.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from egonlq.errors import InputError
from egonlq.io import atomic_path, read_json, write_parquet, write_text

METRICS = ("R1@0.3", "R1@0.5", "R5@0.3", "R5@0.5")
MODES = ("official", "strict")
DECODER_ORDER = ("argmax", "dp", "dfs", "viterbi")
MODEL_ORDER = ("zeroshot", "adapters", "vslnet")
MODEL_LABELS = {"vslnet": "VSLNet"}  # the markdown's name of a model folder
STEPS_TABLE = pa.schema(
    [
        pa.field("model", pa.string(), nullable=False),
        pa.field("run", pa.string(), nullable=False),
        pa.field("decoder", pa.string(), nullable=False),
        pa.field("mode", pa.string(), nullable=False),
        pa.field("seeds", pa.int32(), nullable=False),
        *[pa.field(f"{m}_{s}", pa.float64()) for m in (*METRICS, "mIoU") for s in ("mean", "std")],
        pa.field("note", pa.string()),
    ]
)


def parse_metrics_path(path: Path) -> tuple[str, str, str, int]:
    """(model, run, decoder, seed) from ``results/steps/<model>/<run>/seed<s>/<decoder>_metrics.json``."""
    parts = Path(path).parts
    if len(parts) < 4 or not parts[-2].startswith("seed") or not parts[-1].endswith("_metrics.json"):
        expected = "<model>/<run>/seed<s>/<decoder>_metrics.json"
        raise InputError(path, "not a steps-decode metrics file", expected=expected)
    return parts[-4], parts[-3], parts[-1].removesuffix("_metrics.json"), int(parts[-2].removeprefix("seed"))


def _mean_std(values: list[float]) -> tuple[float, float]:
    if not values:
        return math.nan, math.nan
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def steps_table(metric_paths: Sequence[Path]) -> list[dict[str, Any]]:
    """One row per (model, run, decoder, mode) with the mean and std over seeds, in percent."""
    groups: dict[tuple[str, str, str, str], list[dict]] = defaultdict(list)
    notes: dict[tuple[str, str, str, str], str] = {}
    for path in metric_paths:
        model, run, decoder, _seed = parse_metrics_path(path)
        obj = read_json(path)
        for mode in MODES:
            entry = obj.get(mode)
            if not isinstance(entry, dict):
                raise InputError(path, "mode missing", field=mode, expected="an evaluate_both entry")
            key = (model, run, decoder, mode)
            if "recall" in entry:
                groups[key].append(entry)
            else:
                groups.setdefault(key, [])
                notes[key] = str(entry.get("error") or entry.get("note") or "not run")
    order = {d: i for i, d in enumerate(DECODER_ORDER)}
    models = {m: i for i, m in enumerate(MODEL_ORDER)}
    rows = []
    for key in sorted(
        groups, key=lambda k: (models.get(k[0], 99), k[0], k[1], order.get(k[2], 99), k[2], k[3])
    ):
        entries = groups[key]
        row: dict[str, Any] = dict(zip(("model", "run", "decoder", "mode"), key, strict=True))
        row["seeds"] = len(entries)
        for metric in METRICS:
            values = [100 * e["recall"][metric] for e in entries]
            row[f"{metric}_mean"], row[f"{metric}_std"] = _mean_std(values)
        row["mIoU_mean"], row["mIoU_std"] = _mean_std([100 * e["miou"] for e in entries])
        row["note"] = notes.get(key, "") if not entries else ""
        rows.append(row)
    return rows


def _cell(row: dict[str, Any], metric: str) -> str:
    mean, std = row[f"{metric}_mean"], row[f"{metric}_std"]
    return "not run" if math.isnan(mean) else f"{mean:.2f} ± {std:.2f}"


def _markdown(rows: list[dict[str, Any]], synthetic: bool) -> str:
    lines = ["# Step grounding on Goal-Step (valid)", ""]
    if synthetic:
        lines += ["**SYNTHETIC demo data: these numbers say nothing about real Goal-Step performance.**", ""]
    lines += [
        "Percent, mean ± std over seeds. `argmax` places each step on its own best window; `dp` is the exact "
        "order-constrained segment alignment (substeps inside their parent); `dfs` is the source's search "
        "(exact, exponential in the number of steps: not run on entries with more steps than "
        "`dfs_max_steps`); `viterbi` finds one peak per step in order and grows a window around it. "
        "`VSLNet` (decoder `span`) is the official baseline: VSLNet trained from scratch on the converted "
        "train queries, each query's span predicted on its own.",
        "",
    ]
    for mode in MODES:
        lines += [f"## {mode} mode", ""]
        lines += ["| model | run | decoder | seeds | " + " | ".join(METRICS) + " | mIoU | note |"]
        lines += ["|---" * (len(METRICS) + 6) + "|"]
        for r in (r for r in rows if r["mode"] == mode):
            cells = [_cell(r, m) for m in (*METRICS, "mIoU")]
            model = MODEL_LABELS.get(r["model"], r["model"])
            lines.append(f"| {model} | {r['run']} | {r['decoder']} | {r['seeds']} | " + " | ".join(cells)
                         + f" | {r['note']} |")  # fmt: skip
        lines.append("")
    lines += ["## What the alignment does", ""]
    for model, run in sorted({(r["model"], r["run"]) for r in rows}):
        mine = [r for r in rows if r["mode"] == "official" and (r["model"], r["run"]) == (model, run)]
        by = {r["decoder"]: r for r in mine}
        if "argmax" in by and "dp" in by:
            gain = by["dp"]["R1@0.3_mean"] - by["argmax"]["R1@0.3_mean"]
            lines.append(f"- {model} {run}: DP vs argmax, official R1@0.3: {gain:+.2f} points")
    return "\n".join(lines) + "\n"


def write_steps_table(
    metric_paths: Sequence[Path], parquet_out: Path, markdown_out: Path, *, synthetic: bool
) -> list[dict[str, Any]]:
    rows = steps_table(metric_paths)
    if not rows:
        raise InputError(None, "no steps-decode metrics files given", expected="at least one")
    write_parquet(pa.Table.from_pylist(rows, schema=STEPS_TABLE), parquet_out, STEPS_TABLE)
    write_text(_markdown(rows, synthetic), markdown_out)
    return rows


def plot_alignment(example: Path, out_png: Path) -> None:
    """One entry's step-by-chunk similarity matrix with the DP segments and the ground-truth windows (both in
    chunks in the example file of ``steps-decode``)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    with np.load(example) as z:
        sim, dp, gt = z["sim"], z["dp"], z["gt"]
        chunk_sec, video = float(z["chunk_sec"]), str(z["video_uid"])
    fig = Figure(figsize=(11, max(3.0, 0.12 * len(sim) + 1.5)))
    ax = fig.add_subplot(1, 1, 1)
    ax.imshow(sim, aspect="auto", cmap="viridis", interpolation="nearest")
    for k, ((a, b), (gs, ge)) in enumerate(zip(dp, gt, strict=True)):
        ax.plot([gs, ge], [k, k], color="white", linewidth=3, solid_capstyle="butt")  # in chunks
        if a >= 0:
            ax.plot([a, b], [k, k], color="red", linewidth=1.5, solid_capstyle="butt")
    ax.set_xlabel(f"chunk ({chunk_sec:g} s)")
    ax.set_ylabel("query (steps in order, substeps after their step)")
    ax.set_title(f"{video}: similarity, ground truth (white) and DP path (red)")
    fig.tight_layout()
    with atomic_path(out_png) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
