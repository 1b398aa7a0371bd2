"""The settings of one VSLNet training (:class:`TrainSpec`): everything that changes its results.

Defaults are the reference NLQ baseline (vslnet.md 7, :data:`egonlq.grounding.presets.REFERENCE`); the
workflow builds a spec per run and seed from ``config.yaml`` (:mod:`egonlq.grounding.experiments`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from egonlq.grounding.nlq_dataset import TEXT_SOURCES
from egonlq.grounding.presets import REFERENCE
from egonlq.grounding.spans import LABEL_MODES
from egonlq.grounding.vslnet import VSLNetConfig

STAGES = ("scratch", "pretrain", "finetune")
EMPTY_QUERY_SPLITS = ("train", "val")


PRECISIONS = ("fp32", "bf16")


@dataclass(frozen=True)
class TrainSpec:
    """Everything that changes a training's results (defaults: the reference NLQ baseline, vslnet.md 7)."""

    stage: str = "scratch"  # scratch | pretrain | finetune
    sources: tuple[str, ...] = ()  # synthetic sources (fnmatch patterns, e.g. "naq", "llm:*"); NLQ: joint_nlq
    joint_nlq: bool = True  # train on the NLQ train queries too
    nlq_fraction: float = 1.0  # few-shot: fraction of NLQ train CLIPS kept (seeded, by clip)
    epochs: int = REFERENCE["train"]["epochs"]
    batch_size: int = REFERENCE["train"]["batch_size"]
    eval_batch_size: int | None = None  # None: batch_size, like the reference (padding changes results)
    lr: float = REFERENCE["train"]["lr"]
    warmup_proportion: float = REFERENCE["train"]["warmup_proportion"]
    weight_decay: float = 0.01
    clip_norm: float = 1.0
    jitter_factor: float = 0.0  # 0: off; > 1: NaQ temporal response jittering (2.5 v1, 5.0 NaQ++)
    jitter_sources: tuple[str, ...] = ("naq",)
    label_mode: str = "compatible"  # compatible | corrected (vslnet.md 10)
    remove_empty_queries_from: tuple[str, ...] = ("train",)  # drop |end - start| <= 1/30 s queries
    model: VSLNetConfig = field(default_factory=VSLNetConfig)
    seed: int = 12345
    eval_per_epoch: int = REFERENCE["train"]["eval_per_epoch"]  # 2: every half epoch, as the reference
    max_train_queries: int | None = None  # seeded subset of the training queries (demo runs)
    text: str = "cache"  # cache | encoder (the frozen text encoder run on every batch)
    # fp32 | bf16: the training steps under bfloat16 autocast (~1.4x faster CPU steps on CPUs with bf16
    # instructions; weights, optimizer and evaluation stay fp32)
    precision: str = "fp32"

    def __post_init__(self) -> None:
        object.__setattr__(self, "sources", tuple(self.sources))
        object.__setattr__(self, "jitter_sources", tuple(self.jitter_sources))
        object.__setattr__(self, "remove_empty_queries_from", tuple(self.remove_empty_queries_from))
        problems = []
        if self.stage not in STAGES:
            problems.append(f"stage {self.stage!r} is not one of {STAGES}")
        if "nlq" in self.sources:
            problems.append("sources lists 'nlq': NLQ train queries are selected by joint_nlq")
        if not self.sources and not self.joint_nlq:
            problems.append("no training data: sources is empty and joint_nlq is false")
        if not 0.0 <= self.nlq_fraction <= 1.0:
            problems.append(f"nlq_fraction {self.nlq_fraction} is not in [0, 1]")
        if self.jitter_factor and self.jitter_factor <= 1:
            problems.append(f"jitter_factor {self.jitter_factor} must be 0 (off) or > 1")
        if self.stage == "finetune" and self.jitter_factor:
            problems.append("stage 'finetune' trains without jittering (naq.md 3): set jitter_factor 0")
        if self.label_mode not in LABEL_MODES:
            problems.append(f"label_mode {self.label_mode!r} is not one of {LABEL_MODES}")
        if not set(self.remove_empty_queries_from) <= set(EMPTY_QUERY_SPLITS):
            problems.append(
                f"remove_empty_queries_from {self.remove_empty_queries_from} not within {EMPTY_QUERY_SPLITS}"
            )
        if self.precision not in PRECISIONS:
            problems.append(f"precision {self.precision!r} is not one of {PRECISIONS}")
        if self.text not in TEXT_SOURCES:
            problems.append(f"text {self.text!r} is not one of {TEXT_SOURCES}")
        for name in ("epochs", "batch_size", "eval_per_epoch"):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be >= 1")
        if self.eval_batch_size is not None and self.eval_batch_size < 1:
            problems.append("eval_batch_size must be >= 1 (or None)")
        if self.max_train_queries is not None and self.max_train_queries < 1:
            problems.append("max_train_queries must be >= 1 (or None)")
        if not 0.0 <= self.warmup_proportion <= 1.0:
            problems.append(f"warmup_proportion {self.warmup_proportion} is not in [0, 1]")
        if not (self.lr > 0 and self.weight_decay >= 0 and self.clip_norm > 0):
            problems.append("need lr > 0, weight_decay >= 0, clip_norm > 0")
        if problems:
            raise ValueError("invalid TrainSpec: " + "; ".join(problems))

    @property
    def train_sources(self) -> tuple[str, ...]:
        """The source patterns of the training queries."""
        return (*self.sources, *(("nlq",) if self.joint_nlq else ()))

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe (tuples become lists); :meth:`from_dict` inverts it."""
        d = asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainSpec:
        """From plain values (e.g. the config); ``model`` is a dict of :class:`VSLNetConfig` fields."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown TrainSpec keys {unknown}; known: {sorted(known)}")
        d = dict(d)
        if isinstance(d.get("model"), dict):
            d["model"] = VSLNetConfig(**d["model"])
        return cls(**d)
