"""Symmetric InfoNCE over the global batch, with same-video duplicate texts masked (LaViLa's loss).

Every rank holds ``b`` pairs; the embeddings of all ranks are gathered WITH gradients (:func:`gather`), so the
negatives are the global batch ``B = world * b``. Rank ``r`` scores its own rows against everyone's:

    S_vt = scale * V_r T_all^T   [b, B]      S_tv = scale * T_r V_all^T   [b, B]
    loss_r = 1/2 [CE(S_vt, r*b + arange(b)) + CE(S_tv, r*b + arange(b))]

Under DistributedDataParallel the parameter gradients are averaged over ranks; the backward of :func:`gather`
sums every rank's gradient of its slice, so the averaged gradient is exactly that of the mean of ``loss_r``,
i.e. of the loss of one process on the concatenated batch (tested with two gloo processes).

False negatives: two pairs of the same video with the identical (normalised) text are not negatives of each
other; their logits are set to ``-inf`` in both directions (the positive of a row is never masked).
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F


class _GatherWithGrad(torch.autograd.Function):
    """``all_gather`` whose backward gives each rank the sum over ranks of the gradient of its slice."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:  # noqa: ANN001
        parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, x.contiguous())
        return torch.cat(parts)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # noqa: ANN001
        grad = grad.contiguous()
        dist.all_reduce(grad)  # sum over ranks (gloo has no reduce_scatter)
        b = grad.shape[0] // dist.get_world_size()
        rank = dist.get_rank()
        return grad[rank * b : (rank + 1) * b]


def distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def gather(x: torch.Tensor) -> torch.Tensor:
    """The rows of every rank, concatenated in rank order, differentiable; ``x`` itself on one process."""
    return _GatherWithGrad.apply(x) if distributed() else x


def gather_ids(x: torch.Tensor) -> torch.Tensor:
    """Integer tensors (video and text ids) of every rank, concatenated; no gradient."""
    if not distributed():
        return x
    parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, x.contiguous())
    return torch.cat(parts)


def false_negative_mask(
    video_ids: torch.Tensor,
    text_ids: torch.Tensor,
    all_video_ids: torch.Tensor,
    all_text_ids: torch.Tensor,
    offset: int,
) -> torch.Tensor:
    """``[b, B]`` True where row ``i`` and column ``j`` share video and text but are different pairs."""
    same = (video_ids[:, None] == all_video_ids[None, :]) & (text_ids[:, None] == all_text_ids[None, :])
    own = torch.arange(len(video_ids), device=same.device) + offset
    same[torch.arange(len(video_ids), device=same.device), own] = False
    return same


def info_nce(
    video: torch.Tensor,
    text: torch.Tensor,
    scale: torch.Tensor,
    *,
    video_ids: torch.Tensor | None = None,
    text_ids: torch.Tensor | None = None,
) -> torch.Tensor:
    """Symmetric InfoNCE of this rank's ``[b, E]`` unit embeddings against the gathered global batch.

    ``video_ids`` / ``text_ids`` (``[b]`` integers) enable the false-negative mask; ``scale`` is 1/tau.
    Returns this rank's loss; its mean over ranks is the global loss.
    """
    all_video, all_text = gather(video), gather(text)
    b = video.shape[0]
    offset = dist.get_rank() * b if distributed() else 0
    labels = torch.arange(b, device=video.device) + offset
    logits_vt = scale * video @ all_text.T  # [b, B]
    logits_tv = scale * text @ all_video.T  # [b, B]
    if video_ids is not None and text_ids is not None:
        mask = false_negative_mask(video_ids, text_ids, gather_ids(video_ids), gather_ids(text_ids), offset)
        logits_vt = logits_vt.masked_fill(mask, float("-inf"))
        logits_tv = logits_tv.masked_fill(mask, float("-inf"))
    return 0.5 * (F.cross_entropy(logits_vt, labels) + F.cross_entropy(logits_tv, labels))
