"""Per-clip video features: cut official per-video feature files into clips, stored in one parquet file.

Official features come one file per video, ``<video_uid>.pt``: a tensor ``[N, D]`` at 1.875 rows per second,
row ``i`` starting at ``i / 1.875`` s (ego4d-formats.md, section 5). Every function takes the set's
:class:`~egonlq.timegrid.FeatureGrid` (from its sidecar, ``egonlq.data.feature_sets``; the official grid by
default) and maps times to rows and frame counts to row counts through it. A clip is the window
``[video_start_sec, video_end_sec]`` of its video; its features are a contiguous block of rows. Instead of
one ``<clip_uid>.pt`` per clip (the layout of the reference code) every clip of a set goes into ONE parquet
file with the schema :data:`CLIP_FEATURES`; ``feature_shapes.json`` (``{clip_uid: rows}``, the reference's
length record) is written next to it on request.

Row-count tolerance: when the frame count of a video is known, its feature file must hold
``grid.num_rows(num_frames)`` rows, give or take :data:`ROW_COUNT_TOLERANCE` (1). Whether real files
are ever a row short or long is unverified; one row is accepted (and counted by :func:`cut_clips` as
``row_count_off_by_one``), more is an error: it means the file belongs to another video or another feature
rate.
"""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import math
import time
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from egonlq import timegrid
from egonlq.errors import InputError
from egonlq.io import atomic_path, write_json
from egonlq.progress import tqdm
from egonlq.timegrid import ROW_COUNT_TOLERANCE, FeatureGrid

logger = logging.getLogger(__name__)

# One row per clip, written by cut_clips. ``features`` holds the clip's float32 array [num_rows, dim] as
# row-major little-endian bytes (num_rows * dim * 4 of them; parquet BYTE_ARRAY, so any parquet reader gets
# plain binary): it decodes with one np.frombuffer, no per-value work. Measured: a
# list<fixed_size_list<float32, D>> column, which parquet stores value by value with repetition levels,
# read ~12x slower; reading the bytes as binary_view (the Arrow type stored with the file) instead of
# large_binary saves pyarrow a copy into one growing buffer: ~2x faster at dims 256 and 2304.
CLIP_FEATURES = pa.schema(
    [
        pa.field("clip_uid", pa.string(), nullable=False),
        pa.field("video_uid", pa.string(), nullable=False),
        pa.field("video_start_sec", pa.float64(), nullable=False),
        pa.field("video_end_sec", pa.float64(), nullable=False),
        pa.field("mode", pa.string(), nullable=False),  # the cut: "compatible" or "corrected"
        pa.field("num_rows", pa.int32(), nullable=False),
        pa.field("dim", pa.int32(), nullable=False),
        pa.field("features", pa.binary_view(), nullable=False),
    ]
)

# Schema metadata key of a clip-feature file: the JSON of the set's FeatureGrid, so that every reader maps its
# rows to times with the grid the rows were cut on (clip_features_grid).
GRID_KEY = b"feature_grid"
CUT_MODES = ("compatible", "corrected")
ON_MISSING = ("error", "skip")
# Clips are buffered (copied, so each video is freed once cut) until this many feature bytes, then written
# as one row group: writing holds about this plus one video. Measured on 300 x 901 x 256 clips: reading all
# clips takes the same time (within noise) for groups of 8 to 512 MiB, writing slows as groups grow, and a
# reader of a few clips decodes only the groups that hold them: so moderate groups.
ROW_GROUP_BYTES = 64 * 2**20
# Codecs for the ``features`` column (the metadata columns are always zstd). Measured on 900 x 256 float32
# clips (bench/bench_clip_features.py): zstd saves ~8 % on dense random floats, ~35-45 % on float16-derived
# or half-zero (ReLU-like) values, but loads ~4x slower than raw bytes from the page cache.
FEATURE_CODECS = ("none", "zstd", "lz4")
_FLOAT32_LE = np.dtype("<f4")
_CLIP_COLUMNS = ("clip_uid", "video_uid", "video_start_sec", "video_end_sec")


def save_video_features(array: np.ndarray, path: str | Path) -> None:
    """Write ``array`` ``[N, D]`` as an official per-video feature file (a saved tensor), atomically.

    The tensor is serialised in memory first: saving to the temporary path would embed its name in the archive
    and break byte-identical reruns.
    """
    buf = io.BytesIO()
    torch.save(torch.from_numpy(np.ascontiguousarray(array)), buf)
    with atomic_path(Path(path)) as tmp:
        tmp.write_bytes(buf.getvalue())


def load_video_features(
    path: Path,
    *,
    expected_dim: int,
    num_frames: int | None = None,
    video_uid: str | None = None,
    grid: FeatureGrid = timegrid.OFFICIAL,
) -> np.ndarray:
    """Load one per-video feature file as a float32 array ``[N, expected_dim]``, validating it.

    Float16 (the ``_fp16`` releases) and other float dtypes are cast to float32. ``num_frames`` (the canonical
    video's frame count) enables the row-count check against ``grid``, with a tolerance of
    :data:`ROW_COUNT_TOLERANCE` rows.
    Every problem raises :class:`InputError` naming the file and the video: missing or unreadable file, not a
    2-D float tensor, wrong dim, no rows, wrong row count, NaN/Inf values.
    """
    path = Path(path)
    video_uid = video_uid if video_uid is not None else path.stem
    record = f"video_uid={video_uid}"
    if not path.is_file():
        raise InputError(path, "video feature file not found", record=record, expected=f"{video_uid}.pt")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch.load raises RuntimeError, EOFError, UnpicklingError, ... on a bad file
        raise InputError(
            path,
            f"cannot read feature file, truncated or not a torch save ({type(e).__name__}: {e})",
            record=record,
        ) from e
    if not isinstance(obj, torch.Tensor):
        raise InputError(
            path,
            f"file holds a {type(obj).__name__}, not a tensor",
            record=record,
            expected="a torch.Tensor [N, D]",
        )
    if obj.ndim != 2:
        raise InputError(
            path,
            f"tensor has shape {tuple(obj.shape)}",
            record=record,
            field="shape",
            expected="a 2-D tensor [N, D]",
        )
    if not obj.is_floating_point():
        raise InputError(
            path, f"tensor has dtype {obj.dtype}", record=record, field="dtype", expected="float16 or float32"
        )
    rows, dim = obj.shape
    if dim != expected_dim:
        raise InputError(
            path,
            f"feature dim is {dim}, expected {expected_dim}: the config's feature dim must match the "
            "feature files",
            record=record,
            field="dim",
            expected=str(expected_dim),
        )
    if rows == 0:
        raise InputError(path, "tensor has no rows", record=record, field="num_rows", expected=">= 1 row")
    if num_frames is not None:
        want = grid.num_rows(num_frames)
        if abs(rows - want) > ROW_COUNT_TOLERANCE:
            raise InputError(
                path,
                f"tensor has {rows} rows but a video of {num_frames} frames has {want} features",
                record=record,
                field="num_rows",
                expected=f"{want} +/- {ROW_COUNT_TOLERANCE}",
            )
    features = obj.detach().to(torch.float32).contiguous().numpy()
    bad = ~np.isfinite(features).all(axis=1)
    if bad.any():
        raise InputError(
            path,
            f"{int(bad.sum())} rows hold NaN or Inf, the first is row {int(np.argmax(bad))}",
            record=record,
            field="features",
            expected="finite values",
        )
    return features


def _nominal_last_row(video_end_sec: float, first: int, mode: str, grid: FeatureGrid) -> int:
    """The clip's last row before clipping to the video's rows (see :func:`cut_clip`)."""
    if mode == "compatible":
        return int(video_end_sec * grid.rows_per_second)
    return max(math.ceil(video_end_sec * grid.rows_per_second) - 1, first)


def clip_rows(
    video_start_sec: float,
    video_end_sec: float,
    num_rows: int,
    *,
    mode: str = "compatible",
    clip_uid: str | None = None,
    source: Path | None = None,
    grid: FeatureGrid = timegrid.OFFICIAL,
) -> tuple[int, int]:
    """Rows ``(first, last)``, both INCLUSIVE, of a clip in a video with ``num_rows`` feature rows.

    See :func:`cut_clip` for the two modes; ``last`` is clipped to ``num_rows - 1``. ``clip_uid`` and
    ``source`` (the feature file) only locate errors.
    """
    if mode not in CUT_MODES:
        raise ValueError(f"unknown cut mode {mode!r}; expected one of {CUT_MODES}")
    record = f"clip_uid={clip_uid}" if clip_uid is not None else None
    vs, ve = float(video_start_sec), float(video_end_sec)
    if not (math.isfinite(vs) and vs >= 0.0):
        raise InputError(
            source,
            f"video_start_sec is {vs}",
            record=record,
            field="video_start_sec",
            expected="a finite time >= 0",
        )
    if not (math.isfinite(ve) and ve >= vs):
        raise InputError(
            source,
            f"video_end_sec is {ve} (video_start_sec {vs})",
            record=record,
            field="video_end_sec",
            expected="a finite time >= video_start_sec",
        )
    first = int(vs * grid.rows_per_second)
    last = _nominal_last_row(ve, first, mode, grid)
    if first > num_rows - 1:
        raise InputError(
            source,
            f"clip starts at feature row {first} (video_start_sec {vs}) but the video has only "
            f"{num_rows} feature rows",
            record=record,
            field="video_start_sec",
            expected=f"a start before {num_rows / grid.rows_per_second:.3f} s",
        )
    return first, min(last, num_rows - 1)


def cut_clip(
    features: np.ndarray,
    video_start_sec: float,
    video_end_sec: float,
    *,
    mode: str = "compatible",
    clip_uid: str | None = None,
    source: Path | None = None,
    grid: FeatureGrid = timegrid.OFFICIAL,
) -> np.ndarray:
    """The rows of a video's ``features [N, D]`` that belong to the clip ``[video_start_sec, video_end_sec]``.

    With ``r = grid.rows_per_second`` (1.875 on the official grid) and row ``i`` starting at ``i / r`` s:

    - ``"compatible"`` (reference, prepare_ego4d_dataset.py): rows ``int(vs * r) .. int(ve * r)`` INCLUSIVE.
      The reference means a ceil for the end but ``int()`` truncates first, so when ``ve * r`` is integral the
      row that starts exactly at the clip end is included: a clip [0, 480] gets rows 0..900, 901 rows.
    - ``"corrected"``: from the row whose window contains ``vs`` (``floor(vs * r)``, as in compatible mode)
      to the last row starting strictly before ``ve`` (``ceil(ve * r) - 1``), at least one row: [0, 480]
      gets rows 0..899, 900 rows. The modes differ only when ``ve * r`` is integral (by that one row).

    Worked example, ``vs = 10.3``, ``ve = 490.3`` (``vs*r = 19.3125``, ``ve*r = 919.3125``): both modes give
    rows 19..919 (901 rows). With ``vs = 8.0``, ``ve = 488.0`` (``15.0``, ``915.0``): compatible 15..915
    (901 rows), corrected 15..914 (900 rows).

    Both modes clip the last row to ``N - 1`` (a clip that outlives its video's features gets fewer rows); a
    clip starting after the last row raises :class:`InputError` naming ``clip_uid``. Returns a view.
    """
    first, last = clip_rows(
        video_start_sec, video_end_sec, len(features), mode=mode, clip_uid=clip_uid, source=source, grid=grid
    )
    return features[first : last + 1]


def _clip_table(clips: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """The cut columns of ``clips``, one row per clip_uid, sorted by (video_uid, clip_uid); and the number of
    exact duplicates dropped. A clip_uid listed twice with different values is an error."""
    for column in _CLIP_COLUMNS:
        if column not in clips.columns:
            raise InputError(None, "clip table lacks a column", field=column, expected=str(_CLIP_COLUMNS))
    table = clips.loc[:, list(_CLIP_COLUMNS)].astype(
        {"clip_uid": str, "video_uid": str, "video_start_sec": "float64", "video_end_sec": "float64"}
    )
    unique = table.drop_duplicates()
    conflicting = unique["clip_uid"].duplicated(keep=False)
    if conflicting.any():
        uid = unique.loc[conflicting, "clip_uid"].iloc[0]
        rows = unique[unique["clip_uid"] == uid].to_dict("records")
        raise InputError(
            None,
            f"clip listed twice with different values: {rows}",
            record=f"clip_uid={uid}",
            expected="one (video_uid, video_start_sec, video_end_sec) per clip_uid",
        )
    return unique.sort_values(["video_uid", "clip_uid"], kind="stable"), len(table) - len(unique)


class _RowGroupWriter:
    """Buffers clips for ``writer`` and writes them as one row group once they hold :data:`ROW_GROUP_BYTES`.

    Features are copied into one float32 buffer that is reused from group to group (the writer has encoded
    the values when ``write_table`` returns), so a long run does not allocate and fault in fresh memory for
    every group.
    """

    def __init__(self, writer: pq.ParquetWriter) -> None:
        self.writer = writer
        self.meta: dict[str, list] = {name: [] for name in CLIP_FEATURES.names if name != "features"}
        self.data = np.empty(0, dtype=_FLOAT32_LE)
        self.ends = [0]  # value boundaries in floats

    def add(self, features: np.ndarray, **meta: object) -> None:
        start, end = self.ends[-1], self.ends[-1] + features.size
        if end > len(self.data):
            grown = np.empty(max(end, 2 * len(self.data)), dtype=_FLOAT32_LE)
            grown[:start] = self.data[:start]
            self.data = grown
        self.data[start:end] = features.ravel()
        self.ends.append(end)
        for name, value in meta.items():
            self.meta[name].append(value)
        if end * _FLOAT32_LE.itemsize >= ROW_GROUP_BYTES:
            self.flush()

    def flush(self) -> None:
        count = len(self.ends) - 1
        if count == 0:
            return
        offsets = np.asarray(self.ends, dtype=np.int64) * _FLOAT32_LE.itemsize
        features = pa.LargeBinaryArray.from_buffers(
            pa.large_binary(), count, [None, pa.py_buffer(offsets), pa.py_buffer(self.data[: self.ends[-1]])]
        ).cast(pa.binary_view())  # views into the same data buffer
        arrays = [pa.array(self.meta[f.name], type=f.type) for f in CLIP_FEATURES if f.name != "features"]
        self.writer.write_table(
            pa.Table.from_arrays([*arrays, features], schema=CLIP_FEATURES), row_group_size=count
        )
        self.ends = [0]
        for values in self.meta.values():
            values.clear()


def cut_clips(
    clips: pd.DataFrame,
    feature_dir: Path,
    out_path: Path,
    *,
    expected_dim: int,
    mode: str = "compatible",
    on_missing: str = "error",
    num_frames: dict[str, int] | None = None,
    shapes_json: Path | None = None,
    compression: str = "none",
    grid: FeatureGrid = timegrid.OFFICIAL,
) -> dict:
    """Cut every clip of ``clips`` from ``<feature_dir>/<video_uid>.pt`` into one parquet file ``out_path``.

    ``clips`` needs the columns clip_uid, video_uid, video_start_sec, video_end_sec (the CLIPS table, or a
    frame built from any list of such tuples); other columns are ignored. Rows are written sorted by
    (video_uid, clip_uid); each video is loaded once and dropped before the next, and clips are flushed in row
    groups of about :data:`ROW_GROUP_BYTES`, so memory stays bounded. The write is atomic: an error leaves no
    ``out_path`` (nor ``shapes_json``). ``mode``: see :func:`cut_clip`. ``on_missing``: ``"error"`` raises
    for a missing video file, ``"skip"`` skips its clips and counts them (unreadable files always raise).
    ``num_frames`` (``{video_uid: frames}``) enables the row-count check of :func:`load_video_features`.
    ``compression``: codec of the features column, one of :data:`FEATURE_CODECS` (``"none"`` loads fastest;
    ``"zstd"`` when disk matters more, e.g. float16 source features). ``grid``: the set's time grid (row
    counts and the time-to-row mapping), recorded in the stats as ``rows_per_second`` and in the file's
    schema metadata (:func:`clip_features_grid`).

    Returns stats: clips_in (input rows), clips_duplicate (identical repeated rows dropped), clips_written,
    clips_skipped_missing_video, clips_cut_short (clip ends after its video's last feature row),
    videos_loaded, videos_missing, row_count_off_by_one (videos one row off their frame count),
    videos_row_count_unchecked (no frame count given), rows_written, bytes_written (file size), mode, dim,
    rows_per_second, seconds.
    """
    if mode not in CUT_MODES:
        raise ValueError(f"unknown cut mode {mode!r}; expected one of {CUT_MODES}")
    if on_missing not in ON_MISSING:
        raise ValueError(f"unknown on_missing {on_missing!r}; expected one of {ON_MISSING}")
    if compression not in FEATURE_CODECS:
        raise ValueError(f"unknown compression {compression!r}; expected one of {FEATURE_CODECS}")
    started = time.perf_counter()
    feature_dir, out_path = Path(feature_dir), Path(out_path)
    table, duplicates = _clip_table(clips)
    stats = {
        "clips_in": len(clips),
        "clips_duplicate": duplicates,
        "clips_written": 0,
        "clips_skipped_missing_video": 0,
        "clips_cut_short": 0,
        "videos_loaded": 0,
        "videos_missing": 0,
        "row_count_off_by_one": 0,
        "videos_row_count_unchecked": 0,
        "rows_written": 0,
        "bytes_written": 0,
        "mode": mode,
        "dim": expected_dim,
        "rows_per_second": grid.rows_per_second,
        "seconds": 0.0,
    }
    shapes: dict[str, int] = {}
    groups = table.groupby("video_uid", sort=True)
    with atomic_path(out_path) as tmp:
        codecs = {name: "zstd" for name in CLIP_FEATURES.names} | {"features": compression}
        grid_json = json.dumps(dataclasses.asdict(grid), sort_keys=True)
        with pq.ParquetWriter(
            tmp,
            CLIP_FEATURES.with_metadata({GRID_KEY: grid_json}),
            compression=codecs,
            use_dictionary=["video_uid", "mode"],
            write_statistics=["clip_uid", "video_uid"],
        ) as writer:
            row_groups = _RowGroupWriter(writer)
            for video_uid, group in tqdm(
                groups, total=groups.ngroups, desc="videos", unit="video", disable=None
            ):
                path = feature_dir / f"{video_uid}.pt"
                if on_missing == "skip" and not path.is_file():
                    stats["videos_missing"] += 1
                    stats["clips_skipped_missing_video"] += len(group)
                    logger.warning("%s: feature file missing, %d clips skipped", path, len(group))
                    continue
                frames = num_frames.get(video_uid) if num_frames is not None else None
                features = load_video_features(
                    path, expected_dim=expected_dim, num_frames=frames, video_uid=video_uid, grid=grid
                )
                stats["videos_loaded"] += 1
                if frames is None:
                    stats["videos_row_count_unchecked"] += 1
                elif len(features) != grid.num_rows(frames):
                    stats["row_count_off_by_one"] += 1
                    logger.warning(
                        "%s: %d rows, %d expected for %d frames",
                        path,
                        len(features),
                        grid.num_rows(frames),
                        frames,
                    )
                for clip in group.itertuples(index=False):
                    first, last = clip_rows(
                        clip.video_start_sec,
                        clip.video_end_sec,
                        len(features),
                        mode=mode,
                        clip_uid=clip.clip_uid,
                        source=path,
                        grid=grid,
                    )
                    if last < _nominal_last_row(clip.video_end_sec, first, mode, grid):
                        stats["clips_cut_short"] += 1
                    cut = features[first : last + 1]
                    row_groups.add(
                        cut,
                        clip_uid=clip.clip_uid,
                        video_uid=video_uid,
                        video_start_sec=clip.video_start_sec,
                        video_end_sec=clip.video_end_sec,
                        mode=mode,
                        num_rows=len(cut),
                        dim=expected_dim,
                    )
                    shapes[clip.clip_uid] = len(cut)
                    stats["rows_written"] += len(cut)
            row_groups.flush()
        stats["bytes_written"] = tmp.stat().st_size
        if shapes_json is not None:
            write_json(shapes, shapes_json)
    stats["clips_written"] = len(shapes)
    stats["seconds"] = round(time.perf_counter() - started, 3)
    logger.info(
        "cut %d clips (%d rows, mode %s) from %d videos into %s; %d clips skipped for %d missing videos, "
        "%d cut short, %d videos one row off",
        stats["clips_written"],
        stats["rows_written"],
        mode,
        stats["videos_loaded"],
        out_path,
        stats["clips_skipped_missing_video"],
        stats["videos_missing"],
        stats["clips_cut_short"],
        stats["row_count_off_by_one"],
    )
    return stats


def clip_features_grid(path: Path) -> FeatureGrid:
    """The time grid the clips of a :func:`cut_clips` file were cut on (its schema metadata); the official
    grid for a file written before grids were recorded."""
    raw = (pq.read_schema(path).metadata or {}).get(GRID_KEY)
    if raw is None:
        return timegrid.OFFICIAL
    try:
        return FeatureGrid(**json.loads(raw))
    except (TypeError, ValueError) as e:
        raise InputError(path, f"unreadable feature grid metadata ({e})", field="feature_grid") from e


def _open_clip_features(path: Path) -> pq.ParquetFile:
    """Open a clip-feature file, checking that it has every column of :data:`CLIP_FEATURES` with its type."""
    if not path.is_file():
        raise InputError(path, "clip feature file not found")
    # pre_buffer coalesces the reads of a row group: faster than memory_map when the file is not cached
    parquet = pq.ParquetFile(path, pre_buffer=True)
    found = parquet.schema_arrow
    for field in CLIP_FEATURES:
        if field.name not in found.names:
            raise InputError(path, "column missing", field=field.name, expected=str(field.type))
        if found.field(field.name).type != field.type:
            raise InputError(
                path,
                f"column has type {found.field(field.name).type}",
                field=field.name,
                expected=str(field.type),
            )
    return parquet


_VIEW = np.dtype([("length", "<i4"), ("prefix", "V4"), ("buffer", "<i4"), ("offset", "<i4")])


def _binary_view_values(values: pa.BinaryViewArray) -> list[np.ndarray]:
    """The values of a binary_view array as uint8 numpy views of its buffers (no copy).

    Each 16-byte view is (int32 length, 4-byte prefix, int32 buffer index, int32 offset); a value of at most
    12 bytes sits inline in its view, after the length.
    """
    _, views_buffer, *data_buffers = values.buffers()
    first, count = values.offset, len(values)
    views = np.frombuffer(views_buffer, dtype=_VIEW, count=first + count)[first:]
    inline = np.frombuffer(views_buffer, dtype=np.uint8, count=16 * (first + count)).reshape(-1, 16)[first:]
    data = [np.frombuffer(b, dtype=np.uint8) for b in data_buffers]
    return [
        inline[i, 4 : 4 + n] if n <= 12 else data[b][o : o + n]
        for i, (n, b, o) in enumerate(
            zip(views["length"].tolist(), views["buffer"].tolist(), views["offset"].tolist(), strict=True)
        )
    ]


def read_clip_features(path: Path, clip_uids: Iterable[str] | None = None) -> dict[str, np.ndarray]:
    """Clip features of a :func:`cut_clips` file: ``{clip_uid: float32 array [num_rows, dim]}``.

    All clips in file order, as zero-copy views of the decoded parquet buffers; or the named ``clip_uids`` in
    the order given, decoding only the row groups that hold them and returning copies (so the rest of those
    row groups is freed). An unknown clip uid raises :class:`InputError` naming the file and the uid.
    """
    path = Path(path)
    parquet = _open_clip_features(path)
    wanted = None if clip_uids is None else list(dict.fromkeys(clip_uids))
    keep = None if wanted is None else set(wanted)
    row_groups = list(range(parquet.num_row_groups))
    if wanted is not None:
        where = {}
        for group in range(parquet.num_row_groups):
            for uid in parquet.read_row_group(group, columns=["clip_uid"]).column(0).to_pylist():
                where[uid] = group
        for uid in wanted:
            if uid not in where:
                raise InputError(
                    path,
                    "clip not in the feature file",
                    record=f"clip_uid={uid}",
                    field="clip_uid",
                    expected="a clip_uid written by cut_clips",
                )
        row_groups = sorted({where[uid] for uid in wanted})
    table = parquet.read_row_groups(row_groups, columns=["clip_uid", "num_rows", "dim", "features"])
    out: dict[str, np.ndarray] = {}
    for batch in table.to_batches():
        uids = batch.column(0).to_pylist()
        num_rows = batch.column(1).to_numpy()
        dims = batch.column(2).to_numpy()
        values = _binary_view_values(batch.column(3))
        for uid, raw, rows, dim in zip(uids, values, num_rows, dims, strict=True):
            if len(raw) != int(rows) * int(dim) * _FLOAT32_LE.itemsize:
                raise InputError(
                    path,
                    f"features hold {len(raw)} bytes, not num_rows * dim * 4",
                    record=f"clip_uid={uid}",
                    field="features",
                    expected=f"{int(rows) * int(dim) * 4} bytes",
                )
            array = raw.view(_FLOAT32_LE).reshape(int(rows), int(dim))
            if keep is None:
                out[uid] = array
            elif uid in keep:
                out[uid] = array.copy()
    if wanted is None:
        return out
    return {uid: out[uid] for uid in wanted}
