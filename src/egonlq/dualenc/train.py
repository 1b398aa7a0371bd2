"""Training the dual encoder contrastively, on one process or under ``torchrun`` (DistributedDataParallel).

- Items are the windows of the selected pairs (:func:`egonlq.dualenc.pairs.select_pairs`); an item carrying
  several texts (GT + pseudo) contributes ONE text drawn uniformly at random per fetch (LaViLa).
- ``steps`` optimizer steps (the same for every run, so that runs differ by their data, not their compute).
  One epoch: the items in the order ``torch.randperm`` with seed ``seed + epoch``, cut into global batches of
  ``batch_size`` (the last partial batch dropped, as contrastive training does); rank ``r`` of ``W`` takes the
  ``r``-th contiguous slice of each global batch, so the gathered batch is the global one in order.
- Randomness is a function of (seed, epoch, step): the text draws (numpy) and dropout (``torch.manual_seed``
  before every step). A resumed run therefore needs only the weights, optimizer, schedule and step.
- AdamW (no decay on biases and LayerNorms), linear warmup then linear decay, symmetric InfoNCE
  (:mod:`egonlq.dualenc.loss`), tau fixed at 0.07 unless learned.

Outputs in ``out_dir`` (rank 0 writes, atomically): ``model.safetensors`` + ``config.json`` (final weights),
``metrics.csv`` (mean loss per epoch), ``summary.json``, ``train_spec.json`` and ``last.pt`` (the resumable
state, written every ``save_every`` steps and at the end of every epoch). A run finding a ``last.pt`` of the
same spec and data resumes from it and ends with exactly the weights of an uninterrupted run; one of another
spec or data is set aside (logged) and training starts over.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from egonlq.dualenc.bank import FeatureBank
from egonlq.dualenc.loss import info_nce
from egonlq.dualenc.model import DualEncoder, DualEncoderConfig
from egonlq.dualenc.pairs import read_pairs, select_pairs, source_counts
from egonlq.dualenc.text import PooledTextEncoder, PooledTexts
from egonlq.errors import InputError
from egonlq.grounding.train import deterministic, linear_schedule, param_groups
from egonlq.io import atomic_path, write_json, write_text
from egonlq.progress import tqdm

logger = logging.getLogger(__name__)

LAST_STATE = "last.pt"
STATE_FORMAT = "egonlq-dualenc-state/1"


@dataclass(frozen=True)
class DualEncoderSpec:
    """Everything that changes a training's results."""

    sources: tuple[str, ...] = ("narration",)  # fnmatch patterns over the pairs' sources
    gt_fraction: float = 1.0  # GT narrations kept (nested subsets, by gt_rank)
    steps: int = 600  # optimizer steps, the same for every run whatever its data size
    batch_size: int = 128  # GLOBAL batch (all ranks together)
    lr: float = 1e-3
    weight_decay: float = 0.01
    warmup_proportion: float = 0.1
    seed: int = 0
    save_every: int = 50  # steps between resumable states (also at every epoch end)
    model: DualEncoderConfig = field(default_factory=DualEncoderConfig)

    def __post_init__(self) -> None:
        object.__setattr__(self, "sources", tuple(self.sources))
        problems = []
        if not self.sources:
            problems.append("sources is empty")
        if not 0.0 < self.gt_fraction <= 1.0:
            problems.append(f"gt_fraction {self.gt_fraction} is not in (0, 1]")
        for name in ("steps", "batch_size", "save_every"):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be >= 1")
        if not (self.lr > 0 and self.weight_decay >= 0 and 0 <= self.warmup_proportion <= 1):
            problems.append("need lr > 0, weight_decay >= 0, warmup_proportion in [0, 1]")
        if problems:
            raise ValueError("invalid DualEncoderSpec: " + "; ".join(problems))

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["sources"] = list(self.sources)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DualEncoderSpec:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown DualEncoderSpec keys {unknown}; known: {sorted(known)}")
        d = dict(d)
        if isinstance(d.get("model"), dict):
            d["model"] = DualEncoderConfig(**d["model"])
        return cls(**d)


# ------------------------------------------------------------------------------------------------ the items


@dataclass
class Items:
    """Training items as arrays: the window's rows in the bank, its video id, its candidate texts."""

    item_uid: list[str]
    video_id: torch.Tensor  # [N] int64
    first: torch.Tensor  # [N] int64, first row in the bank
    count: torch.Tensor  # [N] int64, rows of the window
    text_start: np.ndarray  # [N + 1] int64: item i's texts are text_id[text_start[i]:text_start[i + 1]]
    text_id: np.ndarray  # [T] int64: row of each text in the pooled cache (identical texts share it)
    texts: list[str]  # [T] the texts themselves (for an unfrozen encoder)
    sources: dict[str, int]

    def __len__(self) -> int:
        return len(self.item_uid)

    def draw_texts(self, items: np.ndarray, seed: int, epoch: int, step: int) -> np.ndarray:
        """One text per item, uniformly among its texts, as positions into ``text_id``."""
        rng = np.random.default_rng([seed, epoch, step])
        lo, hi = self.text_start[items], self.text_start[items + 1]
        return lo + (rng.random(len(items)) * (hi - lo)).astype(np.int64)

    def fingerprint(self) -> str:
        digest = hashlib.sha256("\0".join(self.item_uid).encode())
        for array in (self.first.numpy(), self.count.numpy(), self.text_start, self.text_id):
            digest.update(array.tobytes())
        return digest.hexdigest()


def build_items(rows: pd.DataFrame, bank: FeatureBank, texts: PooledTexts, *, where: str | Path) -> Items:
    """Group selected pair rows by item (window) into :class:`Items`."""
    rows = rows.sort_values(["video_uid", "timestamp_sec", "item_uid", "source", "text"], kind="stable")
    first_rows = rows.drop_duplicates("item_uid")
    first, count = bank.window_rows(
        first_rows["video_uid"].tolist(),
        first_rows["window_start_sec"].to_numpy(),
        first_rows["window_end_sec"].to_numpy(),
        where=str(where),
    )
    video_codes = {v: i for i, v in enumerate(sorted(set(first_rows["video_uid"])))}
    sizes = rows.groupby("item_uid", sort=False).size().reindex(first_rows["item_uid"]).to_numpy()
    return Items(
        item_uid=first_rows["item_uid"].tolist(),
        video_id=torch.tensor([video_codes[v] for v in first_rows["video_uid"]], dtype=torch.int64),
        first=torch.from_numpy(first),
        count=torch.from_numpy(count),
        text_start=np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64),
        text_id=texts.rows(rows["text"].tolist(), where=where),
        texts=rows["text"].tolist(),
        sources=source_counts(rows),
    )


# ------------------------------------------------------------------------------------------- distribution


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def init_distributed(device: torch.device) -> Dist:
    """Join the process group that ``torchrun`` describes in the environment (one process: no group)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return Dist(dist.get_rank(), dist.get_world_size())


# ---------------------------------------------------------------------------------------------------- train


def train_step(
    model: torch.nn.Module,
    items: Items,
    bank: FeatureBank,
    text_features: torch.Tensor,
    local: np.ndarray,
    picks: np.ndarray,
    *,
    max_rows: int,
    text_encoder: PooledTextEncoder | None = None,
    device: torch.device,
) -> torch.Tensor:
    """Loss of this rank's items ``local`` with their drawn texts ``picks`` (one forward, no backward)."""
    idx = torch.from_numpy(local)
    rows, mask = bank.gather(items.first[idx], items.count[idx], max_rows)
    text_ids = torch.from_numpy(items.text_id[picks])
    if text_encoder is not None:
        pooled = text_encoder.forward([items.texts[p] for p in picks])
    else:
        pooled = text_features[text_ids]
    video, text = model(rows.to(device), mask.to(device), pooled.to(device))
    core = model.module if isinstance(model, DistributedDataParallel) else model
    return info_nce(
        video, text, core.scale(), video_ids=items.video_id[idx].to(device), text_ids=text_ids.to(device)
    )


def train(
    spec: DualEncoderSpec,
    *,
    pairs_path: Path,
    text_cache: Path,
    text_model: Path,
    feature_dir: Path,
    out_dir: Path,
    device: str = "auto",
    progress: bool = True,
    stop_after_steps: int | None = None,
) -> dict:
    """Train by ``spec`` on the pairs of ``pairs_path`` (see the module docstring); returns the summary.

    Bad inputs fail before any training: a pairs table without a pair for the spec's sources, a video
    without its feature file or with features of another dim (``spec.model.video_dim``), a text cache of
    another encoder or size, a text model folder that is not an encoder.
    """
    out_dir = Path(out_dir)
    dev = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device)
    ranks = init_distributed(dev)
    if ranks.world > 1 and dev.type == "cuda":
        dev = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(dev)
    if spec.batch_size % ranks.world:
        raise ValueError(f"batch_size {spec.batch_size} is not divisible by the {ranks.world} processes")
    rows = select_pairs(
        read_pairs(pairs_path), sources=spec.sources, gt_fraction=spec.gt_fraction, where=pairs_path
    )
    text_encoder = None
    if spec.model.unfreeze_layers:
        text_encoder = PooledTextEncoder(text_model, device=str(dev))
        text_encoder.unfreeze(spec.model.unfreeze_layers)
    texts = PooledTexts.load(text_cache, model_path=text_model)
    if texts.hidden_size != spec.model.text_dim:
        raise InputError(
            text_cache,
            f"pooled texts are {texts.hidden_size}-d",
            field="text_dim",
            expected=f"{spec.model.text_dim} (the model config's text_dim)",
        )
    bank = FeatureBank.load(
        feature_dir,
        rows["video_uid"].unique().tolist(),
        dim=spec.model.video_dim,
        progress=progress and ranks.main,
    )
    items = build_items(rows, bank, texts, where=pairs_path)
    fingerprint = items.fingerprint()
    if ranks.main:
        out_dir.mkdir(parents=True, exist_ok=True)
        write_json(
            {
                "spec": spec.to_dict(),
                "pairs": str(Path(pairs_path).resolve()),
                "text_cache": str(text_cache),
                "text_encoder": texts.metadata,
                "feature_dir": str(feature_dir),
                "items": len(items),
                "sources": items.sources,
                "data_fingerprint": fingerprint,
                "world_size": ranks.world,
                "device": str(dev),
                "torch": torch.__version__,
            },
            out_dir / "train_spec.json",
            indent=2,
        )
    with deterministic(dev):
        return _run(
            spec,
            items,
            bank,
            texts,
            text_encoder,
            out_dir,
            dev,
            ranks,
            fingerprint,
            progress,
            stop_after_steps,
        )


def _run(
    spec: DualEncoderSpec,
    items: Items,
    bank: FeatureBank,
    texts: PooledTexts,
    text_encoder: PooledTextEncoder | None,
    out_dir: Path,
    dev: torch.device,
    ranks: Dist,
    fingerprint: str,
    progress: bool,
    stop_after_steps: int | None,
) -> dict:
    torch.manual_seed(spec.seed)
    core = DualEncoder(spec.model, text_encoder.module if text_encoder else None).to(dev)
    model: torch.nn.Module = DistributedDataParallel(core) if ranks.world > 1 else core
    global_batch = min(spec.batch_size, len(items) - len(items) % ranks.world)
    if global_batch < max(2, ranks.world):
        raise InputError(
            None,
            f"only {len(items)} training items: a contrastive batch needs two or more",
            field="items",
            expected=">= 2 items per batch",
        )
    local_batch = global_batch // ranks.world
    per_epoch = len(items) // global_batch
    total = spec.steps
    groups = [
        {**g, "params": [p for p in g["params"] if p.requires_grad]}
        for g in param_groups(core, spec.weight_decay)
    ]
    optimizer = torch.optim.AdamW(groups, lr=spec.lr)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, linear_schedule(int(spec.warmup_proportion * total), total)
    )
    state: dict[str, Any] = {"step": 0, "history": [], "seconds": 0.0, "pairs": 0}
    resumed_from = _resume(out_dir / LAST_STATE, spec, fingerprint, core, optimizer, scheduler, state)
    logger.info(
        "training on %d items (%s), %d per global batch (%d x %d ranks), %d steps per epoch, %d steps, %s",
        len(items),
        items.sources,
        global_batch,
        local_batch,
        ranks.world,
        per_epoch,
        total,
        dev,
    )
    features = texts.features
    bar = tqdm(
        total=total,
        initial=state["step"],
        desc="train",
        unit="step",
        disable=None if progress and ranks.main else True,
    )
    losses: list[float] = []
    tick = time.perf_counter()
    try:
        while state["step"] < total:
            step = state["step"]
            epoch, b = divmod(step, per_epoch)
            order = torch.randperm(
                len(items), generator=torch.Generator().manual_seed(spec.seed + epoch)
            ).numpy()
            batch = order[b * global_batch : (b + 1) * global_batch]
            picks = items.draw_texts(batch, spec.seed, epoch, step)
            mine = slice(ranks.rank * local_batch, (ranks.rank + 1) * local_batch)
            torch.manual_seed(spec.seed * 1_000_003 + step)  # dropout: a function of the step
            model.train()
            loss = train_step(
                model,
                items,
                bank,
                features,
                batch[mine],
                picks[mine],
                max_rows=spec.model.max_rows,
                text_encoder=text_encoder,
                device=dev,
            )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            losses.append(_mean_over_ranks(loss.detach()))
            state["step"] = step + 1
            state["pairs"] += global_batch
            bar.update(1)
            end_of_epoch = state["step"] % per_epoch == 0 or state["step"] == total
            if end_of_epoch:
                state["history"].append(
                    {
                        "epoch": epoch + 1,
                        "step": state["step"],
                        "loss": float(np.mean(losses)),
                        "lr": scheduler.get_last_lr()[0],
                    }
                )
                bar.set_postfix(loss=f"{state['history'][-1]['loss']:.3f}")
                losses = []
            if end_of_epoch or state["step"] % spec.save_every == 0:
                now = time.perf_counter()
                state["seconds"] += now - tick
                tick = now
                if ranks.main:
                    _save_state(out_dir, spec, fingerprint, core, optimizer, scheduler, state)
            if stop_after_steps is not None and state["step"] >= stop_after_steps:
                return {"completed": False, "steps": state["step"], "total_steps": total}
    finally:
        bar.close()
    state["seconds"] += time.perf_counter() - tick
    summary = {
        "completed": True,
        "steps": total,
        "epochs": round(total / per_epoch, 2),
        "items": len(items),
        "sources": items.sources,
        "global_batch": global_batch,
        "world_size": ranks.world,
        "final_loss": state["history"][-1]["loss"] if state["history"] else None,
        "train_seconds": round(state["seconds"], 3),
        "pairs_per_second": round(state["pairs"] / max(state["seconds"], 1e-9), 1),
        "resumed_from_step": resumed_from,
        "device": str(dev),
    }
    if ranks.main:
        core.save_pretrained(out_dir)
        write_text(
            pd.DataFrame(state["history"], columns=["epoch", "step", "loss", "lr"]).to_csv(index=False),
            out_dir / "metrics.csv",
        )
        write_json(summary, out_dir / "summary.json", indent=2)
    logger.info(
        "trained %d steps, final loss %s, %.0f pairs/s",
        total,
        summary["final_loss"],
        summary["pairs_per_second"],
    )
    return summary


def _mean_over_ranks(loss: torch.Tensor) -> float:
    """The global loss: the mean of the ranks' losses (each is the mean over its rows)."""
    if dist.is_initialized() and dist.get_world_size() > 1:
        loss = loss.clone()
        dist.all_reduce(loss)
        loss /= dist.get_world_size()
    return float(loss)


def _save_state(
    out_dir: Path,
    spec: DualEncoderSpec,
    fingerprint: str,
    core: DualEncoder,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    state: dict,
) -> None:
    with atomic_path(out_dir / LAST_STATE) as tmp:
        torch.save(
            {
                "format": STATE_FORMAT,
                "spec": spec.to_dict(),
                "data_fingerprint": fingerprint,
                "model": core.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "progress": state,
            },
            tmp,
        )


def _resume(
    path: Path,
    spec: DualEncoderSpec,
    fingerprint: str,
    core: DualEncoder,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    state: dict,
) -> int | None:
    """Load ``last.pt`` into the objects when it continues this spec on these data; the step, or None."""
    if not path.is_file():
        return None
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated or foreign: torch raises many kinds
        logger.warning("%s: unreadable training state (%s), starting over", path, e)
        return None
    if not isinstance(saved, dict) or saved.get("format") != STATE_FORMAT:
        logger.warning("%s: not a dual encoder training state, starting over", path)
        return None
    if saved["spec"] != spec.to_dict() or saved["data_fingerprint"] != fingerprint:
        logger.warning("%s: saved for another spec or other data, starting over", path)
        return None
    core.load_state_dict(saved["model"])
    optimizer.load_state_dict(saved["optimizer"])
    scheduler.load_state_dict(saved["scheduler"])
    state.update(saved["progress"])
    logger.info("resuming %s at step %d", path, state["step"])
    return int(state["step"])
