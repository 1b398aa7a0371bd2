"""Streaming ingest of Ego4D ``narration.json`` into the NARRATIONS and SUMMARIES tables.

The real file holds ~3.85M sentences (hundreds of MB), so it is never loaded whole: the top-level object is
parsed one video at a time (:class:`JsonObjectStream`: orjson on each video's text, the ``json`` module where
orjson cannot be trusted to agree with it, over a buffered read), each video's
entry lists go to Arrow in C (``pa.array`` with an explicit struct type), and the columns (null-outs, tags,
counts) are computed with vectorised Arrow kernels per row group. Peak memory is one video's Python objects,
the read buffer and one row group.

Rows keep their pass (1 or 2) and ``narration_idx`` (position in the pass's original list); nothing is sorted
or de-duplicated here (curation does that). Defects are KEPT with null fields and counted, for curation to
skip with reasons:

| situation | row | report kind |
|---|---|---|
| malformed JSON, top level not an object, duplicate video key | ERROR | |
| `timestamp_sec` missing, not a number (string/bool/null), NaN/Inf | null | `narration_bad_timestamp` |
| `timestamp_sec` negative | kept | `narration_negative_timestamp` |
| `timestamp_frame` missing or not an integer | null | `narration_bad_timestamp_frame` |
| `timestamp_frame` more than 1 frame off `timestamp_sec` x 30 | kept | `narration_frame_inconsistent` |
| `narration_text` missing, not a string, empty or blank | null | `narration_empty_text` |
| `annotation_uid` missing or not a string | null | `narration_bad_annotation_uid` |
| narration entry not an object | skipped | `narration_not_object` |
| summary `start_sec`/`end_sec` missing, not a number, NaN/Inf | null | `summary_bad_time` |
| summary text / `annotation_uid` bad | null | `summary_empty_text` / `summary_bad_annotation_uid` |
| summary entry not an object | skipped | `summary_not_object` |
| a string with lone surrogates (not UTF-8) | U+FFFD | `invalid_unicode` |
| video value not an object | skipped | `narration_video_not_object` |
| pass value not an object (null = absent) | skipped | `narration_pass_not_object` |
| `narrations` / `summaries` not a list | skipped | `narration_list_not_list` / `summary_list_not_list` |
| video not in `known_videos` | kept | `narration_video_unknown` (one per video) |
| per-video `status` value | | `status:<value>` (`status:<missing>` absent, `status:<list>`/`<dict>`) |

Tags (matched case-insensitively, ``#`` followed by ASCII letters, digits or ``_``): ``"#summary"`` when the
text starts with ``#summary``; else ``"#C"``/``"#O"`` from the first ``#C``/``#O`` among the leading tags;
else ``"#unsure"`` when ``#unsure`` is the only tag in the text; else ``"none"``. ``unsure`` is True when the
tag ``#unsure`` appears anywhere.
"""

from __future__ import annotations

import functools
import json
import logging
import re
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import repeat
from pathlib import Path
from typing import NoReturn, TextIO

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from egonlq.data.tables import NARRATIONS, SUMMARIES
from egonlq.data.validation import QuirkReport, is_number
from egonlq.errors import InputError
from egonlq.io import atomic_path, too_deep_message
from egonlq.progress import tqdm
from egonlq.timegrid import CANONICAL_FPS

logger = logging.getLogger(__name__)

CHUNK_CHARS = 1 << 21
ROWS_PER_GROUP = 1 << 17
MAX_PENDING_GROUPS = 2  # row groups built but not yet written (bounds memory)
FRAME_TOLERANCE = 1.0
PASSES = (1, 2)

# Tag patterns, written so that Arrow's RE2 and Python's ``re`` (with re.ASCII) read them the same way.
_WS = "[ \t\n\r\f\v]"
_TAG = "#[A-Za-z0-9_]+"


def _nocase(word: str) -> str:
    return "".join(f"[{c.upper()}{c.lower()}]" for c in word)


SUMMARY_PATTERN = f"^{_WS}*#{_nocase('summary')}"
LEADING_CO_PATTERN = f"^{_WS}*(?:{_TAG}{_WS}+)*?#(?P<co>[CcOo])\\b"
TAG_PATTERN = _TAG
UNSURE_PATTERN = f"#{_nocase('unsure')}\\b"
BLANK_PATTERN = f"^{_WS}*$"

_JSON_WS = re.compile(r"[ \t\n\r]*")
# Where a video's object may end: "}" before the next member's key (not a key a video object holds itself).
# Only a guess: the text up to it is trusted only if it parses whole (a JSON value is never a proper prefix
# of another), else the value is decoded by the json module.
_VALUE_END = re.compile(r'\}(?=[ \t\n\r]*,[ \t\n\r]*"(?!narration_pass_|status"))')
_NUMBER_CHARS = frozenset("0123456789.eE+-")
_INT64_BOUND = 2.0**63
_MISSING = object()


def ingest_narrations(
    path: Path,
    narrations_out: Path,
    summaries_out: Path,
    *,
    known_videos: set[str] | None = None,
    rows_per_group: int = ROWS_PER_GROUP,
    chunk_chars: int = CHUNK_CHARS,
) -> QuirkReport:
    """Stream ``narration.json`` into NARRATIONS and SUMMARIES parquet files (atomic, row groups).

    ``known_videos`` (e.g. the video_uids of ego4d.json) only serves to count narrated videos unknown to the
    metadata. Raises :class:`~egonlq.errors.InputError` on malformed JSON (with file and position). Row groups
    are built and written by one worker thread (Arrow kernels and parquet encoding release the GIL) while the
    next videos are parsed; their quirk counts are merged in file order.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(path, "file not found")
    report = QuirkReport()
    narrations = _Table("narration", "narrations", _NARRATION_RAW, NARRATIONS, _narration_columns)
    summaries = _Table("summary", "summaries", _SUMMARY_RAW, SUMMARIES, _summary_columns)
    n_videos = 0
    with (
        atomic_path(narrations_out) as narrations_tmp,
        atomic_path(summaries_out) as summaries_tmp,
        pq.ParquetWriter(narrations_tmp, NARRATIONS, compression="zstd") as narrations.writer,
        pq.ParquetWriter(summaries_tmp, SUMMARIES, compression="zstd") as summaries.writer,
        open(path, encoding="utf-8", newline="") as f,
        tqdm(total=path.stat().st_size, unit="B", unit_scale=True, desc="narrations", disable=None) as bar,
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="narration-row-groups") as worker,
    ):
        jobs: deque[Future[QuirkReport]] = deque()

        def write_pending(table: _Table) -> None:
            job = table.take_row_group()
            if job is not None:
                jobs.append(worker.submit(job))
            while len(jobs) > MAX_PENDING_GROUPS:
                report.merge(jobs.popleft().result())

        stream = JsonObjectStream(f, path, chunk_chars=chunk_chars, progress=bar.update)
        for video_uid, value in stream:
            n_videos += 1
            _add_video(video_uid, value, narrations, summaries, report, known_videos)
            for table in (narrations, summaries):
                if table.pending_rows >= rows_per_group:
                    write_pending(table)
        write_pending(narrations)
        write_pending(summaries)
        while jobs:
            report.merge(jobs.popleft().result())
    logger.info(
        "%s: %d videos, %d narrations, %d summaries, quirks %s",
        path.name,
        n_videos,
        narrations.rows_written,
        summaries.rows_written,
        {k: v for k, v in report.to_dict()["counts"].items() if not k.startswith("status:")},
    )
    return report


# ---------------------------------------------------------------------------------------------- streaming


class JsonObjectStream:
    """Iterate over the members ``(key, value)`` of a top-level JSON object, one at a time.

    Each value is decoded from a buffer that holds at least that value (orjson, or the ``json`` module's C
    decoder: :meth:`_decode_value`); the buffer grows geometrically when a value is larger than it, so reading
    stays linear. Values equal ``json.load``'s, except that an integer beyond 64 bits (in no Ego4D field)
    comes back as the nearest float, as orjson reads it. Duplicate keys are an error.
    """

    def __init__(self, f: TextIO, path: Path, *, chunk_chars: int = CHUNK_CHARS, progress=None) -> None:
        self.f = f
        self.path = path
        self.chunk_chars = chunk_chars
        self.progress = progress
        self.buf = ""
        self.pos = 0
        self.offset = 0  # characters of the file before buf[0]
        self.eof = False
        self.decoder = json.JSONDecoder()

    def __iter__(self) -> Iterator[tuple[str, object, bool]]:
        if self._peek() != "{":
            self._fail("top level is not a JSON object", expected="'{'")
        self.pos += 1
        seen: set[str] = set()
        char = self._peek()
        if char == "}":
            self.pos += 1
        while char != "}":
            if char != '"':
                self._fail("expected a property name in double quotes")
            key, self.pos = self._decode(lambda s, i: json.decoder.scanstring(s, i + 1))
            if key in seen:
                self._fail(f"duplicate key {key!r}", expected="each video_uid once")
            seen.add(key)
            if self._peek() != ":":
                self._fail("expected ':'")
            self.pos += 1
            self._peek()
            value, self.pos = self._decode_value()
            yield key, value
            char = self._peek()
            if char == ",":
                self.pos += 1
                char = self._peek()
                if char == "}":
                    self._fail("trailing comma")
            elif char == "}":
                self.pos += 1
            else:
                self._fail("expected ',' or '}'")
        if self._peek() != "":
            self._fail("extra data after the top-level object")

    def _fill(self) -> bool:
        """Read more text (at least doubling the unconsumed part); False at end of file."""
        try:
            more = self.f.read(max(self.chunk_chars, len(self.buf) - self.pos))
        except UnicodeDecodeError as e:
            raise InputError(self.path, f"not UTF-8 text: {e}") from e
        if not more:
            self.eof = True
            return False
        if self.progress is not None:
            self.progress(len(more))
        self.offset += self.pos
        self.buf = self.buf[self.pos :] + more
        self.pos = 0
        return True

    def _peek(self) -> str:
        """Skip whitespace and return the next character ('' at end of file) without consuming it."""
        while True:
            self.pos = _JSON_WS.match(self.buf, self.pos).end()
            if self.pos < len(self.buf):
                return self.buf[self.pos]
            if not self._fill():
                return ""

    def _decode_value(self) -> tuple[object, int]:
        """The member value at ``pos`` and where it ends: orjson on the text up to a likely end (about twice
        as fast as the json module), the json module when there is no likely end or orjson refuses the text
        (which also covers NaN, lone surrogates and errors, reported as the json module reports them)."""
        start = scan = self.pos
        if self.buf.startswith("{", start):
            while True:
                end = _VALUE_END.search(self.buf, scan)
                if end is not None or self.eof:
                    break
                scan = max(start, len(self.buf) - 64)  # a "}" near the end may lack its lookahead yet
                if not self._fill():
                    break
                start, scan = self.pos, scan - start + self.pos  # _fill moved the text left
            if end is not None:
                try:
                    return orjson.loads(self.buf[start : end.end()]), end.end()
                except orjson.JSONDecodeError:
                    pass
        return self._decode(self.decoder.raw_decode)

    def _decode(self, decode) -> tuple[object, int]:
        """Run ``decode(buf, pos)``, reading more text until the result cannot depend on what follows.

        A value that ends at the end of the buffer, or right before a character that could continue a
        number (``0.`` of ``0.5``), may have been cut by the buffer: it is decoded again with more text.
        """
        while True:
            try:
                value, end = decode(self.buf, self.pos)
                if self.eof or (end < len(self.buf) and self.buf[end] not in _NUMBER_CHARS):
                    return value, end
            except json.JSONDecodeError as e:
                if self.eof:
                    self._fail(e.msg, at=e.pos)
            except RecursionError:  # more text cannot help: the nesting is already too deep
                self._fail(too_deep_message())
            self._fill()

    def _fail(self, message: str, *, at: int | None = None, expected: str | None = None) -> NoReturn:
        offset = self.offset + (self.pos if at is None else at)
        line, column = _line_column(self.path, offset)
        at_end = self.eof and offset >= self.offset + len(self.buf)
        ends = " (the file ends there: truncated?)" if at_end else ""
        raise InputError(
            self.path,
            f"malformed JSON at line {line}, column {column} (character {offset}): {message}{ends}",
            expected=expected,
        )


def _line_column(path: Path, offset: int) -> tuple[int, int]:
    """1-based line and column of character ``offset`` of a text file (read again, only on errors)."""
    line, last_newline, seen = 1, -1, 0
    with open(path, encoding="utf-8", errors="replace", newline="") as f:
        while seen < offset:
            chunk = f.read(min(CHUNK_CHARS, offset - seen))
            if not chunk:
                break
            newlines = chunk.count("\n")
            if newlines:
                line += newlines
                last_newline = seen + chunk.rindex("\n")
            seen += len(chunk)
    return line, offset - last_newline


# ---------------------------------------------------------------------------------------------- per video

_NARRATION_RAW = pa.struct(
    [
        ("timestamp_sec", pa.float64()),
        ("timestamp_frame", pa.float64()),  # checked to be integral, then cast to int64
        ("narration_text", pa.string()),
        ("annotation_uid", pa.string()),
    ]
)
_SUMMARY_RAW = pa.struct(
    [
        ("start_sec", pa.float64()),
        ("end_sec", pa.float64()),
        ("summary_text", pa.string()),
        ("annotation_uid", pa.string()),
    ]
)


@dataclass
class _Table:
    """Pending per-video chunks of one output table, flushed as one parquet row group."""

    name: str  # "narration" or "summary": prefix of the report kinds
    list_key: str  # key of the entry list inside a pass
    raw_type: pa.StructType  # what is read from each entry
    schema: pa.Schema
    columns: Callable[[pa.StructArray, _RowKeys, QuirkReport], list[pa.Array]]  # raw -> schema columns
    writer: pq.ParquetWriter | None = None
    chunks: list[pa.StructArray] = field(default_factory=list)
    video_uids: list[str] = field(default_factory=list)
    passes: list[int] = field(default_factory=list)
    indices: list[np.ndarray] = field(default_factory=list)
    pending_rows: int = 0
    rows_written: int = 0

    def add(self, video_uid: str, pass_no: int, chunk: pa.StructArray, idx: np.ndarray) -> None:
        self.chunks.append(chunk)
        self.video_uids.append(video_uid)
        self.passes.append(pass_no)
        self.indices.append(idx)
        self.pending_rows += len(chunk)

    def take_row_group(self) -> Callable[[], QuirkReport] | None:
        """The pending rows as a job that builds and writes one row group and returns its quirk counts."""
        if not self.chunks:
            return None
        chunks, video_uids, passes, indices = self.chunks, self.video_uids, self.passes, self.indices
        self.chunks, self.video_uids, self.passes, self.indices = [], [], [], []
        self.pending_rows = 0

        def write() -> QuirkReport:
            report = QuirkReport()
            raw = pa.concat_arrays(chunks)
            counts = np.fromiter((len(c) for c in chunks), dtype=np.int64, count=len(chunks))
            owner = np.repeat(np.arange(len(chunks)), counts)
            keys = _RowKeys(
                pa.array(video_uids, pa.string()).take(owner),
                np.repeat(np.asarray(passes, dtype=np.int8), counts),
                np.concatenate(indices).astype(np.int32),
                self.name,
            )
            table = pa.Table.from_arrays(self.columns(raw, keys, report), schema=self.schema)
            self.writer.write_table(table, row_group_size=len(table))
            self.rows_written += len(table)
            return report

        return write


def _add_video(
    video_uid: str,
    value: object,
    narrations: _Table,
    summaries: _Table,
    report: QuirkReport,
    known_videos: set[str] | None,
) -> None:
    record = f"video_uid={video_uid}"
    if not isinstance(value, dict):
        report.add("narration_video_not_object", f"{record}: {type(value).__name__}")
        return
    if known_videos is not None and video_uid not in known_videos:
        report.add("narration_video_unknown", record)
    status = value.get("status", _MISSING)
    if status is _MISSING or isinstance(status, dict | list):  # a container is named, never printed
        shown = "<missing>" if status is _MISSING else f"<{type(status).__name__}>"
    else:
        shown = status if isinstance(status, str) else json.dumps(status)
    report.add(f"status:{shown}", record)
    for pass_no in PASSES:
        pass_value = value.get(f"narration_pass_{pass_no}")
        if pass_value is None:
            continue
        if not isinstance(pass_value, dict):
            report.add("narration_pass_not_object", f"{record}, pass={pass_no}: {type(pass_value).__name__}")
            continue
        for table in (narrations, summaries):
            entries = pass_value.get(table.list_key, [])
            where = f"{record}, pass={pass_no}"
            if not isinstance(entries, list):
                report.add(f"{table.name}_list_not_list", f"{where}: {type(entries).__name__}")
                continue
            if entries:
                chunk, idx = _to_struct(entries, table.raw_type, report=report, where=where)
                if len(idx) < len(entries):
                    skipped = np.setdiff1d(np.arange(len(entries)), idx)
                    report.add_many(
                        f"{table.name}_not_object",
                        (f"{where}, {table.name}_idx={i}" for i in skipped[:5]),
                        len(skipped),
                    )
                if len(idx):
                    table.add(video_uid, pass_no, chunk, idx)


def _to_struct(
    entries: list, raw_type: pa.StructType, *, report: QuirkReport, where: str
) -> tuple[pa.StructArray, np.ndarray]:
    """Entries (JSON objects) as an Arrow struct array of ``raw_type``, and their positions in the list.

    Fast path: each field's values are gathered in C (``map(dict.get, ...)``) and converted by Arrow, column
    by column (twice as fast as converting the dicts into a struct array). It is taken only where it cannot
    differ from the checked Python path: every entry a dict, no bool in a float field (Arrow reads true as
    1.0) and every value of the expected JSON type (Arrow refuses the others).
    Otherwise, in Python, wrong-typed values become null and non-objects are dropped; strings with lone
    surrogates (not encodable as UTF-8) get U+FFFD and are counted as ``invalid_unicode``.
    """
    floats = _float_fields(raw_type)
    if set(map(type, entries)) == {dict}:
        try:
            columns = []
            for f in raw_type:
                values = list(map(dict.get, entries, repeat(f.name)))
                if f.name in floats and bool in set(map(type, values)):
                    break
                columns.append(pa.array(values, type=f.type))
            else:
                chunk = pa.StructArray.from_arrays(columns, fields=list(raw_type))
                return chunk, np.arange(len(entries), dtype=np.int32)
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError, UnicodeEncodeError):
            pass
    kept, idx = [], []
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict):
            continue
        row = {}
        for f in raw_type:
            value = entry.get(f.name)
            if f.name in floats:
                row[f.name] = _as_float(value)
            elif isinstance(value, str):
                row[f.name] = _as_utf8(value, report, f"{where}, index {i}, {f.name}")
            else:
                row[f.name] = None
        kept.append(row)
        idx.append(i)
    return pa.array(kept, type=raw_type), np.asarray(idx, dtype=np.int32)


@functools.cache
def _float_fields(raw_type: pa.StructType) -> frozenset[str]:
    return frozenset(f.name for f in raw_type if pa.types.is_floating(f.type))


def _as_float(value: object) -> float | None:
    if not is_number(value):
        return None
    try:
        return float(value)
    except OverflowError:
        return None


def _as_utf8(text: str, report: QuirkReport, record: str) -> str:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        report.add("invalid_unicode", record)
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return text


# ---------------------------------------------------------------------------------------------- columns


@dataclass(frozen=True)
class _RowKeys:
    video_uid: pa.Array
    pass_no: np.ndarray
    idx: np.ndarray
    name: str

    def records(self, mask: pa.Array, limit: int = 5) -> tuple[list[str], int]:
        """Up to ``limit`` record names where ``mask`` is True, and the number of True rows."""
        flags = mask.to_numpy(zero_copy_only=False)
        rows = np.flatnonzero(flags)
        names = [
            f"video_uid={self.video_uid[int(i)]}, pass={self.pass_no[i]}, {self.name}_idx={self.idx[i]}"
            for i in rows[:limit]
        ]
        return names, len(rows)


def _count(report: QuirkReport, kind: str, mask: pa.Array, keys: _RowKeys) -> None:
    names, n = keys.records(mask)
    report.add_many(kind, names, n)


def _finite_or_null(values: pa.Array) -> tuple[pa.Array, pa.Array]:
    """``values`` with NaN/Inf set to null, and the mask of rows that are null in the result."""
    bad = pc.invert(pc.fill_null(pc.is_finite(values), False))
    return pc.if_else(bad, pa.scalar(None, pa.float64()), values), bad


def _text_or_null(values: pa.Array) -> tuple[pa.Array, pa.Array]:
    """``values`` with blank strings set to null, and the mask of rows that are null in the result."""
    bad = pc.fill_null(pc.match_substring_regex(values, BLANK_PATTERN), True)
    return pc.if_else(bad, pa.scalar(None, pa.string()), values), bad


def _narration_columns(raw: pa.StructArray, keys: _RowKeys, report: QuirkReport) -> list[pa.Array]:
    timestamp, bad_timestamp = _finite_or_null(raw.field("timestamp_sec"))
    _count(report, "narration_bad_timestamp", bad_timestamp, keys)
    _count(report, "narration_negative_timestamp", pc.fill_null(pc.less(timestamp, 0.0), False), keys)

    frame_f = raw.field("timestamp_frame")
    frame_ok = pc.fill_null(
        pc.and_(
            pc.equal(pc.floor(frame_f), frame_f),
            pc.and_(pc.greater_equal(frame_f, -_INT64_BOUND), pc.less(frame_f, _INT64_BOUND)),
        ),
        False,
    )
    _count(report, "narration_bad_timestamp_frame", pc.invert(frame_ok), keys)
    frame = pc.cast(pc.if_else(frame_ok, frame_f, pa.scalar(None, pa.float64())), pa.int64())
    off = pc.greater(pc.abs(pc.subtract(frame_f, pc.multiply(timestamp, CANONICAL_FPS))), FRAME_TOLERANCE)
    _count(report, "narration_frame_inconsistent", pc.fill_null(pc.and_(frame_ok, off), False), keys)

    text, empty = _text_or_null(raw.field("narration_text"))
    _count(report, "narration_empty_text", empty, keys)
    annotation_uid = raw.field("annotation_uid")
    _count(report, "narration_bad_annotation_uid", annotation_uid.is_null(), keys)

    tag, unsure = tag_columns(text)
    return [
        keys.video_uid,
        pa.array(keys.pass_no, pa.int8()),
        pa.array(keys.idx, pa.int32()),
        timestamp,
        frame,
        text,
        tag,
        unsure,
        annotation_uid,
    ]


def _summary_columns(raw: pa.StructArray, keys: _RowKeys, report: QuirkReport) -> list[pa.Array]:
    start, bad_start = _finite_or_null(raw.field("start_sec"))
    end, bad_end = _finite_or_null(raw.field("end_sec"))
    _count(report, "summary_bad_time", pc.or_(bad_start, bad_end), keys)
    text, empty = _text_or_null(raw.field("summary_text"))
    _count(report, "summary_empty_text", empty, keys)
    annotation_uid = raw.field("annotation_uid")
    _count(report, "summary_bad_annotation_uid", annotation_uid.is_null(), keys)
    return [keys.video_uid, pa.array(keys.pass_no, pa.int8()), start, end, text, annotation_uid]


def tag_columns(text: pa.Array) -> tuple[pa.Array, pa.Array]:
    """The ``tag`` and ``unsure`` columns of narration texts (null text: "none", False)."""
    summary = pc.fill_null(pc.match_substring_regex(text, SUMMARY_PATTERN), False)
    leading = pc.struct_field(pc.extract_regex(text, LEADING_CO_PATTERN), "co")
    n_unsure = pc.fill_null(pc.count_substring_regex(text, UNSURE_PATTERN), 0)
    unsure = pc.greater(n_unsure, 0)
    # "#unsure is the only tag": the tag count is needed only where #unsure occurs (rare)
    rows = np.flatnonzero(unsure.to_numpy(zero_copy_only=False))
    only_unsure = np.zeros(len(text), dtype=bool)
    if len(rows):
        n_tags = pc.count_substring_regex(text.take(rows), TAG_PATTERN)
        only_unsure[rows] = pc.equal(n_tags, n_unsure.take(rows)).to_numpy(zero_copy_only=False)
    co = pc.if_else(pc.equal(pc.utf8_upper(leading), "C"), "#C", "#O")
    tag = pc.if_else(
        summary,
        "#summary",
        pc.if_else(pc.is_valid(leading), co, pc.if_else(pa.array(only_unsure), "#unsure", "none")),
    )
    return tag, unsure
