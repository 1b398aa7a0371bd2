"""The step-grounding recipe (issue 17): ordered step descriptions aligned to 2 s chunks with a
contrastively fine-tuned dual encoder and an order-constrained search find the steps of a procedural video
(the source reports 31.17 R@1 at IoU 0.3 on Goal-Step val with its DFS).

Input: the per-seed metrics files of the steps stage (``results/steps/<model>/<run>/seed<s>/
<decoder>_metrics.json``, and VSLNet's ``span_metrics.json``). Arms are ``<model> <decoder>`` for one dual
encoder run; the headline is official-mode R@1 at IoU 0.3 on valid. Comparisons, paired by seed with the rule
of the other recipes: the exact DP against unconstrained per-step argmax (zero-shot and with adapters),
adapters + DP against zero-shot DP (the fine-tuning), and adapters + DP against the VSLNet baseline. DFS only
runs on entries with few steps, so it is shown, not compared.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from egonlq.grounding.recipes import GAIN_RULE, Comparison, Recipe, write_arms_recipe
from egonlq.io import read_json
from egonlq.steps.table import DECODER_ORDER, MODEL_ORDER, parse_metrics_path

NAME = "steps"
MODE, HEADLINE = "official", "R1@0.3"
METRIC = "valid R@1 IoU 0.3 (official)"
CLAIM = (
    "Goal-Step step grounding (Song et al., NeurIPS 2023 Datasets; the source system): a dual encoder"
    " fine-tuned on (chunk, step) pairs with small adapters, decoded under the steps' order constraint,"
    " localises the ordered steps of a procedural video (31.17 R@1 at IoU 0.3 on Goal-Step val with a DFS"
    " search) better than choosing each step's best chunks alone."
)
COMPARISONS = (
    Comparison("zero-shot: DP vs argmax", "zeroshot dp", "zeroshot argmax"),
    Comparison("adapters: DP vs argmax", "adapters dp", "adapters argmax"),
    Comparison("DP: adapters vs zero-shot", "adapters dp", "zeroshot dp"),
    Comparison("adapters + DP vs VSLNet", "adapters dp", "vslnet span"),
)


def recipe_arms(metric_paths: Sequence[Path], run: str) -> pd.DataFrame:
    """Rows (arm, seed, value) of dual encoder ``run`` (every model and decoder) and of VSLNet."""
    rows = []
    for path in metric_paths:
        model, name, decoder, seed = parse_metrics_path(path)
        if model != "vslnet" and name != run:
            continue
        entry = read_json(path).get(MODE, {})
        value = 100 * entry["recall"][HEADLINE] if "recall" in entry else None  # DFS "not run": no value
        rows.append({"arm": f"{model} {decoder}", "seed": seed, "value": value, "_m": model, "_d": decoder})
    models = {m: i for i, m in enumerate(MODEL_ORDER)}
    decoders = {d: i for i, d in enumerate(DECODER_ORDER)}
    arms = pd.DataFrame(rows, columns=["arm", "seed", "value", "_m", "_d"])
    arms = arms.assign(_mi=arms["_m"].map(models), _di=arms["_d"].map(decoders).fillna(99))
    return arms.sort_values(["_mi", "_di", "seed"])[["arm", "seed", "value"]].reset_index(drop=True)


def write_steps_recipe(
    metric_paths: Sequence[Path],
    run: str,
    *,
    out_parquet: Path,
    out_markdown: Path,
    out_png: Path,
    synthetic: bool = False,
) -> bool:
    """The recipe's table, markdown and plot from the steps stage's metrics; returns the verdict."""
    arms = recipe_arms(metric_paths, run)
    present = set(arms.loc[arms["value"].notna(), "arm"])
    recipe = Recipe(
        name=NAME,
        claim=CLAIM,
        runs=(),
        comparisons=tuple(c for c in COMPARISONS if c.control != "vslnet span" or "vslnet span" in present),
        rule=(
            f"{METRIC} (points): {GAIN_RULE.split(': ', 1)[1]}; reproduced when every comparison gains"
            " (the VSLNet one only when the baseline ran)."
        ),
    )
    notes = [
        f"Percent, per arm over seeds: {METRIC} of the Goal-Step valid steps and substeps, dual encoder"
        f" run `{run}`; arms are model and decoder (`vslnet span`: VSLNet trained on the converted train"
        " queries). DFS runs only on entries with few steps: a seed without a value is one it did not run.",
    ]
    return write_arms_recipe(
        recipe,
        arms,
        metric=METRIC,
        notes=notes,
        out_parquet=out_parquet,
        out_markdown=out_markdown,
        out_png=out_png,
        synthetic=synthetic,
    )
