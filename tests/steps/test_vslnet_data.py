"""Goal-Step in VSLNet's shapes: clips on the video/group timeline from 0, unshifted query times, group
features concatenated in order, and the errors for missing features."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from egonlq import timegrid
from egonlq.data.features import read_clip_features, save_video_features
from egonlq.data.tables import CLIPS, QUERIES
from egonlq.demo.goalstep import write_goalstep
from egonlq.demo.world import make_world
from egonlq.errors import InputError
from egonlq.io import read_parquet
from egonlq.steps.goalstep import ingest, read_groups
from egonlq.steps.vslnet_data import on_timeline, write_vslnet_split

DIM = 4


@pytest.fixture(scope="module")
def goalstep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny world's Goal-Step files, ingested, and per-video features whose column 0 names the video and
    the row (``1000 * video + row``)."""
    root = tmp_path_factory.mktemp("goalstep")
    world = make_world("tiny", 0)
    write_goalstep(world, root)
    annotated = [root / "goalstep_train.json", root / "goalstep_valid.json"]
    ingest(annotated, None, root / "goalstep_video_groups.tsv", root / "data", root / "quirks.json")
    for v, video in enumerate(world.videos):
        rows = math.ceil(video.duration_sec * timegrid.FEATURES_PER_SEC)
        feats = np.zeros((rows, DIM), dtype=np.float32)
        feats[:, 0] = 1000 * v + np.arange(rows)
        save_video_features(feats, root / "features" / f"{video.uid}.pt")
    return root


def _write(root: Path, split: str, out: Path, feature_dir: Path | None = None) -> dict:
    return write_vslnet_split(
        root / "data" / f"{split}_gt.json", split, groups_path=root / "goalstep_video_groups.tsv",
        feature_dir=feature_dir or root / "features", dim=DIM, grid=timegrid.OFFICIAL, mode="compatible",
        out_dir=out,
    )  # fmt: skip


@pytest.mark.parametrize("split", ["train", "valid"])
def test_clips_span_the_timeline_and_query_times_are_not_shifted(
    goalstep: Path, tmp_path: Path, split: str
) -> None:
    stats = _write(goalstep, split, tmp_path)
    gt = json.loads((goalstep / "data" / f"{split}_gt.json").read_text())
    clips = read_parquet(tmp_path / f"{split}_clips.parquet", CLIPS).to_pandas().set_index("clip_uid")
    queries = read_parquet(tmp_path / f"{split}_queries.parquet", QUERIES).to_pandas()
    assert stats["entries"] == len(gt["videos"]) == len(clips)
    assert set(queries["split"]) == {"val" if split == "valid" else "train"}
    for video in gt["videos"]:
        (clip,) = video["clips"]
        row = clips.loc[clip["clip_uid"]]
        assert row["video_start_sec"] == 0.0 and row["video_end_sec"] == clip["video_end_sec"]
        mine = queries[queries["clip_uid"] == clip["clip_uid"]]
        truth = clip["annotations"][0]["language_queries"]
        assert mine["clip_start_sec"].tolist() == [q["clip_start_sec"] for q in truth]  # video timeline
        assert mine["query"].tolist() == [q["query"] for q in truth]
    if split == "valid":  # the entry that does not start at 0 keeps its times (spec §5 timebase)
        late = [v["clips"][0] for v in gt["videos"] if v["clips"][0]["video_start_sec"] > 1.0]
        assert late and clips.loc[late[0]["clip_uid"], "video_start_sec"] == 0.0
    assert not list(tmp_path.glob(".*_entries_*"))  # the per-entry feature folder is gone


def test_group_features_are_the_members_concatenated(goalstep: Path, tmp_path: Path) -> None:
    stats = _write(goalstep, "train", tmp_path)
    groups = read_groups(goalstep / "goalstep_video_groups.tsv")
    assert stats["groups"] >= 1
    feats = read_clip_features(tmp_path / "train_features.parquet")
    uid = next(u for u in feats if u.startswith("grp-"))
    first_member_rows = math.ceil(
        next(v for v in make_world("tiny", 0).videos if v.uid == groups[uid][0]).duration_sec
        * timegrid.FEATURES_PER_SEC
    )
    column = feats[uid][:, 0]
    # the first member's rows 0.., then the second member's from its row 0
    assert column[0] % 1000 == 0 and column[first_member_rows] % 1000 == 0
    assert column[first_member_rows] // 1000 != column[0] // 1000
    assert (np.diff(column[:first_member_rows]) == 1).all()


def test_missing_features_name_the_entry(goalstep: Path, tmp_path: Path) -> None:
    empty = tmp_path / "no_features"
    empty.mkdir()
    with pytest.raises(InputError, match="no features for this Goal-Step entry") as err:
        _write(goalstep, "valid", tmp_path / "out", feature_dir=empty)
    assert err.value.record.startswith("video_uid=")
    # a group member without features: the group and the member are named
    groups = read_groups(goalstep / "goalstep_video_groups.tsv")
    uid, members = next(iter(groups.items()))
    partial = tmp_path / "partial"
    partial.mkdir()
    for f in (goalstep / "features").glob("*.pt"):
        if f.stem != members[-1]:
            (partial / f.name).symlink_to(f)
    with pytest.raises(InputError, match=f"group member {members[-1]} has no usable features") as err:
        _write(goalstep, "train", tmp_path / "out", feature_dir=partial)
    assert err.value.record == f"video_uid={uid}"


def test_bad_end_time_is_an_error() -> None:
    gt = {"videos": [{"video_uid": "v", "clips": [{"clip_uid": "v", "video_end_sec": 0}]}]}
    with pytest.raises(InputError, match="video_end_sec is 0") as err:
        on_timeline(gt, "valid_gt.json")
    assert err.value.field == "video_end_sec" and err.value.record == "clip_uid=v"
