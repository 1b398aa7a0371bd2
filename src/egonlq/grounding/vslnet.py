"""VSLNet (Zhang et al., ACL 2020) as used by the Ego4D NLQ baseline, block by block (vslnet.md 5, 6, 9).

Video features and the token embeddings of a frozen text encoder are projected to ``dim``, encoded by ONE
shared feature encoder, fused by context-query attention and query concatenation, re-weighted by the
query-guided highlighting scores and read out by a conditioned span predictor into start and end logits.
``VSLNetConfig(highlight=False)`` is VSLBase: no highlighting layer and no highlighting loss.

Shapes: B batch, Lv padded video length, Lq padded token length, Dv video feature size, Ht text encoder
hidden size, d model size. Masks hold 1 at real positions and 0 at padding.

Checkpoints are a plain ``state_dict`` in ``model.safetensors`` plus ``config.json`` (the config fields), so
they load with torch + safetensors + json alone.
"""

from __future__ import annotations

import functools
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from egonlq.grounding.presets import REFERENCE
from egonlq.grounding.tensor_files import load_checkpoint_weights, read_model_config, write_safetensors
from egonlq.io import write_json

WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"
MODEL_TYPE = "vslnet"
MASK_VALUE = -1e30


@dataclass
class VSLNetConfig:
    video_dim: int = 2304  # 2304 SlowFast / InternVideo, 256 EgoVLP, 1536 Omnivore
    text_dim: int = 384  # hidden size of the frozen text encoder (384 for MiniLM, 768 for BERT-base)
    dim: int = REFERENCE["model"]["dim"]  # the reference's sizes (vslnet.md 5); the demo's are smaller
    num_heads: int = REFERENCE["model"]["num_heads"]
    dropout: float = REFERENCE["model"]["dropout"]
    # rows of the position tables: the longest video (units) or text (tokens)
    max_pos_len: int = REFERENCE["model"]["max_pos_len"]
    kernel_size: int = 7
    num_conv_layers: int = 4
    highlight: bool = True  # False: VSLBase
    highlight_lambda: float = 5.0
    extend: float = 0.1  # for the dataset: highlight target = span widened by round(extend * length) per side

    def __post_init__(self) -> None:
        if self.dim % self.num_heads:
            raise ValueError(f"dim={self.dim} is not a multiple of num_heads={self.num_heads}")
        if self.kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd to keep the length, got {self.kernel_size}")


class VSLNetOutput(NamedTuple):
    start_logits: Tensor  # [B, Lv], MASK_VALUE at padding
    end_logits: Tensor  # [B, Lv]
    highlight: Tensor | None  # [B, Lv] scores in (0, 1), 0 at padding; None for VSLBase


class VSLNetLoss(NamedTuple):
    total: Tensor  # span + highlight_lambda * highlight
    span: Tensor  # CE(start) + CE(end), batch means
    highlight: Tensor  # weighted BCE over all real units of the batch (0 for VSLBase)


def mask_logits(x: Tensor, mask: Tensor) -> Tensor:
    """Push padding positions to -1e30 (additive, as in the reference)."""
    return x + (1.0 - mask) * MASK_VALUE


class Dropout(nn.Dropout):
    """``nn.Dropout`` whose CPU mask comes from 15-bit integers of torch's generator (``random_``) instead of
    ``bernoulli_``: dropout was a third of a CPU training step, and this mask is ~3x faster forward and
    backward (issue 15). Same semantics (each element zeroed with probability ``p`` rounded to a multiple of
    2^-15, survivors scaled by ``1 / (1 - p)``), drawn from the same seeded generator, so runs stay
    reproducible; other devices use torch's kernel."""

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0.0 or x.device.type != "cpu" or self.inplace:
            return super().forward(x)
        if self.p == 1.0:
            return x * 0.0
        n = x.numel()
        low15, threshold, keep_scale = _mask_constants(self.p)
        words = torch.empty((n + 3) // 4, dtype=torch.int64).random_()  # 63 random bits each
        bits = words.view(torch.int16)[:n].view(x.shape).bitwise_and_(low15)  # 15 bits per element
        scale = torch.empty_like(x)
        torch.ge(bits, threshold, out=scale)  # 1.0 where kept, straight into x's dtype
        # a product with a constant tensor: autograd keeps only the scale, its gradient is grad * scale
        return x * scale.mul_(keep_scale)  # 2x faster than where()


@functools.lru_cache(maxsize=8)
def _mask_constants(p: float) -> tuple[Tensor, Tensor, Tensor]:
    """The mask's constants as 0-dim tensors of the dtype they meet (int16 bits; a float32 scale, read at
    full precision as a Python float would be): Python numbers would be converted into a tensor on every
    call, three small ops per dropout (~2 % of a demo training step). The same values bit for bit."""
    return (
        torch.tensor(0x7FFF, dtype=torch.int16),
        torch.tensor(round(p * 2**15), dtype=torch.int16),
        torch.tensor(1.0 / (1.0 - p), dtype=torch.float32),
    )


class VisualProjection(nn.Module):
    """Dropout on the raw video features, then a per-position Linear(Dv -> d)."""

    def __init__(self, video_dim: int, dim: int, dropout: float):
        super().__init__()
        self.dropout = Dropout(dropout)
        self.linear = nn.Linear(video_dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.linear(self.dropout(x))  # [B, Lv, Dv] -> [B, Lv, d]


class DepthwiseSeparableConv(nn.Module):
    """One pre-norm residual conv sub-block: ``x + Dropout(ReLU(PW(DW(LN(x)))))``."""

    def __init__(self, dim: int, kernel_size: int, dropout: float):
        super().__init__()
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.depthwise = nn.Conv1d(dim, dim, kernel_size, padding=kernel_size // 2, groups=dim, bias=False)
        self.pointwise = nn.Conv1d(dim, dim, kernel_size=1)
        self.dropout = Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        # The depthwise conv as a 2-D conv on [B, d, 1, L] in channels-last layout, which is the memory of
        # [B, L, d] as it is: no transposed copy either way, the same weights and values, ~3.5x faster forward
        # and backward on CPU than Conv1d on the transposed input (issue 15). No masking inside the convs.
        k = self.depthwise.kernel_size[0]
        y = F.conv2d(
            self.norm(x).transpose(1, 2).unsqueeze(2),
            self.depthwise.weight.unsqueeze(2),
            padding=(0, k // 2),
            groups=self.depthwise.groups,
        )
        y = y.squeeze(2).transpose(1, 2)  # [B, L, d]
        # the kernel-1 pointwise conv as the Linear it is: the same weights ([d, d, 1]) and values up to
        # rounding, ~1.2x faster per CPU training step than the conv kernel (issue 15)
        y = F.relu(F.linear(y, self.pointwise.weight.squeeze(2), self.pointwise.bias))
        return x + self.dropout(y)  # [B, L, d]


class MultiHeadAttention(nn.Module):
    """Pre-norm self-attention with a key mask, then a pre-norm Linear, both residual."""

    def __init__(self, dim: int, num_heads: int, dropout: float):
        super().__init__()
        self.num_heads, self.head_dim = num_heads, dim // num_heads
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.query = nn.Linear(dim, dim)
        self.key = nn.Linear(dim, dim)
        self.value = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.out = nn.Linear(dim, dim)
        self.dropout = Dropout(dropout)

    def split_heads(self, x: Tensor) -> Tensor:
        B, L, _ = x.shape
        return x.view(B, L, self.num_heads, self.head_dim).transpose(1, 2)  # [B, h, L, d/h]

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        B, L, d = x.shape
        y = self.dropout(self.norm1(x))
        q, k, v = (self.split_heads(proj(y)) for proj in (self.query, self.key, self.value))
        # in place: a fresh [B, h, L, L] tensor for the division and one for the mask cost more than the
        # product itself on CPU (the values are the same; the product's backward needs only q and k)
        scores = (q @ k.transpose(-2, -1)).div_(math.sqrt(self.head_dim))  # [B, h, L, L]
        scores.add_((1.0 - mask[:, None, None, :]) * MASK_VALUE)  # mask the keys: mask_logits
        attn = self.dropout(F.softmax(scores, dim=-1))
        o = (attn @ v).transpose(1, 2).reshape(B, L, d)  # merge heads: [B, L, d]
        r = self.dropout(o) + x
        return self.dropout(self.out(self.dropout(self.norm2(r)))) + r


class FeatureEncoder(nn.Module):
    """Learned positions, ``num_conv_layers`` depthwise-separable conv sub-blocks, one attention sub-block."""

    def __init__(self, config: VSLNetConfig):
        super().__init__()
        self.position = nn.Embedding(config.max_pos_len, config.dim)
        self.convs = nn.ModuleList(
            DepthwiseSeparableConv(config.dim, config.kernel_size, config.dropout)
            for _ in range(config.num_conv_layers)
        )
        self.attention = MultiHeadAttention(config.dim, config.num_heads, config.dropout)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        L = x.size(1)
        if L > self.position.num_embeddings:
            raise ValueError(
                f"sequence of {L} positions exceeds max_pos_len={self.position.num_embeddings}: "
                "pool the video features and truncate the text tokens first"
            )
        x = x + self.position(torch.arange(L, device=x.device))  # [B, L, d]
        for conv in self.convs:
            x = conv(x)
        return self.attention(x, mask)  # [B, L, d]


class ContextQueryAttention(nn.Module):
    """Trilinear video-text similarity, then video-to-text (A) and text-to-video (Bq) attention."""

    def __init__(self, dim: int, dropout: float):
        super().__init__()
        self.w_c = nn.Parameter(nn.init.xavier_uniform_(torch.empty(dim, 1)))
        self.w_q = nn.Parameter(nn.init.xavier_uniform_(torch.empty(dim, 1)))
        self.w_m = nn.Parameter(nn.init.xavier_uniform_(torch.empty(1, 1, dim)))
        self.dropout = Dropout(dropout)
        self.linear = nn.Linear(4 * dim, dim)

    def forward(self, c: Tensor, q: Tensor, c_mask: Tensor, q_mask: Tensor) -> Tensor:
        # c: [B, Lv, d] video, q: [B, Lq, d] text; the dropout copies only feed the similarity
        c_, q_ = self.dropout(c), self.dropout(q)
        # S = (C' w_C) + (Q' w_Q)^T + (C' * w_m) Q'^T: [B, Lv, 1] + [B, 1, Lq] + [B, Lv, Lq]
        s = c_ @ self.w_c + (q_ @ self.w_q).transpose(1, 2) + (c_ * self.w_m) @ q_.transpose(1, 2)
        s_r = F.softmax(mask_logits(s, q_mask[:, None, :]), dim=2)  # over the text
        s_c = F.softmax(mask_logits(s, c_mask[:, :, None]), dim=1)  # over the video
        a = s_r @ q  # [B, Lv, d]
        bq = (s_r @ s_c.transpose(1, 2)) @ c  # [B, Lv, d]
        return self.linear(torch.cat([c, a, c * a, c * bq], dim=2))  # [B, Lv, d]


class CQConcatenate(nn.Module):
    """Query concatenation: attention-pool the text to one vector, append it to every video unit."""

    def __init__(self, dim: int):
        super().__init__()
        self.w_p = nn.Parameter(nn.init.xavier_uniform_(torch.empty(dim, 1)))
        self.linear = nn.Linear(2 * dim, dim)

    def forward(self, f: Tensor, q: Tensor, q_mask: Tensor) -> Tensor:
        alpha = F.softmax(mask_logits((q @ self.w_p).squeeze(2), q_mask), dim=1)  # [B, Lq]
        pooled = (alpha.unsqueeze(2) * q).sum(dim=1)  # [B, d]
        pooled = pooled.unsqueeze(1).expand(-1, f.size(1), -1)  # [B, Lv, d]
        return self.linear(torch.cat([f, pooled], dim=2))  # [B, Lv, d]


class HighlightLayer(nn.Module):
    """Query-guided highlighting: a per-unit foreground score in (0, 1), 0 at padding."""

    def __init__(self, dim: int):
        super().__init__()
        self.linear = nn.Linear(dim, 1)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        return torch.sigmoid(mask_logits(self.linear(x).squeeze(2), mask))  # [B, Lv]


class ConditionedPredictor(nn.Module):
    """Span predictor whose end features are computed from its start features."""

    def __init__(self, config: VSLNetConfig):
        super().__init__()
        d = config.dim
        self.encoder = FeatureEncoder(config)  # its own weights and position table
        self.start_norm = nn.LayerNorm(d, eps=1e-6)
        self.end_norm = nn.LayerNorm(d, eps=1e-6)
        self.start_head = nn.Sequential(nn.Linear(2 * d, d), nn.ReLU(), nn.Linear(d, 1))
        self.end_head = nn.Sequential(nn.Linear(2 * d, d), nn.ReLU(), nn.Linear(d, 1))

    def forward(self, f: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        h_s = self.encoder(f, mask)  # [B, Lv, d]
        h_e = self.encoder(h_s, mask)
        h_s, h_e = self.start_norm(h_s), self.end_norm(h_e)
        start = self.start_head(torch.cat([h_s, f], dim=2)).squeeze(2)  # [B, Lv]
        end = self.end_head(torch.cat([h_e, f], dim=2)).squeeze(2)
        return mask_logits(start, mask), mask_logits(end, mask)


class VSLNet(nn.Module):
    """Video span localisation: start/end logits over the video units for a text query."""

    def __init__(self, config: VSLNetConfig):
        super().__init__()
        self.config = config
        self.video_projection = VisualProjection(config.video_dim, config.dim, config.dropout)
        self.text_projection = nn.Linear(config.text_dim, config.dim)  # no extra dropout on this path
        self.encoder = FeatureEncoder(config)  # ONE encoder, shared by text and video
        self.cq_attention = ContextQueryAttention(config.dim, config.dropout)
        self.cq_concat = CQConcatenate(config.dim)
        self.highlight_layer = HighlightLayer(config.dim) if config.highlight else None
        self.predictor = ConditionedPredictor(config)
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        # xavier-uniform weights and zero biases; position tables keep N(0, 1), LayerNorms (1, 0)
        if isinstance(module, nn.Linear | nn.Conv1d):
            nn.init.xavier_uniform_(module.weight)
            if module.bias is not None:
                nn.init.zeros_(module.bias)

    def forward(self, video: Tensor, video_mask: Tensor, text: Tensor, text_mask: Tensor) -> VSLNetOutput:
        # video [B, Lv, Dv], video_mask [B, Lv], text [B, Lq, Ht] (frozen encoder tokens), text_mask [B, Lq]
        video_mask, text_mask = video_mask.float(), text_mask.float()
        v = self.video_projection(video)  # [B, Lv, d]
        q = self.text_projection(text)  # [B, Lq, d]
        q = self.encoder(q, text_mask)
        v = self.encoder(v, video_mask)
        f = self.cq_attention(v, q, video_mask, text_mask)  # [B, Lv, d]
        f = self.cq_concat(f, q, text_mask)  # [B, Lv, d]
        h = None
        if self.highlight_layer is not None:
            h = self.highlight_layer(f, video_mask)  # [B, Lv]
            f = f * h.unsqueeze(2)
        start_logits, end_logits = self.predictor(f, video_mask)  # [B, Lv] each
        return VSLNetOutput(start_logits, end_logits, h)

    def loss(
        self,
        out: VSLNetOutput,
        s_ind: Tensor,
        e_ind: Tensor,
        video_mask: Tensor,
        highlight_labels: Tensor | None = None,
    ) -> VSLNetLoss:
        """Span cross-entropy plus ``highlight_lambda`` x the weighted highlighting BCE (vslnet.md 6).

        ``s_ind``, ``e_ind``: ``[B]`` unit labels; ``highlight_labels``: ``[B, Lv]`` 0/1 targets from
        :func:`egonlq.grounding.spans.highlight_labels` (zero-padded), required unless the config is VSLBase.
        """
        span = F.cross_entropy(out.start_logits, s_ind) + F.cross_entropy(out.end_logits, e_ind)
        if out.highlight is None:
            return VSLNetLoss(span, span, span.new_zeros(()))
        if highlight_labels is None:
            raise ValueError("highlight_labels are required when the model has a highlighting layer")
        mask, y = video_mask.float(), highlight_labels.float()
        # BCE on probabilities (log clamped at -100, like nn.BCELoss); autocast refuses it, so run in fp32
        with torch.autocast(out.highlight.device.type, enabled=False):
            bce = F.binary_cross_entropy(out.highlight.float(), y, reduction="none")  # [B, Lv]
        weights = torch.where(y > 0, 2.0, 1.0)
        hl = (bce * weights * mask).sum() / (mask.sum() + 1e-12)  # one mean over all units of the batch
        return VSLNetLoss(span + self.config.highlight_lambda * hl, span, hl)

    # ---- checkpoints ----

    def save_pretrained(self, directory: str | Path) -> None:
        """Write ``model.safetensors`` (the state dict) and ``config.json`` (the config fields) atomically."""
        directory = Path(directory)
        tensors = {name: t.detach().cpu().contiguous() for name, t in self.state_dict().items()}
        write_safetensors(tensors, directory / WEIGHTS_NAME, {"format": "pt"})
        write_json({"model_type": MODEL_TYPE, **asdict(self.config)}, directory / CONFIG_NAME, indent=2)

    @classmethod
    def from_pretrained(cls, directory: str | Path, *, device: str | torch.device = "cpu") -> VSLNet:
        """Rebuild a model saved by :meth:`save_pretrained`; any mismatch names the file and the tensor."""
        directory = Path(directory)
        config = _read_config(directory / CONFIG_NAME)
        model = cls(config)
        load_checkpoint_weights(model, directory / WEIGHTS_NAME, CONFIG_NAME)
        return model.to(device)


def _read_config(path: Path) -> VSLNetConfig:
    return read_model_config(path, VSLNetConfig, MODEL_TYPE, "VSLNet")


@torch.no_grad()
def decode_topk(start_logits: Tensor, end_logits: Tensor, mask: Tensor, k: int = 5) -> tuple[Tensor, Tensor]:
    """Top-k inclusive spans ``(s [B, k], e [B, k])`` by ``p_start[s] * p_end[e]``, ``s <= e`` (vslnet.md 9).

    Softmaxes run over the padded length (padding has probability 0); cells are ranked row-major like the
    reference. Only cells inside the sample's ``v_len`` count: when it has fewer than ``k`` of them
    (``v_len <= 2``), the remaining slots repeat the best span, so no index ever exceeds ``v_len - 1``.
    """
    W = start_logits.size(1)
    p_s, p_e = F.softmax(start_logits.float(), dim=1), F.softmax(end_logits.float(), dim=1)  # [B, W]
    scores = p_s.unsqueeze(2) * p_e.unsqueeze(1)  # [B, W, W]: P[i, j] = p_s[i] * p_e[j]
    real = mask.bool()
    valid = torch.triu(real.unsqueeze(2) & real.unsqueeze(1))  # s <= e < v_len
    scores = scores.masked_fill(~valid, -1.0).flatten(1)  # [B, W*W], row-major
    scores = F.pad(scores, (0, max(0, k - W * W)), value=-1.0)  # so that k cells always exist
    top, flat = scores.topk(k, dim=1)  # [B, k]
    flat = torch.where(top >= 0, flat, flat[:, :1])
    return flat // W, flat % W
