"""egonlq.io: strict JSON reading. Hostile nesting is a clear error naming the file in every JSON reader (the
one ``read_json`` and the streaming narration reader), never a RecursionError."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from egonlq.data.annotations import ingest_nlq
from egonlq.data.metadata import ingest_metadata
from egonlq.data.narrations import ingest_narrations
from egonlq.errors import InputError
from egonlq.evaluation.metric import load_ground_truth
from egonlq.io import MAX_JSON_DEPTH, json_depth_exceeds, read_json, write_json


def nested(depth: int, *, closed: bool = True, leaf: str = "1") -> str:
    return "[" * depth + leaf + ("]" * depth if closed else "")


HOSTILE = {
    "unclosed 5000": nested(5000, closed=False),
    "closed 5000": nested(5000),
    "objects 5000": '{"a": ' * 5000 + "1" + "}" * 5000,
    "just over the limit": nested(MAX_JSON_DEPTH + 1),
    "deep inside a record": '{"videos": [{"video_uid": "v", "clips": ' + nested(900) + "}]}",
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
@pytest.mark.parametrize("reader", ["read_json", "nlq", "metadata", "ground truth"])
def test_hostile_nesting_is_a_clear_error(tmp_path: Path, case: str, reader: str) -> None:
    path = tmp_path / "hostile.json"
    path.write_text(HOSTILE[case], encoding="utf-8")
    read = {
        "read_json": read_json,
        "nlq": lambda p: ingest_nlq(p, "val"),
        "metadata": ingest_metadata,
        "ground truth": load_ground_truth,
    }[reader]
    with pytest.raises(InputError, match="nested more than 64") as info:
        read(path)
    assert str(path) in str(info.value)


def test_nesting_up_to_the_limit_is_read(tmp_path: Path) -> None:
    path = tmp_path / "deep.json"
    path.write_text(nested(MAX_JSON_DEPTH), encoding="utf-8")
    value = read_json(path)
    for _ in range(MAX_JSON_DEPTH - 1):
        (value,) = value
    assert value == [1]


@given(
    st.recursive(st.integers() | st.text(max_size=3), lambda c: st.lists(c) | st.dictionaries(st.text(), c))
)
def test_depth_check_agrees_with_the_structure(value) -> None:
    def depth(v) -> int:
        if isinstance(v, dict | list):
            children = v.values() if isinstance(v, dict) else v
            return 1 + max((depth(c) for c in children), default=0)
        return 0

    d = depth(value)
    assert json_depth_exceeds(value, limit=d) is False
    assert json_depth_exceeds(value, limit=d - 1) is (d >= 1)


@pytest.mark.parametrize(
    "text",
    [
        '{"v": ' + nested(5000, closed=False),
        '{"v": ' + nested(5000) + "}",
        '{"v": {"narration_pass_1": {"narrations": [' + nested(5000) + "]}}}",
    ],
)
def test_narration_stream_refuses_hostile_nesting(tmp_path: Path, text: str) -> None:
    path = tmp_path / "narration.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InputError, match="nested more than 64") as info:
        ingest_narrations(path, tmp_path / "n.parquet", tmp_path / "s.parquet", chunk_chars=64)
    assert "narration.json" in str(info.value) and "line 1" in str(info.value)


def test_narration_stream_names_a_deep_status_without_printing_it(tmp_path: Path) -> None:
    path = tmp_path / "narration.json"
    path.write_text('{"v": {"status": ' + nested(900) + "}}", encoding="utf-8")
    report = ingest_narrations(path, tmp_path / "n.parquet", tmp_path / "s.parquet")
    assert report.to_dict()["counts"] == {"status:<list>": 1}
    assert json.loads(path.read_text())["v"]["status"]  # valid JSON, only deep


def test_read_parquet_columns_reads_and_checks_only_those(tmp_path: Path) -> None:
    import pyarrow as pa

    from egonlq.io import read_parquet, write_parquet

    schema = pa.schema([("a", pa.int64()), ("b", pa.string()), ("c", pa.float64())])
    path = tmp_path / "t.parquet"
    write_parquet(pa.table({"a": [1, 2], "b": ["x", "y"], "c": [0.5, 1.5]}), path, schema)
    table = read_parquet(path, schema, columns=["c", "a"])
    assert table.column_names == ["c", "a"] and table.column("c").to_pylist() == [0.5, 1.5]
    assert read_parquet(path, columns=["b"]).to_pydict() == {"b": ["x", "y"]}
    with pytest.raises(InputError, match="column missing") as info:
        read_parquet(path, columns=["b", "z"])
    assert info.value.field == "z"
    wrong = pa.schema([("a", pa.string()), ("b", pa.string())])
    with pytest.raises(InputError, match="column has type int64") as info:
        read_parquet(path, wrong, columns=["a"])
    assert info.value.field == "a"
    assert read_parquet(path, wrong, columns=["b"]).num_rows == 2  # only the columns read are checked


def test_use_fast_memory_pool_prefers_jemalloc_unless_the_user_chose(monkeypatch) -> None:
    import pyarrow as pa

    from egonlq.io import use_fast_memory_pool

    before = pa.default_memory_pool()
    try:
        monkeypatch.delenv("ARROW_DEFAULT_MEMORY_POOL", raising=False)
        try:
            pa.jemalloc_memory_pool()
            expected = "jemalloc"
        except NotImplementedError:
            expected = before.backend_name
        assert use_fast_memory_pool() == expected == pa.default_memory_pool().backend_name
        pa.set_memory_pool(pa.system_memory_pool())
        monkeypatch.setenv("ARROW_DEFAULT_MEMORY_POOL", "system")
        assert use_fast_memory_pool() == "system"
    finally:
        pa.set_memory_pool(before)


def test_write_parquet_dictionary_for_text_statistics_for_numbers_and_ids(tmp_path: Path) -> None:
    """The writer policy, on flat and nested columns: the same values read back; text is
    dictionary-encoded, numbers are not: integers are delta-encoded and floats split by byte; statistics
    for numbers, booleans and ``*_uid``, none for text."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from egonlq.io import write_parquet

    table = pa.table(
        {
            "n": [1, 2],
            "video_uid": ["v1", "v2"],
            "text": ["#C C opens", "#O X waves"],
            "ok": [True, False],
            "tags": [["a"], None],
            "clip": [{"start": 1.5, "clip_uid": "c1"}, {"start": 2.5, "clip_uid": "c2"}],
            "split": pa.array(["train", "val"]).dictionary_encode(),
            "emb": pa.array([[0.25, -1.0], [3.0, 1e-30]], pa.list_(pa.float32())),
            "frame": pa.array([7, -3], pa.int32()),
        }
    )
    path = tmp_path / "t.parquet"
    write_parquet(table, path)
    assert pq.read_table(path).equals(table)
    group = pq.ParquetFile(path).metadata.row_group(0)
    columns = {group.column(i).path_in_schema: group.column(i) for i in range(group.num_columns)}
    dictionary = {p for p, c in columns.items() if "RLE_DICTIONARY" in c.encodings}
    statistics = {p for p, c in columns.items() if c.is_stats_set}
    assert dictionary == {"video_uid", "text", "tags.list.element", "clip.clip_uid", "split"}
    assert statistics == {"n", "video_uid", "ok", "clip.start", "clip.clip_uid", "emb.list.element", "frame"}
    delta = {p for p, c in columns.items() if "DELTA_BINARY_PACKED" in c.encodings}
    split = {p for p, c in columns.items() if "BYTE_STREAM_SPLIT" in c.encodings}
    assert delta == {"n", "frame"}
    assert split == {"clip.start", "emb.list.element"}


def test_write_parquet_stream_writes_a_row_group_per_table(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from egonlq.io import write_parquet_stream

    schema = pa.schema([pa.field("a", pa.int64(), nullable=False), pa.field("b", pa.string())])
    parts = [
        pa.table({"b": ["x", None], "a": pa.array([1, 2], pa.int32())}),
        pa.table({"a": [3], "b": ["z"]}),
    ]
    path = tmp_path / "t.parquet"
    assert write_parquet_stream(iter(parts), path, schema) == 3
    assert pq.read_table(path).equals(pa.table({"a": [1, 2, 3], "b": ["x", None, "z"]}, schema=schema))
    assert pq.ParquetFile(path).metadata.num_row_groups == 2


@pytest.mark.parametrize("where", ["producer", "writer"])
def test_write_parquet_stream_leaves_nothing_when_it_fails(tmp_path: Path, monkeypatch, where: str) -> None:
    """A producer that raises, or a writer that fails part way (a full disk): the error comes out in the
    caller's thread and no file is left, temporary or final."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from egonlq.io import write_parquet_stream

    def tables():
        for i in range(50):
            yield pa.table({"a": [i]})
        if where == "producer":
            raise ValueError("producer failed")

    if where == "writer":
        real, calls = pq.ParquetWriter.write_table, []

        def failing(self, table, *args, **kwargs):
            calls.append(table)
            if len(calls) == 3:
                raise OSError("disk full")
            return real(self, table, *args, **kwargs)

        monkeypatch.setattr(pq.ParquetWriter, "write_table", failing)
    with pytest.raises(ValueError if where == "producer" else OSError, match="failed|disk full"):
        write_parquet_stream(tables(), tmp_path / "t.parquet", pa.schema([pa.field("a", pa.int64())]))
    assert list(tmp_path.iterdir()) == []


def _dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    code = "import os; print(os.getpid())"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return int(proc.stdout)


def test_a_write_removes_temporaries_of_dead_writers_only(tmp_path: Path, caplog) -> None:
    from egonlq.io import _WRITER

    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    zombie = subprocess.Popen([sys.executable, "-c", "pass"])  # exits, never reaped until wait(): a zombie
    deadline = time.monotonic() + 30
    while Path(f"/proc/{zombie.pid}/stat").read_text().split(")")[-1].split()[0] != "Z":
        assert time.monotonic() < deadline, "the child never became a zombie"
        time.sleep(0.01)
    try:
        dead = {
            f".a.parquet.{_WRITER}-{_dead_pid()}.k2x_9q.tmp",
            f".b.json.{_WRITER}-{_dead_pid()}.zz.tmp",
            f".c.pt.{_WRITER}-{zombie.pid}.zz.tmp",  # killed, its parent has not reaped it yet
        }
        kept = {
            f".a.parquet.{_WRITER}-{live.pid}.abc.tmp",  # a writer still running
            f".a.parquet.{_WRITER}9-{_dead_pid()}.abc.tmp",  # another host or container sharing the folder
            ".a.parquet.q1w2e3.tmp",  # the old naming: no host or pid, so no way to know
            "notes.tmp",
            "a.parquet",
        }
        for name in dead | kept:
            (tmp_path / name).write_text("x")
        with caplog.at_level("INFO", logger="egonlq.io"):
            write_json({"ok": 1}, tmp_path / "c.json")
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted(kept | {"c.json"})
        assert sum("stopped before it finished" in r.getMessage() for r in caplog.records) == 3
        # once per folder and process: a later stale file waits for the next process
        late = tmp_path / f".d.json.{_WRITER}-{_dead_pid()}.xy.tmp"
        late.write_text("x")
        write_json({"ok": 2}, tmp_path / "c.json")
        assert late.exists()
    finally:
        live.kill()
        live.wait()
        zombie.wait()


def test_a_killed_writer_leaves_a_temporary_that_the_next_run_removes(tmp_path: Path) -> None:
    """kill -9 in the middle of a write: the target is absent, the temporary is there; the rerun (a new
    process, as a rerun of the job is) writes the target and removes the temporary."""
    target = tmp_path / "out" / "big.json"
    code = (
        "import sys, time\n"
        "from egonlq.io import atomic_path\n"
        "with atomic_path(sys.argv[1]) as tmp:\n"
        "    tmp.write_text('partial')\n"
        "    print('writing', flush=True)\n"
        "    time.sleep(60)\n"
    )
    writer = subprocess.Popen([sys.executable, "-c", code, str(target)], stdout=subprocess.PIPE, text=True)
    assert writer.stdout.readline().strip() == "writing"
    writer.kill()
    writer.wait()
    left = [p.name for p in target.parent.iterdir()]
    assert not target.exists() and len(left) == 1 and left[0].endswith(".tmp")
    rerun = "import sys; from egonlq.io import write_json; write_json({'done': True}, sys.argv[1])"
    subprocess.run([sys.executable, "-c", rerun, str(target)], check=True)
    assert [p.name for p in target.parent.iterdir()] == ["big.json"]
    assert json.loads(target.read_text()) == {"done": True}


@pytest.mark.parametrize("packer", ["gzip", "zip", "bz2", "lzma"])
def test_a_compressed_input_is_named_as_such(tmp_path: Path, packer: str) -> None:
    import bz2
    import gzip
    import lzma
    import zipfile

    from egonlq.data.egoclip import read_egoclip_csv

    text = b'{"videos": []}'
    for name in ("ann.json", "egoclip.csv"):
        path = tmp_path / name
        if packer == "zip":
            with zipfile.ZipFile(path, "w") as z:
                z.writestr("inside", text)
        else:
            path.write_bytes({"gzip": gzip, "bz2": bz2, "lzma": lzma}[packer].compress(text))
    expected = {"gzip": "gzip", "zip": "zip", "bz2": "bzip2", "lzma": "xz"}[packer]
    with pytest.raises(InputError, match=f"a {expected}-compressed file, not text: decompress it first"):
        read_json(tmp_path / "ann.json")
    with pytest.raises(InputError, match=f"{expected}-compressed") as info:
        read_egoclip_csv(tmp_path / "egoclip.csv")
    assert info.value.path == str(tmp_path / "egoclip.csv")
