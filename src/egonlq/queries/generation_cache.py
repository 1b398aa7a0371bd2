"""Append-only JSONL cache of finished generations, one file per shard (llm-queries.md, "caching and resume").

Each line is one finished prompt: ``{"key", "unit_id", "attempt", "raw_output", "n_prompt_tokens",
"n_new_tokens", ...}``. The key is a SHA-256 of the prompt text itself and the backend fingerprint (model and
generation parameters), so changing any of them misses the cache exactly where outputs would change.
Appends are flushed and fsync'd per batch: a killed job loses at most the batch in flight. A torn last line
(the job died mid-write) is ignored, counted, and cut off so that later appends start on a clean line
(:class:`egonlq.jsonl.JsonlStore`).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from egonlq.jsonl import JsonlStore


def cache_key(prompt: str, fingerprint: dict) -> str:
    """SHA-256 of the prompt text and the backend fingerprint (which holds the generation parameters)."""
    payload = json.dumps({"prompt": prompt, "backend": fingerprint}, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def _read_entry(entry: Any) -> tuple[str, dict]:
    if not isinstance(entry, dict) or not isinstance(entry.get("key"), str) or "raw_output" not in entry:
        raise ValueError("the line lacks a string key or raw_output")
    return entry["key"], entry


class GenerationCache(JsonlStore):
    """The cache of one shard (:class:`~egonlq.jsonl.JsonlStore`): ``key -> entry``, loaded at construction,
    appended to with :meth:`append` (a list of entries)."""

    def __init__(self, path: str | Path) -> None:
        super().__init__(path, _read_entry, expected="one JSON object with key and raw_output per line")
