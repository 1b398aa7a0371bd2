"""Ego4D Goal-Step annotations: validated reading, the quirk report, groups, and the NLQ-style conversion.

Spec dual-encoder-and-steps §4-5. Annotated files (train/valid) become one query table, each step followed by
its substeps, with times copied from the video (or group) timeline, never shifted by the entry's
``start_time`` (the official ``parse_goalstep_jsons.py``). Malformed entries raise :class:`InputError` naming
the file, the entry, the step and the field; the real files' quirks are accepted and counted.
"""

from __future__ import annotations

import ast
import math
from collections import Counter
from pathlib import Path

import pyarrow as pa

from egonlq.errors import InputError
from egonlq.io import read_json, write_json, write_parquet

# One row per query of the converted annotated split (steps and substeps interleaved in annotation order).
STEP_QUERIES = pa.schema(
    [
        pa.field("video_uid", pa.string(), nullable=False),  # a video or a grp- group
        pa.field("annotation_uid", pa.string(), nullable=False),  # "<video_uid>_<start_time>_<end_time>"
        pa.field("query_idx", pa.int32(), nullable=False),
        pa.field("query", pa.string(), nullable=False),
        pa.field("clip_start_sec", pa.float64(), nullable=False),  # video/group timeline
        pa.field("clip_end_sec", pa.float64(), nullable=False),
        pa.field("step_idx", pa.int32(), nullable=False),  # the step, or the parent step of a substep
        pa.field("is_substep", pa.bool_(), nullable=False),
    ]
)
# One row per query of the test split: a description and how many segments it has, no times (spec §4).
STEP_TEST_QUERIES = pa.schema(
    [
        pa.field("video_uid", pa.string(), nullable=False),
        pa.field("annotation_uid", pa.string(), nullable=False),  # = video_uid (the official conversion)
        pa.field("query_idx", pa.int32(), nullable=False),
        pa.field("query", pa.string(), nullable=False),
        pa.field("segment_count", pa.int32(), nullable=False),
    ]
)
IS_FIELDS = ("is_continued", "is_procedural", "is_relevant")


def _videos(path: Path) -> list:
    doc = read_json(path)
    if not isinstance(doc, dict) or not isinstance(doc.get("videos"), list):
        raise InputError(
            path, "no 'videos' list at the top level", field="videos", expected="{videos: [...]}"
        )
    return doc["videos"]


def _number(path: Path, record: str, node: dict, key: str) -> float:
    value = node.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InputError(path, f"{key} is {value!r}", record=record, field=key, expected="a finite number")
    return float(value)


def _check_node(path: Path, record: str, node: object, quirks: Counter) -> tuple[float, float, str]:
    if not isinstance(node, dict):
        raise InputError(path, f"segment is a {type(node).__name__}", record=record, expected="an object")
    start, end = _number(path, record, node, "start_time"), _number(path, record, node, "end_time")
    if end <= start:
        raise InputError(
            path, f"end_time {end} <= start_time {start}", record=record, field="end_time", expected="> start"
        )
    text = node.get("step_description")
    if not isinstance(text, str) or not text.strip():
        raise InputError(path, "empty description", record=record, field="step_description", expected="text")
    if any(k not in node for k in IS_FIELDS):
        quirks["missing_is_fields"] += 1
    if text.strip() == "Unspecified":
        quirks["unspecified"] += 1
    return start, end, text.strip()


def read_goalstep(path: str | Path) -> tuple[list[dict], Counter]:
    """The validated entries of an annotated Goal-Step file and its quirk report (counts, spec §4)."""
    path = Path(path)
    videos = _videos(path)
    quirks: Counter = Counter(entries=len(videos))
    for i, entry in enumerate(videos):
        uid = entry.get("video_uid") if isinstance(entry, dict) else None
        if not isinstance(uid, str) or not uid:
            raise InputError(path, "entry without video_uid", record=f"videos[{i}]", field="video_uid")
        steps = entry.get("segments")
        if not isinstance(steps, list) or not steps:
            raise InputError(path, "video has no steps", record=f"video_uid={uid}", field="segments")
        _number(path, f"video_uid={uid}", entry, "start_time")
        _number(path, f"video_uid={uid}", entry, "end_time")
        quirks["groups"] += uid.startswith("grp-")
        quirks["entries_not_starting_at_0"] += abs(entry["start_time"]) > 1.0
        previous_end, previous_start = -math.inf, -math.inf
        texts: Counter = Counter()
        for k, step in enumerate(steps):
            record = f"video_uid={uid}, step {k}"
            start, end, text = _check_node(path, record, step, quirks)
            texts[text] += 1
            quirks["steps"] += 1
            quirks["overlapping_step_pairs"] += start < previous_end
            quirks["out_of_order_steps"] += start < previous_start
            previous_end, previous_start = end, start
            for j, sub in enumerate(step.get("segments") or []):
                s, e, _ = _check_node(path, f"{record}, substep {j}", sub, quirks)
                quirks["substeps"] += 1
                quirks["substeps_past_parent"] += e > end or s < start
        quirks["steps_with_repeated_description"] += sum(c for c in texts.values() if c > 1)
    return videos, quirks


def to_queries(entries: list[dict]) -> dict[str, list]:
    """The NLQ-style conversion (§5): columns of :data:`STEP_QUERIES`, each step followed by its substeps."""
    cols: dict[str, list] = {name: [] for name in STEP_QUERIES.names}
    for entry in entries:
        uid = entry["video_uid"]
        annotation = f"{uid}_{entry['start_time']}_{entry['end_time']}"
        q = 0
        for k, step in enumerate(entry["segments"]):
            for node, is_sub in [(step, False)] + [(s, True) for s in step.get("segments") or []]:
                for name, value in (
                    ("video_uid", uid),
                    ("annotation_uid", annotation),
                    ("query_idx", q),
                    ("query", node["step_description"].strip()),
                    ("clip_start_sec", float(node["start_time"])),
                    ("clip_end_sec", float(node["end_time"])),
                    ("step_idx", k),
                    ("is_substep", is_sub),
                ):
                    cols[name].append(value)
                q += 1
    return cols


def read_groups(path: str | Path) -> dict[str, list[str]]:
    """``grp-<first uid>`` -> member uids in the listed order, from goalstep_video_groups.tsv."""
    path = Path(path)
    lines = path.read_text(encoding="utf-8").splitlines()
    if not lines or lines[0].split("\t") != ["university", "video_group"]:
        raise InputError(path, "bad header", record="line 1", expected="university<TAB>video_group")
    groups = {}
    for n, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        parts = line.split("\t")
        try:
            members = ast.literal_eval(parts[1]) if len(parts) == 2 else None
        except (ValueError, SyntaxError):
            members = None
        if not isinstance(members, list) or not members or not all(isinstance(m, str) for m in members):
            raise InputError(
                path, "video_group is not a list of uids", record=f"line {n}", field="video_group"
            )
        groups[f"grp-{members[0]}"] = members
    return groups


def read_goalstep_test(path: str | Path) -> dict[str, list]:
    """The test file (``step_segments`` with ``segment_count``, no times) as columns of
    :data:`STEP_TEST_QUERIES`, in the file's order; a malformed entry is an InputError naming it."""
    path = Path(path)
    cols: dict[str, list] = {name: [] for name in STEP_TEST_QUERIES.names}
    for i, entry in enumerate(_videos(path)):
        uid = entry.get("video_uid") if isinstance(entry, dict) else None
        if not isinstance(uid, str) or not uid:
            raise InputError(path, "entry without video_uid", record=f"videos[{i}]", field="video_uid")
        items = entry.get("step_segments")
        if not isinstance(items, list) or not items:
            raise InputError(path, "video has no steps", record=f"video_uid={uid}", field="step_segments")
        for k, item in enumerate(items):
            record = f"video_uid={uid}, step_segments[{k}]"
            text = item.get("step_description") if isinstance(item, dict) else None
            if not isinstance(text, str) or not text.strip():
                raise InputError(path, "empty description", record=record, field="step_description")
            count = item.get("segment_count")
            if isinstance(count, bool) or not isinstance(count, int) or count < 1:
                raise InputError(
                    path, f"segment_count is {count!r}", record=record, field="segment_count", expected=">= 1"
                )
            for name, value in (
                ("video_uid", uid),
                ("annotation_uid", uid),
                ("query_idx", k),
                ("query", text.strip()),
                ("segment_count", count),
            ):
                cols[name].append(value)
    return cols


def to_nlq_json(entries: list[dict], split: str) -> dict:
    """The official conversion's NLQ-style file (one clip and one annotation per entry, queries as in
    :func:`to_queries`): the ground truth the project's NLQ metric reads."""
    cols = to_queries(entries)
    by_annotation: dict[str, list[dict]] = {}
    for a, s, e, q in zip(
        cols["annotation_uid"], cols["clip_start_sec"], cols["clip_end_sec"], cols["query"], strict=True
    ):
        by_annotation.setdefault(a, []).append({"clip_start_sec": s, "clip_end_sec": e, "query": q})
    videos = []
    for entry in entries:
        uid = entry["video_uid"]
        annotation = f"{uid}_{entry['start_time']}_{entry['end_time']}"
        clip = {
            "clip_uid": uid,
            "video_start_sec": float(entry["start_time"]),
            "video_end_sec": float(entry["end_time"]),
            "annotations": [{"annotation_uid": annotation, "language_queries": by_annotation[annotation]}],
        }
        videos.append({"video_uid": uid, "clips": [clip]})
    return {"version": "1.0", "description": f"Goal-Step {split}, NLQ-style conversion", "videos": videos}


def split_of(path: Path) -> str:
    """``goalstep_valid.json`` -> ``valid``: the split a file's outputs are named after."""
    return path.stem.removeprefix("goalstep_")


def ingest(
    annotated: list[Path], test: Path | None, groups_path: Path, out_dir: Path, quirks_path: Path
) -> dict:
    """Write ``<split>_queries.parquet`` and ``<split>_gt.json`` per annotated file, ``test_queries.parquet``
    for the test file, and the quirk report; every ``grp-`` entry must be listed in the groups file."""
    groups = read_groups(groups_path)
    report: dict = {"groups_listed": len(groups)}
    for path in annotated:
        split = split_of(path)
        entries, quirks = read_goalstep(path)
        unlisted = [e["video_uid"] for e in entries if e["video_uid"].startswith("grp-")]
        unlisted = [u for u in unlisted if u not in groups]
        if unlisted:
            raise InputError(
                path,
                f"{len(unlisted)} group entries are not in {groups_path.name} (first {unlisted[:3]})",
                record=f"video_uid={unlisted[0]}",
                field="video_uid",
            )
        write_parquet(
            pa.table(to_queries(entries), schema=STEP_QUERIES), out_dir / f"{split}_queries.parquet"
        )
        write_json(to_nlq_json(entries, split), out_dir / f"{split}_gt.json")
        report[split] = dict(sorted(quirks.items()))
    if test is not None:
        cols = read_goalstep_test(test)
        write_parquet(pa.table(cols, schema=STEP_TEST_QUERIES), out_dir / "test_queries.parquet")
        report["test"] = {
            "entries": len(set(cols["video_uid"])),
            "queries": len(cols["query"]),
            "queries_with_count_above_1": sum(c > 1 for c in cols["segment_count"]),
        }
    write_json(report, quirks_path, indent=1)
    return report
