"""Symmetric InfoNCE: a hand-computed value, the same-video duplicate-text mask, and DDP equivalence."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp

from egonlq.dualenc.loss import false_negative_mask, info_nce
from egonlq.dualenc.model import DualEncoder, DualEncoderConfig


def test_two_pairs_by_hand() -> None:
    # V = the two unit axes, T rotated by 30 degrees: row i has logit scale*cos(30) with its own item and
    # scale*cos(60) with the other, in both directions, so each CE is log(1 + exp(-scale*(cos30 - cos60))).
    v = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    c30, s30 = math.cos(math.pi / 6), math.sin(math.pi / 6)
    t = torch.tensor([[c30, s30], [s30, c30]])
    expected = math.log(1 + math.exp(-(c30 - s30) / 0.07))
    assert info_nce(v, t, torch.tensor(1 / 0.07)).item() == pytest.approx(expected, rel=1e-4)  # float32
    # tau = 1: the softmax of (cos30, cos60)
    scale = torch.tensor(1.0)
    row = -math.log(math.exp(c30) / (math.exp(c30) + math.exp(s30)))
    assert info_nce(v, t, scale).item() == pytest.approx(row, rel=1e-6)


def test_same_video_identical_text_is_not_a_negative() -> None:
    video_ids = torch.tensor([0, 0, 1, 0])
    text_ids = torch.tensor([7, 7, 7, 8])
    mask = false_negative_mask(video_ids, text_ids, video_ids, text_ids, 0)
    # pairs 0 and 1: same video, same text -> masked both ways; pair 2 has the text in another video
    expected = torch.zeros(4, 4, dtype=torch.bool)
    expected[0, 1] = expected[1, 0] = True
    assert torch.equal(mask, expected)
    # The masked loss equals the loss of a batch where the duplicate's logit is absent
    v = torch.nn.functional.normalize(torch.randn(4, 8, generator=torch.Generator().manual_seed(0)), dim=-1)
    t = torch.nn.functional.normalize(torch.randn(4, 8, generator=torch.Generator().manual_seed(1)), dim=-1)
    masked = info_nce(v, t, torch.tensor(2.0), video_ids=video_ids, text_ids=text_ids)
    logits = 2.0 * v @ t.T
    logits[mask] = float("-inf")
    by_hand = 0.5 * (
        torch.nn.functional.cross_entropy(logits, torch.arange(4))
        + torch.nn.functional.cross_entropy(
            2.0 * t @ v.T + torch.where(mask, float("-inf"), 0.0), torch.arange(4)
        )
    )
    assert masked.item() == pytest.approx(by_hand.item(), rel=1e-6)
    assert masked.item() != pytest.approx(info_nce(v, t, torch.tensor(2.0)).item(), rel=1e-3)


CONFIG = DualEncoderConfig(
    video_dim=6, text_dim=5, embed_dim=4, width=8, heads=2, layers=1, max_rows=3, dropout=0.0
)


def _batch() -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(3)
    rows = torch.randn(8, 3, 6, generator=g)
    mask = torch.ones(8, 3, dtype=torch.bool)
    mask[1, 2] = mask[5, 1:] = False
    pooled = torch.randn(8, 5, generator=g)
    video_ids = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    text_ids = torch.tensor([0, 0, 1, 2, 3, 4, 5, 6])  # items 0 and 1: a same-video duplicate across ranks
    return rows, mask, pooled, video_ids, text_ids


def _loss_and_grads(model: torch.nn.Module, core: DualEncoder, part: slice) -> tuple[float, dict]:
    rows, mask, pooled, video_ids, text_ids = _batch()
    video, text = model(rows[part], mask[part], pooled[part])
    loss = info_nce(video, text, core.scale(), video_ids=video_ids[part], text_ids=text_ids[part])
    loss.backward()
    return loss.item(), {n: p.grad.clone() for n, p in core.named_parameters() if p.grad is not None}


def _worker(rank: int, init_file: str, out_dir: str) -> None:
    torch.distributed.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2)
    torch.manual_seed(0)
    core = DualEncoder(CONFIG)
    model = torch.nn.parallel.DistributedDataParallel(core)
    part = slice(4 * rank, 4 * rank + 4)  # rank r holds the r-th half of the global batch
    loss, grads = _loss_and_grads(model, core, part)
    mean = torch.tensor(loss)
    torch.distributed.all_reduce(mean)
    torch.save({"loss": mean.item() / 2, "grads": grads}, Path(out_dir) / f"rank{rank}.pt")
    torch.distributed.destroy_process_group()


@pytest.mark.skipif(not torch.distributed.is_available(), reason="no torch.distributed")
def test_two_gloo_processes_match_one_process_on_the_concatenated_batch(tmp_path: Path) -> None:
    torch.manual_seed(0)
    core = DualEncoder(CONFIG)
    loss, grads = _loss_and_grads(core, core, slice(0, 8))
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    mp.spawn(_worker, args=(str(tmp_path / "init"), str(tmp_path)), nprocs=2, join=True)
    for rank in range(2):
        out = torch.load(tmp_path / f"rank{rank}.pt", weights_only=True)
        assert out["loss"] == pytest.approx(loss, rel=1e-5)
        assert out["grads"].keys() == grads.keys()
        for name, g in grads.items():
            np.testing.assert_allclose(
                out["grads"][name].numpy(), g.numpy(), rtol=1e-4, atol=1e-6, err_msg=name
            )
