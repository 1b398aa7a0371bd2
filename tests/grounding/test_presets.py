"""The demo and reference settings behind "auto", and that they are the model's and the spec's defaults."""

from __future__ import annotations

import pytest

from egonlq.grounding.presets import DEMO, REFERENCE, resolve_auto
from egonlq.grounding.train_spec import TrainSpec
from egonlq.grounding.vslnet import VSLNetConfig


def test_reference_is_the_default_model_and_spec():
    config, spec = VSLNetConfig(), TrainSpec()
    assert {k: getattr(config, k) for k in REFERENCE["model"]} == REFERENCE["model"]
    assert (config.dim, config.max_pos_len, spec.epochs, spec.batch_size, spec.lr) == (
        128,
        128,
        200,
        32,
        1e-4,
    )
    assert {k: getattr(spec, k) for k in REFERENCE["train"] if k != "jitter_factor"} == {
        k: v for k, v in REFERENCE["train"].items() if k != "jitter_factor"
    }
    assert spec.jitter_factor == 0.0  # the NLQ baseline; pretrain runs of the workflow get 2.5
    assert DEMO.keys() == REFERENCE.keys() and all(DEMO[p].keys() == REFERENCE[p].keys() for p in DEMO)


def test_resolve_auto_replaces_only_auto():
    section = {
        "label_mode": "compatible",
        "model": {"dim": "auto", "max_pos_len": 64, "highlight": True},
        "train": {"epochs": "auto", "lr": 0.01, "clip_norm": 1.0},
    }
    demo, chosen = resolve_auto(section, "demo")
    assert demo["model"] == {"dim": 64, "max_pos_len": 64, "highlight": True}
    assert (
        demo["train"] == {"epochs": 30, "lr": 0.01, "clip_norm": 1.0} and demo["label_mode"] == "compatible"
    )
    assert chosen == {"model.dim": 64, "train.epochs": 30}
    reference, chosen = resolve_auto(section, "reference")
    assert chosen == {"model.dim": 128, "train.epochs": 200}
    assert section["model"]["dim"] == "auto", "the config itself is not modified"
    with pytest.raises(ValueError, match=r"vslnet.train.clip_norm is 'auto' but has no demo value"):
        resolve_auto({"model": {}, "train": {"clip_norm": "auto"}}, "demo")
    with pytest.raises(ValueError, match="world 'real'"):
        resolve_auto(section, "real")
