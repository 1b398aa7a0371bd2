"""Feature provenance: what a folder of per-video feature files is, and whether its rows agree with it.

A feature set carries a sidecar, ``feature_set.json`` in its folder (written by the demo world and the frame
features): name, backbone, window, stride, fps, rows per second, dim. An official set downloaded without one
is described by the shipped table ``feature_sets.json`` (:func:`known_feature_sets`); a sidecar of a known
name must agree with the table. The set's :class:`~egonlq.timegrid.FeatureGrid` is the time-to-row mapping
every reader of its rows uses.

:func:`check_rows` compares the row counts of a sample of videos (the longest first: the only ones where rate
variants differ by more than a row) with the counts the grid declares, and names the known rates each
offending video fits instead: a set extracted at a rounded 1.87 rows/s, declared (or taken for) 1.875, is
told from the genuine one on videos longer than about 7 minutes.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from egonlq.errors import InputError
from egonlq.io import read_json, write_json
from egonlq.timegrid import OFFICIAL, ROW_COUNT_TOLERANCE, FeatureGrid

logger = logging.getLogger(__name__)

TABLE_FILE = Path(__file__).with_name("feature_sets.json")
SIDECAR = "feature_set.json"
DEFAULT_SAMPLE = 20
_NUMBERS = {"fps": float, "window": int, "stride": int, "rows_per_second": float, "dim": int}


@dataclass(frozen=True)
class FeatureSet:
    """A feature set: its name, backbone, grid and dim; ``origin`` says where the description came from
    (``sidecar``: the folder's own file; ``table``: inferred from the name by the shipped table)."""

    name: str
    backbone: str
    grid: FeatureGrid
    dim: int
    origin: str

    def to_dict(self) -> dict:
        """The sidecar's fields (``origin`` included, for reports)."""
        g = self.grid
        return {
            "name": self.name,
            "backbone": self.backbone,
            "fps": g.fps,
            "window": g.window,
            "stride": g.stride,
            "rows_per_second": g.rows_per_second,
            "dim": self.dim,
            "origin": self.origin,
        }


@cache
def _table() -> dict:
    return read_json(TABLE_FILE)


def known_feature_sets() -> dict[str, FeatureSet]:
    """The shipped table's sets by name."""
    return {name: _parse(entry, name, "table", TABLE_FILE) for name, entry in _table()["sets"].items()}


def known_rates() -> tuple[float, ...]:
    """Every rate a set in circulation is known to step at: the table's and the documented variants."""
    rates = {s.grid.rows_per_second for s in known_feature_sets().values()}
    rates.update(float(r) for r in _table()["rate_variants"])
    return tuple(sorted(rates))


def _parse(entry: object, name: str, origin: str, path: Path) -> FeatureSet:
    if not isinstance(entry, dict):
        raise InputError(path, f"feature set is a {type(entry).__name__}", record=name, expected="an object")
    values: dict = {}
    for key, kind in _NUMBERS.items():
        value = entry.get(key)
        ok = (
            isinstance(value, int | float)
            and not isinstance(value, bool)
            and math.isfinite(value)
            and value > 0
        )
        if not ok or (kind is int and value != int(value)):
            raise InputError(
                path, f"{key} is {value!r}", record=name, field=key, expected=f"a {kind.__name__} > 0"
            )
        values[key] = kind(value)
    grid = FeatureGrid(values["fps"], values["window"], values["stride"], values["rows_per_second"])
    return FeatureSet(name, str(entry.get("backbone", "")), grid, values["dim"], origin)


def write_sidecar(folder: Path, name: str, backbone: str, grid: FeatureGrid, dim: int) -> Path:
    """Write ``folder/feature_set.json`` describing the set (atomically); return its path."""
    path = Path(folder) / SIDECAR
    fields = FeatureSet(name, backbone, grid, dim, "sidecar").to_dict()
    del fields["origin"]
    write_json(fields, path, indent=1)
    return path


def read_sidecar(path: Path) -> FeatureSet:
    """The set a sidecar describes; InputError naming the field when one is missing or not a number > 0."""
    data = read_json(path)
    name = data.get("name") if isinstance(data, dict) else None
    if not isinstance(name, str) or not name:
        raise InputError(path, "feature set sidecar without a name", field="name", expected="a string")
    return _parse(data, name, "sidecar", Path(path))


def resolve_feature_set(folder: Path, name: str) -> FeatureSet:
    """The set in ``folder`` (configured as ``name``): its sidecar, checked against the table when the name
    is known, or the table's entry. InputError when neither describes it, or when they disagree."""
    sidecar = Path(folder) / SIDECAR
    known = known_feature_sets()
    if not sidecar.is_file():
        if name not in known:
            raise InputError(
                sidecar,
                f"feature set {name!r} has no sidecar and is not a known set ({', '.join(sorted(known))})",
                expected="a feature_set.json with backbone, fps, window, stride, rows_per_second and dim",
            )
        return known[name]
    found = read_sidecar(sidecar)
    if found.name != name:
        raise InputError(sidecar, f"sidecar names the set {found.name!r}", field="name", expected=repr(name))
    if name in known:
        table = known[name]
        for key in ("rows_per_second", "dim", "window", "stride", "fps"):
            mine, theirs = found.to_dict()[key], table.to_dict()[key]
            if not math.isclose(mine, theirs):
                raise InputError(
                    sidecar,
                    f"{key} is {mine}, the known set {name!r} has {theirs} ({TABLE_FILE.name})",
                    field=key,
                    expected=str(theirs),
                )
    return found


def folder_grid(folder: Path) -> FeatureGrid:
    """The time grid of the per-video feature files in ``folder``: its sidecar's, else that of the known set
    named like the folder (``v1/<name>/``), else the official grid (logged: such a set is described nowhere,
    and the preflight names it)."""
    folder = Path(folder)
    if (folder / SIDECAR).is_file():
        return read_sidecar(folder / SIDECAR).grid
    known = known_feature_sets()
    if folder.name in known:
        return known[folder.name].grid
    logger.warning("%s has no %s and is not a known set: rows read on the official grid", folder, SIDECAR)
    return OFFICIAL


def feature_rows(path: Path) -> int:
    """Rows of a per-video feature file, read without loading its values (memory-mapped)."""
    import torch  # here, not at the top: the workflow imports this module when it plans (no torch there)

    try:
        tensor = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as e:  # torch raises RuntimeError, EOFError, UnpicklingError, ... on a bad file
        raise InputError(path, f"cannot read feature file ({type(e).__name__}: {e})") from e
    if not isinstance(tensor, torch.Tensor) or tensor.ndim != 2:
        raise InputError(path, "not a 2-D tensor", field="shape", expected="a tensor [N, D]")
    return int(tensor.shape[0])


def fitting_rates(rows: int, num_frames: int, grid: FeatureGrid) -> list[float]:
    """The known rates whose row count for ``num_frames`` frames is within the tolerance of ``rows``."""
    return [
        rate
        for rate in known_rates()
        if abs(rows - FeatureGrid(grid.fps, grid.window, grid.stride, rate).num_rows(num_frames))
        <= ROW_COUNT_TOLERANCE
    ]


def check_rows(
    folder: Path, fset: FeatureSet, num_frames: dict[str, int], *, sample: int = DEFAULT_SAMPLE
) -> dict:
    """Row counts of up to ``sample`` videos of ``folder`` (the longest that have a file and a frame count)
    against ``fset``'s grid. Returns ``sampled`` (uids), ``offending`` (``video_uid``, ``rows``,
    ``expected``, ``fits``: the known rates the rows fit), ``unreadable`` (uid -> message) and
    ``separates_rates``: whether the longest sampled video tells every known rate apart by more than the
    tolerance (else a rate variant could pass unnoticed)."""
    folder = Path(folder)
    present = sorted(
        (uid for uid in num_frames if (folder / f"{uid}.pt").is_file()),
        key=lambda uid: (-num_frames[uid], uid),
    )[:sample]
    offending, unreadable = [], {}
    for uid in present:
        try:
            rows = feature_rows(folder / f"{uid}.pt")
        except InputError as e:
            unreadable[uid] = str(e)
            continue
        expected = fset.grid.num_rows(num_frames[uid])
        if abs(rows - expected) > ROW_COUNT_TOLERANCE:
            fits = fitting_rates(rows, num_frames[uid], fset.grid)
            offending.append({"video_uid": uid, "rows": rows, "expected": expected, "fits": fits})
    separates = False
    if present:
        longest = num_frames[present[0]]
        g = fset.grid
        counts = sorted(FeatureGrid(g.fps, g.window, g.stride, r).num_rows(longest) for r in known_rates())
        separates = all(b - a > ROW_COUNT_TOLERANCE for a, b in zip(counts, counts[1:], strict=False))
    return {
        "sampled": present,
        "offending": offending,
        "unreadable": unreadable,
        "separates_rates": separates,
    }


def describe_offending(name: str, fset: FeatureSet, offending: list[dict]) -> str:
    """One problem line naming every offending video, its rows, the declared count and what it fits."""

    def one(o: dict) -> str:
        fits = ", ".join(f"{r:g}" for r in o["fits"])
        hint = f", fits {fits} rows/s" if fits else ""
        return f"{o['video_uid']} ({o['rows']} rows, {o['expected']} expected{hint})"

    rate = fset.grid.rows_per_second
    return (
        f"{name}: {len(offending)} sampled videos do not have the rows of {rate:g} rows/s"
        f" (window {fset.grid.window}, stride {fset.grid.stride}, {fset.origin}): "
        + "; ".join(one(o) for o in offending)
    )
