"""Zero-shot step grounding with a dual encoder: chunk and step embeddings, their cosine matrix, and the
decoders that turn it into 5 ranked windows per query (spec dual-encoder-and-steps §6).

A chunk's embedding is the video tower over the feature rows that start inside it (a group's rows are its
members' concatenated); a query's is the text tower over its pooled sentence vector. Decoders, per entry:
``argmax`` (each query's best window alone), ``dp`` (the exact segment DP over the steps in order, then each
step's substeps inside its window plus slack), ``dfs`` (the same with the DFS reference, only for entries of
at most ``dfs_max_steps`` steps: else the decoder is not run), ``viterbi`` (one peak per query over steps and
substeps interleaved, windows grown around the peaks). Windows 2-5 are masked re-runs (:func:`top_windows`).
Times are on the video or group timeline, unshifted (§5).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from egonlq.dualenc.bank import FeatureBank
from egonlq.dualenc.model import DualEncoder
from egonlq.evaluation.predictions import Prediction
from egonlq.progress import tqdm
from egonlq.steps.align import (
    align_dfs,
    align_dp,
    align_substeps,
    background_bias,
    best_windows,
    grow_windows,
    peak_viterbi,
    top_windows,
)

DECODERS = ("argmax", "dp", "dfs", "viterbi")
NUM_WINDOWS = 5


@dataclass(frozen=True)
class DecodeParams:
    """The decoders' settings, in seconds where a reader thinks in seconds."""

    chunk_sec: float = 2.0
    lam_percentile: float = 50.0  # background bias: this percentile of the entry's similarities
    mu: float = math.inf  # cost of skipping a step (inf: no skips)
    max_len_sec: float | None = None  # longest segment
    slack_sec: float = 4.0  # substeps may leave their parent's window by this much
    dfs_max_steps: int = 8
    viterbi_tolerance_sec: float = 1.0

    def chunks(self, seconds: float | None) -> int | None:
        return None if seconds is None else max(1, math.ceil(seconds / self.chunk_sec - 1e-9))


def chunk_rows(n_rows: int, rate: float, width: float) -> tuple[np.ndarray, np.ndarray]:
    """First row and row count of every ``width``-second chunk of ``n_rows`` rows at ``rate`` rows/s: the
    rows whose start time ``i / rate`` lies in ``[n·w, (n+1)·w)``; a chunk no row starts in takes the row
    before it."""
    if n_rows < 1:
        raise ValueError("no feature rows")
    n_chunks = max(1, math.ceil(n_rows / rate / width - 1e-9))
    first = np.ceil(np.arange(n_chunks) * width * rate - 1e-9).astype(np.int64)
    end = np.minimum(np.ceil((np.arange(n_chunks) + 1) * width * rate - 1e-9).astype(np.int64), n_rows)
    empty = end <= first
    first = np.where(empty, np.minimum(first, n_rows) - 1, first).clip(0, n_rows - 1)
    return first, np.where(empty, 1, end - first)


@torch.no_grad()
def embed_chunks(model: DualEncoder, rows: np.ndarray, rate: float, width: float) -> torch.Tensor:
    """``[N, E]`` unit embeddings of the chunks of one entry's feature rows ``[R, D]``."""
    first, count = chunk_rows(len(rows), rate, width)
    bank = FeatureBank(["entry"], torch.from_numpy(np.ascontiguousarray(rows, dtype=np.float32)),
                       np.zeros(1, np.int64), np.array([len(rows)]))  # fmt: skip
    out = []
    for i in range(0, len(first), 512):
        r, m = bank.gather(
            torch.from_numpy(first[i : i + 512]), torch.from_numpy(count[i : i + 512]), model.config.max_rows
        )
        out.append(model.encode_video(r, m))
    return torch.cat(out)


def decode_entry(
    sim: np.ndarray, queries: pd.DataFrame, decoder: str, params: DecodeParams
) -> np.ndarray | None:
    """``[Q, 5, 2]`` chunk ranges for one entry's queries (rows of STEP_QUERIES in query order, ``sim``
    ``[Q, N]``), or None when the decoder is not run on it (DFS beyond ``dfs_max_steps`` steps)."""
    is_sub = queries["is_substep"].to_numpy()
    step_of = queries["step_idx"].to_numpy()
    steps = np.flatnonzero(~is_sub)
    gain = sim - background_bias(sim[steps], params.lam_percentile)
    max_len = params.chunks(params.max_len_sec)
    if decoder == "argmax":
        s, e, _ = best_windows(gain, max_len=max_len)
        return top_windows(gain, (s, e), NUM_WINDOWS, max_len=max_len)
    if decoder == "viterbi":
        tolerance = int(params.viterbi_tolerance_sec // params.chunk_sec)
        s, e = grow_windows(gain, peak_viterbi(sim, tolerance=tolerance), max_len=max_len)
        return top_windows(gain, (s, e), NUM_WINDOWS, max_len=max_len)
    if decoder == "dfs" and len(steps) > params.dfs_max_steps:
        return None
    align = align_dfs if decoder == "dfs" else align_dp
    # more steps than chunks cannot be placed without skipping some: then skips cost a large finite mu
    mu = params.mu if len(steps) <= gain.shape[1] or math.isfinite(params.mu) else 1e9
    placed = align(gain[steps], mu=mu, max_len=max_len)
    s = np.full(len(queries), -1, dtype=np.int64)
    e = np.full(len(queries), -1, dtype=np.int64)
    s[steps], e[steps] = placed.starts, placed.ends
    slack = params.chunks(params.slack_sec) or 0
    for k, q in enumerate(steps):
        subs = np.flatnonzero(is_sub & (step_of == step_of[q]))
        if len(subs) and placed.starts[k] >= 0:
            inner = align_substeps(
                gain[subs], (int(placed.starts[k]), int(placed.ends[k])), slack=slack, mu=mu, max_len=max_len
            )
            s[subs], e[subs] = inner.starts, inner.ends
    return top_windows(gain, (s, e), NUM_WINDOWS, max_len=max_len)


def to_predictions(
    windows: np.ndarray, queries: pd.DataFrame, width: float, duration: float
) -> list[Prediction]:
    """Chunk ranges ``[Q, 5, 2]`` to challenge rows: ``[a·w, min(b·w, duration)]`` s, entry timeline."""
    seconds = np.minimum(windows * width, duration).astype(float)
    return [
        Prediction(q.video_uid, q.annotation_uid, int(q.query_idx), seconds[i].tolist())
        for i, q in enumerate(queries.itertuples(index=False))
    ]


def predict_steps(
    model: DualEncoder,
    text: torch.Tensor,
    queries: pd.DataFrame,
    load_rows: Callable[[str], np.ndarray],
    rate: float,
    params: DecodeParams,
    decoders: Sequence[str] = DECODERS,
) -> tuple[dict[str, list[Prediction] | None], dict[str, np.ndarray]]:
    """5 windows per query for every decoder (None: not run), and each entry's similarity matrix.

    ``text`` is ``[Q, E]`` unit embeddings of ``queries`` (rows of STEP_QUERIES, any order), ``load_rows`` an
    entry's feature rows (:func:`egonlq.steps.chunks.entry_rows`)."""
    unknown = sorted(set(decoders) - set(DECODERS))
    if unknown:
        raise ValueError(f"unknown decoders {unknown}, expected among {DECODERS}")
    out: dict[str, list[Prediction] | None] = {d: [] for d in decoders}
    sims: dict[str, np.ndarray] = {}
    for uid, group in tqdm(queries.groupby("video_uid", sort=True), desc="steps: entries", disable=None):
        group = group.sort_values("query_idx")
        rows = load_rows(uid)
        chunks = embed_chunks(model, rows, rate, params.chunk_sec)  # [N, E]
        sim = (text[torch.from_numpy(group.index.to_numpy().copy())] @ chunks.T).numpy().astype(np.float64)
        sims[uid] = sim
        for d in decoders:
            windows = decode_entry(sim, group, d, params) if out[d] is not None else None
            if windows is None:
                out[d] = None
                continue
            out[d] += to_predictions(windows, group, params.chunk_sec, len(rows) / rate)
    return out, sims
