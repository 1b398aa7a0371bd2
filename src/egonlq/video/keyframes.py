"""Keyframe selection for NLQ queries: score each query's sampled frames, select keyframes with AKS and the
baselines, and keep a resumable progress store of both.

Pipeline (aks.md, sections 1-2 and 8), per val query whose video has an mp4:

1. **Sample.** The video's keyframe grid (:func:`egonlq.video.frame_features.sample_grid`: the AKS reference
   grid ``j * int(fps)`` at one sample per second, else ``sample_rate`` samples per second), restricted to the
   query's CLIP window ``[video_start_sec, video_end_sec]``. Times in the tables are clip-relative:
   ``frame_idx / fps - video_start_sec``.
2. **Score.** One score per sampled frame from a :class:`~egonlq.video.scorers.QueryScorer`
   (:mod:`egonlq.video.scorers`: a frame encoder's cosine, or a trained VSLNet).
3. **Select.** Each method of :data:`METHODS` with each :class:`~egonlq.video.aks.AKSParams`:
   ``aks_reference`` and ``aks_improved`` (:func:`~egonlq.video.aks.select_keyframes`, the method fixing
   the mode), ``uniform`` and ``topk`` (budget ``M`` only).

Text: what scores the frames is the query (the default), the clip's summary (what the clip is about,
:mod:`egonlq.data.summaries`: the same text for every query of a clip, so the selection covers the clip's
activity rather than one question) or both, a weighted sum of the two scores, ``(1 - w) * score(query) +
w * score(summary)`` (:class:`ScoringText`). For cosine scorers the sum equals the cosine with the weighted
sum of the two unit text embeddings (scaled), i.e. a query pulled towards the clip's topic. Whether a
selection covers the narrated moments of the clip is :mod:`egonlq.video.summary_coverage`.

Outputs: the :data:`SCORES` table (one row per query) and the :data:`SELECTION` table (one row per query and
setting), both sorted by ``query_uid``; PNGs of the selected frames of the first queries. Whether the
selections find the moment is :mod:`egonlq.video.moment_hits`.

Progress: each finished query is appended to a JSONL progress file (flushed and fsync'd) before the next one
starts. Records are keyed by ``query_uid`` + scorer fingerprint (scores) and + method + parameters
(selections), so a rerun after an interruption skips what is done, reuses stored scores for new settings,
drops a torn last line, and writes the final tables atomically from the progress file.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from egonlq.data.tables import nlq_query_uids
from egonlq.errors import InputError
from egonlq.io import atomic_path, read_parquet, write_parquet
from egonlq.jsonl import JsonlStore
from egonlq.progress import tqdm
from egonlq.video.aks import (
    AKSParams,
    ConstantScoresWarning,
    Selection,
    select_keyframes,
    topk_selection,
    uniform_selection,
)
from egonlq.video.decode import VideoInfo, check_canonical_length, iter_frames, probe
from egonlq.video.frame_encoders import FrameEncoder
from egonlq.video.frame_features import sample_grid
from egonlq.video.scorers import ClipSample, EncoderScorer, QueryScorer, digest

logger = logging.getLogger(__name__)

METHODS = ("aks_reference", "aks_improved", "uniform", "topk")
QUERY_COLUMNS = ("clip_uid", "video_uid", "annotation_uid", "query_idx", "query")
CLIP_COLUMNS = ("clip_uid", "video_uid", "video_start_sec", "video_end_sec")
PROGRESS_FORMAT = "egonlq-keyframes-progress/1"
TEXT_SOURCES = ("query", "summary", "both")


@dataclass(frozen=True)
class ScoringText:
    """Which text scores the frames of a query (module docstring, "Text").

    ``source``: ``query`` (the question), ``summary`` (the clip's summary,
    :func:`egonlq.data.summaries.clip_summary_texts`) or ``both``: ``(1 - summary_weight) * score(query) +
    summary_weight * score(summary)``. ``summaries``: clip uid -> summary text, needed unless ``source`` is
    ``query``.
    """

    source: str = "query"
    summary_weight: float = 0.5
    summaries: Mapping[str, str] | None = None

    def __post_init__(self) -> None:
        if self.source not in TEXT_SOURCES:
            raise ValueError(f"text source must be one of {TEXT_SOURCES}, got {self.source!r}")
        if not (math.isfinite(self.summary_weight) and 0.0 < self.summary_weight < 1.0):
            raise ValueError(f"summary_weight must lie strictly between 0 and 1, got {self.summary_weight!r}")
        if self.source != "query" and self.summaries is None:
            raise ValueError(f"text source {self.source!r} needs the clip summaries")

    @property
    def tag(self) -> str:
        """What the scorer label carries after ``|`` ("" for the query: labels as before)."""
        return {"query": "", "summary": "summary", "both": f"both:{self.summary_weight:g}"}[self.source]

    def texts(self, clip_uid: str, query: str) -> tuple[tuple[str, float], ...] | None:
        """``(text, weight)`` pairs that score a query of ``clip_uid``; None when its summary is missing."""
        if self.source == "query":
            return ((query, 1.0),)
        summary = (self.summaries or {}).get(clip_uid) or ""
        if not summary.strip():
            return None
        if self.source == "summary":
            return ((summary, 1.0),)
        return ((query, 1.0 - self.summary_weight), (summary, self.summary_weight))


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
    texts: tuple[tuple[str, float], ...] = ()  # what scores the frames (ScoringText.texts)

    @property
    def text_key(self) -> str:
        """Digest of the scoring texts (the query alone: as before text sources existed)."""
        if self.texts == ((self.text, 1.0),):
            return digest(self.text)[:16]
        return digest(*(f"{w!r}|{t}" for t, w in self.texts))[:16]


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
    canonical_frames: Mapping[str, int | None],
    params_list: Sequence[AKSParams],
    methods: Sequence[str] = METHODS,
    sample_rate: float = 1.0,
    out_scores: Path,
    out_selection: Path,
    frames_dir: Path | None = None,
    save_frames: int = 0,
    progress_path: Path,
    batch_size: int = 32,
    text: ScoringText | None = None,
) -> dict:
    """Score and select keyframes for every query with text whose video ``video_dir/<video_uid>.mp4`` exists.

    ``queries``: rows of ``tables.QUERIES`` (at least clip_uid, video_uid, annotation_uid, query_idx, query);
    ``clips``: rows of ``tables.CLIPS`` (clip bounds). ``scorer``: a :class:`QueryScorer`, or a frame encoder
    (wrapped in :class:`EncoderScorer`). ``canonical_frames``: each video's canonical frame count (the
    videos table); an mp4 whose decoded length is not that (within
    :data:`~egonlq.video.decode.DURATION_TOLERANCE_SEC`) is the wrong file: every query of it fails, as do
    those of an unreadable one. None or absent: the length is not checked (``videos_unchecked``).
    ``text``: what scores the frames (:class:`ScoringText`; default the query); with a summary source,
    queries whose clip has no summary are skipped (``queries_no_summary``) and the rows' ``scorer`` is
    ``<scorer>|summary`` or ``<scorer>|both:<weight>``.
    ``save_frames``: the selected frames of the first ``save_frames``
    queries (by ``query_uid``) are written to ``frames_dir/<query_uid with ':' -> '_'>/<method>_<frame>.png``.
    See the module docstring for sampling, progress and outputs.

    Stats: ``queries_in``, ``queries_no_text``, ``queries_no_video``, ``queries_eligible``,
    ``queries_no_summary``, ``queries_done_before`` (every record already in the progress file),
    ``queries_scored``,
    ``queries_reselected`` (stored scores, new settings), ``queries_no_frames`` (no sampled frame in the
    window), ``queries_failed`` (every query of a failed video or clip), ``videos_failed``
    (``{video_uid: message}``: unreadable, or not its canonical length), ``videos_unchecked`` (no canonical
    frame count), ``failed`` (``{clip_uid: message}``: scorer input),
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
    text = text or ScoringText()
    todo, stats = _eligible_queries(queries, clips, Path(video_dir))
    todo = [dataclasses.replace(q, texts=text.texts(q.clip_uid, q.text)) for q in todo]
    stats["queries_no_summary"] = sum(q.texts is None for q in todo)
    todo = [q for q in todo if q.texts is not None]
    scorer_name = f"{scorer.name}|{text.tag}" if text.tag else scorer.name
    scorer_fp = digest(scorer.fingerprint(), repr(float(sample_rate)), *([text.tag] if text.tag else []))
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
    failed_videos: dict[str, str] = {}
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
    for q, skey, missing in tqdm(pending, desc=f"keyframes ({scorer_name})", unit="query", disable=None):
        if q.clip_uid in failed or q.video_uid in failed_videos:
            counts["queries_failed"] += 1
            continue
        try:
            row = log.get(skey)
            if row is None:
                if q.path not in infos:
                    infos[q.path] = _checked_info(q, canonical_frames)
                clip = _clip_sample(q, infos[q.path], sample_rate)
                if len(clip.frame_idx) == 0:
                    counts["queries_no_frames"] += 1
                    continue
                scores = _weighted_scores(scorer, clip, q.texts)
                row = _score_row(q, clip, scores, scorer_name, scorer_fp, sample_rate)
                counts["queries_scored"] += 1
            else:
                counts["queries_reselected"] += 1
            records = [(skey, "scores", row)] if skey not in log else []
            records += [
                (
                    _selection_key(q, s, scorer_fp),
                    "selection",
                    _selection_row(q.query_uid, s, row, scorer_name),
                )
                for s in missing
            ]
            log.append(records)
        except InputError as e:
            if q.path not in infos:  # the video itself: unreadable, or not its canonical length
                logger.warning("keyframes: skipping video %s: %s", q.video_uid, e)
                failed_videos[q.video_uid] = str(e)
            else:
                logger.warning("keyframes: skipping clip %s: %s", q.clip_uid, e)
                failed[q.clip_uid] = str(e)
            counts["queries_failed"] += 1

    # Frames for inspection, from the final records: complete after a resume or a changed setting too.
    for q in todo:
        row = log.get(_score_key(q, scorer_fp))
        if q.query_uid in save and q.clip_uid not in failed and q.video_uid not in failed_videos and row:
            selected = [r for s in settings if (r := log.get(_selection_key(q, s, scorer_fp))) is not None]
            counts["frames_saved"] += _save_frames(q, selected, Path(frames_dir))
    stats.update(counts)
    stats["failed"] = failed
    stats["videos_failed"] = failed_videos
    stats["videos_unchecked"] = len({q.video_uid for q in todo if canonical_frames.get(q.video_uid) is None})
    stats.update(_write_tables(log, todo, settings, scorer_fp, out_scores, out_selection))
    stats.update(
        settings=len(settings),
        scorer=scorer_name,
        text_source=text.source,
        scorer_fingerprint=scorer_fp,
        scorer_stats=dict(getattr(scorer, "stats", {})),
        seconds=round(time.perf_counter() - started, 3),
    )
    logger.info(
        "keyframes: %d eligible queries of %d (%d without text, %d without video): %d done before, "
        "%d scored, %d re-selected, %d without frames, %d failed (%d videos failed); %d selection rows",
        stats["queries_eligible"],
        stats["queries_in"],
        stats["queries_no_text"],
        stats["queries_no_video"],
        stats["queries_done_before"],
        stats["queries_scored"],
        stats["queries_reselected"],
        stats["queries_no_frames"],
        stats["queries_failed"],
        len(failed_videos),
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


def _checked_info(q: _Query, canonical_frames: Mapping[str, int | None]) -> VideoInfo:
    """The query's video as decoded, refused when it is not as long as its canonical video."""
    info = probe(q.path)
    check_canonical_length(info, canonical_frames.get(q.video_uid))
    return info


def _clip_sample(q: _Query, info: VideoInfo, sample_rate: float) -> ClipSample:
    idx, step = sample_grid(info, sample_rate)
    t = idx / info.fps
    inside = idx[(t >= q.video_start_sec) & (t <= q.video_end_sec)]
    return ClipSample(
        q.video_uid, q.clip_uid, q.path, info.fps, step, q.video_start_sec, q.video_end_sec, inside
    )


def _weighted_scores(scorer: QueryScorer, clip: ClipSample, texts: Sequence[tuple[str, float]]) -> np.ndarray:
    """``sum(weight * scorer.score(clip, text))``, checked: one finite score per sampled frame."""
    total = np.zeros(clip.frame_idx.shape, dtype=np.float64)
    for text, weight in texts:
        scores = np.asarray(scorer.score(clip, text), dtype=np.float32)
        if scores.shape != clip.frame_idx.shape or not np.isfinite(scores).all():
            raise ValueError(
                f"scorer {scorer.name} returned {scores.shape} scores "
                f"(finite: {np.isfinite(scores).all()}) for {len(clip.frame_idx)} frames"
            )
        total += weight * scores
    return total.astype(np.float32)


def _score_key(q: _Query, scorer_fp: str) -> str:
    return f"scores|{q.query_uid}|{scorer_fp}|{q.text_key}"


def _selection_key(q: _Query, setting: Setting, scorer_fp: str) -> str:
    return f"selection|{q.query_uid}|{setting.key}|{scorer_fp}|{q.text_key}"


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
        "text": " || ".join(t for t, _ in q.texts),
    }


def _selection_row(query_uid: str, setting: Setting, score_row: dict, scorer: str) -> dict:
    ids = np.asarray(score_row["sampled_frame_idx"], dtype=np.int64)
    sel = setting.select(np.asarray(score_row["scores"], dtype=np.float32), ids)
    chosen = np.asarray(sel.frame_ids, dtype=np.int64)
    return {
        "query_uid": query_uid,
        **setting.columns(),
        "selected_frame_idx": chosen.tolist(),
        "selected_time_s": (chosen / score_row["fps"] - score_row["video_start_sec"]).tolist(),
        "n_selected": len(chosen),
        "short_video": sel.short_video,
        "n_topped_up": sel.n_topped_up,
        "scorer": scorer,
    }


def select_from_scores(scores: Path, settings: Sequence[Setting], out_selection: Path) -> dict:
    """Select keyframes again from a stored :data:`SCORES` table with other ``settings`` (another AKS
    parameter set): the same :data:`SELECTION` rows a keyframes run with those settings writes, without
    scoring anything. Stats: ``score_rows``, ``selection_rows``, ``constant_scores``, ``short_video_rows``,
    ``settings``."""
    rows = read_parquet(scores, SCORES).sort_by("query_uid").to_pylist()
    selected = []
    for row in rows:
        selected += [_selection_row(row["query_uid"], s, row, row["scorer"]) for s in settings]
    selection = pa.Table.from_pylist(selected, schema=SELECTION)
    selection = selection.sort_by([(c, "ascending") for c in _SELECTION_ORDER])
    write_parquet(selection, out_selection, SELECTION)
    stats = {**_table_stats(rows, selection), "settings": len(settings)}
    logger.info("keyframes re-selected from %s: %s", scores, stats)
    return stats


def _save_frames(q: _Query, selections: Iterable[dict], frames_dir: Path) -> int:
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
    return _table_stats(score_rows, selection)


def _table_stats(score_rows: list[dict], selection: pa.Table) -> dict:
    """Counts of written score and selection tables: rows, constant score lists, short-video selections."""
    return {
        "score_rows": len(score_rows),
        "selection_rows": selection.num_rows,
        "constant_scores": sum(len(set(r["scores"])) <= 1 for r in score_rows),
        "short_video_rows": int(pc.sum(selection.column("short_video")).as_py() or 0),
    }
