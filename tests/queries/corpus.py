"""The hand-written Ego4D-style narration corpus (fixtures/narrations_corpus.csv) through the product path:
curation (EgoClip windows, pseudo-clips), blocks of 8, the template backend, validation and windows."""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd
import pyarrow as pa

from egonlq.data.tables import NARRATIONS, VIDEOS
from egonlq.queries.blocks import make_blocks
from egonlq.queries.curation import assign_pseudo_clips, curate_narrations, pseudo_clips
from egonlq.queries.llm_backends import TemplateBackend
from egonlq.queries.llm_queries import generate_shard, load_prompt

CORPUS = Path(__file__).resolve().parent / "fixtures" / "narrations_corpus.csv"
LABELS = Path(__file__).resolve().parent / "fixtures" / "template_questions_labelled.csv"


def corpus_assigned() -> pa.Table:
    """The corpus as curated narrations with pseudo-clips (ASSIGNED)."""
    with open(CORPUS, newline="", encoding="utf-8") as f:
        records = list(csv.DictReader(f))
    rows, durations = [], {}
    for i, r in enumerate(records):
        t = float(r["timestamp_sec"])
        durations[r["video_uid"]] = max(durations.get(r["video_uid"], 0.0), t + 30.0)
        rows.append({"video_uid": r["video_uid"], "pass": 1, "narration_idx": i, "timestamp_sec": t,
                     "timestamp_frame": None, "text": r["text"], "tag": r["text"].split()[0],
                     "unsure": False, "annotation_uid": "a"})  # fmt: skip
    videos = [
        {"video_uid": v, "duration_sec": d, "fps": 30.0, "num_frames": int(d * 30)}
        for v, d in durations.items()
    ]
    curated, _ = curate_narrations(
        pa.Table.from_pylist(rows, schema=NARRATIONS),
        pa.Table.from_pylist(videos, schema=VIDEOS),
        exclude_videos={"val": set(), "test": set()},
    )
    assigned, _ = assign_pseudo_clips(curated, pseudo_clips(curated))
    return assigned


def corpus_questions(tmp: Path, seed: int = 0) -> tuple[pd.DataFrame, dict]:
    """Every question the template backend writes for the corpus (GENERATED rows) and the shard stats."""
    assigned = corpus_assigned()
    blocks = make_blocks(assigned, block_size=8)
    stats = generate_shard(
        blocks, TemplateBackend(seed=seed), prompt_template=load_prompt(), cache_path=tmp / "cache.jsonl",
        out_path=tmp / "questions.parquet",
    )  # fmt: skip
    table = pd.read_parquet(tmp / "questions.parquet")
    text = assigned.select(["narration_uid", "text"]).to_pandas().set_index("narration_uid")["text"]
    table["narration"] = table["narration_uid"].map(text)
    return table, stats
