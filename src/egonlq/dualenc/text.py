"""The text tower's frozen part: a local Hugging Face ENCODER, its pooled sentence vectors, and their cache.

Any local encoder folder works through ``AutoModel`` (the MiniLM the project ships by default, DistilBERT,
BERT, ...); a CLIP folder uses its text transformer, pooled at the end-of-text token as CLIP does. Other
encoders are mean-pooled over real tokens (the sentence-transformers rule of MiniLM). Folders that hold a
decoder-only or encoder-decoder model are refused before anything is loaded (:func:`check_encoder_folder`).

Because the encoder is frozen (unless layers are unfrozen), every distinct text is encoded ONCE for the whole
stage and stored (:func:`build_pooled_cache`) as a safetensors file::

    features      [N, H] float32    pooled vector of text k
    text_bytes    [S] uint8         UTF-8 of the N texts (:func:`text_key`), concatenated, sorted
    text_offsets  [N + 1] int64
    metadata      format, model_path, model_name, fingerprint, hidden_size, pooling, max_tokens
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch
from safetensors.numpy import save_file

from egonlq.errors import InputError
from egonlq.grounding.tensor_files import read_cache_file
from egonlq.grounding.text_encoder import TextEncoder, model_fingerprint
from egonlq.io import atomic_path, read_json
from egonlq.progress import tqdm

logger = logging.getLogger(__name__)

POOLED_FORMAT = "egonlq-pooled-text/1"
CLIP_TYPES = ("clip", "clip_text_model")
DEFAULT_MAX_TOKENS = 64


def text_key(text: str) -> str:
    """The one normalisation of a text before encoding: surrounding whitespace removed, spaces collapsed."""
    return " ".join(text.split())


def check_encoder_folder(path: str | Path) -> None:
    """Refuse, before loading, a folder whose config is not an encoder (causal LM, seq2seq, vision-only)."""
    from transformers.models.auto.modeling_auto import MODEL_FOR_MASKED_LM_MAPPING_NAMES

    path = Path(path)
    config = read_json(path / "config.json") if (path / "config.json").is_file() else None
    if config is None:
        raise InputError(
            path, "text encoder folder has no config.json", expected="a local Hugging Face encoder"
        )
    model_type = config.get("model_type")
    architectures = [str(a) for a in config.get("architectures") or []]
    decoder = config.get("is_decoder") or any(
        a.endswith(("ForCausalLM", "LMHeadModel", "ForConditionalGeneration")) for a in architectures
    )
    if config.get("is_encoder_decoder") or decoder:
        raise InputError(
            path / "config.json",
            f"model {model_type!r} ({', '.join(architectures) or 'no architectures'}) is not a text encoder",
            field="model_type",
            expected="an encoder (BERT, MiniLM, DistilBERT, RoBERTa, a CLIP text tower, ...)",
        )
    if model_type not in MODEL_FOR_MASKED_LM_MAPPING_NAMES and model_type not in CLIP_TYPES:
        raise InputError(
            path / "config.json",
            f"model type {model_type!r} is not a known text encoder",
            field="model_type",
            expected="an encoder type with a masked-LM head in transformers, or clip",
        )


class PooledTextEncoder:
    """A local encoder producing one pooled vector per text (``[B, H]``), frozen or partly trainable."""

    def __init__(self, model_path: str | Path, *, max_tokens: int = DEFAULT_MAX_TOKENS, device: str = "cpu"):
        self.model_path = Path(model_path)
        check_encoder_folder(self.model_path)
        base = TextEncoder(self.model_path, max_len=max_tokens, device=device)  # folder checks, frozen, eval
        self.tokenizer, self.name = base.tokenizer, base.name
        self.fingerprint, self.max_tokens = base.fingerprint, base.max_tokens
        model = base.model
        self.pooling = "eot" if hasattr(model, "text_model") else "mean"
        self.module: torch.nn.Module = model.text_model if hasattr(model, "text_model") else model
        self.hidden_size = int(self.module.config.hidden_size)
        self.device = torch.device(device)

    def unfreeze(self, n: int) -> list[str]:
        """Let the last ``n`` transformer layers train; returns their parameter names."""
        layers = max(
            (m for m in self.module.modules() if isinstance(m, torch.nn.ModuleList)), key=len, default=None
        )
        if layers is None or n > len(layers):
            raise InputError(
                self.model_path,
                f"cannot unfreeze {n} layers: the encoder has {0 if layers is None else len(layers)}",
                field="unfreeze_layers",
            )
        names = []
        for layer in list(layers)[len(layers) - n :]:
            layer.requires_grad_(True)
            names += [name for name, _ in layer.named_parameters()]
        return names

    def forward(self, texts: list[str]) -> torch.Tensor:
        """Pooled vectors ``[B, H]`` (float32), with gradients where layers are unfrozen."""
        batch = self.tokenizer(
            [text_key(t) for t in texts],
            padding=True,
            truncation=True,
            max_length=self.max_tokens,
            return_tensors="pt",
        ).to(self.device)
        if self.pooling == "eot":
            batch.pop("token_type_ids", None)  # CLIP's text transformer takes none
        out = self.module(**batch)
        if self.pooling == "eot":
            return out.pooler_output.float()
        mask = batch["attention_mask"].unsqueeze(-1).float()
        return (out.last_hidden_state * mask).sum(1) / mask.sum(1).clamp(min=1.0)

    @torch.no_grad()
    def encode(self, texts: list[str], batch_size: int = 128, progress: bool = True) -> np.ndarray:
        """Pooled vectors of ``texts`` in eval mode, ``[N, H]`` float32, in input order."""
        self.module.eval()
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = np.zeros((len(texts), self.hidden_size), dtype=np.float32)
        for start in tqdm(range(0, len(texts), batch_size), desc="encode text", disable=not progress or None):
            idx = order[start : start + batch_size]
            out[idx] = self.forward([texts[i] for i in idx]).cpu().numpy()
        return out


def build_pooled_cache(
    texts: Iterable[str], encoder: PooledTextEncoder, out_path: str | Path, *, batch_size: int = 128
) -> dict:
    """Encode every distinct :func:`text_key` once and write the pooled cache (format in the module doc)."""
    keys = sorted({text_key(t) for t in texts if text_key(t)})
    features = encoder.encode(keys, batch_size=batch_size)
    encoded = [k.encode("utf-8") for k in keys]
    tensors = {
        "features": features,
        "text_bytes": np.frombuffer(b"".join(encoded), dtype=np.uint8).copy(),
        "text_offsets": np.concatenate([[0], np.cumsum([len(b) for b in encoded])]).astype(np.int64),
    }
    metadata = {
        "format": POOLED_FORMAT,
        "model_path": str(encoder.model_path.resolve()),
        "model_name": encoder.name,
        "fingerprint": encoder.fingerprint,
        "hidden_size": str(encoder.hidden_size),
        "pooling": encoder.pooling,
        "max_tokens": str(encoder.max_tokens),
    }
    with atomic_path(out_path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)
    stats = {
        "texts": len(keys),
        "hidden_size": encoder.hidden_size,
        "pooling": encoder.pooling,
        "model_name": encoder.name,
        "fingerprint": encoder.fingerprint,
    }
    logger.info("pooled text cache %s: %d distinct texts, %d-d", out_path, len(keys), encoder.hidden_size)
    return stats


class PooledTexts:
    """The pooled cache in memory: ``features [N, H]`` and ``index`` (text key -> row)."""

    def __init__(self, path: Path, metadata: dict[str, str], features: np.ndarray, keys: list[str]) -> None:
        self.path, self.metadata = path, metadata
        self.features = torch.from_numpy(features)
        self.index = {k: i for i, k in enumerate(keys)}
        self.hidden_size = int(metadata["hidden_size"])

    @classmethod
    def load(cls, path: str | Path, *, model_path: str | Path | None = None) -> PooledTexts:
        """Read a cache; with ``model_path``, refuse one built by another encoder."""
        path = Path(path)
        fingerprint = (lambda: model_fingerprint(model_path)) if model_path is not None else None
        metadata, tensors = read_cache_file(path, POOLED_FORMAT, "pooled text cache", fingerprint)
        data, bounds = tensors["text_bytes"].tobytes(), tensors["text_offsets"]
        keys = [data[a:b].decode("utf-8") for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
        return cls(path, metadata, tensors["features"], keys)

    def rows(self, texts: Iterable[str], *, where: str | Path | None = None) -> np.ndarray:
        """Row of each text (int64); a text missing from the cache is an error naming it."""
        out = []
        for text in texts:
            row = self.index.get(text_key(text))
            if row is None:
                raise InputError(
                    where or self.path, "text not in the pooled text cache (rebuild it)", record=repr(text)
                )
            out.append(row)
        return np.asarray(out, dtype=np.int64)
