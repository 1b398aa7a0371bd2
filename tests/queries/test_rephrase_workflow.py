"""The rephrase rule through Snakemake on the tiny demo world: paraphrases of the curated narrations that keep
their windows, tagged with their origin, and carried into the training-queries table."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.conftest import FIXTURES, snakemake

pytestmark = pytest.mark.workflow


@pytest.fixture(scope="module")
def rephrase_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny world with ``queries.rephrase.enabled: true`` (an overlay), up to the training queries."""
    work = tmp_path_factory.mktemp("rephrase")
    shutil.copy(FIXTURES / "tiny" / "config.yaml", work / "config.yaml")
    overlay = work / "overlay.yaml"
    overlay.write_text(yaml.safe_dump({"queries": {"rephrase": {"enabled": True, "num_variants": 2}}}))
    targets = ["results/queries/rephrase/generated.parquet", "results/queries/training_queries.parquet"]
    snakemake(work, *targets, "--cores", "2", "--configfile", str(work / "config.yaml"), str(overlay))
    return work


def test_rephrase_outputs(rephrase_run: Path) -> None:
    out = pd.read_parquet(rephrase_run / "results/queries/rephrase/generated.parquet")
    stats = json.loads((rephrase_run / "results/queries/rephrase/stats.json").read_text())
    assigned = pd.read_parquet(rephrase_run / "results/queries/assigned.parquet").set_index("narration_uid")
    assert len(out) == stats["accepted"] > 0 and stats["rows_in"] == len(assigned)
    sizes = assigned.groupby("video_uid").size()
    assert stats["groups"] == 2 * sum(math.ceil(n / 8) for n in sizes)  # groups of 8 per video, 2 variants
    assert stats["accepted"] + sum(stats["rejected"].values()) == stats["questions_parsed"]
    assert set(out["source"]) == {"rephrase:narration"} and out["parent_query_uid"].notna().all()
    assert out["query_uid"].is_unique
    for r in out.itertuples():
        parent = assigned.loc[r.narration_uid]
        assert r.query != parent["text_clean"] and r.video_uid == parent["video_uid"]
        assert r.clip_uid == parent["clip_uid"]
        assert r.window_start_sec <= parent["timestamp_sec"] <= r.window_end_sec  # the narration's window
        assert r.window_end_sec - r.window_start_sec >= 0.5333 - 1e-6
    # two variants of one narration may both survive, never as the same text
    assert not out.duplicated(["narration_uid", "query"]).any()
    training = pd.read_parquet(rephrase_run / "results/queries/training_queries.parquet")
    rephrased = training[training["source"] == "rephrase:narration"]
    assert len(rephrased) == len(out) and set(rephrased["query"]) == set(out["query"])
