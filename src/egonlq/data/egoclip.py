"""EgoClip: the narration window rule and the ``egoclip.csv`` table.

Window rule (EgoVLP, "contextual variable-length clip pairing"): a narration at time ``t`` of video ``i`` gets
``[t - beta_i / (2 alpha), t + beta_i / (2 alpha)]`` where ``beta_i`` is the mean gap between consecutive
narrations of the video and ``alpha`` the mean of all ``beta_i``. Choices the sources leave open (recorded in
the README): ``beta`` is computed per (video, pass) on time-sorted timestamps; a pass with a single narration
(no gap) takes ``beta = alpha``; windows are clamped to ``[0, duration]`` when a duration is known.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from egonlq.data.tables import EGOCLIP
from egonlq.errors import InputError


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


def read_egoclip_csv(path: Path) -> tuple[pa.Table, dict[str, int]]:
    """Read EgoVLP's tab-separated ``egoclip.csv`` into the EGOCLIP table.

    Malformed lines (wrong column count) are skipped and counted, as EgoVLP's own loader does; rows whose
    window is inverted or not finite are dropped and counted. A missing column is an error naming it.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(path, "file not found")
    skipped: list[int] = []

    def on_invalid(row: pacsv.InvalidRow) -> str:
        skipped.append(row.number or -1)
        return "skip"

    convert = pacsv.ConvertOptions(
        column_types={f.name: f.type for f in EGOCLIP},
        strings_can_be_null=False,
    )
    try:
        table = pacsv.read_csv(
            path,
            parse_options=pacsv.ParseOptions(
                delimiter="\t", quote_char=False, invalid_row_handler=on_invalid
            ),
            convert_options=convert,
        )
    except pa.ArrowInvalid as e:
        raise InputError(path, f"cannot parse as tab-separated EgoClip rows: {e}") from e
    missing = [f.name for f in EGOCLIP if f.name not in table.schema.names]
    if missing:
        raise InputError(path, "header lacks required columns", field=", ".join(missing))
    table = table.select(EGOCLIP.names).cast(EGOCLIP)
    start = table["clip_start"].to_numpy()
    end = table["clip_end"].to_numpy()
    ok = np.isfinite(start) & np.isfinite(end) & (end >= start)
    stats = {
        "rows_in": table.num_rows + len(skipped),
        "malformed_lines": len(skipped),
        "bad_window": int((~ok).sum()),
    }
    table = table.filter(pa.array(ok))
    stats["rows_out"] = table.num_rows
    return table, stats
