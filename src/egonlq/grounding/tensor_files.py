"""Safetensors files: written with the same bytes for the same tensors and metadata, and read back with checks
(checkpoints against their config, caches against their format and encoder) that name the file and tensor.

The safetensors library writes its JSON header from a hash map whose order changes from process to process
(and between calls), so two identical runs gave files with different bytes. :func:`write_safetensors`
rewrites the header with sorted keys; the tensor data (laid out by the library in a fixed order) and every
offset stay as they are, so any safetensors reader loads the file unchanged.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import fields
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.numpy import save as save_numpy
from safetensors.torch import load_file
from safetensors.torch import save as save_torch

from egonlq.errors import InputError
from egonlq.io import atomic_path, read_json

HEADER_ALIGNMENT = 8  # the format pads its header with spaces to a multiple of 8 bytes


def canonical_safetensors(serialized: bytes) -> bytes:
    """``serialized`` (a whole safetensors file) with its JSON header in sorted key order."""
    n = int.from_bytes(serialized[:8], "little")
    header = json.loads(serialized[8 : 8 + n])
    text = json.dumps(header, sort_keys=True, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % HEADER_ALIGNMENT)
    return len(text).to_bytes(8, "little") + text + serialized[8 + n :]


def write_safetensors(
    tensors: Mapping[str, np.ndarray] | Mapping[str, torch.Tensor],
    path: str | Path,
    metadata: Mapping[str, str],
) -> None:
    """Write numpy arrays or torch tensors (all of one kind) atomically as a deterministic safetensors
    file."""
    tensors = dict(tensors)
    torch_tensors = any(isinstance(t, torch.Tensor) for t in tensors.values())
    serialized = (save_torch if torch_tensors else save_numpy)(tensors, metadata=dict(metadata))
    with atomic_path(path) as tmp:
        tmp.write_bytes(canonical_safetensors(serialized))


Config = TypeVar("Config")


def read_model_config(path: Path, config_class: type[Config], model_type: str, what: str) -> Config:
    """The dataclass ``config_class`` of a checkpoint's ``config.json``: its ``model_type`` must be
    ``model_type`` and every other key a field of the class."""
    raw = read_json(path)
    if not isinstance(raw, dict) or raw.get("model_type") != model_type:
        raise InputError(path, f"not a {what} config", field="model_type", expected=repr(model_type))
    known = {f.name for f in fields(config_class)}  # type: ignore[arg-type]
    unknown = sorted(raw.keys() - known - {"model_type"})
    if unknown:
        raise InputError(path, f"unknown config keys {unknown}", expected=f"keys among {sorted(known)}")
    try:
        return config_class(**{k: v for k, v in raw.items() if k in known})
    except (TypeError, ValueError) as e:
        raise InputError(path, f"invalid config: {e}") from e


def load_checkpoint_weights(model: torch.nn.Module, weights: Path, config_name: str) -> None:
    """Load ``weights`` (safetensors) into ``model``: a missing file, a missing or extra tensor or a tensor
    of another shape than the config implies is an error naming the file and the tensor."""
    if not weights.is_file():
        raise InputError(weights, "checkpoint weights not found")
    try:
        state = load_file(str(weights))
    except (SafetensorError, OSError) as e:
        raise InputError(weights, f"not a readable safetensors file: {e}") from e
    expected = model.state_dict()
    missing, unexpected = sorted(expected.keys() - state.keys()), sorted(state.keys() - expected.keys())
    if missing or unexpected:
        raise InputError(
            weights, f"tensors do not match the config: missing {missing[:5]}, unexpected {unexpected[:5]}"
        )
    for name, tensor in state.items():
        if tensor.shape != expected[name].shape:
            raise InputError(
                weights,
                f"tensor has shape {list(tensor.shape)}",
                field=name,
                expected=f"shape {list(expected[name].shape)} from {config_name}",
            )
    model.load_state_dict(state)


def read_cache_file(
    path: Path, fmt: str, what: str, fingerprint: Callable[[], str] | None
) -> tuple[dict[str, str], dict[str, np.ndarray]]:
    """(metadata, arrays) of a cache written by :func:`write_safetensors` whose metadata ``format`` is
    ``fmt``; with ``fingerprint``, a cache built by another encoder is refused."""
    if not path.is_file():
        raise InputError(path, f"{what} not found")
    try:
        with safe_open(str(path), framework="numpy") as f:
            metadata = f.metadata() or {}
            tensors = {name: f.get_tensor(name) for name in f.keys()}  # noqa: SIM118
    except (SafetensorError, OSError) as e:
        raise InputError(path, f"not a readable safetensors file: {e}") from e
    if metadata.get("format") != fmt:
        raise InputError(path, f"not a {what}", field="format", expected=fmt)
    if fingerprint is not None and metadata.get("fingerprint") != fingerprint():
        raise InputError(
            path,
            f"built with another encoder ({metadata.get('model_path')}: its files differ)",
            field="fingerprint",
            expected="a cache rebuilt with the configured encoder",
        )
    return metadata, tensors
