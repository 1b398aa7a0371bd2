"""VSLNet's query records, dataset and batches, built from the parquet tables (vslnet.md 1-3, 6; naq.md 2).

Two kinds of query table are accepted and told apart by their columns:

- ``TRAINING_QUERIES`` (``egonlq.queries.training_queries``): every training source, with a ``source`` column;
- ``QUERIES`` (``egonlq.data.tables``, one NLQ split): source ``nlq``; text-less entries are counted and left
out
  (VSLNet never predicts them); the unannotated test split gives records without labels.

The clip table (``CLIPS`` or ``TRAINING_CLIPS``) gives each clip's bounds, ``duration = video_end_sec -
video_start_sec``; the clip-feature file (``egonlq.data.features.CLIP_FEATURES``) its features, pooled ONCE
at load
to at most ``max_pos_len`` units (:func:`egonlq.grounding.spans.pool_features`), so ``v_len =
min(max_pos_len, rows)``.
A label ``(s_ind, e_ind)`` comes from :func:`egonlq.grounding.spans.span_labels` on the GT window clamped to
``[0, duration]`` (real GT may end after its clip), on the time grid recorded in the clip-feature file
(:func:`egonlq.data.features.clip_features_grid`: 1.875 rows/s for official features, the set's own rate
otherwise), kept in :attr:`Records.grid` so that predictions map back to seconds on the same grid.

Filters, in this order, each counted in :attr:`Records.stats`: no text, no GT window (only when labels are
required), source not selected, few-shot NLQ subsampling (``nlq_fraction``), zero-length windows
(``|end - start| <= 1/30`` s, when asked), clip without features (never silently: counted and logged),
deterministic cap (``max_queries``).

Few-shot (``nlq_fraction``): of the NLQ clips (rows of source ``nlq``), ``round(fraction * n)`` are kept,
drawn without replacement by ``numpy.random.default_rng(seed)`` from the sorted clip uids; every query of a
kept clip stays. Other sources are untouched; ``0`` keeps no NLQ query (zero-shot).

Jittering (naq.md 2.2) happens in :meth:`NLQDataset.__getitem__`, on each draw, for rows whose source
matches one of ``jitter_sources`` (``fnmatch`` patterns, default ``naq``), from the dataset's own seeded
``random.Random``; the highlighting target is built from the jittered span.

Text: a :class:`CachedText` (token embeddings from a :class:`~egonlq.grounding.text_encoder.TextCache`, the
default) or
an :class:`EncodedText` (the frozen encoder run on each batch); both give the same tensors up to the
cache's float16 rounding. :func:`collate` pads video and text with ZEROS (VSLNet's convolutions are not
masked, so padded values reach real units) and builds the masks.
"""

from __future__ import annotations

import logging
import random
from collections import Counter
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple, Protocol

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from torch import Tensor
from torch.utils.data import Dataset

from egonlq.data.features import CLIP_FEATURES, clip_features_grid, read_clip_features
from egonlq.data.tables import QUERIES, nlq_query_uids
from egonlq.errors import InputError
from egonlq.grounding.experiments import source_matches
from egonlq.grounding.spans import LABEL_MODES, highlight_labels, jitter_span, pool_features, span_labels
from egonlq.grounding.text_encoder import TextCache, TextEncoder, model_fingerprint, normalise_query
from egonlq.io import read_parquet
from egonlq.progress import tqdm
from egonlq.queries.training_queries import TRAINING_QUERIES
from egonlq.timegrid import ZERO_LENGTH_SEC, FeatureGrid

logger = logging.getLogger(__name__)

# The columns read from a clip table: CLIPS and TRAINING_CLIPS both have them.
CLIP_BOUNDS = pa.schema(
    [
        pa.field("clip_uid", pa.string(), nullable=False),
        pa.field("video_start_sec", pa.float64(), nullable=False),
        pa.field("video_end_sec", pa.float64(), nullable=False),
    ]
)
TEXT_SOURCES = ("cache", "encoder")
NO_LABEL = -1
_SHOW = 5  # offending ids named in an error message


def sources_matching(sources: Sequence[str], patterns: Collection[str]) -> np.ndarray:
    """Per entry of ``sources``, whether it matches one of the ``fnmatch`` patterns (bool array)."""
    verdict = {s: source_matches(s, patterns) for s in set(sources)}
    return np.array([verdict[s] for s in sources], dtype=bool)


# ---------------------------------------------------------------------------------------------- records


@dataclass
class Records:
    """One entry per query, as columns; ``features[clip[i]]`` is query i's pooled clip ``[v_len, Dv]``."""

    query_uid: list[str]
    source: list[str]
    clip_uid: list[str]
    annotation_uid: list[str]
    query_idx: np.ndarray  # int64, index in the annotation's ORIGINAL language_queries list
    text: list[str]  # normalise_query of the raw text
    clip: np.ndarray  # int64 index into ``features``
    duration: np.ndarray  # float64, video_end_sec - video_start_sec of the clip
    v_len: np.ndarray  # int64, rows of the pooled features
    s_ind: np.ndarray  # int64 label, NO_LABEL (-1) without a GT window
    e_ind: np.ndarray
    features: list[np.ndarray]  # float32 [v_len, Dv] per clip
    label_mode: str
    grid: FeatureGrid  # the clip features' time grid (rows per second), from their file
    stats: dict

    def __len__(self) -> int:
        return len(self.query_uid)


def _read_queries(path: Path) -> tuple[pd.DataFrame, str]:
    """The query table as a frame with the columns used here, and its kind (``training`` or ``nlq``)."""
    if not Path(path).is_file():
        raise InputError(path, "query table not found")
    names = pq.read_schema(path).names
    if "source" in names:
        table = read_parquet(path, TRAINING_QUERIES).to_pandas()
        table["has_text"] = table["query"].str.strip() != ""
        table["annotated"] = True
        return table, "training"
    table = read_parquet(path, QUERIES).to_pandas()
    table["source"] = "nlq"
    table["query_uid"] = nlq_query_uids(
        *(pa.array(table[c]) for c in ("clip_uid", "annotation_uid", "query_idx"))
    ).to_pylist()
    table["query"] = table["query"].fillna("")
    return table, "nlq"


def _read_clip_bounds(path: Path) -> pd.Series:
    """``clip_uid -> duration`` from a CLIPS or TRAINING_CLIPS table; conflicts and durations <= 0 refused."""
    if not Path(path).is_file():
        raise InputError(path, "clip table not found")
    frame = read_parquet(path, CLIP_BOUNDS).to_pandas().drop_duplicates()
    twice = frame["clip_uid"].duplicated(keep=False)
    if twice.any():
        uid = frame.loc[twice, "clip_uid"].iloc[0]
        raise InputError(
            path,
            "clip listed with different bounds",
            record=f"clip_uid={uid}",
            expected="one (video_start_sec, video_end_sec) per clip",
        )
    duration = (frame["video_end_sec"] - frame["video_start_sec"]).to_numpy()
    bad = ~(duration > 0)
    if bad.any():
        uid = frame["clip_uid"].to_numpy()[bad][0]
        raise InputError(
            path,
            f"clip duration {duration[bad][0]!r}",
            record=f"clip_uid={uid}",
            field="video_end_sec",
            expected="video_end_sec > video_start_sec",
        )
    return pd.Series(duration, index=frame["clip_uid"].to_numpy())


def _check_feature_file(path: Path) -> pq.ParquetFile:
    if not Path(path).is_file():
        raise InputError(path, "clip feature file not found")
    found = pq.read_schema(path)
    for field in CLIP_FEATURES:
        if field.name not in found.names or found.field(field.name).type != field.type:
            raise InputError(path, "not a clip-feature file", field=field.name, expected=str(field.type))
    return pq.ParquetFile(path)


def load_clip_units(
    path: Path, clip_uids: Collection[str], *, max_len: int, video_dim: int, progress: bool = True
) -> tuple[dict[str, np.ndarray], set[str]]:
    """Pooled features ``{clip_uid: [min(rows, max_len), Dv]}`` of the wanted clips found in the file, and
    the set of wanted clips it lacks. Each row group holding a wanted clip is decoded once.

    A clip whose ``dim`` differs from ``video_dim`` raises :class:`InputError` (the model's ``video_dim``
    must match the features) before any feature is decoded.
    """
    wanted = set(clip_uids)
    parquet = _check_feature_file(path)
    groups: dict[int, list[str]] = {}
    for g in range(parquet.num_row_groups):
        meta = parquet.read_row_group(g, columns=["clip_uid", "num_rows", "dim"]).to_pydict()
        for uid, rows, dim in zip(meta["clip_uid"], meta["num_rows"], meta["dim"], strict=True):
            if uid not in wanted:
                continue
            if dim != video_dim:
                raise InputError(
                    path,
                    f"features have dim {dim}",
                    record=f"clip_uid={uid}",
                    field="dim",
                    expected=f"{video_dim} (the model config's video_dim)",
                )
            if rows < 1:
                raise InputError(
                    path,
                    "clip has no feature rows",
                    record=f"clip_uid={uid}",
                    field="num_rows",
                    expected=">= 1",
                )
            groups.setdefault(g, []).append(uid)
    units: dict[str, np.ndarray] = {}
    for uids in tqdm(
        groups.values(), desc="pool clip features", unit="group", disable=None if progress else True
    ):
        for uid, x in read_clip_features(path, uids).items():
            units[uid] = np.ascontiguousarray(pool_features(x, max_len))
    return units, wanted - units.keys()


def _few_shot_mask(
    source: np.ndarray, clip_uid: np.ndarray, fraction: float, seed: int
) -> tuple[np.ndarray, int, int]:
    """Rows kept by the NLQ clip subsample (see the module docstring); and (NLQ clips, NLQ clips kept)."""
    is_nlq = source == "nlq"
    clips = np.array(sorted(set(clip_uid[is_nlq].tolist())), dtype=object)
    n_keep = int(round(fraction * len(clips)))
    if n_keep == len(clips):
        return np.ones(len(source), dtype=bool), len(clips), n_keep
    chosen = set(clips[np.random.default_rng(seed).choice(len(clips), n_keep, replace=False)].tolist())
    keep = ~is_nlq | np.array([c in chosen for c in clip_uid], dtype=bool)
    return keep, len(clips), n_keep


def load_records(
    queries: Path,
    clips: Path,
    features: Path,
    *,
    max_pos_len: int,
    label_mode: str,
    video_dim: int,
    require_labels: bool = False,
    sources: Collection[str] | None = None,
    nlq_fraction: float = 1.0,
    remove_zero_length: bool = False,
    max_queries: int | None = None,
    seed: int = 0,
    progress: bool = True,
) -> Records:
    """Query records of a query table (see the module docstring for the formats, filters and labels).

    ``sources``: ``fnmatch`` patterns of the sources kept (None: all). ``require_labels``: drop (and count)
    queries without a GT window; otherwise they get ``NO_LABEL``. ``max_queries``: keep a subset of that
    size drawn by ``numpy.random.default_rng([seed, 1])``, in table order.

    Stats: ``queries_in``, ``sources_in`` (queries per source before any filter), ``dropped_no_text``,
    ``dropped_not_annotated``, ``dropped_source``, ``dropped_few_shot``, ``nlq_clips``, ``nlq_clips_kept``,
    ``dropped_zero_length``, ``dropped_no_features``
    (queries) and ``clips_no_features`` (their clips), ``dropped_cap``, ``records``, ``clips``,
    ``zero_length_kept``, ``clamped_to_clip`` (GT window outside ``[0, duration]``), ``labels_at_first_unit``
    (label ``(0, 0)``), ``per_source`` (records per source), ``label_mode``, ``max_pos_len``,
    ``rows_per_second`` (of the features' grid).
    """
    if label_mode not in LABEL_MODES:
        raise ValueError(f"unknown label mode {label_mode!r}, expected one of {LABEL_MODES}")
    if not 0.0 <= nlq_fraction <= 1.0:
        raise ValueError(f"nlq_fraction must lie in [0, 1], got {nlq_fraction}")
    table, kind = _read_queries(queries)
    durations = _read_clip_bounds(clips)
    grid = clip_features_grid(features)
    stats: dict = {
        "queries_in": len(table),
        "sources_in": dict(sorted(Counter(table["source"]).items())),
        "label_mode": label_mode,
        "max_pos_len": max_pos_len,
        "rows_per_second": grid.rows_per_second,
    }

    def drop(mask: np.ndarray, name: str) -> None:
        nonlocal table
        stats[name] = int((~mask).sum())
        table = table[mask]

    drop(table["has_text"].to_numpy(bool), "dropped_no_text")
    drop(
        table["annotated"].to_numpy(bool) if require_labels else np.ones(len(table), bool),
        "dropped_not_annotated",
    )
    keep = (
        np.ones(len(table), bool) if sources is None else sources_matching(table["source"].tolist(), sources)
    )
    drop(keep, "dropped_source")
    keep, stats["nlq_clips"], stats["nlq_clips_kept"] = _few_shot_mask(
        table["source"].to_numpy(object), table["clip_uid"].to_numpy(object), nlq_fraction, seed
    )
    drop(keep, "dropped_few_shot")
    start, end = table["clip_start_sec"].to_numpy(np.float64), table["clip_end_sec"].to_numpy(np.float64)
    zero = table["annotated"].to_numpy(bool) & (np.abs(end - start) <= ZERO_LENGTH_SEC)
    drop(~zero if remove_zero_length else np.ones(len(table), bool), "dropped_zero_length")

    no_clip = ~table["clip_uid"].isin(durations.index).to_numpy()
    if no_clip.any():
        uids = sorted(set(table["clip_uid"][no_clip]))
        raise InputError(
            clips,
            f"{len(uids)} clip(s) of {queries} absent from the clip table",
            record=", ".join(uids[:_SHOW]),
            field="clip_uid",
        )
    units, absent = load_clip_units(
        features, set(table["clip_uid"]), max_len=max_pos_len, video_dim=video_dim, progress=progress
    )
    stats["clips_no_features"] = len(absent)
    drop(~table["clip_uid"].isin(absent).to_numpy(), "dropped_no_features")
    if absent:
        logger.warning(
            "%s: %d queries on %d clip(s) without features in %s are left out (e.g. %s)",
            queries,
            stats["dropped_no_features"],
            len(absent),
            features,
            ", ".join(sorted(absent)[:_SHOW]),
        )
    keep = np.ones(len(table), bool)
    if max_queries is not None and len(table) > max_queries:
        keep[:] = False
        keep[np.random.default_rng([seed, 1]).choice(len(table), max_queries, replace=False)] = True
    drop(keep, "dropped_cap")

    clip_names = sorted(set(table["clip_uid"]))
    clip_index = {uid: i for i, uid in enumerate(clip_names)}
    clip = np.array([clip_index[c] for c in table["clip_uid"]], dtype=np.int64)
    duration = durations.reindex(table["clip_uid"]).to_numpy(np.float64)
    v_len = np.array([len(units[c]) for c in clip_names], dtype=np.int64)[clip]
    s_ind = np.full(len(table), NO_LABEL, dtype=np.int64)
    e_ind = s_ind.copy()
    annotated = table["annotated"].to_numpy(bool)
    start, end = table["clip_start_sec"].to_numpy(np.float64), table["clip_end_sec"].to_numpy(np.float64)
    stats["zero_length_kept"] = int((annotated & (np.abs(end - start) <= ZERO_LENGTH_SEC)).sum())
    stats["clamped_to_clip"] = int((annotated & ((start < 0) | (end > duration) | (start > duration))).sum())
    rows = np.flatnonzero(annotated)
    for i in tqdm(rows, desc="labels", unit="query", disable=None if progress else True):
        s, e = min(max(start[i], 0.0), duration[i]), min(max(end[i], 0.0), duration[i])
        s_ind[i], e_ind[i] = span_labels(label_mode, s, e, duration[i], int(v_len[i]), grid=grid)
    stats["labels_at_first_unit"] = int(((s_ind == 0) & (e_ind == 0)).sum())
    stats["records"] = len(table)
    stats["clips"] = len(clip_names)
    stats["per_source"] = dict(sorted(Counter(table["source"]).items()))
    logger.info("%s (%s table): %s", queries, kind, stats)
    return Records(
        query_uid=table["query_uid"].tolist(),
        source=table["source"].tolist(),
        clip_uid=table["clip_uid"].tolist(),
        annotation_uid=table["annotation_uid"].tolist(),
        query_idx=table["query_idx"].to_numpy(np.int64),
        text=[normalise_query(t) for t in table["query"]],
        clip=clip,
        duration=duration,
        v_len=v_len,
        s_ind=s_ind,
        e_ind=e_ind,
        features=[units[c] for c in clip_names],
        label_mode=label_mode,
        grid=grid,
        stats=stats,
    )


# ------------------------------------------------------------------------------------------------- text


class TextSource(Protocol):
    """Token embeddings of a batch of normalised texts, zero-padded: ``([B, Lq, H], mask [B, Lq])``."""

    kind: str
    hidden_size: int
    fingerprint: str

    def embed(self, texts: Sequence[str], *, training: bool = False) -> tuple[Tensor, Tensor]: ...

    def missing(self, texts: Collection[str]) -> list[str]: ...

    def prepare(self, texts: Collection[str]) -> None: ...


def pad(arrays: Sequence[np.ndarray]) -> tuple[Tensor, Tensor]:
    """Stack ``[n_i, D]`` arrays into a zero-padded ``[B, max n_i, D]`` float32 tensor and its 0/1 mask."""
    length = max(len(a) for a in arrays)
    out = np.zeros((len(arrays), length, arrays[0].shape[1]), dtype=np.float32)
    mask = np.zeros((len(arrays), length), dtype=np.float32)
    for b, a in enumerate(arrays):
        out[b, : len(a)] = a
        mask[b, : len(a)] = 1.0
    return torch.from_numpy(out), torch.from_numpy(mask)


class CachedText:
    """Text from a cache written by :func:`egonlq.grounding.text_encoder.build_text_cache` (float32 on the
    way out)."""

    kind = "cache"

    def __init__(self, cache: TextCache):
        self.cache = cache
        self.hidden_size = cache.hidden_size
        self.fingerprint = cache.metadata["fingerprint"]

    def missing(self, texts: Collection[str]) -> list[str]:
        return sorted(t for t in set(texts) if t not in self.cache)

    def prepare(self, texts: Collection[str]) -> None:
        """Nothing to do: the cache holds every text."""

    def embed(self, texts: Sequence[str], *, training: bool = False) -> tuple[Tensor, Tensor]:
        return pad([self.cache.get(t) for t in texts])


class EncodedText:
    """Text encoded on the fly by the frozen encoder (eval mode), padding zeroed like the cache path.

    In eval mode a text's token embeddings are a function of the text, so each text is encoded once and kept
    in memory (up to ``memo_bytes``; texts beyond are encoded again on each batch): the encoder runs once
    per unique text instead of once per query and epoch (issue 15). :meth:`prepare` encodes the texts of a
    run up front in batches of texts with the same token count (no padding; ~10x faster on CPU than one
    text at a time); a text met later is encoded ALONE. Either way its values never depend on which
    training batch met it first, so a resumed run (whose memory starts empty) matches an uninterrupted one
    bit for bit.

    ``official=True`` is the published code's behaviour (compatibility mode ``official``): the encoder's
    outputs at padded positions are kept, and training batches run the frozen encoder in train mode
    (dropout active), as the reference's ``model.train()`` reaches it; evaluation batches stay in eval mode.
    Nothing is kept then: every batch runs the encoder, as the reference does.
    """

    kind = "encoder"

    def __init__(self, encoder: TextEncoder, *, official: bool = False, memo_bytes: int = 2**30):
        self.encoder = encoder
        self.official = official
        self.hidden_size = encoder.hidden_size
        self.fingerprint = encoder.fingerprint
        self.memo: dict[str, np.ndarray] = {}
        self.memo_bytes_left = memo_bytes

    def missing(self, texts: Collection[str]) -> list[str]:
        return []

    def prepare(self, texts: Collection[str], batch_size: int = 64) -> None:
        """Encode and keep the unique ``texts`` not kept yet, while ``memo_bytes`` lasts (nothing in the
        ``official`` mode, which encodes every batch).

        Texts are grouped by their (truncated) token count, so a batch has no padding and each row is the
        text's encoding alone, up to rounding. The batches depend on the set of texts only (sorted by token
        count, then text), so every run over the same texts keeps the same values.
        """
        if self.official:
            return
        todo = sorted(set(texts) - self.memo.keys())
        if not todo:
            return
        groups: dict[int, list[str]] = {}
        for text, n in zip(todo, self.encoder.token_lengths(todo), strict=True):
            groups.setdefault(min(n, self.encoder.max_tokens), []).append(text)
        for n in sorted(groups):
            group = groups[n]
            for start in range(0, len(group), batch_size):
                chunk = group[start : start + batch_size]
                hidden, _ = self.encoder.embed(chunk)
                for text, tokens in zip(chunk, hidden.cpu().numpy(), strict=True):
                    if tokens.nbytes > self.memo_bytes_left:
                        return
                    self.memo[text] = tokens
                    self.memo_bytes_left -= tokens.nbytes

    def embed(self, texts: Sequence[str], *, training: bool = False) -> tuple[Tensor, Tensor]:
        if self.official:
            return self.encoder.embed(list(texts), dropout=training)
        tokens: dict[str, np.ndarray] = {}
        for text in dict.fromkeys(t for t in texts if t not in self.memo):
            tokens[text] = self.encoder.embed([text])[0][0].cpu().numpy()  # [n_tokens, H]: no padding
            if tokens[text].nbytes <= self.memo_bytes_left:
                self.memo[text] = tokens[text]
                self.memo_bytes_left -= tokens[text].nbytes
        return pad([self.memo[t] if t in self.memo else tokens[t] for t in texts])


COMPAT_MODES = ("egonlq", "official")  # "official": the published VSLNet code's text and optimizer details


def make_text_source(
    kind: str,
    *,
    text_cache: Path | None,
    text_model: Path,
    max_len: int,
    device: str | torch.device = "cpu",
    compat: str = "egonlq",
) -> CachedText | EncodedText:
    """A :class:`CachedText` (``kind="cache"``; the cache must come from ``text_model`` with ``max_len``) or
    an :class:`EncodedText` (``kind="encoder"``) of the encoder in ``text_model``. ``compat="official"``
    needs the encoder (a cache holds neither padded outputs nor dropout)."""
    if compat not in COMPAT_MODES:
        raise ValueError(f"unknown compatibility mode {compat!r}, expected one of {COMPAT_MODES}")
    if compat == "official" and kind != "encoder":
        raise InputError(
            None, f"compatibility mode 'official' needs text 'encoder', not {kind!r}", field="text"
        )
    if kind == "cache":
        if text_cache is None:
            raise InputError(None, "text source 'cache' needs a text cache file", field="text_cache")
        return CachedText(TextCache.load(text_cache, model_path=text_model, max_len=max_len))
    if kind == "encoder":
        return EncodedText(
            TextEncoder(text_model, max_len=max_len, device=device), official=compat == "official"
        )
    raise ValueError(f"unknown text source {kind!r}, expected one of {TEXT_SOURCES}")


def check_text(records: Records, text: TextSource, *, text_dim: int, where: Path) -> None:
    """Refuse a text source whose size differs from the model's ``text_dim`` or that lacks a query text."""
    if text.hidden_size != text_dim:
        raise InputError(
            where,
            f"text embeddings have size {text.hidden_size}",
            field="text_dim",
            expected=f"{text_dim} (the model config's text_dim)",
        )
    missing = text.missing(records.text)
    if missing:
        raise InputError(
            where,
            f"{len(missing)} query text(s) not in the text cache (rebuild it)",
            record=", ".join(repr(t) for t in missing[:_SHOW]),
            field="text",
        )


def text_provenance(text: TextSource, text_model: Path) -> dict:
    """Which encoder produced the text features (for train_spec.json)."""
    return {
        "source": text.kind,
        "model_path": str(Path(text_model).resolve()),
        "fingerprint": model_fingerprint(text_model),
        "hidden_size": text.hidden_size,
    }


# ---------------------------------------------------------------------------------------- dataset, batch


class NLQDataset(Dataset):
    """Samples of :class:`Records`; jitters the labels of the configured sources on every draw."""

    def __init__(
        self,
        records: Records,
        *,
        jitter_factor: float = 0.0,
        jitter_sources: Collection[str] = ("naq",),
        extend: float = 0.1,
        seed: int = 0,
    ):
        if jitter_factor and jitter_factor <= 1:
            raise ValueError(f"jitter_factor must be 0 (off) or > 1, got {jitter_factor}")
        self.records = records
        self.jitter_factor = jitter_factor
        self.extend = extend
        self.rng = random.Random(seed)
        self.jittered = sources_matching(records.source, jitter_sources) & bool(jitter_factor)

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, i: int) -> dict:
        r = self.records
        v_len, s, e = int(r.v_len[i]), int(r.s_ind[i]), int(r.e_ind[i])
        labelled = s != NO_LABEL
        if labelled and self.jittered[i]:
            s, e = jitter_span(s, e, v_len, self.jitter_factor, self.rng)
        return {
            "index": i,
            "video": r.features[r.clip[i]],
            "text": r.text[i],
            "s_ind": s,
            "e_ind": e,
            "highlight": highlight_labels(s, e, v_len, self.extend)
            if labelled
            else np.zeros(v_len, np.float32),
        }


class Batch(NamedTuple):
    index: Tensor  # [B] record indices
    video: Tensor  # [B, Lv, Dv], zero-padded
    video_mask: Tensor  # [B, Lv]
    text: Tensor  # [B, Lq, H], zero-padded
    text_mask: Tensor  # [B, Lq]
    s_ind: Tensor  # [B] (-1 without a label)
    e_ind: Tensor  # [B]
    highlight: Tensor  # [B, Lv] 0/1 targets, 0 at padding

    def to(self, device: torch.device | str) -> Batch:
        return Batch(*(t.to(device) for t in self))


def collate(samples: Sequence[dict], text: TextSource, *, training: bool = False) -> Batch:
    """Pad a list of :meth:`NLQDataset.__getitem__` samples into a :class:`Batch` (zeros at padding).
    ``training``: a training batch (the ``official`` text source then runs its encoder with dropout)."""
    video, video_mask = pad([s["video"] for s in samples])
    highlight, _ = pad([s["highlight"][:, None] for s in samples])
    text_emb, text_mask = text.embed([s["text"] for s in samples], training=training)
    return Batch(
        index=torch.tensor([s["index"] for s in samples], dtype=torch.long),
        video=video,
        video_mask=video_mask,
        text=text_emb,
        text_mask=text_mask,
        s_ind=torch.tensor([s["s_ind"] for s in samples], dtype=torch.long),
        e_ind=torch.tensor([s["e_ind"] for s in samples], dtype=torch.long),
        highlight=highlight.squeeze(2),
    )
