"""VSLNet experiments: the runs listed in config.yaml as typed :class:`RunSpec` objects (their metrics are
gathered by :mod:`egonlq.grounding.experiment_table`).

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
        precision: fp32         # fp32 | bf16 (bfloat16 autocast of the training steps)
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
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

from egonlq.errors import InputError

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


def source_matches(source: str, patterns: Collection[str]) -> bool:
    """Whether ``source`` matches one of the ``fnmatch`` patterns (``"naq"``, ``"llm:*"``, ...)."""
    return any(fnmatchcase(source, p) for p in patterns)


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
