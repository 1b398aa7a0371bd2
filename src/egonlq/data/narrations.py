"""Streaming ingest of Ego4D ``narration.json`` into the NARRATIONS and SUMMARIES tables.

The real file holds ~3.85M sentences (hundreds of MB), so it is never loaded whole: the top-level object is
read one video at a time (:class:`JsonObjectStream`, over a buffered read) and the videos go in batches of
~16M characters to a reader thread. Arrow's JSON reader turns a batch into columns in C, on all cores and
without the GIL (:func:`_read_with_arrow`); a batch it cannot read exactly as the ``json`` module would goes
through orjson and Python instead (:func:`_read_in_python`). When the stream's guess of where a video ends
turns out wrong, or the file is malformed, the file is read a second time with every value parsed as it is
read (the exact path: its values and errors are the reference). The columns (null-outs, tags, counts) are
computed with vectorised Arrow kernels per row group, in a writer thread. Peak memory is a few batches, the
read buffer and a few row groups.

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
import io
import json
import logging
import re
import string
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path
from typing import NoReturn, TextIO

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj
import pyarrow.parquet as pq

from egonlq.data.tables import NARRATIONS, SUMMARIES
from egonlq.data.validation import QuirkReport, is_number
from egonlq.errors import InputError
from egonlq.io import atomic_path, existing_file, parquet_options, too_deep_message
from egonlq.progress import tqdm
from egonlq.timegrid import CANONICAL_FPS

logger = logging.getLogger(__name__)

CHUNK_CHARS = 1 << 21
BATCH_CHARS = 1 << 24  # characters of the videos read together (Arrow splits them over the cores)
ROWS_PER_GROUP = 1 << 17
MAX_PENDING_BATCHES = 2  # batches being read, ahead of the stream (bounds memory)
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


def _byte_class(chars: str) -> np.ndarray:
    """A lookup table of the 256 byte values: True for the (ASCII) ``chars``."""
    table = np.zeros(256, dtype=bool)
    table[list(chars.encode("ascii"))] = True
    return table


# Byte classes of the prefilters that spare most rows the patterns: ``\\w`` (ASCII in RE2 and re.ASCII), _WS
_WORD_BYTES = _byte_class(string.ascii_letters + string.digits + "_")
_SPACE_BYTES = _byte_class(" \t\n\r\f\v")
_CO_BYTES = _byte_class("CcOo")
_TAG_NAMES = pa.array(["none", "#C", "#O", "#unsure", "#summary"])
_TAG_NONE, _TAG_C, _TAG_O, _TAG_UNSURE, _TAG_SUMMARY = range(len(_TAG_NAMES))

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
    metadata. Raises :class:`~egonlq.errors.InputError` on malformed JSON (with file and position): the fast
    pass gives up on any doubt (:class:`_Unsure`) and the exact pass, which reads the file again, decides.
    """
    path = existing_file(path)
    args = (path, narrations_out, summaries_out, known_videos, rows_per_group, chunk_chars)
    try:
        return _ingest(*args, fast=True)
    except _Unsure as e:
        logger.info("%s: read again value by value (%s)", path.name, e)
        return _ingest(*args, fast=False)


class _Unsure(Exception):
    """The fast pass cannot tell that it reads the file as the exact pass would (a wrong guess of where a
    video ends, or a malformed file): the exact pass must read it."""


def _ingest(
    path: Path,
    narrations_out: Path,
    summaries_out: Path,
    known_videos: set[str] | None,
    rows_per_group: int,
    chunk_chars: int,
    *,
    fast: bool,
) -> QuirkReport:
    """One pass over the file: batches of videos are read by one thread (:func:`_read_batch`) while the stream
    goes on, and row groups are built and written by another (Arrow kernels and parquet encoding release the
    GIL); quirk counts are merged in file order. ``fast``: videos come as text (:class:`RawJson`), and any
    error of the stream is a doubt."""
    report = QuirkReport()
    n_videos = 0
    with (
        atomic_path(narrations_out) as narrations_tmp,
        atomic_path(summaries_out) as summaries_tmp,
        pq.ParquetWriter(narrations_tmp, NARRATIONS, **parquet_options(NARRATIONS)) as narrations_writer,
        pq.ParquetWriter(summaries_tmp, SUMMARIES, **parquet_options(SUMMARIES)) as summaries_writer,
        open(path, encoding="utf-8", newline="") as f,
        tqdm(total=path.stat().st_size, unit="B", unit_scale=True, desc="narrations", disable=None) as bar,
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="narration-batches") as reader,
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="narration-row-groups") as worker,
    ):
        outputs = (
            _RowGroups("narration", NARRATIONS, _narration_columns, narrations_writer),
            _RowGroups("summary", SUMMARIES, _summary_columns, summaries_writer),
        )
        batches: deque[Future[_Batch]] = deque()
        jobs: deque[Future[QuirkReport]] = deque()

        def write(job: Callable[[], QuirkReport] | None) -> None:
            if job is not None:
                jobs.append(worker.submit(job))
            while len(jobs) > MAX_PENDING_GROUPS:
                report.merge(jobs.popleft().result())

        def take(batch: _Batch) -> None:
            report.merge(batch.report)
            for output, rows, per_video in zip(outputs, batch.rows, batch.per_video, strict=True):
                for job in output.add(rows, per_video, rows_per_group):
                    write(job)

        def read(video_uids: list[str], values: list) -> None:
            if values:
                batches.append(reader.submit(_read_batch, video_uids, values, known_videos))
            while len(batches) > MAX_PENDING_BATCHES:
                take(batches.popleft().result())

        stream = JsonObjectStream(f, path, chunk_chars=chunk_chars, progress=bar.update, raw_objects=fast)
        video_uids, values, batch_start = [], [], 0
        try:
            for video_uid, value in stream:
                n_videos += 1
                if values and isinstance(value, RawJson) != isinstance(values[-1], RawJson):
                    read(video_uids, values)  # a batch takes one route
                    video_uids, values, batch_start = [], [], stream.position
                video_uids.append(video_uid)
                values.append(value)
                if stream.position - batch_start >= BATCH_CHARS:
                    read(video_uids, values)
                    video_uids, values, batch_start = [], [], stream.position
        except InputError as e:
            if fast:
                raise _Unsure(str(e)) from e
            raise
        read(video_uids, values)
        while batches:
            take(batches.popleft().result())
        for output in outputs:
            write(output.take_row_group())
        while jobs:
            report.merge(jobs.popleft().result())
    logger.info(
        "%s: %d videos, %d narrations, %d summaries, quirks %s",
        path.name,
        n_videos,
        outputs[0].rows_written,
        outputs[1].rows_written,
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

    With ``raw_objects``, an object value whose end can be guessed comes back undecoded, as :class:`RawJson`
    (its text), for the caller to decode in bulk; the stream reads on as if the guess were right.
    """

    def __init__(
        self,
        f: TextIO,
        path: Path,
        *,
        chunk_chars: int = CHUNK_CHARS,
        progress=None,
        raw_objects: bool = False,
    ) -> None:
        self.f = f
        self.path = path
        self.chunk_chars = chunk_chars
        self.progress = progress
        self.raw_objects = raw_objects
        self.buf = ""
        self.pos = 0
        self.offset = 0  # characters of the file before buf[0]
        self.eof = False
        self.decoder = json.JSONDecoder()

    @property
    def position(self) -> int:
        """Characters of the file read so far."""
        return self.offset + self.pos

    def __iter__(self) -> Iterator[tuple[str, object]]:
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
        as fast as the json module; that text itself with ``raw_objects``), the json module when there is no
        likely end or orjson refuses the text (which also covers NaN, lone surrogates and errors, reported as
        the json module reports them)."""
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
            if end is not None and self.raw_objects:
                return RawJson(self.buf[start : end.end()]), end.end()
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


@dataclass(frozen=True)
class RawJson:
    """The text of an object value, undecoded (``JsonObjectStream(raw_objects=True)``).

    Its end is the stream's guess: the text is the whole value only if it parses whole (a JSON value is never
    a proper prefix of another), and then the stream read on from the right place.
    """

    text: str


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


# ---------------------------------------------------------------------------------------------- batches

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
# What pa.array raises for a value of the wrong JSON type, an integer beyond int64 or a lone surrogate
_REFUSED = (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError, UnicodeEncodeError)

# A video as Arrow's JSON reader reads it: the raw fields, and the one other field of the format (read and
# checked, then dropped). Any other field makes it refuse the batch: a field it skipped could hold what the
# json module refuses (``Inf``, nesting deeper than it decodes).
_ARROW_LISTS = {
    "narrations": (_NARRATION_RAW, pa.struct([*_NARRATION_RAW, ("_unmapped_timestamp_sec", pa.float64())])),
    "summaries": (_SUMMARY_RAW, _SUMMARY_RAW),
}
_ARROW_PASS = pa.struct([(key, pa.list_(read)) for key, (_, read) in _ARROW_LISTS.items()])
_ARROW_VIDEO = pa.schema([*((f"narration_pass_{p}", _ARROW_PASS) for p in PASSES), ("status", pa.string())])
_ARROW_PARSE = pj.ParseOptions(explicit_schema=_ARROW_VIDEO, unexpected_field_behavior="error")


@dataclass(frozen=True)
class _Rows:
    """Rows of one output table, in file order: the raw fields and what names each row."""

    raw: pa.StructArray
    video_uid: pa.Array
    pass_no: np.ndarray
    idx: np.ndarray  # position in the pass's list

    def __len__(self) -> int:
        return len(self.raw)

    def slice(self, start: int, stop: int) -> _Rows:
        n = stop - start
        return _Rows(
            self.raw.slice(start, n),
            self.video_uid.slice(start, n),
            self.pass_no[start:stop],
            self.idx[start:stop],
        )


@dataclass(frozen=True)
class _Batch:
    """What a batch of videos holds for the output tables, with its per-video and conversion quirk counts."""

    rows: tuple[_Rows, _Rows]  # narrations, summaries
    per_video: tuple[np.ndarray, np.ndarray]  # their rows from each video (a row group ends after a video)
    report: QuirkReport


def _read_batch(video_uids: list[str], values: list, known_videos: set[str] | None) -> _Batch:
    """A batch of videos, read in the reader thread: by Arrow when they come as text and Arrow reads them as
    the json module would, else decoded one by one and read in Python."""
    if isinstance(values[0], RawJson):
        texts = [value.text for value in values]
        batch = _read_with_arrow(video_uids, texts, known_videos)
        if batch is not None:
            return batch
        values = [_decode(text) for text in texts]
    return _read_in_python(video_uids, values, known_videos)


def _decode(text: str) -> object:
    """A video's text decoded as the stream decodes a value (orjson, else the json module), or
    :class:`_Unsure` when it does not decode whole: a wrong guess of where the video ends, or bad JSON."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        pass
    try:
        return json.loads(text)
    except (json.JSONDecodeError, RecursionError) as e:
        raise _Unsure(f"a video does not decode whole: {e}") from e


def _read_with_arrow(video_uids: list[str], texts: list[str], known_videos: set[str] | None) -> _Batch | None:
    """The videos (one a line) read by Arrow's JSON reader, or None where the result could differ from the
    json module's values.

    Arrow refuses invalid JSON, a value of another JSON type than the schema's (a bool, a string for a
    number...), an unknown field and a duplicate key. It reads NaN and infinities in more spellings than the
    json module (``Inf``, ``-NaN``) and ``-0`` as -0.0 (Python: the integer 0), and it reads a null as it
    reads a missing field: so a NaN, an infinity, a negative zero, a null entry, a null ``status`` and a null
    entry list in a pass leave the batch to Python.
    """
    data = "\n".join(texts).encode("utf-8")
    options = pj.ReadOptions(block_size=max(1 << 20, 4 * max(map(len, texts)) + 1))  # a line fits a block
    try:
        table = pj.read_json(io.BytesIO(data), read_options=options, parse_options=_ARROW_PARSE)
    except pa.ArrowInvalid:
        return None
    status = table.column("status").combine_chunks()
    if table.num_rows != len(texts) or status.null_count:  # more rows: a text held more than one value
        return None
    passes = [table.column(f"narration_pass_{p}").combine_chunks() for p in PASSES]
    rows, per_video = [], []
    for key, (raw_type, _) in _ARROW_LISTS.items():
        parts = [_arrow_entries(pass_value, key, raw_type) for pass_value in passes]
        if any(part is None for part in parts):
            return None
        table_rows, counts = _in_file_order(parts, video_uids)
        rows.append(table_rows)
        per_video.append(counts)
    report = QuirkReport()
    for video_uid, shown in zip(video_uids, status.to_pylist(), strict=True):
        _count_video(video_uid, shown, report, known_videos)
    return _Batch(tuple(rows), tuple(per_video), report)


def _arrow_entries(
    pass_value: pa.StructArray, key: str, raw_type: pa.StructType
) -> tuple[pa.StructArray, np.ndarray] | None:
    """The entries of one list of a pass, of every video (``raw_type``), and how many each video has; None
    for a null list in a pass, a null entry or a float that is not finite or is a negative zero."""
    lists = pass_value.flatten()[pass_value.type.get_field_index(key)]  # null where the pass is
    if pc.any(pc.and_(pass_value.is_valid(), lists.is_null())).as_py():
        return None
    entries = lists.flatten()
    if entries.null_count:
        return None
    fields = entries.flatten()
    for f, values in zip(entries.type, fields, strict=True):
        if pa.types.is_floating(f.type):
            x = pc.fill_null(values, 0.0).to_numpy()
            if not np.isfinite(x).all() or np.signbit(x[x == 0]).any():
                return None
    counts = pc.fill_null(pc.list_value_length(lists), 0).to_numpy()
    return pa.StructArray.from_arrays(fields[: raw_type.num_fields], fields=list(raw_type)), counts


def _in_file_order(
    parts: list[tuple[pa.StructArray, np.ndarray]], video_uids: list[str]
) -> tuple[_Rows, np.ndarray]:
    """Per-pass entries (each in video order) as one table's rows in file order (by video, then pass), and
    the rows of each video."""
    counts = np.stack([c for _, c in parts], axis=1)  # videos x passes
    pass_start = np.cumsum(counts.sum(axis=0)) - counts.sum(axis=0)
    source_start = (np.cumsum(counts, axis=0) - counts + pass_start).ravel()  # by video, then pass
    lengths = counts.ravel()
    start = np.cumsum(lengths) - lengths
    order = np.repeat(source_start - start, lengths) + np.arange(lengths.sum())
    raw = pa.concat_arrays([entries for entries, _ in parts]).take(order)
    video = np.repeat(np.arange(len(video_uids)).repeat(len(PASSES)), lengths)
    rows = _Rows(
        raw,
        pa.array(video_uids, pa.string()).take(video),
        np.repeat(np.tile(np.asarray(PASSES, dtype=np.int8), len(video_uids)), lengths),
        (np.arange(len(raw)) - np.repeat(start, lengths)).astype(np.int32),
    )
    return rows, counts.sum(axis=1)


def _read_in_python(video_uids: list[str], values: list, known_videos: set[str] | None) -> _Batch:
    """The videos (decoded values) read in Python, entry lists converted by :func:`_to_struct`."""
    report = QuirkReport()
    tables = (
        _Entries("narration", "narrations", _NARRATION_RAW),
        _Entries("summary", "summaries", _SUMMARY_RAW),
    )
    for video, (video_uid, value) in enumerate(zip(video_uids, values, strict=True)):
        _add_video(video, video_uid, value, tables, report, known_videos)
    found = [table.rows(video_uids, report) for table in tables]
    return _Batch(tuple(rows for rows, _ in found), tuple(counts for _, counts in found), report)


@dataclass
class _Entries:
    """The entry lists (as decoded) of one output table found in a batch, with their video and pass."""

    name: str  # "narration" or "summary": prefix of the report kinds
    list_key: str  # key of the entry list inside a pass
    raw_type: pa.StructType  # what is read from each entry
    lists: list[list] = field(default_factory=list)
    videos: list[int] = field(default_factory=list)
    passes: list[int] = field(default_factory=list)

    def add(self, video: int, pass_no: int, entries: list) -> None:
        self.lists.append(entries)
        self.videos.append(video)
        self.passes.append(pass_no)

    def rows(self, video_uids: list[str], report: QuirkReport) -> tuple[_Rows, np.ndarray]:
        """The entries as rows, and the rows of each video."""
        wheres = [
            f"video_uid={video_uids[v]}, pass={p}" for v, p in zip(self.videos, self.passes, strict=True)
        ]
        raw, counts, idx = _to_struct(self.lists, self.raw_type, report=report, name=self.name, wheres=wheres)
        video = np.repeat(np.asarray(self.videos, dtype=np.int64), counts)
        rows = _Rows(
            raw,
            pa.array(video_uids, pa.string()).take(video),
            np.repeat(np.asarray(self.passes, dtype=np.int8), counts),
            idx,
        )
        return rows, np.bincount(video, minlength=len(video_uids))


def _add_video(
    video: int,
    video_uid: str,
    value: object,
    tables: tuple[_Entries, _Entries],
    report: QuirkReport,
    known_videos: set[str] | None,
) -> None:
    record = f"video_uid={video_uid}"
    if not isinstance(value, dict):
        report.add("narration_video_not_object", f"{record}: {type(value).__name__}")
        return
    status = value.get("status", _MISSING)
    if status is _MISSING or isinstance(status, dict | list):  # a container is named, never printed
        shown = "<missing>" if status is _MISSING else f"<{type(status).__name__}>"
    else:
        shown = status if isinstance(status, str) else json.dumps(status)
    _count_video(video_uid, shown, report, known_videos)
    for pass_no in PASSES:
        pass_value = value.get(f"narration_pass_{pass_no}")
        if pass_value is None:
            continue
        if not isinstance(pass_value, dict):
            report.add("narration_pass_not_object", f"{record}, pass={pass_no}: {type(pass_value).__name__}")
            continue
        for table in tables:
            entries = pass_value.get(table.list_key, [])
            if not isinstance(entries, list):
                report.add(
                    f"{table.name}_list_not_list", f"{record}, pass={pass_no}: {type(entries).__name__}"
                )
            elif entries:
                table.add(video, pass_no, entries)


def _count_video(video_uid: str, status: str, report: QuirkReport, known_videos: set[str] | None) -> None:
    """The per-video kinds of a video object: unknown to the metadata, and its ``status`` (as shown)."""
    record = f"video_uid={video_uid}"
    if known_videos is not None and video_uid not in known_videos:
        report.add("narration_video_unknown", record)
    report.add(f"status:{status}", record)


def _to_struct(
    lists: list[list], raw_type: pa.StructType, *, report: QuirkReport, name: str, wheres: list[str]
) -> tuple[pa.StructArray, np.ndarray, np.ndarray]:
    """Entry lists as one Arrow struct array of ``raw_type``, the rows of each list and their positions in it.

    Fast path: all the entries at once, by Arrow in C (about twice as fast as field by field), when they are
    all objects (Arrow would also read null, and a list of pairs, as a row) and Arrow accepts every value: it
    refuses a value of the wrong JSON type (a string in a float field, a number in a string field, a
    container), an integer beyond int64 and a lone surrogate. Otherwise the lists are converted one by one
    and those Arrow refuses are checked in Python (:func:`_checked_rows`). Bools are set to null after
    (:func:`_null_bools`).
    """
    entries = list(chain.from_iterable(lists))
    if set(map(type, entries)) <= {dict}:
        try:
            raw = pa.array(entries, type=raw_type)
            counts = np.fromiter(map(len, lists), dtype=np.int64, count=len(lists))
            idx = np.arange(len(raw)) - np.repeat(np.cumsum(counts) - counts, counts)
            return _null_bools(raw, entries), counts, idx.astype(np.int32)
        except _REFUSED:
            pass
    chunks, kept, indices = [], [], []
    for entries_of_list, where in zip(lists, wheres, strict=True):
        rows, idx = _checked_rows(entries_of_list, raw_type, report=report, name=name, where=where)
        chunks.append(pa.array(rows, type=raw_type))
        kept.extend(rows)
        indices.append(idx)
    raw = pa.concat_arrays(chunks)
    counts = np.fromiter(map(len, chunks), dtype=np.int64, count=len(chunks))
    return _null_bools(raw, kept), counts, np.concatenate(indices).astype(np.int32)


def _checked_rows(
    entries: list, raw_type: pa.StructType, *, report: QuirkReport, name: str, where: str
) -> tuple[list[dict], np.ndarray]:
    """The entries Arrow can convert (the list itself when it converts whole) and their positions.

    Otherwise, in Python: non-objects are dropped and counted, wrong-typed values become null, and strings
    with lone surrogates (not encodable as UTF-8) get U+FFFD and are counted as ``invalid_unicode``.
    """
    if set(map(type, entries)) == {dict}:
        try:
            pa.array(entries, type=raw_type)
            return entries, np.arange(len(entries), dtype=np.int32)
        except _REFUSED:
            pass
    floats = _float_fields(raw_type)
    rows, idx = [], []
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
        rows.append(row)
        idx.append(i)
    if len(idx) < len(entries):
        skipped = np.setdiff1d(np.arange(len(entries)), idx)
        report.add_many(f"{name}_not_object", (f"{where}, {name}_idx={i}" for i in skipped[:5]), len(skipped))
    return rows, np.asarray(idx, dtype=np.int32)


def _null_bools(raw: pa.StructArray, entries: list[dict]) -> pa.StructArray:
    """``raw`` (converted from ``entries``) with null where a float field held a JSON bool.

    Arrow reads true and false as 1.0 and 0.0; only rows holding 0 or 1 are looked up in Python.
    """
    columns = [raw.field(i) for i in range(raw.type.num_fields)]
    changed = False
    for i, f in enumerate(raw.type):
        if not pa.types.is_floating(f.type):
            continue
        values = columns[i].to_numpy(zero_copy_only=False)
        maybe = np.flatnonzero((values == 0) | (values == 1))
        bools = [r for r in maybe if type(entries[r].get(f.name)) is bool]
        if bools:
            mask = np.zeros(len(raw), dtype=bool)
            mask[bools] = True
            columns[i] = pc.if_else(mask, pa.scalar(None, f.type), columns[i])
            changed = True
    return pa.StructArray.from_arrays(columns, fields=list(raw.type)) if changed else raw


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


# ---------------------------------------------------------------------------------------------- row groups


@dataclass
class _RowGroups:
    """The rows of one output table waiting for their row group, in file order."""

    name: str  # "narration" or "summary": prefix of the report kinds
    schema: pa.Schema
    columns: Callable[[pa.StructArray, _RowKeys, QuirkReport], list[pa.Array]]  # raw -> schema columns
    writer: pq.ParquetWriter
    pending: list[_Rows] = field(default_factory=list)
    pending_rows: int = 0
    rows_written: int = 0

    def add(
        self, rows: _Rows, per_video: np.ndarray, rows_per_group: int
    ) -> Iterator[Callable[[], QuirkReport]]:
        """Queue a batch's rows; a row group ends after the video that brings it to ``rows_per_group`` rows
        (its job is yielded)."""
        start = 0
        for end in np.cumsum(per_video).tolist():
            if self.pending_rows + end - start >= rows_per_group:
                self._queue(rows.slice(start, end))
                start = end
                yield self.take_row_group()
        self._queue(rows.slice(start, len(rows)))

    def _queue(self, rows: _Rows) -> None:
        if len(rows):
            self.pending.append(rows)
            self.pending_rows += len(rows)

    def take_row_group(self) -> Callable[[], QuirkReport] | None:
        """The pending rows as a job that builds and writes one row group and returns its quirk counts."""
        if not self.pending:
            return None
        parts, self.pending, self.pending_rows = self.pending, [], 0

        def write() -> QuirkReport:
            report = QuirkReport()
            keys = _RowKeys(
                pa.concat_arrays([p.video_uid for p in parts]),
                np.concatenate([p.pass_no for p in parts]),
                np.concatenate([p.idx for p in parts]),
                self.name,
            )
            raw = pa.concat_arrays([p.raw for p in parts])
            table = pa.Table.from_arrays(self.columns(raw, keys, report), schema=self.schema)
            self.writer.write_table(table, row_group_size=len(table))
            self.rows_written += len(table)
            return report

        return write


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
    """``values`` with blank strings set to null, and the mask of rows that are null in the result.

    Only a value that is empty or starts with ASCII whitespace can be blank: the pattern runs on those alone.
    """
    lengths, (first,) = _string_heads(values, 1)
    bad = lengths == 0  # null or empty
    maybe = np.flatnonzero(_SPACE_BYTES[first] & ~bad)
    if len(maybe):
        blank = pc.match_substring_regex(values.take(maybe), BLANK_PATTERN)
        bad[maybe] = blank.to_numpy(zero_copy_only=False)
    mask = pa.array(bad)
    return pc.if_else(mask, pa.scalar(None, pa.string()), values), mask


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
    """The ``tag`` and ``unsure`` columns of narration texts (null text: "none", False).

    Most texts start with a whole ``#C`` or ``#O`` tag: their tag is read from their first three bytes, and
    the patterns (~0.1 µs a row each) run on the other rows only; ``#unsure`` is looked for only in the rows
    holding ``#u`` (either case), and the tags are counted only where it occurs.
    """
    lengths, (first, second, third) = _string_heads(text, 3)
    co_first = (lengths >= 2) & (first == ord("#")) & _CO_BYTES[second] & ~_WORD_BYTES[third]
    codes = np.where(co_first, np.where(second | 0x20 == ord("c"), _TAG_C, _TAG_O), _TAG_NONE).astype(np.int8)
    rest = np.flatnonzero(~co_first & (lengths > 0))
    if len(rest):
        others = text.take(rest)
        summary = pc.fill_null(pc.match_substring_regex(others, SUMMARY_PATTERN), False)
        leading = pc.struct_field(pc.extract_regex(others, LEADING_CO_PATTERN), "co")
        co = pc.if_else(pc.equal(pc.utf8_upper(leading), "C"), _TAG_C, _TAG_O)
        code = pc.if_else(summary, _TAG_SUMMARY, pc.if_else(pc.is_valid(leading), co, _TAG_NONE))
        codes[rest] = code.to_numpy(zero_copy_only=False)

    unsure = np.zeros(len(text), dtype=bool)
    maybe = _rows_holding(text, "#u")
    if len(maybe):
        candidates = text.take(maybe)
        n_unsure = pc.fill_null(pc.count_substring_regex(candidates, UNSURE_PATTERN), 0).to_numpy()
        found = n_unsure > 0
        unsure[maybe] = found
        n_tags = pc.count_substring_regex(candidates.filter(found), TAG_PATTERN).to_numpy()
        only = maybe[found][n_tags == n_unsure[found]]  # "#unsure" is the only tag
        codes[only] = np.where(codes[only] == _TAG_NONE, _TAG_UNSURE, codes[only])
    return _TAG_NAMES.take(codes), pa.array(unsure)


def _string_buffers(strings: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """The offsets (one per value, then the end) and the character buffer of a string array."""
    _, offsets, chars = strings.buffers()
    offsets = np.frombuffer(offsets, dtype=np.int32, count=len(strings) + 1, offset=4 * strings.offset)
    return offsets, np.frombuffer(chars, dtype=np.uint8) if chars is not None else np.zeros(0, np.uint8)


def _string_heads(strings: pa.Array, n: int) -> tuple[np.ndarray, list[np.ndarray]]:
    """The byte length of each value of a string array (0 for null), and its first ``n`` bytes (0 past the
    end)."""
    offsets, chars = _string_buffers(strings)
    lengths = np.diff(offsets)
    if strings.null_count:
        lengths[~strings.is_valid().to_numpy(zero_copy_only=False)] = 0
    heads = []
    for k in range(n):
        head = np.zeros(len(strings), dtype=np.uint8)
        rows = lengths > k
        head[rows] = chars[offsets[:-1][rows] + k]
        heads.append(head)
    return lengths, heads


def _rows_holding(strings: pa.Array, pair: str) -> np.ndarray:
    """The rows (ascending) whose value may hold ``pair``'s first byte then its second in either case.

    One pass over the character buffer; a pair across two values, or in a null slot, only adds a row.
    """
    offsets, chars = _string_buffers(strings)
    span = chars[offsets[0] : offsets[-1]]
    at = np.flatnonzero((span[:-1] == ord(pair[0])) & (span[1:] | 0x20 == ord(pair[1].lower())))
    return np.unique(np.searchsorted(offsets, at + offsets[0], side="right") - 1)
