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
from egonlq.evaluation.ground_truth import GroundTruth, QueryKey
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


@dataclass(frozen=True)
class Coverage:
    """How much of the ground truth a prediction file answers, and where its windows leave their clip.

    Both are legal in the challenge format (a missing query is a strict-mode miss; the official script
    scores windows outside ``[0, clip duration]`` as given), so they are reported, not listed as problems.
    """

    num_gt: int  # GT queries
    answered: int  # distinct GT queries with a result entry
    missing: list[QueryKey]  # GT queries without one, in GT order
    windows: int  # windows checked against a known clip duration
    outside: list[str]  # windows with start < 0 or end > the clip's duration, described
    clips_without_duration: int  # answered clips whose GT gives no clip_end_sec (their windows unchecked)

    @property
    def fraction(self) -> float:
        return self.answered / self.num_gt if self.num_gt else 1.0

    def lines(self, shown: int = 5) -> list[str]:
        """Human-readable summary: coverage, the first ``shown`` missing queries and outside windows."""
        out = [f"answers {self.answered} / {self.num_gt} GT queries ({self.fraction * 100:.1f} %)"]
        if self.missing:
            first = ", ".join(f"{c}/{a}/{i}" for c, a, i in self.missing[:shown])
            out.append(f"  {len(self.missing)} unanswered, first: {first}")
        out.append(f"{len(self.outside)} of {self.windows} windows lie outside their clip [0, duration]")
        out += [f"  {w}" for w in self.outside[:shown]]
        if len(self.outside) > shown:
            out.append(f"  ... and {len(self.outside) - shown} more")
        if self.clips_without_duration:
            out.append(
                f"{self.clips_without_duration} answered clip(s) have no duration in the GT: unchecked"
            )
        return out


def coverage(obj: Mapping[str, Any], gt: GroundTruth) -> Coverage:
    """The :class:`Coverage` of a parsed prediction file; malformed entries (see
    :func:`validate_predictions`) answer nothing and their windows are skipped."""
    answered: set[QueryKey] = set()
    outside, windows, no_duration = [], 0, set()
    results = obj.get("results") if isinstance(obj, Mapping) else None
    for i, entry in enumerate(results if isinstance(results, list) else []):
        if not isinstance(entry, Mapping):
            continue
        key = (entry.get("clip_uid"), entry.get("annotation_uid"), entry.get("query_idx"))
        n = gt.num_queries(*key[:2]) if all(isinstance(k, str) for k in key[:2]) else None
        idx = key[2]
        if n is None or isinstance(idx, bool) or not isinstance(idx, int) or not 0 <= idx < n:
            continue
        answered.add(key)
        times = entry.get("predicted_times")
        if _window_problems(times):
            continue
        duration = gt.clip_durations.get(key[0])
        if duration is None:
            no_duration.add(key[0])
            continue
        for w, (start, end) in enumerate(times):
            windows += 1
            if start < 0 or end > duration:
                outside.append(
                    f"results[{i}] ({_where(entry)}) predicted_times[{w}] = [{start}, {end}],"
                    f" clip duration {duration}"
                )
    keys = [key for key, _ in gt.iter_queries()]
    return Coverage(
        num_gt=len(keys),
        answered=len(answered),
        missing=[key for key in keys if key not in answered],
        windows=windows,
        outside=outside,
        clips_without_duration=len(no_duration),
    )
