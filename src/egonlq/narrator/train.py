"""Training the narrator: token cross-entropy (BOS first) on (window, GT narration) pairs of training videos,
the LM and the video tower frozen, AdamW at a constant lr on the pooler and the gated cross-attention blocks,
gradient-norm clip 1.0, full precision (AMP was unstable in the reference).

Resumable: ``last.pt`` (the trainable weights, the optimizer and the step) is written every ``save_every``
steps; a rerun with the same spec and data continues from it and ends with exactly the weights of an
uninterrupted run (the batch of step ``s`` is drawn from ``seed + s``, dropout seeded the same way).
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd
import torch
from safetensors.torch import save_file

from egonlq.dualenc.bank import FeatureBank
from egonlq.io import atomic_path, write_json
from egonlq.narrator.lm import encode_texts, next_token_loss
from egonlq.narrator.model import (
    CONFIG_NAME,
    MAX_TEXT_TOKENS,
    WEIGHTS_NAME,
    Narrator,
    config_dict,
    load_trainable,
)
from egonlq.progress import tqdm

logger = logging.getLogger(__name__)

LAST_STATE = "last.pt"
STATE_FORMAT = "egonlq-narrator-state/1"


@dataclass(frozen=True)
class NarratorTrainSpec:
    """Everything that changes a narrator training's result."""

    steps: int = 300
    batch_size: int = 32
    lr: float = 1e-3
    max_rows: int = 8  # feature rows per window (as the video tower was trained)
    save_every: int = 50
    seed: int = 0

    def __post_init__(self) -> None:
        if min(self.steps, self.batch_size, self.max_rows, self.save_every) < 1 or not self.lr > 0:
            raise ValueError(f"invalid NarratorTrainSpec {self}: counts must be >= 1 and lr > 0")


def train_narrator(
    narrator: Narrator,
    tokenizer,
    rows: pd.DataFrame,
    bank: FeatureBank,
    spec: NarratorTrainSpec,
    out_dir: str | Path,
    *,
    provenance: dict,
) -> dict:
    """Train on ``rows`` (video_uid, window_start_sec, window_end_sec, text) and save the checkpoint."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    first, count = bank.window_rows(
        rows["video_uid"].tolist(), rows["window_start_sec"].to_numpy(), rows["window_end_sec"].to_numpy()
    )
    first_t, count_t = torch.from_numpy(first), torch.from_numpy(count)
    texts = rows["text"].tolist()
    fingerprint = hashlib.sha256(
        json.dumps([texts, first.tolist(), count.tolist(), asdict(spec)]).encode()
    ).hexdigest()
    params = [p for p in narrator.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=spec.lr, weight_decay=0.0)
    step, losses = _resume(out_dir / LAST_STATE, narrator, optimizer, fingerprint), []
    if step:
        logger.info("resuming %s at step %d", out_dir / LAST_STATE, step)
    narrator.train()
    for s in tqdm(
        range(step, spec.steps), desc="train narrator", unit="step", initial=step, total=spec.steps
    ):
        generator = torch.Generator().manual_seed(spec.seed * 1_000_003 + s)
        torch.manual_seed(spec.seed * 1_000_003 + s)
        pick = torch.randint(len(texts), (min(spec.batch_size, len(texts)),), generator=generator)
        window, mask = bank.gather(first_t[pick], count_t[pick], spec.max_rows)
        ids, labels = encode_texts(tokenizer, [texts[i] for i in pick], MAX_TEXT_TOKENS)
        loss = next_token_loss(narrator(window, mask, ids, torch.ones_like(ids)), labels)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        losses.append(loss.item())
        if (s + 1) % spec.save_every == 0 or s + 1 == spec.steps:
            _save_state(out_dir / LAST_STATE, narrator, optimizer, fingerprint, s + 1)
    with atomic_path(out_dir / WEIGHTS_NAME) as tmp:
        save_file(narrator.trainable_state(), str(tmp), metadata={"format": "pt"})
    write_json(config_dict(narrator.config, **provenance), out_dir / CONFIG_NAME, indent=2)
    gates = {
        f"cross.{i}": [c.attn_gate.tanh().item(), c.ff_gate.tanh().item()]
        for i, c in enumerate(narrator.cross)
    }
    summary = {
        "pairs": len(texts),
        "steps": spec.steps,
        "resumed_at": step,
        "loss_last": sum(losses[-10:]) / max(1, len(losses[-10:])) if losses else None,
        "tanh_gates": gates,
        "spec": asdict(spec),
    }
    write_json(summary, out_dir / "summary.json", indent=2)
    return summary


def _save_state(path: Path, narrator: Narrator, optimizer, fingerprint: str, step: int) -> None:
    with atomic_path(path) as tmp:
        torch.save(
            {
                "format": STATE_FORMAT,
                "fingerprint": fingerprint,
                "weights": narrator.trainable_state(),
                "optimizer": optimizer.state_dict(),
                "step": step,
            },
            tmp,
        )


def _resume(path: Path, narrator: Narrator, optimizer, fingerprint: str) -> int:
    """Load ``last.pt`` when it continues this training (same spec and data); the step reached, else 0."""
    if not path.is_file():
        return 0
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated or foreign: torch raises many kinds
        logger.warning("%s: unreadable training state (%s), starting over", path, e)
        return 0
    if (
        not isinstance(saved, dict)
        or saved.get("format") != STATE_FORMAT
        or saved.get("fingerprint") != fingerprint
    ):
        logger.warning("%s: not a state of this training (spec or data changed), starting over", path)
        return 0
    load_trainable(narrator, saved["weights"], where=path)
    optimizer.load_state_dict(saved["optimizer"])
    return int(saved["step"])
