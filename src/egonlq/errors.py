"""One error type for bad input: it always names the file, the record and the field."""

from __future__ import annotations

from pathlib import Path


class InputError(ValueError):
    """Bad input data, located precisely enough to fix it.

    ``record`` names the offending record (e.g. ``clip_uid=..., query_idx=3``), ``field`` the key,
    ``expected`` what a valid value looks like.
    """

    def __init__(
        self,
        path: str | Path | None,
        message: str,
        *,
        record: str | None = None,
        field: str | None = None,
        expected: str | None = None,
    ) -> None:
        self.path = str(path) if path is not None else None
        self.record = record
        self.field = field
        self.expected = expected
        parts = [f"{self.path}:" if self.path else "", message]
        if record:
            parts.append(f"[record {record}]")
        if field:
            parts.append(f"[field {field!r}]")
        if expected:
            parts.append(f"(expected {expected})")
        super().__init__(" ".join(p for p in parts if p))
