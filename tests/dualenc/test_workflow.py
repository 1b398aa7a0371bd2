"""The `dual_encoder` target: a dry run on the tiny world plans runs x seeds and names skipped runs."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from tests.conftest import FIXTURES, snakemake
from tests.workflow.test_workflow import job_counts

pytestmark = pytest.mark.workflow


def test_dry_run_of_the_dual_encoder_target(tmp_path: Path) -> None:
    config = yaml.safe_load((FIXTURES / "tiny" / "config.yaml").read_text())
    config["dual_encoder"] = {
        "seeds": [0, 1],
        "runs": [
            {"name": "gt100", "sources": ["narration"]},
            {"name": "gt10llm", "sources": ["narration", "template"], "gt_fraction": 0.1},
            {"name": "gt10rephrase", "sources": ["narration", "rephrase:*"], "gt_fraction": 0.1},
        ],
    }
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    proc = snakemake(tmp_path, "-n", "dual_encoder")
    counts = job_counts(proc.stdout)
    assert counts["dualenc_pairs"] == counts["dualenc_text"] == counts["dual_encoder_table"] == 1
    # the rephrase rule is off in the tiny config: gt10rephrase is not run (and says why)
    assert counts["train_dual_encoder"] == counts["eval_dual_encoder"] == counts["predict_dual_encoder"] == 4
    assert "gt10rephrase" in proc.stderr + proc.stdout and "is not run" in proc.stderr + proc.stdout
    # the features of gt100 seed 0 as VSLNet input: one set, its clip tables, the scratch run per VSLNet seed
    assert counts["dualenc_features"] == counts["dualenc_feature_table"] == 1
    assert counts["dualenc_clip_features"] == counts["dualenc_training_clip_features"] == 1
    assert counts["train_vslnet_dualenc_features"] == counts["predict_vslnet_dualenc_features"] == 1
    assert "train_dual_encoder" not in job_counts(snakemake(tmp_path, "-n").stdout), "kept out of `all`"
    shutil.rmtree(tmp_path / ".snakemake", ignore_errors=True)
