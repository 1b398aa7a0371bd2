"""Preflight: every input listed (exists, size, sha256), NLQ files fingerprinted against the known releases,
all problems reported together; the `preflight` rule on the demo world and on a real-layout root."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from egonlq.cli import main
from egonlq.data.feature_sets import write_sidecar
from egonlq.data.features import save_video_features
from egonlq.data.preflight import (
    TASK_KEYS,
    Features,
    Input,
    fingerprint,
    goalstep_counts,
    known_releases,
    nlq_counts,
    preflight,
    release_name,
    to_markdown,
)
from egonlq.demo.world import build_world
from egonlq.errors import InputError
from egonlq.timegrid import OFFICIAL, FeatureGrid, num_features
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


@pytest.mark.parametrize("task", sorted(TASK_KEYS))
def test_every_release_matches_its_own_counts_and_only_it(task: str) -> None:
    releases = known_releases(task)
    assert releases and all(r["source"] for r in releases)
    for release in releases:
        counts = {k: release[k] if release[k] is not None else 1 for k in TASK_KEYS[task]}
        exact, nearest = fingerprint(counts, task)
        assert exact is release and nearest is release
        exact, nearest = fingerprint({**counts, "queries": counts["queries"] - 5}, task)
        assert exact is None and nearest is release


def test_the_table_names_each_public_split() -> None:
    names = {release_name(r) for task in TASK_KEYS for r in known_releases(task)}
    assert names == {
        "NLQ v1 train",
        "NLQ v1 val",
        "NLQ v1 test (= NLQ v2 test)",
        "NLQ v2 train",
        "NLQ v2 val",
        "Goal-Step v1 valid",
        "Goal-Step v1 test",
    }
    # issue 18's figures: v2 val 4,554, test 4,004 with text (4,005 entries); v1 val 3,875
    by_name = {release_name(r): r for r in known_releases("nlq")}
    assert by_name["NLQ v2 val"]["queries"] == 4554 and by_name["NLQ v1 val"]["queries"] == 3875
    assert "13,849" in by_name["NLQ v2 train"]["source"]  # the disagreement is documented


def test_v2_test_and_the_issues_train_count(tmp_path: Path) -> None:
    test = nlq_file(tmp_path / "test.json", 258, 333, 566, 4005)
    train = nlq_file(tmp_path / "train.json", 400, 1270, 2000, 13849)
    report = preflight([], {"test": test, "train": train})
    assert report["nlq"]["test"]["message"] == "NLQ v1 test (= NLQ v2 test), counts match"
    assert report["nlq"]["train"]["message"] == (
        "unknown file: counts videos 400, clips 1270, annotations 2000, queries 13849;"
        " nearest release NLQ v2 train (clips 1270, queries 13847)"
    )
    assert report["ok"]


def goalstep_file(path: Path, groups: int, videos: int, steps: int, substeps: int) -> Path:
    """A Goal-Step file with these counts (the first ``groups`` entries are ``grp-``)."""
    doc = {"videos": []}
    for v in range(videos):
        uid = f"grp-v{v}" if v < groups else f"v{v}"
        n = steps // videos + (v < steps % videos)
        doc["videos"].append({"video_uid": uid, "segments": [{"segments": []} for _ in range(n)]})
    step_nodes = [s for v in doc["videos"] for s in v["segments"]]
    for i in range(substeps):
        step_nodes[i % len(step_nodes)]["segments"].append({})
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


def test_goalstep_files_match_mismatch_and_unknown(tmp_path: Path) -> None:
    valid = goalstep_file(tmp_path / "valid.json", 33, 134, 3349, 4347)
    assert goalstep_counts(valid) == {
        "videos": 134,
        "groups": 33,
        "steps": 3349,
        "substeps": 4347,
        "queries": 7696,
    }
    test = tmp_path / "test.json"
    test.write_text(
        json.dumps({"videos": [{"video_uid": f"v{i}", "step_segments": [{}] * 40} for i in range(134)]})
    )
    test_counts = goalstep_counts(test)
    assert (test_counts["videos"], test_counts["steps"], test_counts["queries"]) == (134, 0, 5360)
    subset = goalstep_file(tmp_path / "subset.json", 30, 120, 3000, 4000)
    report = preflight([], {}, goalstep={"valid": valid, "train": valid, "test": subset})
    assert report["goalstep"]["valid"]["message"] == "Goal-Step v1 valid, counts match"
    assert report["goalstep"]["test"]["message"].startswith(
        "unknown file: counts videos 120, groups 30, steps 3000, substeps 4000, queries 7000;"
        " nearest release Goal-Step v1 valid"
    )
    assert report["problems"] == [
        f"goalstep_train: {valid} is Goal-Step v1 valid (its counts match), configured as train"
    ]
    assert "## Goal-Step files" in to_markdown(report)
    nlq_shaped = nlq_file(tmp_path / "nlq.json", 1, 1, 1, 1)
    bad = preflight([], {}, goalstep={"valid": tmp_path / "none.json", "test": tmp_path / "x.json"})
    assert bad["ok"] and bad["goalstep"] == {}  # absent files: listed among the inputs, not here
    (tmp_path / "x.json").write_text("[]", encoding="utf-8")
    bad = preflight([], {}, goalstep={"test": tmp_path / "x.json", "valid": nlq_shaped})
    assert len(bad["problems"]) == 1 and "not a Goal-Step file" in bad["problems"][0]
    assert bad["goalstep"]["valid"]["release"] is None  # an NLQ file's videos have no steps: unknown


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


def _feature_root(root: Path, frames: dict[str, int], grid: FeatureGrid) -> tuple[Path, Path]:
    """A metadata file and a feature folder with one file per video on ``grid`` (dim 8)."""
    videos = [
        {"video_uid": u, "duration_sec": n / 30, "video_metadata": {"fps": 30.0, "num_frames": n}}
        for u, n in frames.items()
    ]
    metadata = root / "ego4d.json"
    metadata.write_text(json.dumps({"videos": videos}), encoding="utf-8")
    folder = root / "feats"
    for uid, n in frames.items():
        save_video_features(np.zeros((grid.num_rows(n), 8), np.float32), folder / f"{uid}.pt")
    return metadata, folder


def test_feature_set_checked_against_its_sidecar_and_the_metadata(tmp_path: Path) -> None:
    frames = {"v_long": 36_000, "v_short": 900}
    metadata, folder = _feature_root(tmp_path, frames, OFFICIAL)
    write_sidecar(folder, "mine", "an encoder", OFFICIAL, 8)
    report = preflight(
        [Input("features", folder)], {}, features=Features("mine", folder, 8), metadata=metadata
    )
    assert report["ok"], report["problems"]
    entry = report["features"]
    assert entry["set"]["origin"] == "sidecar" and entry["sampled"] == ["v_long", "v_short"]
    assert entry["message"] == (
        "mine (sidecar): an encoder, 1.875 rows/s, dim 8; rows match on 2 of 2 sampled videos"
        " (rate variants told apart)"
    )
    assert "## Features" in to_markdown(report)
    # the config's dim differs; the same files declared at 1.87 rows/s: the long video is named
    write_sidecar(folder, "mine", "an encoder", FeatureGrid(30.0, 32, 16, 1.87), 8)
    report = preflight([], {}, features=Features("mine", folder, 16), metadata=metadata)
    assert report["problems"] == [
        "features (mine): the set's dim is 8, the config says 16",
        "features (mine): 1 sampled videos do not have the rows of 1.87 rows/s (window 32, stride 16, "
        "sidecar): v_long (2249 rows, 2244 expected, fits 1.875 rows/s)",
    ]


def test_an_official_set_is_inferred_and_an_unknown_one_refused(tmp_path: Path) -> None:
    metadata, folder = _feature_root(tmp_path, {"v": 36_000}, FeatureGrid(30.0, 32, 16, 1.87))
    inferred = preflight([], {}, features=Features("egovlp", folder, 8), metadata=metadata)
    assert inferred["features"]["set"]["origin"] == "table"
    assert inferred["problems"][1].endswith("v (2244 rows, 2250 expected, fits 1.87 rows/s)")
    unknown = preflight([], {}, features=Features("mystery", folder, 8), metadata=metadata)
    assert len(unknown["problems"]) == 1 and "'mystery' has no sidecar" in unknown["problems"][0]
    # no metadata: described, rows unchecked (the missing metadata is an input problem of its own)
    blind = preflight([], {}, features=Features("egovlp", folder, 256), metadata=tmp_path / "none.json")
    assert blind["ok"] and blind["features"]["message"].endswith("rows unchecked, no metadata")


def test_data_fingerprint_follows_contents_not_paths(tmp_path: Path) -> None:
    for name in ("a", "b"):
        (tmp_path / name / "feats").mkdir(parents=True)
        (tmp_path / name / "meta.json").write_text("{}", encoding="utf-8")
        (tmp_path / name / "feats" / "x.pt").write_bytes(b"123")

    def fp(name: str) -> str:
        root = tmp_path / name
        inputs = [Input("metadata", root / "meta.json"), Input("features", root / "feats")]
        return preflight(inputs, {})["fingerprint"]

    assert fp("a") == fp("b")
    (tmp_path / "b" / "feats" / "x.pt").write_bytes(b"1234")
    assert fp("a") != fp("b")
    (tmp_path / "b" / "feats" / "x.pt").write_bytes(b"123")
    (tmp_path / "b" / "meta.json").write_text("[]", encoding="utf-8")
    assert fp("a") != fp("b")


@pytest.mark.workflow
def test_preflight_rule_on_the_demo_world_and_on_a_real_layout(tmp_path: Path) -> None:
    demo = tmp_path / "demo"
    demo.mkdir()
    (demo / "config.yaml").write_text((FIXTURES / "tiny" / "config.yaml").read_text())
    snakemake(demo, "--cores", "1", "preflight")
    report = json.loads((demo / "results" / "preflight" / "report.json").read_text())
    assert report["ok"] and report["demo"] and {e["release"] for e in report["nlq"].values()} == {"demo"}
    assert sorted(report["goalstep"]) == ["test", "train", "valid"]
    assert {e["release"] for e in report["goalstep"].values()} == {"demo"}
    assert report["features"]["set"]["origin"] == "sidecar" and report["features"]["offending"] == []
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
    # the longest video's features recomputed at twice the stride: half the rows
    videos = json.loads((root / "ego4d.json").read_text())["videos"]
    longest = max(videos, key=lambda v: v["video_metadata"]["num_frames"])
    frames = longest["video_metadata"]["num_frames"]
    wrong = FeatureGrid.of_windows(30.0, 32, 32).num_rows(frames)
    save_video_features(
        np.zeros((wrong, 256), np.float32), root / "v1" / "demo_features" / f"{longest['video_uid']}.pt"
    )
    real = tmp_path / "real"
    real.mkdir()
    cfg = yaml.safe_load((FIXTURES / "tiny" / "config.yaml").read_text())
    cfg["data"] = {"root": str(root), "features": {"name": "demo_features", "dim": 256}}
    (real / "config.yaml").write_text(yaml.safe_dump(cfg))
    proc = snakemake(real, "--cores", "1", "preflight", check=False)
    assert proc.returncode != 0
    log = (real / "results" / "logs" / "preflight" / "preflight.log").read_text()
    assert "preflight failed, 2 problems" in log
    assert "narration.json does not exist" in log
    expected = num_features(frames)
    assert "features (demo_features): 1 sampled videos do not have the rows of 1.875 rows/s" in log
    assert f"{longest['video_uid']} ({wrong} rows, {expected} expected)" in log
    assert "unknown file" in log  # the tiny world's NLQ files are no public release
