"""The append-only JSONL store behind the generation cache and the keyframes progress file."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from egonlq.errors import InputError
from egonlq.jsonl import JsonlStore


def read(obj) -> tuple[str, int]:
    return obj["k"], obj["v"]


def store(path: Path) -> JsonlStore:
    return JsonlStore(path, read, expected="objects with k and v")


def test_append_then_reload_holds_the_same_records(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "s.jsonl"
    s = store(path)
    assert len(s) == 0 and not path.exists()
    s.append([{"k": "a", "v": 1}, {"k": "b", "v": 2}])
    s.append([{"k": "a", "v": 3}])  # the last record of a key wins
    s.append([])
    assert s.records == {"a": 3, "b": 2} and "a" in s and s.get("c") is None
    again = store(path)
    assert again.records == s.records and again.duplicates == 1 and again.torn_lines == 0
    assert path.read_text().count("\n") == 3


def test_torn_last_line_is_cut_and_counted(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    store(path).append([{"k": "a", "v": 1}])
    with open(path, "ab") as f:
        f.write(b'{"k": "b", "v"')
    s = store(path)
    assert s.torn_lines == 1 and s.records == {"a": 1}
    s.append([{"k": "c", "v": 2}])  # starts on a clean line
    again = store(path)
    assert again.torn_lines == 0 and again.records == {"a": 1, "c": 2}


def test_unreadable_lines_name_the_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    path.write_text('{"k": "a", "v": 1}\n\n{oops\n')
    with pytest.raises(InputError, match=r"s.jsonl: unreadable record.*\[record line 3\].*objects with k"):
        store(path)
    path.write_text('{"k": "a", "v": 1}\n{"k": "b"}\n')
    with pytest.raises(InputError, match=r"\[record line 2\]"):
        store(path)


def test_a_bad_append_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    s = store(path)
    with pytest.raises(ValueError):
        s.append([{"k": "a", "v": 1}, {"k": "b", "v": math.nan}])  # NaN is not JSON
    with pytest.raises(KeyError):
        s.append([{"k": "a", "v": 1}, {"v": 2}])  # a record the store could not read back
    assert not path.exists() and len(s) == 0
    s.append([{"k": "é", "v": 1}])
    assert json.loads(path.read_text(encoding="utf-8")) == {"k": "é", "v": 1}
