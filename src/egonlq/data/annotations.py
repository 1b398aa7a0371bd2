"""Ingest of Ego4D NLQ annotation files (v1 and v2) into the CLIPS, QUERIES and NLQ_VIDEOS tables.

One QUERIES row per entry of ``language_queries``, text-less entries included, with ``query_idx`` the position
in the ORIGINAL list (the key predictions use). Ground-truth windows come only from the query's
``clip_start_sec`` / ``clip_end_sec``, never from ``*_frame`` fields or ``video_*_sec`` differences. A file is
annotated when its split is ``train`` or ``val``, or when any of its queries carries ``clip_start_sec`` /
``clip_end_sec`` (the ``test`` split: the demo's ground-truth file); otherwise (``nlq_test_unannotated.json``)
queries have null times and ``annotated`` False. NLQ_VIDEOS lists every video of the file, those without
clips included: a split's videos are these (exclusion sets and leakage guards must not miss them).

v2 files (``version`` "2.0", ``metadata``, ``request_uid``, ``answer``) leak form labels into values
(``"Query Text: Where is ..."``): ``query`` keeps the raw value, ``query_clean`` has the label removed and is
stripped, and the slot, verb and answer columns hold the cleaned values (``raw_tags`` keeps the raw ones).
The labels are removed in any file, whatever its version.

Bad-input policy. ERROR: :class:`~egonlq.errors.InputError` naming file, record (video/clip/annotation uid,
query_idx) and field; all errors of a file are listed together. QUIRK: kept, flagged where a column exists,
counted by kind in the report. One pass finds every error of a file: the children of a bad record are
still parsed, so a clip-level error never hides the errors of its queries.

| situation | policy | report kind (flag column) |
|---|---|---|
| malformed JSON; top level not an object; `videos` absent or not a list | ERROR | |
| an entry of `videos`/`clips`/`annotations`/`language_queries` not an object | ERROR | |
| absent `video_uid`, `clips`, `clip_uid`, `annotations`, `annotation_uid`, `language_queries` | ERROR | |
| absent clip `video_start_sec`, `video_end_sec` or `clip_end_sec` | ERROR | |
| absent query `clip_start_sec`/`clip_end_sec` in an annotated file | ERROR | |
| wrong type: time a string/bool, `clips` etc. not a list, text not string/null | ERROR | |
| wrong type: `raw_tags` not a list of strings/nulls | ERROR | |
| time NaN/Inf, or negative by more than 0.5 s | ERROR | |
| time negative by at most 0.5 s: clamped to 0 (one count per row) | QUIRK | `negative_time_clamped` (same) |
| window start > end + 1/30 s (clip or query) | ERROR | |
| clip `clip_start_sec` other than 0 | ERROR | |
| duplicate `video_uid`/`clip_uid` in a file, `annotation_uid` in a clip | ERROR | |
| query window of length <= 1/30 s | QUIRK | `zero_length_window` (`zero_length`) |
| query ends after the clip's `clip_end_sec` + 1e-6 | QUIRK | `window_ends_after_clip` (`ends_after_clip`) |
| `query` key absent | QUIRK | `missing_query_key` (`has_text` False) |
| `query` null / empty after cleaning | QUIRK | `null_query_text` / `empty_query_text` |
| `template` null / key absent (annotated files) | QUIRK | `null_template` / `missing_template_key` |
| `slot_x` or `verb_x` key absent (annotated files) | QUIRK | `missing_slot_keys` |
| `raw_tags` absent (annotated files) | QUIRK | `missing_raw_tags` |
| query `video_start_sec`/`video_end_sec` absent (annotated) | QUIRK | `missing_query_video_sec` (null) |
| clip `clip_start_sec` is the JSON integer 0 | QUIRK | `clip_start_sec_int` |
| a `*_frame` not a number or off `*_sec` x 30 by > 1 frame | QUIRK | `frame_fields_inconsistent` |
| clip `clip_end_sec` > 0.1 s off `video_end_sec - video_start_sec` | QUIRK | `clip_duration_mismatch` |
| video without clips | QUIRK | `video_without_clips` |
| clip without annotations | QUIRK | `clip_without_annotations` |
| annotation without queries | QUIRK | `annotation_without_queries` |
| v2 form label in a value (`Query Text:`, ...) | QUIRK | `v2_form_label_<field>` (cleaned) |
| video `split` differs from the requested split | QUIRK | `split_field_mismatch` |
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from egonlq.data.tables import CLIPS, NLQ_VIDEOS, QUERIES
from egonlq.data.validation import ErrorCollector, QuirkReport, as_finite_float, is_number
from egonlq.io import read_json
from egonlq.timegrid import CANONICAL_FPS, ZERO_LENGTH_SEC, is_zero_length

logger = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")
ANNOTATED_SPLITS = ("train", "val")
# v2 form labels that leak into values, per field
FORM_LABELS = {
    "query": "Query Text:",
    "slot_x": "X Text (Optional):",
    "verb_x": "X Verb (Optional):",
    "slot_y": "Y Text (Optional):",
    "verb_y": "Y Verb (Optional):",
    "answer": "Answer (Optional):",
}
ENDS_AFTER_CLIP_TOLERANCE_SEC = 1e-6
# Real files carry slightly negative times (v1 val, v1 test, v2 val: ~3-4 % of clips' video_start_sec, seen
# -4e-7 and -0.0123 s, and a few queries' *_sec): a rounding quirk, clamped to 0. More negative is an error.
NEGATIVE_TIME_TOLERANCE_SEC = 0.5
CLIP_DURATION_TOLERANCE_SEC = 0.1
FRAME_TOLERANCE = 1.0
_TIME_PAIRS = ("video_start", "video_end", "clip_start", "clip_end")
_MISSING = object()


@dataclass(frozen=True)
class NlqTables:
    """The tables of one NLQ annotation file, rows in file order, and its quirk report."""

    clips: pa.Table  # CLIPS
    queries: pa.Table  # QUERIES
    videos: pa.Table  # NLQ_VIDEOS: every listed video, with or without clips
    report: QuirkReport


def ingest_nlq(path: Path, split: str) -> tuple[pa.Table, pa.Table, QuirkReport]:
    """CLIPS, QUERIES and the report of :func:`read_nlq`, for callers that need no video list."""
    tables = read_nlq(path, split)
    return tables.clips, tables.queries, tables.report


def read_nlq(path: Path, split: str) -> NlqTables:
    """Read one NLQ annotation file into its tables and quirk report.

    ``split`` ("train", "val" or "test") is written into the tables; a video whose own ``split`` differs is
    kept and counted. Raises :class:`~egonlq.errors.InputError` listing every error of the file.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    path = Path(path)
    data = read_json(path)
    errors = ErrorCollector(path)
    if not isinstance(data, dict):
        errors.add(f"top level is a {type(data).__name__}", record=None, field=None, expected="an object")
        errors.raise_if_any()
    videos = data.get("videos", _MISSING)
    if not isinstance(videos, list):
        what = "missing" if videos is _MISSING else f"a {type(videos).__name__}"
        errors.add(f"'videos' is {what}", record=None, field="videos", expected="a list of video objects")
        errors.raise_if_any()

    annotated = split in ANNOTATED_SPLITS or _has_gt_times(videos)
    parser = _Parser(errors, split, annotated)
    for i, video in enumerate(videos):
        parser.video(video, f"videos[{i}]")
    errors.raise_if_any()

    clips = pa.Table.from_pydict(parser.clips, schema=CLIPS)
    queries = pa.Table.from_pydict(parser.queries, schema=QUERIES)
    videos = pa.Table.from_pydict(parser.videos, schema=NLQ_VIDEOS)
    logger.info(
        "%s (version %s, split %s, %s): %d videos, %d clips, %d queries (%d with text), quirks %s",
        path.name,
        data.get("version"),
        split,
        "annotated" if annotated else "unannotated",
        videos.num_rows,
        clips.num_rows,
        queries.num_rows,
        sum(parser.queries["has_text"]),
        parser.report.to_dict()["counts"],
    )
    return NlqTables(clips, queries, videos, parser.report)


def _has_gt_times(videos: list) -> bool:
    """Whether any language query of the file carries a ground-truth time key."""
    for video in videos:
        clips = video.get("clips") if isinstance(video, dict) else None
        for clip in clips if isinstance(clips, list) else ():
            annotations = clip.get("annotations") if isinstance(clip, dict) else None
            for annotation in annotations if isinstance(annotations, list) else ():
                queries = annotation.get("language_queries") if isinstance(annotation, dict) else None
                for query in queries if isinstance(queries, list) else ():
                    if isinstance(query, dict) and ("clip_start_sec" in query or "clip_end_sec" in query):
                        return True
    return False


def clean_form_label(field: str, value: str) -> tuple[str, bool]:
    """``value`` without its v2 form label (stripped), and whether a label was there."""
    label = FORM_LABELS.get(field)
    head = value.lstrip()
    if label is not None and head[: len(label)].lower() == label.lower():
        return head[len(label) :].strip(), True
    return value, False


class _Parser:
    """Walks videos -> clips -> annotations -> queries, filling the column lists of CLIPS and QUERIES."""

    def __init__(self, errors: ErrorCollector, split: str, annotated: bool) -> None:
        self.errors = errors
        self.split = split
        self.annotated = annotated
        self.report = QuirkReport()
        self.clips: dict[str, list] = {name: [] for name in CLIPS.names}
        self.queries: dict[str, list] = {name: [] for name in QUERIES.names}
        self.videos: dict[str, list] = {name: [] for name in NLQ_VIDEOS.names}
        self.video_uids: set[str] = set()
        self.clip_uids: set[str] = set()
        self.clamped: list[str] = []  # "field=value" of the current record's clamped negative times

    # ------------------------------------------------------------------------------------------ helpers

    def error(self, message: str, record: str, field: str | None, expected: str | None = None) -> None:
        self.errors.add(message, record=record, field=field, expected=expected)

    def obj(self, value: object, record: str) -> bool:
        if isinstance(value, dict):
            return True
        self.error(f"entry is a {type(value).__name__}", record, None, "an object")
        return False

    def uid(self, obj: dict, field: str, record: str) -> str | None:
        value = obj.get(field, _MISSING)
        if isinstance(value, str) and value:
            return value
        shown = "missing" if value is _MISSING else repr(value)
        self.error(f"{field} is {shown}", record, field, "a non-empty string")
        return None

    def items(self, obj: dict, field: str, record: str) -> list | None:
        value = obj.get(field, _MISSING)
        if isinstance(value, list):
            return value
        shown = "missing" if value is _MISSING else f"a {type(value).__name__}"
        self.error(f"{field} is {shown}", record, field, "a list")
        return None

    def seconds(self, obj: dict, field: str, record: str, *, required: bool) -> float | None:
        """A time in seconds: finite and >= 0; None when absent (an error if required) or invalid.

        A value in ``[-NEGATIVE_TIME_TOLERANCE_SEC, 0)`` is clamped to 0 and noted in ``self.clamped``.
        """
        value = obj.get(field, _MISSING)
        expected = f"a finite number of seconds >= 0 (or >= -{NEGATIVE_TIME_TOLERANCE_SEC:g}: clamped to 0)"
        if value is _MISSING:
            if required:
                self.error(f"{field} is missing", record, field, expected)
            return None
        number = as_finite_float(value)
        if number is None:
            self.error(f"{field} is {value!r}", record, field, expected)
            return None
        if number < -NEGATIVE_TIME_TOLERANCE_SEC:
            self.error(f"{field} is negative ({value!r})", record, field, expected)
            return None
        if number < 0:
            self.clamped.append(f"{field}={value!r}")
            return 0.0
        return number

    def take_clamped(self, record: str) -> bool:
        """Count the current record once if any of its times was clamped; True if so. Resets the list."""
        clamped, self.clamped = self.clamped, []
        if clamped:
            self.report.add("negative_time_clamped", f"{record}: {', '.join(clamped)} -> 0")
        return bool(clamped)

    def window(
        self, obj: dict, prefix: str, record: str, *, required: bool
    ) -> tuple[float | None, float | None]:
        start = self.seconds(obj, f"{prefix}_start_sec", record, required=required)
        end = self.seconds(obj, f"{prefix}_end_sec", record, required=required)
        if start is not None and end is not None and start > end + ZERO_LENGTH_SEC:
            self.error(
                f"inverted window {prefix}_start_sec={start} > {prefix}_end_sec={end}",
                record,
                f"{prefix}_end_sec",
                f"{prefix}_end_sec >= {prefix}_start_sec",
            )
        return start, end

    def check_frames(self, obj: dict, seconds: dict[str, float | None], record: str) -> None:
        """Count the record once if any ``*_frame`` field is not a number or is off ``*_sec * 30``."""
        bad = []
        for base in _TIME_PAIRS:
            key = f"{base}_frame"
            if key not in obj:
                continue
            frame, sec = obj[key], seconds.get(base)
            if not is_number(frame):
                bad.append(f"{key}={frame!r}")
            elif sec is not None and abs(frame - sec * CANONICAL_FPS) > FRAME_TOLERANCE:
                bad.append(f"{key}={frame} vs {base}_sec*30={sec * CANONICAL_FPS:g}")
        if bad:
            self.report.add("frame_fields_inconsistent", f"{record}: {', '.join(bad)}")

    def text(self, obj: dict, field: str, record: str) -> object:
        """The value of a text field (str or None), ``_MISSING`` when the key is absent; errors on types."""
        value = obj.get(field, _MISSING)
        if value is _MISSING or value is None or isinstance(value, str):
            return value
        self.error(f"{field} is a {type(value).__name__}", record, field, "a string or null")
        return None

    # ------------------------------------------------------------------------------------------ levels

    def video(self, video: object, where: str) -> None:
        if not self.obj(video, where):
            return
        uid = self.uid(video, "video_uid", where)
        record = where if uid is None else f"video_uid={uid}"
        clips = self.items(video, "clips", record)
        if uid is not None:
            if uid in self.video_uids:
                self.error("duplicate video_uid", record, "video_uid", "unique video_uid values in a file")
            else:
                self.video_uids.add(uid)
                for name, value in (
                    ("split", self.split),
                    ("video_uid", uid),
                    ("num_clips", len(clips or ())),
                ):
                    self.videos[name].append(value)
        if "split" in video and video["split"] != self.split:
            self.report.add("split_field_mismatch", f"{record} split={video['split']!r}")
        if clips is None:
            return
        if not clips:
            self.report.add("video_without_clips", record)
        for i, clip in enumerate(clips):
            self.clip(clip, uid, record, i)

    def clip(self, clip: object, video_uid: str | None, video_record: str, index: int) -> None:
        """Parse one clip and its annotations; its row is kept only when the clip itself has no error."""
        where = f"{video_record}, clips[{index}]"
        if not self.obj(clip, where):
            return
        n_errors = len(self.errors.errors)
        clip_uid = self.uid(clip, "clip_uid", where)
        record = where if clip_uid is None else f"{video_record}, clip_uid={clip_uid}"
        if clip_uid is not None:
            if clip_uid in self.clip_uids:
                self.error("duplicate clip_uid", record, "clip_uid", "unique clip_uid values in a file")
            self.clip_uids.add(clip_uid)
        self.clamped = []
        video_start, video_end = self.window(clip, "video", record, required=True)
        clip_start = self.seconds(clip, "clip_start_sec", record, required=False)
        clip_end = self.seconds(clip, "clip_end_sec", record, required=True)
        clamped = self.take_clamped(record)
        if clip_start is not None and clip_start != 0:
            self.error(f"clip_start_sec is {clip_start}", record, "clip_start_sec", "0")
        if type(clip.get("clip_start_sec")) is int:
            self.report.add("clip_start_sec_int", record)
        source = self.text(clip, "source_clip_uid", record)
        seconds = {"video_start": video_start, "video_end": video_end, "clip_start": clip_start}
        self.check_frames(clip, {**seconds, "clip_end": clip_end}, record)
        if video_start is not None and video_end is not None and clip_end is not None:
            if abs(clip_end - (video_end - video_start)) > CLIP_DURATION_TOLERANCE_SEC:
                self.report.add(
                    "clip_duration_mismatch",
                    f"{record}: clip_end_sec={clip_end} vs video window {video_end - video_start:g}",
                )
        annotations = self.items(clip, "annotations", record)
        clip_ok = len(self.errors.errors) == n_errors
        if annotations is None:
            return
        if not annotations:
            self.report.add("clip_without_annotations", record)
        num_queries = 0
        annotation_uids: set[str] = set()
        keys = (video_uid, clip_uid)
        for i, annotation in enumerate(annotations):
            num_queries += self.annotation(annotation, keys, record, clip_end, annotation_uids, i)
        if not clip_ok:
            return
        row = {
            "split": self.split,
            "video_uid": video_uid,
            "clip_uid": clip_uid,
            "video_start_sec": video_start,
            "video_end_sec": video_end,
            "clip_end_sec": clip_end,
            "source_clip_uid": None if source is _MISSING else source,
            "num_annotations": len(annotations),
            "num_queries": num_queries,
            "negative_time_clamped": clamped,
        }
        for name, value in row.items():
            self.clips[name].append(value)

    def annotation(
        self,
        annotation: object,
        keys: tuple[str | None, str | None],
        clip_record: str,
        clip_end: float | None,
        seen: set[str],
        index: int,
    ) -> int:
        """Parse one annotation of the clip ``keys`` (video_uid, clip_uid); returns its number of queries."""
        where = f"{clip_record}, annotations[{index}]"
        if not self.obj(annotation, where):
            return 0
        annotation_uid = self.uid(annotation, "annotation_uid", where)
        record = where if annotation_uid is None else f"{clip_record}, annotation_uid={annotation_uid}"
        if annotation_uid is not None:
            if annotation_uid in seen:
                self.error(
                    "duplicate annotation_uid in clip", record, "annotation_uid", "unique within a clip"
                )
            seen.add(annotation_uid)
        queries = self.items(annotation, "language_queries", record)
        if queries is None:
            return 0
        if not queries:
            self.report.add("annotation_without_queries", record)
        for query_idx, query in enumerate(queries):
            self.query(
                query, (*keys, annotation_uid), clip_end, f"{record}, query_idx={query_idx}", query_idx
            )
        return len(queries)

    def query(
        self,
        query: object,
        keys: tuple[str | None, str | None, str | None],
        clip_end: float | None,
        record: str,
        query_idx: int,
    ) -> None:
        """Parse one language query (``keys``: video, clip and annotation uid, None where invalid)."""
        if not self.obj(query, record):
            return
        n_errors = len(self.errors.errors)
        self.clamped = []
        start, end = self.window(query, "clip", record, required=self.annotated)
        video_start, video_end = self.window(query, "video", record, required=False)
        clamped = self.take_clamped(record)
        if self.annotated and ("video_start_sec" not in query or "video_end_sec" not in query):
            self.report.add("missing_query_video_sec", record)
        self.check_frames(
            query,
            {"clip_start": start, "clip_end": end, "video_start": video_start, "video_end": video_end},
            record,
        )

        values = {field: self.text(query, field, record) for field in ("template", *FORM_LABELS)}
        raw_query = values["query"]
        if raw_query is _MISSING:
            self.report.add("missing_query_key", record)
        elif raw_query is None:
            self.report.add("null_query_text", record)
        cleaned: dict[str, str | None] = {}
        for field, value in values.items():
            if value is _MISSING or value is None:
                cleaned[field] = None
                continue
            cleaned[field], had_label = clean_form_label(field, value)
            if had_label:
                self.report.add(f"v2_form_label_{field}", f"{record}: {value!r}")
        query_clean = cleaned["query"].strip() if cleaned["query"] is not None else None
        if query_clean == "":
            self.report.add("empty_query_text", f"{record}: {raw_query!r}")
        if self.annotated:
            if values["template"] is _MISSING:
                self.report.add("missing_template_key", record)
            elif values["template"] is None:
                self.report.add("null_template", record)
            if "slot_x" not in query or "verb_x" not in query:
                self.report.add("missing_slot_keys", record)
            if "raw_tags" not in query:
                self.report.add("missing_raw_tags", record)
        raw_tags = query.get("raw_tags")
        if raw_tags is not None and not (
            isinstance(raw_tags, list) and all(t is None or isinstance(t, str) for t in raw_tags)
        ):
            self.error(f"raw_tags is {raw_tags!r}", record, "raw_tags", "a list of strings or nulls")
        if len(self.errors.errors) > n_errors or None in keys or clip_end is None:
            return  # an error here or above: the file is refused, no row is needed

        annotated = start is not None and end is not None
        zero_length = annotated and is_zero_length(start, end)
        ends_after = annotated and end > clip_end + ENDS_AFTER_CLIP_TOLERANCE_SEC
        if zero_length:
            self.report.add("zero_length_window", f"{record}: [{start}, {end}]")
        if ends_after:
            self.report.add("window_ends_after_clip", f"{record}: end {end} > clip {clip_end}")
        row = {
            "split": self.split,
            "video_uid": keys[0],
            "clip_uid": keys[1],
            "annotation_uid": keys[2],
            "query_idx": query_idx,
            "query": None if raw_query is _MISSING else raw_query,
            "query_clean": query_clean,
            "template": cleaned["template"],
            "slot_x": cleaned["slot_x"],
            "verb_x": cleaned["verb_x"],
            "slot_y": cleaned["slot_y"],
            "verb_y": cleaned["verb_y"],
            "answer": cleaned["answer"],
            "raw_tags": raw_tags,
            "clip_start_sec": start,
            "clip_end_sec": end,
            "video_start_sec": video_start,
            "video_end_sec": video_end,
            "annotated": annotated,
            "has_text": bool(query_clean),
            "zero_length": zero_length,
            "ends_after_clip": ends_after,
            "negative_time_clamped": clamped,
        }
        for name, value in row.items():
            self.queries[name].append(value)
