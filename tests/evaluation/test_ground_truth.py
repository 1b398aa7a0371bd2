"""The ground truth as the metric reads it: required keys, clip durations, and its place below the metric."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from egonlq import imports
from egonlq.errors import InputError
from egonlq.evaluation.ground_truth import GroundTruth, load_ground_truth
from tests.evaluation.test_metric import WORKED_GT


def test_load_ground_truth_rejects_unannotated(tmp_path: Path) -> None:
    obj = copy.deepcopy(WORKED_GT)
    del obj["videos"][0]["clips"][1]["annotations"][0]["language_queries"][1]["clip_end_sec"]
    path = tmp_path / "gt.json"
    path.write_text(json.dumps(obj))
    with pytest.raises(InputError, match="language_queries\\[1\\].*clip_end_sec"):
        load_ground_truth(path)


def test_clip_durations_come_from_the_clips_own_end() -> None:
    obj = copy.deepcopy(WORKED_GT)
    first, second = obj["videos"][0]["clips"]
    first["clip_start_sec"], first["clip_end_sec"] = 0, 480.0
    second["clip_end_sec"] = "480"  # not a number: the duration stays unknown
    gt = GroundTruth.from_obj(obj)
    assert gt.clip_durations == {first["clip_uid"]: 480.0}
    assert GroundTruth.from_obj(WORKED_GT).clip_durations == {}


def test_no_import_circle_between_metric_and_validator() -> None:
    """The validator reads the ground-truth type; the ground truth imports neither the metric nor the
    validator, and the validator does not import the metric."""
    assert imports.closure({"evaluation.ground_truth"}).isdisjoint(
        {"evaluation.metric", "evaluation.predictions"}
    )
    assert "evaluation.metric" not in imports.closure({"evaluation.predictions"})
    assert "evaluation.ground_truth" in imports.closure({"evaluation.predictions"})
