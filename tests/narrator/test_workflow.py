"""A changed decoding parameter regenerates only what it affects: narration and its consumers, never the LM
pre-training, the narrator's training nor the dual encoder under it (Snakemake's params trigger)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.conftest import snakemake
from tests.workflow.test_workflow import summary

pytestmark = pytest.mark.workflow

# A few steps of everything the narrator needs, on the tiny world (~1 min on 2 cores): the test is about the
# DAG, not the texts. The dual encoder keeps one run, the narrator's tower.
CHEAP = {
    "dual_encoder": {
        "seeds": [0],
        "runs": [{"name": "gt100", "sources": ["narration"]}],  # the default narrator.video_tower
        "train": {"steps": 2, "batch_size": 16, "save_every": 1},
    },
    "narrator": {
        "lm_demo": {"layers": 1, "width": 16, "heads": 2, "steps": 2, "batch_size": 8},
        "model": {"num_queries": 2, "heads": 2},
        "train": {"steps": 2, "batch_size": 8, "save_every": 1},
        "decoding": {"num_sequences": 2, "max_tokens": 4},
        "dense": {"num_sequences": 1},
    },
}
TARGETS = ("narrator", "results/narrator/queries.parquet")  # quality, the dual encoder's pairs, the queries


def _overlay(workdir: Path, folder: Path, name: str, config: dict) -> list[str]:
    """`--configfile`: the workdir's config, `config` over it (last on the line: the option takes a list)."""
    path = folder / name
    path.write_text(yaml.safe_dump(config))
    return ["--configfile", str(workdir / "config.yaml"), str(path)]


def test_a_changed_top_p_replans_narration_and_its_consumers_only(tiny_run: Path, tmp_path: Path) -> None:
    cheap = _overlay(tiny_run, tmp_path, "cheap.yaml", CHEAP)
    snakemake(tiny_run, "--cores", "2", *TARGETS, *cheap)
    assert not [r for r in summary(tiny_run, *TARGETS, *cheap) if r["plan"] != "no update"]

    changed = {**CHEAP, "narrator": {**CHEAP["narrator"], "decoding": {**CHEAP["narrator"]["decoding"]}}}
    changed["narrator"]["decoding"]["top_p"] = 0.5
    rows = summary(tiny_run, *TARGETS, *_overlay(tiny_run, tmp_path, "top_p.yaml", changed))
    pending = {r["rule"] for r in rows if r["plan"] == "update pending"}
    assert pending == {"narrate", "merge_narrations", "narrator_pairs", "narrator_queries"}, pending
    narrate = [r for r in rows if r["rule"] == "narrate"]
    assert len(narrate) == 4 and all(r["status"] == "params changed" for r in narrate)  # 2 shards x 2 files
    kept = {r["rule"] for r in rows if r["plan"] == "no update"}
    assert {"narrator_lm", "train_narrator", "train_dual_encoder", "dualenc_pairs"} <= kept, kept
