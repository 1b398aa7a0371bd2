"""Append-only JSONL cache of finished generations, one file per shard (llm-queries.md, "caching and resume").

Each line is one finished prompt: ``{"key", "unit_id", "attempt", "raw_output", "n_prompt_tokens",
"n_new_tokens", ...}``. The key is a SHA-256 of the prompt text itself and the backend fingerprint (model and
generation parameters), so changing any of them misses the cache exactly where outputs would change.
Appends are flushed and fsync'd per batch: a killed job loses at most the batch in flight. A torn last line
(the job died mid-write) is ignored, counted, and cut off so that later appends start on a clean line.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

from egonlq.errors import InputError

logger = logging.getLogger(__name__)


def cache_key(prompt: str, fingerprint: dict) -> str:
    """SHA-256 of the prompt text and the backend fingerprint (which holds the generation parameters)."""
    payload = json.dumps({"prompt": prompt, "backend": fingerprint}, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


class GenerationCache:
    """The cache of one shard: loaded at construction, appended to with :meth:`append`."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.entries: dict[str, dict] = {}
        self.torn_lines = 0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists():
            self._load()

    def _load(self) -> None:
        data = self.path.read_bytes()
        complete = data.rfind(b"\n") + 1  # bytes up to the last newline; the rest is a torn write
        if complete < len(data):
            self.torn_lines = 1
            logger.warning("%s: ignoring a torn last line (%d bytes)", self.path, len(data) - complete)
            with open(self.path, "r+b") as f:
                f.truncate(complete)
                f.flush()
                os.fsync(f.fileno())
        for lineno, line in enumerate(data[:complete].decode("utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
            except json.JSONDecodeError as e:
                raise InputError(
                    self.path,
                    f"corrupt cache line: {e.msg}",
                    record=f"line {lineno}",
                    expected="one JSON object",
                ) from e
            if not isinstance(entry, dict) or "key" not in entry or "raw_output" not in entry:
                raise InputError(self.path, "cache line lacks key or raw_output", record=f"line {lineno}")
            self.entries[entry["key"]] = entry

    def __contains__(self, key: str) -> bool:
        return key in self.entries

    def __len__(self) -> int:
        return len(self.entries)

    def get(self, key: str) -> dict | None:
        return self.entries.get(key)

    def append(self, records: list[dict]) -> None:
        """Append finished records durably (one write, flush, fsync)."""
        if not records:
            return
        lines = "".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in records)
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(lines)
            f.flush()
            os.fsync(f.fileno())
        for r in records:
            self.entries[r["key"]] = r
