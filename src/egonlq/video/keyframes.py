"""Keyframe selection for NLQ queries: per-frame relevance scores, AKS and baseline selections, and whether
the selected frames find the moment the query asks about.

Pipeline (aks.md, sections 1-2 and 8), per val query whose video has an mp4:

1. **Sample.** The video's keyframe grid (:func:`egonlq.video.frame_features.sample_grid`: the AKS reference
grid
   ``j * int(fps)`` at one sample per second, else ``sample_rate`` samples per second), restricted to the
   query's CLIP window ``[video_start_sec, video_end_sec]``. Times in the tables are clip-relative:
   ``frame_idx / fps - video_start_sec``.
2. **Score.** One score per sampled frame from a :class:`QueryScorer`: :class:`EncoderScorer` (cosine of a
   frame encoder's image and text embeddings, no logit scale: the reference ``clip`` scorer) or
   :class:`VSLNetScorer` (a trained VSLNet's per-unit highlight or inside-span mass, mapped to frames by
   time).
3. **Select.** Each method of :data:`METHODS` with each :class:`~egonlq.video.aks.AKSParams`:
``aks_reference`` and
   ``aks_improved`` (:func:`~egonlq.video.aks.select_keyframes`, the method fixing the mode), ``uniform`` and
   ``topk`` (budget ``M`` only).

Outputs: the :data:`SCORES` table (one row per query) and the :data:`SELECTION` table (one row per query and
setting), both sorted by ``query_uid``; PNGs of the selected frames of the first queries; and the
"does it find the moment?" table (:func:`moment_hit_table`) with its bar plot.

Progress: each finished query is appended to a JSONL progress file (flushed and fsync'd) before the next one
starts. Records are keyed by ``query_uid`` + scorer fingerprint (scores) and + method + parameters
(selections), so a rerun after an interruption skips what is done, reuses stored scores for new settings,
drops a torn last line, and writes the final tables atomically from the progress file.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import math
import time
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from tqdm import tqdm

from egonlq.data.tables import nlq_query_uids
from egonlq.errors import InputError
from egonlq.io import atomic_path, write_parquet, write_text
from egonlq.jsonl import JsonlStore
from egonlq.video.aks import (
    AKSParams,
    ConstantScoresWarning,
    Selection,
    select_keyframes,
    topk_selection,
    uniform_selection,
)
from egonlq.video.decode import VideoInfo, iter_frames, probe
from egonlq.video.frame_encoders import FrameEncoder, l2_normalise
from egonlq.video.frame_features import FRAME_EMBEDDINGS, encode_frames, sample_grid

logger = logging.getLogger(__name__)

METHODS = ("aks_reference", "aks_improved", "uniform", "topk")
UNIT_SCORES = ("highlight", "inside")
QUERY_COLUMNS = ("clip_uid", "video_uid", "annotation_uid", "query_idx", "query")
CLIP_COLUMNS = ("clip_uid", "video_uid", "video_start_sec", "video_end_sec")
PROGRESS_FORMAT = "egonlq-keyframes-progress/1"

# One row per scored query.
SCORES = pa.schema(
    [
        pa.field("query_uid", pa.string(), nullable=False),  # f"{clip_uid}:{annotation_uid}:{query_idx}"
        pa.field("video_uid", pa.string(), nullable=False),
        pa.field("clip_uid", pa.string(), nullable=False),
        pa.field("fps", pa.float64(), nullable=False),  # native average fps of the mp4
        pa.field("step", pa.int32()),  # AKS step int(fps) on the reference grid, null at another rate
        pa.field("sample_rate", pa.float64(), nullable=False),
        pa.field("video_start_sec", pa.float64(), nullable=False),  # clip start in the video
        pa.field("sampled_frame_idx", pa.list_(pa.int64()), nullable=False),  # native, ascending
        pa.field("scores", pa.list_(pa.float32()), nullable=False),  # one per sampled frame
        pa.field("scorer", pa.string(), nullable=False),
        pa.field("scorer_fingerprint", pa.string(), nullable=False),  # scorer + sampling + text
        pa.field("text", pa.string(), nullable=False),
    ]
)
# One row per query and setting (method, mode, parameters).
SELECTION = pa.schema(
    [
        pa.field("query_uid", pa.string(), nullable=False),
        pa.field("method", pa.string(), nullable=False),  # one of METHODS
        pa.field("mode", pa.string()),  # AKS mode ("reference" / "improved"), null for uniform and topk
        pa.field("M", pa.int32(), nullable=False),
        pa.field("L", pa.int32()),  # AKS only, as are t1, t2 and ratio
        pa.field("t1", pa.float64()),
        pa.field("t2", pa.float64()),
        pa.field("ratio", pa.int32()),
        pa.field("selected_frame_idx", pa.list_(pa.int64()), nullable=False),  # native, ascending
        pa.field("selected_time_s", pa.list_(pa.float64()), nullable=False),  # clip-relative seconds
        pa.field("n_selected", pa.int32(), nullable=False),
        pa.field("short_video", pa.bool_(), nullable=False),  # fewer samples than M: all returned
        pa.field("n_topped_up", pa.int32(), nullable=False),
        pa.field("scorer", pa.string(), nullable=False),
    ]
)
_SELECTION_ORDER = ["query_uid", "method", "M", "L", "t1", "t2", "ratio"]
# "Does it find the moment?": one row per setting.
MOMENT_HITS = pa.schema(
    [
        pa.field("setting", pa.string(), nullable=False),  # method and parameters, for tables and plots
        pa.field("scorer", pa.string()),  # null for uniform (it reads no score) or a single-scorer table
        pa.field("method", pa.string(), nullable=False),
        pa.field("mode", pa.string()),
        pa.field("M", pa.int32(), nullable=False),
        pa.field("L", pa.int32()),
        pa.field("t1", pa.float64()),
        pa.field("t2", pa.float64()),
        pa.field("ratio", pa.int32()),
        pa.field("n_queries", pa.int64(), nullable=False),  # queries with a GT window and a selection
        pa.field("mean_n_selected", pa.float64(), nullable=False),
        pa.field("frame_share_in_window", pa.float64()),  # selected frames inside the GT window / selected
        pa.field("query_hit_share", pa.float64()),  # queries with >= 1 selected frame inside the GT window
        pa.field("chance_frame_share", pa.float64()),  # mean GT length / clip length (random frames)
    ]
)


# ------------------------------------------------------------------------------------------------ scorers


@dataclass(frozen=True)
class ClipSample:
    """The sampled frames of one clip window: native ``frame_idx`` (ascending) of the mp4 at ``path``."""

    video_uid: str
    clip_uid: str
    path: Path
    fps: float
    step: int | None
    video_start_sec: float
    video_end_sec: float
    frame_idx: np.ndarray

    @property
    def times(self) -> np.ndarray:
        """Clip-relative times (s) of the sampled frames."""
        return self.frame_idx / self.fps - self.video_start_sec


@runtime_checkable
class QueryScorer(Protocol):
    """One relevance score per sampled frame of a clip for a query text."""

    name: str

    def score(self, clip: ClipSample, text: str) -> np.ndarray: ...

    def fingerprint(self) -> str: ...


def clip_scores(frame_embeddings: np.ndarray, text_embedding: np.ndarray) -> np.ndarray:
    """Cosine of each frame embedding ``[n, D]`` with the text embedding ``[D]``, float32 ``[n]``, in [-1, 1].

    No logit scale, as the AKS reference ``clip`` scorer. A zero embedding gives 0.
    """
    frames = l2_normalise(np.atleast_2d(frame_embeddings))
    text = l2_normalise(np.asarray(text_embedding, dtype=np.float32).reshape(1, -1))[0]
    if frames.shape[1] != text.shape[0]:
        raise ValueError(f"frame embeddings have size {frames.shape[1]}, the text embedding {text.shape[0]}")
    return np.clip(frames @ text, -1.0, 1.0).astype(np.float32)


class EncoderScorer:
    """Cosine scores of a :class:`~egonlq.video.frame_encoders.FrameEncoder`; each clip's frames encoded once.

    ``frame_table``: a :data:`~egonlq.video.frame_features.FRAME_EMBEDDINGS` file of the same encoder; a clip
    whose
    sampled frames are all in it is scored without decoding.
    """

    def __init__(self, encoder: FrameEncoder, *, batch_size: int = 32, frame_table: Path | None = None):
        self.encoder = encoder
        self.name = f"cosine:{encoder.name}"
        self.batch_size = batch_size
        self.frame_table = Path(frame_table) if frame_table is not None else None
        if self.frame_table is not None:
            _check_frame_table(self.frame_table, encoder)
        self._clip_key: tuple | None = None
        self._embeddings = np.zeros((0, encoder.dim), np.float32)
        self.stats = {"frames_encoded": 0, "frames_from_table": 0, "texts_encoded": 0}

    def fingerprint(self) -> str:
        return _sha("cosine", self.encoder.fingerprint())

    def frame_embeddings(self, clip: ClipSample) -> np.ndarray:
        key = (str(clip.path), clip.video_uid, clip.frame_idx.tobytes())
        if key != self._clip_key:
            table = self._from_table(clip) if self.frame_table is not None else None
            if table is not None:
                self._embeddings = table
                self.stats["frames_from_table"] += len(table)
            else:
                self._embeddings = encode_frames(
                    clip.path, clip.frame_idx, self.encoder, batch_size=self.batch_size
                )
                self.stats["frames_encoded"] += len(clip.frame_idx)
            self._clip_key = key
        return self._embeddings

    def score(self, clip: ClipSample, text: str) -> np.ndarray:
        frames = self.frame_embeddings(clip)
        self.stats["texts_encoded"] += 1
        return clip_scores(frames, self.encoder.encode_texts([text])[0])

    def _from_table(self, clip: ClipSample) -> np.ndarray | None:
        table = pq.read_table(
            self.frame_table,
            columns=["video_uid", "frame_idx", "embedding"],
            filters=[("video_uid", "=", clip.video_uid)],
        )
        row_of = {frame: row for row, frame in enumerate(table.column("frame_idx").to_pylist())}
        rows = [row_of.get(frame) for frame in clip.frame_idx.tolist()]
        if None in rows:
            return None
        flat = table.column("embedding").combine_chunks().flatten().to_numpy()
        return flat.reshape(len(row_of), self.encoder.dim)[rows].astype(np.float32)


def _check_frame_table(path: Path, encoder: FrameEncoder) -> None:
    if not path.is_file():
        raise InputError(path, "frame embedding table not found")
    schema = pq.read_schema(path)
    for field in FRAME_EMBEDDINGS:
        if field.name not in schema.names or schema.field(field.name).type != field.type:
            raise InputError(path, "not a frame embedding table", field=field.name, expected=str(field.type))
    fingerprint = (schema.metadata or {}).get(b"fingerprint", b"").decode()
    if fingerprint != encoder.fingerprint():
        raise InputError(
            path,
            "frame embeddings come from another encoder",
            field="fingerprint",
            expected=f"{encoder.name} ({encoder.fingerprint()[:12]}...)",
        )


def vslnet_unit_scores(model, features: np.ndarray, text: np.ndarray, *, unit_score: str = "highlight"):
    """Per-unit relevance ``[v_len]`` of a trained VSLNet for one clip and one query.

    ``features``: the clip's feature rows ``[rows, Dv]`` (pooled here to ``max_pos_len`` units as in
    training); ``text``: the query's token embeddings ``[Lq, Ht]`` (e.g. from a ``TextCache``).
    ``unit_score``: ``highlight`` (the highlighting layer's score in (0, 1); VSLBase has none) or ``inside``
    (``P(start <= u) * P(end >= u)`` from the start and end softmaxes: the probability mass of spans
    covering unit ``u`` if start and end were independent).
    """
    import torch

    from egonlq.grounding.spans import pool_features

    if unit_score not in UNIT_SCORES:
        raise ValueError(f"unit_score must be one of {UNIT_SCORES}, got {unit_score!r}")
    device = next(model.parameters()).device
    units = pool_features(np.asarray(features, dtype=np.float32), model.config.max_pos_len)
    video = torch.from_numpy(np.ascontiguousarray(units))[None].to(device)  # [1, v_len, Dv]
    tokens = torch.from_numpy(np.ascontiguousarray(text, dtype=np.float32))[None].to(device)  # [1, Lq, Ht]
    ones = dict(device=device)
    model.eval()
    with torch.no_grad():
        out = model(video, torch.ones(video.shape[:2], **ones), tokens, torch.ones(tokens.shape[:2], **ones))
    if unit_score == "highlight":
        if out.highlight is None:
            raise ValueError("this VSLNet has no highlighting layer (VSLBase): use unit_score='inside'")
        return out.highlight[0].float().cpu().numpy()
    p_start = torch.softmax(out.start_logits[0].float(), dim=0)
    p_end = torch.softmax(out.end_logits[0].float(), dim=0)
    started = torch.cumsum(p_start, dim=0)  # P(start <= u)
    not_ended = torch.flip(torch.cumsum(torch.flip(p_end, [0]), dim=0), [0])  # P(end >= u)
    return (started * not_ended).cpu().numpy()


def unit_scores_to_frames(
    unit_scores: np.ndarray, times: np.ndarray, duration: float, label_mode: str
) -> np.ndarray:
    """Score of each clip-relative time: that of the unit whose window (the model's label-mode grid) holds it.

    Times before the first unit or after the last one take the nearest unit.
    """
    from egonlq.grounding.spans import span_times

    v_len = len(unit_scores)
    starts = np.array([span_times(label_mode, u, u, duration, v_len)[0] for u in range(v_len)])
    unit = np.clip(np.searchsorted(starts, np.asarray(times, np.float64), side="right") - 1, 0, v_len - 1)
    return np.asarray(unit_scores, dtype=np.float32)[unit]


class VSLNetScorer:
    """Scores from a VSLNet trained by this workflow: per-unit relevance mapped to the sampled frames by time.

    ``model_dir``: a ``save_pretrained`` folder; ``clip_features``: the clip-feature parquet
    (``egonlq.data.features.CLIP_FEATURES``) the model reads; ``text_cache``: the query token embeddings;
    ``label_mode``: the one the model was trained with (it fixes the unit grid). Needs no decoded frames.
    """

    def __init__(
        self,
        model_dir: Path,
        clip_features: Path,
        text_cache: Path,
        *,
        label_mode: str,
        unit_score: str = "highlight",
        device: str = "cpu",
    ):
        from egonlq.grounding.spans import LABEL_MODES
        from egonlq.grounding.text_encoder import TextCache
        from egonlq.grounding.vslnet import CONFIG_NAME, WEIGHTS_NAME, VSLNet

        if label_mode not in LABEL_MODES:
            raise ValueError(f"label_mode must be one of {LABEL_MODES}, got {label_mode!r}")
        if unit_score not in UNIT_SCORES:
            raise ValueError(f"unit_score must be one of {UNIT_SCORES}, got {unit_score!r}")
        self.model_dir, self.clip_features = Path(model_dir), Path(clip_features)
        self.model = VSLNet.from_pretrained(self.model_dir, device=device)
        if unit_score == "highlight" and not self.model.config.highlight:
            raise InputError(
                self.model_dir / CONFIG_NAME,
                "VSLBase has no highlighting layer",
                field="highlight",
                expected="true, or unit_score 'inside'",
            )
        self.cache = TextCache.load(text_cache)
        if self.cache.hidden_size != self.model.config.text_dim:
            raise InputError(
                text_cache,
                f"token embeddings have size {self.cache.hidden_size}",
                field="hidden_size",
                expected=f"{self.model.config.text_dim} (the model's text_dim)",
            )
        if not self.clip_features.is_file():
            raise InputError(self.clip_features, "clip feature file not found")
        self.label_mode, self.unit_score = label_mode, unit_score
        self.name = f"vslnet:{unit_score}"
        self._fingerprint = _sha(
            "vslnet",
            (self.model_dir / CONFIG_NAME).read_bytes(),
            (self.model_dir / WEIGHTS_NAME).read_bytes(),
            self.cache.metadata["fingerprint"],
            label_mode,
            unit_score,
            _file_signature(self.clip_features),
        )
        self._clip_uid: str | None = None
        self._features = np.zeros((0, 0), np.float32)
        self.stats = {"clips_read": 0, "texts_scored": 0}

    def fingerprint(self) -> str:
        return self._fingerprint

    def score(self, clip: ClipSample, text: str) -> np.ndarray:
        from egonlq.data.features import read_clip_features

        if clip.clip_uid != self._clip_uid:
            self._features = read_clip_features(self.clip_features, [clip.clip_uid])[clip.clip_uid]
            self._clip_uid = clip.clip_uid
            self.stats["clips_read"] += 1
        units = vslnet_unit_scores(
            self.model, self._features, self.cache.get(text), unit_score=self.unit_score
        )
        self.stats["texts_scored"] += 1
        duration = clip.video_end_sec - clip.video_start_sec
        return unit_scores_to_frames(units, clip.times, duration, self.label_mode)


def _file_signature(path: Path, head: int = 1 << 20) -> str:
    """Name, size and first MiB of a (possibly large) file."""
    with open(path, "rb") as f:
        return _sha(path.name, str(path.stat().st_size), f.read(head))


def _sha(*parts: str | bytes) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part if isinstance(part, bytes) else part.encode())
        digest.update(b"\0")
    return digest.hexdigest()


# ---------------------------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class Setting:
    """One selection method with its parameters (``params`` for AKS, the budget ``M`` for the baselines)."""

    method: str
    M: int
    params: AKSParams | None = None

    @property
    def key(self) -> str:
        if self.params is None:
            return f"{self.method}|M={self.M}"
        p = self.params
        return f"{self.method}|M={p.M}|L={p.depth}|t1={p.t1!r}|t2={p.t2!r}|ratio={p.ratio}"

    def select(self, scores: np.ndarray, frame_ids: np.ndarray) -> Selection:
        if self.method == "uniform":
            return uniform_selection(frame_ids, self.M)
        if self.method == "topk":
            return topk_selection(scores, frame_ids, self.M)
        with warnings.catch_warnings():  # constant scores are counted by run_keyframes
            warnings.simplefilter("ignore", ConstantScoresWarning)
            return select_keyframes(scores, frame_ids, self.params)

    def columns(self) -> dict:
        p = self.params
        return {
            "method": self.method,
            "mode": p.mode if p else None,
            "M": self.M,
            "L": p.depth if p else None,
            "t1": float(p.t1) if p else None,
            "t2": float(p.t2) if p else None,
            "ratio": p.ratio if p else None,
        }


def settings_for(methods: Sequence[str], params_list: Sequence[AKSParams]) -> list[Setting]:
    """Every (method, parameters) pair, without repeats; the AKS methods set the mode of each ``AKSParams``,
    the baselines use its ``M`` only."""
    unknown = sorted(set(methods) - set(METHODS))
    if unknown:
        raise ValueError(f"unknown keyframe methods {unknown}, expected some of {METHODS}")
    if not params_list:
        raise ValueError("params_list is empty: give at least one AKSParams")
    out: dict[str, Setting] = {}
    for method in methods:
        for params in params_list:
            if method.startswith("aks_"):
                fixed = dataclasses.replace(params, mode=method.removeprefix("aks_"))
                setting = Setting(method, fixed.M, fixed)
            else:
                setting = Setting(method, params.M)
            out.setdefault(setting.key, setting)
    return list(out.values())


# ---------------------------------------------------------------------------------------------- progress


def _read_progress(record: Any) -> tuple[str, dict]:
    if record["format"] != PROGRESS_FORMAT:
        raise ValueError(f"format {record['format']!r}, expected {PROGRESS_FORMAT!r}")
    return record["key"], record["row"]


class ProgressLog(JsonlStore):
    """The keyframes progress file (:class:`~egonlq.jsonl.JsonlStore`) of records ``{"format", "key", "kind",
    "row"}``: ``key -> row``, the last record of a key winning."""

    def __init__(self, path: Path):
        super().__init__(
            path, _read_progress, expected="JSON lines written by run_keyframes (delete the file to restart)"
        )

    def append(self, records: Sequence[tuple[str, str, dict]]) -> None:
        """Append ``(key, kind, row)`` records in one write, then flush and fsync."""
        super().append(
            {"format": PROGRESS_FORMAT, "key": k, "kind": kind, "row": row} for k, kind, row in records
        )


# ------------------------------------------------------------------------------------------------- run


@dataclass
class _Query:
    query_uid: str
    video_uid: str
    clip_uid: str
    text: str
    video_start_sec: float
    video_end_sec: float
    path: Path


def query_uids(queries: pd.DataFrame) -> pd.Series:
    """The NLQ ``query_uid`` of each row (:func:`egonlq.data.tables.nlq_query_uids`)."""
    uids = nlq_query_uids(*(pa.array(queries[c]) for c in ("clip_uid", "annotation_uid", "query_idx")))
    return pd.Series(uids.to_pylist(), index=queries.index, dtype=object)


def run_keyframes(
    queries: pd.DataFrame,
    clips: pd.DataFrame,
    video_dir: Path,
    scorer: FrameEncoder | QueryScorer,
    *,
    params_list: Sequence[AKSParams],
    methods: Sequence[str] = METHODS,
    sample_rate: float = 1.0,
    out_scores: Path,
    out_selection: Path,
    frames_dir: Path | None = None,
    save_frames: int = 0,
    progress_path: Path,
    batch_size: int = 32,
) -> dict:
    """Score and select keyframes for every query with text whose video ``video_dir/<video_uid>.mp4`` exists.

    ``queries``: rows of ``tables.QUERIES`` (at least clip_uid, video_uid, annotation_uid, query_idx, query);
    ``clips``: rows of ``tables.CLIPS`` (clip bounds). ``scorer``: a :class:`QueryScorer`, or a frame encoder
    (wrapped in :class:`EncoderScorer`). ``save_frames``: the selected frames of the first ``save_frames``
    queries (by ``query_uid``) are written to ``frames_dir/<query_uid with ':' -> '_'>/<method>_<frame>.png``.
    See the module docstring for sampling, progress and outputs.

    Stats: ``queries_in``, ``queries_no_text``, ``queries_no_video``, ``queries_eligible``,
    ``queries_done_before`` (every record already in the progress file), ``queries_scored``,
    ``queries_reselected`` (stored scores, new settings), ``queries_no_frames`` (no sampled frame in the
    window), ``queries_failed`` and ``failed`` (``{clip_uid: message}``: unreadable video or scorer input),
    ``constant_scores``, ``short_video_rows``, ``score_rows``, ``selection_rows``, ``frames_saved``,
    ``progress_torn_lines``, ``progress_duplicates``, ``settings``, ``scorer``, ``scorer_fingerprint``,
    ``scorer_stats``, ``seconds``.
    """
    started = time.perf_counter()
    if not isinstance(scorer, QueryScorer):
        scorer = EncoderScorer(scorer, batch_size=batch_size)
    settings = settings_for(methods, params_list)
    if not math.isfinite(sample_rate) or sample_rate <= 0:
        raise ValueError(f"sample_rate must be a finite number > 0, got {sample_rate!r}")
    todo, stats = _eligible_queries(queries, clips, Path(video_dir))
    scorer_fp = _sha(scorer.fingerprint(), repr(float(sample_rate)))
    log = ProgressLog(progress_path)
    stats.update(progress_torn_lines=log.torn_lines, progress_duplicates=log.duplicates)
    save = set(sorted(q.query_uid for q in todo)[: max(save_frames, 0)]) if frames_dir is not None else set()
    counts = dict.fromkeys(
        [
            "queries_done_before",
            "queries_scored",
            "queries_reselected",
            "queries_no_frames",
            "queries_failed",
            "frames_saved",
        ],
        0,
    )
    failed: dict[str, str] = {}
    infos: dict[Path, VideoInfo] = {}

    pending = []
    for q in todo:
        skey = _score_key(q, scorer_fp)
        missing = [s for s in settings if _selection_key(q, s, scorer_fp) not in log]
        if skey in log and not missing:
            counts["queries_done_before"] += 1
        else:
            pending.append((q, skey, missing))
    pending.sort(key=lambda item: (item[0].video_uid, item[0].clip_uid, item[0].query_uid))
    for q, skey, missing in tqdm(pending, desc=f"keyframes ({scorer.name})", unit="query", disable=None):
        if q.clip_uid in failed:
            counts["queries_failed"] += 1
            continue
        try:
            row = log.get(skey)
            if row is None:
                clip = _clip_sample(q, sample_rate, infos)
                if len(clip.frame_idx) == 0:
                    counts["queries_no_frames"] += 1
                    continue
                scores = np.asarray(scorer.score(clip, q.text), dtype=np.float32)
                if scores.shape != clip.frame_idx.shape or not np.isfinite(scores).all():
                    raise ValueError(
                        f"scorer {scorer.name} returned {scores.shape} scores "
                        f"(finite: {np.isfinite(scores).all()}) for {len(clip.frame_idx)} frames"
                    )
                row = _score_row(q, clip, scores, scorer.name, scorer_fp, sample_rate)
                counts["queries_scored"] += 1
            else:
                counts["queries_reselected"] += 1
            records = [(skey, "scores", row)] if skey not in log else []
            records += [
                (_selection_key(q, s, scorer_fp), "selection", _selection_row(q, s, row, scorer.name))
                for s in missing
            ]
            log.append(records)
        except InputError as e:
            logger.warning("keyframes: skipping clip %s: %s", q.clip_uid, e)
            failed[q.clip_uid] = str(e)
            counts["queries_failed"] += 1

    # Frames for inspection, from the final records: complete after a resume or a changed setting too.
    for q in todo:
        row = log.get(_score_key(q, scorer_fp))
        if q.query_uid in save and q.clip_uid not in failed and row is not None:
            selected = [r for s in settings if (r := log.get(_selection_key(q, s, scorer_fp))) is not None]
            counts["frames_saved"] += _save_frames(q, row, selected, Path(frames_dir))
    stats.update(counts)
    stats["failed"] = failed
    stats.update(_write_tables(log, todo, settings, scorer_fp, out_scores, out_selection))
    stats.update(
        settings=len(settings),
        scorer=scorer.name,
        scorer_fingerprint=scorer_fp,
        scorer_stats=dict(getattr(scorer, "stats", {})),
        seconds=round(time.perf_counter() - started, 3),
    )
    logger.info(
        "keyframes: %d eligible queries of %d (%d without text, %d without video): %d done before, "
        "%d scored, %d re-selected, %d without frames, %d failed; %d selection rows",
        stats["queries_eligible"],
        stats["queries_in"],
        stats["queries_no_text"],
        stats["queries_no_video"],
        stats["queries_done_before"],
        stats["queries_scored"],
        stats["queries_reselected"],
        stats["queries_no_frames"],
        stats["queries_failed"],
        stats["selection_rows"],
    )
    return stats


def _eligible_queries(
    queries: pd.DataFrame, clips: pd.DataFrame, video_dir: Path
) -> tuple[list[_Query], dict]:
    for frame, columns, what in ((queries, QUERY_COLUMNS, "query"), (clips, CLIP_COLUMNS, "clip")):
        for column in columns:
            if column not in frame.columns:
                raise InputError(None, f"{what} table lacks a column", field=column, expected=str(columns))
    bounds = clips.loc[:, list(CLIP_COLUMNS)].drop_duplicates()
    twice = bounds["clip_uid"].duplicated(keep=False)
    if twice.any():
        raise InputError(
            None, "clip listed with different bounds", record=f"clip_uid={bounds.loc[twice].iloc[0, 0]}"
        )
    bounds = bounds.set_index("clip_uid")
    text = queries["query"].fillna("").astype(str).str.strip()
    has_text = (text != "").to_numpy()
    table = queries.loc[has_text].assign(query_uid=query_uids(queries.loc[has_text]), text=text[has_text])
    absent = sorted(set(table["clip_uid"]) - set(bounds.index))
    if absent:
        raise InputError(
            None,
            f"{len(absent)} clip(s) of the queries absent from the clip table",
            record=", ".join(absent[:5]),
            field="clip_uid",
        )
    dup = table["query_uid"].duplicated()
    if dup.any():
        raise InputError(
            None, "query listed twice", record=f"query_uid={table.loc[dup, 'query_uid'].iloc[0]}"
        )
    out, no_video = [], 0
    for r in table.sort_values("query_uid").itertuples(index=False):
        path = video_dir / f"{r.video_uid}.mp4"
        if not path.is_file():
            no_video += 1
            continue
        clip = bounds.loc[r.clip_uid]
        out.append(
            _Query(
                r.query_uid,
                r.video_uid,
                r.clip_uid,
                r.text,
                float(clip["video_start_sec"]),
                float(clip["video_end_sec"]),
                path,
            )
        )
    stats = {
        "queries_in": len(queries),
        "queries_no_text": int((~has_text).sum()),
        "queries_no_video": no_video,
        "queries_eligible": len(out),
    }
    return out, stats


def _clip_sample(q: _Query, sample_rate: float, infos: dict[Path, VideoInfo]) -> ClipSample:
    if q.path not in infos:
        infos[q.path] = probe(q.path)
    info = infos[q.path]
    idx, step = sample_grid(info, sample_rate)
    t = idx / info.fps
    inside = idx[(t >= q.video_start_sec) & (t <= q.video_end_sec)]
    return ClipSample(
        q.video_uid, q.clip_uid, q.path, info.fps, step, q.video_start_sec, q.video_end_sec, inside
    )


def _score_key(q: _Query, scorer_fp: str) -> str:
    return f"scores|{q.query_uid}|{scorer_fp}|{_sha(q.text)[:16]}"


def _selection_key(q: _Query, setting: Setting, scorer_fp: str) -> str:
    return f"selection|{q.query_uid}|{setting.key}|{scorer_fp}|{_sha(q.text)[:16]}"


def _score_row(
    q: _Query, clip: ClipSample, scores: np.ndarray, scorer: str, scorer_fp: str, sample_rate: float
) -> dict:
    return {
        "query_uid": q.query_uid,
        "video_uid": q.video_uid,
        "clip_uid": q.clip_uid,
        "fps": clip.fps,
        "step": clip.step,
        "sample_rate": float(sample_rate),
        "video_start_sec": q.video_start_sec,
        "sampled_frame_idx": clip.frame_idx.tolist(),
        "scores": scores.astype(np.float32).tolist(),
        "scorer": scorer,
        "scorer_fingerprint": scorer_fp,
        "text": q.text,
    }


def _selection_row(q: _Query, setting: Setting, score_row: dict, scorer: str) -> dict:
    ids = np.asarray(score_row["sampled_frame_idx"], dtype=np.int64)
    sel = setting.select(np.asarray(score_row["scores"], dtype=np.float32), ids)
    chosen = np.asarray(sel.frame_ids, dtype=np.int64)
    return {
        "query_uid": q.query_uid,
        **setting.columns(),
        "selected_frame_idx": chosen.tolist(),
        "selected_time_s": (chosen / score_row["fps"] - score_row["video_start_sec"]).tolist(),
        "n_selected": len(chosen),
        "short_video": sel.short_video,
        "n_topped_up": sel.n_topped_up,
        "scorer": scorer,
    }


def _save_frames(q: _Query, score_row: dict, selections: Iterable[dict], frames_dir: Path) -> int:
    """Write the selected frames of one query as PNG, one file per method and frame (the union over the
    method's parameter sets); files already there are kept. Returns the count written."""
    from PIL import Image

    folder = frames_dir / q.query_uid.replace(":", "_")
    wanted: dict[int, set[str]] = {}
    for row in selections:
        for frame in row["selected_frame_idx"]:
            if not (folder / f"{row['method']}_{frame}.png").exists():
                wanted.setdefault(frame, set()).add(row["method"])
    if not wanted:
        return 0
    written = 0
    for batch, frames in iter_frames(q.path, np.array(sorted(wanted), dtype=np.int64)):
        for frame_idx, image in zip(batch.tolist(), frames, strict=True):
            for method in sorted(wanted[frame_idx]):
                with atomic_path(folder / f"{method}_{frame_idx}.png") as tmp:
                    Image.fromarray(image).save(tmp, format="PNG")
                written += 1
    return written


def _write_tables(
    log: ProgressLog,
    todo: list[_Query],
    settings: list[Setting],
    scorer_fp: str,
    out_scores: Path,
    out_selection: Path,
) -> dict:
    """The final tables of this run's queries and settings, from the progress records, written atomically."""
    score_rows, selection_rows = [], []
    for q in todo:
        row = log.get(_score_key(q, scorer_fp))
        if row is None:
            continue
        score_rows.append(row)
        selection_rows += [r for s in settings if (r := log.get(_selection_key(q, s, scorer_fp))) is not None]
    scores = pa.Table.from_pylist(score_rows, schema=SCORES).sort_by("query_uid")
    selection = pa.Table.from_pylist(selection_rows, schema=SELECTION)
    selection = selection.sort_by([(c, "ascending") for c in _SELECTION_ORDER])
    write_parquet(scores, out_scores, SCORES)
    write_parquet(selection, out_selection, SELECTION)
    constant = sum(len(set(r["scores"])) <= 1 for r in score_rows)
    return {
        "score_rows": scores.num_rows,
        "selection_rows": selection.num_rows,
        "constant_scores": constant,
        "short_video_rows": int(pc.sum(selection.column("short_video")).as_py() or 0),
    }


# ------------------------------------------------------------------------------------ does it find it?


def moment_hit_table(
    selection: pd.DataFrame, queries: pd.DataFrame, *, clips: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Per setting: how often the selected frames fall inside the query's ground-truth window.

    ``frame_share_in_window``: selected frames with a clip-relative time in ``[clip_start_sec,
    clip_end_sec]``, over all selected frames (pooled over queries); ``query_hit_share``: queries with at
    least one such frame; ``mean_n_selected``. Only queries with a GT window count. With ``clips``,
    ``chance_frame_share`` is the mean of GT length / clip length: the share of a uniformly random frame.
    Rows follow :data:`MOMENT_HITS`, sorted by method and parameters. A ``selection`` pooling several scorers
    (its ``scorer`` column) gets one row per scorer and setting, the scorer named in the label; ``uniform``
    reads no score, so its rows count once (scorer null).
    """
    gt = queries.assign(query_uid=query_uids(queries)).dropna(subset=["clip_start_sec", "clip_end_sec"])
    gt = gt.drop_duplicates("query_uid").set_index("query_uid")
    chance = None
    if clips is not None:
        bounds = clips.drop_duplicates("clip_uid").set_index("clip_uid")
        length = (bounds["video_end_sec"] - bounds["video_start_sec"]).reindex(gt["clip_uid"]).to_numpy()
        share = np.clip((gt["clip_end_sec"] - gt["clip_start_sec"]).to_numpy() / length, 0.0, 1.0)
        chance = pd.Series(share, index=gt.index)
    rows = []
    keys = ["scorer", "method", "mode", "M", "L", "t1", "t2", "ratio"]
    sel = selection[selection["query_uid"].isin(gt.index)]
    several = "scorer" in sel.columns and sel["scorer"].nunique() > 1
    if several:
        uniform = sel["method"] == "uniform"
        sel = sel.assign(scorer=sel["scorer"].where(~uniform, None))
        sel = sel.drop_duplicates(["query_uid", *keys])  # uniform rows: the same frames for any scorer
    else:
        sel = sel.assign(scorer=None)
    for values, group in sel.groupby(keys, dropna=False, sort=True):
        start = gt.loc[group["query_uid"], "clip_start_sec"].to_numpy()
        end = gt.loc[group["query_uid"], "clip_end_sec"].to_numpy()
        inside = [
            int(((np.asarray(t) >= s) & (np.asarray(t) <= e)).sum())
            for t, s, e in zip(group["selected_time_s"], start, end, strict=True)
        ]
        n_sel = group["n_selected"].to_numpy(np.int64)
        total = int(n_sel.sum())
        setting = dict(zip(keys, values, strict=True))
        rows.append(
            {
                "setting": _setting_label(setting),
                **{k: (None if pd.isna(v) else v) for k, v in setting.items()},
                "n_queries": len(group),
                "mean_n_selected": float(n_sel.mean()),
                "frame_share_in_window": sum(inside) / total if total else None,
                "query_hit_share": float(np.mean([n > 0 for n in inside])),
                "chance_frame_share": float(chance.loc[group["query_uid"]].mean())
                if chance is not None
                else None,
            }
        )
    table = pa.Table.from_pylist(rows, schema=MOMENT_HITS)
    return table.to_pandas()


def _setting_label(s: dict) -> str:
    scorer = "" if s.get("scorer") is None or pd.isna(s["scorer"]) else f"{s['scorer']}: "
    if s["method"] in ("uniform", "topk"):
        return f"{scorer}{s['method']} M={int(s['M'])}"
    return f"{scorer}{s['method']} M={int(s['M'])} L={int(s['L'])} t1={s['t1']:g}"


def write_moment_hits(
    table: pd.DataFrame, out_parquet: Path, out_markdown: Path, *, synthetic: bool = False
) -> None:
    """The moment-hit table as parquet (:data:`MOMENT_HITS`) and as a markdown table for the report."""
    write_parquet(pa.Table.from_pandas(table, preserve_index=False), out_parquet, MOMENT_HITS)

    def pct(x: object) -> str:
        return "–" if x is None or pd.isna(x) else f"{float(x) * 100:.1f}"

    lines = [
        "| setting | queries | frames selected (mean) | frames in GT window % | queries with a hit % "
        "| chance % |",
        "|---|---|---|---|---|---|",
    ]
    for r in table.itertuples(index=False):
        lines.append(
            f"| {r.setting} | {r.n_queries} | {r.mean_n_selected:.1f} | {pct(r.frame_share_in_window)} "
            f"| {pct(r.query_hit_share)} | {pct(r.chance_frame_share)} |"
        )
    note = "\n_Synthetic demo data._\n" if synthetic else ""
    write_text("\n".join(lines) + "\n" + note, out_markdown)


def plot_moment_hits(table: pd.DataFrame, out_png: Path, *, synthetic: bool = False):
    """Horizontal bars per setting (one row each, in table order from the top): frames inside the GT window
    and queries with a hit (%), chance as a tick.

    Returns the matplotlib Figure; bars carry ``gid`` ``"{setting}:frames"`` / ``"{setting}:queries"`` and
    their value as width.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8.0, 1.6 + 0.42 * len(table)))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    y = np.arange(len(table))[::-1]  # first row at the top
    height = 0.38
    frames = ax.barh(
        y + height / 2,
        100 * table["frame_share_in_window"].fillna(0).to_numpy(float),
        height,
        label="selected frames in GT window",
    )
    hits = ax.barh(
        y - height / 2,
        100 * table["query_hit_share"].fillna(0).to_numpy(float),
        height,
        label="queries with >= 1 frame in GT window",
    )
    for bar, setting in zip(frames, table["setting"], strict=True):
        bar.set_gid(f"{setting}:frames")
    for bar, setting in zip(hits, table["setting"], strict=True):
        bar.set_gid(f"{setting}:queries")
    if table["chance_frame_share"].notna().any():
        ax.scatter(
            100 * table["chance_frame_share"].to_numpy(float),
            y + height / 2,
            marker="|",
            s=200,
            color="black",
            label="chance (random frame)",
            zorder=3,
        )
    ax.set_yticks(y, table["setting"], fontsize=8)
    ax.set_xlabel("%")
    ax.set_xlim(0, 100)
    ax.grid(axis="x", alpha=0.3)
    title = "Does keyframe selection find the moment?"
    ax.set_title(f"{title} [SYNTHETIC demo data]" if synthetic else title)
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.08 - 0.9 / (len(table) + 2)), ncol=3)
    fig.tight_layout()
    with atomic_path(out_png) as tmp:
        fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
    return fig
