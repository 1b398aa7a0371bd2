"""EgoClip: the narration window rule and the ``egoclip.csv`` table.

Window rule (EgoVLP, "contextual variable-length clip pairing"): a narration at time ``t`` of video ``i`` gets
``[t - beta_i / (2 alpha), t + beta_i / (2 alpha)]`` where ``beta_i`` is the mean gap between consecutive
narrations of the video and ``alpha`` the mean of all ``beta_i``. Choices the sources leave open (recorded in
the README): ``beta`` is computed per (video, pass) on time-sorted timestamps; a pass with a single narration
(no gap) takes ``beta = alpha``; windows are clamped to ``[0, duration]`` when a duration is known.
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from egonlq.data.tables import EGOCLIP
from egonlq.errors import InputError
from egonlq.io import existing_file, write_parquet, write_parquet_stream

logger = logging.getLogger(__name__)


def mean_gaps(timestamps: Mapping[object, np.ndarray]) -> dict[object, float]:
    """``beta`` per group: the mean gap between consecutive sorted timestamps (NaN for fewer than 2)."""
    betas: dict[object, float] = {}
    for key, ts in timestamps.items():
        ts = np.sort(np.asarray(ts, dtype=np.float64))
        betas[key] = float(np.mean(np.diff(ts))) if len(ts) >= 2 else float("nan")
    return betas


def alpha_of(betas: Mapping[object, float]) -> float:
    """``alpha``: the mean of all defined ``beta`` values."""
    values = np.array([b for b in betas.values() if np.isfinite(b)], dtype=np.float64)
    if len(values) == 0:
        raise ValueError("cannot compute alpha: no group has two or more narrations")
    return float(values.mean())


def egoclip_windows(
    t: np.ndarray,
    beta: np.ndarray | float,
    alpha: float,
    *,
    duration: np.ndarray | float | None = None,
    scale: float = 1.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Windows ``t -/+ scale * beta / (2 alpha)``; undefined ``beta`` falls back to ``alpha``.

    ``scale`` widens the windows (1.0 is the EgoClip rule); ``duration`` clamps them to the video.
    """
    t = np.asarray(t, dtype=np.float64)
    beta = np.broadcast_to(np.asarray(beta, dtype=np.float64), t.shape)
    beta = np.where(np.isfinite(beta), beta, alpha)
    half = scale * beta / (2.0 * alpha)
    start, end = t - half, t + half
    if duration is not None:
        start = np.clip(start, 0.0, duration)
        end = np.clip(end, 0.0, duration)
    return start, end


# A number field: digits with an optional sign, point and exponent ("nan", "inf", "" and "abc" are not).
_INTEGER = r"^[+-]?[0-9]+$"
_DECIMAL = r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$"
MALFORMED_EXAMPLES = 5


def read_egoclip_csv(path: Path) -> tuple[pa.Table, dict]:
    """Read EgoVLP's tab-separated ``egoclip.csv`` into the EGOCLIP table.

    Malformed lines are skipped and counted, as EgoVLP's own loader does: a wrong number of columns, or a
    number column (times, durations, indices) that is not a finite decimal number (``abc``, ``nan``, ``inf``,
    empty). Rows whose window is inverted are dropped and counted. A missing column is an error naming it.
    Fields are read as EgoVLP's and NaQ's loader (pandas' ``read_csv(sep="\\t")``) reads them: one that starts
    with ``"`` is quoted (``""`` for a quote, tabs and line breaks inside are text, what follows the closing
    quote is joined to it), so a row may span lines, and a row shorter than the header is kept when it lacks
    only ``tag_verb`` / ``tag_noun`` (null here, NaN in pandas) or columns outside the table. Stats:
    ``rows_in``, ``malformed_lines``, ``malformed_examples`` (the first few, ``"line N: why"``, N the row's
    first line counted from 1 with the header), ``short_rows_kept``, ``bad_window``, ``rows_out``.

    The file is parsed straight into typed columns (:func:`_well_formed_tables`), records with the wrong
    number of fields skipped on the way; any doubt (a number the checks judge otherwise) sends it through
    the row-by-row checks (:func:`_read_checked`), which give the same rows and counts.
    """
    path = existing_file(path)
    fast = _read_well_formed(path)
    if fast is not None:
        table, rejects = fast
        malformed, examples, short_kept = len(rejects.malformed), rejects.examples(), rejects.short_kept
        rows_in = table.num_rows + malformed
    else:
        table, rows_in, malformed, examples, short_kept = _read_checked(path)
    table, bad_window = _drop_bad_windows(table)
    stats = _stats(path, rows_in, malformed, examples, short_kept, bad_window, table.num_rows)
    return table, stats


def write_egoclip_parquet(
    path: Path, out: Path, *, rows_per_group: int = 1 << 18, block_size: int = 1 << 22
) -> dict:
    """:func:`read_egoclip_csv` written to the parquet table ``out`` (atomically); returns its stats.

    The file streams: Arrow parses blocks while the parquet writer encodes the rows parsed before on the
    other core (:func:`egonlq.io.write_parquet_stream`), in row groups of about ``rows_per_group`` rows
    (parsed ``block_size`` bytes of csv at a time), and the whole file is never held in memory. Records
    with the wrong number of fields are skipped and counted on the way (:func:`_well_formed_tables`). A
    doubt found part way through drops what was written and reads the file again through the row-by-row
    checks.
    """
    path = existing_file(path)
    counts = {"rows_in": 0, "bad_window": 0}
    rejects = _Rejects()

    def groups() -> Iterator[pa.Table]:
        pending: list[pa.Table] = []
        for table in _well_formed_tables(path, block_size, rejects=rejects):
            pending.append(table)
            counts["rows_in"] += table.num_rows
            if sum(t.num_rows for t in pending) >= rows_per_group:
                yield from _kept(pending, counts)
                pending = []
        yield from _kept(pending, counts)

    try:
        rows_out = write_parquet_stream(groups(), out, EGOCLIP)
        malformed = len(rejects.malformed)
        rows_in = counts["rows_in"] + malformed
        return _stats(
            path, rows_in, malformed, rejects.examples(), rejects.short_kept, counts["bad_window"], rows_out
        )
    except _Doubtful:
        table, rows_in, malformed, examples, short_kept = _read_checked(path)
        table, bad_window = _drop_bad_windows(table)
        write_parquet(table, out, EGOCLIP)
        return _stats(path, rows_in, malformed, examples, short_kept, bad_window, table.num_rows)


def _kept(tables: list[pa.Table], counts: dict[str, int]) -> Iterator[pa.Table]:
    """The rows of ``tables`` with a valid window, as one table (none when there are no rows)."""
    if tables:
        table, bad = _drop_bad_windows(pa.concat_tables(tables))
        counts["bad_window"] += bad
        if table.num_rows:
            yield table


def _drop_bad_windows(table: pa.Table) -> tuple[pa.Table, int]:
    """The rows whose window is finite and not inverted, and how many were dropped."""
    start, end = table["clip_start"], table["clip_end"]
    window_ok = pc.and_(pc.and_(pc.is_finite(start), pc.is_finite(end)), pc.greater_equal(end, start))
    n_ok = pc.sum(window_ok).as_py() or 0
    if n_ok < table.num_rows:  # filtering copies every column: only when a row goes
        table = table.filter(window_ok)
    return table, len(window_ok) - n_ok


def _stats(
    path: Path,
    rows_in: int,
    malformed: int,
    examples: list[str],
    short_kept: int,
    bad_window: int,
    rows_out: int,
) -> dict:
    if malformed:
        logger.warning("%s: %d malformed lines skipped, first: %s", path.name, malformed, "; ".join(examples))
    if short_kept:
        logger.warning("%s: %d short rows kept (they lack only tags or other columns)", path.name, short_kept)
    return {
        "rows_in": rows_in,
        "malformed_lines": malformed,
        "malformed_examples": examples,
        "short_rows_kept": short_kept,
        "bad_window": bad_window,
        "rows_out": rows_out,
    }


def _parse_options(on_invalid) -> pacsv.ParseOptions:
    """Tab-separated, quoted as pandas' ``read_csv`` reads it (EgoVLP's and NaQ's loaders): a field that
    starts with ``"`` ends at the next lone ``"``, ``""`` inside stands for ``"``, it may hold tabs and line
    breaks, and text after its closing quote is joined to it. Empty lines are kept: they have the wrong
    column count, so they are counted."""
    return pacsv.ParseOptions(
        delimiter="\t",
        quote_char='"',
        double_quote=True,
        newlines_in_values=True,
        invalid_row_handler=on_invalid,
        ignore_empty_lines=False,
    )


class _Doubtful(Exception):
    """A line the typed read cannot vouch for: the file goes through the line-by-line checks."""


def _read_well_formed(path: Path) -> tuple[pa.Table, _Rejects] | None:
    """The EGOCLIP table of the fast read and what it skipped, or None when it had a doubt."""
    rejects = _Rejects()
    try:
        return pa.concat_tables(_well_formed_tables(path, rejects=rejects)).combine_chunks(), rejects
    except _Doubtful:
        return None


class _Rejects:
    """What the fast read skipped: the records Arrow could not read as rows (in file order), how many short
    ones it put back (:func:`_short_row_fields`), and whether any value or record spans lines (record
    numbers are then not line numbers)."""

    def __init__(self) -> None:
        self.malformed: list[_Skipped] = []
        self.short_kept = 0
        self.multiline = False

    def examples(self) -> list[str]:
        return [f"line {r.number}: {r.why}" for r in self.malformed[:MALFORMED_EXAMPLES]]


def _well_formed_tables(
    path: Path, block_size: int = 1 << 22, *, rejects: _Rejects | None = None
) -> Iterator[pa.Table]:
    """The EGOCLIP rows of ``path``, typed, one parsed block (``block_size`` bytes of csv) at a time.

    A record with the wrong number of fields is skipped and kept in ``rejects`` with its line number (Arrow
    parses on one thread, in file order: its records are numbered; the parquet writer uses the other core),
    unless it is a short row that lacks only optional fields, which is put back in its place. Raises
    :class:`_Doubtful` at the first thing the row-by-row checks (:func:`_read_checked`) might judge otherwise,
    possibly after some blocks were yielded: a number Arrow takes that the checks refuse (NaN and infinities
    in float columns, hexadecimal ``0x10`` in integer columns, read as text for that reason and cast here)
    or cannot convert, a short row whose numbers are not, and skipped records when some value or record
    spans lines (their line numbers would need the checks' count). A block always comes, empty for a file of
    no rows.
    """
    rejects = _Rejects() if rejects is None else rejects
    names = _header(path)
    pending: list[int] = []  # the numbers of the skipped records not yet placed, in order
    short: dict[int, list[str]] = {}

    def on_invalid(row: pacsv.InvalidRow) -> str:
        pending.append(row.number)
        fields = _short_row_fields(row.text, row.actual_columns, names)
        if fields is not None:
            short[row.number] = fields
        else:
            why = f"{row.actual_columns} columns instead of {row.expected_columns}"
            span = 1 + row.text.count("\n")
            rejects.malformed.append(_Skipped(row.number, span, why, row.text, row.actual_columns))
            rejects.multiline |= span > 1
        return "skip"

    integers = [f.name for f in EGOCLIP if pa.types.is_integer(f.type)]
    floats = [f.name for f in EGOCLIP if pa.types.is_floating(f.type)]
    texts = [f.name for f in EGOCLIP if pa.types.is_string(f.type)]
    types = {f.name: pa.string() if f.name in integers else f.type for f in EGOCLIP}
    cursor = 2  # the number of the next record (the header is record 1)

    def placed(table: pa.Table) -> pa.Table:
        """``table`` (the next rows read) with the short rows among the records it spans put back."""
        nonlocal cursor
        # the table's n rows and the first k skipped records are the records cursor .. cursor + n + k - 1; a
        # skipped record right after the last row is taken too (the last ones of the file: with no row)
        n, k = table.num_rows, 0
        while k < len(pending) and pending[k] <= cursor + n + k:
            k += 1
        skipped, back = pending[:k], [number for number in pending[:k] if number in short]
        del pending[:k]
        if back:
            rows = np.setdiff1d(np.arange(cursor, cursor + n + k), skipped)
            order = np.argsort(np.concatenate([rows, back]), kind="stable")
            extra = _short_rows([short.pop(number) for number in back], names, table.schema)
            table = pa.concat_tables([table, extra]).take(pa.array(order))
            rejects.short_kept += len(back)
        cursor += n + k
        return table

    try:
        reader = pacsv.open_csv(
            path,
            read_options=pacsv.ReadOptions(use_threads=False, block_size=block_size),
            parse_options=_parse_options(on_invalid),
            # only the table's columns: another column of the file is never typed (the streaming reader would
            # infer its type from the first block, and a later block could then fail to convert)
            convert_options=pacsv.ConvertOptions(
                column_types=types, null_values=[], strings_can_be_null=False, include_columns=EGOCLIP.names
            ),
        )  # a missing column raises ArrowKeyError here: the checks then name it
        yielded = False
        for batch in reader:
            table = pa.Table.from_batches([batch]).select(EGOCLIP.names)
            if any(_has_hex_marker(chunk) for name in integers for chunk in table[name].chunks):
                raise _Doubtful
            table = placed(table)  # short rows included: their text may span lines too
            rejects.multiline |= any(_has_line_break(chunk) for name in texts for chunk in table[name].chunks)
            table = table.cast(EGOCLIP)
            if not all(pc.all(pc.is_finite(table[name])).as_py() for name in floats):
                raise _Doubtful
            yielded = True
            yield table
        if pending:  # skipped records after the last row read
            table = placed(pa.table({n: pa.array([], t) for n, t in types.items()}))
            rejects.multiline |= any(_has_line_break(chunk) for name in texts for chunk in table[name].chunks)
            table = table.cast(EGOCLIP)
            if table.num_rows:
                yielded = True
                yield table
        if rejects.malformed and rejects.multiline:
            raise _Doubtful
        if not yielded:
            yield EGOCLIP.empty_table()
    except pa.ArrowKeyError as e:  # a column of the table absent from the header
        raise _Doubtful from e
    except pa.ArrowInvalid as e:  # a number Arrow cannot read, or too large for its type
        raise _Doubtful from e


def _header(path: Path) -> list[str]:
    """The column names of the csv's first record, as Arrow reads them (a UTF-8 byte order mark dropped)."""
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            return next(csv.reader(f, delimiter="\t", quotechar='"'), [])
    except UnicodeDecodeError as e:
        where = f"byte {e.object[e.start : e.start + 1]!r} at offset {e.start}"  # in the first block read
        raise InputError(path, f"not UTF-8 text ({where})", expected="a UTF-8 tab-separated file") from e


def _short_table(rows: list[list[str]], names: list[str]) -> pa.Table:
    """Short rows (their fields, in the file's column order ``names``) as text columns of the table, the
    fields they lack null."""
    columns = {}
    for name in EGOCLIP.names:
        i = names.index(name)
        columns[name] = pa.array([r[i] if i < len(r) else None for r in rows], pa.string())
    return pa.table(columns)


def _short_rows(rows: list[list[str]], names: list[str], schema: pa.Schema) -> pa.Table:
    """:func:`_short_table` cast to ``schema``; raises :class:`_Doubtful` when a number field is not one the
    checks accept (the checks then report it)."""
    table = _short_table(rows, names)
    for field in EGOCLIP:
        if pa.types.is_integer(field.type) or pa.types.is_floating(field.type):
            pattern = _INTEGER if pa.types.is_integer(field.type) else _DECIMAL
            if not pc.all(pc.match_substring_regex(table[field.name], pattern)).as_py():
                raise _Doubtful
    return table.select(schema.names).cast(schema)


def _has_line_break(strings: pa.Array) -> bool:
    """Whether any value of a string array holds a line break (only a quoted field can)."""
    data = strings.buffers()[2]
    return data is not None and bool((np.frombuffer(data, dtype=np.uint8) == ord("\n")).any())


def _has_hex_marker(strings: pa.Array) -> bool:
    """Whether any value of a string array holds an ``x`` or ``X`` (Arrow reads ``0x10`` as 16).

    One pass over the array's character buffer (~10 ms for an EgoClip column, against ~0.4 s for
    ``match_substring``); bytes past the last value, if any, can only cause a needless slow path.
    """
    data = strings.buffers()[2]
    if data is None:
        return False
    chars = np.frombuffer(data, dtype=np.uint8)
    return bool(((chars | 0x20) == ord("x")).any())


class _Skipped(NamedTuple):
    """A record Arrow could not read as a row: its number (the header is record 1), the lines it spans, why,
    its text and how many fields it has."""

    number: int
    span: int
    why: str
    text: str
    fields: int


def _first_lines(spans: np.ndarray, skipped: list[_Skipped]) -> tuple[np.ndarray, np.ndarray]:
    """The first line in the file of each row read (``spans``: the lines of each, in order) and of each
    skipped record: a record's first line follows from the lines of all records before it."""
    n = len(spans) + len(skipped)
    skipped_at = np.array([record.number for record in skipped], dtype=np.int64) - 2
    read_at = np.setdiff1d(np.arange(n), skipped_at)  # records in order; the skipped ones taken out
    every = np.ones(n, dtype=np.int64)
    every[skipped_at] = [record.span for record in skipped]
    every[read_at] = spans
    first = 2 + np.concatenate([[0], np.cumsum(every)[:-1]])
    return first[read_at], first[skipped_at]


def _short_row_fields(text: str, fields: int, names: list[str]) -> list[str] | None:
    """The fields of a record of ``fields`` fields (its ``text``) when it is a short row to keep, else None.

    ``names``: the header's columns in file order. A record qualifies when every column past its last field
    is ``tag_verb``, ``tag_noun`` or a column outside the table, as pandas' ``read_csv`` keeps a short row
    (its missing fields NaN). A short record missing a time or the text stays malformed (pandas would give
    NaN times, which NaQ's script would write out as queries).
    """
    optional = {f.name for f in EGOCLIP if f.nullable} | (set(names) - set(EGOCLIP.names))
    if fields >= len(names) or not set(names[fields:]) <= optional:
        return None
    split = next(csv.reader(io.StringIO(text), delimiter="\t", quotechar='"'), [])
    return split if len(split) == fields else None  # split as Arrow split it


def _with_short_rows(
    table: pa.Table, spans: np.ndarray, skipped: list[_Skipped], names: list[str]
) -> tuple[pa.Table, np.ndarray, list[_Skipped], int]:
    """``table`` with the short records to keep (:func:`_short_row_fields`) put back in file order, tags
    null; the rest of ``skipped``. ``names``: the header's columns in file order."""
    kept: list[tuple[_Skipped, list[str]]] = []
    for record in skipped:
        fields = _short_row_fields(record.text, record.fields, names)
        if fields is not None:
            kept.append((record, fields))
    if not kept:
        return table, spans, skipped, 0
    extra = _short_table([fields for _, fields in kept], names)
    numbers = np.array([record.number for record in skipped], dtype=np.int64)
    read_numbers = np.setdiff1d(np.arange(2, table.num_rows + len(skipped) + 2), numbers)
    kept_numbers = np.array([record.number for record, _ in kept], dtype=np.int64)
    order = np.argsort(np.concatenate([read_numbers, kept_numbers]), kind="stable")
    table = pa.concat_tables([table, extra]).take(pa.array(order))
    spans = np.concatenate([spans, [record.span for record, _ in kept]])[order]
    taken = set(kept_numbers.tolist())
    rest = [record for record in skipped if record.number not in taken]
    return table, spans, rest, len(kept)


def _read_checked(path: Path) -> tuple[pa.Table, int, int, list[str], int]:
    """The EGOCLIP rows of ``path`` read as text and checked row by row, fields quoted as pandas reads them.

    Returns the well-formed rows, the number of rows read, the number of malformed rows, the first few of
    them (``"line N: why"``, N the row's first line in the file: a quoted field may span lines) and the
    number of short rows kept (:func:`_with_short_rows`).
    """
    skipped: list[_Skipped] = []

    def on_invalid(row: pacsv.InvalidRow) -> str:
        why = f"{row.actual_columns} columns instead of {row.expected_columns}"
        skipped.append(_Skipped(row.number, 1 + row.text.count("\n"), why, row.text, row.actual_columns))
        return "skip"

    try:
        table = pacsv.read_csv(
            path,
            # one thread: invalid rows then carry their record number
            read_options=pacsv.ReadOptions(use_threads=False),
            parse_options=_parse_options(on_invalid),
            convert_options=pacsv.ConvertOptions(
                column_types={f.name: pa.string() for f in EGOCLIP}, strings_can_be_null=False
            ),
        )
    except pa.ArrowInvalid as e:
        raise InputError(path, f"cannot parse as tab-separated EgoClip rows: {e}") from e
    missing = [f.name for f in EGOCLIP if f.name not in table.schema.names]
    if missing:
        raise InputError(path, "header lacks required columns", field=", ".join(missing))
    spans = np.ones(table.num_rows, dtype=np.int64)  # lines per row: one, plus quoted line breaks
    for column in table.columns:
        if pa.types.is_string(column.type):
            spans += pc.count_substring(column, "\n").to_numpy().astype(np.int64)
    names = table.schema.names
    table, spans, skipped, short_kept = _with_short_rows(table.select(EGOCLIP.names), spans, skipped, names)
    lines, skipped_lines = _first_lines(spans, skipped)

    ok = np.ones(table.num_rows, dtype=bool)
    why = np.full(table.num_rows, "", dtype=object)
    for field in EGOCLIP:
        if not (pa.types.is_integer(field.type) or pa.types.is_floating(field.type)):
            continue
        pattern = _INTEGER if pa.types.is_integer(field.type) else _DECIMAL
        bad = ~pc.match_substring_regex(table[field.name], pattern).to_numpy(zero_copy_only=False)
        for row in np.flatnonzero(bad & ok)[:MALFORMED_EXAMPLES]:
            why[row] = f"{field.name}={table[field.name][int(row)].as_py()!r} is not a number"
        ok &= ~bad
    malformed = [(int(line), record.why) for line, record in zip(skipped_lines, skipped, strict=True)]
    malformed += [(int(lines[r]), why[r]) for r in np.flatnonzero(~ok)[:MALFORMED_EXAMPLES]]
    malformed.sort()
    try:
        table = table.filter(pa.array(ok)).cast(EGOCLIP)
    except pa.ArrowInvalid as e:  # e.g. an index beyond int64
        raise InputError(path, f"a number column does not fit its type: {e}") from e
    examples = [f"line {n}: {reason}" for n, reason in malformed[:MALFORMED_EXAMPLES]]
    return table, len(lines) + len(skipped), len(skipped) + int((~ok).sum()), examples, short_kept
