"""Per-frame relevance scores: cosine of a frame encoder, the frame-table shortcut, a trained VSLNet."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from egonlq.errors import InputError
from egonlq.video.frame_features import extract_many
from egonlq.video.scorers import (
    EncoderScorer,
    VSLNetScorer,
    clip_scores,
    unit_scores_to_frames,
    vslnet_unit_scores,
)
from tests.video.world import run

torch.set_num_threads(1)


def test_clip_scores_is_cosine():
    frames = np.array([[3.0, 4.0], [0.0, 2.0], [0.0, 0.0]], dtype=np.float32)
    np.testing.assert_allclose(clip_scores(frames, np.array([1.0, 0.0])), [0.6, 0.0, 0.0], atol=1e-7)
    np.testing.assert_allclose(clip_scores(frames, np.array([0.0, -5.0])), [-0.8, -1.0, 0.0], atol=1e-7)
    with pytest.raises(ValueError, match="size"):
        clip_scores(frames, np.ones(3))


def test_encoder_scorer_reads_the_frame_table(world, demo, tmp_path):
    extract_many(
        [(world.video_uid, world.mp4, None)], demo, tmp_path / "f", frames_path=tmp_path / "frames.parquet"
    )
    scorer = EncoderScorer(demo, frame_table=tmp_path / "frames.parquet")
    run(world, tmp_path / "table", scorer)
    run(world, tmp_path / "decoded", demo)
    assert scorer.stats["frames_encoded"] == 0 and scorer.stats["frames_from_table"] > 0
    pd.testing.assert_frame_equal(
        pd.read_parquet(tmp_path / "table" / "selection.parquet"),
        pd.read_parquet(tmp_path / "decoded" / "selection.parquet"),
    )


def test_unit_scores_to_frames():
    units = np.array([0.1, 0.2, 0.3, 0.4], dtype=np.float32)
    times = np.array([0.0, 1.99, 2.0, 5.0, 7.99, 9.0, -1.0])
    assert unit_scores_to_frames(units, times, 8.0, "corrected").tolist() == pytest.approx(
        [0.1, 0.1, 0.2, 0.3, 0.4, 0.4, 0.1]
    )


def test_unit_scores_to_frames_on_the_features_grid():
    """Compatible-mode units sit on the feature set's grid (the clip's duration floored to whole rows)."""
    from egonlq.timegrid import OFFICIAL, FeatureGrid

    units = np.array([0.1, 0.2, 0.3, 0.4], dtype=np.float32)
    times = np.array([0.26, 0.39])
    official = unit_scores_to_frames(units, times, 0.6, "compatible", grid=OFFICIAL)
    six = unit_scores_to_frames(units, times, 0.6, "compatible", grid=FeatureGrid(30.0, 1, 5, 6.0))
    assert official.tolist() == pytest.approx([0.2, 0.3]) and six.tolist() == pytest.approx([0.3, 0.4])


def test_vslnet_scorer(world, vslnet_files, tmp_path):
    from egonlq.data.features import read_clip_features
    from egonlq.grounding.spans import pool_features
    from egonlq.grounding.text_encoder import TextCache
    from egonlq.grounding.vslnet import VSLNet

    files = vslnet_files
    scorer = VSLNetScorer(
        files / "m", files / "clips.parquet", files / "text.safetensors", label_mode="corrected"
    )
    stats = run(world, tmp_path, scorer)
    assert stats["scorer"] == "vslnet:highlight" and stats["queries_scored"] == world.n_eligible
    scores = pd.read_parquet(tmp_path / "scores.parquet").iloc[0]
    # the same numbers by hand: highlight per unit, then each frame takes its unit's score
    clip = world.clips.set_index("clip_uid").loc[scores["clip_uid"]]
    model = VSLNet.from_pretrained(files / "m")
    features = read_clip_features(files / "clips.parquet", [scores["clip_uid"]])[scores["clip_uid"]]
    units = vslnet_unit_scores(
        model, features, TextCache.load(files / "text.safetensors").get(scores["text"])
    )
    times = np.asarray(scores["sampled_frame_idx"]) / 5.0 - clip["video_start_sec"]
    duration = clip["video_end_sec"] - clip["video_start_sec"]
    np.testing.assert_allclose(scores["scores"], unit_scores_to_frames(units, times, duration, "corrected"))
    assert 0 < units.min() and units.max() < 1 and len(units) == 64

    inside = vslnet_unit_scores(model, features, np.ones((3, 8), np.float32), unit_score="inside")
    video = torch.from_numpy(pool_features(features, 64)[None])  # the clip's rows pooled to 64 units
    with torch.no_grad():
        out = model(video, torch.ones(1, 64), torch.ones(1, 3, 8), torch.ones(1, 3))
    p_s, p_e = torch.softmax(out.start_logits[0], 0).numpy(), torch.softmax(out.end_logits[0], 0).numpy()
    u = 10
    assert inside[u] == pytest.approx(p_s[: u + 1].sum() * p_e[u:].sum(), rel=1e-5)


def test_vslnet_scorer_checks_the_trained_label_mode(vslnet_files, tmp_path):
    import shutil

    model = tmp_path / "m"
    shutil.copytree(vslnet_files / "m", model)
    (model / "train_spec.json").write_text(json.dumps({"label_mode": "compatible"}))
    args = (model, vslnet_files / "clips.parquet", vslnet_files / "text.safetensors")
    with pytest.raises(
        InputError, match=r"train_spec.json: the model was trained with label_mode 'compatible'"
    ):
        VSLNetScorer(*args, label_mode="corrected")
    assert VSLNetScorer(*args, label_mode="compatible").label_mode == "compatible"


def _dual_encoder_embedder(moment: tuple[float, float], duration: float, query: str):
    """A tiny dual encoder over 4-d features: rows of ``moment`` (video time) point one way, the rest
    another; the query's pooled text vector is the video tower's embedding of a moment window."""
    from egonlq.dualenc.bank import FeatureBank
    from egonlq.dualenc.evaluate import Embedder
    from egonlq.dualenc.model import DualEncoder, DualEncoderConfig
    from egonlq.dualenc.text import PooledTexts, text_key
    from egonlq.timegrid import FEATURES_PER_SEC

    torch.manual_seed(0)
    config = DualEncoderConfig(video_dim=4, text_dim=8, embed_dim=8, width=8, heads=2, layers=1, dropout=0.0)
    model = DualEncoder(config).eval()
    with torch.no_grad():
        model.text_proj.weight.copy_(torch.eye(8))
        model.text_proj.bias.zero_()
    n = int(duration * FEATURES_PER_SEC)
    t = np.arange(n) / FEATURES_PER_SEC
    rng = np.random.default_rng(0)
    rows = np.tile(np.array([0.0, 1.0, 0.0, 0.0], np.float32), (n, 1)) + 0.05 * rng.standard_normal((n, 4))
    inside = (t >= moment[0]) & (t < moment[1])
    rows[inside] = np.array([1.0, 0.0, 0.0, 0.0]) + 0.05 * rng.standard_normal((inside.sum(), 4))
    bank = FeatureBank(["v"], torch.from_numpy(rows.astype(np.float32)), np.array([0]), np.array([n]))
    first, count = bank.window_rows(["v"], np.array([moment[0]]), np.array([moment[1]]))
    with torch.no_grad():
        pooled = Embedder(model, bank, None, None).windows(first, count).numpy()  # [1, 8]
    texts = PooledTexts(Path("cache"), {"hidden_size": "8"}, pooled.astype(np.float32), [text_key(query)])
    return Embedder(model, bank, texts, None)


def test_dual_encoder_scorer_ranks_the_moment_first():
    from egonlq.video.scorers import ClipSample, DualEncoderScorer

    # the clip starts 40 s into the video: a scorer reading clip-relative times as video times would put
    # the moment (video 60-70 s) at 20-30 s of the clip and rank the wrong frames first
    embedder = _dual_encoder_embedder((60.0, 70.0), 120.0, "where is the cup")
    scorer = DualEncoderScorer(embedder, fingerprint="tiny", window_sec=2.0)
    fps = 30.0
    seconds = np.arange(40, 101)
    clip = ClipSample("v", "c", Path("v.mp4"), fps, 30, 40.0, 100.0, (seconds * fps).astype(np.int64))
    scores = scorer.score(clip, " where is  the cup")  # the cache key is space-normalised
    assert scores.shape == (len(seconds),) and scores.dtype == np.float32
    assert np.all((scores >= -1) & (scores <= 1))
    in_moment = (seconds >= 61) & (seconds <= 69)  # the whole 2 s window inside the moment
    outside = (seconds <= 57) | (seconds >= 73)
    assert scores[in_moment].min() > scores[outside].max()
    top = np.argsort(-scores, kind="stable")[: in_moment.sum()]
    assert set(seconds[top]) <= set(range(60, 71))  # frames whose window overlaps the moment
    # the clip's windows are embedded once for several texts; a text missing from the cache is an error
    scorer.score(clip, "where is the cup")
    assert scorer.stats == {"clips_embedded": 1, "windows_embedded": len(seconds), "texts_scored": 2}
    with pytest.raises(InputError, match="not in the pooled text cache"):
        scorer.score(clip, "another question")
    wider = DualEncoderScorer(embedder, fingerprint="tiny", window_sec=4.0)
    assert wider.fingerprint() != scorer.fingerprint()
