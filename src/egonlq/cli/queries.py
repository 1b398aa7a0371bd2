"""Commands of the query-source stage: curation, generation, merging, rephrasing, NaQ, training queries."""

from __future__ import annotations

import argparse
import gc
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from egonlq.cli.registry import command, log, log_stats

# ---------------------------------------------------------------------------------------------- query sources


def _split_videos(videos_paths: list[Path]) -> dict[str, set[str]]:
    """NLQ split name (the file name's prefix, ``val_videos.parquet``) -> the video uids of its NLQ_VIDEOS
    table: every video the split file lists, those without clips included (none may leak into training)."""
    from egonlq.data.tables import NLQ_VIDEOS
    from egonlq.io import read_parquet

    out: dict[str, set[str]] = {}
    for path in videos_paths:
        table = read_parquet(path, NLQ_VIDEOS)
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

    from egonlq.data.tables import NARRATIONS, VIDEOS
    from egonlq.io import read_parquet, write_json, write_parquet
    from egonlq.queries.curation import (
        ASSIGNED,
        CURATED,
        PSEUDO_CLIPS,
        assign_pseudo_clips,
        curate_narrations,
        pseudo_clips,
    )

    narrations = read_parquet(a.narrations, NARRATIONS)
    videos = read_parquet(a.videos, VIDEOS)
    split_videos = _split_videos(a.split_clips)
    # Videos named by the split files but without clips are NLQ videos too: exclude them as well.
    from egonlq.data.tables import QUERIES

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
    log_stats("curation", stats)
    write_json(stats, a.stats, indent=1)


def _backend_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--backend", choices=("template", "hf", "openai"), required=True)
    p.add_argument("--backend-options", default="{}", help="JSON object of backend constructor options")


def _make_backend(a: argparse.Namespace):
    from egonlq.queries.llm_backends import make_backend

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
    from egonlq.io import read_parquet, write_json
    from egonlq.queries.blocks import make_blocks
    from egonlq.queries.curation import ASSIGNED
    from egonlq.queries.llm_queries import generate_shard

    backend = _make_backend(a)  # a bad model path fails here, before any work
    blocks = make_blocks(
        read_parquet(a.assigned, ASSIGNED), block_size=a.block_size, shard=a.shard, num_shards=a.num_shards
    )
    what = f"shard {a.shard}/{a.num_shards}"
    with _backend_failure(what, a.cache):
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
    log_stats(what, stats)
    write_json(stats, a.stats, indent=1)
    _stop_if_unusable(what, stats)


@contextmanager
def _backend_failure(what: str, cache: Path) -> Iterator[None]:
    """A backend that cannot answer (a server down after its retries) ends the command with one line."""
    from egonlq.queries.llm_backends import BackendError

    try:
        yield
    except BackendError as e:
        log.error("%s: %s; the cache %s keeps the finished blocks: rerun to resume", what, e, cache)
        raise SystemExit(3) from None


def _stop_if_unusable(what: str, stats: dict) -> None:
    """Exit non-zero, with one line, when the run accepted nothing (``unusable_reason``'s threshold)."""
    from egonlq.queries.llm_queries import unusable_reason

    reason = unusable_reason(stats)
    if reason is not None:
        log.error("%s: %s", what, reason)
        raise SystemExit(3)


def _merge_queries_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--shards", type=Path, nargs="+", required=True)
    p.add_argument("--shard-stats", type=Path, nargs="+", required=True)
    p.add_argument("--pseudo-clips", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--stats", type=Path, required=True)
    p.add_argument("--export", type=Path, required=True)


@command("merge-queries", _merge_queries_args)
def merge_queries(a: argparse.Namespace) -> None:
    from egonlq.io import read_parquet
    from egonlq.queries.curation import PSEUDO_CLIPS
    from egonlq.queries.llm_queries import GENERATED, export_nlq_json, merge_shards

    stats = merge_shards(a.shards, a.out, a.shard_stats, a.stats)
    exported = export_nlq_json(
        read_parquet(a.out, GENERATED), read_parquet(a.pseudo_clips, PSEUDO_CLIPS).to_pandas(), a.export
    )
    log_stats("generated queries", {**stats, "export": exported})


def _rephrase_args(p: argparse.ArgumentParser) -> None:
    _backend_args(p)
    p.add_argument("--input", type=Path, required=True, help="GENERATED table, or ASSIGNED with --narrations")
    p.add_argument("--narrations", action="store_true", help="the input is curated narrations (ASSIGNED)")
    p.add_argument("--prompt", type=Path, required=True)
    p.add_argument("--num-variants", type=int, default=1)
    p.add_argument(
        "--prompt-style",
        choices=("json", "t5"),
        default="json",
        help="json: the prompt as written, a JSON answer; t5: each sentence to a seq2seq paraphraser (hf) as "
        "'paraphrase: <sentence>', one paraphrase per returned sequence",
    )
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--cache", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--stats", type=Path, required=True)


@command("rephrase", _rephrase_args)
def rephrase(a: argparse.Namespace) -> None:
    from egonlq.io import read_parquet, write_json
    from egonlq.queries.curation import ASSIGNED
    from egonlq.queries.llm_backends import rephrase_backend
    from egonlq.queries.llm_queries import GENERATED, narration_rows
    from egonlq.queries.llm_queries import rephrase as run

    rows = (
        narration_rows(read_parquet(a.input, ASSIGNED)) if a.narrations else read_parquet(a.input, GENERATED)
    )
    backend = rephrase_backend(_make_backend(a), a.prompt_style, num_variants=a.num_variants)
    with _backend_failure("rephrase", a.cache):
        stats = run(
            rows,
            backend,
            prompt_template=a.prompt.read_text(encoding="utf-8"),
            cache_path=a.cache,
            out_path=a.out,
            num_variants=a.num_variants,
            batch_size=a.batch_size,
        )
    log_stats("rephrase", stats)
    write_json(stats, a.stats, indent=1)
    _stop_if_unusable("rephrase", stats)


def _naq_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--egoclip", type=Path, help="EGOCLIP table; without it windows come from the narrations")
    p.add_argument("--narrations", type=Path)
    p.add_argument("--videos", type=Path)
    p.add_argument("--alpha", type=float)
    p.add_argument(
        "--em-train",
        type=Path,
        nargs="*",
        default=[],
        help="VQ/MQ train files of the clip pool (none: the NLQ train clips only)",
    )
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


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off for the block, on again after if it was on.

    For a job that parses a few hundred thousand JSON containers and makes no reference cycles: the
    collector's full passes would walk them again and again (the NaQ job: ~0.3 s of its ~2 s), for nothing.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@command("naq", _naq_args)
def naq(a: argparse.Namespace) -> None:
    import functools
    from concurrent.futures import Future, ThreadPoolExecutor

    import pyarrow as pa

    from egonlq.data.tables import EGOCLIP, NARRATIONS, VIDEOS
    from egonlq.io import read_json, read_parquet, write_json, write_parquet
    from egonlq.queries.naq import (
        ROW_COLUMNS,
        em_train_clips,
        encoded_queries,
        merge_naq_nlq,
        naq_clips,
        naq_columns,
        naq_object,
        naq_windows_from_narrations,
        pool_file_order,
        query_table,
        write_naq_json,
    )
    from egonlq.queries.training_queries import CLIP_COLUMNS, TRAINING_QUERIES

    def write_tables(table: Future[pa.Table], naq_obj: dict) -> None:
        write_parquet(table.result(), a.table, TRAINING_QUERIES)
        clips = naq_clips(naq_obj)[list(CLIP_COLUMNS)]
        write_parquet(pa.Table.from_pandas(clips, preserve_index=False), a.clips)

    stats: dict = {}
    files = pool_file_order(a.nlq_train, a.em_train)
    pool_stats = {"files": [str(p) for p in files]}
    read = functools.cache(read_json)  # the NLQ train file: parsed once for the pool and the merge
    # Two things at once where one side is Python and the other Arrow or the kernel (no GIL held)
    with _gc_paused(), ThreadPoolExecutor(max_workers=1, thread_name_prefix="naq") as background:
        # the pool's JSON files are parsed while Arrow's threads read the EgoClip rows
        pool = background.submit(em_train_clips, files, pool_stats, read=read)
        if a.egoclip:
            # the four columns NaQ reads; the video uids as a dictionary: ~10k uids over ~4M rows
            rows = read_parquet(a.egoclip, EGOCLIP, columns=ROW_COLUMNS, dictionary=["video_uid"])
            stats["windows_from"] = "egoclip.csv"
        else:
            rows, stats["windows"] = naq_windows_from_narrations(
                read_parquet(a.narrations, NARRATIONS), read_parquet(a.videos, VIDEOS), alpha=a.alpha
            )
            stats["windows_from"] = "narration.json (EgoClip rule)"
        stats["pool"] = pool_stats
        columns, stats["naq"] = naq_columns(rows, pool.result(), subsample_v1=not a.no_subsample, seed=a.seed)
        table = background.submit(query_table, columns)  # Arrow, while the queries' JSON is built
        naq_obj = naq_object(columns, encoded_queries(columns))  # the queries already JSON: no dict per query
        merged, stats["merge"] = merge_naq_nlq(read(a.nlq_train), naq_obj)
        # the tables (the parquet writer) are written while the JSON files are (the kernel's copy)
        tables = background.submit(write_tables, table, naq_obj)
        write_naq_json(naq_obj, a.naq_json)
        write_naq_json(merged, a.merged_json)
        tables.result()
    log_stats("naq", stats)
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
    p.add_argument(
        "--extra-queries",
        type=Path,
        nargs="*",
        default=[],
        help="TRAINING_QUERIES tables built by a later stage (the narrator's), labelled by their folder",
    )
    p.add_argument("--extra-clips", type=Path, nargs="*", default=[], help="their clip tables, in order")
    p.add_argument("--guard-clips", type=Path, nargs="+", required=True, help="val/test CLIPS tables")
    p.add_argument("--guard-queries", type=Path, nargs="+", required=True, help="val/test QUERIES tables")
    p.add_argument("--queries-out", type=Path, required=True)
    p.add_argument("--clips-out", type=Path, required=True)
    p.add_argument("--stats", type=Path, required=True)


@command("training-queries", _training_queries_args)
def training_queries(a: argparse.Namespace) -> None:
    from egonlq.data.tables import CLIPS, QUERIES
    from egonlq.io import read_parquet, write_json, write_parquet
    from egonlq.queries.curation import PSEUDO_CLIPS
    from egonlq.queries.llm_queries import GENERATED
    from egonlq.queries.training_queries import (
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
    if len(a.extra_queries) != len(a.extra_clips):
        raise SystemExit(
            f"training-queries: {len(a.extra_queries)} --extra-queries but {len(a.extra_clips)} --extra-clips"
        )
    for path, clip_path in zip(a.extra_queries, a.extra_clips, strict=True):
        parts[path.parent.name] = read_parquet(path, TRAINING_QUERIES)
        clips.append(read_parquet(clip_path).to_pandas()[list(CLIP_COLUMNS)])
    table, clip_table, stats = build_training_queries(parts, clips, leak_guard=guard)
    write_parquet(table, a.queries_out, TRAINING_QUERIES)
    write_parquet(clip_table, a.clips_out, TRAINING_CLIPS)
    stats["nlq"] = nlq_stats
    log_stats("training queries", stats)
    write_json(stats, a.stats, indent=1)
