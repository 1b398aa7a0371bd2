"""Training VSLNet: NLQ from scratch, NaQ-style pre-training and fine-tuning (vslnet.md 6-8, naq.md 2-3).

:func:`train` runs one training of a :class:`~egonlq.grounding.train_spec.TrainSpec`:

- AdamW (betas 0.9/0.999, eps 1e-6; no weight decay for biases and LayerNorm parameters), a linear warmup
  over ``warmup_proportion`` of the steps then a linear decay to 0, both stepped per batch; gradients clipped
  at global norm ``clip_norm``; the loss of ``VSLNet.loss`` (span CE + ``highlight_lambda`` x highlight BCE).
- One epoch = the training records in an order drawn from ``torch.Generator().manual_seed(seed + epoch)``,
  cut into batches of ``batch_size`` (the last one partial). After a step, the model is evaluated on val
  when ``step % max(1, batches_per_epoch // eval_per_epoch) == 0`` or at the end of an epoch: val
  predictions (:func:`egonlq.grounding.predict.predict_records`, the code that predicts any split) scored by
  the OFFICIAL metric; the weights are saved when val R@1 at IoU 0.3 is ``>=`` the best so far (ties move
  forward; a NaN score ranks below any number and ties with NaN).
- Stages: ``scratch`` (random init, NLQ), ``pretrain`` (random init; synthetic sources with or without NLQ;
  jittering allowed), ``finetune`` (weights ONLY from ``init_from``: fresh optimizer and schedule; no
  jittering).

Outputs in ``out_dir``: ``model.safetensors`` + ``config.json`` (the best weights, for
``VSLNet.from_pretrained``), ``best_val_predictions.json``, ``metrics.csv`` (one row per evaluation),
``train_spec.json`` (the spec and where everything came from), ``summary.json`` and ``last.pt``.

Resuming: :func:`train` on an ``out_dir`` holding a ``last.pt`` of the same run (:mod:`egonlq.grounding.
train_state`: same spec, records, input files and code) continues it from its last evaluation and ends with
exactly the metrics and weights of an uninterrupted run; a stale ``last.pt`` is ignored (logged).
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import random
import time
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.utils.deterministic
from torch import nn

from egonlq.errors import InputError
from egonlq.evaluation.metric import DEFAULT_KS, DEFAULT_THRESHOLDS, EvalResult, evaluate, load_ground_truth
from egonlq.evaluation.predictions import write_predictions
from egonlq.grounding.nlq_dataset import (
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
from egonlq.grounding.train_spec import TrainSpec
from egonlq.grounding.train_state import LAST_STATE, load_state, run_fingerprint, save_state, set_rng_states
from egonlq.grounding.vslnet import WEIGHTS_NAME, VSLNet, VSLNetConfig
from egonlq.io import write_json, write_text
from egonlq.progress import tqdm

logger = logging.getLogger(__name__)

BEST_METRIC = "R1@0.3"
NUM_WINDOWS = 5


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


class TransformersV4AdamW(torch.optim.Optimizer):
    """AdamW as ``transformers.AdamW`` 4.x (``correct_bias=True``) computes it: the official VSLNet optimizer.

    It differs from ``torch.optim.AdamW`` in two places: ``eps`` is added to ``sqrt(v)`` before the bias
    correction (torch adds it after, to ``sqrt(v / (1 - beta2^t))``), and the decay ``p -= lr * wd * p`` is
    applied after the Adam update, to the updated weights (torch decays first).
    """

    def __init__(self, params, lr: float, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-6):
        super().__init__(params, {"lr": lr, "betas": betas, "eps": eps, "weight_decay": 0.0})

    @torch.no_grad()
    def step(self, closure=None):  # noqa: ANN001, ANN201 - torch's signature
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state.update(step=0, exp_avg=torch.zeros_like(p), exp_avg_sq=torch.zeros_like(p))
                state["step"] += 1
                state["exp_avg"].mul_(beta1).add_(p.grad, alpha=1 - beta1)
                state["exp_avg_sq"].mul_(beta2).addcmul_(p.grad, p.grad, value=1 - beta2)
                denom = state["exp_avg_sq"].sqrt().add_(group["eps"])
                t = state["step"]
                step_size = group["lr"] * math.sqrt(1 - beta2**t) / (1 - beta1**t)
                p.addcdiv_(state["exp_avg"], denom, value=-step_size)
                if group["weight_decay"] > 0.0:
                    p.add_(p, alpha=-group["lr"] * group["weight_decay"])


def make_optimizer(model: nn.Module, lr: float, weight_decay: float, compat: str) -> torch.optim.Optimizer:
    """torch's AdamW (``compat="egonlq"``) or :class:`TransformersV4AdamW` (``"official"``), both over
    :func:`param_groups` with betas 0.9/0.999 and eps 1e-6.

    torch's AdamW is its fused kernel on CPU and CUDA: one call for all parameters instead of a dozen small
    ops per tensor (~7x faster on CPU, a tenth of a demo training step; the same update up to rounding).
    """
    groups = param_groups(model, weight_decay)
    if compat == "official":
        return TransformersV4AdamW(groups, lr=lr, betas=(0.9, 0.999), eps=1e-6)
    device = next(model.parameters()).device.type
    fused = True if device in ("cpu", "cuda") else None
    return torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.999), eps=1e-6, fused=fused)


class _PerTensorGradients:
    """Gradients as the official code handles them: set to None before each step, clipped by
    ``clip_grad_norm_`` (a norm and a product per tensor)."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model

    def zero(self) -> None:
        for p in self.model.parameters():
            p.grad = None

    def clip(self, max_norm: float) -> None:
        nn.utils.clip_grad_norm_(self.model.parameters(), max_norm)


class _FlatGradients:
    """Every parameter's gradient is a view of one buffer (backward adds into it in place), so zeroing and
    clipping are one kernel each instead of one per tensor: ~0.9 ms of a 32 ms demo step on CPU (issue 15).
    The clipping is ``clip_grad_norm_``'s (``max_norm / (norm + 1e-6)``, at most 1), the norm summed in
    another order. Every parameter of VSLNet takes part in every step, so a zero gradient never stands
    for a missing one."""

    def __init__(self, model: nn.Module) -> None:
        params = [p for p in model.parameters() if p.requires_grad]
        self.buffer = torch.zeros(
            sum(p.numel() for p in params), dtype=params[0].dtype, device=params[0].device
        )
        offset = 0
        for p in params:
            p.grad = self.buffer[offset : offset + p.numel()].view_as(p)
            offset += p.numel()

    def zero(self) -> None:
        self.buffer.zero_()

    def clip(self, max_norm: float) -> None:
        norm = torch.linalg.vector_norm(self.buffer)
        self.buffer.mul_(torch.clamp(max_norm / (norm + 1e-6), max=1.0))


def linear_schedule(warmup_steps: int, total_steps: int):
    """LR factor: ``step / warmup`` during warmup, then linear to 0 at ``total_steps`` (transformers')."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return step / max(1, warmup_steps)
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup_steps))

    return factor


@contextlib.contextmanager
def deterministic(device: torch.device) -> Iterator[None]:
    """Deterministic kernels (warn where none exists) and cuDNN without autotuning, restored afterwards.

    Deterministic mode would also fill every new tensor's memory with NaN (torch's
    ``fill_uninitialized_memory``, a debugging aid against kernels that read memory they never wrote): one
    extra kernel per allocation, a few % of a training step on the demo's model. It is switched off here:
    every kernel used writes its output in full, so results are the same bit for bit (the reproducibility
    tests train twice and compare)."""
    before = (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
        torch.backends.cudnn.deterministic,
        torch.backends.cudnn.benchmark,
        torch.utils.deterministic.fill_uninitialized_memory,
    )
    if device.type == "cuda":
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    _set_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    torch.utils.deterministic.fill_uninitialized_memory = False
    try:
        yield
    finally:
        _set_deterministic_algorithms(before[0], warn_only=before[1])
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = before[2], before[3]
        torch.utils.deterministic.fill_uninitialized_memory = before[4]


def _set_deterministic_algorithms(mode: bool, *, warn_only: bool) -> None:
    """``torch.use_deterministic_algorithms`` without its import of ``torch._inductor.config`` (sympy and
    dynamo: ~2.4 s of every training job, for a compiler setting nothing here uses); the public call where
    this torch lacks the private one."""
    setter = getattr(torch._C, "_set_deterministic_algorithms", None)
    if setter is None:
        torch.use_deterministic_algorithms(mode, warn_only=warn_only)
    else:
        setter(mode, warn_only=warn_only)


def _resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def _seed_all(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # CUDA too


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
    provenance: Mapping[str, Any] | None = None,
    compat: str = "egonlq",
) -> dict:
    """Train VSLNet by ``spec`` and keep the best weights on val (see the module docstring).

    ``train_queries``: a TRAINING_QUERIES (or NLQ train QUERIES) table, ``train_clips`` its clip table,
    ``train_features`` the clip features; ``val_*`` the same for the NLQ val split plus its annotated JSON
    ``val_gt`` for the official metric. ``text_cache``: the text cache (needed when ``spec.text ==
    "cache"``), built by the encoder in ``text_model``. ``init_from``: the checkpoint folder whose weights
    start a ``finetune`` (required there, refused elsewhere). ``device``: ``auto`` (CUDA when available),
    ``cpu``, ``cuda``, ... ``stop_after_steps``: return after that many steps (counted from step 0), as an
    interruption would; ``last.pt`` keeps the state of the last evaluation. ``restart``: ignore a
    ``last.pt`` instead of resuming it. ``provenance``: the resolved config sections and the preflight's
    data fingerprint (``egonlq.data.provenance``), recorded in ``train_spec.json``. ``compat``: ``"egonlq"``
    or ``"official"``, the published code's details (padded text outputs kept, encoder dropout while
    training, :class:`TransformersV4AdamW`); official needs ``spec.text == "encoder"``.

    Bad input raises :class:`InputError` before any training step: features or text of the wrong size, a
    text missing from the cache, an unreadable or mismatching ``init_from``, no training query left, a
    synthetic source of the spec that matches no training query.

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
    _check_sources(spec, train_records, train_queries)
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
        spec.text,
        text_cache=text_cache,
        text_model=text_model,
        max_len=config.max_pos_len,
        device=dev,
        compat=compat,
    )
    for records in (train_records, val_records):
        check_text(
            records, text, text_dim=config.text_dim, where=text_cache if spec.text == "cache" else text_model
        )
    gt = load_ground_truth(val_gt)
    inputs = {
        "train_queries": train_queries,
        "train_clips": train_clips,
        "train_features": train_features,
        "val_queries": val_queries,
        "val_clips": val_clips,
        "val_features": val_features,
        "val_gt": val_gt,
        **({"text_cache": text_cache} if spec.text == "cache" else {}),
        **({"init_from": init_from} if init_from is not None else {}),
    }
    fingerprint = run_fingerprint(
        spec.to_dict() | {"compat": compat},
        train_records,
        val_records,
        inputs | ({"init_from": Path(init_from) / WEIGHTS_NAME} if init_from is not None else {}),
    )
    write_json(
        {
            "spec": spec.to_dict(),
            "inputs": {name: str(Path(p).resolve()) for name, p in inputs.items()},
            "text_encoder": text_provenance(text, text_model),
            "label_mode": spec.label_mode,
            "data_fingerprint": fingerprint["data"],
            "train_stats": train_records.stats,
            "val_stats": val_records.stats,
            "device": str(dev),
            "torch": torch.__version__,
            **({"provenance": dict(provenance)} if provenance is not None else {}),
        },
        out_dir / TRAIN_SPEC_NAME,
        indent=2,
    )
    with deterministic(dev):
        run = _Run(spec, train_records, val_records, text, gt, out_dir, dev, init_state, fingerprint, compat)
        if not restart:
            run.resume()
        return run.loop(progress=progress, stop_after_steps=stop_after_steps)


def _check_sources(spec: TrainSpec, records: Records, path: Path) -> None:
    """Refuse a spec whose training data are missing: no record at all, or a synthetic source pattern that
    matches no record (a pretrain run would otherwise train on NLQ alone and be reported as pre-training)."""
    stats = records.stats
    if len(records) == 0:
        raise InputError(
            path,
            f"no training query left (sources {list(spec.train_sources)}, stats {stats})",
            expected="at least one training query",
        )
    for pattern in spec.sources:
        if not any(fnmatchcase(source, pattern) for source in stats["per_source"]):
            raise InputError(
                path,
                f"source {pattern!r} of the spec matches no training query "
                f"(queries per source in the table: {stats['sources_in']}; kept after filters: "
                f"{stats['per_source']})",
                field="source",
                expected=f"a source with training queries, one of {sorted(stats['sources_in'])}",
            )


@dataclass
class _Schedule:
    """Step counts of a run: ``eval_period`` steps between evaluations (and one at each epoch's end)."""

    batches_per_epoch: int
    total_steps: int
    eval_period: int

    @classmethod
    def of(cls, spec: TrainSpec, n_train: int) -> _Schedule:
        batches_per_epoch = math.ceil(n_train / spec.batch_size)
        return cls(
            batches_per_epoch,
            spec.epochs * batches_per_epoch,
            max(1, batches_per_epoch // spec.eval_per_epoch),
        )

    def evaluates_after(self, step: int) -> bool:
        return step % self.eval_period == 0 or step % self.batches_per_epoch == 0


class _Run:
    """One training: the model, its optimizer and schedule, the progress counters and the best so far."""

    def __init__(
        self,
        spec: TrainSpec,
        train_records: Records,
        val_records: Records,
        text: TextSource,
        gt: Any,
        out_dir: Path,
        dev: torch.device,
        init_state: dict | None,
        fingerprint: dict[str, Any],
        compat: str = "egonlq",
    ) -> None:
        self.spec, self.train_records, self.val_records = spec, train_records, val_records
        self.text, self.gt, self.out_dir, self.dev, self.fingerprint = text, gt, out_dir, dev, fingerprint
        _seed_all(spec.seed)
        self.model = VSLNet(spec.model)
        if init_state is not None:
            self.model.load_state_dict(init_state)
        self.model.to(dev).train()
        self.schedule = _Schedule.of(spec, len(train_records))
        total = self.schedule.total_steps
        self.optimizer = make_optimizer(self.model, spec.lr, spec.weight_decay, compat)
        self.gradients = (
            _PerTensorGradients(self.model) if compat == "official" else _FlatGradients(self.model)
        )
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, linear_schedule(int(spec.warmup_proportion * total), total)
        )
        self.dataset = NLQDataset(
            train_records,
            jitter_factor=spec.jitter_factor,
            jitter_sources=spec.jitter_sources,
            extend=spec.model.extend,
            seed=spec.seed,
        )
        self.progress: dict[str, Any] = {
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
        self.best_weights: dict[str, torch.Tensor] | None = None
        self.resumed_from: int | None = None

    def resume(self) -> None:
        """Continue from ``last.pt`` when it belongs to this run; write again the outputs it implies (the
        workflow deletes them before a rerun)."""
        path = self.out_dir / LAST_STATE
        if not path.is_file():
            return
        saved, why_not = load_state(path, self.fingerprint)
        if saved is None:
            logger.warning("not resuming %s: %s; starting over", path, why_not)
            return
        self.model.load_state_dict(saved["model"])
        self.optimizer.load_state_dict(saved["optimizer"])
        self.scheduler.load_state_dict(saved["scheduler"])
        self.progress, self.best_weights = saved["progress"], saved["best_weights"]
        self.resumed_from = self.progress["step"]
        if self.best_weights is not None:
            best = VSLNet(self.spec.model)  # draws from the random generators: restored below
            best.load_state_dict(self.best_weights)
            best.save_pretrained(self.out_dir)
        self._write_history()
        set_rng_states(saved["rng"], self.dataset)
        logger.info(
            "resuming %s at step %d (epoch %d, batch %d)",
            path,
            self.progress["step"],
            self.progress["epoch"],
            self.progress["batch"],
        )

    def loop(self, *, progress: bool, stop_after_steps: int | None) -> dict:
        """Train to the last epoch (or ``stop_after_steps``), evaluating on the schedule."""
        spec, schedule, state = self.spec, self.schedule, self.progress
        n_train = len(self.train_records)
        logger.info(
            "training on %d queries (%s), %d batches per epoch, %d steps, evaluation every %d steps on "
            "%d val queries, device %s",
            n_train,
            self.train_records.stats["per_source"],
            schedule.batches_per_epoch,
            schedule.total_steps,
            schedule.eval_period,
            len(self.val_records),
            self.dev,
        )
        sums = {"loss": 0.0, "loss_span": 0.0, "loss_highlight": 0.0}
        n_since_eval = 0
        bar = tqdm(
            total=schedule.total_steps,
            initial=state["step"],
            desc="train",
            unit="step",
            disable=None if progress else True,
        )
        tick = time.perf_counter()
        self.text.prepare([*self.train_records.text, *self.val_records.text])  # timed: part of training
        try:
            while state["epoch"] < spec.epochs:
                epoch = state["epoch"]
                order = torch.randperm(
                    n_train, generator=torch.Generator().manual_seed(spec.seed + epoch)
                ).tolist()
                for b in range(state["batch"], schedule.batches_per_epoch):
                    indices = order[b * spec.batch_size : (b + 1) * spec.batch_size]
                    losses, lr = self._step(indices)
                    for key, value in zip(sums, losses, strict=True):
                        sums[key] += value
                    n_since_eval += 1
                    state["step"] += 1
                    state["samples"] += len(indices)
                    last_batch = b + 1 == schedule.batches_per_epoch
                    state["epoch"], state["batch"] = (epoch + 1, 0) if last_batch else (epoch, b + 1)
                    bar.update(1)
                    step = state["step"]
                    if schedule.evaluates_after(step):
                        now = time.perf_counter()
                        state["train_seconds"] += now - tick
                        means = {k: v / n_since_eval for k, v in sums.items()}
                        self._evaluation(epoch, means, lr)
                        bar.set_postfix(
                            loss=f"{means['loss']:.3f}", r1=f"{state['history'][-1][BEST_METRIC]:.3f}"
                        )
                        sums = dict.fromkeys(sums, 0.0)
                        n_since_eval = 0
                        tick = time.perf_counter()
                        state["eval_seconds"] += tick - now
                    if stop_after_steps is not None and step >= stop_after_steps:
                        logger.info("stopping after %d steps, as asked", step)
                        return {"completed": False, "steps": step, "total_steps": schedule.total_steps}
        finally:
            bar.close()
        return self._summary()

    def _step(self, indices: list[int]) -> tuple[list[float], float]:
        """One optimizer step on the records ``indices``; the losses and the learning rate it used."""
        batch = collate([self.dataset[i] for i in indices], self.text, training=True).to(self.dev)
        with torch.autocast(self.dev.type, dtype=torch.bfloat16, enabled=self.spec.precision == "bf16"):
            out = self.model(batch.video, batch.video_mask, batch.text, batch.text_mask)
            loss = self.model.loss(out, batch.s_ind, batch.e_ind, batch.video_mask, batch.highlight)
        self.gradients.zero()
        loss.total.backward()
        self.gradients.clip(self.spec.clip_norm)
        lr = self.scheduler.get_last_lr()[0]
        self.optimizer.step()
        self.scheduler.step()
        return [value.item() for value in loss], lr

    def _evaluation(self, epoch: int, losses: dict[str, float], lr: float) -> None:
        """Score val, keep the weights when they are the best so far, log the row and save ``last.pt``."""
        state, out_dir = self.progress, self.out_dir
        scratch = out_dir / ".val_predictions.json"
        eval_batch = self.spec.eval_batch_size or self.spec.batch_size
        result = _evaluate(
            self.model, self.val_records, self.text, self.gt, scratch, batch_size=eval_batch, device=self.dev
        )
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
            self.model.save_pretrained(out_dir)
            self.best_weights = {k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()}
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
        seconds = state["train_seconds"] + state["eval_seconds"]
        state["history"].append(_metrics_row(state["step"], epoch, losses, lr, result, best, seconds))
        self._write_history()
        save_state(
            out_dir / LAST_STATE,
            fingerprint=self.fingerprint,
            model=self.model,
            optimizer=self.optimizer,
            scheduler=self.scheduler,
            dataset=self.dataset,
            progress=state,
            best_weights=self.best_weights,
        )

    def _write_history(self) -> None:
        write_text(pd.DataFrame(self.progress["history"]).to_csv(index=False), self.out_dir / "metrics.csv")

    def _summary(self) -> dict:
        state, schedule = self.progress, self.schedule
        summary = {
            "completed": True,
            "best_step": state["best_step"],
            "best_epoch": state["best_epoch"],
            "best": state["best"],
            "steps": state["step"],
            "total_steps": schedule.total_steps,
            "batches_per_epoch": schedule.batches_per_epoch,
            "eval_period": schedule.eval_period,
            "evaluations": len(state["history"]),
            "train_queries": len(self.train_records),
            "val_queries": len(self.val_records),
            "samples_trained": state["samples"],
            "train_seconds": round(state["train_seconds"], 3),
            "eval_seconds": round(state["eval_seconds"], 3),
            "queries_per_second": round(state["samples"] / max(state["train_seconds"], 1e-9), 2),
            "resumed_from_step": self.resumed_from,
            "device": str(self.dev),
            "train_stats": self.train_records.stats,
            "val_stats": self.val_records.stats,
        }
        write_json(summary, self.out_dir / "summary.json", indent=2)
        logger.info(
            "best val %s %.4f at step %s; %.1f queries/s",
            BEST_METRIC,
            state["best_score"],
            state["best_step"],
            summary["queries_per_second"],
        )
        return summary
