"""VSLNet: shapes, masking, the shared encoder, the loss, top-k decoding and checkpoints."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from egonlq.errors import InputError
from egonlq.grounding.spans import highlight_labels
from egonlq.grounding.vslnet import (
    DepthwiseSeparableConv,
    Dropout,
    MultiHeadAttention,
    VSLNet,
    VSLNetConfig,
    decode_topk,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


SMALL = dict(video_dim=12, text_dim=10, dim=16, num_heads=4, max_pos_len=16)


def batch(seed: int = 0):
    """Two samples: video lengths 8 and 5 (padded to 8), text lengths 3 and 6 (padded to 6)."""
    g = torch.Generator().manual_seed(seed)
    video, text = torch.randn(2, 8, 12, generator=g), torch.randn(2, 6, 10, generator=g)
    video_mask = torch.tensor([[1.0] * 8, [1.0] * 5 + [0.0] * 3])
    text_mask = torch.tensor([[1, 1, 1, 0, 0, 0], [1, 1, 1, 1, 1, 1]])
    return video, video_mask, text, text_mask


def test_forward_shapes_and_masking():
    torch.manual_seed(0)
    model = VSLNet(VSLNetConfig(**SMALL)).eval()
    video, video_mask, text, text_mask = batch()
    out = model(video, video_mask, text, text_mask)
    assert out.start_logits.shape == out.end_logits.shape == out.highlight.shape == (2, 8)
    for logits in (out.start_logits, out.end_logits):
        assert torch.all(logits[1, 5:] < -1e29)
        assert torch.all(logits[:, :5].abs() < 1e3)
    assert torch.all(out.highlight[1, 5:] == 0.0)
    assert torch.all((out.highlight[:, :5] > 0) & (out.highlight[:, :5] < 1))


def test_samples_of_a_batch_do_not_interact():
    torch.manual_seed(0)
    model = VSLNet(VSLNetConfig(**SMALL)).eval()
    video, video_mask, text, text_mask = batch()
    out = model(video, video_mask, text, text_mask)
    for i in range(2):
        alone = model(video[i : i + 1], video_mask[i : i + 1], text[i : i + 1], text_mask[i : i + 1])
        torch.testing.assert_close(alone.start_logits, out.start_logits[i : i + 1])
        torch.testing.assert_close(alone.highlight, out.highlight[i : i + 1])
    # the convolutions are not masked (as in the reference): padded content reaches real units, so the
    # dataset must pad with a fixed value (zeros)
    noisy = text.clone()
    noisy[0, 3:] = 10.0
    assert not torch.allclose(model(video, video_mask, noisy, text_mask).end_logits[0], out.end_logits[0])


def test_one_encoder_shared_by_text_and_video_and_vslbase():
    net = VSLNet(VSLNetConfig(**SMALL))
    names = {n for n, _ in net.named_parameters()}
    assert "encoder.position.weight" in names and "predictor.encoder.position.weight" in names
    assert sum(n.endswith("position.weight") for n in names) == 2  # shared E1 + the predictor's E2
    assert any(n.startswith("highlight_layer.") for n in names)
    base = VSLNet(VSLNetConfig(**SMALL, highlight=False))
    assert not any("highlight" in n for n, _ in base.named_parameters())
    n_hl = sum(p.numel() for n, p in net.named_parameters() if n.startswith("highlight_layer."))
    assert n_hl == 16 + 1
    assert sum(p.numel() for p in net.parameters()) - sum(p.numel() for p in base.parameters()) == n_hl
    out = base.eval()(*batch())
    assert out.highlight is None


def test_initialisation():
    torch.manual_seed(0)
    net = VSLNet(VSLNetConfig(video_dim=2304, text_dim=384))
    w = net.video_projection.linear.weight
    assert w.abs().max() <= math.sqrt(6 / (2304 + 128)) and w.abs().max() > 0.9 * math.sqrt(6 / (2304 + 128))
    assert torch.all(net.video_projection.linear.bias == 0)
    assert torch.all(net.encoder.convs[0].pointwise.bias == 0)
    assert net.encoder.convs[0].depthwise.bias is None
    assert net.cq_attention.w_m.shape == (1, 1, 128)
    assert net.cq_attention.w_m.abs().max() <= math.sqrt(6 / 256)
    pos = net.encoder.position.weight
    assert pos.std().item() == pytest.approx(1.0, abs=0.05)  # N(0, 1), not xavier
    assert torch.all(net.encoder.attention.norm1.weight == 1)
    assert net.encoder.attention.norm1.eps == 1e-6


def test_too_long_input_is_refused():
    model = VSLNet(VSLNetConfig(**SMALL))
    text = torch.randn(1, 17, 10)
    with pytest.raises(ValueError, match="max_pos_len=16"):
        model(torch.randn(1, 4, 12), torch.ones(1, 4), text, torch.ones(1, 17))


def test_loss_values_and_highlight_weighting():
    torch.manual_seed(0)
    model = VSLNet(VSLNetConfig(**SMALL)).eval()
    video, video_mask, text, text_mask = batch()
    out = model(video, video_mask, text, text_mask)
    s, e = torch.tensor([2, 1]), torch.tensor([6, 3])
    y = torch.zeros(2, 8)
    y[0] = torch.from_numpy(highlight_labels(2, 6, 8))
    y[1, :5] = torch.from_numpy(highlight_labels(1, 3, 5))
    loss = model.loss(out, s, e, video_mask, y)
    ce = torch.nn.CrossEntropyLoss()
    span = ce(out.start_logits, s) + ce(out.end_logits, e)
    h = out.highlight
    bce = -(y * torch.log(h).clamp(min=-100) + (1 - y) * torch.log(1 - h).clamp(min=-100))  # as nn.BCELoss
    hl = (bce * (1 + y) * video_mask).sum() / video_mask.sum()  # summed over the batch, one mean
    torch.testing.assert_close(loss.span, span)
    torch.testing.assert_close(loss.highlight, hl)
    torch.testing.assert_close(loss.total, span + 5.0 * hl)
    with pytest.raises(ValueError, match="highlight_labels"):
        model.loss(out, s, e, video_mask)
    base = VSLNet(VSLNetConfig(**SMALL, highlight=False)).eval()
    b = base.loss(base(video, video_mask, text, text_mask), s, e, video_mask)
    assert b.highlight.item() == 0.0 and b.total.item() == b.span.item()


def test_loss_decreases_when_overfitting_a_tiny_problem():
    torch.manual_seed(0)
    model = VSLNet(VSLNetConfig(**SMALL, dropout=0.0))
    video, video_mask, text, text_mask = batch()
    s, e = torch.tensor([2, 1]), torch.tensor([6, 3])
    y = torch.zeros(2, 8)
    y[0] = torch.from_numpy(highlight_labels(2, 6, 8))
    y[1, :5] = torch.from_numpy(highlight_labels(1, 3, 5))
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, eps=1e-6)
    losses = []
    for _ in range(40):
        loss = model.loss(model(video, video_mask, text, text_mask), s, e, video_mask, y).total
        assert torch.isfinite(loss)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.2 * losses[0]
    starts, ends = decode_topk(*model.eval()(video, video_mask, text, text_mask)[:2], video_mask, k=1)
    assert starts[:, 0].tolist() == [2, 1] and ends[:, 0].tolist() == [6, 3]


def test_decode_topk_hand_made():
    p_s = torch.tensor([[0.1, 0.6, 0.25, 0.05]])
    p_e = torch.tensor([[0.02, 0.08, 0.5, 0.4]])
    mask = torch.ones(1, 4)
    starts, ends = decode_topk(p_s.log(), p_e.log(), mask)
    # upper-triangle products: (1,2) .30 (1,3) .24 (2,2) .125 (2,3) .10 (0,2) .05 (1,1) .048 ...
    spans = list(zip(starts[0].tolist(), ends[0].tolist(), strict=True))
    assert spans == [(1, 2), (1, 3), (2, 2), (2, 3), (0, 2)]
    # the lower triangle never wins, even where it holds the largest product (3, 0): .56
    p_s, p_e = torch.tensor([[0.05, 0.05, 0.1, 0.8]]), torch.tensor([[0.7, 0.1, 0.1, 0.1]])
    starts, ends = decode_topk(p_s.log(), p_e.log(), mask, k=2)
    assert starts.tolist() == [[3, 0]] and ends.tolist() == [[3, 0]]  # .08, then .035


def test_decode_topk_short_samples_stay_inside_v_len():
    torch.manual_seed(0)
    mask = torch.tensor([[1.0, 1.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0]])
    logits = torch.randn(3, 4) + (1 - mask) * -1e30
    starts, ends = decode_topk(logits, torch.randn(3, 4) + (1 - mask) * -1e30, mask, k=5)
    assert starts.shape == ends.shape == (3, 5)
    assert starts[0].max() <= 1 and ends[0].max() <= 1
    assert set(zip(starts[0].tolist(), ends[0].tolist(), strict=True)) == {(0, 0), (0, 1), (1, 1)}
    assert starts[0, 3:].tolist() == [starts[0, 0].item()] * 2  # the best span fills the missing slots
    assert starts[1].tolist() == [0] * 5 and ends[1].tolist() == [0] * 5
    assert len(set(zip(starts[2].tolist(), ends[2].tolist(), strict=True))) == 5
    # a padded batch of width 1 still gives k spans
    starts, ends = decode_topk(torch.zeros(1, 1), torch.zeros(1, 1), torch.ones(1, 1))
    assert starts.tolist() == [[0] * 5] and ends.tolist() == [[0] * 5]


def test_save_and_from_pretrained_round_trip(tmp_path):
    torch.manual_seed(0)
    model = VSLNet(VSLNetConfig(**SMALL, highlight=False)).eval()
    model.save_pretrained(tmp_path / "ckpt")
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == ["config.json", "model.safetensors"]
    config = json.loads((tmp_path / "ckpt" / "config.json").read_text())
    assert config["model_type"] == "vslnet" and config["highlight"] is False and config["dim"] == 16
    loaded = VSLNet.from_pretrained(tmp_path / "ckpt").eval()
    assert loaded.config == model.config
    x = batch(1)
    a, b = model(*x), loaded(*x)
    assert torch.equal(a.start_logits, b.start_logits) and torch.equal(a.end_logits, b.end_logits)
    # plain safetensors + torch is enough to read the weights
    from safetensors.torch import load_file

    state = load_file(str(tmp_path / "ckpt" / "model.safetensors"))
    position = model.encoder.position.weight.detach().numpy()
    assert np.array_equal(state["encoder.position.weight"].numpy(), position)
    # the same weights give the same bytes (a fixed header order), so identical runs compare equal
    model.save_pretrained(tmp_path / "again")
    weights = (tmp_path / "ckpt/model.safetensors").read_bytes()
    assert (tmp_path / "again/model.safetensors").read_bytes() == weights


def test_corrupt_or_mismatched_checkpoints_name_the_file(tmp_path):
    VSLNet(VSLNetConfig(**SMALL)).save_pretrained(tmp_path)
    weights = tmp_path / "model.safetensors"
    good = weights.read_bytes()
    weights.write_bytes(good[: len(good) // 2])
    with pytest.raises(InputError, match="model.safetensors.*not a readable safetensors"):
        VSLNet.from_pretrained(tmp_path)

    weights.write_bytes(good)
    config = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**config, "video_dim": 13}))
    with pytest.raises(InputError, match=r"video_projection\.linear\.weight.*\[16, 13\]") as err:
        VSLNet.from_pretrained(tmp_path)
    assert "model.safetensors" in str(err.value) and "[16, 12]" in str(err.value)

    (tmp_path / "config.json").write_text(json.dumps({**config, "highlight": False}))
    with pytest.raises(InputError, match="unexpected.*highlight_layer.linear.bias"):
        VSLNet.from_pretrained(tmp_path)

    (tmp_path / "config.json").write_text(json.dumps({**config, "hidden": 3}))
    with pytest.raises(InputError, match=r"config.json.*unknown config keys \['hidden'\]"):
        VSLNet.from_pretrained(tmp_path)

    (tmp_path / "config.json").unlink()
    with pytest.raises(InputError, match="config.json: file not found"):
        VSLNet.from_pretrained(tmp_path)


def test_cpu_dropout_drops_at_rate_p_scales_survivors_and_passes_gradients_through_the_mask():
    layer = Dropout(0.2)
    x = torch.full((400, 1000), 2.0, requires_grad=True)
    torch.manual_seed(5)
    y = layer(x)
    kept = y != 0
    assert abs(1 - kept.float().mean().item() - 0.2) < 0.003  # 400k draws: 5 standard deviations
    assert torch.all(y[kept] == 2.0 / 0.8)
    y.sum().backward()
    assert torch.equal(x.grad, torch.where(kept, 1 / 0.8, 0.0))
    torch.manual_seed(5)
    assert torch.equal(layer(x), y)  # the seeded generator decides the mask
    assert not torch.equal(layer(x), y)  # and moves on
    columns = kept.float().mean(dim=0)  # no position favoured (all 4 quarters of each word count)
    for lane in range(4):
        assert columns[lane::4].mean().item() == pytest.approx(0.8, abs=0.005)
    assert torch.equal(layer.eval()(x), x) and torch.equal(Dropout(0.0).train()(x), x)
    assert torch.equal(Dropout(1.0)(x), torch.zeros_like(x))
    odd = Dropout(0.5)(torch.ones(3, 5))  # an odd element count
    assert odd.shape == (3, 5) and set(odd.unique().tolist()) <= {0.0, 2.0}
    half = Dropout(0.1)(torch.full((64, 64), 3.0, dtype=torch.bfloat16))  # under bf16 autocast
    survivor = torch.tensor(3.0, dtype=torch.bfloat16) * torch.tensor(1 / 0.9, dtype=torch.bfloat16)
    assert half.dtype == torch.bfloat16 and set(half.unique().tolist()) == {0.0, survivor.item()}


@pytest.mark.parametrize(("dim", "heads"), [(64, 4), (128, 8), (24, 2)])
def test_in_place_attention_scores_equal_the_reference_formula(dim, heads):
    """softmax(mask(q k^T / sqrt(hd))) v, bit for bit, and the same gradients."""
    torch.manual_seed(0)
    attention = MultiHeadAttention(dim, heads, dropout=0.0).eval()
    x = torch.randn(3, 9, dim)
    mask = torch.tensor([[1.0] * 9, [1.0] * 4 + [0.0] * 5, [1.0] + [0.0] * 8])
    y = attention.norm1(x)
    q, k, v = (attention.split_heads(proj(y)) for proj in (attention.query, attention.key, attention.value))
    scores = q @ k.transpose(-2, -1) / math.sqrt(attention.head_dim)
    attn = torch.softmax(scores + (1.0 - mask[:, None, None, :]) * -1e30, dim=-1)
    r = (attn @ v).transpose(1, 2).reshape(3, 9, dim) + x
    want = attention.out(attention.norm2(r)) + r
    got = attention(x, mask)
    assert torch.equal(got, want)
    g = torch.randn_like(got)
    for a, b in zip(
        torch.autograd.grad(got, [*attention.parameters()], g),
        torch.autograd.grad(want, [*attention.parameters()], g),
        strict=True,
    ):
        assert torch.equal(a, b)


def test_conv_block_equals_the_conv1d_modules_forward_and_backward():
    """The channels-last depthwise conv and the pointwise Linear compute the Conv1d modules' values and
    gradients (up to rounding); checkpoints keep the Conv1d layouts."""
    torch.manual_seed(0)
    block = DepthwiseSeparableConv(16, 7, dropout=0.0).eval()
    x = torch.randn(3, 11, 16, requires_grad=True)
    want = x + torch.relu(block.pointwise(block.depthwise(block.norm(x).transpose(1, 2)))).transpose(1, 2)
    got = block(x)
    torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-6)
    g = torch.randn_like(got)
    grads_want = torch.autograd.grad(want, [x, block.depthwise.weight, block.pointwise.weight], g)
    grads_got = torch.autograd.grad(got, [x, block.depthwise.weight, block.pointwise.weight], g)
    for a, b in zip(grads_got, grads_want, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    assert block.state_dict()["pointwise.weight"].shape == (16, 16, 1)  # checkpoints keep the conv layout
    assert block.state_dict()["depthwise.weight"].shape == (16, 1, 7)
