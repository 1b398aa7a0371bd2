"""Preflight: every input listed (exists, size, sha256), NLQ files fingerprinted against the known releases,
all problems reported together; the `preflight` rule on the demo world and on a real-layout root."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import yaml

from egonlq.cli import main
from egonlq.data.preflight import Input, fingerprint, known_releases, nlq_counts, preflight, to_markdown
from egonlq.demo.world import build_world
from egonlq.errors import InputError
from tests.conftest import FIXTURES, snakemake

ANN = Path("v1") / "annotations"


def nlq_file(path: Path, videos: int, clips: int, annotations: int, queries: int) -> Path:
    """An NLQ-shaped file with exactly these counts (clips on the first videos, and so on down)."""
    assert annotations >= clips >= videos >= 1 and queries >= 0

    def spread(n: int, over: int) -> list[int]:
        return [n // over + (i < n % over) for i in range(over)]

    per_annotation = iter(spread(queries, annotations))
    per_clip = iter(spread(annotations, clips))
    doc = {"version": "1", "videos": []}
    for v, n_clips in enumerate(spread(clips, videos)):
        video = {"video_uid": f"v{v}", "split": "val", "clips": []}
        for c in range(n_clips):
            anns = [
                {
                    "annotation_uid": f"a{v}-{c}-{a}",
                    "language_queries": [{"query": "q?"}] * next(per_annotation),
                }
                for a in range(next(per_clip))
            ]
            video["clips"].append({"clip_uid": f"c{v}-{c}", "annotations": anns})
        doc["videos"].append(video)
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


V1_VAL = (247, 328, 542, 3875)


def test_counts_of_a_file(tmp_path: Path) -> None:
    path = nlq_file(tmp_path / "nlq.json", *V1_VAL)
    assert nlq_counts(path) == {
        "videos": 247,
        "clips": 328,
        "annotations": 542,
        "queries": 3875,
        "queries_with_text": 3875,
    }


def test_every_release_matches_its_own_counts_and_only_it() -> None:
    for release in known_releases():
        counts = {
            k: release[k] if release[k] is not None else 1
            for k in ("videos", "clips", "annotations", "queries")
        }
        exact, nearest = fingerprint(counts)
        assert exact is release and nearest is release
        exact, nearest = fingerprint({**counts, "queries": counts["queries"] - 5})
        assert exact is None and nearest is release


def test_release_match_mismatch_and_unknown(tmp_path: Path) -> None:
    val = nlq_file(tmp_path / "val.json", *V1_VAL)
    v2 = nlq_file(tmp_path / "v2.json", 303, 415, 686, 4554)
    subset = nlq_file(tmp_path / "subset.json", 247, 328, 540, 3870)
    report = preflight([], {"val": val, "train": v2, "test": subset})
    assert report["nlq"]["val"]["message"] == "NLQ v1 val, counts match"
    assert report["nlq"]["train"]["release"] == "NLQ v2 val"
    assert report["nlq"]["test"]["release"] is None and report["nlq"]["test"]["nearest"] == "NLQ v1 val"
    counts = "videos 247, clips 328, annotations 540, queries 3870"
    assert report["nlq"]["test"]["message"].startswith(
        f"unknown file: counts {counts}; nearest release NLQ v1 val"
    )
    assert report["problems"] == [f"nlq_train: {v2} is NLQ v2 val (its counts match), configured as train"]
    assert not report["ok"]
    demo = preflight([], {"val": val}, demo=True)
    assert demo["ok"] and demo["nlq"]["val"]["release"] == "demo"


def test_inputs_listed_with_size_and_checksum_and_all_problems_together(tmp_path: Path) -> None:
    present = tmp_path / "ego4d.json"
    present.write_text("{}", encoding="utf-8")
    folder = tmp_path / "features"
    folder.mkdir()
    (folder / "a.pt").write_bytes(b"123")
    not_nlq = tmp_path / "nlq_val.json"
    not_nlq.write_text("[]", encoding="utf-8")
    inputs = [
        Input("metadata", present),
        Input("features", folder),
        Input("narrations", tmp_path / "no.json"),
    ]
    inputs += [Input("egoclip", tmp_path / "egoclip.csv"), Input("nlq_val", not_nlq)]
    report = preflight(inputs, {"val": not_nlq})
    by_name = {d["name"]: d for d in report["inputs"]}
    assert by_name["metadata"] == {
        "name": "metadata",
        "path": str(present),
        "exists": True,
        "kind": "file",
        "bytes": 2,
        "sha256": hashlib.sha256(b"{}").hexdigest(),
    }
    assert (by_name["features"]["kind"], by_name["features"]["files"], by_name["features"]["bytes"]) == (
        "folder",
        1,
        3,
    )
    assert len(report["problems"]) == 3
    assert report["problems"][:2] == [
        f"narrations: {tmp_path / 'no.json'} does not exist",
        f"egoclip: {tmp_path / 'egoclip.csv'} does not exist",
    ]
    assert "not an NLQ annotation file" in report["problems"][2]
    md = to_markdown(report)
    assert "**FAILED**: 3 problems" in md and "| narrations |" in md and "**no**" in md


def test_command_writes_the_report_and_fails_with_the_whole_list(tmp_path: Path) -> None:
    val = nlq_file(tmp_path / "val.json", *V1_VAL)
    out = tmp_path / "report.json"
    argv = ["preflight", "--input", f"nlq_val={val}", "--nlq", f"val={val}", "--json", str(out)]
    main([*argv, "--markdown", str(tmp_path / "report.md")])
    assert json.loads(out.read_text())["nlq"]["val"]["release"] == "NLQ v1 val"
    argv += ["--input", f"narrations={tmp_path / 'a.json'}", "--input", f"egoclip={tmp_path / 'b.csv'}"]
    with pytest.raises(SystemExit) as info:
        main([*argv, "--markdown", str(tmp_path / "report.md")])
    error = info.value.__cause__
    assert isinstance(error, InputError) and "2 problems" in str(error)
    assert "a.json does not exist" in str(error) and "b.csv does not exist" in str(error)
    assert not json.loads(out.read_text())["ok"]


@pytest.mark.workflow
def test_preflight_rule_on_the_demo_world_and_on_a_real_layout(tmp_path: Path) -> None:
    demo = tmp_path / "demo"
    demo.mkdir()
    (demo / "config.yaml").write_text((FIXTURES / "tiny" / "config.yaml").read_text())
    snakemake(demo, "--cores", "1", "preflight")
    report = json.loads((demo / "results" / "preflight" / "report.json").read_text())
    assert report["ok"] and report["demo"] and {e["release"] for e in report["nlq"].values()} == {"demo"}
    names = {d["name"] for d in report["inputs"]}
    assert {
        "metadata",
        "nlq_val",
        "narrations",
        "features",
        "egoclip",
        "em_train_vq_train",
        "videos",
    } <= names

    root = tmp_path / "ego4d"
    build_world(root, preset="tiny", seed=0, render_videos=0)
    (root / ANN / "narration.json").unlink()
    (root / "ego4d.json").unlink()
    real = tmp_path / "real"
    real.mkdir()
    cfg = yaml.safe_load((FIXTURES / "tiny" / "config.yaml").read_text())
    cfg["data"] = {"root": str(root), "features": {"name": "demo_features", "dim": 256}}
    (real / "config.yaml").write_text(yaml.safe_dump(cfg))
    proc = snakemake(real, "--cores", "1", "preflight", check=False)
    assert proc.returncode != 0
    log = (real / "results" / "logs" / "preflight" / "preflight.log").read_text()
    assert "preflight failed, 2 problems" in log
    assert "ego4d.json does not exist" in log and "narration.json does not exist" in log
    assert "unknown file" in log  # the tiny world's NLQ files are no public release
