"""Fixtures of the video tests: the tiny demo world built once per session, the demo encoder, a VSLNet."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from egonlq.data.features import cut_clips
from egonlq.demo.world import build_world
from egonlq.video.frame_encoders import DemoEncoder
from tests.video.world import World


@pytest.fixture(scope="session")
def world(tmp_path_factory) -> World:
    root = tmp_path_factory.mktemp("tiny_world")
    build_world(root, preset="tiny", seed=0)
    return World(root)


@pytest.fixture(scope="session")
def demo() -> DemoEncoder:
    return DemoEncoder()


class FakeTextEncoder:
    """Enough of egonlq.grounding.text_encoder.TextEncoder for build_text_cache: a fixed random token
    table."""

    hidden_size, max_len, max_tokens, name, fingerprint = 8, 64, 64, "fake", "f" * 64
    model_path = Path("fake")

    def encode(self, texts, batch_size=64):
        return [np.random.default_rng(len(t)).standard_normal((len(t.split()) + 2, 8)) for t in texts]

    def token_lengths(self, texts):
        return [len(t.split()) + 2 for t in texts]


@pytest.fixture(scope="session")
def vslnet_files(world, tmp_path_factory):
    from egonlq.grounding.text_encoder import build_text_cache
    from egonlq.grounding.vslnet import VSLNet, VSLNetConfig

    folder = tmp_path_factory.mktemp("vslnet")
    torch.manual_seed(0)
    VSLNet(VSLNetConfig(video_dim=256, text_dim=8, dim=16, num_heads=2, max_pos_len=64)).save_pretrained(
        folder / "m"
    )
    build_text_cache(world.queries["query"].dropna(), FakeTextEncoder(), folder / "text.safetensors")
    cut_clips(world.clips, world.root / "v1" / "demo_features", folder / "clips.parquet", expected_dim=256)
    return folder
