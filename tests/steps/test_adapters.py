"""Step adapters: positive chunks by centre, the false-negative mask (same description in the same video, a
step and its substeps), training lowers the masked InfoNCE loss, and a saved adapter loads back."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from egonlq.dualenc.model import DualEncoder, DualEncoderConfig
from egonlq.steps.adapters import (
    AdaptedEncoder,
    AdapterSpec,
    build_pairs,
    false_negatives,
    positive_chunks,
    step_loss,
    train_adapters,
)


def test_positive_chunks_by_centre_or_midpoint() -> None:
    assert positive_chunks(2.0, 8.0, 2.0, 10) == (1, 4)  # centres 3, 5, 7
    assert positive_chunks(2.5, 3.5, 2.0, 10) == (1, 2)  # centre 3 inside
    assert positive_chunks(4.2, 4.8, 2.0, 10) == (2, 3)  # no centre inside: the midpoint's chunk
    assert positive_chunks(30.0, 40.0, 2.0, 10) == (9, 10)  # clipped to the entry


def _queries() -> pd.DataFrame:
    # video a: step "cut" [0, 4), its substep "cut now" [0, 2), step "wash" [4, 6), step "cut" again [8, 10)
    # video b: step "cut" [0, 4)
    return pd.DataFrame(
        {
            "video_uid": ["a", "a", "a", "a", "b"],
            "query_idx": [0, 1, 2, 3, 0],
            "query": ["cut", "cut now", "wash", "cut", "cut"],
            "clip_start_sec": [0.0, 0.0, 4.0, 8.0, 0.0],
            "clip_end_sec": [4.0, 2.0, 6.0, 10.0, 4.0],
            "step_idx": [0, 0, 1, 2, 0],
            "is_substep": [False, True, False, False, False],
        }
    )


def test_false_negative_mask() -> None:
    pairs = build_pairs(_queries(), {"a": 5, "b": 3}, 2.0)  # a: chunks 0-4, b: chunks 5-7
    assert pairs.query_range.tolist() == [[0, 2], [0, 1], [2, 3], [4, 5], [5, 7]]
    mask = false_negatives(pairs.family, np.arange(8))
    # the first "cut" step: its own chunks, its substep's, and the repeated "cut" of the same video, not b's
    assert mask[0].tolist() == [True, True, False, False, True, False, False, False]
    # the substep: its parent's chunks and its own
    assert mask[1].tolist() == [True, True, False, False, False, False, False, False]
    # "wash" shares nothing
    assert mask[2].tolist() == [False, False, True, False, False, False, False, False]
    # the same description in another video is a true negative
    assert mask[4].tolist() == [False] * 5 + [True, True, False]


def _base() -> DualEncoder:
    torch.manual_seed(0)
    return DualEncoder(DualEncoderConfig(video_dim=8, text_dim=8, embed_dim=16, width=16, heads=2)).eval()


def test_masked_positives_do_not_count_as_negatives() -> None:
    pairs = build_pairs(_queries(), {"a": 5, "b": 3}, 2.0)
    model = AdaptedEncoder(_base(), 4)
    emb = torch.nn.functional.normalize(torch.randn(8, 16), dim=-1)
    text = torch.nn.functional.normalize(torch.randn(5, 16), dim=-1)
    batch = np.array([0, 1])  # the two chunks of the first "cut" step: each other's false negative
    masked = step_loss(model, emb, text, pairs, batch, np.zeros(0, np.int64), 1.0)
    # with both rows on the same text and one another masked, each row has only its positive: loss 0
    assert abs(float(masked.detach())) < 1e-6
    unmasked = step_loss(model, emb, text, pairs, np.array([0, 3]), np.zeros(0, np.int64), 1.0)
    assert float(unmasked.detach()) > 0.1  # a "wash" chunk is a real negative of "cut"


def test_training_lowers_the_loss() -> None:
    rng = np.random.default_rng(0)
    n_videos, steps_per = 6, 4
    rows = []
    for v in range(n_videos):
        for k in range(steps_per):
            rows.append((f"v{v}", k, f"step {v}-{k}", k * 10.0, k * 10.0 + 10.0, k, False))
    queries = pd.DataFrame(rows, columns=["video_uid", "query_idx", "query", "clip_start_sec", "clip_end_sec",
                                          "step_idx", "is_substep"])  # fmt: skip
    pairs = build_pairs(queries, {f"v{v}": steps_per * 5 for v in range(n_videos)}, 2.0)
    # frozen outputs: a chunk is its step's direction plus noise, a text a different map of the same direction
    direction = rng.normal(size=(len(queries), 16))
    chunk = np.repeat(direction, 5, axis=0) + 0.8 * rng.normal(size=(len(queries) * 5, 16))
    text = direction @ rng.normal(size=(16, 16)) * 0.3 + 0.3 * rng.normal(size=(len(queries), 16))
    unit = lambda x: torch.nn.functional.normalize(torch.tensor(x, dtype=torch.float32), dim=-1)  # noqa: E731
    model = AdaptedEncoder(_base(), 32)
    spec = AdapterSpec(bottleneck=32, steps=150, batch_size=32, lr=3e-3, negatives_ratio=1.0)
    losses = train_adapters(model, unit(chunk), unit(text), pairs, spec)
    assert np.mean(losses[-20:]) < 0.7 * np.mean(losses[:20])
    # only the adapters train: the base is untouched
    assert all(not p.requires_grad for p in model.base.parameters())


def test_adapters_round_trip(tmp_path: Path) -> None:
    base = _base()
    model = AdaptedEncoder(base, 4)
    with torch.no_grad():
        model.video_adapter.up.weight.normal_()
    model.save_pretrained(tmp_path, AdapterSpec(bottleneck=4), Path("base"))
    again = AdaptedEncoder.from_pretrained(tmp_path, base)
    x = torch.randn(3, 16)
    assert torch.allclose(again.video_adapter(x), model.video_adapter(x))
    # zero-initialised up: a fresh adapter is the identity on unit vectors
    fresh = AdaptedEncoder(base, 4)
    u = torch.nn.functional.normalize(x, dim=-1)
    assert torch.allclose(fresh.text_adapter(u), u, atol=1e-6)
