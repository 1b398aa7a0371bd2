"""Source recipes: each published claim as a fixed set of VSLNet runs, a table of our numbers beside the
claim, and a verdict computed from them (issue 17).

A recipe names its runs locally (``scratch``, ``naq_ft``) in the syntax of ``experiments.runs``
(:mod:`egonlq.grounding.experiments` parses and checks them). Every run is then filed under a **key derived
from its parameters** (``{stage}-{hash}`` over stage, sources, NLQ fraction, label mode, model, train settings
and the key of its init run), so that a run two recipes need is one training job and ``recipes`` (all of
them) costs the union of their runs. Every recipe uses the same seeds (``recipes.seeds``).

The verdict compares runs on the headline metric (val R@1 at IoU 0.3, official mode), per seed:

* a *gain* holds when the mean difference (treatment - control) is > 0 **and** every paired seed's
  difference is > 0 (for a deterministic baseline control, every seed of the treatment is above it);
* a recipe reproduces its claim when every one of its comparisons gains; the low-shot recipe also needs the
  gain at the smallest NLQ fraction to exceed the gain at the largest (gains grow as NLQ data shrinks).
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa

from egonlq.errors import InputError
from egonlq.evaluation.metric import read_metrics
from egonlq.grounding.experiments import RunSpec, parse_experiments, parse_predictor_name
from egonlq.io import write_parquet, write_text

if TYPE_CHECKING:  # matplotlib is imported where a plot is drawn: the workflow imports this module to plan
    from matplotlib.figure import Figure

logger = logging.getLogger(__name__)

SPLIT, MODE, METRIC = "val", "official", "R1@0.3"  # the headline every verdict is computed on
TABLE_METRICS = {
    "R1@0.3": "R@1 IoU0.3",
    "R1@0.5": "R@1 IoU0.5",
    "R5@0.3": "R@5 IoU0.3",
    "R5@0.5": "R@5 IoU0.5",
}
GAIN_RULE = (
    f"{SPLIT} {METRIC} ({MODE}): a comparison gains when the mean difference is > 0 and every paired seed's"
    " difference is > 0"
)

# results/recipes/<name>/table.parquet: one row per (run or baseline, seed)
RECIPE_ROWS = pa.schema(
    [
        pa.field("recipe", pa.string(), nullable=False),
        pa.field("run", pa.string(), nullable=False),  # the recipe's local name, or the baseline's name
        pa.field("predictor", pa.string(), nullable=False),  # vslnet_<key>_seed<s>, or the baseline's name
        pa.field("stage", pa.string(), nullable=False),  # scratch | finetune | zeroshot | baseline
        pa.field("highlight", pa.bool_()),  # False: VSLBase; null for baselines
        pa.field("nlq_fraction", pa.float64()),  # null when the run sees no NLQ train (zeroshot, baselines)
        pa.field("seed", pa.int64()),  # null for baselines
        *(pa.field(m, pa.float64()) for m in TABLE_METRICS),
    ]
)


@dataclass(frozen=True)
class Comparison:
    """Treatment against control (local run names, or a baseline predictor such as ``uniform``)."""

    label: str
    treatment: str
    control: str


@dataclass(frozen=True)
class Recipe:
    """One published recipe: its claim, its runs (``experiments.runs`` entries), what its verdict compares."""

    name: str
    claim: str
    runs: tuple[dict[str, Any], ...]
    comparisons: tuple[Comparison, ...]
    rule: str
    grows_as_nlq_shrinks: bool = False  # low-shot: the gain must grow as the NLQ fraction shrinks


@dataclass(frozen=True)
class RecipePlan:
    """Every recipe's runs under their parameter keys: ``runs`` (key -> spec named by its key, ``init`` a
    key too) and ``members`` (recipe -> local name -> key)."""

    recipes: dict[str, Recipe]
    runs: dict[str, RunSpec]
    members: dict[str, dict[str, str]]
    seeds: tuple[int, ...]

    def run_keys(self, recipe: str) -> list[str]:
        """Keys of the runs ``recipe`` trains or scores (its pretrain runs included)."""
        return sorted(set(self.members[recipe].values()))

    def scored(self, recipe: str) -> dict[str, str]:
        """Local name -> key of the runs of ``recipe`` that have predictions (not pretrain runs)."""
        return {local: key for local, key in self.members[recipe].items() if self.runs[key].scored}

    def baselines(self, recipe: str) -> list[str]:
        """Baseline predictors a comparison of ``recipe`` uses as its control."""
        local = self.members[recipe]
        return sorted({c.control for c in self.recipes[recipe].comparisons if c.control not in local})


def _pct_name(fraction: float) -> str:
    return f"{round(fraction * 100):d}pct"


def build_recipes(settings: Mapping[str, Any]) -> list[Recipe]:
    """The recipes from the ``recipes`` config section (``pretrain`` / ``finetune``: train overrides of every
    pretrain / finetune run; ``llm_sources``: the generated-query sources; ``naq_jitter_factor``: NaQ's
    response jittering; ``lowshot_fractions``: the NLQ train fractions)."""
    pre, fine = dict(settings["pretrain"]), dict(settings["finetune"])
    jitter = {**pre, "jitter_factor": settings["naq_jitter_factor"], "jitter_sources": ["naq"]}
    vslbase = {"highlight": False}

    def naq_chain(suffix: str, fraction: float | None = None, model: Mapping | None = None) -> list[dict]:
        pt = {
            "name": f"naq_pt{suffix}",
            "stage": "pretrain",
            "sources": ["naq"],
            "joint_nlq": True,
            "train": jitter,
        }
        scratch = {"name": f"scratch{suffix}", "stage": "scratch"}
        if fraction is not None:
            pt["nlq_fraction"] = scratch["nlq_fraction"] = fraction
        if model:
            pt["model"] = scratch["model"] = dict(model)
        return [
            scratch,
            pt,
            {"name": f"naq_ft{suffix}", "stage": "finetune", "init": f"naq_pt{suffix}", "train": fine},
        ]

    naq_pt, naq_ft = naq_chain("")[1:]
    narrator_pt = {
        "name": "narrator_pt",
        "stage": "pretrain",
        "sources": ["naq", "narrator"],
        "joint_nlq": True,
        "train": {**jitter, "jitter_sources": ["naq", "narrator"]},
    }
    fractions = sorted(float(f) for f in settings["lowshot_fractions"])
    lowshot = [run for f in fractions for run in naq_chain(f"_{_pct_name(f)}", f)]
    return [
        Recipe(
            name="llm_pretrain",
            claim=(
                "LLM-query recipe (llm-queries.md; the project's seed document): pre-training VSLNet"
                " on LLM-generated queries only, then fine-tuning on NLQ train, beats training on NLQ train"
                " alone."
            ),
            runs=(
                {"name": "scratch", "stage": "scratch"},
                {
                    "name": "llm_pt",
                    "stage": "pretrain",
                    "sources": list(settings["llm_sources"]),
                    "joint_nlq": False,
                    "train": pre,
                },
                {"name": "llm_ft", "stage": "finetune", "init": "llm_pt", "train": fine},
            ),
            comparisons=(Comparison("VSLNet", "llm_ft", "scratch"),),
            rule=GAIN_RULE + "; reproduced when llm_ft gains over scratch.",
        ),
        Recipe(
            name="naq",
            claim=(
                "NaQ (Ramakrishnan et al., CVPR 2023): joint NaQ + NLQ pre-training with temporal response"
                " jittering, then fine-tuning on NLQ, improves VSLNet and VSLBase over NLQ-only training"
                ' (the abstract: "even doubling" the accuracy of several models).'
            ),
            runs=(*naq_chain(""), *naq_chain("_vslbase", model=vslbase)),
            comparisons=(
                Comparison("VSLNet", "naq_ft", "scratch"),
                Comparison("VSLBase", "naq_ft_vslbase", "scratch_vslbase"),
            ),
            rule=GAIN_RULE
            + "; reproduced when both VSLNet and VSLBase gain (the ratio is reported, not required).",
        ),
        Recipe(
            name="narrator",
            claim=(
                "Narrator densification (issue 12, after LaViLa's NARRATOR, Zhao et al., CVPR 2023): adding"
                " the narrator's NaQ-style queries (its texts for re-narrated EgoClip windows and for"
                " un-narrated stretches) to joint NaQ + NLQ pre-training, then fine-tuning on NLQ, beats"
                " NaQ + NLQ pre-training alone."
            ),
            runs=(
                naq_pt,
                naq_ft,
                narrator_pt,
                {"name": "narrator_ft", "stage": "finetune", "init": "narrator_pt", "train": fine},
            ),
            comparisons=(Comparison("NaQ + narrator vs NaQ", "narrator_ft", "naq_ft"),),
            rule=GAIN_RULE + "; reproduced when narrator_ft gains over naq_ft.",
        ),
        Recipe(
            name="naq_zeroshot",
            claim=(
                "NaQ zero-shot (Ramakrishnan et al., CVPR 2023): VSLNet pre-trained on NaQ alone, with no NLQ"
                " training query, answers NLQ val better than a model-free baseline."
            ),
            runs=(
                {
                    "name": "naqonly_pt",
                    "stage": "pretrain",
                    "sources": ["naq"],
                    "joint_nlq": False,
                    "train": jitter,
                },
                {"name": "naq_zs", "stage": "zeroshot", "init": "naqonly_pt"},
            ),
            comparisons=(Comparison("zero-shot vs uniform windows", "naq_zs", "uniform"),),
            rule=GAIN_RULE + "; the control is the uniform-windows baseline (no training data);"
            " reproduced when naq_zs gains over it.",
        ),
        Recipe(
            name="naq_lowshot",
            claim=(
                "NaQ low-shot (Ramakrishnan et al., CVPR 2023): NaQ pre-training helps at every NLQ train"
                " fraction, and its gain grows as the NLQ training data shrinks."
            ),
            runs=tuple(lowshot),
            comparisons=tuple(
                Comparison(f"NLQ {_pct_name(f)}", f"naq_ft_{_pct_name(f)}", f"scratch_{_pct_name(f)}")
                for f in fractions
            ),
            rule=GAIN_RULE + f"; reproduced when every fraction gains and the mean gain at {fractions[0]:g}"
            f" exceeds the one at {fractions[-1]:g}.",
            grows_as_nlq_shrinks=True,
        ),
    ]


def run_key(spec: RunSpec, init_key: str | None) -> str:
    """``{stage}-{hash}``: the hash of what affects the run's results (not its name, not the seed)."""
    payload = {
        "stage": spec.stage,
        "sources": list(spec.sources),
        "joint_nlq": spec.joint_nlq,
        "nlq_fraction": spec.nlq_fraction,
        "label_mode": spec.label_mode,
        "model": spec.model,
        "train": spec.train,
        "init": init_key,
    }
    digest = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:10]
    return f"{spec.stage}-{digest}"


def plan_recipes(
    vslnet: Mapping[str, Any],
    settings: Mapping[str, Any],
    *,
    available_sources: set[str],
    source: str = "config.yaml",
) -> RecipePlan:
    """Parse every recipe's runs (errors name ``recipes.<name>`` and the run) and file them under their keys.

    ``vslnet``: the resolved ``label_mode``, ``model`` and ``train`` defaults; ``settings``: the ``recipes``
    config section (``seeds`` and the keys of :func:`build_recipes`).
    """
    seeds = list(settings["seeds"])
    recipes = {r.name: r for r in build_recipes(settings)}
    runs: dict[str, RunSpec] = {}
    members: dict[str, dict[str, str]] = {}
    for recipe in recipes.values():
        specs = parse_experiments(
            vslnet,
            {"seeds": seeds, "runs": copy.deepcopy(list(recipe.runs))},
            available_sources=available_sources,
            source=f"{source}: recipes.{recipe.name}",
        )
        local: dict[str, str] = {}
        for spec in specs:  # pretrain runs come before the runs that start from them
            init_key = local[spec.init] if spec.init else None
            key = run_key(spec, init_key)
            local[spec.name] = key
            runs.setdefault(key, dataclasses.replace(spec, name=key, init=init_key))
        members[recipe.name] = local
    logger.info(
        "recipes: %d recipes, %d distinct runs (%d named) x %d seeds",
        len(recipes),
        len(runs),
        sum(len(m) for m in members.values()),
        len(seeds),
    )
    return RecipePlan(recipes=recipes, runs=runs, members=members, seeds=tuple(seeds))


# ------------------------------------------------------------------------------------------------ the table


def recipe_rows(plan: RecipePlan, recipe: str, metric_jsons: Sequence[Path]) -> pd.DataFrame:
    """:data:`RECIPE_ROWS` of ``recipe`` from its metrics JSONs (val, official mode): one per run and seed,
    one per baseline. A file of another split, predictor or a failed official mode is an :class:`InputError`
    naming the file."""
    by_key = {key: local for local, key in plan.scored(recipe).items()}
    baselines = set(plan.baselines(recipe))
    rows = []
    for path in map(Path, metric_jsons):
        obj = read_metrics(path)
        predictor, record = obj["predictor"], f"{obj['predictor']}/{obj['split']}"
        if obj["split"] != SPLIT:
            raise InputError(path, f"split {obj['split']!r}", record=record, field="split", expected=SPLIT)
        parsed = parse_predictor_name(predictor)
        if parsed is None and predictor in baselines:
            run, stage, seed, spec = predictor, "baseline", None, None
        elif parsed is not None and parsed[0] in by_key and parsed[1] in plan.seeds:
            spec = plan.runs[parsed[0]]
            run, stage, seed = by_key[parsed[0]], spec.stage, parsed[1]
        else:
            raise InputError(
                path,
                f"predictor {predictor!r} is not part of recipe {recipe!r}",
                record=record,
                field="predictor",
            )
        entry = obj.get(MODE)
        if entry is None or "error" in entry:
            problem = "absent" if entry is None else str(entry["error"]).splitlines()[0]
            raise InputError(path, f"{MODE} mode failed: {problem}", record=record, field=MODE)
        rows.append(
            {
                "recipe": recipe,
                "run": run,
                "predictor": predictor,
                "stage": stage,
                "highlight": None if spec is None else bool(spec.model.get("highlight", True)),
                "nlq_fraction": None if spec is None else spec.nlq_fraction,
                "seed": seed,
                **{m: entry["recall"].get(m) for m in TABLE_METRICS},
            }
        )
    order = {name: i for i, name in enumerate([*sorted(baselines), *plan.scored(recipe)])}
    rows.sort(key=lambda r: (order[r["run"]], -1 if r["seed"] is None else r["seed"]))
    return pa.Table.from_pylist(rows, schema=RECIPE_ROWS).to_pandas()


@dataclass(frozen=True)
class Gain:
    """A comparison's outcome in points: mean difference, per-seed differences, whether it gains."""

    comparison: Comparison
    mean: float
    std: float
    per_seed: dict[int, float]
    treatment_mean: float
    control_mean: float

    @property
    def gains(self) -> bool:
        return bool(self.per_seed) and self.mean > 0 and all(d > 0 for d in self.per_seed.values())


def _values(rows: pd.DataFrame, run: str) -> pd.Series:
    """Per-seed headline values of ``run`` (a baseline's single value under seed -1)."""
    sel = rows[rows["run"] == run]
    return pd.Series(
        sel[METRIC].astype(float).to_numpy(), index=sel["seed"].fillna(-1).astype(int).to_numpy()
    )


def compare(rows: pd.DataFrame, comparison: Comparison) -> Gain:
    """Treatment minus control per paired seed (a baseline control pairs with every seed), in points."""
    t, c = _values(rows, comparison.treatment).dropna(), _values(rows, comparison.control).dropna()
    if list(c.index) == [-1]:
        per_seed = {int(s): (v - c.iloc[0]) * 100 for s, v in t.items()}
    else:
        per_seed = {int(s): (t[s] - c[s]) * 100 for s in sorted(set(t.index) & set(c.index))}
    diffs = np.array(list(per_seed.values()), dtype=float)
    return Gain(
        comparison=comparison,
        mean=float(diffs.mean()) if len(diffs) else math.nan,
        std=float(diffs.std(ddof=1)) if len(diffs) > 1 else math.nan,
        per_seed=per_seed,
        treatment_mean=float(t.mean() * 100) if len(t) else math.nan,
        control_mean=float(c.mean() * 100) if len(c) else math.nan,
    )


def verdict(recipe: Recipe, gains: Sequence[Gain]) -> tuple[bool, str]:
    """Whether the demo reproduces ``recipe``'s claim, and why (the rule applied to the numbers)."""
    failing = [g.comparison.label for g in gains if not g.gains]
    reasons = [f"{label}: no gain on every seed" for label in failing]
    if recipe.grows_as_nlq_shrinks and len(gains) > 1:
        smallest, largest = gains[0], gains[-1]
        if not smallest.mean > largest.mean:
            reasons.append(
                f"the gain at {smallest.comparison.label} ({smallest.mean:+.2f}) does not exceed the gain at"
                f" {largest.comparison.label} ({largest.mean:+.2f})"
            )
    ok = bool(gains) and not reasons
    return ok, "every comparison passes the rule" if ok else "; ".join(reasons)


def _cell(values: pd.Series) -> str:
    values = values.dropna().astype(float) * 100
    if values.empty:
        return "–"
    return f"{values.mean():.2f}" if len(values) < 2 else f"{values.mean():.2f} ± {values.std(ddof=1):.2f}"


def _pm(mean: float, std: float) -> str:
    if math.isnan(mean):
        return "–"
    return f"{mean:+.2f}" if math.isnan(std) else f"{mean:+.2f} ± {std:.2f}"


def recipe_markdown(recipe: Recipe, rows: pd.DataFrame, gains: Sequence[Gain], *, synthetic: bool) -> str:
    """The table: first line the claim, last line the verdict (``Demo reproduces the claim: yes|no``)."""
    ok, why = verdict(recipe, gains)
    parts = [f"Claim: {recipe.claim}", "", f"# Recipe {recipe.name}", ""]
    if synthetic:
        parts += ["**SYNTHETIC demo data: these numbers say nothing about real Ego4D performance.**", ""]
    headers = ["run", "stage", "model", "NLQ train", "seeds", *TABLE_METRICS.values()]
    parts += [
        f"Percent on {SPLIT} ({MODE} metric), mean ± sample std over seeds.",
        "",
        "| " + " | ".join(headers) + " |",
        "|" + "---|" * len(headers),
    ]
    for run, group in rows.groupby("run", sort=False):
        first = group.iloc[0]
        model = "–" if first["stage"] == "baseline" else ("VSLNet" if first["highlight"] else "VSLBase")
        fraction = first["nlq_fraction"]
        nlq = "–" if pd.isna(fraction) else f"{fraction * 100:g} %"
        seeds = "–" if first["stage"] == "baseline" else str(group["seed"].notna().sum())
        parts.append(
            "| "
            + " | ".join([run, first["stage"], model, nlq, seeds, *(_cell(group[m]) for m in TABLE_METRICS)])
            + " |"
        )
    parts += [
        "",
        f"## Comparisons ({SPLIT} {TABLE_METRICS[METRIC]}, {MODE}; points)",
        "",
        "| comparison | treatment | control | treatment mean | control mean | ratio"
        " | gain (mean ± std over seeds) | per seed | every seed agrees in sign |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for g in gains:
        signs = np.sign(list(g.per_seed.values()))
        agree = bool(len(signs)) and bool(np.all(signs == np.sign(g.mean)))
        ratio = f"{g.treatment_mean / g.control_mean:.2f}x" if g.control_mean > 0 else "–"
        per_seed = ", ".join(f"s{s}: {d:+.2f}" for s, d in g.per_seed.items()) or "–"
        parts.append(
            f"| {g.comparison.label} | {g.comparison.treatment} | {g.comparison.control}"
            f" | {g.treatment_mean:.2f} | {g.control_mean:.2f} | {ratio} | {_pm(g.mean, g.std)} | {per_seed}"
            f" | {'yes' if agree else 'no'} ({len(signs)} seeds) |"
        )
    parts += ["", f"Rule: {recipe.rule}", "", f"Demo reproduces the claim: {'yes' if ok else 'no'} ({why})"]
    return "\n".join(parts)


def bars_with_seeds(ax: Any, groups: Mapping[str, pd.Series], *, rotation: int = 20) -> None:
    """One bar per group (mean ± sample std; 0 without values) with each seed's value as a dot; the bar and
    its dots carry ``gid`` = the group's name."""
    for i, (name, values) in enumerate(groups.items()):
        std = values.std(ddof=1) if len(values) > 1 else 0.0
        ax.bar(i, values.mean() if len(values) else 0.0, yerr=std, capsize=3, color=f"C{i % 10}", gid=name)
        ax.plot([i] * len(values), values.to_numpy(), "k.", gid=name)
    ax.set_xticks(range(len(groups)), list(groups), rotation=rotation, fontsize="small")


def plot_recipe(recipe: Recipe, rows: pd.DataFrame, out_png: Path, *, synthetic: bool) -> Figure:
    """The headline metric per run (mean ± std, seeds as dots); the low-shot recipe as one curve per arm
    over the NLQ fraction. Artists carry ``gid`` ``"{run}"`` (bars, dots) or ``"{arm}"`` (curves)."""
    from matplotlib.figure import Figure

    from egonlq.grounding.plots import figure_title, save_png

    fig = Figure(figsize=(8, 4.5))
    ax = fig.add_subplot()
    if recipe.grows_as_nlq_shrinks:
        for arm, side in (("with NaQ pre-training", "treatment"), ("NLQ only", "control")):
            xs, means, stds = [], [], []
            for c in recipe.comparisons:
                values = _values(rows, getattr(c, side)).dropna() * 100
                sel = rows[rows["run"] == getattr(c, side)]
                if values.empty or sel.empty:
                    continue
                xs.append(float(sel["nlq_fraction"].iloc[0]) * 100)
                means.append(values.mean())
                stds.append(values.std(ddof=1) if len(values) > 1 else 0.0)
            ax.errorbar(xs, means, yerr=stds, marker="o", capsize=3, label=arm, gid=arm)
        ax.set_xlabel("NLQ train used (%)")
        ax.legend(fontsize="small")
    else:
        runs = list(dict.fromkeys(rows["run"]))
        bars_with_seeds(ax, {run: _values(rows, run).dropna() * 100 for run in runs})
    ax.set_ylabel(f"{SPLIT} {TABLE_METRICS[METRIC]} (%)")
    fig.suptitle(figure_title(f"Recipe {recipe.name}: {SPLIT} {TABLE_METRICS[METRIC]} ({MODE})", synthetic))
    fig.tight_layout()
    save_png(fig, out_png)
    return fig


def write_recipe_table(
    plan: RecipePlan,
    recipe: str,
    metric_jsons: Sequence[Path],
    *,
    out_parquet: Path,
    out_markdown: Path,
    out_png: Path,
    synthetic: bool = False,
) -> bool:
    """Write the parquet rows, the markdown table and the plot of ``recipe``; returns the verdict."""
    if recipe not in plan.recipes:
        raise ValueError(f"unknown recipe {recipe!r} (recipes: {sorted(plan.recipes)})")
    spec = plan.recipes[recipe]
    rows = recipe_rows(plan, recipe, metric_jsons)
    gains = [compare(rows, c) for c in spec.comparisons]
    write_parquet(
        pa.Table.from_pandas(rows, schema=RECIPE_ROWS, preserve_index=False), out_parquet, RECIPE_ROWS
    )
    markdown = recipe_markdown(spec, rows, gains, synthetic=synthetic)
    write_text(markdown + "\n", out_markdown)
    plot_recipe(spec, rows, out_png, synthetic=synthetic)
    ok, why = verdict(spec, gains)
    logger.info("recipe %s: %d rows; reproduced: %s (%s)", recipe, len(rows), ok, why)
    return ok


# ------------------------------------------------------------------ recipes over arms of other stages' tables
# The dual-encoder and step recipes compare arms of their stage's own table (runs, decoders) over the same
# seeds, on one headline metric: rows (arm, seed, value in percent), the same gain rule and verdict.

ARM_ROWS = pa.schema(
    [
        pa.field("recipe", pa.string(), nullable=False),
        pa.field("arm", pa.string(), nullable=False),
        pa.field("seed", pa.int64(), nullable=False),
        pa.field("value", pa.float64()),  # the headline metric, percent
    ]
)


def compare_arms(arms: pd.DataFrame, comparison: Comparison) -> Gain:
    """Treatment minus control arm per paired seed, in points (``arms``: arm, seed, value in percent)."""
    by = {a: g.set_index("seed")["value"].dropna().astype(float) for a, g in arms.groupby("arm")}
    t, c = (
        by.get(comparison.treatment, pd.Series(dtype=float)),
        by.get(comparison.control, pd.Series(dtype=float)),
    )
    per_seed = {int(s): float(t[s] - c[s]) for s in sorted(set(t.index) & set(c.index))}
    diffs = np.array(list(per_seed.values()), dtype=float)
    return Gain(
        comparison=comparison,
        mean=float(diffs.mean()) if len(diffs) else math.nan,
        std=float(diffs.std(ddof=1)) if len(diffs) > 1 else math.nan,
        per_seed=per_seed,
        treatment_mean=float(t.mean()) if len(t) else math.nan,
        control_mean=float(c.mean()) if len(c) else math.nan,
    )


def gain_table(gains: Sequence[Gain], *, unit: str = "seed", label=lambda s: f"s{s}") -> list[str]:
    r"""Markdown lines of the comparisons: treatment and control means, the gain (mean ± std over the paired
    ``unit``\ s), each one's difference (named by ``label``) and whether all agree in sign."""
    lines = [
        f"| comparison | treatment mean | control mean | gain (mean ± std over {unit}s) | per {unit}"
        f" | every {unit} agrees in sign |",
        "|---|---|---|---|---|---|",
    ]
    for g in gains:
        signs = np.sign(list(g.per_seed.values()))
        agree = bool(len(signs)) and bool(np.all(signs == np.sign(g.mean)))
        per = ", ".join(f"{label(k)}: {d:+.2f}" for k, d in g.per_seed.items()) or "–"
        lines.append(
            f"| {g.comparison.label} | {g.treatment_mean:.2f} | {g.control_mean:.2f} | {_pm(g.mean, g.std)}"
            f" | {per} | {'yes' if agree else 'no'} ({len(signs)} {unit}s) |"
        )
    return lines


def arms_markdown(
    recipe: Recipe,
    arms: pd.DataFrame,
    gains: Sequence[Gain],
    *,
    metric: str,
    notes: Sequence[str],
    synthetic: bool,
) -> str:
    """First line the claim, last line the verdict; a row per arm, the comparisons between them."""
    ok, why = verdict(recipe, gains)
    parts = [f"Claim: {recipe.claim}", "", f"# Recipe {recipe.name}", ""]
    if synthetic:
        parts += ["**SYNTHETIC demo data: these numbers say nothing about real Ego4D performance.**", ""]
    parts += [*notes, "", f"| arm | seeds | {metric} (mean ± std) |", "|---|---|---|"]
    for arm, group in arms.groupby("arm", sort=False):
        values = group["value"].dropna().astype(float)
        cell = (
            "–"
            if values.empty
            else f"{values.mean():.2f}" + (f" ± {values.std(ddof=1):.2f}" if len(values) > 1 else "")
        )
        parts.append(f"| {arm} | {len(values)} | {cell} |")
    parts += [
        "",
        f"## Comparisons ({metric}; points)",
        "",
        *gain_table(gains),
    ]
    parts += ["", f"Rule: {recipe.rule}", "", f"Demo reproduces the claim: {'yes' if ok else 'no'} ({why})"]
    return "\n".join(parts)


def plot_arms(recipe: Recipe, arms: pd.DataFrame, out_png: Path, *, metric: str, synthetic: bool) -> Figure:
    """The headline metric per arm (mean ± std, seeds as dots); artists carry ``gid`` = the arm."""
    from matplotlib.figure import Figure

    from egonlq.grounding.plots import figure_title, save_png

    fig = Figure(figsize=(8, 4.5))
    ax = fig.add_subplot()
    names = list(dict.fromkeys(arms["arm"]))
    bars_with_seeds(ax, {a: arms.loc[arms["arm"] == a, "value"].dropna().astype(float) for a in names})
    ax.set_ylabel(f"{metric} (%)")
    fig.suptitle(figure_title(f"Recipe {recipe.name}: {metric}", synthetic))
    fig.tight_layout()
    save_png(fig, out_png)
    return fig


def write_arms_recipe(
    recipe: Recipe,
    arms: pd.DataFrame,
    *,
    metric: str,
    notes: Sequence[str] = (),
    out_parquet: Path,
    out_markdown: Path,
    out_png: Path,
    synthetic: bool = False,
) -> bool:
    """Write the rows, the markdown (claim first, verdict last) and the plot of an arms recipe; returns the
    verdict. A comparison whose arm has no value is kept and fails the rule (nothing is dropped silently)."""
    if arms.empty:
        raise ValueError(f"recipe {recipe.name}: no arm has a value")
    gains = [compare_arms(arms, c) for c in recipe.comparisons]
    table = pa.Table.from_pandas(
        arms.assign(recipe=recipe.name)[ARM_ROWS.names], schema=ARM_ROWS, preserve_index=False
    )
    write_parquet(table, out_parquet, ARM_ROWS)
    write_text(
        arms_markdown(recipe, arms, gains, metric=metric, notes=notes, synthetic=synthetic) + "\n",
        out_markdown,
    )
    plot_arms(recipe, arms, out_png, metric=metric, synthetic=synthetic)
    return verdict(recipe, gains)[0]
