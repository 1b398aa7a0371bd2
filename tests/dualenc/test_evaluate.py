"""Held-out metrics and zero-shot windows on small literal inputs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from egonlq.dualenc.evaluate import mcq_accuracy, mcq_options, retrieval
from egonlq.dualenc.zeroshot import candidate_windows, nms


def test_retrieval_ranks_count_strictly_higher_scores() -> None:
    sim = torch.tensor([[0.9, 0.1, 0.2], [0.8, 0.5, 0.1], [0.3, 0.3, 0.3]])
    r = retrieval(sim)
    # t2v ranks: row 0 -> 1, row 1 -> 2 (0.8 > 0.5), row 2 -> 1 (ties rank optimistically)
    assert r["t2v_R@1"] == pytest.approx(200 / 3) and r["t2v_medR"] == 1.0
    # v2t ranks (columns): col 0 -> 1, col 1 -> 1 (0.5 > 0.3), col 2 -> 1 (0.3 is the top of its column)
    assert r["v2t_R@1"] == pytest.approx(100.0)


def test_mcq_options_and_accuracy() -> None:
    pool = pd.DataFrame(
        {
            "video_uid": [f"v{i // 5}" for i in range(30)],
            "timestamp_sec": np.arange(30.0) % 5,
            "text": [f"t{i}" for i in range(30)],
        }
    )
    inter, intra, counts = mcq_options(pool, seed=0)
    assert inter.shape == intra.shape == (30, 5) and counts["intra_skipped"] == 0
    video = pool["video_uid"].to_numpy()
    assert all(len(set(video[row])) == 5 for row in inter)  # five videos
    assert all(len(set(video[row])) == 1 for row in intra)  # one video
    assert mcq_accuracy(torch.eye(30), inter) == 1.0
    assert mcq_accuracy(torch.ones(30, 30), intra) == 0.0  # a tie is not a right answer


def test_candidate_windows_cover_the_clip_and_nms_keeps_distinct_windows() -> None:
    w = candidate_windows(10.0, [4.0, 20.0], 0.5)
    assert [0.0, 10.0] in w.tolist() and [6.0, 10.0] in w.tolist() and w.min() >= 0 and w.max() <= 10
    windows = np.array([[0.0, 4.0], [0.5, 4.5], [6.0, 10.0], [2.0, 6.0]])
    kept = nms(windows, np.array([0.9, 0.8, 0.7, 0.1]), iou=0.5, k=5)
    assert kept.tolist() == [0, 2, 3]  # [0.5, 4.5] overlaps [0, 4] with IoU 0.78
