"""LaViLa's NARRATOR (dual-encoder-and-steps.md section 2): a frozen causal LM conditioned on video.

- The frozen video tower of a trained dual encoder (:class:`egonlq.dualenc.model.VideoTower`) turns a
  window's feature rows ``[B, L, Dv]`` into per-row tokens ``[B, L, W]``.
- :class:`AttentionalPooler`: ``num_queries`` learnable queries (256 in the reference, fewer by config)
  cross-attend to those tokens -> visual tokens ``[B, Q, H]`` in the LM's width.
- :class:`GatedCrossAttention`: before every ``cross_every``-th block of the LM, the text stream attends to
  the visual tokens; attention and feed-forward outputs are scaled by ``tanh(gate)`` with gates initialised
  at 0, so at step 0 the LM computes exactly what it computed alone.
- The LM (any causal LM whose block list can be found, GPT-2 family in the reference) stays frozen; only the
  pooler, the cross-attention blocks and their gates train.

Checkpoints: ``narrator.safetensors`` (the trainable weights only) + ``narrator.json`` (config and the
folders of the LM and the video tower they go with).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from pathlib import Path

import torch
from torch import nn

from egonlq.dualenc.model import CONFIG_NAME as DE_CONFIG
from egonlq.dualenc.model import DualEncoder, VideoTower
from egonlq.errors import InputError
from egonlq.io import read_json

MODEL_TYPE = "egonlq-narrator"
WEIGHTS_NAME = "narrator.safetensors"
CONFIG_NAME = "narrator.json"
MAX_TEXT_TOKENS = 77  # the reference's context (CLIP's 77 tokens)

# Where causal LMs keep their list of blocks (GPT-2, GPT-J/Neo, Llama/Mistral/Qwen, GPT-NeoX, OPT).
_BLOCK_PATHS = ("transformer.h", "model.layers", "gpt_neox.layers", "model.decoder.layers")


@dataclass(frozen=True)
class NarratorConfig:
    """The trainable part of a narrator (the LM's and the video tower's sizes come from their folders)."""

    num_queries: int = 32  # learnable queries of the attentional pooler (256 in the reference)
    heads: int = 4  # attention heads of the pooler and the cross-attention blocks
    cross_every: int = 1  # a gated cross-attention block before every k-th LM block (1: all, as GPT-2 base)
    video_width: int = 128  # width of the video tower's tokens (checked against the tower)
    lm_width: int = 768  # hidden size of the LM (checked against the LM)

    def __post_init__(self) -> None:
        problems = [
            f"{n} must be >= 1"
            for n in ("heads", "cross_every", "video_width", "lm_width")
            if getattr(self, n) < 1
        ]
        if not 1 <= self.num_queries < 256:
            problems.append(f"num_queries {self.num_queries} is not in [1, 256)")
        if self.lm_width % self.heads:
            problems.append(f"lm_width {self.lm_width} is not a multiple of heads {self.heads}")
        if problems:
            raise ValueError("invalid NarratorConfig: " + "; ".join(problems))


class AttentionalPooler(nn.Module):
    """``[B, L, W]`` video tokens -> ``[B, Q, H]`` visual tokens (learnable queries attend to the tokens)."""

    def __init__(self, config: NarratorConfig) -> None:
        super().__init__()
        self.queries = nn.Parameter(torch.randn(config.num_queries, config.lm_width) * 0.02)
        self.norm_kv = nn.LayerNorm(config.video_width)
        self.attn = nn.MultiheadAttention(
            config.lm_width, config.heads, kdim=config.video_width, vdim=config.video_width, batch_first=True
        )
        self.norm = nn.LayerNorm(config.lm_width)

    def forward(self, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        kv = self.norm_kv(tokens)  # [B, L, W]
        q = self.queries.unsqueeze(0).expand(tokens.shape[0], -1, -1)  # [B, Q, H]
        out, _ = self.attn(q, kv, kv, key_padding_mask=~mask, need_weights=False)  # [B, Q, H]
        return self.norm(out)


class GatedCrossAttention(nn.Module):
    """Flamingo's gated block: ``x + tanh(a) * attn(x, visual)``, then ``x + tanh(f) * ff(x)``; a = f = 0."""

    def __init__(self, config: NarratorConfig) -> None:
        super().__init__()
        h = config.lm_width
        self.norm = nn.LayerNorm(h)
        self.attn = nn.MultiheadAttention(h, config.heads, batch_first=True)
        self.attn_gate = nn.Parameter(torch.zeros(()))
        self.ff_norm = nn.LayerNorm(h)
        self.ff = nn.Sequential(nn.Linear(h, 4 * h), nn.GELU(), nn.Linear(4 * h, h))
        self.ff_gate = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor, visual: torch.Tensor) -> torch.Tensor:
        # x [B, T, H], visual [B, Q, H]
        y = self.norm(x)
        attended, _ = self.attn(y, visual, visual, need_weights=False)  # [B, T, H]
        x = x + self.attn_gate.tanh() * attended
        return x + self.ff_gate.tanh() * self.ff(self.ff_norm(x))


class _ConditionedBlock(nn.Module):
    """An LM block behind a gated cross-attention block; the visual tokens are set by :class:`Narrator`."""

    def __init__(self, block: nn.Module, cross: GatedCrossAttention, narrator: Narrator) -> None:
        super().__init__()
        self.block, self.cross = block, cross
        self._narrator = [narrator]  # a list: not a registered submodule (no cycle in the module tree)

    def forward(self, hidden_states: torch.Tensor, *args, **kwargs):
        visual = self._narrator[0].visual
        if visual is None:
            raise RuntimeError("the narrator's LM was called without visual tokens (use Narrator.condition)")
        if visual.shape[0] != hidden_states.shape[0]:
            raise RuntimeError(f"{visual.shape[0]} visual token sets for a batch of {hidden_states.shape[0]}")
        return self.block(self.cross(hidden_states, visual), *args, **kwargs)


def find_blocks(lm: nn.Module, where: str | Path) -> nn.ModuleList:
    """The list of transformer blocks of a causal LM (see ``_BLOCK_PATHS``), or an error naming the model."""
    for path in _BLOCK_PATHS:
        module: object = lm
        for part in path.split("."):
            module = getattr(module, part, None)
        if isinstance(module, nn.ModuleList) and len(module):
            return module
    raise InputError(
        where,
        f"cannot find the transformer blocks of {type(lm).__name__}",
        expected=f"a causal LM with its blocks at one of {list(_BLOCK_PATHS)}",
    )


class Narrator(nn.Module):
    """Frozen video tower + frozen LM + trainable pooler and gated cross-attention blocks."""

    def __init__(
        self, config: NarratorConfig, video: VideoTower, lm: nn.Module, *, where: str | Path = "lm"
    ) -> None:
        super().__init__()
        self.config = config
        lm_width = int(lm.config.hidden_size)
        if lm_width != config.lm_width:
            raise InputError(
                where, f"LM hidden size {lm_width}", field="hidden_size", expected=f"{config.lm_width}"
            )
        video_width = video.stem.out_features
        if video_width != config.video_width:
            raise InputError(
                where,
                f"video tower width {video_width}",
                field="video_width",
                expected=f"{config.video_width}",
            )
        self.video, self.lm = video, lm
        for p in [*video.parameters(), *lm.parameters()]:
            p.requires_grad_(False)
        self.pooler = AttentionalPooler(config)
        blocks = find_blocks(lm, where)
        self.cross = nn.ModuleList(
            GatedCrossAttention(config) for i in range(len(blocks)) if i % config.cross_every == 0
        )
        crosses = iter(self.cross)
        for i in range(len(blocks)):
            if i % config.cross_every == 0:
                blocks[i] = _ConditionedBlock(blocks[i], next(crosses), self)
        self.visual: torch.Tensor | None = None

    def train(self, mode: bool = True) -> Narrator:
        """The frozen parts stay in eval mode (no dropout) whatever the mode of the trainable ones."""
        super().train(mode)
        self.video.eval()
        self.lm.eval()
        return self

    def trainable_state(self) -> dict[str, torch.Tensor]:
        """The weights a checkpoint keeps: the pooler and the cross-attention blocks."""
        return {
            f"{prefix}.{k}": v.detach().cpu().contiguous()
            for prefix, module in (("pooler", self.pooler), ("cross", self.cross))
            for k, v in module.state_dict().items()
        }

    def visual_tokens(self, rows: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``[B, L, Dv]`` window rows -> ``[B, Q, H]`` visual tokens (the video tower runs without grad)."""
        with torch.no_grad():
            tokens = self.video.tokens(rows, mask)  # [B, L, W]
        return self.pooler(tokens, mask)

    def condition(self, visual: torch.Tensor | None) -> None:
        """Set the visual tokens ``[B, Q, H]`` the LM's next calls attend to (one set per sequence)."""
        self.visual = visual

    def forward(
        self, rows: torch.Tensor, mask: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ):
        """Logits ``[B, T, V]`` of the LM over ``input_ids [B, T]`` (BOS first) conditioned on the windows."""
        self.condition(self.visual_tokens(rows, mask))
        try:
            return self.lm(input_ids=input_ids, attention_mask=attention_mask).logits
        finally:
            self.condition(None)


def load_causal_lm(folder: str | Path):
    """``(model, tokenizer)`` of a local causal LM folder; an :class:`InputError` if it is not one."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer
    from transformers.models.auto.modeling_auto import (
        MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
        MODEL_FOR_MASKED_LM_MAPPING_NAMES,
    )

    folder = Path(folder)
    if not (folder / "config.json").is_file():
        raise InputError(
            folder, "LM folder has no config.json", expected="a local Hugging Face causal LM folder"
        )
    try:
        config = AutoConfig.from_pretrained(folder, local_files_only=True)
    except (OSError, ValueError, KeyError) as e:
        raise InputError(folder / "config.json", f"not a readable model config: {e}") from e
    architectures = list(getattr(config, "architectures", None) or [])
    causal = (
        any(a.endswith(("ForCausalLM", "LMHeadModel")) for a in architectures)
        if architectures
        else config.model_type in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES
        and config.model_type not in MODEL_FOR_MASKED_LM_MAPPING_NAMES
    )
    if not causal or getattr(config, "is_encoder_decoder", False):
        raise InputError(
            folder / "config.json",
            f"model type {config.model_type!r} ({', '.join(architectures) or 'no architectures'})"
            " is not a causal LM",
            field="model_type",
            expected="a decoder-only causal LM (gpt2, llama, ...)",
        )
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
        model = AutoModelForCausalLM.from_pretrained(folder, local_files_only=True)
    except (OSError, ValueError) as e:
        raise InputError(folder, f"cannot load the causal LM or its tokenizer: {e}") from e
    if tokenizer.bos_token_id is None or tokenizer.eos_token_id is None:
        raise InputError(folder, "tokenizer has no BOS or EOS token", field="bos_token", expected="both set")
    return model.eval(), tokenizer


def load_video_tower(model_dir: str | Path, *, video_dim: int) -> VideoTower:
    """The video tower of a dual encoder checkpoint, refused when it was trained on other features."""
    model_dir = Path(model_dir)
    encoder = DualEncoder.from_pretrained(model_dir)
    if encoder.config.video_dim != video_dim:
        raise InputError(
            model_dir / DE_CONFIG,
            f"video tower takes {encoder.config.video_dim}-d features",
            field="video_dim",
            expected=f"{video_dim} (the features the narrator reads)",
        )
    return encoder.video.eval()


def read_narrator_config(path: Path) -> tuple[NarratorConfig, dict]:
    """The :class:`NarratorConfig` of a ``narrator.json`` and its provenance fields."""
    raw = read_json(path)
    if not isinstance(raw, dict) or raw.get("model_type") != MODEL_TYPE:
        raise InputError(path, "not a narrator config", field="model_type", expected=repr(MODEL_TYPE))
    known = {f.name for f in fields(NarratorConfig)}
    try:
        config = NarratorConfig(**{k: raw[k] for k in known if k in raw})
    except (TypeError, ValueError) as e:
        raise InputError(path, f"invalid config: {e}") from e
    return config, {k: v for k, v in raw.items() if k not in known}


def config_dict(config: NarratorConfig, **provenance: object) -> dict:
    return {"model_type": MODEL_TYPE, **asdict(config), **provenance}


def load_trainable(narrator: Narrator, state: dict[str, torch.Tensor], *, where: str | Path) -> None:
    """Load ``pooler.*`` / ``cross.*`` weights into the narrator, refusing missing or mis-shaped tensors."""
    expected = narrator.trainable_state()
    missing, unexpected = sorted(expected.keys() - state.keys()), sorted(state.keys() - expected.keys())
    if missing or unexpected:
        raise InputError(
            where, f"narrator tensors do not match: missing {missing[:5]}, unexpected {unexpected[:5]}"
        )
    for name, tensor in state.items():
        if tensor.shape != expected[name].shape:
            raise InputError(
                where, f"shape {list(tensor.shape)}", field=name, expected=f"{list(expected[name].shape)}"
            )
    narrator.pooler.load_state_dict(
        {k[len("pooler.") :]: v for k, v in state.items() if k.startswith("pooler.")}
    )
    narrator.cross.load_state_dict(
        {k[len("cross.") :]: v for k, v in state.items() if k.startswith("cross.")}
    )


def load_narrator(model_dir: str | Path) -> tuple[Narrator, object, dict]:
    """``(narrator, tokenizer, provenance)`` of a checkpoint written by the ``narrator-train`` command: the
    LM and the video tower are loaded from the folders its ``narrator.json`` names."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    model_dir = Path(model_dir)
    if not (model_dir / CONFIG_NAME).is_file():
        raise InputError(model_dir / CONFIG_NAME, "narrator config not found")
    config, provenance = read_narrator_config(model_dir / CONFIG_NAME)
    for key in ("lm_dir", "tower_dir", "video_dim"):
        if key not in provenance:
            raise InputError(model_dir / CONFIG_NAME, "missing field", field=key)
    lm, tokenizer = load_causal_lm(provenance["lm_dir"])
    video = load_video_tower(provenance["tower_dir"], video_dim=int(provenance["video_dim"]))
    narrator = Narrator(config, video, lm, where=provenance["lm_dir"])
    try:
        state = load_file(str(model_dir / WEIGHTS_NAME))
    except (SafetensorError, OSError) as e:
        raise InputError(model_dir / WEIGHTS_NAME, f"not a readable safetensors file: {e}") from e
    load_trainable(narrator, state, where=model_dir / WEIGHTS_NAME)
    return narrator.eval(), tokenizer, provenance
