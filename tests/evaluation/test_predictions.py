"""The challenge prediction file: deterministic atomic writing and validation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from egonlq.errors import InputError
from egonlq.evaluation.ground_truth import GroundTruth
from egonlq.evaluation.predictions import Prediction, coverage, validate_predictions, write_predictions

GT = GroundTruth.from_obj(
    {
        "videos": [
            {
                "clips": [
                    {
                        "clip_uid": "c1",
                        "annotations": [
                            {
                                "annotation_uid": "a1",
                                "language_queries": [
                                    {"clip_start_sec": 0.0, "clip_end_sec": 4.0, "query": "q0"},
                                    {"clip_start_sec": 2.0, "clip_end_sec": 6.0, "query": "q1"},
                                ],
                            }
                        ],
                    }
                ]
            }
        ]
    }
)


def windows(n: int, offset: float = 0.0) -> list[list[float]]:
    return [[offset + i, offset + i + 1.5] for i in range(n)]


def test_write_predictions_sorted_plain_json(tmp_path: Path) -> None:
    rows = [
        Prediction("c2", "a1", 0, windows(2)),
        Prediction("c1", "a1", np.int64(1), [[np.float32(0.5), np.float64(2)], [1, 3]]),
        Prediction("c1", "a1", 0, windows(2, 10)),
    ]
    path = tmp_path / "out" / "pred.json"
    write_predictions(rows, path, num_windows=2)
    obj = json.loads(path.read_text())
    assert obj["version"] == "1.0" and obj["challenge"] == "ego4d_nlq_challenge"
    assert [(r["clip_uid"], r["query_idx"]) for r in obj["results"]] == [("c1", 0), ("c1", 1), ("c2", 0)]
    assert obj["results"][1]["predicted_times"] == [[0.5, 2.0], [1.0, 3.0]]
    assert all(type(x) is float for r in obj["results"] for w in r["predicted_times"] for x in w)
    assert type(obj["results"][1]["query_idx"]) is int
    first = path.read_bytes()
    write_predictions(list(reversed(rows)), path, num_windows=2)
    assert path.read_bytes() == first  # deterministic
    assert validate_predictions(path) == []
    assert validate_predictions(path, gt=GT) == [
        "results[2] (clip_uid='c2', annotation_uid='a1', query_idx=0): "
        "unknown (clip_uid, annotation_uid): not in the ground truth"
    ]


def test_write_predictions_refuses_invalid_rows(tmp_path: Path) -> None:
    path = tmp_path / "pred.json"
    path.write_text("previous")
    bad = [
        Prediction("c1", "a1", 0, windows(4)),  # wrong window count
        Prediction("c1", "a1", 1, windows(5)),
    ]
    with pytest.raises(InputError, match="4 windows, expected 5"):
        write_predictions(bad, path)
    rows = [
        Prediction("c1", "a1", 0, [[5.0, 1.0], *windows(4)]),  # start > end
        Prediction("c1", "a1", 0, windows(5)),  # duplicate
        Prediction("c1", "a1", 2, [[float("nan"), 1.0], *windows(4)]),
    ]
    with pytest.raises(InputError) as err:
        write_predictions(rows, path)
    text = str(err.value)
    assert "3 problem(s)" in text and "start 5.0 > end 1.0" in text
    assert "duplicate of results[0]" in text and "non-finite" in text
    assert path.read_text() == "previous"  # nothing written
    with pytest.raises(InputError, match="not a pair of numbers"):
        write_predictions([Prediction("c1", "a1", 0, [[1.0, 2.0, 3.0]])], path, num_windows=1)


def test_validate_predictions_problems(tmp_path: Path) -> None:
    valid = {
        "version": "1.0",
        "challenge": "ego4d_nlq_challenge",
        "results": [{"clip_uid": "c1", "annotation_uid": "a1", "query_idx": 1, "predicted_times": [[0, 1]]}],
        "extra": "ignored",
    }
    assert validate_predictions(valid, gt=GT) == []
    out_of_range = dict(valid, results=[dict(valid["results"][0], query_idx=2)])
    assert validate_predictions(out_of_range) == []
    assert validate_predictions(out_of_range, gt=GT) == [
        "results[0] (clip_uid='c1', annotation_uid='a1', query_idx=2): "
        "'query_idx' 2 out of range: the annotation has 2 queries"
    ]
    assert validate_predictions([]) == ["the file must hold a JSON object, got list"]
    assert validate_predictions({"version": "1.0", "challenge": "ego4d_nlq_challenge"}) == [
        "'results' must be a list, got nothing"
    ]
    no_uid = dict(valid, results=[{"annotation_uid": 3, "query_idx": 0, "predicted_times": [[0, 1]]}])
    assert validate_predictions(no_uid, gt=GT) == [
        "results[0] (clip_uid=None, annotation_uid=3, query_idx=0): 'clip_uid' must be a string",
        "results[0] (clip_uid=None, annotation_uid=3, query_idx=0): 'annotation_uid' must be a string",
    ]
    bool_window = dict(valid, results=[dict(valid["results"][0], predicted_times=[[True, 2]])])
    assert "must be a [start, end] list of two numbers" in validate_predictions(bool_window)[0]
    broken = tmp_path / "broken.json"
    broken.write_text('{"version": ')
    [problem] = validate_predictions(broken)
    assert "malformed JSON" in problem and str(broken) in problem


def test_coverage_counts_answered_queries_and_windows_outside_the_clip() -> None:
    gt = GroundTruth.from_obj(
        {
            "videos": [
                {
                    "clips": [
                        {
                            "clip_uid": "c1",
                            "clip_end_sec": 10.0,
                            "annotations": [
                                {
                                    "annotation_uid": "a1",
                                    "language_queries": [
                                        {"clip_start_sec": t, "clip_end_sec": t + 1.0} for t in range(5)
                                    ],
                                }
                            ],
                        },
                        {
                            "clip_uid": "c2",  # no clip_end_sec: its windows cannot be checked
                            "annotations": [
                                {
                                    "annotation_uid": "a2",
                                    "language_queries": [{"clip_start_sec": 0.0, "clip_end_sec": 1.0}],
                                }
                            ],
                        },
                    ]
                }
            ]
        }
    )

    def result(clip: str, ann: str, idx, times) -> dict:
        return {"clip_uid": clip, "annotation_uid": ann, "query_idx": idx, "predicted_times": times}

    obj = {
        "version": "1.0",
        "challenge": "ego4d_nlq_challenge",
        "results": [
            result("c1", "a1", 0, [[0.0, 10.0], [-0.5, 2.0]]),
            result("c1", "a1", 1, [[9.0, 10.5]]),
            result("c1", "a1", 1, [[1.0, 2.0]]),  # a duplicate answers nothing new
            result("c1", "a1", 9, [[1.0, 2.0]]),  # out of range: answers nothing
            result("c2", "a2", 0, [[50.0, 60.0]]),
        ],
    }
    assert validate_predictions(obj, gt=gt)  # the duplicate and the bad index are problems
    report = coverage(obj, gt)
    assert (report.num_gt, report.answered) == (6, 3) and report.fraction == 0.5
    assert report.missing == [("c1", "a1", 2), ("c1", "a1", 3), ("c1", "a1", 4)]
    assert report.windows == 4 and report.clips_without_duration == 1
    assert [w.split(" predicted_times")[1] for w in report.outside] == [
        "[1] = [-0.5, 2.0], clip duration 10.0",
        "[0] = [9.0, 10.5], clip duration 10.0",
    ]
    lines = report.lines(shown=1)
    assert lines[0] == "answers 3 / 6 GT queries (50.0 %)"
    assert lines[1] == "  3 unanswered, first: c1/a1/2"
    assert lines[2] == "2 of 4 windows lie outside their clip [0, duration]"
    assert lines[4:] == ["  ... and 1 more", "1 answered clip(s) have no duration in the GT: unchecked"]
