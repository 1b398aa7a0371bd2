"""Per-frame relevance scores of a query: what keyframe selection ranks frames by (aks.md, section 8).

A :class:`QueryScorer` gives one score per sampled frame of a clip (:class:`ClipSample`) for a query text:

* :class:`EncoderScorer`: the cosine of a frame encoder's image and text embeddings, no logit scale (the
  AKS reference ``clip`` scorer); frames come from the per-frame embedding table when it holds them, else
  they are decoded and encoded.
* :class:`VSLNetScorer`: a trained VSLNet's per-unit highlight score or inside-span mass, mapped onto the
  sampled frames by time on the unit grid of the label mode the model was trained with.
* :class:`DualEncoderScorer`: the cosine of a trained dual encoder's text embedding of the query and its
  video-tower embedding of the feature rows in a short window centred on each frame's time.

Each scorer has a fingerprint: stored scores are reused only for the same scorer, model and inputs.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
import pyarrow.parquet as pq

from egonlq.errors import InputError
from egonlq.io import read_json
from egonlq.timegrid import OFFICIAL, FeatureGrid
from egonlq.video.frame_encoders import FrameEncoder, l2_normalise
from egonlq.video.frame_features import FRAME_EMBEDDINGS, encode_frames

UNIT_SCORES = ("highlight", "inside")


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

    ``frame_table``: a :data:`~egonlq.video.frame_features.FRAME_EMBEDDINGS` file of the same encoder; a
    clip whose sampled frames are all in it is scored without decoding.
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
        return digest("cosine", self.encoder.fingerprint())

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
    unit_scores: np.ndarray,
    times: np.ndarray,
    duration: float,
    label_mode: str,
    *,
    grid: FeatureGrid = OFFICIAL,
) -> np.ndarray:
    """Score of each clip-relative time: that of the unit whose window (the model's label-mode grid, on the
    features' time ``grid``) holds it.

    Times before the first unit or after the last one take the nearest unit.
    """
    from egonlq.grounding.spans import span_times

    v_len = len(unit_scores)
    starts = np.array([span_times(label_mode, u, u, duration, v_len, grid=grid)[0] for u in range(v_len)])
    unit = np.clip(np.searchsorted(starts, np.asarray(times, np.float64), side="right") - 1, 0, v_len - 1)
    return np.asarray(unit_scores, dtype=np.float32)[unit]


class VSLNetScorer:
    """Scores from a VSLNet trained by this workflow: per-unit relevance mapped to the sampled frames by time.

    ``model_dir``: a ``save_pretrained`` folder; ``clip_features``: the clip-feature parquet
    (``egonlq.data.features.CLIP_FEATURES``) the model reads; ``text_cache``: the query token embeddings;
    ``label_mode``: the one the model was trained with (it fixes the unit grid; checked against the
    ``train_spec.json`` that training saves next to the weights). Needs no decoded frames.
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
        from egonlq.grounding.predict import TRAIN_SPEC_NAME
        from egonlq.grounding.spans import LABEL_MODES
        from egonlq.grounding.text_encoder import TextCache
        from egonlq.grounding.vslnet import CONFIG_NAME, WEIGHTS_NAME, VSLNet

        if label_mode not in LABEL_MODES:
            raise ValueError(f"label_mode must be one of {LABEL_MODES}, got {label_mode!r}")
        if unit_score not in UNIT_SCORES:
            raise ValueError(f"unit_score must be one of {UNIT_SCORES}, got {unit_score!r}")
        self.model_dir, self.clip_features = Path(model_dir), Path(clip_features)
        trained = self.model_dir / TRAIN_SPEC_NAME  # written by training; absent for a bare checkpoint
        trained_mode = read_json(trained).get("label_mode") if trained.is_file() else label_mode
        if trained_mode != label_mode:
            raise InputError(
                trained,
                f"the model was trained with label_mode {trained_mode!r}: its scores would land on the wrong"
                f" time grid",
                field="label_mode",
                expected=f"{label_mode!r}, the label mode the scorer was given",
            )
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
        from egonlq.data.features import clip_features_grid

        self.grid = clip_features_grid(self.clip_features)  # the rows' time grid: units map to times on it
        self.label_mode, self.unit_score = label_mode, unit_score
        self.name = f"vslnet:{unit_score}"
        self._fingerprint = digest(
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
        return unit_scores_to_frames(units, clip.times, duration, self.label_mode, grid=self.grid)


def _file_signature(path: Path, head: int = 1 << 20) -> str:
    """Name, size and first MiB of a (possibly large) file."""
    with open(path, "rb") as f:
        return digest(path.name, str(path.stat().st_size), f.read(head))


def digest(*parts: str | bytes) -> str:
    """SHA-256 hex of ``parts``, each followed by a NUL (so that ('ab', 'c') and ('a', 'bc') differ)."""
    h = hashlib.sha256()
    for part in parts:
        h.update(part if isinstance(part, bytes) else part.encode())
        h.update(b"\0")
    return h.hexdigest()


DUALENC_WINDOW_SEC = 2.0  # the window a frame's dual encoder embedding is read from (s), centred on the frame


class DualEncoderScorer:
    """Scores from a dual encoder trained by this workflow (:mod:`egonlq.dualenc`): per sampled frame, the
    cosine of the query's text embedding with the video tower's embedding of the feature rows of
    ``[t - w/2, t + w/2]`` (``t`` the frame's video time, ``w`` = ``window_sec``), in [-1, 1].

    ``embedder``: the checkpoint with its feature bank and pooled texts
    (:class:`egonlq.dualenc.evaluate.Embedder`, the one zero-shot NLQ embeds windows with);
    ``fingerprint``: what identifies the checkpoint and its inputs (:meth:`load` digests the files). Needs no
    decoded frames: the windows are cut from the per-video features.
    """

    def __init__(self, embedder, *, fingerprint: str, window_sec: float = DUALENC_WINDOW_SEC):
        if not np.isfinite(window_sec) or window_sec <= 0:
            raise ValueError(f"window_sec must be a finite number > 0, got {window_sec!r}")
        self.embedder, self.window_sec = embedder, float(window_sec)
        self.name = "dualenc:cosine"
        self._fingerprint = digest("dualenc", fingerprint, repr(self.window_sec))
        self._clip_key: tuple | None = None
        self._windows = None
        self.stats = {"clips_embedded": 0, "windows_embedded": 0, "texts_scored": 0}

    @classmethod
    def load(
        cls,
        model_dir: Path,
        *,
        text_cache: Path,
        text_model: Path,
        feature_dir: Path,
        video_uids: list[str],
        window_sec: float = DUALENC_WINDOW_SEC,
    ) -> DualEncoderScorer:
        """The checkpoint ``model_dir`` (``save_pretrained``), its pooled text cache, the features of
        ``video_uids``; the fingerprint covers the weights, the config and the text cache's encoder."""
        from egonlq.dualenc.evaluate import Embedder
        from egonlq.dualenc.model import CONFIG_NAME, WEIGHTS_NAME

        model_dir = Path(model_dir)
        embedder = Embedder.load(
            model_dir,
            text_cache=text_cache,
            text_model=text_model,
            feature_dir=feature_dir,
            video_uids=video_uids,
            progress=False,
        )
        fingerprint = digest(
            (model_dir / CONFIG_NAME).read_bytes(),
            (model_dir / WEIGHTS_NAME).read_bytes(),
            embedder.texts.metadata.get("fingerprint", ""),
            *(_file_signature(Path(feature_dir) / f"{v}.pt") for v in sorted(set(video_uids))),
        )
        return cls(embedder, fingerprint=fingerprint, window_sec=window_sec)

    def fingerprint(self) -> str:
        return self._fingerprint

    def frame_embeddings(self, clip: ClipSample):
        """``[n, E]`` unit vectors of the windows around the sampled frames (one clip cached)."""
        key = (clip.video_uid, clip.fps, clip.frame_idx.tobytes())
        if key != self._clip_key:
            t = clip.frame_idx / clip.fps  # video time of each frame
            half = self.window_sec / 2
            first, count = self.embedder.bank.window_rows(
                [clip.video_uid] * len(t), np.maximum(t - half, 0.0), t + half, where=str(clip.path)
            )
            self._windows = self.embedder.windows(first, count)
            self._clip_key = key
            self.stats["clips_embedded"] += 1
            self.stats["windows_embedded"] += len(t)
        return self._windows

    def score(self, clip: ClipSample, text: str) -> np.ndarray:
        windows = self.frame_embeddings(clip)
        query = self.embedder.text([text])  # [1, E]
        self.stats["texts_scored"] += 1
        return np.clip((windows @ query[0]).numpy(), -1.0, 1.0).astype(np.float32)
