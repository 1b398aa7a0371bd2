"""VSLNet experiments: the runs listed in config.yaml as typed :class:`RunSpec` objects, and their per-seed
metrics gathered into one table (mean ± std over seeds, fine-tuning against training from scratch).

Stages (naq.md sections 3 and 3.4):

* ``scratch``: train on NLQ train only (``nlq_fraction`` < 1: the few-shot NLQ-only baseline).
* ``pretrain``: stage 1, train on synthetic ``sources`` (NaQ, LLM, ...) with response jittering, plus NLQ
  train when ``joint_nlq`` is true (NaQ's recipe; ``nlq_fraction`` < 1 is the few-shot setting). A pretrain
  run is not scored itself: a ``finetune`` or ``zeroshot`` run says how its checkpoint is used.
* ``finetune``: stage 2, start from the best checkpoint of the pretrain run ``init`` (weights only: fresh
  optimizer and schedule), train on NLQ train without jittering.
* ``zeroshot``: no training; score the ``init`` pretrain checkpoint as it is. ``init`` must never have seen
  NLQ (``joint_nlq: false``), else the result would not be zero-shot.

Seed ``s`` of a finetune or zeroshot run starts from seed ``s`` of its ``init`` run. Predictions and metrics
of run ``r``, seed ``s`` are filed under the predictor name ``vslnet_{r}_seed{s}``.

The config layout (the workflow's JSON schema checks types and fills defaults; :func:`parse_experiments`
checks what a schema cannot: names, references between runs, which keys each stage accepts)::

    vslnet:                     # defaults shared by every run
      label_mode: compatible    # compatible | corrected (vslnet.md section 10)
      model: {dim: 128, num_heads: 8, dropout: 0.2, max_pos_len: 128, highlight: true}
      train:
        epochs: 30
        batch_size: 32
        lr: 0.001
        warmup_proportion: 0.0
        weight_decay: 0.01
        clip_norm: 1.0
        eval_per_epoch: 2
        jitter_factor: 2.5      # 0 (off) or > 1; used by pretrain runs only
        jitter_sources: [naq]   # synthetic sources whose queries are jittered; pretrain runs only
        max_train_queries: null
    experiments:
      seeds: [0, 1]
      runs:
        - {name: scratch, stage: scratch}
        - {name: naq_pt, stage: pretrain, sources: [naq], joint_nlq: true,
           train: {epochs: 5, batch_size: 128}}
        - {name: naq_ft, stage: finetune, init: naq_pt, train: {lr: 0.0001}}
        - {name: naqonly_pt, stage: pretrain, sources: [naq], joint_nlq: false, train: {epochs: 5}}
        - {name: naq_zs, stage: zeroshot, init: naqonly_pt}
        - {name: fewshot25, stage: scratch, nlq_fraction: 0.25}

Keys a run accepts, per stage (anything else is an error):

    =========  ===================================================================================
    scratch    name, stage, nlq_fraction, label_mode, model, train
    pretrain   name, stage, sources (required), joint_nlq (required), nlq_fraction (joint_nlq only),
               label_mode, model, train
    finetune   name, stage, init (required), nlq_fraction (default: that of init, else 1), label_mode,
               train (model: that of init)
    zeroshot   name, stage, init (required)
    =========  ===================================================================================

``train`` and ``model`` of a run are deep-merged over the ``vslnet`` defaults and may only name keys the
defaults have. ``train.jitter_*`` may be set on pretrain runs only; other stages train with jittering off
(``jitter_factor: 0``, ``jitter_sources: []``) and a pretrain run jitters only the sources of its own mix.
"""

from __future__ import annotations

import copy
import logging
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from egonlq.errors import InputError
from egonlq.evaluation.metric import METRIC_COLUMNS, MODES
from egonlq.io import read_json, write_parquet, write_text

logger = logging.getLogger(__name__)

STAGES = ("scratch", "pretrain", "finetune", "zeroshot")
LABEL_MODES = ("compatible", "corrected")
BASELINE_STAGE = "baseline"  # the stage column of predictors that are not VSLNet runs
NLQ_SOURCE = "nlq"
PREDICTOR_PREFIX = "vslnet_"
JITTER_KEYS = ("jitter_factor", "jitter_sources")

_RUN_KEYS = {
    "scratch": {"name", "stage", "nlq_fraction", "label_mode", "model", "train"},
    "pretrain": {"name", "stage", "sources", "joint_nlq", "nlq_fraction", "label_mode", "model", "train"},
    "finetune": {"name", "stage", "init", "nlq_fraction", "label_mode", "train"},
    "zeroshot": {"name", "stage", "init"},
}
_NAME = re.compile(r"[A-Za-z0-9_-]+")
_PREDICTOR = re.compile(r"vslnet_([A-Za-z0-9_-]+)_seed([0-9]+)")


# ------------------------------------------------------------------------------------------------ run specs


@dataclass(frozen=True)
class RunSpec:
    """One configured run, defaults merged in; the same spec serves every seed.

    ``sources``: synthetic sources of the training mix (pretrain; a zeroshot run reports its init's), empty
    for NLQ-only stages. ``joint_nlq``: NLQ train queries are in the mix. ``nlq_fraction``: the fraction of
    NLQ train clips kept, None when the run trains on no NLQ. ``train`` is empty for zeroshot runs.
    """

    name: str
    stage: str
    seeds: tuple[int, ...]
    sources: tuple[str, ...]
    joint_nlq: bool
    nlq_fraction: float | None
    init: str | None
    label_mode: str
    model: dict[str, Any]
    train: dict[str, Any]

    @property
    def trains(self) -> bool:
        """False for zeroshot runs: they are scored from their init run's checkpoint."""
        return self.stage != "zeroshot"

    @property
    def scored(self) -> bool:
        """Whether the run has predictions and metrics of its own (pretrain checkpoints are scored through
        the finetune/zeroshot runs that use them)."""
        return self.stage != "pretrain"

    def _check_seed(self, seed: int) -> None:
        if seed not in self.seeds:
            raise ValueError(f"run {self.name!r} has no seed {seed} (seeds: {list(self.seeds)})")

    def depends_on(self, seed: int) -> tuple[str, int] | None:
        """``(init run, seed)`` whose checkpoint this run starts from, None for runs from scratch."""
        self._check_seed(seed)
        return None if self.init is None else (self.init, seed)

    def predictor(self, seed: int) -> str:
        self._check_seed(seed)
        return predictor_name(self.name, seed)

    def params(self, seed: int) -> dict[str, str | int | float | bool | None]:
        """A flat JSON-safe dict of everything that decides this run's results for ``seed``.

        Meant for Snakemake ``params:``: editing one run's settings changes only that run's params; runs
        started from it rerun because their input checkpoint changes. Nested keys read ``train.lr``,
        ``model.dim``; lists become comma-separated strings.
        """
        self._check_seed(seed)
        out: dict[str, Any] = {"run": self.name, "stage": self.stage, "seed": seed}
        if self.init is not None:
            out["init"], out["init_seed"] = self.depends_on(seed)
        if self.trains:
            out.update(
                sources=",".join(self.sources),
                joint_nlq=self.joint_nlq,
                nlq_fraction=self.nlq_fraction,
                label_mode=self.label_mode,
            )
            out.update(_flatten("model", self.model))
            out.update(_flatten("train", self.train))
        return out

    def train_spec_dict(self, seed: int) -> dict[str, Any]:
        """Values for ``egonlq.grounding.train.TrainSpec.from_dict`` for ``seed``; the caller adds what the
        data decide
        (``model.video_dim``, ``model.text_dim``) and passes the init checkpoint of :meth:`depends_on`."""
        self._check_seed(seed)
        if not self.trains:
            raise ValueError(f"run {self.name!r} is a {self.stage} run: it does not train")
        return {
            "stage": self.stage,
            "sources": list(self.sources),
            "joint_nlq": self.joint_nlq,
            "nlq_fraction": 1.0 if self.nlq_fraction is None else self.nlq_fraction,
            "label_mode": self.label_mode,
            "seed": seed,
            "model": copy.deepcopy(self.model),
            **copy.deepcopy(self.train),
        }


def predictor_name(run: str, seed: int) -> str:
    """The name predictions and metrics of a run's seed are filed under: ``vslnet_{run}_seed{seed}``."""
    return f"{PREDICTOR_PREFIX}{run}_seed{seed}"


def parse_predictor_name(name: str) -> tuple[str, int] | None:
    """``(run, seed)`` of a VSLNet predictor name, None for other predictors (baselines such as
    ``uniform``); a ``vslnet_`` name of any other shape is an error."""
    if not name.startswith(PREDICTOR_PREFIX):
        return None
    m = _PREDICTOR.fullmatch(name)
    if m is None or "_seed" in m.group(1):
        raise ValueError(f"predictor name {name!r} is not of the form vslnet_<run>_seed<seed>")
    return m.group(1), int(m.group(2))


def _flatten(prefix: str, value: Any) -> dict[str, Any]:
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key in sorted(value):
            out.update(_flatten(f"{prefix}.{key}", value[key]))
        return out
    if isinstance(value, list | tuple):
        return {prefix: ",".join(str(v) for v in value)}
    return {prefix: value}


class _Where:
    """Builds errors that name the config entry and the field."""

    def __init__(self, source: str, record: str) -> None:
        self.source, self.record = source, record

    def error(self, message: str, field: str, expected: str | None = None) -> InputError:
        return InputError(self.source, message, record=self.record, field=field, expected=expected)


def _deep_merge(defaults: Mapping[str, Any], override: Any, field: str, where: _Where) -> dict[str, Any]:
    """``override`` merged over a copy of ``defaults``; keys the defaults lack are errors."""
    if not isinstance(override, Mapping):
        raise where.error(f"{override!r} is not a mapping", field, "a mapping of keys to override")
    merged = copy.deepcopy(dict(defaults))
    for key, value in override.items():
        if key not in merged:
            raise where.error(
                f"unknown key {key!r}", f"{field}.{key}", f"one of {sorted(merged)} (the vslnet.{field} keys)"
            )
        if isinstance(merged[key], Mapping) and isinstance(value, Mapping):
            merged[key] = _deep_merge(merged[key], value, f"{field}.{key}", where)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _check_sources(
    value: Any, field: str, where: _Where, available: set[str], *, allow_empty: bool
) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(s, str) for s in value):
        raise where.error(f"{value!r} is not a list of source names", field, "a list of source names")
    if not value and not allow_empty:
        raise where.error("empty source mix", field, f"at least one of {sorted(available)}")
    if NLQ_SOURCE in value:
        raise where.error(
            f"{NLQ_SOURCE!r} is not a synthetic source",
            field,
            "synthetic sources only (NLQ train joins a pretrain mix through joint_nlq: true, never jittered)",
        )
    unknown = [s for s in value if not _matching(s, available)]
    if unknown:
        raise where.error(
            f"unknown source(s) {unknown}", field, f"sources (or fnmatch patterns) from {sorted(available)}"
        )
    if len(set(value)) != len(value):
        raise where.error(f"repeated source in {value}", field, "each source once")
    return tuple(value)


def _matching(pattern: str, available: set[str]) -> set[str]:
    """The available sources a configured source names (an exact name or an fnmatch pattern: ``llm:*``)."""
    return {name for name in available if fnmatchcase(name, pattern)}


def _check_fraction(value: Any, where: _Where) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 1:
        raise where.error(f"nlq_fraction {value!r} outside (0, 1]", "nlq_fraction", "a number in (0, 1]")
    return float(value)


def _check_seeds(seeds: Any, where: _Where) -> tuple[int, ...]:
    if not isinstance(seeds, list) or not seeds:
        raise where.error(f"seeds {seeds!r} is not a non-empty list", "seeds", "a non-empty list of integers")
    for s in seeds:
        if isinstance(s, bool) or not isinstance(s, int) or s < 0:
            raise where.error(f"seed {s!r} is not a non-negative integer", "seeds", "integers >= 0")
    if len(set(seeds)) != len(seeds):
        raise where.error(f"repeated seed in {seeds}", "seeds", "each seed once")
    return tuple(seeds)


def _check_label_mode(mode: Any, where: _Where) -> str:
    if mode not in LABEL_MODES:
        raise where.error(f"label_mode {mode!r}", "label_mode", f"one of {LABEL_MODES}")
    return mode


def _check_name(name: Any, where: _Where) -> str:
    if not isinstance(name, str) or not _NAME.fullmatch(name) or "_seed" in name:
        raise where.error(
            f"run name {name!r} is not a safe token",
            "name",
            "letters, digits, '_', '-', without '_seed' (predictor names are vslnet_<run>_seed<seed>)",
        )
    return name


def parse_experiments(
    vslnet: Mapping[str, Any],
    experiments: Mapping[str, Any],
    *,
    available_sources: set[str],
    source: str = "config.yaml",
) -> list[RunSpec]:
    """Turn the ``vslnet`` defaults and the ``experiments`` section into run specs, in config order.

    ``available_sources``: the synthetic query sources the workflow builds (``source`` values of the training
    queries, e.g. ``{"naq", "llm:qwen"}``); a run may name one exactly or by fnmatch pattern (``llm:*``).
    Raises :class:`InputError` naming the run (``experiments.runs[i] (name=...)``) and the field for unknown
    stages, keys or sources, an empty pretrain mix, repeated or unsafe names, an ``init`` that is missing or
    not a pretrain run (or, for zeroshot, one that trains on NLQ), and ``nlq_fraction`` outside (0, 1].
    ``source`` names the config file in those errors.
    """
    return _Parser(vslnet, experiments, set(available_sources), source).runs()


class _Parser:
    def __init__(
        self, vslnet: Mapping[str, Any], experiments: Mapping[str, Any], available: set[str], source: str
    ) -> None:
        self.source, self.available = source, available
        base = _Where(source, "vslnet")
        for key in ("label_mode", "model", "train"):
            if key not in vslnet:
                raise base.error("key missing", key)
        for key in ("model", "train"):
            if not isinstance(vslnet[key], Mapping):
                raise base.error(f"{vslnet[key]!r} is not a mapping", key, "a mapping")
        self.label_mode = _check_label_mode(vslnet["label_mode"], base)
        self.model = copy.deepcopy(dict(vslnet["model"]))
        self.train = copy.deepcopy(dict(vslnet["train"]))
        if "jitter_sources" in self.train:
            _check_sources(
                self.train["jitter_sources"], "train.jitter_sources", base, available, allow_empty=True
            )
        top = _Where(source, "experiments")
        extra = sorted(set(experiments) - {"seeds", "runs"})
        if extra:
            raise top.error(f"unknown key {extra[0]!r}", extra[0], "seeds, runs")
        self.seeds = _check_seeds(experiments.get("seeds"), top)
        self.raw_runs = experiments.get("runs", [])
        if not isinstance(self.raw_runs, list):
            raise top.error(f"{self.raw_runs!r} is not a list", "runs", "a list of runs")

    def runs(self) -> list[RunSpec]:
        # first pass: names, stages and keys, so that init may name a run listed later
        entries: list[tuple[dict[str, Any], _Where]] = []
        index: dict[str, int] = {}
        for i, raw in enumerate(self.raw_runs):
            if not isinstance(raw, Mapping):
                raise _Where(self.source, f"experiments.runs[{i}]").error(f"{raw!r} is not a mapping", "name")
            where = _Where(self.source, f"experiments.runs[{i}] (name={raw.get('name')!r})")
            name = _check_name(raw.get("name"), where)
            if name in index:
                raise where.error(
                    f"duplicate run name {name!r} (also experiments.runs[{index[name]}])",
                    "name",
                    "unique names",
                )
            index[name] = i
            stage = raw.get("stage")
            if stage not in STAGES:
                raise where.error(f"unknown stage {stage!r}", "stage", f"one of {STAGES}")
            unknown = sorted(set(raw) - _RUN_KEYS[stage])
            if unknown:
                raise where.error(
                    f"key {unknown[0]!r} does not apply to a {stage} run",
                    unknown[0],
                    f"keys from {sorted(_RUN_KEYS[stage])}",
                )
            entries.append((dict(raw), where))
        specs: dict[str, RunSpec] = {}
        for raw, where in entries:
            if raw["stage"] == "scratch":
                specs[raw["name"]] = self._scratch(raw, where)
            elif raw["stage"] == "pretrain":
                specs[raw["name"]] = self._pretrain(raw, where)
        stages = {raw["name"]: raw["stage"] for raw, _ in entries}
        for raw, where in entries:
            if raw["stage"] in ("finetune", "zeroshot"):
                specs[raw["name"]] = self._from_init(raw, where, specs, stages)
        runs = [specs[raw["name"]] for raw, _ in entries]
        logger.info(
            "experiments: %d runs x %d seeds (%s)",
            len(runs),
            len(self.seeds),
            ", ".join(f"{r.name}:{r.stage}" for r in runs),
        )
        return runs

    def _label_mode(self, raw: Mapping[str, Any], where: _Where) -> str:
        return _check_label_mode(raw.get("label_mode", self.label_mode), where)

    def _train(self, stage: str, raw: Mapping[str, Any], sources: tuple[str, ...], where: _Where) -> dict:
        """Merged train settings, with jittering on only where naq.md 2.2 allows it (stage 1)."""
        override = raw.get("train", {})
        train = _deep_merge(self.train, override, "train", where)
        if stage != "pretrain":
            touched = [key for key in JITTER_KEYS if key in override]
            if touched:
                raise where.error(
                    f"jittering is set on a {stage} run",
                    f"train.{touched[0]}",
                    "jitter settings on pretrain runs only (stage 1; naq.md 2.2)",
                )
            if "jitter_factor" in train:
                train["jitter_factor"] = 0.0
            if "jitter_sources" in train:
                train["jitter_sources"] = []
            return train
        factor = train.get("jitter_factor", 0)
        if isinstance(factor, bool) or not isinstance(factor, int | float) or not (factor == 0 or factor > 1):
            raise where.error(f"jitter_factor {factor!r}", "train.jitter_factor", "0 (off) or a number > 1")
        if "jitter_sources" in train:
            jitter = _check_sources(
                train["jitter_sources"], "train.jitter_sources", where, self.available, allow_empty=True
            )
            mix = set().union(*(_matching(s, self.available) for s in sources))
            train["jitter_sources"] = [j for j in jitter if _matching(j, self.available) & mix]
        return train

    def _scratch(self, raw: Mapping[str, Any], where: _Where) -> RunSpec:
        return RunSpec(
            name=raw["name"],
            stage="scratch",
            seeds=self.seeds,
            sources=(),
            joint_nlq=True,
            nlq_fraction=_check_fraction(raw.get("nlq_fraction", 1.0), where),
            init=None,
            label_mode=self._label_mode(raw, where),
            model=_deep_merge(self.model, raw.get("model", {}), "model", where),
            train=self._train("scratch", raw, (), where),
        )

    def _pretrain(self, raw: Mapping[str, Any], where: _Where) -> RunSpec:
        if "sources" not in raw:
            raise where.error("empty source mix: key missing", "sources", f"some of {sorted(self.available)}")
        sources = _check_sources(raw["sources"], "sources", where, self.available, allow_empty=False)
        joint = raw.get("joint_nlq")
        if not isinstance(joint, bool):
            raise where.error(
                f"joint_nlq {joint!r}",
                "joint_nlq",
                "true (NLQ train + sources, NaQ's stage 1) or false (sources only, for zero-shot)",
            )
        if not joint and "nlq_fraction" in raw:
            raise where.error(
                "nlq_fraction on a run without NLQ", "nlq_fraction", "joint_nlq: true, or no nlq_fraction"
            )
        return RunSpec(
            name=raw["name"],
            stage="pretrain",
            seeds=self.seeds,
            sources=sources,
            joint_nlq=joint,
            nlq_fraction=_check_fraction(raw.get("nlq_fraction", 1.0), where) if joint else None,
            init=None,
            label_mode=self._label_mode(raw, where),
            model=_deep_merge(self.model, raw.get("model", {}), "model", where),
            train=self._train("pretrain", raw, sources, where),
        )

    def _from_init(
        self, raw: Mapping[str, Any], where: _Where, specs: Mapping[str, RunSpec], stages: Mapping[str, str]
    ) -> RunSpec:
        """A finetune or zeroshot run (``specs``: the pretrain runs; ``stages``: the stage of every run)."""
        stage, init_name = raw["stage"], raw.get("init")
        pretrains = sorted(name for name, s in stages.items() if s == "pretrain")
        if not isinstance(init_name, str) or init_name not in stages:
            raise where.error(
                f"init {init_name!r} is not a configured run", "init", f"one of the pretrain runs {pretrains}"
            )
        if stages[init_name] != "pretrain":
            raise where.error(
                f"init {init_name!r} is a {stages[init_name]} run, not a pretrain run",
                "init",
                f"one of the pretrain runs {pretrains}",
            )
        init = specs[init_name]
        if stage == "zeroshot":
            if init.joint_nlq:
                raise where.error(
                    f"init {init_name!r} trains on NLQ (joint_nlq: true), so scoring it is not zero-shot",
                    "init",
                    "a pretrain run with joint_nlq: false",
                )
            return RunSpec(
                name=raw["name"],
                stage="zeroshot",
                seeds=self.seeds,
                sources=init.sources,
                joint_nlq=False,
                nlq_fraction=None,
                init=init.name,
                label_mode=init.label_mode,
                model=copy.deepcopy(init.model),
                train={},
            )
        default_fraction = init.nlq_fraction if init.nlq_fraction is not None else 1.0
        return RunSpec(
            name=raw["name"],
            stage="finetune",
            seeds=self.seeds,
            sources=(),
            joint_nlq=True,
            nlq_fraction=_check_fraction(raw.get("nlq_fraction", default_fraction), where),
            init=init.name,
            label_mode=self._label_mode(raw, where),
            model=copy.deepcopy(init.model),
            train=self._train("finetune", raw, (), where),
        )


# ---------------------------------------------------------------------------------------------- aggregation

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
    obj = read_json(path)
    if not isinstance(obj, dict):
        raise InputError(path, "not a JSON object", expected="the output of evaluation.write_metrics")
    for key in ("predictor", "split"):
        if not isinstance(obj.get(key), str):
            raise InputError(path, "key missing or not a string", field=key, expected="a string")
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
    for mode in MODES:
        if mode not in obj:
            continue
        entry = obj[mode]
        row: dict[str, Any] = dict.fromkeys(EXPERIMENT_METRICS.names)
        row.update(predictor=predictor, run=run, stage=stage, seed=seed, split=split, mode=mode)
        if isinstance(entry, Mapping) and "error" in entry:
            row["error"] = str(entry["error"])
            rows.append(row)
            continue
        try:
            row.update({name: entry["recall"][name] for name in METRIC_COLUMNS})
            row.update(MR1=entry["mean_recall"]["MR1"], MR5=entry["mean_recall"]["MR5"], mIoU=entry["miou"])
            row["evaluated"], row["total"] = (int(v) for v in entry["evaluated"])
        except (KeyError, TypeError, ValueError) as e:
            raise InputError(
                path, f"malformed {mode} entry: {e!r}", record=f"{predictor}/{split}", field=mode
            ) from e
        rows.append(row)
    if not rows:
        raise InputError(path, f"no mode out of {MODES}", record=f"{predictor}/{split}")
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
) -> pd.DataFrame:
    """Gather metrics JSONs (:func:`egonlq.evaluation.metric.write_metrics`) of VSLNet runs and baselines.

    Writes :data:`EXPERIMENT_METRICS` rows (one per predictor, split and mode) to ``out_parquet`` and a
    markdown report to ``out_markdown``: headline lines (each finetune run against the scratch run with the
    same ``nlq_fraction`` on val R1@0.3), then one table per (split, mode) of mean ± std over seeds (sample
    std, ddof 1). Predictor names without the ``vslnet_`` prefix are baselines. ``synthetic``: say in the
    report that the numbers come from synthetic (demo) data. Returns the rows.
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
    write_parquet(table, out_parquet, EXPERIMENT_METRICS)
    df = table.to_pandas()
    write_text(experiments_markdown(df, runs, synthetic=synthetic), out_markdown)
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
