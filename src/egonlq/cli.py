"""Command-line entry points, one per workflow step: ``python -m egonlq.cli <command> ...``.

Each command parses its arguments, calls one function of the package and logs/writes what it returns.
Imports are local to each command so that a step pays only for the libraries it uses.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path

from egonlq.errors import InputError

log = logging.getLogger("egonlq")

COMMANDS: dict[
    str, tuple[Callable[[argparse.Namespace], None], Callable[[argparse.ArgumentParser], None]]
] = {}


def command(name: str, configure: Callable[[argparse.ArgumentParser], None]):
    def register(fn: Callable[[argparse.Namespace], None]):
        COMMANDS[name] = (fn, configure)
        return fn

    return register


def _log_stats(title: str, stats: dict) -> None:
    log.info("%s: %s", title, json.dumps(stats, indent=1, sort_keys=True, default=str))


# ---------------------------------------------------------------------------------------------- demo world


def _demo_world_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--preset", default="demo")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--feature-name", default="demo_features")
    p.add_argument("--feature-dim", type=int, default=256)
    p.add_argument("--videos-dir", default="v1/full_scale")
    p.add_argument("--stats", type=Path, required=True)


@command("demo-world", _demo_world_args)
def demo_world(a: argparse.Namespace) -> None:
    from egonlq.demo_world import build_world
    from egonlq.io import write_json, write_manifest

    stats = build_world(
        a.out, preset=a.preset, seed=a.seed, feature_name=a.feature_name, feature_dim=a.feature_dim
    )
    for folder, pattern in ((a.out / "v1" / a.feature_name, "*.pt"), (a.out / a.videos_dir, "*.mp4")):
        folder.mkdir(parents=True, exist_ok=True)
        stats[f"manifest:{folder.name}"] = len(write_manifest(folder, pattern=pattern)["files"])
    stats["synthetic"] = True
    _log_stats("demo world", stats)
    write_json(stats, a.stats, indent=1)


# ---------------------------------------------------------------------------------------------- ingest


def _ingest_metadata_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--input", type=Path, required=True)
    p.add_argument("--videos", type=Path, required=True)
    p.add_argument("--report", type=Path, required=True)


@command("ingest-metadata", _ingest_metadata_args)
def ingest_metadata(a: argparse.Namespace) -> None:
    from egonlq.io import write_json, write_parquet
    from egonlq.metadata import ingest_metadata as run
    from egonlq.tables import VIDEOS

    table, report = run(a.input)
    write_parquet(table, a.videos, VIDEOS)
    out = {"source": str(a.input), "rows": table.num_rows, **report.to_dict()}
    _log_stats("metadata", out)
    write_json(out, a.report, indent=1)


def _ingest_nlq_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--input", type=Path, required=True)
    p.add_argument("--split", required=True)
    p.add_argument("--clips", type=Path, required=True)
    p.add_argument("--queries", type=Path, required=True)
    p.add_argument("--report", type=Path, required=True)


@command("ingest-nlq", _ingest_nlq_args)
def ingest_nlq(a: argparse.Namespace) -> None:
    from egonlq.annotations import ingest_nlq as run
    from egonlq.io import write_json, write_parquet
    from egonlq.tables import CLIPS, QUERIES

    clips, queries, report = run(a.input, a.split)
    write_parquet(clips, a.clips, CLIPS)
    write_parquet(queries, a.queries, QUERIES)
    out = {
        "source": str(a.input),
        "split": a.split,
        "clips": clips.num_rows,
        "queries": queries.num_rows,
        **report.to_dict(),
    }
    _log_stats(f"nlq {a.split}", out)
    write_json(out, a.report, indent=1)


def _ingest_narrations_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--input", type=Path, required=True)
    p.add_argument("--videos", type=Path, required=True)
    p.add_argument("--narrations", type=Path, required=True)
    p.add_argument("--summaries", type=Path, required=True)
    p.add_argument("--report", type=Path, required=True)


@command("ingest-narrations", _ingest_narrations_args)
def ingest_narrations(a: argparse.Namespace) -> None:
    from egonlq.io import read_parquet, write_json
    from egonlq.narrations import ingest_narrations as run
    from egonlq.tables import VIDEOS

    known = set(read_parquet(a.videos, VIDEOS).column("video_uid").to_pylist())
    report = run(a.input, a.narrations, a.summaries, known_videos=known)
    out = {"source": str(a.input), **report.to_dict()}
    _log_stats("narrations", out)
    write_json(out, a.report, indent=1)


def _ingest_egoclip_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--input", type=Path, required=True)
    p.add_argument("--table", type=Path, required=True)
    p.add_argument("--report", type=Path, required=True)


@command("ingest-egoclip", _ingest_egoclip_args)
def ingest_egoclip(a: argparse.Namespace) -> None:
    from egonlq.egoclip import read_egoclip_csv
    from egonlq.io import write_json, write_parquet
    from egonlq.tables import EGOCLIP

    table, stats = read_egoclip_csv(a.input)
    write_parquet(table, a.table, EGOCLIP)
    counts = {k: v for k, v in stats.items() if k in ("malformed_lines", "bad_window") and v}
    out = {"source": str(a.input), **stats, "counts": {f"egoclip_{k}": v for k, v in counts.items()}}
    _log_stats("egoclip", out)
    write_json(out, a.report, indent=1)


def _validation_report_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--inputs", type=Path, nargs="+", required=True)
    p.add_argument("--out", type=Path, required=True)


@command("validation-report", _validation_report_args)
def validation_report(a: argparse.Namespace) -> None:
    from egonlq.io import read_json, write_json

    sources = {p.stem: read_json(p) for p in a.inputs}
    totals: dict[str, int] = {}
    for rep in sources.values():
        for kind, n in rep.get("counts", {}).items():
            totals[kind] = totals.get(kind, 0) + n
    out = {"quirk_totals": dict(sorted(totals.items())), "sources": sources}
    _log_stats("validation totals", out["quirk_totals"])
    write_json(out, a.out, indent=1)


# ---------------------------------------------------------------------------------------------- features


def _clip_features_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--clips", type=Path, required=True)
    p.add_argument("--videos", type=Path, required=True)
    p.add_argument("--feature-dir", type=Path, required=True)
    p.add_argument("--dim", type=int, required=True)
    p.add_argument("--mode", choices=("compatible", "corrected"), default="compatible")
    p.add_argument("--on-missing", choices=("error", "skip"), default="error")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--shapes", type=Path, required=True)
    p.add_argument("--stats", type=Path, required=True)


@command("clip-features", _clip_features_args)
def clip_features(a: argparse.Namespace) -> None:
    from egonlq.features import cut_clips
    from egonlq.io import read_parquet, write_json
    from egonlq.tables import VIDEOS

    clips = read_parquet(a.clips).to_pandas()  # NLQ CLIPS or TRAINING_CLIPS: cut_clips checks the columns
    videos = read_parquet(a.videos, VIDEOS).to_pandas()
    num_frames = dict(zip(videos["video_uid"], videos["num_frames"], strict=True))
    stats = cut_clips(
        clips,
        a.feature_dir,
        a.out,
        expected_dim=a.dim,
        mode=a.mode,
        on_missing=a.on_missing,
        num_frames=num_frames,
        shapes_json=a.shapes,
    )
    _log_stats("clip features", stats)
    write_json(stats, a.stats, indent=1)


# ---------------------------------------------------------------------------------------------- baselines


def _fit_prior_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--queries", type=Path, required=True)
    p.add_argument("--clips", type=Path, required=True)
    p.add_argument("--num-windows", type=int, default=5)
    p.add_argument("--grid", type=int, default=50)
    p.add_argument("--iou-threshold", type=float, default=0.3)
    p.add_argument("--out", type=Path, required=True)


@command("fit-prior", _fit_prior_args)
def fit_prior(a: argparse.Namespace) -> None:
    from egonlq.baselines import fit_prior as fit
    from egonlq.io import read_parquet, write_json
    from egonlq.tables import CLIPS, QUERIES

    queries = read_parquet(a.queries, QUERIES).to_pandas()
    clips = read_parquet(a.clips, CLIPS).to_pandas()
    prior = fit(queries, clips, n=a.num_windows, grid=a.grid, iou_threshold=a.iou_threshold)
    out = prior.to_dict()
    _log_stats("train prior", out)
    write_json(out, a.out, indent=1)


def _predict_baseline_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--kind", choices=("uniform", "prior"), required=True)
    p.add_argument("--queries", type=Path, required=True)
    p.add_argument("--clips", type=Path, required=True)
    p.add_argument("--prior", type=Path)
    p.add_argument("--num-windows", type=int, default=5)
    p.add_argument("--out", type=Path, required=True)


@command("predict-baseline", _predict_baseline_args)
def predict_baseline(a: argparse.Namespace) -> None:
    from egonlq.baselines import PriorModel
    from egonlq.baselines import predict_baseline as predict
    from egonlq.io import read_json, read_parquet
    from egonlq.predictions import write_predictions
    from egonlq.tables import CLIPS, QUERIES

    queries = read_parquet(a.queries, QUERIES).to_pandas()
    clips = read_parquet(a.clips, CLIPS).to_pandas()
    prior = PriorModel.from_dict(read_json(a.prior)) if a.prior else None
    rows = predict(queries, clips, kind=a.kind, prior=prior, n=a.num_windows)
    write_predictions(rows, a.out, num_windows=a.num_windows)
    log.info(
        "%s baseline: %d predictions for %d queries (%d without text are not predicted)",
        a.kind,
        len(rows),
        len(queries),
        int((~queries["has_text"]).sum()),
    )


# ---------------------------------------------------------------------------------------------- query sources


def _split_videos(clips_paths: list[Path]) -> dict[str, set[str]]:
    """NLQ split name -> video uids, from the ingested clip tables (video uids of the split files)."""
    from egonlq.io import read_parquet
    from egonlq.tables import CLIPS

    out: dict[str, set[str]] = {}
    for path in clips_paths:
        table = read_parquet(path, CLIPS)
        split = path.name.split("_")[0]
        out[split] = set(table.column("video_uid").to_pylist())
    return out


def _curate_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--narrations", type=Path, required=True)
    p.add_argument("--videos", type=Path, required=True)
    p.add_argument("--split-clips", type=Path, nargs="+", required=True)
    p.add_argument("--split-queries", type=Path, nargs="+", required=True)
    p.add_argument("--allow-train", action="store_true")
    p.add_argument("--drop-other", action="store_true")
    p.add_argument("--passes", choices=("1", "2", "merge"), default="1")
    p.add_argument("--alpha", type=float)
    p.add_argument("--window-scale", type=float, default=1.0)
    p.add_argument("--clip-len", type=float, default=480.0)
    p.add_argument("--curated", type=Path, required=True)
    p.add_argument("--assigned", type=Path, required=True)
    p.add_argument("--pseudo-clips", type=Path, required=True)
    p.add_argument("--stats", type=Path, required=True)


@command("curate", _curate_args)
def curate(a: argparse.Namespace) -> None:
    import pyarrow as pa

    from egonlq.curation import (
        ASSIGNED,
        CURATED,
        PSEUDO_CLIPS,
        assign_pseudo_clips,
        curate_narrations,
        pseudo_clips,
    )
    from egonlq.io import read_parquet, write_json, write_parquet
    from egonlq.tables import NARRATIONS, VIDEOS

    narrations = read_parquet(a.narrations, NARRATIONS)
    videos = read_parquet(a.videos, VIDEOS)
    split_videos = _split_videos(a.split_clips)
    # Videos named by the split files but without clips are NLQ videos too: exclude them as well.
    from egonlq.tables import QUERIES

    for path in a.split_queries:
        split = path.name.split("_")[0]
        split_videos.setdefault(split, set()).update(
            read_parquet(path, QUERIES).column("video_uid").to_pylist()
        )
    curated, stats = curate_narrations(
        narrations,
        videos,
        exclude_videos=split_videos,
        allow_splits=("train",) if a.allow_train else (),
        keep_other=not a.drop_other,
        passes=a.passes,
        alpha=a.alpha,
        window_scale=a.window_scale,
    )
    clips = pseudo_clips(curated, clip_len=a.clip_len)
    assigned, assign_stats = assign_pseudo_clips(curated, clips)
    write_parquet(curated, a.curated, CURATED)
    write_parquet(
        pa.Table.from_pandas(clips, schema=PSEUDO_CLIPS, preserve_index=False), a.pseudo_clips, PSEUDO_CLIPS
    )
    write_parquet(assigned, a.assigned, ASSIGNED)
    stats.update({"pseudo_clips": len(clips), "assignment": assign_stats})
    _log_stats("curation", stats)
    write_json(stats, a.stats, indent=1)


def _backend_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--backend", choices=("template", "hf", "openai"), required=True)
    p.add_argument("--backend-options", default="{}", help="JSON object of backend constructor options")


def _make_backend(a: argparse.Namespace):
    from egonlq.llm_backends import make_backend

    return make_backend(a.backend, **json.loads(a.backend_options))


def _generate_args(p: argparse.ArgumentParser) -> None:
    _backend_args(p)
    p.add_argument("--assigned", type=Path, required=True)
    p.add_argument("--prompt", type=Path, required=True)
    p.add_argument("--block-size", type=int, default=8)
    p.add_argument("--shard", type=int, required=True)
    p.add_argument("--num-shards", type=int, required=True)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--retries", type=int, default=1)
    p.add_argument("--zero-length", choices=("widen", "drop"), default="widen")
    p.add_argument("--min-window-sec", type=float, default=1 / 1.875)
    p.add_argument("--cache", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--stats", type=Path, required=True)


@command("generate-queries", _generate_args)
def generate_queries(a: argparse.Namespace) -> None:
    from egonlq.blocks import make_blocks
    from egonlq.curation import ASSIGNED
    from egonlq.io import read_parquet, write_json
    from egonlq.llm_queries import generate_shard

    backend = _make_backend(a)  # a bad model path fails here, before any work
    blocks = make_blocks(
        read_parquet(a.assigned, ASSIGNED), block_size=a.block_size, shard=a.shard, num_shards=a.num_shards
    )
    stats = generate_shard(
        blocks,
        backend,
        prompt_template=a.prompt.read_text(encoding="utf-8"),
        cache_path=a.cache,
        out_path=a.out,
        retries=a.retries,
        batch_size=a.batch_size,
        zero_length=a.zero_length,
        min_window_sec=a.min_window_sec,
    )
    stats.update({"shard": a.shard, "num_shards": a.num_shards})
    _log_stats(f"shard {a.shard}/{a.num_shards}", stats)
    write_json(stats, a.stats, indent=1)


def _merge_queries_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--shards", type=Path, nargs="+", required=True)
    p.add_argument("--shard-stats", type=Path, nargs="+", required=True)
    p.add_argument("--pseudo-clips", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--stats", type=Path, required=True)
    p.add_argument("--export", type=Path, required=True)


@command("merge-queries", _merge_queries_args)
def merge_queries(a: argparse.Namespace) -> None:
    from egonlq.curation import PSEUDO_CLIPS
    from egonlq.io import read_parquet
    from egonlq.llm_queries import GENERATED, export_nlq_json, merge_shards

    stats = merge_shards(a.shards, a.out, a.shard_stats, a.stats)
    exported = export_nlq_json(
        read_parquet(a.out, GENERATED), read_parquet(a.pseudo_clips, PSEUDO_CLIPS).to_pandas(), a.export
    )
    _log_stats("generated queries", {**stats, "export": exported})


def _rephrase_args(p: argparse.ArgumentParser) -> None:
    _backend_args(p)
    p.add_argument("--input", type=Path, required=True, help="GENERATED table, or ASSIGNED with --narrations")
    p.add_argument("--narrations", action="store_true", help="the input is curated narrations (ASSIGNED)")
    p.add_argument("--prompt", type=Path, required=True)
    p.add_argument("--num-variants", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--cache", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--stats", type=Path, required=True)


@command("rephrase", _rephrase_args)
def rephrase(a: argparse.Namespace) -> None:
    from egonlq.curation import ASSIGNED
    from egonlq.io import read_parquet, write_json
    from egonlq.llm_queries import GENERATED, narration_rows
    from egonlq.llm_queries import rephrase as run

    rows = (
        narration_rows(read_parquet(a.input, ASSIGNED)) if a.narrations else read_parquet(a.input, GENERATED)
    )
    stats = run(
        rows,
        _make_backend(a),
        prompt_template=a.prompt.read_text(encoding="utf-8"),
        cache_path=a.cache,
        out_path=a.out,
        num_variants=a.num_variants,
        batch_size=a.batch_size,
    )
    _log_stats("rephrase", stats)
    write_json(stats, a.stats, indent=1)


def _naq_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--egoclip", type=Path, help="EGOCLIP table; without it windows come from the narrations")
    p.add_argument("--narrations", type=Path)
    p.add_argument("--videos", type=Path)
    p.add_argument("--alpha", type=float)
    p.add_argument("--em-train", type=Path, nargs="+", required=True)
    p.add_argument("--nlq-train", type=Path, required=True)
    p.add_argument(
        "--no-subsample", action="store_true", help="keep 100 %% of videos (v2) instead of 95 %% (v1)"
    )
    p.add_argument("--seed", type=int, default=300)
    p.add_argument("--table", type=Path, required=True)
    p.add_argument("--clips", type=Path, required=True)
    p.add_argument("--naq-json", type=Path, required=True)
    p.add_argument("--merged-json", type=Path, required=True)
    p.add_argument("--stats", type=Path, required=True)


@command("naq", _naq_args)
def naq(a: argparse.Namespace) -> None:
    import pyarrow as pa

    from egonlq.io import read_json, read_parquet, write_json, write_parquet
    from egonlq.naq import (
        build_naq,
        em_train_clips,
        merge_naq_nlq,
        naq_clips,
        naq_table,
        naq_windows_from_narrations,
    )
    from egonlq.tables import EGOCLIP, NARRATIONS, VIDEOS
    from egonlq.training_queries import CLIP_COLUMNS, TRAINING_QUERIES

    stats: dict = {}
    if a.egoclip:
        rows = read_parquet(a.egoclip, EGOCLIP)
        stats["windows_from"] = "egoclip.csv"
    else:
        rows, stats["windows"] = naq_windows_from_narrations(
            read_parquet(a.narrations, NARRATIONS), read_parquet(a.videos, VIDEOS), alpha=a.alpha
        )
        stats["windows_from"] = "narration.json (EgoClip rule)"
    pool = em_train_clips([a.nlq_train, *a.em_train])
    naq_obj, stats["naq"] = build_naq(rows, pool, subsample_v1=not a.no_subsample, seed=a.seed)
    merged, stats["merge"] = merge_naq_nlq(read_json(a.nlq_train), naq_obj)
    write_json(naq_obj, a.naq_json)
    write_json(merged, a.merged_json)
    write_parquet(naq_table(naq_obj), a.table, TRAINING_QUERIES)
    clips = naq_clips(naq_obj)[list(CLIP_COLUMNS)]
    write_parquet(pa.Table.from_pandas(clips, preserve_index=False), a.clips)
    _log_stats("naq", stats)
    write_json(stats, a.stats, indent=1)


def _training_queries_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--nlq-queries", type=Path, required=True)
    p.add_argument("--nlq-clips", type=Path, required=True)
    p.add_argument("--naq", type=Path, help="NaQ TRAINING_QUERIES table")
    p.add_argument("--naq-clips", type=Path)
    p.add_argument(
        "--generated", type=Path, nargs="*", default=[], help="GENERATED tables (template, llm, rephrase)"
    )
    p.add_argument("--pseudo-clips", type=Path)
    p.add_argument("--guard-clips", type=Path, nargs="+", required=True, help="val/test CLIPS tables")
    p.add_argument("--guard-queries", type=Path, nargs="+", required=True, help="val/test QUERIES tables")
    p.add_argument("--queries-out", type=Path, required=True)
    p.add_argument("--clips-out", type=Path, required=True)
    p.add_argument("--stats", type=Path, required=True)


@command("training-queries", _training_queries_args)
def training_queries(a: argparse.Namespace) -> None:
    from egonlq.curation import PSEUDO_CLIPS
    from egonlq.io import read_parquet, write_json, write_parquet
    from egonlq.llm_queries import GENERATED
    from egonlq.tables import CLIPS, QUERIES
    from egonlq.training_queries import (
        CLIP_COLUMNS,
        TRAINING_CLIPS,
        TRAINING_QUERIES,
        build_training_queries,
        generated_rows,
        nlq_rows,
    )

    guard = set().union(*_split_videos(a.guard_clips).values())
    for path in a.guard_queries:
        guard.update(read_parquet(path, QUERIES).column("video_uid").to_pylist())
    nlq, nlq_stats = nlq_rows(read_parquet(a.nlq_queries, QUERIES))
    parts = {"nlq": nlq}
    clips = [read_parquet(a.nlq_clips, CLIPS).to_pandas()[list(CLIP_COLUMNS)]]
    if a.naq:
        parts["naq"] = read_parquet(a.naq, TRAINING_QUERIES)
        clips.append(read_parquet(a.naq_clips).to_pandas()[list(CLIP_COLUMNS)])
    if a.generated:
        pseudo = read_parquet(a.pseudo_clips, PSEUDO_CLIPS).to_pandas()
        clips.append(pseudo[list(CLIP_COLUMNS)])
        for path in a.generated:
            parts[path.parent.name] = generated_rows(read_parquet(path, GENERATED), pseudo)
    table, clip_table, stats = build_training_queries(parts, clips, leak_guard=guard)
    write_parquet(table, a.queries_out, TRAINING_QUERIES)
    write_parquet(clip_table, a.clips_out, TRAINING_CLIPS)
    stats["nlq"] = nlq_stats
    _log_stats("training queries", stats)
    write_json(stats, a.stats, indent=1)


# ---------------------------------------------------------------------------------------------- VSLNet


def _text_model(name: str) -> Path:
    from egonlq.text_encoder import default_model_path

    return default_model_path() if name == "default" else Path(name)


def _set_threads(n: int) -> None:
    import torch

    torch.set_num_threads(max(1, n))


def _text_cache_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--tables", type=Path, nargs="+", required=True, help="tables with a `query` column")
    p.add_argument("--model", default="default")
    p.add_argument("--max-len", type=int, default=128)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--stats", type=Path, required=True)


@command("text-cache", _text_cache_args)
def text_cache(a: argparse.Namespace) -> None:
    import pyarrow.compute as pc

    from egonlq.io import read_parquet, write_json
    from egonlq.text_encoder import TextEncoder, build_text_cache

    texts: list[str] = []
    for path in a.tables:
        column = read_parquet(path).column("query")
        texts += [t for t in pc.drop_null(column).to_pylist() if t.strip()]
    encoder = TextEncoder(_text_model(a.model), max_len=a.max_len)
    stats = build_text_cache(texts, encoder, a.out)
    _log_stats("text cache", stats)
    write_json(stats, a.stats, indent=1)


def _train_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--spec", required=True, help="TrainSpec as JSON (without the data-given dims)")
    p.add_argument("--video-dim", type=int, required=True)
    for name in (
        "train-queries",
        "train-clips",
        "train-features",
        "val-queries",
        "val-clips",
        "val-features",
        "val-gt",
    ):
        p.add_argument(f"--{name}", type=Path, required=True)
    p.add_argument("--text-cache", type=Path)
    p.add_argument("--text-model", default="default")
    p.add_argument("--init-from", type=Path)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="auto")
    p.add_argument("--out-dir", type=Path, required=True)


@command("train", _train_args)
def train(a: argparse.Namespace) -> None:
    from egonlq.text_encoder import TextCache, TextEncoder
    from egonlq.train import TrainSpec
    from egonlq.train import train as run

    _set_threads(a.threads)
    text_model = _text_model(a.text_model)
    if a.text_cache:
        text_dim = int(TextCache.load(a.text_cache).metadata["hidden_size"])
    else:
        text_dim = TextEncoder(text_model).hidden_size
    d = json.loads(a.spec)
    d["model"] = {**d.get("model", {}), "video_dim": a.video_dim, "text_dim": text_dim}
    spec = TrainSpec.from_dict(d)
    summary = run(
        spec,
        train_queries=a.train_queries,
        train_clips=a.train_clips,
        train_features=a.train_features,
        val_queries=a.val_queries,
        val_clips=a.val_clips,
        val_features=a.val_features,
        val_gt=a.val_gt,
        text_cache=a.text_cache,
        text_model=text_model,
        out_dir=a.out_dir,
        init_from=a.init_from,
        device=a.device,
        restart=True,
        progress=sys.stderr.isatty(),
    )
    _log_stats("training", summary)


def _predict_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model-dir", type=Path, required=True)
    p.add_argument("--queries", type=Path, required=True)
    p.add_argument("--clips", type=Path, required=True)
    p.add_argument("--features", type=Path, required=True)
    p.add_argument("--text-cache", type=Path)
    p.add_argument("--text-model", default="default")
    p.add_argument("--label-mode", default="compatible")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", type=Path, required=True)


@command("predict", _predict_args)
def predict(a: argparse.Namespace) -> None:
    from egonlq.predict import predict_split

    _set_threads(a.threads)
    stats = predict_split(
        a.model_dir,
        queries=a.queries,
        clips=a.clips,
        features=a.features,
        text_cache=a.text_cache,
        text_model=_text_model(a.text_model),
        out_path=a.out,
        label_mode=a.label_mode,
        progress=sys.stderr.isatty(),
    )
    _log_stats("predictions", stats)


def _experiment_table_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--metrics", type=Path, nargs="+", required=True)
    p.add_argument("--curves", type=Path, nargs="*", default=[])
    p.add_argument("--vslnet", required=True, help="the vslnet config section as JSON")
    p.add_argument("--experiments", required=True, help="the experiments config section as JSON")
    p.add_argument("--sources", required=True, help="comma-separated query sources")
    p.add_argument("--synthetic", action="store_true")
    p.add_argument("--parquet", type=Path, required=True)
    p.add_argument("--markdown", type=Path, required=True)
    p.add_argument("--curves-png", type=Path, required=True)
    p.add_argument("--recall-png", type=Path, required=True)


@command("experiment-table", _experiment_table_args)
def experiment_table(a: argparse.Namespace) -> None:
    from egonlq.experiments import aggregate_experiments, parse_experiments
    from egonlq.plots import plot_recall_by_run, plot_training_curves

    runs = parse_experiments(
        json.loads(a.vslnet), json.loads(a.experiments), available_sources=set(a.sources.split(","))
    )
    table = aggregate_experiments(
        a.metrics, runs, out_parquet=a.parquet, out_markdown=a.markdown, synthetic=a.synthetic
    )
    # metrics.csv lives in results/vslnet/<run>/seed<seed>/
    curves = {f"vslnet_{p.parent.parent.name}_{p.parent.name}": p for p in a.curves}
    plot_training_curves(curves, a.curves_png, runs=runs, synthetic=a.synthetic)
    plot_recall_by_run(table, a.recall_png, split="val", runs=runs, synthetic=a.synthetic)
    log.info("experiment table:\n%s", a.markdown.read_text())


# ---------------------------------------------------------------------------------------------- keyframes


def _frame_features_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--clips", type=Path, required=True, help="NLQ clip table: whose videos to encode")
    p.add_argument("--videos", type=Path, required=True, help="the videos table (canonical frame counts)")
    p.add_argument("--video-dir", type=Path, required=True, help="folder of <video_uid>.mp4")
    p.add_argument("--encoder", choices=("demo", "clip"), default="demo")
    p.add_argument("--model-path", type=Path, help="a local Hugging Face CLIP folder (encoder clip)")
    p.add_argument("--frame-rate", type=float, default=1.0, help="per-frame embeddings: samples per second")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out-dir", type=Path, required=True, help="<video_uid>.pt, official layout")
    p.add_argument("--frames", type=Path, required=True, help="per-frame embeddings parquet")
    p.add_argument("--stats", type=Path, required=True)


@command("frame-features", _frame_features_args)
def frame_features(a: argparse.Namespace) -> None:
    """Encode the mp4s of a split's videos: features at 1.875 rows/s plus per-frame embeddings."""
    from egonlq.frame_encoders import make_encoder
    from egonlq.frame_features import extract_many
    from egonlq.io import read_parquet, write_json, write_manifest
    from egonlq.tables import CLIPS, VIDEOS

    _set_threads(a.threads)
    uids = sorted(set(read_parquet(a.clips, CLIPS).column("video_uid").to_pylist()))
    videos = read_parquet(a.videos, VIDEOS).to_pandas()
    num_frames = dict(zip(videos["video_uid"], videos["num_frames"], strict=True))
    present = [u for u in uids if (a.video_dir / f"{u}.mp4").is_file()]
    encoder = make_encoder(a.encoder, model_path=a.model_path, batch_size=a.batch_size)
    a.out_dir.mkdir(parents=True, exist_ok=True)
    stats = extract_many(
        [(u, a.video_dir / f"{u}.mp4", _frame_count(num_frames.get(u))) for u in present],
        encoder,
        a.out_dir,
        batch_size=a.batch_size,
        frames_path=a.frames,
        frame_rate=a.frame_rate,
    )
    # Videos of the split without an mp4 are counted, not failures: the demo renders a few, downloads may
    # hold a subset of the canonical videos.
    stats = {"split_videos": len(uids), "videos_without_mp4": len(uids) - len(present), **stats}
    write_manifest(a.out_dir, pattern="*.pt")
    _log_stats("frame features", stats)
    write_json(stats, a.stats, indent=1)


def _frame_count(value: object) -> int | None:
    """A canonical frame count from the videos table (null for some real videos)."""
    try:
        count = int(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return count if count > 0 else None


def _keyframes_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--queries", type=Path, required=True)
    p.add_argument("--clips", type=Path, required=True)
    p.add_argument("--video-dir", type=Path, required=True)
    p.add_argument("--scorer", choices=("encoder", "vslnet"), required=True)
    p.add_argument("--encoder", choices=("demo", "clip"), default="demo")
    p.add_argument("--model-path", type=Path, help="encoder clip: a local CLIP folder")
    p.add_argument("--frame-table", type=Path, help="encoder scorers: per-frame embeddings to reuse")
    p.add_argument("--vslnet-dir", type=Path, help="vslnet scorer: a trained run folder")
    p.add_argument("--clip-features", type=Path, help="vslnet scorer: the split's clip features")
    p.add_argument("--text-cache", type=Path, help="vslnet scorer: query token embeddings")
    p.add_argument("--label-mode", default="compatible")
    p.add_argument("--unit-score", choices=("highlight", "inside"), default="highlight")
    p.add_argument("--aks", required=True, help="JSON list of AKS parameter sets {M, depth, t1, t2, ratio}")
    p.add_argument("--methods", nargs="+", default=["aks_reference", "aks_improved", "uniform", "topk"])
    p.add_argument("--sample-rate", type=float, default=1.0)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--save-frames", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--progress", type=Path, required=True, help="append-only progress file (kept on reruns)")
    p.add_argument("--scores", type=Path, required=True)
    p.add_argument("--selection", type=Path, required=True)
    p.add_argument("--frames-dir", type=Path, required=True)
    p.add_argument("--stats", type=Path, required=True)


@command("keyframes", _keyframes_args)
def keyframes(a: argparse.Namespace) -> None:
    """Score a split's queries frame by frame and select keyframes (AKS, uniform, top-k)."""
    from egonlq.aks import AKSParams
    from egonlq.frame_encoders import make_encoder
    from egonlq.io import read_parquet, write_json
    from egonlq.keyframes import EncoderScorer, VSLNetScorer, run_keyframes
    from egonlq.tables import CLIPS, QUERIES

    _set_threads(a.threads)
    try:
        entries = json.loads(a.aks)
        params = [AKSParams(**p) for p in entries]
    except (json.JSONDecodeError, TypeError, ValueError) as e:
        raise SystemExit(
            f"--aks: expected a JSON list of objects with keys M, depth, t1, t2, ratio; got {a.aks!r} ({e})"
        ) from e
    if a.scorer == "vslnet":
        missing = [n for n in ("vslnet_dir", "clip_features", "text_cache") if getattr(a, n) is None]
        if missing:
            raise SystemExit(
                f"the vslnet scorer needs {', '.join('--' + m.replace('_', '-') for m in missing)}"
            )
        scorer = VSLNetScorer(
            a.vslnet_dir,
            a.clip_features,
            a.text_cache,
            label_mode=a.label_mode,
            unit_score=a.unit_score,
        )
    else:
        encoder = make_encoder(a.encoder, model_path=a.model_path, batch_size=a.batch_size)
        scorer = EncoderScorer(encoder, batch_size=a.batch_size, frame_table=a.frame_table)
    a.frames_dir.mkdir(parents=True, exist_ok=True)
    stats = run_keyframes(
        read_parquet(a.queries, QUERIES).to_pandas(),
        read_parquet(a.clips, CLIPS).to_pandas(),
        a.video_dir,
        scorer,
        params_list=params,
        methods=a.methods,
        sample_rate=a.sample_rate,
        out_scores=a.scores,
        out_selection=a.selection,
        frames_dir=a.frames_dir,
        save_frames=a.save_frames,
        progress_path=a.progress,
        batch_size=a.batch_size,
    )
    _log_stats("keyframes", stats)
    write_json(stats, a.stats, indent=1)


def _moment_hits_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--selections", type=Path, nargs="+", required=True)
    p.add_argument("--queries", type=Path, required=True)
    p.add_argument("--clips", type=Path, required=True)
    p.add_argument("--synthetic", action="store_true")
    p.add_argument("--parquet", type=Path, required=True)
    p.add_argument("--markdown", type=Path, required=True)
    p.add_argument("--plot", type=Path, required=True)


@command("moment-hits", _moment_hits_args)
def moment_hits(a: argparse.Namespace) -> None:
    """Does keyframe selection find the moment? Shares of selected frames and queries inside the GT window."""
    import pandas as pd

    from egonlq.io import read_parquet
    from egonlq.keyframes import SELECTION, moment_hit_table, plot_moment_hits, write_moment_hits
    from egonlq.tables import CLIPS, QUERIES

    selection = pd.concat([read_parquet(p, SELECTION).to_pandas() for p in a.selections], ignore_index=True)
    table = moment_hit_table(
        selection,
        read_parquet(a.queries, QUERIES).to_pandas(),
        clips=read_parquet(a.clips, CLIPS).to_pandas(),
    )
    write_moment_hits(table, a.parquet, a.markdown, synthetic=a.synthetic)
    plot_moment_hits(table, a.plot, synthetic=a.synthetic)
    log.info("moment hits:\n%s", a.markdown.read_text())


# ---------------------------------------------------------------------------------------------- evaluation


def _evaluate_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--gt", type=Path, required=True)
    p.add_argument("--predictions", type=Path, required=True)
    p.add_argument("--queries", type=Path)
    p.add_argument("--predictor", required=True)
    p.add_argument("--split", required=True)
    p.add_argument("--thresholds", type=float, nargs="+", default=[0.3, 0.5, 0.01])
    p.add_argument("--ks", type=int, nargs="+", default=[1, 3, 5])
    p.add_argument("--exclude", nargs="*", default=[])
    p.add_argument("--out", type=Path, required=True)


@command("evaluate", _evaluate_args)
def evaluate(a: argparse.Namespace) -> None:
    from egonlq.evaluation import evaluate_both, load_ground_truth, write_metrics

    gt = load_ground_truth(a.gt)
    result = evaluate_both(
        gt, a.predictions, thresholds=tuple(a.thresholds), ks=tuple(a.ks), exclude=tuple(a.exclude)
    )
    result.update(
        {"predictor": a.predictor, "split": a.split, "gt": str(a.gt), "predictions": str(a.predictions)}
    )
    for mode in ("official", "strict"):
        if "table" in result.get(mode, {}):
            log.info("%s mode, %s / %s:\n%s", mode, a.predictor, a.split, result[mode]["table"])
    write_metrics(result, a.out)


def _metrics_table_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--inputs", type=Path, nargs="+", required=True)
    p.add_argument("--parquet", type=Path, required=True)
    p.add_argument("--markdown", type=Path, required=True)


@command("metrics-table", _metrics_table_args)
def metrics_table(a: argparse.Namespace) -> None:
    from egonlq.evaluation import metrics_table as run

    df = run(a.inputs, a.parquet, a.markdown)
    log.info("metrics table: %d rows\n%s", len(df), a.markdown.read_text())


def _validate_predictions_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("predictions", type=Path)
    p.add_argument("--gt", type=Path)


@command("validate-predictions", _validate_predictions_args)
def validate_predictions(a: argparse.Namespace) -> None:
    from egonlq.evaluation import load_ground_truth
    from egonlq.predictions import validate_predictions as check

    problems = check(a.predictions, gt=load_ground_truth(a.gt) if a.gt else None)
    for problem in problems:
        print(problem)
    if problems:
        raise SystemExit(f"{a.predictions}: {len(problems)} problem(s)")
    print(f"{a.predictions}: valid")


# ---------------------------------------------------------------------------------------------- main


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="egonlq", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (fn, configure) in COMMANDS.items():
        p = sub.add_parser(name, help=(fn.__doc__ or "").strip().split("\n")[0] or None)
        configure(p)
        p.set_defaults(func=fn)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    t0 = time.perf_counter()
    try:
        args.func(args)
    except InputError as e:
        log.error("bad input: %s", e)
        raise SystemExit(2) from e
    log.info("%s done in %.1f s", args.command, time.perf_counter() - t0)


if __name__ == "__main__":
    main()
