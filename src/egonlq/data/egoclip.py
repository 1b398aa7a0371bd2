"""EgoClip: the narration window rule and the ``egoclip.csv`` table.

Window rule (EgoVLP, "contextual variable-length clip pairing"): a narration at time ``t`` of video ``i`` gets
``[t - beta_i / (2 alpha), t + beta_i / (2 alpha)]`` where ``beta_i`` is the mean gap between consecutive
narrations of the video and ``alpha`` the mean of all ``beta_i``. Choices the sources leave open (recorded in
the README): ``beta`` is computed per (video, pass) on time-sorted timestamps; a pass with a single narration
(no gap) takes ``beta = alpha``; windows are clamped to ``[0, duration]`` when a duration is known.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from egonlq.data.tables import EGOCLIP
from egonlq.errors import InputError

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
    Stats: ``rows_in``, ``malformed_lines``, ``malformed_examples`` (the first few, ``"line N: why"``, lines
    counted from 1 with the header), ``bad_window``, ``rows_out``.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(path, "file not found")
    skipped: list[tuple[int, str]] = []

    def on_invalid(row: pacsv.InvalidRow) -> str:
        skipped.append((row.number, f"{row.actual_columns} columns instead of {row.expected_columns}"))
        return "skip"

    try:
        table = pacsv.read_csv(
            path,
            # one thread: invalid rows then carry their line number; every line is a row (no quoting)
            read_options=pacsv.ReadOptions(use_threads=False),
            parse_options=pacsv.ParseOptions(
                delimiter="\t", quote_char=False, invalid_row_handler=on_invalid, ignore_empty_lines=False
            ),
            convert_options=pacsv.ConvertOptions(
                column_types={f.name: pa.string() for f in EGOCLIP}, strings_can_be_null=False
            ),
        )
    except pa.ArrowInvalid as e:
        raise InputError(path, f"cannot parse as tab-separated EgoClip rows: {e}") from e
    missing = [f.name for f in EGOCLIP if f.name not in table.schema.names]
    if missing:
        raise InputError(path, "header lacks required columns", field=", ".join(missing))
    table = table.select(EGOCLIP.names)
    lines = np.arange(2, table.num_rows + len(skipped) + 2)
    lines = lines[~np.isin(lines, [n for n, _ in skipped])]  # the line of each row read

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
    malformed = sorted(skipped + [(int(lines[r]), why[r]) for r in np.flatnonzero(~ok)[:MALFORMED_EXAMPLES]])
    try:
        table = table.filter(pa.array(ok)).cast(EGOCLIP)
    except pa.ArrowInvalid as e:  # e.g. an index beyond int64
        raise InputError(path, f"a number column does not fit its type: {e}") from e
    start = table["clip_start"].to_numpy()
    end = table["clip_end"].to_numpy()
    window_ok = np.isfinite(start) & np.isfinite(end) & (end >= start)
    stats = {
        "rows_in": len(lines) + len(skipped),
        "malformed_lines": len(skipped) + int((~ok).sum()),
        "malformed_examples": [f"line {n}: {reason}" for n, reason in malformed[:MALFORMED_EXAMPLES]],
        "bad_window": int((~window_ok).sum()),
    }
    table = table.filter(pa.array(window_ok))
    stats["rows_out"] = table.num_rows
    if stats["malformed_lines"]:
        logger.warning(
            "%s: %d malformed lines skipped, first: %s",
            path.name,
            stats["malformed_lines"],
            "; ".join(stats["malformed_examples"]),
        )
    return table, stats
