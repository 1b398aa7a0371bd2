"""The evaluation stage's commands: exit status when nothing could be scored, per-template recall from
--queries, coverage and clip bounds in validate-predictions, help text on every option."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from egonlq.cli import build_parser, main
from egonlq.data.annotations import read_nlq
from egonlq.io import write_parquet

CLIP, ANN = "7b1d2e4f-0000-4000-8000-00000000c001", "3e2f1a0b-0000-4000-8000-00000000a0a1"


def query(start: float, end: float, template: str | None, text: str) -> dict:
    return {
        "clip_start_sec": start,
        "clip_end_sec": end,
        "video_start_sec": 60.0 + start,
        "video_end_sec": 60.0 + end,
        "template": template,
        "query": text,
    }


GT = {
    "version": "1",
    "videos": [
        {
            "video_uid": "5f3c0a9e-0000-4000-8000-00000000a001",
            "split": "val",
            "clips": [
                {
                    "clip_uid": CLIP,
                    "video_start_sec": 60.0,
                    "video_end_sec": 540.0,
                    "clip_start_sec": 0,
                    "clip_end_sec": 480.0,
                    "annotations": [
                        {
                            "annotation_uid": ANN,
                            "language_queries": [
                                query(10.0, 20.0, "Place: Where did I put X?", "Where did I put the knife?"),
                                query(100.0, 160.0, "Place: Where did I put X?", "Where did I put the cup?"),
                                query(30.0, 40.0, None, "What did I put in the bowl?"),
                            ],
                        }
                    ],
                }
            ],
        }
    ],
}


def predictions(results: list[tuple[int, list]]) -> dict:
    return {
        "version": "1.0",
        "challenge": "ego4d_nlq_challenge",
        "results": [
            {"clip_uid": CLIP, "annotation_uid": ANN, "query_idx": i, "predicted_times": times}
            for i, times in results
        ],
    }


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    gt = tmp_path / "gt.json"
    gt.write_text(json.dumps(GT))
    queries = tmp_path / "queries.parquet"
    write_parquet(read_nlq(gt, "val").queries, queries)
    return {"gt": gt, "queries": queries, "dir": tmp_path}


def evaluate(files: dict[str, Path], preds: Path, *extra: str) -> Path:
    out = files["dir"] / "metrics.json"
    main(
        [
            "evaluate",
            "--gt",
            str(files["gt"]),
            "--predictions",
            str(preds),
            "--predictor",
            "p",
            "--split",
            "val",
        ]
        + ["--out", str(out), *extra]
    )
    return out


def test_evaluate_adds_recall_per_template_from_queries(files: dict[str, Path]) -> None:
    preds = files["dir"] / "p.json"
    preds.write_text(json.dumps(predictions([(0, [[10.0, 20.0]]), (2, [[0.0, 1.0]])])))
    out = json.loads(evaluate(files, preds, "--queries", str(files["queries"])).read_text())
    assert out["group_by"] == "template"
    rows = {r["group"]: r for r in out["strict"]["by_group"]}
    assert list(rows) == ["Place: Where did I put X?", "(no template)"]
    assert (
        rows["Place: Where did I put X?"]["R1@0.3"] == 0.5
        and rows["Place: Where did I put X?"]["num_missing"] == 1
    )
    assert rows["(no template)"]["R1@0.3"] == 0.0
    assert "by_group" not in json.loads(evaluate(files, preds).read_text())["strict"]


def test_evaluate_fails_when_no_mode_scores(files: dict[str, Path]) -> None:
    with pytest.raises(SystemExit) as missing:
        evaluate(files, files["dir"] / "gone.json")
    assert missing.value.code == 2  # bad input: the file cannot be read
    preds = files["dir"] / "p.json"
    preds.write_text(json.dumps(predictions([(7, [[1.0, 2.0]])])))  # out of range: both modes refuse
    with pytest.raises(SystemExit) as refused:
        evaluate(files, preds)
    message = str(refused.value.code)
    assert message.startswith(f"evaluate: no mode could score {preds} (official: IndexError")
    assert "; strict: StrictEvalError" in message and "\n" not in message
    assert not (files["dir"] / "metrics.json").exists()
    preds.write_text(json.dumps(predictions([(0, [[10.0, 20.0]]), (0, [[10.0, 20.0]])])))  # strict refuses
    out = json.loads(evaluate(files, preds).read_text())  # official still scores: a normal partial result
    assert out["official"]["recall"]["R1@0.3"] == 1.0 and "duplicate" in out["strict"]["error"]


def test_evaluate_and_metrics_table_record_config_and_data_fingerprint(files: dict[str, Path]) -> None:
    preds = files["dir"] / "p.json"
    preds.write_text(json.dumps(predictions([(0, [[10.0, 20.0]])])))
    preflight = files["dir"] / "preflight.json"
    preflight.write_text(json.dumps({"fingerprint": "abc123", "nlq": {"val": {"release": "demo"}}}))
    config = json.dumps({"evaluation": {"thresholds": [0.3, 0.5]}})
    out = evaluate(files, preds, "--provenance", config, "--preflight", str(preflight))
    record = json.loads(out.read_text())["provenance"]
    assert record["config"] == {"evaluation": {"thresholds": [0.3, 0.5]}}
    assert len(record["config_sha256"]) == 64
    assert record["data_fingerprint"] == "abc123" and record["data_release"] == {"nlq val": "demo"}
    table = files["dir"] / "table.md"
    main(["metrics-table", "--inputs", str(out), "--parquet", str(files["dir"] / "t.parquet"),
          "--markdown", str(table), "--provenance", config, "--preflight", str(preflight)])  # fmt: skip
    assert "abc123" in table.read_text()


def validate(files: dict[str, Path], obj: dict, *extra: str) -> Path:
    preds = files["dir"] / "v.json"
    preds.write_text(json.dumps(obj))
    main(["validate-predictions", str(preds), "--gt", str(files["gt"]), *extra])
    return preds


def test_validate_predictions_reports_coverage_and_windows_outside_the_clip(
    files: dict[str, Path], capsys: pytest.CaptureFixture
) -> None:
    whole = predictions([(0, [[10.0, 20.0]]), (1, [[100.0, 160.0]]), (2, [[30.0, 40.0]])])
    preds = validate(files, whole)
    assert capsys.readouterr().out.splitlines()[-1] == f"{preds}: valid"

    partial = predictions([(0, [[10.0, 20.0]]), (1, [[470.0, 500.0]])])
    with pytest.raises(SystemExit) as refused:
        validate(files, partial)
    assert refused.value.code == f"{preds}: coverage 66.7 % below 100.0 %; 1 window(s) outside their clip"
    out = capsys.readouterr().out
    assert "answers 2 / 3 GT queries (66.7 %)" in out and f"1 unanswered, first: {CLIP}/{ANN}/2" in out
    assert "results[1]" in out and "[470.0, 500.0], clip duration 480.0" in out
    validate(files, partial, "--min-coverage", "0.6", "--allow-outside")
    assert capsys.readouterr().out.splitlines()[-1] == f"{preds}: valid"


def undocumented(module: str) -> list[str]:
    """Commands of ``egonlq.cli.<module>`` without a docstring, and their options without help text."""
    from egonlq.cli.registry import COMMANDS

    sub = next(a for a in build_parser()._actions if a.dest == "command")
    names = [n for n, (fn, _) in COMMANDS.items() if fn.__module__ == f"egonlq.cli.{module}"]
    assert names, module
    missing = [name for name in names if not (COMMANDS[name][0].__doc__ or "").strip()]
    for name in names:
        missing += [
            f"{name} {'/'.join(action.option_strings) or action.dest}"
            for action in sub.choices[name]._actions
            if action.dest != "help" and not action.help
        ]
    return missing


def test_every_command_and_option_has_help() -> None:
    assert undocumented("evaluation") == []
