"""The VSLNet model and training settings of each world: what ``auto`` in ``config.yaml`` resolves to.

Real Ego4D data get the reference's settings (vslnet.md 7: dim 128, 8 heads, dropout 0.2, max_pos_len 128,
200 epochs of batch 32 at lr 1e-4, no warmup, two evaluations per epoch; pre-training jitters NaQ windows
by 2.5, naq.md 2.2). The demo world is scaled down to train on 2 CPU cores: its clips are ~4 min, so 32
units of 7.5 s, and its narration windows fit one unit (jittering would widen every label by >= 2 units).

These tables are THE defaults: :class:`egonlq.grounding.vslnet.VSLNetConfig` and
:class:`egonlq.grounding.train_spec.TrainSpec` take theirs from :data:`REFERENCE`. This module imports no
torch, so the workflow reads it at parse time.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

AUTO = "auto"
WORLDS = ("demo", "reference")

REFERENCE: dict[str, dict[str, Any]] = {
    "model": {"dim": 128, "num_heads": 8, "dropout": 0.2, "max_pos_len": 128},
    "train": {
        "epochs": 200,
        "batch_size": 32,
        "lr": 1e-4,
        "warmup_proportion": 0.0,
        "eval_per_epoch": 2,
        "jitter_factor": 2.5,  # NaQ v1; used by pretrain runs only
    },
}
DEMO: dict[str, dict[str, Any]] = {
    "model": {"dim": 64, "num_heads": 4, "dropout": 0.1, "max_pos_len": 32},
    "train": {
        "epochs": 30,
        "batch_size": 16,
        "lr": 0.003,
        "warmup_proportion": 0.05,
        "eval_per_epoch": 1,
        # off: jittering widens the demo's one-unit narration windows by >= 2 units (measured 8.7 % instead
        # of 18.8 % val R1@0.3 after pre-training)
        "jitter_factor": 0.0,
    },
}


def resolve_auto(section: Mapping[str, Any], world: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """``section`` (the ``vslnet`` config: ``model`` and ``train`` mappings, other keys kept) with every
    ``auto`` value replaced by ``world``'s (``demo`` or ``reference``).

    Returns the resolved section and what was resolved (``{"model.dim": 128, ...}``, for the log). An
    ``auto`` on a key without a preset is a ``ValueError`` naming the key.
    """
    if world not in WORLDS:
        raise ValueError(f"world {world!r} is not one of {WORLDS}")
    preset = DEMO if world == "demo" else REFERENCE
    resolved = copy.deepcopy(dict(section))
    chosen: dict[str, Any] = {}
    for part in ("model", "train"):
        values = dict(resolved.get(part, {}))
        for key, value in values.items():
            if value != AUTO:
                continue
            if key not in preset[part]:
                raise ValueError(
                    f"config.yaml: vslnet.{part}.{key} is 'auto' but has no {world} value; "
                    f"'auto' is for {sorted(preset[part])}"
                )
            values[key] = preset[part][key]
            chosen[f"{part}.{key}"] = values[key]
        resolved[part] = values
    return resolved, chosen
