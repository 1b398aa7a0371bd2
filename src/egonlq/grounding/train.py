"""Training VSLNet: NLQ from scratch, NaQ-style pre-training and fine-tuning (vslnet.md 6-8, naq.md 2-3).

:class:`TrainSpec` holds every setting that changes the results; :func:`train` runs one training:

- AdamW (betas 0.9/0.999, eps 1e-6; no weight decay for biases and LayerNorm parameters), a linear warmup
  over ``warmup_proportion`` of the steps then a linear decay to 0, both stepped per batch; gradients clipped
  at global norm ``clip_norm``; the loss of ``VSLNet.loss`` (span CE + ``highlight_lambda`` x highlight BCE).
- One epoch = the training records in an order drawn from ``torch.Generator().manual_seed(seed + epoch)``,
  cut into batches of ``batch_size`` (the last one partial). After a step, the model is evaluated on val
  when ``step % max(1, batches_per_epoch // eval_per_epoch) == 0`` or at the end of an epoch: val
  predictions (:func:`egonlq.grounding.predict.predict_records`, the code that predicts any split) scored by
  the
  OFFICIAL metric; the weights are saved when val R@1 at IoU 0.3 is ``>=`` the best so far (ties move
  forward; a NaN score ranks below any number and ties with NaN).
- Stages: ``scratch`` (random init, NLQ), ``pretrain`` (random init; synthetic sources with or without NLQ;
  jittering allowed), ``finetune`` (weights ONLY from ``init_from``: fresh optimizer and schedule; no
  jittering).

Outputs in ``out_dir``: ``model.safetensors`` + ``config.json`` (the best weights, for
``VSLNet.from_pretrained``), ``best_val_predictions.json``, ``metrics.csv`` (one row per evaluation),
``train_spec.json`` (the spec and where everything came from), ``summary.json`` and ``last.pt``.

Resuming: ``last.pt`` (written atomically at every evaluation) holds the model, optimizer, scheduler, every
random state (python, numpy, torch, CUDA, the jitter generator), the step and the position in the epoch's
order, the best so far and the metrics history. :func:`train` on an ``out_dir`` holding one resumes it when
the spec and the data match, and ends with exactly the metrics and weights of an uninterrupted run.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
import os
import random
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm import tqdm

from egonlq.errors import InputError
from egonlq.evaluation.metric import DEFAULT_KS, DEFAULT_THRESHOLDS, EvalResult, evaluate, load_ground_truth
from egonlq.evaluation.predictions import write_predictions
from egonlq.grounding.nlq_dataset import (
    TEXT_SOURCES,
    NLQDataset,
    Records,
    TextSource,
    check_text,
    collate,
    load_records,
    make_text_source,
    text_provenance,
)
from egonlq.grounding.predict import TRAIN_SPEC_NAME, predict_records
from egonlq.grounding.spans import LABEL_MODES
from egonlq.grounding.vslnet import VSLNet, VSLNetConfig
from egonlq.io import atomic_path, write_json, write_text

logger = logging.getLogger(__name__)

STAGES = ("scratch", "pretrain", "finetune")
EMPTY_QUERY_SPLITS = ("train", "val")
BEST_METRIC = "R1@0.3"
LAST_STATE = "last.pt"
NUM_WINDOWS = 5
STATE_FORMAT = "egonlq-train-state/1"


@dataclass(frozen=True)
class TrainSpec:
    """Everything that changes a training's results (defaults: the reference NLQ baseline, vslnet.md 7)."""

    stage: str = "scratch"  # scratch | pretrain | finetune
    sources: tuple[str, ...] = ()  # synthetic sources (fnmatch patterns, e.g. "naq", "llm:*"); NLQ: joint_nlq
    joint_nlq: bool = True  # train on the NLQ train queries too
    nlq_fraction: float = 1.0  # few-shot: fraction of NLQ train CLIPS kept (seeded, by clip)
    epochs: int = 200
    batch_size: int = 32
    eval_batch_size: int | None = None  # None: batch_size, like the reference (padding changes results)
    lr: float = 1e-4
    warmup_proportion: float = 0.0
    weight_decay: float = 0.01
    clip_norm: float = 1.0
    jitter_factor: float = 0.0  # 0: off; > 1: NaQ temporal response jittering (2.5 v1, 5.0 NaQ++)
    jitter_sources: tuple[str, ...] = ("naq",)
    label_mode: str = "compatible"  # compatible | corrected (vslnet.md 10)
    remove_empty_queries_from: tuple[str, ...] = ("train",)  # drop |end - start| <= 1/30 s queries
    model: VSLNetConfig = field(default_factory=VSLNetConfig)
    seed: int = 12345
    eval_per_epoch: int = 2  # evaluations per epoch (2: every half epoch, as the reference)
    max_train_queries: int | None = None  # seeded subset of the training queries (demo runs)
    text: str = "cache"  # cache | encoder (the frozen text encoder run on every batch)

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


# ------------------------------------------------------------------------------------------- optimisation


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Two AdamW groups: decayed weights; biases and LayerNorm parameters without decay.

    The reference selects by name (``bias``, ``layer_norm``, ``LayerNorm``); here LayerNorms are found by
    type, since this model names them ``norm``.
    """
    no_decay = {id(p) for m in model.modules() if isinstance(m, nn.LayerNorm) for p in m.parameters()}
    decay, plain = [], []
    for name, p in model.named_parameters():
        (plain if name.endswith("bias") or id(p) in no_decay else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": plain, "weight_decay": 0.0}]


def linear_schedule(warmup_steps: int, total_steps: int):
    """LR factor: ``step / warmup`` during warmup, then linear to 0 at ``total_steps`` (transformers')."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return step / max(1, warmup_steps)
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup_steps))

    return factor


@contextlib.contextmanager
def deterministic(device: torch.device) -> Iterator[None]:
    """Deterministic kernels (warn where none exists) and cuDNN without autotuning, restored afterwards."""
    before = (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
        torch.backends.cudnn.deterministic,
        torch.backends.cudnn.benchmark,
    )
    if device.type == "cuda":
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before[0], warn_only=before[1])
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = before[2], before[3]


def _resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def _seed_all(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # CUDA too


def _rng_states(dataset: NLQDataset) -> dict:
    np_state = np.random.get_state()
    return {
        "python": random.getstate(),
        "numpy": (np_state[0], np_state[1].tolist(), *np_state[2:]),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "jitter": dataset.rng.getstate(),
    }


def _set_rng_states(states: dict, dataset: NLQDataset) -> None:
    random.setstate(states["python"])
    name, keys, *rest = states["numpy"]
    np.random.set_state((name, np.array(keys, dtype=np.uint32), *rest))
    torch.set_rng_state(states["torch"])
    if states["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])
    dataset.rng.setstate(states["jitter"])


def _data_fingerprint(train: Records, val: Records) -> str:
    """What a resumed run must find again: the records in order with their labels."""
    digest = hashlib.sha256()
    for records in (train, val):
        digest.update("\0".join(records.query_uid).encode())
        digest.update(records.s_ind.tobytes() + records.e_ind.tobytes() + records.v_len.tobytes())
    return digest.hexdigest()


# -------------------------------------------------------------------------------------------------- inputs


def _init_weights(init_from: Path, config: VSLNetConfig) -> dict[str, torch.Tensor]:
    """The state dict of the checkpoint in ``init_from``, whose config must equal the spec's model."""
    init = VSLNet.from_pretrained(init_from)  # InputError on a missing or corrupt checkpoint
    theirs, ours = asdict(init.config), asdict(config)
    differ = sorted(k for k in ours if theirs[k] != ours[k])
    if differ:
        raise InputError(
            Path(init_from) / "config.json",
            "initial checkpoint has another model config: " + ", ".join(f"{k}={theirs[k]!r}" for k in differ),
            field=differ[0],
            expected=", ".join(f"{k}={ours[k]!r}" for k in differ),
        )
    return init.state_dict()


def _evaluate(
    model: VSLNet,
    records: Records,
    text: TextSource,
    gt: Any,
    path: Path,
    *,
    batch_size: int,
    device: torch.device,
) -> EvalResult:
    """Predict ``records`` into ``path`` and score it with the official metric."""
    rows = predict_records(model, records, text, k=NUM_WINDOWS, batch_size=batch_size, device=device)
    write_predictions(rows, path, num_windows=NUM_WINDOWS)
    return evaluate(gt, path, mode="official", thresholds=DEFAULT_THRESHOLDS, ks=DEFAULT_KS)


def _score(result: EvalResult) -> float:
    """The checkpoint criterion, R@1 at IoU 0.3, with NaN below every number."""
    r = result.recall[(0.3, 1)]
    return -1.0 if math.isnan(r) else r


def _metrics_row(
    step: int, epoch: int, losses: dict[str, float], lr: float, result: EvalResult, best: bool, seconds: float
) -> dict[str, Any]:
    x, y = result.evaluated()
    row: dict[str, Any] = {"step": step, "epoch": epoch, **losses, "lr": lr}
    row.update({f"R{k}@{t:g}": result.recall[(t, k)] for k in result.ks for t in result.thresholds})
    row.update(
        {"miou": result.miou, "evaluated_x": x, "evaluated_y": y, "best": best, "seconds": round(seconds, 3)}
    )
    return row


def _json_number(x: Any) -> Any:
    return None if isinstance(x, float) and math.isnan(x) else x


# ---------------------------------------------------------------------------------------------------- train


def train(
    spec: TrainSpec,
    *,
    train_queries: Path,
    train_clips: Path,
    train_features: Path,
    val_queries: Path,
    val_clips: Path,
    val_features: Path,
    val_gt: Path,
    text_cache: Path | None,
    text_model: Path,
    out_dir: Path,
    init_from: Path | None = None,
    progress: bool = True,
    device: str = "auto",
    stop_after_steps: int | None = None,
    restart: bool = False,
) -> dict:
    """Train VSLNet by ``spec`` and keep the best weights on val (see the module docstring).

    ``train_queries``: a TRAINING_QUERIES (or NLQ train QUERIES) table, ``train_clips`` its clip table,
    ``train_features`` the clip features; ``val_*`` the same for the NLQ val split plus its annotated JSON
    ``val_gt`` for the official metric. ``text_cache``: the text cache (needed when ``spec.text ==
    "cache"``), built by the encoder in ``text_model``. ``init_from``: the checkpoint folder whose weights
    start a ``finetune`` (required there, refused elsewhere). ``device``: ``auto`` (CUDA when available),
    ``cpu``, ``cuda``, ... ``stop_after_steps``: return after that many steps (counted from step 0), as an
    interruption would; ``last.pt`` keeps the state of the last evaluation. ``restart``: ignore a
    ``last.pt`` instead of resuming it.

    Bad input raises :class:`InputError` before any training step: features or text of the wrong size, a
    text missing from the cache, an unreadable or mismatching ``init_from``, no training query left, a
    ``last.pt`` of another spec or data.

    Returns the summary (also ``summary.json`` when the run completes): ``completed``, ``best_step``,
    ``best_epoch``, ``best`` (val metrics of the best step), ``steps``, ``total_steps``,
    ``batches_per_epoch``, ``eval_period``, ``evaluations``, ``train_queries``, ``val_queries``,
    ``samples_trained``, ``train_seconds``, ``eval_seconds``, ``queries_per_second``, ``resumed_from_step``,
    ``device``, ``train_stats`` / ``val_stats`` (the record loading stats).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    dev = _resolve_device(device)
    if spec.stage == "finetune" and init_from is None:
        raise InputError(
            None, "stage 'finetune' needs init_from (the best pre-training checkpoint)", field="init_from"
        )
    if spec.stage != "finetune" and init_from is not None:
        raise InputError(
            init_from,
            f"stage {spec.stage!r} starts from random weights; init_from is only for 'finetune'",
            field="init_from",
        )
    init_state = _init_weights(Path(init_from), spec.model) if init_from is not None else None
    config = spec.model
    train_records = load_records(
        train_queries,
        train_clips,
        train_features,
        max_pos_len=config.max_pos_len,
        label_mode=spec.label_mode,
        video_dim=config.video_dim,
        require_labels=True,
        sources=spec.train_sources,
        nlq_fraction=spec.nlq_fraction,
        remove_zero_length="train" in spec.remove_empty_queries_from,
        max_queries=spec.max_train_queries,
        seed=spec.seed,
        progress=progress,
    )
    if len(train_records) == 0:
        raise InputError(
            train_queries,
            f"no training query left (sources {list(spec.train_sources)}, stats {train_records.stats})",
            expected="at least one training query",
        )
    val_records = load_records(
        val_queries,
        val_clips,
        val_features,
        max_pos_len=config.max_pos_len,
        label_mode=spec.label_mode,
        video_dim=config.video_dim,
        remove_zero_length="val" in spec.remove_empty_queries_from,
        progress=progress,
    )
    if len(val_records) == 0:
        logger.warning("no val query to evaluate: every val score will be NaN")
    text = make_text_source(
        spec.text, text_cache=text_cache, text_model=text_model, max_len=config.max_pos_len, device=dev
    )
    for records in (train_records, val_records):
        check_text(
            records, text, text_dim=config.text_dim, where=text_cache if spec.text == "cache" else text_model
        )
    gt = load_ground_truth(val_gt)
    data_fingerprint = _data_fingerprint(train_records, val_records)

    write_json(
        {
            "spec": spec.to_dict(),
            "inputs": {
                name: str(Path(p).resolve())
                for name, p in (
                    ("train_queries", train_queries),
                    ("train_clips", train_clips),
                    ("train_features", train_features),
                    ("val_queries", val_queries),
                    ("val_clips", val_clips),
                    ("val_features", val_features),
                    ("val_gt", val_gt),
                    *((("text_cache", text_cache),) if spec.text == "cache" else ()),
                    *((("init_from", init_from),) if init_from is not None else ()),
                )
            },
            "text_encoder": text_provenance(text, text_model),
            "label_mode": spec.label_mode,
            "data_fingerprint": data_fingerprint,
            "train_stats": train_records.stats,
            "val_stats": val_records.stats,
            "device": str(dev),
            "torch": torch.__version__,
        },
        out_dir / TRAIN_SPEC_NAME,
        indent=2,
    )

    with deterministic(dev):
        return _run(
            spec,
            train_records,
            val_records,
            text,
            gt,
            out_dir,
            dev,
            init_state=init_state,
            data_fingerprint=data_fingerprint,
            progress=progress,
            stop_after_steps=stop_after_steps,
            restart=restart,
        )


def _run(
    spec: TrainSpec,
    train_records: Records,
    val_records: Records,
    text: TextSource,
    gt: Any,
    out_dir: Path,
    dev: torch.device,
    *,
    init_state: dict | None,
    data_fingerprint: str,
    progress: bool,
    stop_after_steps: int | None,
    restart: bool,
) -> dict:
    _seed_all(spec.seed)
    model = VSLNet(spec.model)
    if init_state is not None:
        model.load_state_dict(init_state)
    model.to(dev).train()
    n_train = len(train_records)
    batches_per_epoch = math.ceil(n_train / spec.batch_size)
    total_steps = spec.epochs * batches_per_epoch
    eval_period = max(1, batches_per_epoch // spec.eval_per_epoch)
    optimizer = torch.optim.AdamW(
        param_groups(model, spec.weight_decay), lr=spec.lr, betas=(0.9, 0.999), eps=1e-6
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, linear_schedule(int(spec.warmup_proportion * total_steps), total_steps)
    )
    dataset = NLQDataset(
        train_records,
        jitter_factor=spec.jitter_factor,
        jitter_sources=spec.jitter_sources,
        extend=spec.model.extend,
        seed=spec.seed,
    )
    eval_batch = spec.eval_batch_size or spec.batch_size
    state: dict[str, Any] = {
        "step": 0,
        "epoch": 0,
        "batch": 0,
        "best_score": -math.inf,
        "best_step": None,
        "best_epoch": None,
        "best": None,
        "history": [],
        "samples": 0,
        "train_seconds": 0.0,
        "eval_seconds": 0.0,
    }
    resumed_from = None
    last_path = out_dir / LAST_STATE
    if last_path.is_file() and not restart:
        saved = _load_state(last_path, spec, data_fingerprint)
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        scheduler.load_state_dict(saved["scheduler"])
        _set_rng_states(saved["rng"], dataset)
        state = saved["progress"]
        resumed_from = state["step"]
        logger.info(
            "resuming %s at step %d (epoch %d, batch %d)",
            last_path,
            state["step"],
            state["epoch"],
            state["batch"],
        )
    logger.info(
        "training on %d queries (%s), %d batches per epoch, %d steps, evaluation every %d steps on "
        "%d val queries, device %s",
        n_train,
        train_records.stats["per_source"],
        batches_per_epoch,
        total_steps,
        eval_period,
        len(val_records),
        dev,
    )

    sums = {"loss": 0.0, "loss_span": 0.0, "loss_highlight": 0.0}
    n_since_eval = 0
    lr = scheduler.get_last_lr()[0]
    bar = tqdm(
        total=total_steps,
        initial=state["step"],
        desc="train",
        unit="step",
        disable=None if progress else True,
    )
    tick = time.perf_counter()
    try:
        while state["epoch"] < spec.epochs:
            epoch = state["epoch"]
            order = torch.randperm(
                n_train, generator=torch.Generator().manual_seed(spec.seed + epoch)
            ).tolist()
            for b in range(state["batch"], batches_per_epoch):
                batch = collate(
                    [dataset[i] for i in order[b * spec.batch_size : (b + 1) * spec.batch_size]], text
                ).to(dev)
                out = model(batch.video, batch.video_mask, batch.text, batch.text_mask)
                loss = model.loss(out, batch.s_ind, batch.e_ind, batch.video_mask, batch.highlight)
                optimizer.zero_grad(set_to_none=True)
                loss.total.backward()
                nn.utils.clip_grad_norm_(model.parameters(), spec.clip_norm)
                lr = scheduler.get_last_lr()[0]
                optimizer.step()
                scheduler.step()
                for key, value in zip(sums, loss, strict=True):
                    sums[key] += value.item()
                n_since_eval += 1
                state["step"] += 1
                state["samples"] += len(batch.index)
                state["epoch"], state["batch"] = (
                    (epoch + 1, 0) if b + 1 == batches_per_epoch else (epoch, b + 1)
                )
                bar.update(1)
                step = state["step"]
                if step % eval_period == 0 or step % batches_per_epoch == 0:
                    now = time.perf_counter()
                    state["train_seconds"] += now - tick
                    losses = {k: v / n_since_eval for k, v in sums.items()}
                    _evaluation(
                        model,
                        optimizer,
                        scheduler,
                        dataset,
                        val_records,
                        text,
                        gt,
                        out_dir,
                        dev,
                        spec=spec,
                        state=state,
                        epoch=epoch,
                        losses=losses,
                        lr=lr,
                        eval_batch=eval_batch,
                        data_fingerprint=data_fingerprint,
                    )
                    bar.set_postfix(
                        loss=f"{losses['loss']:.3f}", r1=f"{state['history'][-1][BEST_METRIC]:.3f}"
                    )
                    sums = dict.fromkeys(sums, 0.0)
                    n_since_eval = 0
                    tick = time.perf_counter()
                    state["eval_seconds"] += tick - now
                if stop_after_steps is not None and step >= stop_after_steps:
                    logger.info("stopping after %d steps, as asked", step)
                    return {"completed": False, "steps": step, "total_steps": total_steps}
    finally:
        bar.close()

    summary = {
        "completed": True,
        "best_step": state["best_step"],
        "best_epoch": state["best_epoch"],
        "best": state["best"],
        "steps": state["step"],
        "total_steps": total_steps,
        "batches_per_epoch": batches_per_epoch,
        "eval_period": eval_period,
        "evaluations": len(state["history"]),
        "train_queries": n_train,
        "val_queries": len(val_records),
        "samples_trained": state["samples"],
        "train_seconds": round(state["train_seconds"], 3),
        "eval_seconds": round(state["eval_seconds"], 3),
        "queries_per_second": round(state["samples"] / max(state["train_seconds"], 1e-9), 2),
        "resumed_from_step": resumed_from,
        "device": str(dev),
        "train_stats": train_records.stats,
        "val_stats": val_records.stats,
    }
    write_json(summary, out_dir / "summary.json", indent=2)
    logger.info(
        "best val %s %.4f at step %s; %.1f queries/s",
        BEST_METRIC,
        state["best_score"],
        state["best_step"],
        summary["queries_per_second"],
    )
    return summary


def _evaluation(
    model: VSLNet,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    dataset: NLQDataset,
    val_records: Records,
    text: TextSource,
    gt: Any,
    out_dir: Path,
    dev: torch.device,
    *,
    spec: TrainSpec,
    state: dict,
    epoch: int,
    losses: dict[str, float],
    lr: float,
    eval_batch: int,
    data_fingerprint: str,
) -> None:
    """Score val, keep the weights when they are the best so far, log the row and save ``last.pt``."""
    scratch = out_dir / ".val_predictions.json"
    result = _evaluate(model, val_records, text, gt, scratch, batch_size=eval_batch, device=dev)
    score = _score(result)
    best = score >= state["best_score"]
    x, y = result.evaluated()
    logger.info(
        "step %d (epoch %d): loss %.4f, val %s %.4f, mIoU %.4f; Evaluated: %d / %d instances%s",
        state["step"],
        epoch,
        losses["loss"],
        BEST_METRIC,
        result.recall[(0.3, 1)],
        result.miou,
        x,
        y,
        " (best)" if best else "",
    )
    if best:
        model.save_pretrained(out_dir)
        os.replace(scratch, out_dir / "best_val_predictions.json")
        state.update(
            best_score=score,
            best_step=state["step"],
            best_epoch=epoch,
            best={k: _json_number(v) for k, v in result.to_dict()["recall"].items()}
            | {"miou": _json_number(result.miou), "evaluated": [x, y]},
        )
    else:
        scratch.unlink()
    state["history"].append(
        _metrics_row(
            state["step"], epoch, losses, lr, result, best, state["train_seconds"] + state["eval_seconds"]
        )
    )
    write_text(pd.DataFrame(state["history"]).to_csv(index=False), out_dir / "metrics.csv")
    with atomic_path(out_dir / LAST_STATE) as tmp:
        torch.save(
            {
                "format": STATE_FORMAT,
                "spec": spec.to_dict(),
                "data_fingerprint": data_fingerprint,
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "rng": _rng_states(dataset),
                "progress": state,
            },
            tmp,
        )


def _load_state(path: Path, spec: TrainSpec, data_fingerprint: str) -> dict:
    """Read ``last.pt`` and check that it continues this spec on these data."""
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated or foreign file: torch raises many kinds
        raise InputError(
            path,
            f"unreadable training state ({type(e).__name__}: {e})",
            expected="a last.pt written by egonlq.grounding.train, or restart=True",
        ) from e
    if not isinstance(saved, dict) or saved.get("format") != STATE_FORMAT:
        raise InputError(path, "not a training state", field="format", expected=STATE_FORMAT)
    ours = spec.to_dict()
    differ = sorted(k for k in ours if saved["spec"].get(k) != ours[k])
    if differ:
        raise InputError(
            path,
            "the saved training state belongs to another spec: "
            + "; ".join(f"{k}: saved {saved['spec'].get(k)!r}, now {ours[k]!r}" for k in differ),
            field=differ[0],
            expected="the same spec, or restart=True to start over",
        )
    if saved["data_fingerprint"] != data_fingerprint:
        raise InputError(
            path,
            "the saved training state was trained on other records (inputs changed)",
            field="data_fingerprint",
            expected="the same inputs, or restart=True to start over",
        )
    return saved
