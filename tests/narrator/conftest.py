"""Tiny random parts for narrator tests: a GPT-2 LM folder with a word tokenizer, a dual encoder checkpoint,
a feature bank."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from egonlq.dualenc.bank import FeatureBank
from egonlq.dualenc.model import DualEncoder, DualEncoderConfig

TEXTS = ["#c c opens the drawer", "#c c picks a knife", "#c c cuts the onion", "#c c closes the drawer"]
VIDEO_DIM = 6


@pytest.fixture(scope="session")
def lm_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-block GPT-2 with random weights and a word tokenizer over TEXTS, saved as a HF folder."""
    from transformers import GPT2Config, GPT2LMHeadModel

    from egonlq.narrator.lm import build_tokenizer

    folder = tmp_path_factory.mktemp("lm") / "gpt2-tiny"
    tokenizer = build_tokenizer(TEXTS)
    torch.manual_seed(0)
    model = GPT2LMHeadModel(
        GPT2Config(
            vocab_size=len(tokenizer),
            n_positions=80,
            n_embd=16,
            n_layer=2,
            n_head=2,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
        )
    )
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tower_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("de")
    torch.manual_seed(0)
    DualEncoder(
        DualEncoderConfig(video_dim=VIDEO_DIM, text_dim=8, embed_dim=8, width=8, heads=2, max_rows=4)
    ).save_pretrained(folder)
    return folder


@pytest.fixture()
def bank() -> FeatureBank:
    rng = np.random.default_rng(0)
    rows = torch.from_numpy(rng.normal(size=(60, VIDEO_DIM)).astype(np.float32))
    return FeatureBank(["v1", "v2"], rows, np.array([0, 30]), np.array([30, 30]))
