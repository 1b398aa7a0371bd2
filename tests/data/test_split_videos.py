"""A split's videos are the videos its file lists, with or without clips: through the CLI on the demo world,
no val/test video (nor, unless allowed, a train video) reaches curation or the training queries."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pytest

from egonlq.cli import main
from egonlq.data.tables import NLQ_VIDEOS
from egonlq.demo.world import build_world
from egonlq.errors import InputError
from egonlq.io import read_parquet, write_parquet
from egonlq.queries.curation import CURATED
from egonlq.queries.training_queries import TRAINING_QUERIES

REPO = Path(__file__).resolve().parents[2]
PROMPT = REPO / "src" / "egonlq" / "queries" / "prompts" / "nlq_questions_v1.txt"
SPLITS = ("train", "val", "test")
NLQ_FILES = {"train": "nlq_train.json", "val": "nlq_val.json", "test": "nlq_test_unannotated.json"}


def cli(command: str, **options: object) -> None:
    """Run ``python -m egonlq.cli command --option value ...`` (lists for several values, True for a flag)."""
    argv = [command]
    for name, value in options.items():
        argv.append("--" + name.replace("_", "-"))
        if isinstance(value, list):
            argv += [str(v) for v in value]
        elif value is not True:
            argv.append(str(value))
    main(argv)


@pytest.fixture(scope="module")
def ingested(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny demo world ingested: metadata, the three NLQ splits and the narrations."""
    work = tmp_path_factory.mktemp("split_videos")
    world = work / "world"
    build_world(world, preset="tiny", seed=0, write_features=False, render_videos=0)
    ann = world / "v1" / "annotations"
    data = work / "data"
    videos = data / "videos.parquet"
    cli("ingest-metadata", input=world / "ego4d.json", videos=videos, report=data / "metadata.json")
    for split in SPLITS:
        cli(
            "ingest-nlq",
            input=ann / NLQ_FILES[split],
            split=split,
            clips=data / f"{split}_clips.parquet",
            queries=data / f"{split}_queries.parquet",
            videos=data / f"{split}_videos.parquet",
            report=data / f"nlq_{split}.json",
        )
    cli(
        "ingest-narrations",
        input=ann / "narration.json",
        videos=videos,
        narrations=data / "narrations.parquet",
        summaries=data / "summaries.parquet",
        report=data / "narrations.json",
    )
    return work


def split_videos(work: Path) -> dict[str, set[str]]:
    tables = {s: read_parquet(work / "data" / f"{s}_videos.parquet", NLQ_VIDEOS) for s in SPLITS}
    return {s: set(table.column("video_uid").to_pylist()) for s, table in tables.items()}


def clipless(work: Path, split: str) -> set[str]:
    table = read_parquet(work / "data" / f"{split}_videos.parquet", NLQ_VIDEOS).to_pylist()
    return {r["video_uid"] for r in table if r["num_clips"] == 0}


def curate(work: Path, out: Path, videos_tables: list[Path]) -> None:
    data = work / "data"
    cli(
        "curate",
        narrations=data / "narrations.parquet",
        videos=data / "videos.parquet",
        split_clips=videos_tables,
        split_queries=[data / f"{s}_queries.parquet" for s in SPLITS],
        curated=out / "curated.parquet",
        assigned=out / "assigned.parquet",
        pseudo_clips=out / "pseudo_clips.parquet",
        stats=out / "curation.json",
    )


def generate(out: Path) -> Path:
    """Template queries of the curated narrations (one shard), merged: ``out/template/generated.parquet``."""
    shards = out / "template" / "shards"
    cli(
        "generate-queries",
        backend="template",
        backend_options='{"seed": 0}',
        assigned=out / "assigned.parquet",
        prompt=PROMPT,
        shard=0,
        num_shards=1,
        cache=shards / "cache.jsonl",
        out=shards / "shard0.parquet",
        stats=shards / "shard0.json",
    )
    generated = out / "template" / "generated.parquet"
    cli(
        "merge-queries",
        shards=[shards / "shard0.parquet"],
        shard_stats=[shards / "shard0.json"],
        pseudo_clips=out / "pseudo_clips.parquet",
        out=generated,
        stats=out / "template" / "stats.json",
        export=out / "template" / "nlq_train.json",
    )
    return generated


def training_queries(work: Path, out: Path, generated: Path) -> Path:
    data = work / "data"
    cli(
        "training-queries",
        nlq_queries=data / "train_queries.parquet",
        nlq_clips=data / "train_clips.parquet",
        generated=[generated],
        pseudo_clips=out / "pseudo_clips.parquet",
        guard_clips=[data / f"{s}_videos.parquet" for s in ("val", "test")],
        guard_queries=[data / f"{s}_queries.parquet" for s in ("val", "test")],
        queries_out=out / "training_queries.parquet",
        clips_out=out / "training_clips.parquet",
        stats=out / "training_stats.json",
    )
    return out / "training_queries.parquet"


def test_videos_without_clips_are_in_their_split(ingested: Path) -> None:
    videos = split_videos(ingested)
    for split in SPLITS:
        report = json.loads((ingested / "data" / f"nlq_{split}.json").read_text())
        assert report["videos"] == len(videos[split])
        assert len(clipless(ingested, split)) == report["counts"]["video_without_clips"] >= 1
        clips = read_parquet(ingested / "data" / f"{split}_clips.parquet").column("video_uid").to_pylist()
        assert not clipless(ingested, split) & set(clips)  # only the videos table knows them


def test_no_split_video_in_curation_or_training(ingested: Path, tmp_path: Path) -> None:
    curate(ingested, tmp_path, [ingested / "data" / f"{s}_videos.parquet" for s in SPLITS])
    curated = set(read_parquet(tmp_path / "curated.parquet", CURATED).column("video_uid").to_pylist())
    videos = split_videos(ingested)
    narrated = set(read_parquet(ingested / "data" / "narrations.parquet").column("video_uid").to_pylist())
    assert all(clipless(ingested, s) <= narrated for s in SPLITS)  # the leak was possible
    assert curated and not curated & set().union(*videos.values())  # allow_train_videos false: train too
    stats = json.loads((tmp_path / "curation.json").read_text())
    assert all(stats["dropped"][f"excluded_split:{s}"] > 0 for s in SPLITS)

    table = read_parquet(training_queries(ingested, tmp_path, generate(tmp_path)), TRAINING_QUERIES)
    assert set(table.column("source").to_pylist()) == {"nlq", "template"}
    assert not set(table.column("video_uid").to_pylist()) & (videos["val"] | videos["test"])


def test_leak_guard_knows_videos_without_clips(ingested: Path, tmp_path: Path) -> None:
    """Curated with an exclusion set that misses the clipless val videos (as one built from the clip table
    would), their template queries reach training-queries, whose guard must refuse them."""
    data = ingested / "data"
    missing = clipless(ingested, "val")
    full = read_parquet(data / "val_videos.parquet", NLQ_VIDEOS)
    partial = tmp_path / "partial" / "val_videos.parquet"
    keep = [uid not in missing for uid in full.column("video_uid").to_pylist()]
    write_parquet(full.filter(pa.array(keep)), partial, NLQ_VIDEOS)
    curate(ingested, tmp_path, [data / "train_videos.parquet", partial, data / "test_videos.parquet"])
    generated = generate(tmp_path)
    leaked = set(read_parquet(generated).column("video_uid").to_pylist()) & missing
    assert leaked
    with pytest.raises(SystemExit) as info:  # the CLI logs the InputError and exits with status 2
        training_queries(ingested, tmp_path, generated)
    error = info.value.__cause__
    assert info.value.code == 2 and isinstance(error, InputError) and "LEAKAGE" in str(error)
    assert all(uid in str(error) for uid in leaked)
