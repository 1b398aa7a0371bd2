"""The NLQ challenge prediction file (evaluation.md, section 2): writing and validating it.

``{"version": "1.0", "challenge": "ego4d_nlq_challenge", "results": [{"clip_uid", "annotation_uid",
"query_idx", "predicted_times": [[start, end], ...]}]}``: clip-relative seconds, windows ranked best first,
``query_idx`` the position in the annotation's ORIGINAL ``language_queries`` list.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from egonlq.data.validation import is_number
from egonlq.errors import InputError
from egonlq.evaluation.ground_truth import GroundTruth
from egonlq.io import read_json, write_json

logger = logging.getLogger(__name__)

VERSION = "1.0"
CHALLENGE = "ego4d_nlq_challenge"


@dataclass(frozen=True)
class Prediction:
    """Ranked windows (clip-relative seconds, best first) for one query."""

    clip_uid: str
    annotation_uid: str
    query_idx: int
    predicted_times: list[list[float]]

    @property
    def key(self) -> tuple[str, str, int]:
        return self.clip_uid, self.annotation_uid, self.query_idx

    def to_json(self) -> dict[str, Any]:
        """The result entry, numbers as plain JSON floats (numpy scalars converted)."""
        return {
            "clip_uid": self.clip_uid,
            "annotation_uid": self.annotation_uid,
            "query_idx": int(self.query_idx),
            "predicted_times": [[float(s), float(e)] for s, e in self.predicted_times],
        }


def write_predictions(rows: Iterable[Prediction], path: Path, *, num_windows: int = 5) -> None:
    """Write the challenge JSON atomically, sorted by (clip_uid, annotation_uid, query_idx).

    Refuses (InputError listing every problem) a file that :func:`validate_predictions` would reject, or a
    row without exactly ``num_windows`` windows.
    """
    rows = sorted(rows, key=lambda r: (r.clip_uid, r.annotation_uid, r.query_idx))
    problems = [
        f"results[{i}] ({_where(r.to_json())}): {len(r.predicted_times)} windows, expected {num_windows}"
        for i, r in enumerate(rows)
        if len(r.predicted_times) != num_windows
    ]
    obj = {"version": VERSION, "challenge": CHALLENGE, "results": []}
    if not problems:  # a row with a malformed window cannot be converted to JSON numbers
        try:
            obj["results"] = [r.to_json() for r in rows]
        except (TypeError, ValueError) as e:
            problems.append(f"a window is not a pair of numbers: {e}")
    problems += validate_predictions(obj)
    if problems:
        listing = "\n".join(f"  - {p}" for p in problems)
        raise InputError(
            path, f"refusing to write invalid predictions, {len(problems)} problem(s):\n{listing}"
        )
    write_json(obj, path)
    logger.info("wrote %d predictions (%d windows each) to %s", len(rows), num_windows, path)


def _where(entry: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={entry.get(k)!r}" for k in ("clip_uid", "annotation_uid", "query_idx"))


def _window_problems(times: Any) -> list[str]:
    if not isinstance(times, list) or not times:
        return [f"predicted_times must be a non-empty list of [start, end] lists, got {times!r:.80}"]
    if all(is_number(x) for x in times):
        return [f"predicted_times is a flat list {times!r:.80}; expected a list of [start, end] lists"]
    problems = []
    for w, window in enumerate(times):
        if not (isinstance(window, list) and len(window) == 2 and all(is_number(x) for x in window)):
            problems.append(
                f"predicted_times[{w}] must be a [start, end] list of two numbers, got {window!r:.80}"
            )
        elif not all(math.isfinite(x) for x in window):
            problems.append(f"predicted_times[{w}] has a non-finite value: {window!r}")
        elif window[0] > window[1]:
            problems.append(f"predicted_times[{w}] has start {window[0]!r} > end {window[1]!r}")
    return problems


def validate_predictions(
    obj_or_path: Mapping[str, Any] | Path | str, *, gt: GroundTruth | None = None
) -> list[str]:
    """Every problem of a challenge prediction file (empty list = valid), in the strict sense.

    Checks the header (``version`` "1.0", ``challenge``), that ``results`` is a list of objects with string
    uids, an int ``query_idx`` (bool rejected) >= 0, and ``predicted_times`` a non-empty list of
    ``[start, end]`` finite numbers with start <= end; no (clip_uid, annotation_uid, query_idx) twice. With
    ``gt``: the (clip_uid, annotation_uid) exists and ``query_idx`` is in range.
    """
    if isinstance(obj_or_path, str | Path):
        try:
            obj = read_json(obj_or_path)
        except InputError as e:
            return [str(e)]
    else:
        obj = obj_or_path
    if not isinstance(obj, Mapping):
        return [f"the file must hold a JSON object, got {type(obj).__name__}"]
    problems = []
    for key, expected in (("version", VERSION), ("challenge", CHALLENGE)):
        if key not in obj:
            problems.append(f"{key!r} missing (expected {expected!r})")
        elif obj[key] != expected:
            problems.append(f"{key!r} is {obj[key]!r}, expected {expected!r}")
    results = obj.get("results")
    if not isinstance(results, list):
        problems.append(
            f"'results' must be a list, got {type(results).__name__ if 'results' in obj else 'nothing'}"
        )
        return problems

    first_seen: dict[tuple[str, str, int], int] = {}
    for i, entry in enumerate(results):
        if not isinstance(entry, Mapping):
            problems.append(f"results[{i}]: must be an object, got {entry!r:.80}")
            continue
        where = f"results[{i}] ({_where(entry)})"
        own = []
        for key in ("clip_uid", "annotation_uid"):
            if not isinstance(entry.get(key), str):
                own.append(f"{key!r} must be a string")
        idx = entry.get("query_idx")
        idx_ok = isinstance(idx, int) and not isinstance(idx, bool) and idx >= 0
        if not idx_ok:
            own.append("'query_idx' must be an integer >= 0 (not a bool, float or string)")
        own += _window_problems(entry.get("predicted_times"))
        if all(isinstance(entry.get(k), str) for k in ("clip_uid", "annotation_uid")):
            own += _key_problems(entry, idx if idx_ok else None, gt, first_seen, i)
        problems += [f"{where}: {p}" for p in own]
    return problems


def _key_problems(
    entry: Mapping[str, Any],
    idx: int | None,
    gt: GroundTruth | None,
    first_seen: dict[tuple[str, str, int], int],
    i: int,
) -> list[str]:
    """Duplicate and (with ``gt``) unknown-key / out-of-range problems of one entry with valid uids."""
    clip_uid, annotation_uid = entry["clip_uid"], entry["annotation_uid"]
    problems = []
    if gt is not None:
        n = gt.num_queries(clip_uid, annotation_uid)
        if n is None:
            problems.append("unknown (clip_uid, annotation_uid): not in the ground truth")
        elif idx is not None and idx >= n:
            problems.append(f"'query_idx' {idx} out of range: the annotation has {n} queries")
    if idx is not None:
        key = (clip_uid, annotation_uid, idx)
        if key in first_seen:
            problems.append(f"duplicate of results[{first_seen[key]}]")
        else:
            first_seen[key] = i
    return problems
