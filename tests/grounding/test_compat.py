"""Compatibility mode ``official``: the published VSLNet code's text handling and optimizer (issue 15)."""

from __future__ import annotations

import copy
import math

import pytest
import torch

from egonlq.errors import InputError
from egonlq.grounding.nlq_dataset import EncodedText, make_text_source
from egonlq.grounding.train import TransformersV4AdamW, make_optimizer, param_groups


class FakeEncoder:
    """One token per word; returns ones everywhere (padding included) and records the dropout flag of each
    call."""

    hidden_size = 2
    fingerprint = "fake"

    def __init__(self) -> None:
        self.dropout_calls: list[bool] = []

    def embed(self, texts: list[str], *, dropout: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        self.dropout_calls.append(dropout)
        lengths = [len(t.split()) for t in texts]
        mask = torch.tensor([[1.0] * n + [0.0] * (max(lengths) - n) for n in lengths])
        return torch.ones(len(texts), max(lengths), 2), mask


def test_default_zeroes_padding_official_keeps_it_and_drops_out_in_training_only():
    enc = FakeEncoder()
    hidden, _ = EncodedText(enc).embed(["a b", "a"], training=True)
    assert hidden[1, 1].tolist() == [0.0, 0.0] and enc.dropout_calls == [False, False]  # eval mode, alone
    enc = FakeEncoder()
    official = EncodedText(enc, official=True)
    hidden, mask = official.embed(["a b", "a"], training=True)
    assert hidden[1, 1].tolist() == [1.0, 1.0] and mask[1].tolist() == [1.0, 0.0]
    official.embed(["a b", "a"])
    assert enc.dropout_calls == [True, False]  # evaluation batches stay in eval mode


def test_official_mode_needs_the_encoder(tmp_path):
    with pytest.raises(InputError, match="official") as e:
        make_text_source(
            "cache", text_cache=tmp_path / "x", text_model=tmp_path, max_len=8, compat="official"
        )
    assert e.value.field == "text"
    with pytest.raises(ValueError, match="compatibility"):
        make_text_source("cache", text_cache=None, text_model=tmp_path, max_len=8, compat="reference")


def test_transformers_v4_adamw_by_hand():
    lr, wd, eps, b1, b2 = 0.1, 0.5, 1e-6, 0.9, 0.999
    p = torch.nn.Parameter(torch.tensor([1.0]))
    opt = TransformersV4AdamW([{"params": [p], "weight_decay": wd}], lr=lr, eps=eps)
    w, m, v = 1.0, 0.0, 0.0
    for t, g in enumerate((0.5, -2.0), start=1):
        p.grad = torch.tensor([g])
        opt.step()
        m, v = b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g * g
        w = w - lr * math.sqrt(1 - b2**t) / (1 - b1**t) * m / (math.sqrt(v) + eps)
        w = w - lr * wd * w  # decay after the update, on the updated weight
        assert p.item() == pytest.approx(w, rel=1e-6)
    q = torch.nn.Parameter(torch.tensor([1.0]))
    torch_opt = torch.optim.AdamW([{"params": [q], "weight_decay": wd}], lr=lr, eps=eps)
    for g in (0.5, -2.0):
        q.grad = torch.tensor([g])
        torch_opt.step()
    assert abs(q.item() - p.item()) > 1e-4  # the modes differ measurably


def test_make_optimizer_picks_by_mode():
    model = torch.nn.Linear(2, 2)
    assert isinstance(make_optimizer(model, 1e-3, 0.01, "official"), TransformersV4AdamW)
    default = make_optimizer(model, 1e-3, 0.01, "egonlq")
    assert type(default) is torch.optim.AdamW
    assert [g["weight_decay"] for g in default.param_groups] == [0.01, 0.0]
    assert all(g["fused"] for g in default.param_groups)  # one kernel for every parameter


def test_fused_adamw_matches_the_per_tensor_update():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(5, 7), torch.nn.LayerNorm(7), torch.nn.Linear(7, 3))
    loop = copy.deepcopy(model)
    fused = make_optimizer(model, 1e-2, 0.01, "egonlq")
    plain = torch.optim.AdamW(param_groups(loop, 0.01), lr=1e-2, betas=(0.9, 0.999), eps=1e-6, foreach=False)
    for _ in range(20):
        x = torch.randn(4, 5)
        for net, opt in ((model, fused), (loop, plain)):
            opt.zero_grad()
            net(x).square().sum().backward()
            opt.step()
    for a, b in zip(model.parameters(), loop.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("scale", [1e-3, 1e3])  # gradients under the norm, and clipped
def test_flat_gradients_zero_and_clip_as_clip_grad_norm(scale):
    """``_FlatGradients``: backward adds into the one buffer (the gradients stay its views step after step),
    zeroing clears it, and clipping matches ``clip_grad_norm_`` up to the summation order of the norm; the
    official mode keeps torch's per-tensor handling."""
    from egonlq.grounding.train import _FlatGradients, _PerTensorGradients

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(5, 7), torch.nn.LayerNorm(7), torch.nn.Linear(7, 3))
    reference = copy.deepcopy(model)
    flat, per_tensor = _FlatGradients(model), _PerTensorGradients(reference)
    for _ in range(3):
        x = torch.randn(4, 5)
        for net, gradients in ((model, flat), (reference, per_tensor)):
            gradients.zero()
            (scale * net(x).square().sum()).backward()
            gradients.clip(1.0)
        for p in model.parameters():
            assert p.grad.untyped_storage().data_ptr() == flat.buffer.untyped_storage().data_ptr()
        for a, b in zip(model.parameters(), reference.parameters(), strict=True):
            torch.testing.assert_close(a.grad, b.grad, rtol=1e-6, atol=1e-9)
    norm = torch.linalg.vector_norm(flat.buffer).item()
    if scale > 1:  # clipped to max_norm (times norm / (norm + 1e-6))
        assert norm == pytest.approx(1.0, rel=1e-5)
    else:  # left as it was: far under the norm
        assert norm < 0.1
    flat.zero()
    assert not flat.buffer.any() and all(not p.grad.any() for p in model.parameters())
    per_tensor.zero()
    assert all(p.grad is None for p in reference.parameters())
