"""The LaViLa-style video-text dual encoder (dual-encoder-and-steps.md section 1), over precomputed features.

- :class:`VideoTower`: the feature rows of a window ``[B, L, Dv]`` -> a linear stem, a zero-initialised
  temporal position embedding (as LaViLa's TimeSformer), ``layers`` transformer blocks, attention pooling
  (one learned query) -> a projection to ``embed_dim`` (256), L2-normalised.
- The text tower is a frozen local Hugging Face encoder (:mod:`egonlq.dualenc.text`) whose pooled sentence
  vector ``[B, H]`` goes through ``text_proj`` (trainable, random init) to ``embed_dim``, L2-normalised.
  With ``unfreeze_layers > 0`` the encoder's last layers train too and are saved with the checkpoint.
- ``logit_scale`` = log(1 / temperature), frozen at 1/0.07 unless ``learn_temperature``.

Checkpoints are ``model.safetensors`` + ``config.json`` (:meth:`DualEncoder.save_pretrained`); the weights
load into the module with plain ``torch`` + ``safetensors`` and the config's fields.
"""

from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from torch import nn

from egonlq.errors import InputError
from egonlq.grounding.tensor_files import load_checkpoint_weights, read_model_config
from egonlq.io import atomic_path, write_json

MODEL_TYPE = "egonlq-dual-encoder"
WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"
MAX_LOGIT_SCALE = math.log(100.0)  # CLIP's clamp of a learned temperature


@dataclass(frozen=True)
class DualEncoderConfig:
    """Architecture of a dual encoder; ``video_dim`` and ``text_dim`` come from the data and the encoder."""

    video_dim: int = 256
    text_dim: int = 384
    embed_dim: int = 256
    width: int = 128  # the video tower's model width
    layers: int = 1  # temporal transformer blocks (0: attention pooling of the stem only)
    heads: int = 4
    max_rows: int = 8  # feature rows per window; longer windows are subsampled uniformly
    dropout: float = 0.1
    temperature: float = 0.07
    learn_temperature: bool = False
    unfreeze_layers: int = 0  # last layers of the text encoder that train (0: frozen, pooled text cached)
    text_model: str = ""  # the text encoder's name (provenance; the folder is given at load time)

    def __post_init__(self) -> None:
        problems = [
            f"{n} must be >= 1"
            for n in ("video_dim", "text_dim", "embed_dim", "width", "heads", "max_rows")
            if getattr(self, n) < 1
        ]
        if self.layers < 0 or self.unfreeze_layers < 0:
            problems.append("layers and unfreeze_layers must be >= 0")
        if self.width % self.heads:
            problems.append(f"width {self.width} is not a multiple of heads {self.heads}")
        if not 0.0 <= self.dropout < 1.0:
            problems.append(f"dropout {self.dropout} is not in [0, 1)")
        if not self.temperature > 0:
            problems.append(f"temperature {self.temperature} must be > 0")
        if problems:
            raise ValueError("invalid DualEncoderConfig: " + "; ".join(problems))


class VideoTower(nn.Module):
    """Window feature rows -> one L2-normalised embedding."""

    def __init__(self, config: DualEncoderConfig) -> None:
        super().__init__()
        self.stem = nn.Linear(config.video_dim, config.width)
        self.position = nn.Parameter(torch.zeros(config.max_rows, config.width))  # zero-init, as LaViLa
        block = nn.TransformerEncoderLayer(
            config.width,
            config.heads,
            dim_feedforward=4 * config.width,
            dropout=config.dropout,
            batch_first=True,
            norm_first=True,
        )
        self.blocks = nn.ModuleList([copy.deepcopy(block) for _ in range(config.layers)])
        self.pool_query = nn.Linear(config.width, 1)  # attention pooling: one score per row
        self.norm = nn.LayerNorm(config.width)
        self.proj = nn.Linear(config.width, config.embed_dim)

    def tokens(self, rows: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The per-row tokens before pooling ``[B, L, W]`` (what the narrator attends to)."""
        # rows [B, L, Dv], mask [B, L] (True = a real row; every window has at least one)
        x = self.stem(rows) + self.position[: rows.shape[1]]  # [B, L, W]
        for block in self.blocks:
            x = block(x, src_key_padding_mask=~mask)
        return x

    def forward(self, rows: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = self.tokens(rows, mask)  # [B, L, W]
        scores = self.pool_query(x).squeeze(-1).masked_fill(~mask, float("-inf"))  # [B, L]
        pooled = (scores.softmax(dim=-1).unsqueeze(-1) * x).sum(dim=1)  # [B, W]
        return F.normalize(self.proj(self.norm(pooled)), dim=-1)  # [B, E]


class DualEncoder(nn.Module):
    """Video tower + text projection (+ the trainable part of the text encoder) + the temperature."""

    def __init__(self, config: DualEncoderConfig, text_encoder: nn.Module | None = None) -> None:
        super().__init__()
        self.config = config
        self.video = VideoTower(config)
        self.text_proj = nn.Linear(config.text_dim, config.embed_dim)
        self.logit_scale = nn.Parameter(
            torch.tensor(math.log(1.0 / config.temperature)), requires_grad=config.learn_temperature
        )
        # Registered only when some of its layers train: then its weights belong to the checkpoint.
        self.text_encoder = text_encoder if config.unfreeze_layers > 0 else None

    def encode_video(self, rows: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``[B, L, Dv]`` rows and ``[B, L]`` mask -> ``[B, E]`` unit vectors."""
        return self.video(rows, mask)

    def encode_text(self, pooled: torch.Tensor) -> torch.Tensor:
        """``[B, H]`` pooled sentence vectors of the text encoder -> ``[B, E]`` unit vectors."""
        return F.normalize(self.text_proj(pooled), dim=-1)

    def forward(
        self, rows: torch.Tensor, mask: torch.Tensor, pooled: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Both towers at once (what DistributedDataParallel wraps): ``[B, E]`` video and text vectors."""
        return self.encode_video(rows, mask), self.encode_text(pooled)

    def scale(self) -> torch.Tensor:
        """``1 / temperature`` (a learned one is clamped at 100, as CLIP)."""
        return self.logit_scale.clamp(max=MAX_LOGIT_SCALE).exp()

    def save_pretrained(self, directory: str | Path) -> None:
        """``model.safetensors`` (the state dict) and ``config.json``, both written atomically."""
        directory = Path(directory)
        tensors = {name: t.detach().cpu().contiguous() for name, t in self.state_dict().items()}
        with atomic_path(directory / WEIGHTS_NAME) as tmp:
            save_file(tensors, str(tmp), metadata={"format": "pt"})
        write_json({"model_type": MODEL_TYPE, **asdict(self.config)}, directory / CONFIG_NAME, indent=2)

    @classmethod
    def from_pretrained(
        cls, directory: str | Path, *, text_encoder: nn.Module | None = None, device: str = "cpu"
    ) -> DualEncoder:
        """Rebuild a saved model; ``text_encoder`` (the HF module) is needed when some of it was trained."""
        directory = Path(directory)
        config = read_config(directory / CONFIG_NAME)
        if config.unfreeze_layers > 0 and text_encoder is None:
            raise InputError(
                directory / CONFIG_NAME,
                f"the checkpoint trained {config.unfreeze_layers} text encoder layers: give the encoder",
                field="unfreeze_layers",
            )
        model = cls(config, text_encoder)
        load_checkpoint_weights(model, directory / WEIGHTS_NAME, CONFIG_NAME)
        return model.to(device)


def read_config(path: Path) -> DualEncoderConfig:
    """The :class:`DualEncoderConfig` of a ``config.json`` written by :meth:`DualEncoder.save_pretrained`."""
    return read_model_config(path, DualEncoderConfig, MODEL_TYPE, "dual encoder")
