"""Append-only JSON-lines stores that survive a killed job: the shared core of resumable caches.

A store is a file of one JSON object per line, each the record of finished work, keyed by a string; the last
record of a key wins. Appends are one write, flushed and fsync'd, so a killed job loses at most the batch in
flight. Opening a store repairs a torn last line (the job died mid-write) by cutting the file after its last
newline, counts it, and reads the rest; any other unreadable line is an error naming the file and line.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from egonlq.errors import InputError

logger = logging.getLogger(__name__)

# Reads one parsed line into (key, value); raises KeyError/TypeError/ValueError on a malformed record.
RecordReader = Callable[[Any], tuple[str, Any]]


class JsonlStore:
    """The records of one append-only JSONL file, loaded at construction: ``key -> value``.

    ``read_record`` turns a parsed line into ``(key, value)``; the same function reads the lines of
    :meth:`append`, so what a store holds after an append equals what a fresh load would find.
    ``expected`` says, in error messages, what a valid line is. Blank lines are skipped.
    ``torn_lines``: torn last lines cut off on opening (0 or 1); ``duplicates``: keys recorded more than once.
    """

    def __init__(self, path: str | Path, read_record: RecordReader, *, expected: str) -> None:
        self.path = Path(path)
        self.read_record = read_record
        self.expected = expected
        self.records: dict[str, Any] = {}
        self.torn_lines = 0
        self.duplicates = 0
        if self.path.exists():
            self._load()

    def _load(self) -> None:
        data = self.path.read_bytes()
        complete = data.rfind(b"\n") + 1  # bytes up to the last newline; the rest is a torn write
        if complete < len(data):
            self.torn_lines = 1
            logger.warning("%s: cutting off a torn last line (%d bytes)", self.path, len(data) - complete)
            with open(self.path, "r+b") as f:
                f.truncate(complete)
                f.flush()
                os.fsync(f.fileno())
        for number, line in enumerate(data[:complete].splitlines(), start=1):
            if not line.strip():
                continue
            try:
                key, value = self.read_record(json.loads(line))
            except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, ValueError) as e:
                raise InputError(
                    self.path, f"unreadable record: {e}", record=f"line {number}", expected=self.expected
                ) from e
            self.duplicates += key in self.records
            self.records[key] = value

    def __contains__(self, key: str) -> bool:
        return key in self.records

    def __len__(self) -> int:
        return len(self.records)

    def get(self, key: str) -> Any:
        return self.records.get(key)

    def append(self, objs: Iterable[Any]) -> None:
        """Append JSON objects durably (one write, flush, fsync), then hold their records.

        Objects are written with sorted keys and without NaN (not JSON)."""
        lines = [
            json.dumps(obj, ensure_ascii=False, sort_keys=True, allow_nan=False, separators=(",", ":"))
            for obj in objs
        ]
        if not lines:
            return
        records = [self.read_record(json.loads(line)) for line in lines]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "ab") as f:
            f.write(("\n".join(lines) + "\n").encode("utf-8"))
            f.flush()
            os.fsync(f.fileno())
        for key, value in records:
            self.records[key] = value
