"""Bookkeeping for ingest: quirks that are kept and counted, and errors that are collected and raised.

Real Ego4D files carry known defects (zero-length windows, absent keys, junk frame fields, ...). Ingest keeps
those records, flags them and counts them by kind in a :class:`QuirkReport`, which goes into the step's
report. Anything else that is wrong is an error: :class:`ErrorCollector` gathers every problem of a file
(with record and field) and raises them together as one :class:`~egonlq.errors.InputError`.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from egonlq.errors import InputError

MAX_EXAMPLES = 5


class QuirkReport:
    """Counts of kept-but-flagged or skipped records by kind, with up to 5 example records per kind."""

    def __init__(self) -> None:
        self._counts: Counter[str] = Counter()
        self._examples: dict[str, list[str]] = {}

    def add(self, kind: str, record: str, n: int = 1) -> None:
        """Count ``n`` occurrences of ``kind``; ``record`` names one of them (kept as an example)."""
        self.add_many(kind, [record], n)

    def add_many(self, kind: str, records: Iterable[str], n: int) -> None:
        """Count ``n`` occurrences of ``kind`` found at once; ``records`` names some of them."""
        if n <= 0:
            return
        self._counts[kind] += n
        examples = self._examples.setdefault(kind, [])
        for record in records:
            if len(examples) >= MAX_EXAMPLES:
                break
            examples.append(record)

    def count(self, kind: str) -> int:
        return self._counts.get(kind, 0)

    def merge(self, other: QuirkReport) -> None:
        for kind, n in other._counts.items():
            self.add_many(kind, other._examples.get(kind, []), n)

    def to_dict(self) -> dict:
        """``{"counts": {kind: n}, "examples": {kind: [record, ...]}}``, kinds sorted."""
        kinds = sorted(self._counts)
        return {
            "counts": {k: self._counts[k] for k in kinds},
            "examples": {k: list(self._examples.get(k, [])) for k in kinds},
        }

    def __repr__(self) -> str:
        return f"QuirkReport({dict(sorted(self._counts.items()))})"


class ErrorCollector:
    """Collects the errors of one file and raises them together (at most ``limit`` are listed)."""

    def __init__(self, path: str | Path, *, limit: int = 50) -> None:
        self.path = Path(path)
        self.limit = limit
        self.errors: list[InputError] = []

    def add(
        self, message: str, *, record: str | None, field: str | None, expected: str | None = None
    ) -> None:
        self.errors.append(InputError(self.path, message, record=record, field=field, expected=expected))

    def raise_if_any(self) -> None:
        """Raise the single error, or one error listing all of them (attributes of the first)."""
        if not self.errors:
            return
        first = self.errors[0]
        if len(self.errors) == 1:
            raise first
        prefix = f"{self.path}: "
        lines = [str(e).removeprefix(prefix) for e in self.errors[: self.limit]]
        if len(self.errors) > self.limit:
            lines.append(f"... and {len(self.errors) - self.limit} more")
        error = InputError(self.path, f"{len(self.errors)} problems:\n  " + "\n  ".join(lines))
        error.record, error.field, error.expected = first.record, first.field, first.expected
        raise error


def is_number(value: object) -> bool:
    """A JSON number: int or float, but not bool (``True`` is an ``int`` in Python)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def as_finite_float(value: object) -> float | None:
    """``value`` as a finite float, or None when it is not a finite JSON number (bool, str, NaN, 1e400)."""
    if not is_number(value):
        return None
    try:
        result = float(value)
    except OverflowError:
        return None
    return result if math.isfinite(result) else None
