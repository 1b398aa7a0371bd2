"""LLM-generated queries: prompts, sharded resumable generation, validation, merge, export, rephrasing.

The method of llm-queries.md, steps 3-5. A shard of contextual blocks (:mod:`egonlq.queries.blocks`) is
rendered with
a versioned prompt file, generated through any :class:`~egonlq.queries.llm_backends.Backend` with a per-shard
cache
(:mod:`egonlq.queries.generation_cache`; a killed job resumes where it stopped), parsed and validated
(:mod:`egonlq.queries.llm_parsing`) and written as a GENERATED table: each accepted question inherits the
window of
its narration (clip-relative in its pseudo-clip and video-relative). Validation runs after generation over
every block of the shard in block order, so the output does not depend on where a run was interrupted.

Rephrasing (:func:`rephrase`) sends generated questions (or narrations, via :func:`narration_rows`)
through the same machinery; a paraphrase keeps the window of its source and is tagged ``rephrase:<source>``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import pandas as pd
import pyarrow as pa

from egonlq.errors import InputError
from egonlq.io import read_json, read_parquet, write_json, write_parquet
from egonlq.progress import tqdm
from egonlq.queries.blocks import Block, BlockRow, format_block, format_sentences
from egonlq.queries.curation import ASSIGNED
from egonlq.queries.generation_cache import GenerationCache, cache_key
from egonlq.queries.llm_backends import Backend
from egonlq.queries.llm_parsing import (
    REJECTION_REASONS,
    SourceText,
    normalise_text,
    parse_answer,
    validate_items,
)
from egonlq.timegrid import CANONICAL_FPS, FEATURES_PER_SEC, ZERO_LENGTH_SEC

logger = logging.getLogger(__name__)
# generate_shard works through this many blocks at a time (prompts, answers and rows in memory)
SHARD_CHUNK_BLOCKS = 8192

# results/llm/shards/{shard}.parquet and results/llm/generated.parquet: one row per accepted question
GENERATED = pa.schema(
    [
        pa.field("query_uid", pa.string(), nullable=False),  # uuid5 of narration uid, source and text
        pa.field("video_uid", pa.string(), nullable=False),
        pa.field("clip_uid", pa.string(), nullable=False),  # pseudo-clip
        pa.field("narration_uid", pa.string(), nullable=False),
        pa.field("block_id", pa.string(), nullable=False),  # "" for rows not made from a block
        pa.field(
            "source", pa.string(), nullable=False
        ),  # "template", "llm:<model>", "rephrase:<source>", ...
        pa.field("query", pa.string(), nullable=False),
        pa.field("window_start_sec", pa.float64(), nullable=False),  # video-relative
        pa.field("window_end_sec", pa.float64(), nullable=False),
        pa.field("clip_start_sec", pa.float64(), nullable=False),  # clip-relative
        pa.field("clip_end_sec", pa.float64(), nullable=False),
        pa.field("prompt_sha256", pa.string(), nullable=False),  # of the prompt template file's text
        pa.field("backend", pa.string(), nullable=False),  # backend fingerprint, JSON
        pa.field("parent_query_uid", pa.string()),  # the paraphrased row, for rephrase rows
    ]
)

QUESTION_PROMPT = "nlq_questions_v1"
REPHRASE_PROMPT = "rephrase_v1"
RETRY_NOTE = (
    "Important: your previous answer could not be read. Reply with the JSON list only, nothing else.\n\n"
)
DEFAULT_MIN_WINDOW_SEC = 1.0 / FEATURES_PER_SEC  # one feature step
DEFAULT_MAX_HALF_WINDOW_SEC = 4.0  # answer_window: at most this far on either side of the narrations
ZERO_LENGTH_CHOICES = ("widen", "drop")
QUERY_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "egonlq:generated-query")
EXPORT_DESCRIPTION = "Synthetic NLQ training queries generated from narrations (egonlq)"


def load_prompt(name: str = QUESTION_PROMPT, path: str | Path | None = None) -> str:
    """A prompt template's text: the file at ``path`` if given, else the packaged ``prompts/<name>.txt``."""
    if path is not None:
        return Path(path).read_text(encoding="utf-8")
    return resources.files("egonlq.queries").joinpath("prompts", f"{name}.txt").read_text(encoding="utf-8")


def prompt_sha256(template_text: str) -> str:
    return hashlib.sha256(template_text.encode("utf-8")).hexdigest()


def render_prompt(block: Block, template_text: str) -> str:
    """The user message for a block: ``{{NARRATIONS}}`` replaced by the numbered list.

    The chat template, when the model has one, is applied by the backend (``HFBackend.chat_text``).
    """
    if "{{NARRATIONS}}" not in template_text:
        raise ValueError("the question prompt template has no {{NARRATIONS}} placeholder")
    return template_text.replace("{{NARRATIONS}}", format_block(block))


def render_rephrase_prompt(sentences: list[str], template_text: str, *, variant: int = 1) -> str:
    """The user message for a group of sentences: ``{{SENTENCES}}`` and ``{{VARIANT}}`` replaced."""
    if "{{SENTENCES}}" not in template_text:
        raise ValueError("the rephrase prompt template has no {{SENTENCES}} placeholder")
    return template_text.replace("{{VARIANT}}", str(variant)).replace(
        "{{SENTENCES}}", format_sentences(sentences)
    )


@dataclass(frozen=True)
class _Unit:
    """One prompt to answer (a block, or a group of sentences to paraphrase)."""

    unit_id: str
    prompt: str


def _run_units(
    units: Sequence[_Unit],
    backend: Backend,
    cache: GenerationCache,
    *,
    retries: int,
    batch_size: int,
    progress: bool = True,
) -> tuple[dict[str, list[dict] | None], dict[str, str], dict]:
    """Answer every unit from the cache or the backend; retry unusable answers with :data:`RETRY_NOTE`.

    An answer is unusable when the backend rejected the reply (``Generation.error``, kept in the cache
    record's ``error``) or no list can be parsed from it (``"parse_failure"``). Returns the parsed answer per
    unit id (None: failed after all retries), the reason of each failed unit's last try, and run stats.
    """
    if retries < 0 or batch_size < 1:
        raise ValueError("retries must be >= 0 and batch_size >= 1")
    fingerprint = backend.fingerprint()
    results: dict[str, list[dict] | None] = {}
    reasons: dict[str, str] = {}  # the last try's failure reason, per unit id
    generated_units: set[str] = set()
    n_prompts = prompt_tokens = new_tokens = 0
    gen_seconds = 0.0
    pending = list(units)
    for attempt in range(retries + 1):
        failed: list[_Unit] = []
        todo: list[tuple[_Unit, str, str]] = []
        for unit in pending:
            prompt = unit.prompt if attempt == 0 else RETRY_NOTE + unit.prompt
            key = cache_key(prompt, fingerprint)
            entry = cache.get(key)
            if entry is None:
                todo.append((unit, prompt, key))
                continue
            items, reason = _answer(entry["raw_output"], entry.get("error"))
            if items is None:
                failed.append(unit)
                reasons[unit.unit_id] = reason
            else:
                results[unit.unit_id] = items
        batches = range(0, len(todo), batch_size)
        quiet = None if progress else True
        for start in tqdm(batches, desc=f"generate (attempt {attempt})", unit="batch", disable=quiet):
            batch = todo[start : start + batch_size]
            t0 = time.perf_counter()
            generations = backend.generate([prompt for _, prompt, _ in batch])
            gen_seconds += time.perf_counter() - t0
            if len(generations) != len(batch):
                raise RuntimeError(
                    f"backend {backend.name} returned {len(generations)} answers for {len(batch)}"
                )
            records = []
            for (unit, _, key), g in zip(batch, generations, strict=True):
                record = {
                    "key": key,
                    "unit_id": unit.unit_id,
                    "attempt": attempt,
                    "raw_output": g.text,
                    "n_prompt_tokens": g.n_prompt_tokens,
                    "n_new_tokens": g.n_new_tokens,
                    "backend": backend.name,
                }
                if g.error is not None:
                    record["error"] = g.error
                records.append(record)
                generated_units.add(unit.unit_id)
                n_prompts += 1
                prompt_tokens += g.n_prompt_tokens
                new_tokens += g.n_new_tokens
                items, reason = _answer(g.text, g.error)
                if items is None:
                    failed.append(unit)
                    reasons[unit.unit_id] = reason
                else:
                    results[unit.unit_id] = items
            cache.append(records)
        pending = failed
    for unit in pending:
        results[unit.unit_id] = None
    stats = {
        "units": len(units),
        "cached": len(units) - len(generated_units),
        "generated": len(generated_units),
        "failed": len(pending),
        "prompts": n_prompts,
        "prompt_tokens": prompt_tokens,
        "new_tokens": new_tokens,
        "generation_seconds": gen_seconds,
        "cache_torn_lines": cache.torn_lines,
    }
    return results, {u.unit_id: reasons[u.unit_id] for u in pending}, stats


def _answer(raw: str, error: str | None) -> tuple[list[dict] | None, str]:
    """The parsed entries of an answer, or None and why it is unusable."""
    if error is not None:
        return None, error if error in REJECTION_REASONS else "reply_malformed"
    items = parse_answer(raw)
    return items, "parse_failure"


def _throughput(stats: dict) -> None:
    seconds = stats["generation_seconds"]
    stats["prompts_per_s"] = stats["prompts"] / seconds if seconds > 0 else 0.0
    stats["tokens_per_s"] = stats["new_tokens"] / seconds if seconds > 0 else 0.0


def fit_window(
    start: float, end: float, duration: float, *, min_window_sec: float
) -> tuple[float, float] | None:
    """Widen a clip-relative window shorter than ``min_window_sec`` around its centre, inside [0, duration].

    None when even the whole clip cannot give a window longer than zero length.
    """
    if end - start >= min_window_sec:
        return start, end
    centre = (start + end) / 2.0
    s, e = centre - min_window_sec / 2.0, centre + min_window_sec / 2.0
    if s < 0.0:
        s, e = 0.0, e - s
    if e > duration:
        s, e = max(0.0, s - (e - duration)), duration
    if e - s <= ZERO_LENGTH_SEC:
        return None
    return s, e


def answer_window(
    rows: Sequence[BlockRow], first: int, last: int, *, max_half_sec: float = 4.0
) -> tuple[float, float]:
    """The clip-relative window of a question about narrations ``first..last`` of a block: an NLQ answer.

    A narration is a point; the action it names lasts until about the next one. The window runs from
    half-way to the previous narration before ``first`` to half-way to the next narration after ``last``
    (each side at most ``max_half_sec``; at a block edge the gap on the other side is mirrored), and always
    contains the narrations' own EgoClip windows. On the 352-narration test corpus this gives a median of
    about 3 s (EgoClip windows alone: 1 s), near real NLQ answers. Clamped to the pseudo-clip of ``first``
    (``last`` is moved back to the last narration in that clip).
    """
    clip = rows[first].clip_uid
    while rows[last].clip_uid != clip:
        last -= 1
    t0, t1 = rows[first].time_sec, rows[last].time_sec
    gaps_before = [t0 - rows[first - 1].time_sec] if first > 0 else []
    gaps_after = [rows[last + 1].time_sec - t1] if last + 1 < len(rows) else []
    before = (gaps_before or gaps_after or [0.0])[0] / 2.0
    after = (gaps_after or gaps_before or [0.0])[0] / 2.0
    offset = rows[first].clip_video_start_sec
    start = min(t0 - min(before, max_half_sec), rows[first].window_start_sec) - offset
    end = max(t1 + min(after, max_half_sec), rows[last].window_end_sec) - offset
    return max(0.0, start), min(rows[first].clip_duration_sec, end)


def _query_uid(narration_uid: str, source: str, text: str) -> str:
    return str(uuid.uuid5(QUERY_NAMESPACE, f"{narration_uid}|{source}|{text}"))


def _check_window_args(zero_length: str, min_window_sec: float) -> None:
    if zero_length not in ZERO_LENGTH_CHOICES:
        raise ValueError(f"zero_length must be one of {ZERO_LENGTH_CHOICES}, got {zero_length!r}")
    if not min_window_sec > ZERO_LENGTH_SEC:
        raise ValueError(f"min_window_sec must exceed the zero-length tolerance {ZERO_LENGTH_SEC:.4f} s")


def _empty_rejections() -> dict[str, int]:
    return {r: 0 for r in REJECTION_REASONS}


def generate_shard(
    blocks: Sequence[Block],
    backend: Backend,
    *,
    prompt_template: str,
    cache_path: Path,
    out_path: Path,
    retries: int = 1,
    batch_size: int = 8,
    zero_length: str = "widen",
    min_window_sec: float = DEFAULT_MIN_WINDOW_SEC,
    max_half_window_sec: float = DEFAULT_MAX_HALF_WINDOW_SEC,
) -> dict:
    """Generate, validate and write the GENERATED table of one shard of blocks; return its stats.

    A question's window is :func:`answer_window` over the narrations it is about (``max_half_window_sec``).

    Blocks already in the cache are not regenerated; the rest go to the backend ``batch_size`` at a time and
    are appended to the cache after every batch. An unusable answer (unparseable, or a reply the backend
    rejected) is retried ``retries`` times, then its block counts as failed, under the reason of its last try
    (``rejected["parse_failure"]``, ``rejected["reply_not_json"]``, ...). A window shorter than
    ``min_window_sec`` is widened to it (``zero_length="widen"``) or dropped (``"drop"``).

    Stats keys: ``blocks``, ``cached``, ``generated``, ``failed``, ``prompts`` (backend calls this run,
    retries included), ``questions_parsed``, ``accepted``, ``rejected`` (reason -> count),
    ``windows_widened``, ``windows_dropped``, ``prompt_tokens``, ``new_tokens`` (this run),
    ``generation_seconds``, ``seconds``, ``prompts_per_s``, ``tokens_per_s``, ``cache_torn_lines``,
    ``source``, ``prompt_sha256``, ``backend``.
    """
    _check_window_args(zero_length, min_window_sec)
    t0 = time.perf_counter()
    sha = prompt_sha256(prompt_template)
    fingerprint_json = json.dumps(backend.fingerprint(), sort_keys=True)
    cache = GenerationCache(cache_path)
    run: Counter = Counter()
    rejected = _empty_rejections()
    tables: list[pa.Table] = []
    seen: dict[str, set[str]] = defaultdict(set)
    parsed = widened = dropped = accepted_rows = 0
    # Chunks of blocks bound the memory (prompts, answers and rows of one chunk at a time) at Ego4D scale;
    # a multiple of batch_size keeps the backend's batches those of one pass.
    chunk = batch_size * max(1, SHARD_CHUNK_BLOCKS // batch_size)
    bar = tqdm(total=len(blocks), desc=f"blocks ({backend.name})", unit="block", disable=None)
    for first in range(0, len(blocks), chunk):
        part = blocks[first : first + chunk]
        units = [_Unit(b.block_id, render_prompt(b, prompt_template)) for b in part]
        answers, failures, part_run = _run_units(
            units, backend, cache, retries=retries, batch_size=batch_size, progress=False
        )
        del units
        run.update({k: v for k, v in part_run.items() if k != "cache_torn_lines"})
        rows: list[dict] = []
        for block in part:
            items = answers[block.block_id]
            if items is None:
                rejected[failures[block.block_id]] += 1
                continue
            parsed += len(items)
            sources = [SourceText(r.text, r.text_clean) for r in block.rows]
            accepted, counts = validate_items(items, sources, key="question", seen=seen[block.video_uid])
            for reason, n in counts.items():
                rejected[reason] += n
            for index, question, last in accepted:
                r = block.rows[index]
                start, end = answer_window(block.rows, index, last, max_half_sec=max_half_window_sec)
                window = fit_window(start, end, r.clip_duration_sec, min_window_sec=min_window_sec)
                if end - start < min_window_sec:
                    if zero_length == "drop" or window is None:
                        dropped += 1
                        continue
                    widened += 1
                cs, ce = window
                rows.append(
                    {
                        "query_uid": _query_uid(r.narration_uid, backend.name, question),
                        "video_uid": block.video_uid,
                        "clip_uid": r.clip_uid,
                        "narration_uid": r.narration_uid,
                        "block_id": block.block_id,
                        "source": backend.name,
                        "query": question,
                        "window_start_sec": r.clip_video_start_sec + cs,
                        "window_end_sec": r.clip_video_start_sec + ce,
                        "clip_start_sec": cs,
                        "clip_end_sec": ce,
                        "prompt_sha256": sha,
                        "backend": fingerprint_json,
                        "parent_query_uid": None,
                    }
                )
        accepted_rows += len(rows)
        tables.append(pa.Table.from_pylist(rows, schema=GENERATED))
        bar.update(len(part))
    bar.close()
    table = pa.concat_tables(tables) if tables else GENERATED.empty_table()
    write_parquet(table, out_path, GENERATED)
    stats = {
        "blocks": len(blocks),
        "cached": run["cached"],
        "generated": run["generated"],
        "failed": run["failed"],
        "prompts": run["prompts"],
        "questions_parsed": parsed,
        "accepted": accepted_rows,
        "rejected": rejected,
        "windows_widened": widened,
        "windows_dropped": dropped,
        "prompt_tokens": run["prompt_tokens"],
        "new_tokens": run["new_tokens"],
        "generation_seconds": run["generation_seconds"],
        "seconds": time.perf_counter() - t0,
        "cache_torn_lines": cache.torn_lines,
        "source": backend.name,
        "prompt_sha256": sha,
        "backend": backend.fingerprint(),
    }
    _throughput(stats)
    logger.info(
        "shard %s: %d blocks (%d cached, %d generated, %d failed), %d accepted, rejected %s",
        out_path,
        len(blocks),
        stats["cached"],
        stats["generated"],
        stats["failed"],
        accepted_rows,
        {k: v for k, v in rejected.items() if v},
    )
    return stats


def unusable_reason(stats: dict) -> str | None:
    """Why a generation (or rephrasing) run produced nothing usable, or None when it produced something.

    The threshold: zero accepted questions from a non-empty input (``blocks``, or ``rows_in`` for
    rephrasing). A low acceptance rate is a poor model, shown in the stats; none at all means a broken
    model, prompt or server, and an empty table must not pass silently into training.
    """
    n_in = stats["blocks"] if "blocks" in stats else stats["rows_in"]
    if n_in == 0 or stats["accepted"] > 0:
        return None
    unit = "blocks" if "blocks" in stats else "rows"
    reasons = ", ".join(f"{k} {v}" for k, v in Counter(stats["rejected"]).most_common() if v) or "none"
    return f"no accepted question from {n_in} {unit} ({stats['failed']} failed; rejected: {reasons})"


def narration_rows(
    assigned: pa.Table, *, zero_length: str = "widen", min_window_sec: float = DEFAULT_MIN_WINDOW_SEC
) -> pa.Table:
    """Curated narrations (ASSIGNED table) as GENERATED rows: source ``"narration"``, query = text_clean.

    The input of narration rephrasing (LaViLa-style); windows follow the same widen/drop rule.
    """
    _check_window_args(zero_length, min_window_sec)
    df = assigned.select(ASSIGNED.names).to_pandas()
    rows = []
    for r in df.itertuples(index=False):
        window = fit_window(
            r.clip_start_sec, r.clip_end_sec, r.clip_duration_sec, min_window_sec=min_window_sec
        )
        short = r.clip_end_sec - r.clip_start_sec < min_window_sec
        if window is None or (short and zero_length == "drop"):
            continue
        cs, ce = window
        rows.append(
            {
                "query_uid": _query_uid(r.narration_uid, "narration", r.text_clean),
                "video_uid": r.video_uid,
                "clip_uid": r.clip_uid,
                "narration_uid": r.narration_uid,
                "block_id": "",
                "source": "narration",
                "query": r.text_clean,
                "window_start_sec": r.clip_video_start_sec + cs,
                "window_end_sec": r.clip_video_start_sec + ce,
                "clip_start_sec": cs,
                "clip_end_sec": ce,
                "prompt_sha256": "",
                "backend": "{}",
                "parent_query_uid": None,
            }
        )
    return pa.Table.from_pylist(rows, schema=GENERATED)


def rephrase(
    rows: pa.Table,
    backend: Backend,
    *,
    prompt_template: str,
    cache_path: Path,
    out_path: Path,
    group_size: int = 8,
    num_variants: int = 1,
    retries: int = 1,
    batch_size: int = 8,
) -> dict:
    """Paraphrase every row of a GENERATED table ``num_variants`` times; write the paraphrases as GENERATED.

    Rows are sent ``group_size`` at a time (one video per group) through the same cache, retry and validation
    path as questions (answer key ``"text"``; a paraphrase containing its source counts as ``copies_source``;
    one equal to any existing text of its video as ``duplicate_in_video``; the question mark is required when
    every source of the group has one). A paraphrase keeps its source's windows; ``source`` becomes
    ``rephrase:<source>`` and ``parent_query_uid`` the source's ``query_uid``. Stats as :func:`generate_shard`
    (``groups`` instead of ``blocks``).
    """
    if group_size < 1 or num_variants < 1:
        raise ValueError("group_size and num_variants must be >= 1")
    t0 = time.perf_counter()
    sha = prompt_sha256(prompt_template)
    fingerprint_json = json.dumps(backend.fingerprint(), sort_keys=True)
    df = rows.select(GENERATED.names).to_pandas().sort_values(["video_uid", "window_start_sec", "query_uid"])
    records = df.to_dict("records")
    groups: list[tuple[str, list[dict], int]] = []
    by_video: dict[str, list[dict]] = defaultdict(list)
    for rec in records:
        by_video[rec["video_uid"]].append(rec)
    for video_uid, recs in by_video.items():
        for start in range(0, len(recs), group_size):
            chunk = recs[start : start + group_size]
            digest = hashlib.sha256("\n".join(r["query_uid"] for r in chunk).encode("utf-8")).hexdigest()[:12]
            for variant in range(1, num_variants + 1):
                groups.append((f"{video_uid}:{digest}:v{variant}", chunk, variant))
    units = [
        _Unit(uid, render_rephrase_prompt([r["query"] for r in chunk], prompt_template, variant=variant))
        for uid, chunk, variant in groups
    ]
    cache = GenerationCache(cache_path)
    answers, failures, run = _run_units(units, backend, cache, retries=retries, batch_size=batch_size)

    rejected = _empty_rejections()
    seen: dict[str, set[str]] = {
        v: {normalise_text(r["query"]) for r in recs} for v, recs in by_video.items()
    }
    out: list[dict] = []
    parsed = 0
    for uid, chunk, variant in groups:
        items = answers[uid]
        if items is None:
            rejected[failures[uid]] += 1
            continue
        parsed += len(items)
        sources = [SourceText(r["query"], r["query"]) for r in chunk]
        accepted, counts = validate_items(
            items,
            sources,
            key="text",
            seen=seen[chunk[0]["video_uid"]],
            require_question_mark=all(r["query"].endswith("?") for r in chunk),
            copy_reason="copies_source",
        )
        for reason, n in counts.items():
            rejected[reason] += n
        for index, text, _ in accepted:
            parent = chunk[index]
            source = f"rephrase:{parent['source']}"
            out.append(
                {
                    **parent,
                    "query_uid": _query_uid(parent["query_uid"], f"{source}:v{variant}", text),
                    "source": source,
                    "query": text,
                    "prompt_sha256": sha,
                    "backend": fingerprint_json,
                    "parent_query_uid": parent["query_uid"],
                }
            )
    write_parquet(pa.Table.from_pylist(out, schema=GENERATED), out_path, GENERATED)
    stats = {
        "groups": len(groups),
        "rows_in": len(records),
        "cached": run["cached"],
        "generated": run["generated"],
        "failed": run["failed"],
        "prompts": run["prompts"],
        "questions_parsed": parsed,
        "accepted": len(out),
        "rejected": rejected,
        "prompt_tokens": run["prompt_tokens"],
        "new_tokens": run["new_tokens"],
        "generation_seconds": run["generation_seconds"],
        "seconds": time.perf_counter() - t0,
        "cache_torn_lines": run["cache_torn_lines"],
        "source": f"rephrase:{backend.name}",
        "prompt_sha256": sha,
        "backend": backend.fingerprint(),
    }
    _throughput(stats)
    logger.info(
        "rephrase: %d rows -> %d paraphrases, rejected %s",
        len(records),
        len(out),
        {k: v for k, v in rejected.items() if v},
    )
    return stats


def _sum_stats(parts: list[dict]) -> dict:
    """Numbers are summed (nested dicts key by key); other values kept when all parts agree, else listed."""
    out: dict = {}
    for key in dict.fromkeys(k for p in parts for k in p):
        values = [p[key] for p in parts if key in p]
        if all(isinstance(v, dict) for v in values) and key != "backend":
            out[key] = _sum_stats(values)
        elif all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
            out[key] = sum(values)
        else:
            distinct = [v for i, v in enumerate(values) if v not in values[:i]]
            out[key] = distinct[0] if len(distinct) == 1 else distinct
    return out


_SHARD_IDENTITY = ("shard", "num_shards")  # which shard a stats file describes: never summed


def _shard_identity(parts: list[dict], paths: Sequence[Path]) -> dict:
    """``num_shards`` (every shard must agree) and the sorted ``shard_ids`` of the merged stats files.

    Shards of different splittings, or one shard given twice, would make the summed counts wrong: an error.
    """
    num_shards: tuple[int, Path] | None = None  # the first value seen and its file
    ids: list[int] = []
    for path, part in zip(paths, parts, strict=True):
        if part.get("num_shards") is not None:
            num_shards = num_shards or (part["num_shards"], path)
            if part["num_shards"] != num_shards[0]:
                raise InputError(
                    path,
                    f"num_shards {part['num_shards']} differs from {num_shards[0]} in {num_shards[1]}",
                    field="num_shards",
                    expected="the shard stats of one run",
                )
        if "shard" in part:
            if part["shard"] in ids:
                raise InputError(path, f"shard {part['shard']} is merged twice", field="shard")
            ids.append(part["shard"])
    out: dict = {"shard_ids": sorted(ids)}
    if num_shards is not None:
        out["num_shards"] = num_shards[0]
    return out


def merge_shards(
    shard_paths: Sequence[Path], out_parquet: Path, stats_paths: Sequence[Path], stats_out: Path
) -> dict:
    """Concatenate shard tables and sum their stats (JSON files of :func:`generate_shard`'s dict).

    Duplicates of the same video across shards (the per-shard check cannot see them) are removed, first by
    (video, window start, narration, query uid) kept, and counted under ``rejected["duplicate_in_video"]``.
    Throughput is recomputed from the summed counts; ``seconds`` is the sum over shards.
    """
    parts = [read_json(p) for p in stats_paths]
    identity = _shard_identity(parts, stats_paths)
    tables = [read_parquet(p, GENERATED) for p in shard_paths]
    table = pa.concat_tables(tables) if tables else GENERATED.empty_table()
    df = table.to_pandas().sort_values(["video_uid", "window_start_sec", "narration_uid", "query_uid"])
    dup = pd.Series([normalise_text(q) for q in df["query"]], index=df.index, dtype=object)
    dup = pd.DataFrame({"v": df["video_uid"], "q": dup}).duplicated(keep="first").to_numpy()
    df = df[~dup]
    merged = pa.Table.from_pandas(df, schema=GENERATED, preserve_index=False)
    write_parquet(merged, out_parquet, GENERATED)
    stats = _sum_stats([{k: v for k, v in p.items() if k not in _SHARD_IDENTITY} for p in parts])
    stats.update(identity)
    stats["shards"] = len(stats_paths)
    stats.setdefault("rejected", _empty_rejections())
    stats["rejected"]["duplicate_in_video"] = stats["rejected"].get("duplicate_in_video", 0) + int(dup.sum())
    stats["accepted"] = merged.num_rows
    stats["duplicates_across_shards"] = int(dup.sum())
    if "generation_seconds" in stats:
        _throughput(stats)
    write_json(stats, stats_out, indent=2)
    logger.info(
        "merged %d shards: %d queries (%d cross-shard duplicates)",
        len(shard_paths),
        merged.num_rows,
        int(dup.sum()),
    )
    return stats


def export_nlq_json(
    generated: pa.Table,
    pseudo_clips: pd.DataFrame,
    out_path: Path,
    *,
    date: str = "000000",
    description: str = EXPORT_DESCRIPTION,
) -> dict:
    """Write generated queries in the official ``nlq_train.json`` layout (version "1", split "train").

    One annotation per pseudo-clip that has queries (``annotation_uid`` = uuid5 of the clip uid), queries
    sorted by (clip start, query uid), ``query_idx`` = position in that list. Frame fields follow NaQ
    (``floor``/``ceil`` of 30 x seconds). ``date`` is fixed by default so the bytes are reproducible.
    Returns ``videos``, ``clips``, ``queries``, ``clips_without_queries``.
    """
    df = generated.select(GENERATED.names).to_pandas()
    clips = pseudo_clips.set_index("clip_uid")
    unknown = sorted(set(df["clip_uid"]) - set(clips.index))
    if unknown:
        raise ValueError(f"{len(unknown)} generated queries name unknown pseudo-clips, e.g. {unknown[0]}")
    videos = []
    n_clips = 0
    for video_uid, vdf in df.groupby("video_uid", sort=True):
        clip_records = []
        for clip_uid, cdf in vdf.groupby("clip_uid", sort=True):
            c = clips.loc[clip_uid]
            vs, ve, dur = float(c["video_start_sec"]), float(c["video_end_sec"]), float(c["clip_end_sec"])
            queries = [
                {
                    "clip_start_sec": q.clip_start_sec,
                    "clip_end_sec": q.clip_end_sec,
                    "video_start_sec": q.window_start_sec,
                    "video_end_sec": q.window_end_sec,
                    "video_start_frame": math.floor(CANONICAL_FPS * q.window_start_sec),
                    "video_end_frame": math.ceil(CANONICAL_FPS * q.window_end_sec),
                    "template": None,
                    "query": q.query,
                }
                for q in cdf.sort_values(["clip_start_sec", "query_uid"]).itertuples(index=False)
            ]
            clip_records.append(
                {
                    "clip_uid": clip_uid,
                    "video_start_sec": vs,
                    "video_end_sec": ve,
                    "video_start_frame": math.floor(CANONICAL_FPS * vs),
                    "video_end_frame": math.ceil(CANONICAL_FPS * ve),
                    "clip_start_sec": 0,
                    "clip_end_sec": dur,
                    "clip_start_frame": 0,
                    "clip_end_frame": round(CANONICAL_FPS * dur),
                    "source_clip_uid": clip_uid,
                    "annotations": [
                        {
                            "annotation_uid": str(uuid.uuid5(QUERY_NAMESPACE, f"annotation:{clip_uid}")),
                            "language_queries": queries,
                        }
                    ],
                }
            )
        n_clips += len(clip_records)
        videos.append({"video_uid": video_uid, "split": "train", "clips": clip_records})
    root = {"version": "1", "date": date, "description": description, "manifest": "", "videos": videos}
    write_json(root, out_path)
    stats = {
        "videos": len(videos),
        "clips": n_clips,
        "queries": len(df),
        "clips_without_queries": int(len(clips) - n_clips),
    }
    logger.info("exported %s: %s", out_path, stats)
    return stats
