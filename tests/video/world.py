"""The tiny demo world (one rendered val video) that the video tests share, and a keyframes runner."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from egonlq.data.annotations import ingest_nlq
from egonlq.video.aks import AKSParams
from egonlq.video.keyframes import run_keyframes

PARAMS = [AKSParams(M=16, depth=3), AKSParams(M=8, depth=2, t1=0.5)]


class World:
    def __init__(self, root: Path):
        self.root = root
        self.video_dir = root / "v1" / "full_scale"
        (self.mp4,) = sorted(self.video_dir.glob("*.mp4"))
        self.video_uid = self.mp4.stem
        videos = json.loads((root / "ego4d.json").read_text())["videos"]
        self.num_frames = {v["video_uid"]: v["video_metadata"]["num_frames"] for v in videos}
        clips, queries, _ = ingest_nlq(root / "v1" / "annotations" / "nlq_val.json", "val")
        self.clips, self.queries = clips.to_pandas(), queries.to_pandas()
        on_video = self.queries["video_uid"] == self.video_uid
        self.n_eligible = int((on_video & self.queries["has_text"]).sum())


def run(world: World, out: Path, scorer, video_dir: Path | None = None, **kwargs) -> dict:
    options = dict(params_list=PARAMS, frames_dir=None, save_frames=0, canonical_frames=world.num_frames)
    options.update(kwargs)
    return run_keyframes(
        world.queries,
        world.clips,
        video_dir or world.video_dir,
        scorer,
        out_scores=out / "scores.parquet",
        out_selection=out / "selection.parquet",
        progress_path=out / "progress.jsonl",
        **options,
    )


def pa_table(frame: pd.DataFrame, schema):
    import pyarrow as pa

    return pa.Table.from_pandas(frame.loc[:, schema.names], schema=schema, preserve_index=False)
