"""Preflight: check the download before any job runs (issue 18).

Every input file or folder the configured workflow needs is listed with whether it exists, its size and (for
files) its sha256, so that two users can tell whether they ran on the same data. Each NLQ annotation file is
fingerprinted by its counts (videos, clips, annotations, language queries; a Goal-Step file by its videos,
groups, steps, substeps and queries) against the known public releases shipped in ``nlq_releases.json``
(sources and disagreements there): "NLQ v1 val, counts match", or "unknown file, nearest NLQ v2 val". The
check fails with the whole list of problems, never the first one only:

| situation | problem |
|---|---|
| an input absent | yes (all listed) |
| an NLQ or Goal-Step file that is not of its task's shape | yes |
| a file whose counts match a release of another split (a val file configured as train) | yes |
| a file of unknown counts (a subset, a new release) | no: reported with the nearest release |
| the demo world | no: reported as "demo" (synthetic data) |
| no feature sidecar and an unknown set; a sidecar unlike the known set; a dim not the config's | yes |
| sampled feature files whose rows do not fit the set's grid (1.87 rows/s for 1.875) | yes (all named) |

The report's ``fingerprint`` hashes the inputs' contents (a file's sha256, a folder's listing of names and
sizes), not their paths: two users with the same fingerprint ran on the same data.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from egonlq.data import feature_sets
from egonlq.data.metadata import ingest_metadata
from egonlq.errors import InputError
from egonlq.io import read_json

RELEASES_FILE = Path(__file__).with_name("nlq_releases.json")
COUNT_KEYS = ("videos", "clips", "annotations", "queries")
GOALSTEP_KEYS = ("videos", "groups", "steps", "substeps", "queries")
TASK_KEYS = {"nlq": COUNT_KEYS, "goalstep": GOALSTEP_KEYS}
_CHUNK = 1 << 20


@cache
def known_releases(task: str = "nlq") -> tuple[dict, ...]:
    """The table's known releases of ``task`` (``nlq`` or ``goalstep``): ``release``, ``split``, counts or
    null, ``source``, and ``same_as`` for a byte-identical release."""
    return tuple(r for r in read_json(RELEASES_FILE)["releases"] if r["task"] == task)


def nlq_counts(path: Path) -> dict[str, int]:
    """Counts of an NLQ annotation file: video, clip, annotation and language-query entries (text-less ones
    included), and queries with text. InputError when the file does not have the NLQ shape."""
    data = read_json(path)
    videos = data.get("videos") if isinstance(data, dict) else None
    if not isinstance(videos, list):
        raise InputError(path, "not an NLQ annotation file", field="videos", expected="a list of videos")
    counts = dict.fromkeys((*COUNT_KEYS, "queries_with_text"), 0)
    counts["videos"] = len(videos)
    for video in videos:
        for clip in _items(video, "clips"):
            counts["clips"] += 1
            for annotation in _items(clip, "annotations"):
                counts["annotations"] += 1
                queries = _items(annotation, "language_queries")
                counts["queries"] += len(queries)
                counts["queries_with_text"] += sum(
                    isinstance(q, dict) and isinstance(q.get("query"), str) and q["query"].strip() != ""
                    for q in queries
                )
    return counts


def goalstep_counts(path: Path) -> dict[str, int]:
    """Counts of a Goal-Step file: top-level entries (videos), ``grp-`` entries, steps, substeps and queries
    (steps + substeps; a test file's ``step_segments``). InputError when the file has no ``videos`` list."""
    data = read_json(path)
    videos = data.get("videos") if isinstance(data, dict) else None
    if not isinstance(videos, list):
        raise InputError(path, "not a Goal-Step file", field="videos", expected="a list of videos")
    counts = dict.fromkeys(GOALSTEP_KEYS, 0)
    counts["videos"] = len(videos)
    for video in videos:
        uid = video.get("video_uid") if isinstance(video, dict) else None
        counts["groups"] += isinstance(uid, str) and uid.startswith("grp-")
        steps = _items(video, "segments")
        counts["steps"] += len(steps)
        counts["substeps"] += sum(len(_items(step, "segments")) for step in steps)
        counts["queries"] += len(_items(video, "step_segments"))
    counts["queries"] += counts["steps"] + counts["substeps"]
    return counts


def _items(obj: object, key: str) -> list:
    value = obj.get(key) if isinstance(obj, dict) else None
    return value if isinstance(value, list) else []


def fingerprint(counts: dict[str, int], task: str = "nlq") -> tuple[dict | None, dict]:
    """(the release of ``task`` whose every known count equals ``counts``, or None; the nearest release).

    Nearest: the smallest largest relative difference over the counts both know."""

    def distance(release: dict) -> float:
        known = [k for k in TASK_KEYS[task] if release[k] is not None]
        return max(abs(counts[k] - release[k]) / max(release[k], 1) for k in known)

    ranked = sorted(known_releases(task), key=distance)
    exact = ranked[0] if distance(ranked[0]) == 0 else None
    return exact, ranked[0]


def release_name(release: dict) -> str:
    """``NLQ v2 val``; a release with a byte-identical twin: ``NLQ v1 test (= NLQ v2 test)``."""
    twin = f" (= {release['same_as']})" if release.get("same_as") else ""
    return f"{release['release']} {release['split']}{twin}"


def match_release(task: str, split: str, path: Path, demo: bool, problems: list[str]) -> dict | None:
    """The report entry of one annotation file of ``task`` configured as ``split``: its counts and release
    ("NLQ v2 val, counts match", or "unknown file: counts ...; nearest release ..."). A file of another
    split's counts, or not of the task's shape, appends to ``problems``; a file that is absent gives None
    (it is listed among the missing inputs)."""
    if not Path(path).is_file():
        return None
    counter = nlq_counts if task == "nlq" else goalstep_counts
    where = f"{task}_{split}"
    try:
        counts = counter(Path(path))
    except InputError as e:
        problems.append(f"{where}: {e}")
        return None
    exact, nearest = fingerprint(counts, task)
    entry: dict = {"path": str(path), "counts": counts}
    if demo:
        return {**entry, "release": "demo", "message": "demo world (synthetic data)"}
    if exact is not None:
        name = release_name(exact)
        if exact["split"] != split:
            problems.append(f"{where}: {path} is {name} (its counts match), configured as {split}")
        return {**entry, "release": name, "message": f"{name}, counts match"}
    keys = TASK_KEYS[task]
    shown = ", ".join(f"{k} {counts[k]}" for k in keys)
    near = ", ".join(f"{k} {nearest[k]}" for k in keys if nearest[k] is not None)
    return {
        **entry,
        "release": None,
        "nearest": release_name(nearest),
        "message": f"unknown file: counts {shown}; nearest release {release_name(nearest)} ({near})",
    }


@dataclass(frozen=True)
class Input:
    """One input of the workflow: a name (``nlq_val``, ``features``, ...) and its path."""

    name: str
    path: Path


@dataclass(frozen=True)
class Features:
    """The configured feature set: its name, folder of ``<video_uid>.pt`` files and dim, and how many of its
    videos (the longest) get their row counts checked."""

    name: str
    folder: Path
    dim: int
    sample: int = feature_sets.DEFAULT_SAMPLE


def describe(item: Input, *, hash_files: bool = True) -> dict:
    """Existence, kind, size (a folder: its files and their bytes) and sha256 of a file."""
    path = item.path
    out: dict = {"name": item.name, "path": str(path), "exists": path.exists()}
    if path.is_file():
        out.update(kind="file", bytes=path.stat().st_size)
        if hash_files:
            out["sha256"] = sha256(path)
    elif path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file())
        sizes = [(p.relative_to(path).as_posix(), p.stat().st_size) for p in files]
        listing = "".join(f"{name}\t{size}\n" for name, size in sizes)
        out.update(
            kind="folder",
            files=len(files),
            bytes=sum(size for _, size in sizes),
            listing_sha256=hashlib.sha256(listing.encode()).hexdigest(),
        )
    return out


def data_fingerprint(described: list[dict]) -> str:
    """sha256 over each input's name and content hash (a folder: its listing), independent of paths."""
    parts = [f"{d['name']}\t{d.get('sha256') or d.get('listing_sha256') or 'absent'}\n" for d in described]
    return hashlib.sha256("".join(sorted(parts)).encode()).hexdigest()


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def preflight(
    inputs: list[Input],
    nlq: dict[str, Path],
    *,
    demo: bool = False,
    features: Features | None = None,
    metadata: Path | None = None,
    goalstep: dict[str, Path] | None = None,
) -> dict:
    """The preflight report of ``inputs`` (every path the workflow needs), the NLQ files ``nlq`` (split ->
    path, also among ``inputs``) and the Goal-Step files ``goalstep`` (split -> path). ``demo``: the data
    are the demo world's. ``features``: the feature set to describe and check, its row counts against the
    frame counts of ``metadata`` (``ego4d.json``). ``problems`` lists everything that stops the workflow;
    ``ok`` is True when there is none; ``fingerprint`` identifies the data (:func:`data_fingerprint`)."""
    problems: list[str] = []
    described = [describe(item) for item in inputs]
    for d in described:
        if not d["exists"]:
            problems.append(f"{d['name']}: {d['path']} does not exist")
    files = {"nlq": nlq, "goalstep": goalstep or {}}
    releases = {
        task: {
            split: entry
            for split, path in paths.items()
            if (entry := match_release(task, split, path, demo, problems)) is not None
        }
        for task, paths in files.items()
    }
    report = {"ok": False, "demo": demo, "problems": problems, "fingerprint": data_fingerprint(described)}
    if features is not None and Path(features.folder).is_dir():
        report["features"] = check_features(features, metadata, problems)
    report.update(ok=not problems, inputs=described, nlq=releases["nlq"], goalstep=releases["goalstep"])
    return report


def check_features(features: Features, metadata: Path | None, problems: list[str]) -> dict:
    """The feature set's description (sidecar or table) and its row check on a sample of videos; problems
    are appended to ``problems``."""
    where = f"features ({features.name})"
    try:
        fset = feature_sets.resolve_feature_set(features.folder, features.name)
    except InputError as e:
        problems.append(f"{where}: {e}")
        return {"set": None, "message": str(e)}
    entry: dict = {"set": fset.to_dict()}
    if fset.dim != features.dim:
        problems.append(f"{where}: the set's dim is {fset.dim}, the config says {features.dim}")
    if metadata is None or not Path(metadata).is_file():
        entry["message"] = (
            f"{fset.grid.rows_per_second:g} rows/s ({fset.origin}); rows unchecked, no metadata"
        )
        return entry
    try:
        table, _ = ingest_metadata(Path(metadata))
    except InputError as e:
        problems.append(f"metadata: {e}")
        return {**entry, "message": "rows unchecked: the metadata file is unreadable"}
    frames = dict(
        zip(table.column("video_uid").to_pylist(), table.column("num_frames").to_pylist(), strict=True)
    )
    rows = feature_sets.check_rows(features.folder, fset, frames, sample=features.sample)
    entry.update(rows)
    problems += [f"{where}: {message}" for message in rows["unreadable"].values()]
    if rows["offending"]:
        problems.append(feature_sets.describe_offending(where, fset, rows["offending"]))
    told = (
        "rate variants told apart"
        if rows["separates_rates"]
        else "videos too short to tell rate variants apart"
    )
    bad = len(rows["offending"]) + len(rows["unreadable"])
    rate = fset.grid.rows_per_second
    entry["message"] = (
        f"{fset.name} ({fset.origin}): {fset.backbone}, {rate:g} rows/s, dim {fset.dim}; "
        f"rows match on {len(rows['sampled']) - bad} of {len(rows['sampled'])} sampled videos ({told})"
    )
    return entry


def to_markdown(report: dict) -> str:
    """The report as a short markdown page: verdict, problems, fingerprint, features, releases, inputs."""
    lines = ["# Preflight", ""]
    verdict = (
        "**OK**: every input is there." if report["ok"] else f"**FAILED**: {len(report['problems'])} problems"
    )
    lines.append(verdict)
    lines += [f"- {p}" for p in report["problems"]]
    if report["demo"]:
        lines += ["", "Data: the demo world (synthetic)."]
    lines += ["", f"Data fingerprint: `{report['fingerprint']}`"]
    if "features" in report:
        lines += ["", "## Features", "", report["features"]["message"]]
    for task, title in (("nlq", "NLQ files"), ("goalstep", "Goal-Step files")):
        if not report[task]:
            continue
        keys = TASK_KEYS[task]
        lines += ["", f"## {title}", "", f"| split | release | {' | '.join(keys)} | note |"]
        lines.append("|---|---|" + "---|" * len(keys) + "---|")
        for split, e in report[task].items():
            counts = " | ".join(str(e["counts"][k]) for k in keys)
            lines.append(f"| {split} | {e['release'] or 'unknown'} | {counts} | {e['message']} |")
    lines += ["", "## Inputs", "", "| input | path | exists | size | sha256 |", "|---|---|---|---|---|"]
    for d in report["inputs"]:
        size = d.get("bytes", "")
        if d.get("kind") == "folder":
            size = f"{d['files']} files, {d['bytes']} bytes"
        exists = "yes" if d["exists"] else "**no**"
        lines.append(f"| {d['name']} | `{d['path']}` | {exists} | {size} | {d.get('sha256', '')} |")
    return "\n".join(lines) + "\n"
