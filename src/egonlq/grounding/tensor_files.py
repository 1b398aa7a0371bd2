"""Safetensors files with the same bytes for the same tensors and metadata.

The safetensors library writes its JSON header from a hash map whose order changes from process to process
(and between calls), so two identical runs gave files with different bytes. :func:`write_safetensors`
rewrites the header with sorted keys; the tensor data (laid out by the library in a fixed order) and every
offset stay as they are, so any safetensors reader loads the file unchanged.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch
from safetensors.numpy import save as save_numpy
from safetensors.torch import save as save_torch

from egonlq.io import atomic_path

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
