"""Decoding the narrator as the reference does (``main_infer_narrator.py``): nucleus sampling with
``top_p`` 0.95 and ``temperature`` 0.7, no top-k, ``num_sequences`` per window, at most 77 tokens,
stopping at EOS.

The score of a text is **exp(mean per-token entropy)** of the distributions it was sampled from (after
temperature and the nucleus cut), over its tokens up to and including EOS: an uncertainty (1 = certain;
higher = the narrator hesitated), not a likelihood, and named ``entropy_score`` everywhere.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass

import torch

from egonlq.narrator.model import MAX_TEXT_TOKENS, Narrator


@dataclass(frozen=True)
class Decoding:
    """The sampling settings (stored with every generated text)."""

    top_p: float = 0.95
    temperature: float = 0.7
    num_sequences: int = 10
    max_tokens: int = MAX_TEXT_TOKENS

    def __post_init__(self) -> None:
        if not (0 < self.top_p <= 1 and self.temperature > 0 and self.num_sequences >= 1):
            raise ValueError(
                f"invalid decoding {self}: need 0 < top_p <= 1, temperature > 0, num_sequences >= 1"
            )
        if not 1 <= self.max_tokens <= MAX_TEXT_TOKENS:
            raise ValueError(f"max_tokens {self.max_tokens} is not in [1, {MAX_TEXT_TOKENS}]")

    def to_dict(self) -> dict:
        return asdict(self)


def nucleus_probs(logits: torch.Tensor, *, top_p: float, temperature: float) -> torch.Tensor:
    """``[B, V]`` logits -> the sampling distribution: softmax(logits / T) cut to the smallest set of tokens
    whose mass reaches ``top_p`` (the most likely token always kept), renormalised."""
    probs = torch.softmax(logits / temperature, dim=-1)
    sorted_probs, order = probs.sort(dim=-1, descending=True)
    before = sorted_probs.cumsum(dim=-1) - sorted_probs  # mass of the tokens ranked above each one
    sorted_probs = sorted_probs.masked_fill(before >= top_p, 0.0)
    cut = torch.zeros_like(probs).scatter(-1, order, sorted_probs)
    return cut / cut.sum(dim=-1, keepdim=True)


def entropy(probs: torch.Tensor) -> torch.Tensor:
    """Shannon entropy (nats) of each row of ``[..., V]`` probabilities (0 log 0 = 0)."""
    return -(probs * probs.clamp_min(1e-30).log()).sum(dim=-1)


def entropy_score(token_entropies: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """exp(mean per-token entropy) of each sequence: ``[B, T]`` entropies, ``[B]`` generated lengths."""
    steps = torch.arange(token_entropies.shape[1])[None, :] < lengths[:, None]
    mean = (token_entropies * steps).sum(dim=1) / lengths.clamp_min(1)
    return mean.exp()


def window_uniforms(key: str, seed: int, decoding: Decoding) -> torch.Tensor:
    """``[N, max_tokens]`` numbers in (0, 1] for one window, drawn from a generator seeded by key and seed."""
    digest = hashlib.sha256(f"{seed}:{key}".encode()).digest()
    generator = torch.Generator().manual_seed(int.from_bytes(digest[:8], "big") % 2**63)
    return 1.0 - torch.rand((decoding.num_sequences, decoding.max_tokens), generator=generator)


@torch.no_grad()
def sample(
    narrator: Narrator,
    rows: torch.Tensor,
    mask: torch.Tensor,
    *,
    bos_id: int,
    eos_id: int,
    decoding: Decoding,
    uniforms: torch.Tensor,
) -> tuple[list[list[list[int]]], torch.Tensor]:
    """``num_sequences`` token lists per window (EOS excluded) and their entropy scores ``[B, N]``.

    ``uniforms [B, N, max_tokens]`` in (0, 1] drive the draws (inverse CDF), so a window's texts depend on
    its own numbers only, not on the batch it was generated in (:func:`window_uniforms`).
    """
    narrator.eval()
    n, batch = decoding.num_sequences, rows.shape[0]
    visual = narrator.visual_tokens(rows, mask).repeat_interleave(n, dim=0)  # [B*N, Q, H]
    ids = torch.full((batch * n, 1), bos_id, dtype=torch.long)
    done = torch.zeros(batch * n, dtype=torch.bool)
    lengths = torch.zeros(batch * n, dtype=torch.long)
    entropies, past = [], None
    narrator.condition(visual)
    try:
        for step in range(decoding.max_tokens):
            # the LM's key/value cache: only the newest token goes in (cross-attention is per position)
            out = narrator.lm(input_ids=ids if past is None else ids[:, -1:], cache=past, use_cache=True)
            past, logits = out.cache, out.logits[:, -1]  # [B*N, V]
            probs = nucleus_probs(logits.float(), top_p=decoding.top_p, temperature=decoding.temperature)
            cdf = probs.cumsum(dim=-1)
            u = uniforms[:, :, step].reshape(-1, 1) * cdf[:, -1:]  # scaled: the last cdf value may be < 1
            token = (cdf < u).sum(dim=-1).clamp(max=probs.shape[-1] - 1)
            token = torch.where(done, torch.full_like(token, eos_id), token)
            entropies.append(torch.where(done, torch.zeros(()), entropy(probs)))
            lengths += (~done).long()
            done |= token == eos_id
            ids = torch.cat([ids, token[:, None]], dim=1)
            if done.all():
                break
    finally:
        narrator.condition(None)
    scores = entropy_score(torch.stack(entropies, dim=1), lengths).view(batch, n)
    texts = []
    for b in range(batch):
        per_window = []
        for s in range(n):
            seq = ids[b * n + s, 1:].tolist()
            per_window.append(seq[: seq.index(eos_id)] if eos_id in seq else seq)
        texts.append(per_window)
    return texts, scores
