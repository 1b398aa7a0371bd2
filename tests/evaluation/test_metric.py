"""The NLQ metric: the worked example of evaluation.md section 6, the official edge cases, strict mode."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from egonlq.data.provenance import read_schema_provenance
from egonlq.errors import InputError
from egonlq.evaluation.ground_truth import GroundTruth, load_ground_truth
from egonlq.evaluation.metric import (
    METRICS,
    StrictEvalError,
    evaluate,
    evaluate_both,
    iou,
    metrics_table,
    read_metrics,
    write_metrics,
)
from egonlq.io import read_parquet

A = ("22222222-aaaa-4bbb-8ccc-00000000000a", "44444444-aaaa-4bbb-8ccc-00000000000a")
B = ("22222222-aaaa-4bbb-8ccc-00000000000b", "44444444-aaaa-4bbb-8ccc-00000000000b")

WORKED_GT = {
    "videos": [
        {
            "video_uid": "11111111-aaaa-4bbb-8ccc-000000000001",
            "split": "val",
            "clips": [
                {
                    "clip_uid": A[0],
                    "annotations": [
                        {
                            "annotation_uid": A[1],
                            "language_queries": [
                                {
                                    "clip_start_sec": 10.0,
                                    "clip_end_sec": 20.0,
                                    "query": "Where did I put the knife?",
                                },
                                {
                                    "clip_start_sec": 30.0,
                                    "clip_end_sec": 30.0,
                                    "query": "What did I put in the bowl?",
                                },
                                {
                                    "clip_start_sec": 100.0,
                                    "clip_end_sec": 160.0,
                                    "query": "How many cups did I wash?",
                                },
                            ],
                        }
                    ],
                },
                {
                    "clip_uid": B[0],
                    "annotations": [
                        {
                            "annotation_uid": B[1],
                            "language_queries": [
                                {
                                    "clip_start_sec": 0.0,
                                    "clip_end_sec": 5.0,
                                    "query": "Who did I talk to in the garden?",
                                },
                                {
                                    "clip_start_sec": 50.0,
                                    "clip_end_sec": 90.0,
                                    "query": "Where is the red bucket?",
                                },
                            ],
                        }
                    ],
                },
            ],
        }
    ]
}

# The official script's display of the worked example (terminaltables.AsciiTable, checked against it).
WORKED_TABLE = """\
+----------+----------+-----------+----------+----------+-----------+----------+----------+-----------+-------+
|  Rank@1  |  Rank@1  |   Rank@1  |  Rank@3  |  Rank@3  |   Rank@3  |  Rank@5  |  Rank@5  |   Rank@5  | mIoU  |
| mIoU@0.3 | mIoU@0.5 | mIoU@0.01 | mIoU@0.3 | mIoU@0.5 | mIoU@0.01 | mIoU@0.3 | mIoU@0.5 | mIoU@0.01 |       |
+----------+----------+-----------+----------+----------+-----------+----------+----------+-----------+-------+
|  50.00   |  25.00   |   50.00   |  75.00   |  50.00   |   75.00   |  75.00   |  75.00   |   75.00   | 28.33 |
+----------+----------+-----------+----------+----------+-----------+----------+----------+-----------+-------+"""  # noqa: E501


def entry(key: tuple[str, str], idx, times) -> dict:
    return {"clip_uid": key[0], "annotation_uid": key[1], "query_idx": idx, "predicted_times": times}


def submission(results: list[dict]) -> dict:
    return {"version": "1.0", "challenge": "ego4d_nlq_challenge", "results": results}


def worked_results() -> list[dict]:
    return [
        entry(A, 0, [[15, 25], [10, 20]]),
        entry(A, 1, [[29, 31], [30, 30]]),
        entry(A, 2, [[0, 10], [200, 210], [110, 140], [100, 130], [90, 170]]),
        entry(B, 0, [[0, 4]]),
    ]


@pytest.fixture
def gt() -> GroundTruth:
    return GroundTruth.from_obj(WORKED_GT)


def percent(result) -> dict[str, float]:
    """Recall and mIoU in percent, rounded as the official display rounds them."""
    out = {f"R{k}@{t}": round(v * 100, 2) for (t, k), v in result.recall.items()}
    out["mIoU"] = round(result.miou * 100, 2)
    return out


# ------------------------------------------------------------------------------------------ worked example


def test_worked_example_official(gt: GroundTruth) -> None:
    r = evaluate(gt, submission(worked_results()))
    assert r.recall == {
        (0.3, 1): 0.5, (0.5, 1): 0.25, (0.01, 1): 0.5,
        (0.3, 3): 0.75, (0.5, 3): 0.5, (0.01, 3): 0.75,
        (0.3, 5): 0.75, (0.5, 5): 0.75, (0.01, 5): 0.75,
    }  # fmt: skip
    assert r.miou == pytest.approx((5 / 15 + 0 + 0 + 0.8) / 4, abs=1e-15)
    assert (r.num_results, r.num_gt, r.num_evaluated, r.num_missing) == (4, 5, 4, 1)
    assert r.summary_line() == "Evaluated: 4 / 5 instances"
    assert r.to_table() == WORKED_TABLE


def test_worked_example_strict(gt: GroundTruth) -> None:
    r = evaluate(gt, submission(worked_results()), mode="strict")
    assert percent(r) == {
        "R1@0.3": 40.0, "R1@0.5": 20.0, "R1@0.01": 40.0,
        "R3@0.3": 60.0, "R3@0.5": 40.0, "R3@0.01": 60.0,
        "R5@0.3": 60.0, "R5@0.5": 60.0, "R5@0.01": 60.0,
        "mIoU": 22.67,
    }  # fmt: skip
    assert r.miou == pytest.approx((5 / 15 + 0.8) / 5, abs=1e-15)
    assert (r.num_results, r.num_gt, r.num_evaluated, r.num_missing, r.excluded) == (4, 5, 5, 1, {})
    assert r.summary_line().startswith("Evaluated: 4 / 5 instances (strict: 1 missing")
    assert "|  40.00   |  20.00   |   40.00   |" in r.to_table()


def test_worked_example_duplicate_variant(gt: GroundTruth) -> None:
    results = [*worked_results(), worked_results()[0]]
    r = evaluate(gt, submission(results))
    assert r.summary_line() == "Evaluated: 5 / 5 instances"
    assert percent(r) == {
        "R1@0.3": 60.0, "R1@0.5": 20.0, "R1@0.01": 60.0,
        "R3@0.3": 80.0, "R3@0.5": 60.0, "R3@0.01": 80.0,
        "R5@0.3": 80.0, "R5@0.5": 80.0, "R5@0.01": 80.0,
        "mIoU": 29.33,
    }  # fmt: skip
    assert r.num_missing == 1  # B/1 is still missing although "Evaluated" reaches 5 / 5
    with pytest.raises(StrictEvalError) as err:
        evaluate(gt, submission(results), mode="strict")
    assert err.value.problems == [
        f"results[4] (clip_uid='{A[0]}', annotation_uid='{A[1]}', query_idx=0): duplicate of results[0]"
    ]


def test_worked_example_nan_variant(gt: GroundTruth) -> None:
    results = worked_results()
    results[1] = entry(A, 1, [[30, 30], [29, 31]])
    official = evaluate(gt, submission(results))
    assert official.recall == evaluate(gt, submission(worked_results())).recall
    assert math.isnan(official.miou)
    assert official.to_dict()["miou"] is None
    assert official.to_table().splitlines()[4].endswith("|   75.00   | nan  |")
    json.dumps(official.to_dict(), allow_nan=False)
    strict = evaluate(gt, submission(results), mode="strict")
    assert round(strict.miou * 100, 2) == 22.67


def test_load_ground_truth_and_prediction_paths(tmp_path: Path) -> None:
    gt_path, pred_path = tmp_path / "gt.json", tmp_path / "pred.json"
    gt_path.write_text(json.dumps(WORKED_GT))
    pred_path.write_text(json.dumps(submission(worked_results())))
    gt = load_ground_truth(gt_path)
    assert gt.num_gt == 5 and gt.path == str(gt_path)
    assert [q.zero_length for _, q in gt.iter_queries()] == [False, True, False, False, False]
    assert evaluate(gt, pred_path).to_table() == WORKED_TABLE


# ------------------------------------------------------------------------------------- official edge cases


def one_query_gt(start: float, end: float) -> GroundTruth:
    return GroundTruth.from_obj(
        {
            "videos": [
                {
                    "clips": [
                        {
                            "clip_uid": "c",
                            "annotations": [
                                {
                                    "annotation_uid": "a",
                                    "language_queries": [
                                        {"clip_start_sec": start, "clip_end_sec": end, "query": "q"}
                                    ],
                                }
                            ],
                        }
                    ]
                }
            ]
        }
    )


def score(start: float, end: float, times, **kw):
    return evaluate(one_query_gt(start, end), submission([entry(("c", "a"), 0, times)]), **kw)


@pytest.mark.parametrize(
    "bad, error, text",
    [
        (entry(("nope", A[1]), 0, [[1, 2]]), AssertionError, "Instance not present!"),
        (entry(A, 3, [[1, 2]]), IndexError, "index out of range"),
        (entry(A, 1.0, [[1, 2]]), TypeError, "indices must be integers"),
        (entry(A, "1", [[1, 2]]), TypeError, "indices must be integers"),
        (entry(A, 0, [10, 20]), np.exceptions.AxisError, "axis -1 is out of bounds"),
        (entry(A, 0, []), IndexError, "index out of range"),
    ],
)
def test_official_aborts_like_the_script(gt: GroundTruth, bad: dict, error: type, text: str) -> None:
    with pytest.raises(error, match=text) as err:
        evaluate(gt, submission([*worked_results(), bad]))
    assert any("results[4]" in note for note in err.value.__notes__)


def test_official_header_is_checked(gt: GroundTruth) -> None:
    with pytest.raises(AssertionError, match="version does not match"):
        evaluate(gt, {"challenge": "ego4d_nlq_challenge", "results": []})
    with pytest.raises(AssertionError, match="challenge does not match"):
        evaluate(gt, {"version": "1.0", "results": []})


def test_official_negative_index_counts_from_the_end(gt: GroundTruth) -> None:
    times = [[0, 10], [200, 210], [110, 140], [100, 130], [90, 170]]
    negative = evaluate(gt, submission([entry(A, -1, times)]))
    positive = evaluate(gt, submission([entry(A, 2, times)]))
    assert negative.recall == positive.recall and negative.miou == positive.miou == 0.0
    assert negative.recall[(0.3, 3)] == 1.0 and negative.recall[(0.5, 3)] == 0.0


def test_official_hit_rules() -> None:
    # IoU exactly at the threshold is not a hit
    r = score(0, 10, [[0, 5]], thresholds=(0.3, 0.5), ks=(1,))
    assert r.recall == {(0.3, 1): 1.0, (0.5, 1): 0.0} and r.miou == 0.5
    # fewer windows than k: what is there counts; more than k: only the first k
    r = score(0, 10, [[50, 60], [0, 10]], thresholds=(0.5,), ks=(1, 2, 5))
    assert r.recall == {(0.5, 1): 0.0, (0.5, 2): 1.0, (0.5, 5): 1.0}
    # zero-length GT: never a hit; a zero-length window on it gives NaN, mIoU NaN, recall unaffected
    r = score(30, 30, [[29, 31]], thresholds=(0.01,), ks=(1,))
    assert r.recall[(0.01, 1)] == 0.0 and r.miou == 0.0
    r = score(30, 30, [[30, 30], [29, 31]], thresholds=(0.01,), ks=(1, 2))
    assert r.recall == {(0.01, 1): 0.0, (0.01, 2): 0.0} and math.isnan(r.miou)
    # start > end: IoU 0; zero-length window vs positive GT: 0; windows outside the clip scored as given
    assert score(0, 10, [[8, 2]]).miou == 0.0
    assert score(0, 10, [[5, 5]]).miou == 0.0
    assert score(900, 1000, [[950, 1000]]).miou == 0.5
    # NaN inside a window: never a hit, mIoU NaN when it is the top-1 window
    r = score(0, 10, [[float("nan"), 10], [0, 10]], thresholds=(0.5,), ks=(1, 2))
    assert r.recall == {(0.5, 1): 0.0, (0.5, 2): 1.0} and math.isnan(r.miou)


def test_official_empty_results_give_nan(gt: GroundTruth) -> None:
    r = evaluate(gt, submission([]))
    assert all(math.isnan(v) for v in r.recall.values()) and math.isnan(r.miou)
    assert r.summary_line() == "Evaluated: 0 / 5 instances"
    assert all(v is None for v in r.to_dict()["recall"].values())


def test_official_duplicate_gt_key_overwrites() -> None:
    obj = copy.deepcopy(WORKED_GT)
    clips = obj["videos"][0]["clips"]
    clips.append({"clip_uid": A[0], "annotations": [{"annotation_uid": A[1], "language_queries": [
        {"clip_start_sec": 0.0, "clip_end_sec": 1.0}]}]})  # fmt: skip
    gt = GroundTruth.from_obj(obj)
    assert gt.num_gt == 6  # every annotation counts in y
    r = evaluate(gt, submission([entry(A, 0, [[0, 1]])]))  # the later annotation wins
    assert r.miou == 1.0 and r.summary_line() == "Evaluated: 1 / 6 instances"
    with pytest.raises(IndexError):
        evaluate(gt, submission([entry(A, 2, [[0, 1]])]))
    with pytest.raises(StrictEvalError, match="duplicate \\(clip_uid, annotation_uid\\)"):
        evaluate(gt, submission([entry(A, 0, [[0, 1]])]), mode="strict")


# ---------------------------------------------------------------------------------------------- strict mode


def test_strict_lists_every_offence(gt: GroundTruth) -> None:
    bad = {
        "version": "1",
        "results": [
            entry(A, 0, [[15, 25]]),
            entry(A, 0, [[15, 25]]),  # 1 duplicate
            entry(("nope", "nope"), 0, [[1, 2]]),  # 2 unknown key
            entry(A, True, [[1, 2]]),  # 3 bool idx
            entry(A, -1, [[1, 2]]),  # 4 negative
            entry(A, 3, [[1, 2]]),  # 5 out of range
            entry(B, 1.0, [[1, 2]]),  # 6 float idx
            entry(B, 0, [1, 2]),  # 7 flat
            entry(B, 1, []),  # 8 empty
            entry(A, 1, [[0, 1], [5, 3]]),  # 9 start > end
            entry(A, 2, [[0, float("nan")], [0, float("inf")]]),  # 10 non-finite (twice)
            entry(A, 2, [[0, 1, 2], ["0", 1]]),  # 11 three numbers, a string
            "not an object",  # 12
        ],
    }
    with pytest.raises(StrictEvalError) as err:
        evaluate(gt, bad, mode="strict")
    problems = err.value.problems
    expect = [
        "'version' is '1', expected '1.0'",
        "'challenge' missing",
        "results[1] (", "duplicate of results[0]",
        "results[2] (", "unknown (clip_uid, annotation_uid)",
        "results[3] (", "query_idx=True): 'query_idx' must be an integer",
        "results[4] (", "query_idx=-1): 'query_idx' must be an integer >= 0",
        "results[5] (", "'query_idx' 3 out of range: the annotation has 3 queries",
        "results[6] (", "query_idx=1.0): 'query_idx' must be an integer",
        "results[7] (", "predicted_times is a flat list [1, 2]",
        "results[8] (", "predicted_times must be a non-empty list",
        "results[9] (", "predicted_times[1] has start 5 > end 3",
        "results[10] (", "predicted_times[0] has a non-finite value",
        "predicted_times[1] has a non-finite value",
        "results[11] (", "predicted_times[0] must be a [start, end] list of two numbers, got [0, 1, 2]",
        "results[11] (", "duplicate of results[10]",
        "results[12]: must be an object",
    ]  # fmt: skip
    text = "\n".join(problems)
    for fragment in expect:
        assert fragment in text, fragment
    assert len(problems) == 17
    assert str(err.value).count("\n  - ") == 17


def test_strict_results_not_a_list(gt: GroundTruth) -> None:
    with pytest.raises(StrictEvalError, match="'results' must be a list, got dict"):
        evaluate(gt, {"version": "1.0", "challenge": "ego4d_nlq_challenge", "results": {}}, mode="strict")


def test_strict_exclusions(gt: GroundTruth) -> None:
    obj = copy.deepcopy(WORKED_GT)
    del obj["videos"][0]["clips"][1]["annotations"][0]["language_queries"][1]["query"]  # B/1 without text
    obj["videos"][0]["clips"][0]["annotations"][0]["language_queries"][1]["query"] = "Query Text: "  # A/1
    gt2 = GroundTruth.from_obj(obj)
    r = evaluate(gt2, submission(worked_results()), mode="strict", exclude=["exclude_zero_length"])
    assert (r.num_evaluated, r.num_missing, r.excluded, r.num_ignored) == (
        4,
        1,
        {"exclude_zero_length": 1},
        1,
    )
    assert r.recall[(0.3, 1)] == 0.5 and r.miou == pytest.approx((5 / 15 + 0.8) / 4)
    both = evaluate(
        gt2, submission(worked_results()), mode="strict", exclude=["exclude_zero_length", "exclude_no_text"]
    )
    assert both.excluded == {"exclude_zero_length": 1, "exclude_no_text": 1}  # A/1 counted under the first
    assert (both.num_evaluated, both.num_missing) == (3, 0)
    assert both.summary_line() == (
        "Evaluated: 3 / 3 instances (strict: 0 missing counted as misses; exclude_zero_length removed 1,"
        " exclude_no_text removed 1; 5 GT queries, 4 results)"
    )
    assert both.recall[(0.3, 1)] == pytest.approx(2 / 3)
    swapped = evaluate(gt2, submission(worked_results()), mode="strict", exclude=["exclude_no_text"])
    assert swapped.excluded == {"exclude_no_text": 2}
    with pytest.raises(ValueError, match="unknown exclusion"):
        evaluate(gt, submission([]), mode="strict", exclude=["zero_length"])
    with pytest.raises(ValueError, match="only in strict mode"):
        evaluate(gt, submission([]), exclude=["exclude_zero_length"])


def test_evaluate_both_records_each_failure(gt: GroundTruth) -> None:
    ok = evaluate_both(gt, submission(worked_results()))
    assert ok["official"]["table"] == WORKED_TABLE
    assert ok["official"]["recall"]["R1@0.3"] == 0.5 and ok["strict"]["recall"]["R1@0.3"] == 0.4
    assert ok["strict"]["evaluated"] == [4, 5] and ok["official"]["evaluated"] == [4, 5]
    assert ok["official"]["mean_recall"]["MR5"] == 0.75
    dup = evaluate_both(gt, submission([*worked_results(), worked_results()[0]]))
    assert dup["official"]["recall"]["R1@0.3"] == pytest.approx(0.6)
    assert dup["strict"]["error"].startswith("StrictEvalError: strict evaluation refused, 1 problem(s)")
    unknown = evaluate_both(gt, submission([entry(("x", "y"), 0, [[1, 2]])]))
    assert unknown["official"]["error"].startswith(
        "AssertionError: Instance not present! (official evaluation"
    )
    assert "unknown (clip_uid, annotation_uid)" in unknown["strict"]["error"]
    json.dumps(unknown, allow_nan=False)


def test_strict_recall_by_group(gt: GroundTruth) -> None:
    groups = {(*A, 0): "objects", (*A, 2): "objects", (*A, 1): "people", (*B, 1): "people"}
    out = evaluate_both(gt, submission(worked_results()), thresholds=(0.3, 0.5), ks=(1, 5), groups=groups)
    rows = out["strict"]["by_group"]
    assert [r["group"] for r in rows] == ["objects", "people", "(no group)"]
    assert [r["num_evaluated"] for r in rows] == [2, 2, 1] and [r["num_missing"] for r in rows] == [0, 1, 0]
    assert [r["R1@0.3"] for r in rows] == [0.5, 0.0, 1.0]
    assert [r["R5@0.5"] for r in rows] == [1.0, 0.0, 1.0]
    assert [r["miou"] for r in rows] == pytest.approx([(5 / 15) / 2, 0.0, 0.8])
    assert "by_group" not in evaluate_both(gt, submission(worked_results()))["strict"]
    json.dumps(out, allow_nan=False)


def test_strict_refusal_logs_a_summary_and_keeps_every_offence(
    gt: GroundTruth, caplog: pytest.LogCaptureFixture
) -> None:
    bad = [entry(A, 0, [[5, 1]]) for _ in range(8)]  # start > end, and 7 duplicates
    with caplog.at_level("WARNING", logger="egonlq.evaluation.metric"):
        out = evaluate_both(gt, submission(bad))
    assert out["strict"]["error"].count("\n  - ") == 15
    (record,) = [r for r in caplog.records if "strict evaluation failed" in r.getMessage()]
    message = record.getMessage()
    assert "\n" not in message and message.count("; results[") == 4  # 5 offences shown
    assert "strict evaluation failed: 15 problem(s), first: results[0]" in message
    assert message.endswith("(and 10 more)")


def test_unreadable_predictions_are_no_modes_verdict(gt: GroundTruth, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="gone.json"):
        evaluate_both(gt, tmp_path / "gone.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(InputError, match="bad.json"):
        evaluate_both(gt, tmp_path / "bad.json")


def test_metrics_files_and_table(gt: GroundTruth, tmp_path: Path) -> None:
    paths = []
    for predictor, results in (
        ("uniform", worked_results()),
        ("broken", [*worked_results(), worked_results()[0]]),
    ):
        out = evaluate_both(gt, submission(results), exclude=["exclude_zero_length"])
        out.update(predictor=predictor, split="val")
        paths.append(tmp_path / f"{predictor}.json")
        write_metrics(out, paths[-1])
    df = metrics_table(paths, tmp_path / "m.parquet", tmp_path / "m.md")
    assert list(zip(df["predictor"], df["mode"], strict=True)) == [
        ("broken", "official"), ("broken", "strict"), ("uniform", "official"), ("uniform", "strict")
    ]  # fmt: skip
    back = read_parquet(tmp_path / "m.parquet", METRICS).to_pandas()
    assert back.loc[3, "R1@0.3"] == 0.5 and back.loc[3, "num_excluded"] == 1
    assert back.loc[3, "excluded"] == '{"exclude_zero_length": 1}' and pd.isna(back.loc[3, "error"])
    assert (
        back.loc[2, "R1@0.3"] == 0.5 and back.loc[2, "evaluated_x"] == 4 and back.loc[2, "evaluated_y"] == 5
    )
    assert back.loc[1, "error"].startswith("StrictEvalError") and pd.isna(back.loc[1, "R1@0.3"])
    md = (tmp_path / "m.md").read_text().splitlines()
    assert md[2].startswith("| broken | val | official | 60.00 | 20.00 | 80.00 | 80.00 | 29.33 | 5 / 5 |")
    assert md[3].startswith("| broken | val | strict | – | – | – | – | – | – | error: StrictEvalError")
    assert md[5] == (
        "| uniform | val | strict | 50.00 | 25.00 | 75.00 | 75.00 | 28.33 | 3 / 4 |"
        " 1 missing; exclude_zero_length removed 1 |"
    )
    with pytest.raises(InputError, match="several metrics files"):
        metrics_table([paths[0], paths[0]], tmp_path / "x.parquet", tmp_path / "x.md")
    with pytest.raises(ValueError, match="predictor"):
        write_metrics({"split": "val", "official": {}}, tmp_path / "bad.json")


def test_metrics_files_and_table_carry_their_provenance(gt: GroundTruth, tmp_path: Path) -> None:
    """A number traces to its config and data: the metrics JSON keeps the record, the table keeps its own in
    the parquet schema and the markdown footer, and warns when its files ran on different data."""
    record = {"config": {"evaluation": {"ks": [1]}}, "config_sha256": "a" * 64, "data_fingerprint": "b" * 64}
    paths = []
    for predictor, data in (("uniform", "b" * 64), ("prior", "c" * 64)):
        out = evaluate_both(gt, submission(worked_results()))
        out.update(predictor=predictor, split="val")
        paths.append(tmp_path / f"{predictor}.json")
        write_metrics(out, paths[-1], {**record, "data_fingerprint": data})
    assert read_metrics(paths[0])["provenance"] == record
    metrics_table(paths[:1], tmp_path / "m.parquet", tmp_path / "m.md", provenance=record)
    assert read_schema_provenance(pq.read_schema(tmp_path / "m.parquet")) == record
    md = (tmp_path / "m.md").read_text()
    assert (
        "Config (evaluation): sha256 `aaaaaaaaaaaaaaaa`." in md
        and "Data fingerprint: `bbbbbbbbbbbbbbbb`" in md
    )
    metrics_table(paths, tmp_path / "m.parquet", tmp_path / "m.md", provenance=record)
    assert "**Warning**: these results ran on 2 different data sets" in (tmp_path / "m.md").read_text()
    bad = json.loads(paths[0].read_text()) | {"provenance": "yesterday"}
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    with pytest.raises(InputError, match="field 'provenance'"):
        read_metrics(tmp_path / "bad.json")


def test_read_metrics_checks_every_mode_entry(gt: GroundTruth, tmp_path: Path) -> None:
    out = evaluate_both(gt, submission(worked_results()))
    out.update(predictor="uniform", split="val")
    path = tmp_path / "m.json"
    write_metrics(out, path)
    assert read_metrics(path)["strict"]["recall"]["R1@0.3"] == 0.4

    def broken(change) -> Path:
        obj = copy.deepcopy(out)
        change(obj)
        bad = tmp_path / "bad.json"
        bad.write_text(json.dumps(obj))
        return bad

    cases = [
        (lambda o: o.pop("official") and o.pop("strict"), r"no mode out of.*\[record uniform/val\]"),
        (lambda o: o.update(split=3), "field 'split'"),
        (lambda o: o["strict"]["recall"].update({"R1@0.3": "high"}), r"strict entry: recall.*R1@0.3"),
        (lambda o: o["official"].pop("evaluated"), r"official entry: 'evaluated'.*'official'"),
        (lambda o: o["official"].update(num_gt=-1), "'num_gt' missing or not an integer"),
        (lambda o: o.update(strict={"mode": "strict", "error": 7}), "'error' is not a string"),
        (lambda o: o.update(strict=[1]), "strict entry: not an object"),
    ]  # fmt: skip
    for change, message in cases:
        with pytest.raises(InputError, match=message):
            read_metrics(broken(change))
    (tmp_path / "list.json").write_text("[]")
    with pytest.raises(InputError, match="not a JSON object"):
        metrics_table([tmp_path / "list.json"], tmp_path / "x.parquet", tmp_path / "x.md")


# ------------------------------------------------------------------------------------------------ properties

coord = st.integers(-1000, 1000).map(float)
window = st.tuples(coord, coord).map(sorted)


@given(window, window, st.booleans())
def test_iou_symmetric_bounded(a: list[float], b: list[float], strict: bool) -> None:
    ab, ba = (
        float(iou(np.array(a), np.array(b), strict=strict)),
        float(iou(np.array(b), np.array(a), strict=strict)),
    )
    if math.isnan(ab):
        assert not strict and math.isnan(ba) and a[0] == a[1] == b[0] == b[1]
    else:
        assert ab == ba and 0.0 <= ab <= 1.0


@given(coord, st.integers(1, 500).map(float), coord)
def test_iou_identity_and_shift(start: float, length: float, shift: float) -> None:
    w = np.array([start, start + length])
    assert float(iou(w, w)) == 1.0
    other = np.array([start + length / 2, start + 2 * length])
    assert float(iou(w + shift, other + shift)) == float(iou(w, other))


queries_per_annotation = st.lists(st.tuples(st.integers(0, 50), st.integers(0, 20)), min_size=1, max_size=4)


@st.composite
def gt_and_predictions(draw, positive_gt: bool = False, every_query_once: bool = False):
    spans = draw(st.lists(queries_per_annotation, min_size=1, max_size=3))
    annotations, results = [], []
    for a, qs in enumerate(spans):
        lq = [{"clip_start_sec": float(s), "clip_end_sec": float(s + (ln or positive_gt))} for s, ln in qs]
        annotations.append(
            {"clip_uid": f"c{a}", "annotations": [{"annotation_uid": "a", "language_queries": lq}]}
        )
        for i in range(len(qs)):
            if every_query_once or draw(st.booleans()):
                times = draw(
                    st.lists(window.map(lambda w: [w[0] / 10 + 25, w[1] / 10 + 25]), min_size=1, max_size=6)
                )
                results.append(entry((f"c{a}", "a"), i, times))
    results = draw(st.permutations(results))
    return GroundTruth.from_obj({"videos": [{"clips": annotations}]}), submission(list(results))


@settings(max_examples=60, deadline=None)
@given(gt_and_predictions(), st.sampled_from(["official", "strict"]))
def test_recall_monotone_in_k_antitone_in_threshold(data, mode: str) -> None:
    gt, preds = data
    ts, ks = (0.01, 0.1, 0.3, 0.5, 0.7), (1, 2, 3, 5, 10)
    r = evaluate(gt, preds, mode=mode, thresholds=ts, ks=ks).recall
    if not preds["results"] and mode == "official":
        return
    for t in ts:
        assert [r[(t, k)] for k in ks] == sorted(r[(t, k)] for k in ks)
    for k in ks:
        assert [r[(t, k)] for t in ts] == sorted((r[(t, k)] for t in ts), reverse=True)


@settings(max_examples=60, deadline=None)
@given(gt_and_predictions(positive_gt=True, every_query_once=True))
def test_strict_equals_official_when_every_query_predicted_once(data) -> None:
    gt, preds = data
    official, strict = evaluate(gt, preds), evaluate(gt, preds, mode="strict")
    assert official.recall == pytest.approx(strict.recall, abs=1e-12)
    assert official.miou == pytest.approx(strict.miou, abs=1e-12)
    assert official.evaluated() == strict.evaluated() == (gt.num_gt, gt.num_gt)
