"""Ingest of the Ego4D video metadata (``ego4d.json``) into the VIDEOS table.

Only ``video_uid``, ``duration_sec`` and ``video_metadata.fps`` / ``video_metadata.num_frames`` are read; the
real file has many more fields, which are ignored. Missing or ill-typed fields and duplicate ``video_uid``
values are errors (all of a file's errors are raised together). Two cross-checks are counted as quirks, not
errors: ``fps_not_30`` (canonical videos should be 30 fps) and ``duration_frames_mismatch``
(``num_frames / fps`` more than 1 s away from ``duration_sec``).
"""

from __future__ import annotations

import logging
from pathlib import Path

import pyarrow as pa

from egonlq.data.tables import VIDEOS
from egonlq.data.validation import ErrorCollector, QuirkReport, as_finite_float
from egonlq.io import read_json
from egonlq.timegrid import CANONICAL_FPS

logger = logging.getLogger(__name__)

DURATION_TOLERANCE_SEC = 1.0
INT64_MAX = 2**63 - 1
_MISSING = object()


def ingest_metadata(path: Path) -> tuple[pa.Table, QuirkReport]:
    """Read ``ego4d.json`` into a VIDEOS table (file order) and a report of counted quirks."""
    path = Path(path)
    data = read_json(path)
    errors = ErrorCollector(path)
    report = QuirkReport()
    if not isinstance(data, dict):
        errors.add(f"top level is a {type(data).__name__}", record=None, field=None, expected="an object")
        errors.raise_if_any()
    videos = data.get("videos")
    if not isinstance(videos, list):
        what = "missing" if "videos" not in data else f"a {type(videos).__name__}"
        errors.add(f"'videos' is {what}", record=None, field="videos", expected="a list of video objects")
        errors.raise_if_any()

    columns: dict[str, list] = {name: [] for name in VIDEOS.names}
    seen: set[str] = set()
    for i, video in enumerate(videos):
        row = _video_row(video, f"videos[{i}]", errors, report, seen)
        if row is not None:
            for name, value in zip(VIDEOS.names, row, strict=True):
                columns[name].append(value)
    errors.raise_if_any()
    table = pa.Table.from_pydict(columns, schema=VIDEOS)
    logger.info("%s: %d videos, quirks %s", path.name, table.num_rows, report.to_dict()["counts"])
    return table, report


def _video_row(
    video: object, where: str, errors: ErrorCollector, report: QuirkReport, seen: set[str]
) -> tuple[str, float, float, int] | None:
    if not isinstance(video, dict):
        errors.add(f"video entry is a {type(video).__name__}", record=where, field=None, expected="an object")
        return None
    uid = video.get("video_uid")
    if not isinstance(uid, str) or not uid:
        errors.add(f"video_uid is {uid!r}", record=where, field="video_uid", expected="a non-empty string")
        return None
    record = f"video_uid={uid}"
    if uid in seen:
        errors.add("duplicate video_uid", record=record, field="video_uid", expected="unique values")
        return None
    seen.add(uid)

    def bad(field: str, value: object, expected: str) -> None:
        shown = "missing" if value is _MISSING else repr(value)
        errors.add(f"{field} is {shown}", record=record, field=field, expected=expected)

    duration = as_finite_float(video.get("duration_sec"))
    if duration is None or duration < 0:
        bad("duration_sec", video.get("duration_sec", _MISSING), "a finite number >= 0")
    meta = video.get("video_metadata")
    if not isinstance(meta, dict):
        bad("video_metadata", video.get("video_metadata", _MISSING), "an object with fps and num_frames")
        return None
    fps = as_finite_float(meta.get("fps"))
    if fps is None or fps <= 0:
        bad("video_metadata.fps", meta.get("fps", _MISSING), "a finite number > 0")
    num_frames = meta.get("num_frames", _MISSING)
    if not isinstance(num_frames, int) or isinstance(num_frames, bool) or not 0 <= num_frames <= INT64_MAX:
        bad("video_metadata.num_frames", num_frames, "an integer >= 0")
        num_frames = None
    if duration is None or duration < 0 or fps is None or fps <= 0 or num_frames is None:
        return None
    if fps != CANONICAL_FPS:
        report.add("fps_not_30", f"{record} fps={fps}")
    if abs(num_frames / fps - duration) > DURATION_TOLERANCE_SEC:
        report.add("duration_frames_mismatch", f"{record} {num_frames} frames at {fps} fps, {duration} s")
    return uid, duration, fps, num_frames
