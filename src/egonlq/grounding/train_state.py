"""The resumable state of a training run (``last.pt``), and when it may be resumed.

``last.pt`` is written atomically at every evaluation. It holds the model, the optimizer, the scheduler,
every random state (python, numpy, torch, CUDA, the jitter generator), the step and the position in the
epoch's order, the metrics history and the best so far: its score, step, val metrics AND weights. The
weights matter because the workflow deletes a job's outputs before it reruns it: a resumed run writes
``model.safetensors`` and ``metrics.csv`` again from the state.

A state is resumed only when its fingerprint equals the run's, part by part:

- ``spec``: every setting of the :class:`~egonlq.grounding.train_spec.TrainSpec`;
- ``data``: the training and val records (query uids, labels, lengths) in order;
- ``inputs``: every input file (resolved path, size, modification time), the init checkpoint included;
- ``code``: the source of every egonlq module the training imports.

Any other state (another spec, regenerated inputs, edited code, an unreadable file) is stale: the run logs
why and starts over; the stale file is replaced at the first evaluation.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from egonlq.grounding.nlq_dataset import NLQDataset, Records
from egonlq.imports import PACKAGE, closure, source_files
from egonlq.io import atomic_path

logger = logging.getLogger(__name__)

LAST_STATE = "last.pt"
STATE_FORMAT = "egonlq-train-state/2"
TRAINING_MODULE = "grounding.train"  # the code whose source is fingerprinted (with all it imports)


def records_digest(train: Records, val: Records) -> str:
    """What a resumed run must find again: the records in order with their labels."""
    digest = hashlib.sha256()
    for records in (train, val):
        digest.update("\0".join(records.query_uid).encode())
        digest.update(records.s_ind.tobytes() + records.e_ind.tobytes() + records.v_len.tobytes())
    return digest.hexdigest()


def inputs_digest(inputs: Mapping[str, Path]) -> str:
    """The identity of the input files: resolved path, size and modification time (ns) of each.

    A regenerated input (even with the same bytes) changes it: resuming then is never silently stale.
    """
    listing = []
    for name in sorted(inputs):
        path = Path(inputs[name]).resolve()
        st = path.stat()
        listing.append([name, str(path), st.st_size, st.st_mtime_ns])
    return hashlib.sha256(json.dumps(listing).encode()).hexdigest()


def code_digest() -> str:
    """A hash of the source of :data:`TRAINING_MODULE` and every egonlq module it imports."""
    digest = hashlib.sha256()
    for rel in source_files(closure({TRAINING_MODULE})):
        digest.update(rel.encode() + b"\0" + (PACKAGE / rel).read_bytes() + b"\0")
    return digest.hexdigest()


def run_fingerprint(
    spec: Mapping[str, Any], train: Records, val: Records, inputs: Mapping[str, Path]
) -> dict[str, Any]:
    """The four parts a state must match to be resumed (see the module docstring)."""
    return {
        "spec": dict(spec),
        "data": records_digest(train, val),
        "inputs": inputs_digest(inputs),
        "code": code_digest(),
    }


def rng_states(dataset: NLQDataset) -> dict:
    np_state = np.random.get_state()
    return {
        "python": random.getstate(),
        "numpy": (np_state[0], np_state[1].tolist(), *np_state[2:]),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "jitter": dataset.rng.getstate(),
    }


def set_rng_states(states: dict, dataset: NLQDataset) -> None:
    random.setstate(states["python"])
    name, keys, *rest = states["numpy"]
    np.random.set_state((name, np.array(keys, dtype=np.uint32), *rest))
    torch.set_rng_state(states["torch"])
    if states["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])
    dataset.rng.setstate(states["jitter"])


def save_state(
    path: Path,
    *,
    fingerprint: Mapping[str, Any],
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    dataset: NLQDataset,
    progress: Mapping[str, Any],
    best_weights: Mapping[str, torch.Tensor] | None,
) -> None:
    """Write ``last.pt`` atomically."""
    with atomic_path(path) as tmp:
        torch.save(
            {
                "format": STATE_FORMAT,
                "fingerprint": dict(fingerprint),
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "rng": rng_states(dataset),
                "progress": dict(progress),
                "best_weights": None if best_weights is None else dict(best_weights),
            },
            tmp,
        )


def load_state(path: Path, fingerprint: Mapping[str, Any]) -> tuple[dict | None, str]:
    """``(state, "")`` when ``path`` continues this run, else ``(None, why not)``."""
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated or foreign file: torch raises many kinds
        first_line = (str(e).strip().splitlines() or [""])[0]
        return None, f"unreadable training state ({type(e).__name__}: {first_line})"
    if not isinstance(saved, dict) or saved.get("format") != STATE_FORMAT:
        return None, f"not a training state of format {STATE_FORMAT}"
    theirs = saved["fingerprint"]
    spec_differs = sorted(k for k in fingerprint["spec"] if theirs["spec"].get(k) != fingerprint["spec"][k])
    if spec_differs:
        changes = "; ".join(
            f"{k}: saved {theirs['spec'].get(k)!r}, now {fingerprint['spec'][k]!r}" for k in spec_differs
        )
        return None, f"it belongs to another spec ({changes})"
    reasons = {
        "data": "it was trained on other records",
        "inputs": "the input files changed since (regenerated or replaced)",
        "code": "the training code changed since",
    }
    for part, reason in reasons.items():
        if theirs.get(part) != fingerprint[part]:
            return None, reason
    return saved, ""
