"""Step adapters: small bottleneck layers on the frozen dual-encoder towers, trained for steps with InfoNCE
(spec dual-encoder-and-steps §6, "Training the encoders for steps"; the source's adapters, backbone frozen).

Positives are (chunk, query) pairs with the chunk's centre inside the step or substep (the chunk holding the
midpoint for one shorter than a chunk). Each query is scored against the batch's chunks and ``ratio · B``
sampled chunks of the batch's own entries (hard, same-video negatives); each chunk against the batch's
queries. False negatives are masked (logit -inf): a chunk inside the span of a query of the same entry with
the same description, or of the query's parent step or substeps, is not a negative of that query (42 % of
real val steps repeat a description in their video). The towers are frozen, so their outputs are computed
once and only the adapters train: an adapter is ``x + up(gelu(down(x)))`` with ``up`` zero-initialised, so
training starts from the zero-shot model.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn

from egonlq.dualenc.model import DualEncoder
from egonlq.errors import InputError
from egonlq.io import atomic_path, read_json, write_json
from egonlq.progress import tqdm
from egonlq.steps.zeroshot import embed_chunks

logger = logging.getLogger(__name__)

WEIGHTS = "adapters.safetensors"
CONFIG = "adapters.json"


@dataclass(frozen=True)
class AdapterSpec:
    """What a training run of the adapters depends on."""

    bottleneck: int = 64
    steps: int = 300
    batch_size: int = 128
    lr: float = 1e-3
    negatives_ratio: float = 1.0  # sampled same-entry negatives per query, as a multiple of the batch
    temperature: float = 0.07
    seed: int = 0


class Bottleneck(nn.Module):
    """``x + up(gelu(down(x)))``, ``up`` zero-initialised (the identity at the start)."""

    def __init__(self, dim: int, bottleneck: int) -> None:
        super().__init__()
        self.down = nn.Linear(dim, bottleneck)
        self.up = nn.Linear(bottleneck, dim)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, E] -> [B, E] unit vectors
        return F.normalize(x + self.up(F.gelu(self.down(x))), dim=-1)


class AdaptedEncoder(nn.Module):
    """A frozen :class:`DualEncoder` with one adapter on each tower's output; the same interface for the
    decoders (``encode_video``, ``encode_text``, ``config``)."""

    def __init__(self, base: DualEncoder, bottleneck: int) -> None:
        super().__init__()
        self.base, self.config = base.eval().requires_grad_(False), base.config
        self.video_adapter = Bottleneck(base.config.embed_dim, bottleneck)
        self.text_adapter = Bottleneck(base.config.embed_dim, bottleneck)

    def encode_video(self, rows: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.video_adapter(self.base.encode_video(rows, mask))

    def encode_text(self, pooled: torch.Tensor) -> torch.Tensor:
        return self.text_adapter(self.base.encode_text(pooled))

    def adapter_state(self) -> dict[str, torch.Tensor]:
        return {k: v.detach().contiguous() for k, v in self.state_dict().items() if not k.startswith("base.")}

    def save_pretrained(self, directory: Path, spec: AdapterSpec, base_dir: Path) -> None:
        with atomic_path(directory / WEIGHTS) as tmp:
            save_file(self.adapter_state(), str(tmp), metadata={"format": "pt"})
        write_json({"spec": asdict(spec), "base": str(base_dir)}, directory / CONFIG, indent=1)

    @classmethod
    def from_pretrained(cls, directory: Path, base: DualEncoder) -> AdaptedEncoder:
        """Adapters saved by :meth:`save_pretrained` on ``base`` (the checkpoint they were trained on)."""
        raw = read_json(directory / CONFIG)
        try:
            spec = AdapterSpec(**raw["spec"])
        except (KeyError, TypeError) as e:
            raise InputError(directory / CONFIG, f"not an adapter config: {e}", field="spec") from e
        model = cls(base, spec.bottleneck)
        state = load_file(str(directory / WEIGHTS))
        expected = model.adapter_state()
        if state.keys() != expected.keys() or any(state[k].shape != expected[k].shape for k in state):
            raise InputError(
                directory / WEIGHTS, "adapter tensors do not match the base model's embedding size",
                expected=f"{sorted(expected)} for embed_dim {base.config.embed_dim}",
            )  # fmt: skip
        model.load_state_dict(state, strict=False)
        return model.eval()


def positive_chunks(start: float, end: float, width: float, n_chunks: int) -> tuple[int, int]:
    """Chunks ``[lo, hi)`` whose centre ``(n + 0.5) · w`` lies in ``[start, end)``; a span no centre falls
    in gets the chunk holding its midpoint. Clipped to the entry's ``n_chunks``."""
    lo = max(0, math.ceil(start / width - 0.5 - 1e-9))
    hi = min(n_chunks, math.ceil(end / width - 0.5 - 1e-9))
    if hi <= lo:
        mid = min(n_chunks - 1, max(0, int((start + end) / 2 // width)))
        lo, hi = mid, mid + 1
    return lo, hi


@dataclass
class StepPairs:
    """Training data in chunk indices over all entries (``chunk_offset`` places an entry's chunks).

    ``query_range [Q, 2]``: each query's positive chunks; ``family [Q, F, 2]``: the chunk ranges no chunk of
    which is a negative of the query (padded with empty ranges); ``pair_query``/``pair_chunk``: positives;
    ``entry_range [Q, 2]``: the chunks of the query's entry (for sampled negatives)."""

    query_range: np.ndarray
    family: np.ndarray
    entry_range: np.ndarray
    pair_query: np.ndarray
    pair_chunk: np.ndarray


def build_pairs(queries: pd.DataFrame, n_chunks: dict[str, int], width: float) -> StepPairs:
    """Positives and false-negative families of the query table (rows of STEP_QUERIES, index 0..Q-1)."""
    offsets, total = {}, 0
    for uid in sorted(n_chunks):
        offsets[uid], total = total, total + n_chunks[uid]
    q = len(queries)
    query_range = np.zeros((q, 2), dtype=np.int64)
    entry_range = np.zeros((q, 2), dtype=np.int64)
    families: list[list[tuple[int, int]]] = [[] for _ in range(q)]
    for uid, group in queries.groupby("video_uid", sort=False):
        off, n = offsets[uid], n_chunks[uid]
        idx = group.index.to_numpy()
        bounds = zip(group["clip_start_sec"], group["clip_end_sec"], strict=True)
        spans = np.array([positive_chunks(s, e, width, n) for s, e in bounds]) + off
        query_range[idx], entry_range[idx] = spans, (off, off + n)
        text, step, sub = (
            group["query"].to_numpy(),
            group["step_idx"].to_numpy(),
            group["is_substep"].to_numpy(),
        )
        related = (text[:, None] == text[None, :]) | (
            (step[:, None] == step[None, :]) & (sub[:, None] != sub[None, :])
        )
        for i, row in zip(idx, related, strict=True):
            families[i] = [tuple(r) for r in spans[row]]
    width_f = max(len(f) for f in families) if families else 1
    family = np.zeros((q, width_f, 2), dtype=np.int64)  # [0, 0) pads: empty ranges
    for i, f in enumerate(families):
        family[i, : len(f)] = f
    counts = query_range[:, 1] - query_range[:, 0]
    pair_query = np.repeat(np.arange(q), counts)
    pair_chunk = np.concatenate([np.arange(a, b) for a, b in query_range]) if q else np.zeros(0, np.int64)
    return StepPairs(query_range, family, entry_range, pair_query, pair_chunk)


def false_negatives(family: np.ndarray, columns: np.ndarray) -> np.ndarray:
    """``[B, M]``: True where chunk ``columns[m]`` lies in a range of query ``b``'s ``family [B, F, 2]``."""
    c = columns[None, :, None]
    return ((c >= family[:, None, :, 0]) & (c < family[:, None, :, 1])).any(-1)


def step_loss(
    model: AdaptedEncoder,
    chunk_emb: torch.Tensor,
    text_emb: torch.Tensor,
    pairs: StepPairs,
    batch: np.ndarray,
    negatives: np.ndarray,
    scale: float,
) -> torch.Tensor:
    """Symmetric InfoNCE of a batch of positive pairs; queries also see the sampled ``negatives`` chunks."""
    queries, chunks = pairs.pair_query[batch], pairs.pair_chunk[batch]
    columns = np.concatenate([chunks, negatives])
    v = model.video_adapter(chunk_emb[torch.from_numpy(columns)])  # [B + M, E]
    t = model.text_adapter(text_emb[torch.from_numpy(queries)])  # [B, E]
    mask = false_negatives(pairs.family[queries], columns)  # [B, B + M]
    b = len(batch)
    mask[np.arange(b), np.arange(b)] = False  # the positive itself
    mask = torch.from_numpy(mask)
    logits = scale * t @ v.T  # [B, B + M]
    logits = logits.masked_fill(mask, float("-inf"))
    labels = torch.arange(b)
    t2v = F.cross_entropy(logits, labels)
    v2t = F.cross_entropy(logits[:, :b].T, labels)
    return 0.5 * (t2v + v2t)


def train_adapters(
    model: AdaptedEncoder,
    chunk_emb: torch.Tensor,
    text_emb: torch.Tensor,
    pairs: StepPairs,
    spec: AdapterSpec,
) -> list[float]:
    """Train the adapters on the frozen towers' outputs; the loss of every step."""
    if len(pairs.pair_query) < 2:
        raise ValueError("fewer than 2 positive (chunk, step) pairs: nothing to train on")
    rng = np.random.default_rng(spec.seed)
    torch.manual_seed(spec.seed)
    params = [p for n, p in model.named_parameters() if not n.startswith("base.")]
    opt = torch.optim.AdamW(params, lr=spec.lr)
    b = min(spec.batch_size, len(pairs.pair_query))
    m = int(round(spec.negatives_ratio * b))
    losses = []
    model.train()
    for _ in range(spec.steps):
        batch = rng.choice(len(pairs.pair_query), size=b, replace=False)
        owner = pairs.entry_range[pairs.pair_query[rng.choice(batch, size=m)]]  # [M, 2]: a batch entry each
        negatives = (owner[:, 0] + np.floor(rng.random(m) * (owner[:, 1] - owner[:, 0]))).astype(np.int64)
        loss = step_loss(model, chunk_emb, text_emb, pairs, batch, negatives, 1.0 / spec.temperature)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    model.eval()
    logger.info("adapters: %d steps, loss %.4f -> %.4f", spec.steps, losses[0], losses[-1])
    return losses


def fit_adapters(
    base: DualEncoder,
    text_emb: torch.Tensor,
    queries: pd.DataFrame,
    load_rows: Callable[[str], np.ndarray],
    rate: float,
    width: float,
    spec: AdapterSpec,
) -> tuple[AdaptedEncoder, list[float], dict]:
    """Embed the train entries' chunks with the frozen base, build the pairs and train the adapters.
    ``text_emb`` ``[Q, E]`` are the base's embeddings of ``queries`` (index 0..Q-1)."""
    chunks, n_chunks = [], {}
    for uid in tqdm(sorted(queries["video_uid"].unique()), desc="adapters: chunks", disable=None):
        chunks.append(embed_chunks(base, load_rows(uid), rate, width))
        n_chunks[uid] = len(chunks[-1])
    pairs = build_pairs(queries, n_chunks, width)
    model = AdaptedEncoder(base, spec.bottleneck)
    losses = train_adapters(model, torch.cat(chunks), text_emb, pairs, spec)
    stats = {"entries": len(n_chunks), "chunks": sum(n_chunks.values()), "queries": len(queries),
             "positive_pairs": len(pairs.pair_query), "family_width": int(pairs.family.shape[1]),
             "loss_first": losses[0], "loss_last": losses[-1]}  # fmt: skip
    return model, losses, stats


def spec_from_json(text: str) -> AdapterSpec:
    """``--spec`` JSON (the config's ``steps.adapters`` plus the seed) to :class:`AdapterSpec`."""
    return AdapterSpec(**json.loads(text))
