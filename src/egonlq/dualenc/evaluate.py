"""What the field reports for a video-text dual encoder, on held-out narrations (videos never trained on).

- **EgoMCQ-style accuracy**: each held-out narration text against 5 clips, the right one among them.
  Inter-video: the 4 wrong clips come from 4 other held-out videos (one random clip each). Intra-video: the 4
  wrong clips are the narration windows of the same video nearest in time whose text differs from the query's
  (a query with fewer than 4 such neighbours is skipped and counted). Correct when the right clip scores
  strictly above the 4 others.
- **Retrieval** over the whole held-out pool: text->video and video->text Recall@1/5/10 and median rank, the
  rank of the right item being 1 + the number of items scoring strictly higher (ties rank optimistically:
  identical texts of two windows tie by construction).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from egonlq.dualenc.bank import FeatureBank
from egonlq.dualenc.model import DualEncoder, read_config
from egonlq.dualenc.pairs import GT_SOURCE, read_pairs, select_pairs
from egonlq.dualenc.text import PooledTextEncoder, PooledTexts
from egonlq.errors import InputError

logger = logging.getLogger(__name__)

MCQ_OPTIONS = 5
RECALL_KS = (1, 5, 10)


def load_model(model_dir: Path, text_model: Path) -> tuple[DualEncoder, PooledTextEncoder | None]:
    """A checkpoint in eval mode, and the text encoder when some of its layers were trained (else None)."""
    config = read_config(Path(model_dir) / "config.json")
    encoder = PooledTextEncoder(text_model) if config.unfreeze_layers else None
    model = DualEncoder.from_pretrained(model_dir, text_encoder=encoder.module if encoder else None)
    return model.eval(), encoder


@torch.no_grad()
def embed_windows(
    model: DualEncoder, bank: FeatureBank, first: np.ndarray, count: np.ndarray, *, batch_size: int = 1024
) -> torch.Tensor:
    """``[N, E]`` video-tower embeddings of windows given as (first bank row, row count)."""
    out = []
    for i in range(0, len(first), batch_size):
        rows, mask = bank.gather(
            torch.from_numpy(first[i : i + batch_size]),
            torch.from_numpy(count[i : i + batch_size]),
            model.config.max_rows,
        )
        out.append(model.encode_video(rows, mask))
    return torch.cat(out) if out else torch.zeros(0, model.config.embed_dim)


class Embedder:
    """A trained dual encoder with its feature bank and text source: windows and texts to unit vectors."""

    def __init__(
        self, model: DualEncoder, bank: FeatureBank, texts: PooledTexts, encoder: PooledTextEncoder | None
    ):
        self.model, self.bank, self.texts, self.encoder = model.eval(), bank, texts, encoder

    @classmethod
    def load(
        cls,
        model_dir: Path,
        *,
        text_cache: Path,
        text_model: Path,
        feature_dir: Path,
        video_uids: list[str],
        progress: bool = True,
    ) -> Embedder:
        """Load the checkpoint, the pooled texts (of the same encoder) and the features of ``video_uids``."""
        model, encoder = load_model(model_dir, text_model)
        texts = PooledTexts.load(text_cache, model_path=text_model)
        bank = FeatureBank.load(feature_dir, video_uids, dim=model.config.video_dim, progress=progress)
        return cls(model, bank, texts, encoder)

    def windows(self, first: np.ndarray, count: np.ndarray, batch_size: int = 1024) -> torch.Tensor:
        """``[N, E]`` embeddings of windows given as (first bank row, row count)."""
        return embed_windows(self.model, self.bank, first, count, batch_size=batch_size)

    @torch.no_grad()
    def text(
        self, texts: list[str], *, where: str | Path | None = None, batch_size: int = 256
    ) -> torch.Tensor:
        """``[N, E]`` embeddings of ``texts`` (pooled cache, or the encoder when it was fine-tuned)."""
        if self.encoder is not None:
            pooled = torch.cat(
                [self.encoder.forward(texts[i : i + batch_size]) for i in range(0, len(texts), batch_size)]
            )
        else:
            pooled = self.texts.features[torch.from_numpy(self.texts.rows(texts, where=where))]
        return self.model.encode_text(pooled)


def heldout_pool(pairs_path: Path) -> pd.DataFrame:
    """The held-out GT narrations, one per window, ordered by video and time."""
    rows = select_pairs(
        read_pairs(pairs_path), sources=[GT_SOURCE], gt_fraction=1.0, role="heldout", where=pairs_path
    )
    return rows.drop_duplicates("item_uid").sort_values(["video_uid", "timestamp_sec"]).reset_index(drop=True)


def mcq_options(pool: pd.DataFrame, *, seed: int) -> tuple[np.ndarray, np.ndarray, dict]:
    """Option indices ``[Q, 5]`` (the right window first) for the inter- and intra-video tasks, and counts."""
    rng = np.random.default_rng(seed)
    n = len(pool)
    video = pool["video_uid"].to_numpy()
    videos = sorted(set(video))
    by_video = {v: np.flatnonzero(video == v) for v in videos}
    inter = []
    if len(videos) >= MCQ_OPTIONS:
        for i in range(n):
            others = [v for v in videos if v != video[i]]
            chosen = rng.choice(len(others), MCQ_OPTIONS - 1, replace=False)
            inter.append([i, *(int(rng.choice(by_video[others[k]])) for k in chosen)])
    intra, skipped = [], 0
    times, texts = pool["timestamp_sec"].to_numpy(), pool["text"].to_numpy()
    for i in range(n):
        same = by_video[video[i]]
        same = same[(same != i) & (texts[same] != texts[i])]
        if len(same) < MCQ_OPTIONS - 1:
            skipped += 1
            continue
        nearest = same[np.argsort(np.abs(times[same] - times[i]), kind="stable")[: MCQ_OPTIONS - 1]]
        intra.append([i, *nearest.tolist()])
    counts = {
        "inter_questions": len(inter),
        "intra_questions": len(intra),
        "intra_skipped": skipped,
        "heldout_videos": len(videos),
    }
    shape = (0, MCQ_OPTIONS)
    return (
        np.array(inter or np.zeros(shape), dtype=np.int64),
        np.array(intra or np.zeros(shape), np.int64),
        counts,
    )


def mcq_accuracy(sim: torch.Tensor, options: np.ndarray) -> float:
    """Share of questions (rows of ``options``, right option first) whose right option scores highest;
    ``sim[i, j]`` is the score of text ``i`` with window ``j``. NaN without questions."""
    if len(options) == 0:
        return float("nan")
    q = torch.from_numpy(options)
    scores = sim[q[:, :1], q]  # [Q, 5]: text q[i, 0] against the windows q[i, :]
    return float((scores[:, 0] > scores[:, 1:].max(dim=1).values).float().mean())


def retrieval(sim: torch.Tensor) -> dict[str, float]:
    """text->video and video->text R@1/5/10 (percent) and median rank of the diagonal of ``sim [N, N]``."""
    right = sim.diagonal()
    out: dict[str, float] = {}
    for name, ranks in (
        ("t2v", 1 + (sim > right[:, None]).sum(dim=1)),
        ("v2t", 1 + (sim > right[None, :]).sum(dim=0)),
    ):
        for k in RECALL_KS:
            out[f"{name}_R@{k}"] = float((ranks <= k).float().mean() * 100)
        out[f"{name}_medR"] = float(ranks.float().median())
    return out


def evaluate_heldout(
    embedder: Embedder, pool: pd.DataFrame, *, seed: int = 0, where: Path | None = None
) -> dict:
    """EgoMCQ inter/intra accuracy (percent) and retrieval on the held-out pool."""
    if len(pool) < 2:
        raise InputError(where, f"{len(pool)} held-out narrations: nothing to evaluate", expected=">= 2")
    first, count = embedder.bank.window_rows(
        pool["video_uid"].tolist(), pool["window_start_sec"].to_numpy(), pool["window_end_sec"].to_numpy()
    )
    sim = embedder.text(pool["text"].tolist(), where=where) @ embedder.windows(first, count).T  # [N, N]
    inter, intra, counts = mcq_options(pool, seed=seed)
    result = {
        "egomcq_inter": mcq_accuracy(sim, inter) * 100,
        "egomcq_intra": mcq_accuracy(sim, intra) * 100,
        **retrieval(sim),
        "pool": len(pool),
        **counts,
    }
    logger.info("held-out evaluation: %s", result)
    return result
