"""Atomic file writes and strict JSON reading.

Every artefact is written to a temporary file in the destination folder and renamed into place, so an
interrupted job never leaves a half-written file that looks complete.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import re
import socket
import tempfile
import threading
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from egonlq.errors import InputError

logger = logging.getLogger(__name__)

_UMASK = os.umask(0)
os.umask(_UMASK)


def _pid_namespace() -> str:
    """This process's pid namespace (Linux; "" elsewhere): containers on one host can share a host name."""
    try:
        return re.sub(r"\D", "", os.readlink("/proc/self/ns/pid"))
    except OSError:
        return ""


# Temporary files are named ".<name>.<host>-<pid namespace>-<pid>.<random>.tmp": a process killed before its
# rename (kill -9, a node lost) leaves one behind, and a later write into the same folder from the same host
# and pid namespace removes it once that process is gone (see _sweep_stale_temporaries).
_WRITER = f"{re.sub(r'[^A-Za-z0-9_]', '_', socket.gethostname()) or 'host'}-{_pid_namespace()}"
_STALE = re.compile(rf"^\..+\.{re.escape(_WRITER)}-(\d+)\.[^.]+\.tmp$")
_swept: set[Path] = set()
_swept_lock = threading.Lock()


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _sweep_stale_temporaries(path.parent)
    prefix = f".{path.name}.{_WRITER}-{os.getpid()}."
    fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~_UMASK)  # mkstemp creates 0600; give the file ordinary permissions
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def _sweep_stale_temporaries(folder: Path) -> None:
    """Remove the temporary files in ``folder`` that a process of this host left when it died before its
    rename, once per folder and process (a folder of 10,000 feature files is listed once, not per write).

    Only files named by :func:`atomic_path` on this host and in this pid namespace are touched, and only when
    their process no longer exists: a temporary file of a live writer (another job, another node of a cluster
    or another container sharing the folder) is never removed. A reused pid keeps its file until a later
    sweep; files of other names are never touched.
    """
    folder = folder.resolve()
    with _swept_lock:
        if folder in _swept:
            return
        _swept.add(folder)
    try:
        names = os.listdir(folder)
    except OSError:
        return
    for name in names:
        match = _STALE.match(name)
        if match is None or _process_exists(int(match[1])):
            continue
        try:
            os.unlink(folder / name)
        except OSError:  # removed by another sweep meanwhile, or not ours to remove
            continue
        logger.info("removed %s: left by process %s, stopped before it finished", folder / name, match[1])


def _process_exists(pid: int) -> bool:
    """Whether process ``pid`` still runs: a killed process that its parent has not reaped yet (a zombie,
    Linux ``/proc/<pid>/stat`` state Z or X) writes nothing more, so it counts as gone."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: it exists, as another user's process
        pass
    if not os.path.isdir("/proc"):
        return True  # no process table to read: alive, to be safe
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:  # gone meanwhile
        return False
    state = stat[stat.rfind(")") + 2 :][:1]  # the field after the command name, which may hold ")"
    return state not in ("Z", "X")


def write_json(obj: Any, path: str | Path, *, indent: int | None = None) -> None:
    """Write ``obj`` as JSON atomically (NaN/Inf are refused: they are not JSON)."""
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(obj, f, indent=indent, allow_nan=False, ensure_ascii=False)
            f.write("\n")


def write_text(text: str, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        Path(tmp).write_text(text, encoding="utf-8")


def parquet_options(schema: pa.Schema) -> dict[str, Any]:
    """The writer options of every table: zstd; dictionary encoding for text columns only (numbers are
    nearly all distinct: their dictionary is built, then dropped); integers delta-encoded and floats split
    by byte (``DELTA_BINARY_PACKED`` / ``BYTE_STREAM_SPLIT``, standard parquet encodings: DuckDB 2.0 and
    polars 2.2 read the workflow's tables back equal to pyarrow's), which zstd then compresses in a fraction
    of the time it takes on plain values; min/max statistics for numbers, booleans and identifiers
    (``*_uid``, which readers filter on), none for other text, whose min/max no reader uses and which cost
    the most to compute. Same values read back. On the full-scale EGOCLIP table: 0.94 -> 0.74 s of encoding
    CPU (one thread), 108.6 -> 100.5 MB."""
    dictionary, statistics, encoding = [], [], {}
    for path, leaf in _parquet_leaves(schema):
        text = pa.types.is_string(leaf) or pa.types.is_large_string(leaf) or pa.types.is_dictionary(leaf)
        if text:
            dictionary.append(path)
        if not text or path.endswith("uid"):
            statistics.append(path)
        if pa.types.is_integer(leaf):
            encoding[path] = "DELTA_BINARY_PACKED"
        elif pa.types.is_float32(leaf) or pa.types.is_float64(leaf):
            encoding[path] = "BYTE_STREAM_SPLIT"
    return {
        "compression": "zstd",
        "use_dictionary": dictionary,
        "write_statistics": statistics,
        "column_encoding": encoding,
    }


def _parquet_leaves(schema: pa.Schema) -> Iterator[tuple[str, pa.DataType]]:
    """The parquet column paths of ``schema`` (``a.list.element`` for a list, ``a.b`` for a struct field)
    and their Arrow types."""

    def walk(path: str, t: pa.DataType) -> Iterator[tuple[str, pa.DataType]]:
        if pa.types.is_struct(t):
            for child in t:
                yield from walk(f"{path}.{child.name}", child.type)
        elif pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
            yield from walk(f"{path}.list.element", t.value_type)
        elif pa.types.is_map(t):
            yield from walk(f"{path}.key_value.key", t.key_type)
            yield from walk(f"{path}.key_value.value", t.item_type)
        else:
            yield path, t

    for f in schema:
        yield from walk(f.name, f.type)


def write_parquet(table: pa.Table, path: str | Path, schema: pa.Schema | None = None) -> None:
    """Write ``table`` atomically, cast to ``schema`` first when given (the schema is the contract)."""
    if schema is not None:
        table = table.select(schema.names).cast(schema)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, **parquet_options(table.schema))


def write_parquet_stream(tables: Iterable[pa.Table], path: str | Path, schema: pa.Schema) -> int:
    """Write ``tables`` as one parquet file, atomically, a row group each; returns the rows written.

    Each table is cast to ``schema`` and handed to a writer thread, which encodes it while the next one is
    produced: a producer that leaves the GIL free (Arrow's csv reader) and the parquet encoder then share
    the cores. At most two tables wait in between. If ``tables`` raises, nothing is left at ``path``.
    """
    waiting: queue.Queue[pa.Table | None] = queue.Queue(maxsize=2)
    failed: list[BaseException] = []
    rows = 0

    def encode(writer: pq.ParquetWriter) -> None:
        while (table := waiting.get()) is not None:
            if not failed:  # after a failure the queue is only drained, so that the producer never blocks
                try:
                    writer.write_table(table, row_group_size=max(1, table.num_rows))
                except BaseException as e:  # noqa: BLE001  (re-raised in the producer's thread)
                    failed.append(e)

    with atomic_path(path) as tmp, pq.ParquetWriter(tmp, schema, **parquet_options(schema)) as writer:
        thread = threading.Thread(target=encode, args=(writer,), name="parquet-writer", daemon=True)
        thread.start()
        try:
            for table in tables:
                if failed:
                    break
                waiting.put(table.select(schema.names).cast(schema))
                rows += table.num_rows
        finally:
            waiting.put(None)
            thread.join()
        if failed:
            raise failed[0]
    return rows


def read_parquet(
    path: str | Path,
    schema: pa.Schema | None = None,
    *,
    columns: Sequence[str] | None = None,
    dictionary: Sequence[str] = (),
) -> pa.Table:
    """Read a parquet table; when ``schema`` is given, check that every column is there with its type.

    ``columns`` reads only those columns (in that order; the others are never decoded), each checked
    against ``schema`` when given. ``dictionary`` names string columns to return dictionary-encoded (their
    type checked as the plain one): a column of a few thousand values repeated over millions of rows (video
    uids) then reads in a fraction of the time, its strings decoded once each instead of once per row.
    """
    read_dictionary = list(dictionary) or None
    if columns is None:
        table = pq.read_table(path, read_dictionary=read_dictionary)
        found = pq.read_schema(path) if dictionary else table.schema
    else:
        found = pq.read_schema(path)
        if schema is not None:
            schema = pa.schema([schema.field(name) for name in columns])
        else:
            missing = [name for name in columns if name not in found.names]
            if missing:
                raise InputError(path, "column missing", field=", ".join(missing))
    if schema is not None:
        for field in schema:
            if field.name not in found.names:
                raise InputError(path, "column missing", field=field.name, expected=str(field.type))
            got = found.field(field.name).type
            if got != field.type:
                raise InputError(path, f"column has type {got}", field=field.name, expected=str(field.type))
    if columns is not None:
        return pq.read_table(path, columns=list(columns), read_dictionary=read_dictionary)
    return table if schema is None else table.select(schema.names)


# Deepest nesting of arrays/objects a JSON input may have. Ego4D files nest 7 levels, predictions 4; deeper
# input is hostile or broken, and code that walks values recursively (repr, json.dumps) would overflow.
MAX_JSON_DEPTH = 64


# The first bytes of the compressed and archive formats a download may come in, instead of the text expected.
_PACKED = {
    b"\x1f\x8b": "gzip",
    b"PK\x03\x04": "zip",
    b"\x28\xb5\x2f\xfd": "zstd",
    b"BZh": "bzip2",
    b"\xfd7zXZ\x00": "xz",
}


def existing_file(path: str | Path) -> Path:
    """``path`` as a Path, or an :class:`InputError` naming it when there is nothing there, or when it is a
    compressed file (gzip, zip, zstd, bzip2, xz) where text is read: it names the format, so the reader
    does not fail later on bytes that are not UTF-8."""
    path = Path(path)
    if not path.exists():
        raise InputError(path, "file not found")
    if path.is_file():
        with open(path, "rb") as f:
            head = f.read(6)
        for magic, name in _PACKED.items():
            if head.startswith(magic):
                raise InputError(path, f"a {name}-compressed file, not text: decompress it first")
    return path


def read_json(path: str | Path) -> Any:
    """Parse a JSON file; a syntax error, bad encoding or nesting deeper than :data:`MAX_JSON_DEPTH` is an
    :class:`InputError` naming the file (with line and column for syntax errors), never a RecursionError."""
    path = existing_file(path)
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except json.JSONDecodeError as e:
        raise InputError(path, f"malformed JSON at line {e.lineno}, column {e.colno}: {e.msg}") from e
    except UnicodeDecodeError as e:
        raise InputError(path, f"not UTF-8 text: {e}") from e
    except RecursionError as e:
        raise InputError(path, too_deep_message()) from e
    if json_depth_exceeds(data):
        raise InputError(path, too_deep_message())
    return data


def too_deep_message() -> str:
    """The error text for JSON nested too deeply (shared by every JSON reader)."""
    return f"JSON nested more than {MAX_JSON_DEPTH} arrays/objects deep (hostile or corrupt input)"


def json_depth_exceeds(value: Any, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether parsed JSON ``value`` nests arrays/objects more than ``limit`` deep (iterative: any depth)."""
    stack = [(value, 1)] if isinstance(value, dict | list) else []
    while stack:
        container, depth = stack.pop()
        if depth > limit:
            return True
        for child in container.values() if isinstance(container, dict) else container:
            if isinstance(child, dict | list):
                stack.append((child, depth + 1))
    return False


def write_manifest(folder: str | Path, out: str | Path | None = None, *, pattern: str = "*") -> dict:
    """List the files of ``folder`` (name, bytes) into ``folder/manifest.json``: one file stands for many."""
    folder = Path(folder)
    files = sorted(p for p in folder.glob(pattern) if p.is_file() and p.name != "manifest.json")
    manifest = {"folder": str(folder), "files": {p.name: p.stat().st_size for p in files}}
    write_json(manifest, out or folder / "manifest.json", indent=1)
    return manifest


def use_fast_memory_pool() -> str:
    """Make jemalloc Arrow's default memory pool, where this pyarrow has it; returns the pool now in use.

    Why: with pyarrow's default mimalloc pool, the big-table jobs spend as much time in the kernel as in
    Python, giving memory back and faulting it in again (full-scale NaQ job: 4.2 s system time with mimalloc,
    1.7 s with jemalloc; EgoClip ingest 3.1 -> 1.4 s). A pool chosen by the user through
    ``ARROW_DEFAULT_MEMORY_POOL`` is left alone. Meant for a command's start, before tables are built.
    """
    if "ARROW_DEFAULT_MEMORY_POOL" not in os.environ:
        try:
            pa.set_memory_pool(pa.jemalloc_memory_pool())
        except NotImplementedError:  # a pyarrow built without jemalloc keeps its default
            pass
    return pa.default_memory_pool().backend_name
