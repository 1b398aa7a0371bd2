"""Pairs: the leakage guard (demo split files, videos without clips included), sources, GT subsets."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from egonlq.data.annotations import read_nlq
from egonlq.data.tables import NLQ_VIDEOS
from egonlq.demo.world import build_world
from egonlq.dualenc.pairs import GT_SOURCE, build_pairs, guard_videos, select_pairs
from egonlq.errors import InputError
from egonlq.io import read_json, write_parquet
from egonlq.queries.curation import CURATED
from egonlq.queries.llm_queries import GENERATED


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("world")
    build_world(root, preset="tiny", seed=0)
    return root


def _curated(rows: list[tuple[str, str, float, str]]) -> pa.Table:
    """CURATED rows (video_uid, narration_uid, time, text) with 1 s windows."""
    cols = {name: [] for name in CURATED.names}
    for video, uid, t, text in rows:
        values = dict(
            video_uid=video,
            narration_uid=uid,
            **{"pass": 1},
            narration_idx=0,
            timestamp_sec=t,
            text=f"#C C {text}",
            text_clean=text,
            actor="C",
            window_start_sec=t - 0.5,
            window_end_sec=t + 0.5,
            video_duration_sec=100.0,
        )
        for k, v in values.items():
            cols[k].append(v)
    return pa.table(cols, schema=CURATED)


def _generated(rows: list[tuple[str, str, str]]) -> pa.Table:
    cols = {name: [] for name in GENERATED.names}
    for uid, source, text in rows:
        video = uid.split(":")[0]
        values = dict(
            query_uid=f"{uid}:{source}",
            video_uid=video,
            clip_uid="c",
            narration_uid=uid,
            block_id="",
            source=source,
            query=text,
            window_start_sec=0.0,
            window_end_sec=1.0,
            clip_start_sec=0.0,
            clip_end_sec=1.0,
            prompt_sha256="",
            backend="{}",
            parent_query_uid=None,
        )
        for k, v in values.items():
            cols[k].append(v)
    return pa.table(cols, schema=GENERATED)


def test_no_pair_on_nlq_val_or_test_videos_even_those_listed_without_clips(
    world: Path, tmp_path: Path
) -> None:
    paths = []
    empty = {}
    for split, name in (("val", "nlq_val.json"), ("test", "nlq_test_unannotated.json")):
        path = world / "v1" / "annotations" / name
        empty[split] = [v["video_uid"] for v in read_json(path)["videos"] if not v["clips"]]
        write_parquet(read_nlq(path, split).videos, tmp_path / f"{split}_videos.parquet", NLQ_VIDEOS)
        paths.append(tmp_path / f"{split}_videos.parquet")
    assert empty["val"] and empty["test"], "the tiny world lists a video without clips in each split"
    guard = guard_videos(paths)
    assert set(empty["val"]) | set(empty["test"]) <= guard
    val_video, test_video = empty["val"][0], empty["test"][0]
    curated = _curated(
        [
            ("free", "free:1:0", 10.0, "The camera wearer opens the fridge"),
            ("free", "free:1:1", 20.0, "The camera wearer cuts the bread"),
            (val_video, f"{val_video}:1:0", 5.0, "The camera wearer washes the cup"),
            (test_video, f"{test_video}:1:0", 5.0, "The camera wearer drops the knife"),
        ]
    )
    generated = _generated(
        [
            (f"{val_video}:1:0", "template", "Where did I wash the cup?"),
            ("free:1:0", "template", "Where is the fridge?"),
        ]
    )
    pairs, stats = build_pairs(curated, [generated], guard=guard, heldout_fraction=0.0)
    assert set(pairs.column("video_uid").to_pylist()) == {"free"}
    assert stats["dropped"]["nlq_eval_video"] == 3  # two narrations and one generated row
    assert sorted(pairs.column("source").to_pylist()) == [GT_SOURCE, GT_SOURCE, "template"]


def test_sources_gt_subsets_and_heldout_videos() -> None:
    curated = _curated(
        [(f"v{v}", f"v{v}:1:{i}", float(i), f"text {v} {i}") for v in range(10) for i in range(20)]
    )
    generated = _generated(
        [(f"v{v}:1:{i}", "rephrase:narration", f"para {v} {i}") for v in range(10) for i in range(20)]
    )
    pairs, stats = build_pairs(curated, [generated], guard=set(), heldout_fraction=0.3, seed=0)
    heldout = select_pairs(pairs, sources=[GT_SOURCE], gt_fraction=1.0, role="heldout")
    train_all = select_pairs(pairs, sources=[GT_SOURCE, "rephrase:*"], gt_fraction=1.0)
    assert set(heldout["video_uid"]).isdisjoint(train_all["video_uid"])
    assert stats["dropped"]["heldout_pseudo"] == len(heldout)  # the paraphrases of held-out videos
    gt10 = select_pairs(pairs, sources=[GT_SOURCE], gt_fraction=0.1)
    gt50 = select_pairs(pairs, sources=[GT_SOURCE], gt_fraction=0.5)
    gt100 = select_pairs(pairs, sources=[GT_SOURCE], gt_fraction=1.0)
    assert set(gt10["item_uid"]) < set(gt50["item_uid"]) < set(gt100["item_uid"])  # nested
    assert 0.03 < len(gt10) / len(gt100) < 0.2
    mixed = select_pairs(pairs, sources=[GT_SOURCE, "rephrase:*"], gt_fraction=0.1)
    assert mixed["source"].value_counts()[GT_SOURCE] == len(gt10)
    # a paraphrase follows its narration: no paraphrase of a narration the run does not have
    assert (mixed["source"] == "rephrase:narration").sum() == len(gt10)
    assert set(mixed.loc[mixed["source"] == "rephrase:narration", "item_uid"]) == set(gt10["item_uid"])


def test_an_empty_selection_names_the_sources() -> None:
    pairs, _ = build_pairs(_curated([("v", "v:1:0", 1.0, "a text")]), [], guard=set(), heldout_fraction=0.0)
    with pytest.raises(InputError, match=r"no train pair for sources \['llm:\*'\]") as e:
        select_pairs(pairs, sources=["llm:*"], gt_fraction=1.0, where="pairs.parquet")
    assert "narration" in str(e.value) and "pairs.parquet" in str(e.value)
