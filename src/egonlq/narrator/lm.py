"""The demo's language model: a small GPT-2-configured causal LM pre-trained on narration text.

No pretrained LM weights are reachable here, so the demo first trains one (a word-level tokenizer over the
narrations, a few GPT-2 blocks) and saves it as an ordinary Hugging Face folder (``config.json``,
``model.safetensors``, ``tokenizer.json``): the narrator then loads it exactly as it would load a real local
``gpt2`` folder, and freezes it. A user with such a folder skips this step.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Sequence
from pathlib import Path

import torch

from egonlq.errors import InputError
from egonlq.io import write_json
from egonlq.progress import tqdm

logger = logging.getLogger(__name__)

SPECIAL = "<|endoftext|>"  # GPT-2's single special token: BOS, EOS and padding
UNKNOWN = "<unk>"


def build_tokenizer(texts: Sequence[str], *, min_count: int = 1):
    """A lowercase word-level tokenizer (words and punctuation) over ``texts`` with GPT-2's special token."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel(unk_token=UNKNOWN))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.train_from_iterator(
        texts, trainers.WordLevelTrainer(special_tokens=[SPECIAL, UNKNOWN], min_frequency=min_count)
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token=SPECIAL, eos_token=SPECIAL, pad_token=SPECIAL, unk_token=UNKNOWN
    )


def encode_texts(tokenizer, texts: Sequence[str], max_tokens: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``BOS text EOS`` token ids ``[B, T]`` (right-padded with EOS, cut at ``max_tokens`` + 1) and the
    labels for next-token cross-entropy (``-100`` on padding)."""
    bos, eos = tokenizer.bos_token_id, tokenizer.eos_token_id
    seqs = [[bos, *tokenizer.encode(t, add_special_tokens=False)[: max_tokens - 1], eos] for t in texts]
    length = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), length), eos, dtype=torch.long)
    labels = torch.full((len(seqs), length), -100, dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = torch.tensor(s)
        labels[i, 1 : len(s)] = torch.tensor(s[1:])
    return ids, labels


def next_token_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean token cross-entropy of ``logits [B, T, V]`` predicting ``labels [B, T]`` shifted by one."""
    return torch.nn.functional.cross_entropy(
        logits[:, :-1].reshape(-1, logits.shape[-1]), labels[:, 1:].reshape(-1), ignore_index=-100
    )


def pretrain_lm(
    texts: Sequence[str],
    out_dir: str | Path,
    *,
    layers: int = 2,
    width: int = 128,
    heads: int = 4,
    steps: int = 300,
    batch_size: int = 64,
    lr: float = 3e-3,
    max_tokens: int = 77,
    seed: int = 0,
) -> dict:
    """Train a GPT-2-configured LM on ``texts`` and save it with its tokenizer as a HF folder (atomically:
    built in a sibling folder, then renamed). Returns a summary (loss curve ends, vocabulary, sizes)."""
    from transformers import GPT2Config, GPT2LMHeadModel

    texts = [t for t in (" ".join(str(t).split()) for t in texts) if t]
    if not texts:
        raise InputError(out_dir, "no narration text to pre-train the LM on", field="text")
    torch.manual_seed(seed)
    tokenizer = build_tokenizer(texts)
    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=max_tokens + 1,
        n_embd=width,
        n_layer=layers,
        n_head=heads,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    model = GPT2LMHeadModel(config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    generator = torch.Generator().manual_seed(seed)
    losses = []
    model.train()
    for _ in tqdm(range(steps), desc="pretrain LM", unit="step"):
        pick = torch.randint(len(texts), (min(batch_size, len(texts)),), generator=generator)
        ids, labels = encode_texts(tokenizer, [texts[i] for i in pick], max_tokens)
        loss = next_token_loss(model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits, labels)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        losses.append(float(loss))
    out_dir = Path(out_dir)
    tmp = out_dir.with_name(out_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.eval().save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    shutil.rmtree(out_dir, ignore_errors=True)
    tmp.rename(out_dir)
    k = max(1, steps // 10)
    summary = {
        "texts": len(texts),
        "vocabulary": len(tokenizer),
        "parameters": sum(p.numel() for p in model.parameters()),
        "steps": steps,
        "loss_first": sum(losses[:k]) / k,
        "loss_last": sum(losses[-k:]) / k,
    }
    logger.info("pre-trained LM: %s", summary)
    write_json(summary, out_dir.parent / f"{out_dir.name}_summary.json", indent=2)
    return summary
