"""The generation cache: keyed by prompt and backend, entries need a key and raw_output, torn lines cut."""

from __future__ import annotations

from pathlib import Path

import pytest

from egonlq.errors import InputError
from egonlq.queries.generation_cache import GenerationCache, cache_key


def test_cache_key_changes_with_prompt_and_backend() -> None:
    key = cache_key("p", {"model": "m", "temperature": 0.0})
    assert key == cache_key("p", {"temperature": 0.0, "model": "m"})  # key order does not matter
    assert key != cache_key("q", {"model": "m", "temperature": 0.0})
    assert key != cache_key("p", {"model": "m", "temperature": 0.7})


def test_entries_survive_a_torn_line_and_need_key_and_raw_output(tmp_path: Path) -> None:
    path = tmp_path / "shard.jsonl"
    entry = {"key": "k1", "unit_id": "u", "attempt": 0, "raw_output": "[]", "n_prompt_tokens": 3}
    GenerationCache(path).append([entry])
    with open(path, "a", encoding="utf-8") as f:
        f.write('{"key": "k2", "raw_out')
    cache = GenerationCache(path)
    assert cache.torn_lines == 1 and len(cache) == 1 and cache.get("k1") == entry and "k2" not in cache
    path.write_text('{"key": "k1", "unit_id": "u"}\n', encoding="utf-8")
    with pytest.raises(InputError, match=r"shard.jsonl: .*raw_output.*\[record line 1\]"):
        GenerationCache(path)
