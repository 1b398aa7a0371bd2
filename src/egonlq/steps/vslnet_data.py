"""Goal-Step in the shapes VSLNet reads: the official baseline (spec dual-encoder-and-steps §5) is VSLNet
trained on the NLQ-style conversion, so each annotated split becomes an NLQ file, its QUERIES and CLIPS tables
and a clip-features file, and the project's VSLNet commands (train, predict, evaluate) run on them unchanged.

One clip per entry spans its whole video (or group) timeline from 0: the queries' times are on that timeline,
never shifted by the entry's ``start_time`` (§5 timebase), and the features start at video time 0. A group's
features are its members' concatenated in the listed order (:func:`egonlq.steps.chunks.entry_rows`).
"""

from __future__ import annotations

import copy
import os
import tempfile
from pathlib import Path

from egonlq.data.annotations import read_nlq
from egonlq.data.features import cut_clips, save_video_features
from egonlq.errors import InputError
from egonlq.io import read_json, write_json, write_parquet
from egonlq.steps.chunks import entry_loader
from egonlq.steps.goalstep import read_groups
from egonlq.timegrid import FeatureGrid

# Goal-Step split -> the NLQ split name the VSLNet tables carry
NLQ_SPLIT = {"train": "train", "valid": "val"}


def on_timeline(gt: dict, source: str | Path) -> dict:
    """The NLQ-style ground truth of ``steps-ingest`` with every clip spanning its video or group timeline
    from 0 (``video_start_sec = clip_start_sec = 0``, ends at the entry's ``end_time``): the clip VSLNet cuts
    features for, on the timeline the query times are on. The query times are kept as they are."""
    out = copy.deepcopy(gt)
    for video in out.get("videos", []):
        for clip in video.get("clips", []):
            end = clip.get("video_end_sec")
            if isinstance(end, bool) or not isinstance(end, int | float) or end <= 0:
                record = f"clip_uid={clip.get('clip_uid')}"
                raise InputError(source, f"video_end_sec is {end!r}", record=record, field="video_end_sec")
            clip.update(video_start_sec=0.0, clip_start_sec=0.0, clip_end_sec=float(end))
    return out


def write_vslnet_split(
    gt_path: Path,
    split: str,
    *,
    groups_path: Path,
    feature_dir: Path,
    dim: int,
    grid: FeatureGrid,
    mode: str,
    out_dir: Path,
) -> dict:
    """Write ``<split>_nlq.json``, ``<split>_queries.parquet`` (QUERIES), ``<split>_clips.parquet`` (CLIPS)
    and ``<split>_features.parquet`` (CLIP_FEATURES) under ``out_dir`` from the ``steps-ingest`` ground
    truth ``gt_path`` of the Goal-Step ``split`` (train or valid). Returns the counts."""
    if split not in NLQ_SPLIT:
        raise ValueError(f"split must be one of {sorted(NLQ_SPLIT)}, got {split!r}")
    out_dir = Path(out_dir)
    nlq_path = out_dir / f"{split}_nlq.json"
    write_json(on_timeline(read_json(gt_path), gt_path), nlq_path)
    tables = read_nlq(nlq_path, NLQ_SPLIT[split])
    write_parquet(tables.queries, out_dir / f"{split}_queries.parquet")
    write_parquet(tables.clips, out_dir / f"{split}_clips.parquet")
    groups = read_groups(groups_path)
    load = entry_loader(feature_dir, groups, dim=dim, groups_path=groups_path)
    uids = tables.clips.column("video_uid").to_pylist()
    with tempfile.TemporaryDirectory(dir=out_dir, prefix=f".{split}_entries_") as tmp:
        # one feature file per entry, as cut_clips reads them: a video's own file, a group's concatenation
        for uid in uids:
            if uid.startswith("grp-"):
                save_video_features(load(uid), Path(tmp) / f"{uid}.pt")
            else:
                source = Path(feature_dir).resolve() / f"{uid}.pt"
                if not source.is_file():
                    raise InputError(
                        source, "no features for this Goal-Step entry", record=f"video_uid={uid}"
                    )
                os.symlink(source, Path(tmp) / f"{uid}.pt")
        stats = cut_clips(
            tables.clips.to_pandas(),
            Path(tmp),
            out_dir / f"{split}_features.parquet",
            expected_dim=dim,
            mode=mode,
            grid=grid,
        )
    stats = {
        "entries": len(uids),
        "groups": sum(u.startswith("grp-") for u in uids),
        "queries": tables.queries.num_rows,
        "clip_features": stats,
    }
    return stats
