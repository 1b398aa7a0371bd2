"""Frame features and keyframe selection on the tiny demo world (one rendered val video) and literal cases."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from egonlq.data.annotations import ingest_nlq
from egonlq.data.features import cut_clips, load_video_features
from egonlq.demo.world import OBJECTS, build_world, make_world
from egonlq.errors import InputError
from egonlq.timegrid import num_features
from egonlq.video.aks import AKSParams, select_keyframes, topk_selection, uniform_selection
from egonlq.video.decode import iter_frames, probe
from egonlq.video.frame_encoders import DemoEncoder
from egonlq.video.frame_features import (
    FRAME_EMBEDDINGS,
    extract_many,
    extract_video_features,
    feature_times,
    sample_grid,
)
from egonlq.video.keyframes import (
    MOMENT_HITS,
    SCORES,
    SELECTION,
    EncoderScorer,
    ProgressLog,
    VSLNetScorer,
    clip_scores,
    moment_hit_table,
    plot_moment_hits,
    run_keyframes,
    settings_for,
    unit_scores_to_frames,
    vslnet_unit_scores,
    write_moment_hits,
)

torch.set_num_threads(1)

PARAMS = [AKSParams(M=16, depth=3), AKSParams(M=8, depth=2, t1=0.5)]


class World:
    def __init__(self, root: Path):
        self.root = root
        self.video_dir = root / "v1" / "full_scale"
        (self.mp4,) = sorted(self.video_dir.glob("*.mp4"))
        self.video_uid = self.mp4.stem
        videos = json.loads((root / "ego4d.json").read_text())["videos"]
        self.num_frames = {v["video_uid"]: v["video_metadata"]["num_frames"] for v in videos}
        clips, queries, _ = ingest_nlq(root / "v1" / "annotations" / "nlq_val.json", "val")
        self.clips, self.queries = clips.to_pandas(), queries.to_pandas()
        on_video = self.queries["video_uid"] == self.video_uid
        self.n_eligible = int((on_video & self.queries["has_text"]).sum())


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> World:
    root = tmp_path_factory.mktemp("tiny_world")
    build_world(root, preset="tiny", seed=0)
    return World(root)


@pytest.fixture(scope="module")
def demo() -> DemoEncoder:
    return DemoEncoder()


def run(world: World, out: Path, scorer, video_dir: Path | None = None, **kwargs) -> dict:
    options = dict(params_list=PARAMS, frames_dir=None, save_frames=0)
    options.update(kwargs)
    return run_keyframes(
        world.queries,
        world.clips,
        video_dir or world.video_dir,
        scorer,
        out_scores=out / "scores.parquet",
        out_selection=out / "selection.parquet",
        progress_path=out / "progress.jsonl",
        **options,
    )


# ---------------------------------------------------------------------------------------- frame features


def test_feature_times_follow_the_official_windows():
    assert feature_times(39, 1.3, 1.875).tolist() == [
        0.0,
        7 / 30,
    ]  # the docs' example: windows [0,31], [7,38]
    t = feature_times(14_401, 480.03, 1.875)
    assert len(t) == 900 and t[1] == 16 / 30 and t[-1] == (14_401 - 32) / 30
    assert feature_times(20, 0.67, 1.875).tolist() == [0.0]
    assert feature_times(None, 2.0, 1.5).tolist() == [0.0, 2 / 3, 4 / 3]
    with pytest.raises(ValueError, match="1.875"):
        feature_times(100, 3.3, 1.0)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 20_000))
def test_feature_times_count_and_order(frames):
    t = feature_times(frames, frames / 30, 1.875)
    assert len(t) == num_features(frames)
    assert np.all(np.diff(t) > 0) and t[0] == 0.0
    assert t[-1] <= max(frames - 32, 0) / 30


def test_extract_video_features_has_the_official_row_count(world, demo):
    frames = world.num_frames[world.video_uid]
    x = extract_video_features(world.mp4, demo, num_frames_canonical=frames)
    assert x.shape == (num_features(frames), demo.dim) and x.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-5)
    # row i is the frame nearest to the window start min(16 i, F - 32) / 30 of the 5 fps rendering
    info = probe(world.mp4)
    for i in (0, 1, 17, len(x) - 1):
        k = min(math.floor(min(16 * i, frames - 32) / 30 * info.fps + 0.5), info.num_frames - 1)
        ((_, image),) = iter_frames(world.mp4, np.array([k]))
        np.testing.assert_allclose(x[i], demo.encode_images(image)[0], atol=1e-6)


def test_extract_video_features_refuses_the_wrong_video(world, demo):
    with pytest.raises(InputError, match="canonical video"):
        extract_video_features(world.mp4, demo, num_frames_canonical=world.num_frames[world.video_uid] + 90)


def test_extract_many_writes_features_and_frames_and_counts_failures(world, demo, tmp_path):
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(b"not a video")
    frames = world.num_frames[world.video_uid]
    videos = [
        (world.video_uid, world.mp4, frames),
        ("missing", tmp_path / "missing.mp4", 300),
        ("corrupt", corrupt, 300),
    ]
    stats = extract_many(videos, demo, tmp_path / "a", frames_path=tmp_path / "a_frames.parquet")
    assert (stats["videos_in"], stats["videos_ok"], stats["videos_failed"]) == (3, 1, 2)
    assert sorted(stats["failed"]) == ["corrupt", "missing"]
    assert stats["feature_rows"] == num_features(frames)
    pt = tmp_path / "a" / f"{world.video_uid}.pt"
    loaded = load_video_features(
        pt, expected_dim=demo.dim, num_frames=frames
    )  # the official loader accepts it
    np.testing.assert_array_equal(
        loaded, extract_video_features(world.mp4, demo, num_frames_canonical=frames)
    )
    # per-frame table on the keyframe grid (5 fps: every 5th frame)
    table = pq.read_table(tmp_path / "a_frames.parquet")
    assert table.schema.remove_metadata() == FRAME_EMBEDDINGS
    assert table.schema.metadata[b"fingerprint"].decode() == demo.fingerprint()
    info = probe(world.mp4)
    grid, step = sample_grid(info, 1.0)
    assert step == 5 and table.column("frame_idx").to_pylist() == grid.tolist() == list(
        range(0, len(grid) * 5, 5)
    )
    np.testing.assert_allclose(table.column("time_sec").to_numpy(), grid / 5.0)
    assert stats["frame_rows"] == len(grid)
    # same input, same bytes
    extract_many(videos[:1], demo, tmp_path / "b")
    assert (tmp_path / "b" / pt.name).read_bytes() == pt.read_bytes()


# ------------------------------------------------------------------------------------------- keyframes


def test_clip_scores_is_cosine():
    frames = np.array([[3.0, 4.0], [0.0, 2.0], [0.0, 0.0]], dtype=np.float32)
    np.testing.assert_allclose(clip_scores(frames, np.array([1.0, 0.0])), [0.6, 0.0, 0.0], atol=1e-7)
    np.testing.assert_allclose(clip_scores(frames, np.array([0.0, -5.0])), [-0.8, -1.0, 0.0], atol=1e-7)
    with pytest.raises(ValueError, match="size"):
        clip_scores(frames, np.ones(3))


def test_settings_fix_the_mode_and_drop_repeats():
    found = settings_for(
        ("aks_reference", "aks_improved", "uniform", "topk"), [*PARAMS, AKSParams(M=16, t1=0.5)]
    )
    keys = [s.key for s in found]
    assert len(keys) == len(set(keys)) == 3 + 3 + 2 + 2  # uniform / topk depend on M only
    assert {s.params.mode for s in found if s.method == "aks_improved"} == {"improved"}
    with pytest.raises(ValueError, match="unknown keyframe methods"):
        settings_for(("aks",), PARAMS)


def test_run_keyframes_tables(world, demo, tmp_path):
    stats = run(world, tmp_path, demo, frames_dir=tmp_path / "frames", save_frames=2)
    n = world.n_eligible
    assert stats["queries_in"] == len(world.queries)
    assert stats["queries_no_text"] == int((~world.queries["has_text"]).sum())
    assert stats["queries_eligible"] == stats["queries_scored"] == stats["score_rows"] == n > 3
    assert stats["queries_eligible"] + stats["queries_no_text"] + stats["queries_no_video"] == len(
        world.queries
    )
    assert stats["selection_rows"] == n * stats["settings"] == n * 8
    scores = pq.read_table(tmp_path / "scores.parquet")
    selection = pq.read_table(tmp_path / "selection.parquet")
    assert scores.schema == SCORES and selection.schema == SELECTION
    scores, selection = scores.to_pandas(), selection.to_pandas()
    assert scores["query_uid"].tolist() == sorted(scores["query_uid"])
    assert selection["query_uid"].tolist() == sorted(selection["query_uid"])
    row = scores.iloc[0]
    assert (row["fps"], row["step"], row["sample_rate"]) == (5.0, 5, 1.0)
    assert np.all(np.diff(row["sampled_frame_idx"]) == 5) and row["sampled_frame_idx"][0] == 0
    assert row["scorer"] == "cosine:demo-visual-code" and len(row["scores"]) == len(row["sampled_frame_idx"])

    by_query = scores.set_index("query_uid")
    for r in selection.itertuples(index=False):
        s = by_query.loc[r.query_uid]
        ids, values = s["sampled_frame_idx"], s["scores"]
        if r.method.startswith("aks_"):
            params = AKSParams(M=r.M, depth=int(r.L), t1=r.t1, t2=r.t2, ratio=int(r.ratio), mode=r.mode)
            expected = select_keyframes(values, ids, params)
        elif r.method == "uniform":
            expected = uniform_selection(ids, r.M)
        else:
            expected = topk_selection(values, ids, r.M)
        assert r.selected_frame_idx.tolist() == expected.frame_ids  # parity on the stored scores
        assert r.n_selected == len(expected.frame_ids) and r.short_video == expected.short_video
        np.testing.assert_allclose(r.selected_time_s, r.selected_frame_idx / 5.0 - s["video_start_sec"])

    # the selected frames of the first two queries, as PNG
    first = sorted(scores["query_uid"])[0]
    folder = tmp_path / "frames" / first.replace(":", "_")
    chosen = selection[(selection["query_uid"] == first) & (selection["method"] == "topk")]
    frame = int(chosen.iloc[0]["selected_frame_idx"][0])
    ((_, decoded),) = iter_frames(world.mp4, np.array([frame]))
    np.testing.assert_array_equal(np.asarray(Image.open(folder / f"topk_{frame}.png")), decoded[0])
    assert len(list((tmp_path / "frames").iterdir())) == 2 and stats["frames_saved"] > 0


def test_topk_finds_the_moment_on_the_demo_video(world, demo, tmp_path):
    run(world, tmp_path, demo, methods=("topk", "uniform"), params_list=[AKSParams(M=8)])
    hits = moment_hit_table(pd.read_parquet(tmp_path / "selection.parquet"), world.queries, clips=world.clips)
    hits = hits.set_index("method")
    assert hits.loc["topk", "query_hit_share"] >= 0.75
    assert hits.loc["topk", "frame_share_in_window"] > 4 * hits.loc["topk", "chance_frame_share"]
    assert hits.loc["topk", "frame_share_in_window"] > 3 * hits.loc["uniform", "frame_share_in_window"]


class Counting:
    """A DemoEncoder that counts text encodings and can be 'killed' (raise) at the n-th one."""

    def __init__(self, kill_at: int | None = None):
        self.inner = DemoEncoder()
        self.name, self.dim = self.inner.name, self.inner.dim
        self.kill_at, self.texts = kill_at, 0

    def fingerprint(self) -> str:
        return self.inner.fingerprint()

    def encode_images(self, frames):
        return self.inner.encode_images(frames)

    def encode_texts(self, texts):
        self.texts += len(texts)
        if self.kill_at is not None and self.texts >= self.kill_at:
            raise KeyboardInterrupt("killed")
        return self.inner.encode_texts(texts)


def test_kill_and_resume(world, tmp_path):
    clean = tmp_path / "clean"
    run(world, clean, Counting(), frames_dir=clean / "png", save_frames=5)
    out = tmp_path / "resumed"
    with pytest.raises(KeyboardInterrupt):
        run(world, out, Counting(kill_at=4), frames_dir=out / "png", save_frames=5)  # dies at the 4th query
    assert not (out / "selection.parquet").exists()
    with open(out / "progress.jsonl", "ab") as f:  # and left half a record behind
        f.write(b'{"format":"egonlq-keyframes-progress/1","key":"scores|tor')
    encoder = Counting()
    stats = run(world, out, encoder, frames_dir=out / "png", save_frames=5)
    pngs = sorted(str(p.relative_to(clean / "png")) for p in (clean / "png").rglob("*.png"))
    assert pngs and pngs == sorted(str(p.relative_to(out / "png")) for p in (out / "png").rglob("*.png"))
    n = world.n_eligible
    assert stats["progress_torn_lines"] == 1 and stats["progress_duplicates"] == 0
    assert stats["queries_done_before"] == 3 and stats["queries_scored"] == n - 3 == encoder.texts
    for name in ("scores.parquet", "selection.parquet"):
        pd.testing.assert_frame_equal(pd.read_parquet(out / name), pd.read_parquet(clean / name))
    lines = (out / "progress.jsonl").read_text().splitlines()
    keys = [json.loads(line)["key"] for line in lines]
    assert len(keys) == len(set(keys)) == n * (1 + 8)  # no record twice, none lost

    again = Counting()
    stats = run(world, out, again)  # everything done: no scoring at all
    assert again.texts == 0 and stats["queries_done_before"] == n and stats["selection_rows"] == n * 8
    more = Counting()
    # a new AKSParams: 4 new settings (both AKS modes, uniform and topk at M=4), selected from stored scores
    stats = run(world, out, more, params_list=[*PARAMS, AKSParams(M=4, depth=1)])
    assert more.texts == 0 and stats["queries_reselected"] == n and stats["selection_rows"] == n * 12


def test_progress_log_refuses_a_corrupt_middle_line(tmp_path):
    log = ProgressLog(tmp_path / "p.jsonl")
    log.append([("a", "scores", {"x": 1}), ("b", "selection", {"x": 2})])
    assert ProgressLog(tmp_path / "p.jsonl").records == {"a": {"x": 1}, "b": {"x": 2}}
    text = (tmp_path / "p.jsonl").read_text().splitlines()
    (tmp_path / "p.jsonl").write_text("\n".join([text[0], "{oops", text[1]]) + "\n")
    with pytest.raises(InputError, match="line 2"):
        ProgressLog(tmp_path / "p.jsonl")


def test_run_keyframes_counts_a_broken_video(world, demo, tmp_path):
    videos = tmp_path / "videos"
    videos.mkdir()
    (videos / world.mp4.name).write_bytes(b"broken")
    stats = run(world, tmp_path, demo, video_dir=videos)
    assert stats["queries_failed"] == world.n_eligible and stats["queries_scored"] == 0
    assert len(stats["failed"]) == 1 and pq.read_table(tmp_path / "selection.parquet").num_rows == 0


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


# ------------------------------------------------------------------------------------------- VSLNet


class FakeTextEncoder:
    """Enough of egonlq.grounding.text_encoder.TextEncoder for build_text_cache: a fixed random token
    table."""

    hidden_size, max_len, max_tokens, name, fingerprint = 8, 64, 64, "fake", "f" * 64
    model_path = Path("fake")

    def encode(self, texts, batch_size=64):
        return [np.random.default_rng(len(t)).standard_normal((len(t.split()) + 2, 8)) for t in texts]

    def token_lengths(self, texts):
        return [len(t.split()) + 2 for t in texts]


@pytest.fixture(scope="module")
def vslnet_files(world, tmp_path_factory):
    from egonlq.grounding.text_encoder import build_text_cache
    from egonlq.grounding.vslnet import VSLNet, VSLNetConfig

    folder = tmp_path_factory.mktemp("vslnet")
    torch.manual_seed(0)
    VSLNet(VSLNetConfig(video_dim=256, text_dim=8, dim=16, num_heads=2, max_pos_len=64)).save_pretrained(
        folder / "m"
    )
    build_text_cache(world.queries["query"].dropna(), FakeTextEncoder(), folder / "text.safetensors")
    cut_clips(world.clips, world.root / "v1" / "demo_features", folder / "clips.parquet", expected_dim=256)
    return folder


def test_unit_scores_to_frames():
    units = np.array([0.1, 0.2, 0.3, 0.4], dtype=np.float32)
    times = np.array([0.0, 1.99, 2.0, 5.0, 7.99, 9.0, -1.0])
    assert unit_scores_to_frames(units, times, 8.0, "corrected").tolist() == pytest.approx(
        [0.1, 0.1, 0.2, 0.3, 0.4, 0.4, 0.1]
    )


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


# ------------------------------------------------------------------------------------ moment hits


def literal_hits(second_scorer: bool = False) -> pd.DataFrame:
    queries = pd.DataFrame(
        {
            "clip_uid": ["c", "c", "c"],
            "annotation_uid": ["a", "a", "a"],
            "query_idx": [0, 1, 2],
            "clip_start_sec": [10.0, 50.0, None],  # the third has no GT window: not counted
            "clip_end_sec": [20.0, 60.0, None],
        }
    )
    selection = pd.DataFrame(
        {
            "query_uid": ["c:a:0", "c:a:1", "c:a:2", "c:a:0", "c:a:1"],
            "method": ["topk", "topk", "topk", "uniform", "uniform"],
            "mode": [None] * 5,
            "M": [4] * 5,
            "L": [None] * 5,
            "t1": [None] * 5,
            "t2": [None] * 5,
            "ratio": [None] * 5,
            "selected_time_s": [
                [9.9, 10.0, 15.0, 20.0],
                [1.0, 2.0],
                [55.0],
                [0.0, 30.0, 60.0, 90.0],
                [0.0, 30.0, 60.0, 90.0],
            ],
            "n_selected": [4, 2, 1, 4, 4],
        }
    )
    clips = pd.DataFrame({"clip_uid": ["c"], "video_start_sec": [5.0], "video_end_sec": [105.0]})
    if second_scorer:  # scorer b puts query 0's top-k frames elsewhere; uniform frames do not depend on it
        other = selection.assign(scorer="b")
        other.at[0, "selected_time_s"] = [0.0, 1.0, 2.0, 3.0]
        selection = pd.concat([selection.assign(scorer="a"), other], ignore_index=True)
    return moment_hit_table(selection, queries, clips=clips)


def test_moment_hit_table_on_literal_inputs():
    t = literal_hits().set_index("method")
    assert t.loc["topk", "n_queries"] == 2 and t.loc["topk", "mean_n_selected"] == 3.0
    assert t.loc["topk", "frame_share_in_window"] == pytest.approx(3 / 6)  # 10, 15, 20 of 6 frames
    assert t.loc["topk", "query_hit_share"] == pytest.approx(1 / 2)
    assert t.loc["uniform", "frame_share_in_window"] == pytest.approx(1 / 8)  # only 60 s, for query 1
    assert t.loc["uniform", "query_hit_share"] == pytest.approx(1 / 2)
    assert t.loc["topk", "chance_frame_share"] == pytest.approx(0.1)  # 10 s of a 100 s clip
    assert t.loc["topk", "setting"] == "topk M=4"


def test_moment_hit_table_pools_scorers():
    t = literal_hits(second_scorer=True).set_index("setting")
    assert list(t.index) == ["a: topk M=4", "b: topk M=4", "uniform M=4"]
    assert t.loc["a: topk M=4", "frame_share_in_window"] == pytest.approx(3 / 6)
    assert t.loc["b: topk M=4", "frame_share_in_window"] == pytest.approx(0 / 6)
    assert t.loc["b: topk M=4", "query_hit_share"] == pytest.approx(0.0)
    assert t.loc["uniform M=4", "n_queries"] == 2 and pd.isna(t.loc["uniform M=4", "scorer"])
    assert t.loc["uniform M=4", "frame_share_in_window"] == pytest.approx(1 / 8)  # counted once


def test_moment_hits_outputs(tmp_path):
    table = literal_hits()
    write_moment_hits(table, tmp_path / "hits.parquet", tmp_path / "hits.md", synthetic=True)
    assert pq.read_table(tmp_path / "hits.parquet").schema == MOMENT_HITS
    markdown = (tmp_path / "hits.md").read_text()
    assert "| topk M=4 | 2 | 3.0 | 50.0 | 50.0 | 10.0 |" in markdown and "Synthetic" in markdown
    fig = plot_moment_hits(table, tmp_path / "hits.png")
    heights = {p.get_gid(): p.get_width() for p in fig.axes[0].patches}
    assert heights["topk M=4:frames"] == pytest.approx(50.0) and heights[
        "uniform M=4:frames"
    ] == pytest.approx(12.5)
    assert (tmp_path / "hits.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_demo_encoder_reads_the_rendered_video(world, demo):
    """Decoded H.264 frames (not just clean renders): the object and place match the world's ground truth."""
    video = next(v for v in make_world("tiny", 0).videos if v.uid == world.video_uid)
    info = probe(world.mp4)
    idx = np.arange(0, info.num_frames, 3)
    place, event = video.state_at(idx / info.fps)
    emb = np.concatenate([demo.encode_images(f) for _, f in iter_frames(world.mp4, idx)])
    objects = emb[:, demo.offsets["object"] : demo.offsets["object"] + len(OBJECTS)]
    places = emb[:, demo.offsets["place"] : demo.offsets["place"] + 15]
    on = event >= 0
    assert on.sum() > 50 and (~on).sum() > 20
    assert (objects[on].argmax(axis=1) == video.ev_obj[event[on]]).mean() >= 0.97
    assert objects[~on].sum(axis=1).max() < 0.05  # no object drawn: no object found
    assert (places.argmax(axis=1) == place).mean() >= 0.97


def test_clip_backend_end_to_end_through_the_cli(world, tmp_path):
    """A tiny random CLIP through the workflow's commands: frame features, then scoring from its frame table
    (no second decode) and every selection method; the selections are those of its own scores."""
    from egonlq.cli import main
    from egonlq.data.tables import CLIPS, QUERIES, VIDEOS
    from egonlq.io import write_parquet
    from egonlq.video.frame_encoders import write_tiny_random_clip

    clip = write_tiny_random_clip(tmp_path / "tiny-clip", seed=0)
    frames = pd.Series(world.num_frames)
    videos = pd.DataFrame(
        {
            "video_uid": frames.index,
            "duration_sec": frames.to_numpy() / 30.0,
            "fps": 30.0,
            "num_frames": frames,
        }
    )

    write_parquet(pa_table(world.clips, CLIPS), tmp_path / "clips.parquet", CLIPS)
    write_parquet(pa_table(world.queries, QUERIES), tmp_path / "queries.parquet", QUERIES)
    write_parquet(pa_table(videos, VIDEOS), tmp_path / "videos.parquet", VIDEOS)
    common = ["--clips", str(tmp_path / "clips.parquet"), "--video-dir", str(world.video_dir)]
    main(
        ["frame-features", *common, "--videos", str(tmp_path / "videos.parquet"), "--encoder", "clip",
         "--model-path", str(clip), "--out-dir", str(tmp_path / "features"),
         "--frames", str(tmp_path / "frames.parquet"), "--stats", str(tmp_path / "ff.json")]
    )  # fmt: skip
    ff = json.loads((tmp_path / "ff.json").read_text())
    assert (ff["videos_ok"], ff["videos_failed"], ff["videos_without_mp4"]) == (1, 0, ff["split_videos"] - 1)
    assert (
        ff["encoder"].startswith("clip")
        and ff["dim"] == torch.load(tmp_path / "features" / f"{world.video_uid}.pt").shape[1]
    )
    main(
        ["keyframes", *common, "--queries", str(tmp_path / "queries.parquet"), "--scorer", "encoder",
         "--encoder", "clip", "--model-path", str(clip), "--frame-table", str(tmp_path / "frames.parquet"),
         "--aks", json.dumps([{"M": 8, "depth": 2}]), "--progress", str(tmp_path / "progress.jsonl"),
         "--scores", str(tmp_path / "scores.parquet"), "--selection", str(tmp_path / "selection.parquet"),
         "--frames-dir", str(tmp_path / "png"), "--save-frames", "1", "--stats", str(tmp_path / "kf.json")]
    )  # fmt: skip
    stats = json.loads((tmp_path / "kf.json").read_text())
    assert stats["queries_scored"] == world.n_eligible and stats["scorer_stats"]["frames_encoded"] == 0
    scores = pd.read_parquet(tmp_path / "scores.parquet")
    selection = pd.read_parquet(tmp_path / "selection.parquet")
    assert set(selection["method"]) == {"aks_reference", "aks_improved", "uniform", "topk"}
    for r in selection[selection["method"] == "topk"].itertuples():
        s = scores.set_index("query_uid").loc[r.query_uid]
        expected = topk_selection(np.asarray(s["scores"]), np.asarray(s["sampled_frame_idx"]), 8).frame_ids
        assert list(r.selected_frame_idx) == list(expected)
    assert any((tmp_path / "png").rglob("topk_*.png"))


def pa_table(frame: pd.DataFrame, schema):
    import pyarrow as pa

    return pa.Table.from_pandas(frame.loc[:, schema.names], schema=schema, preserve_index=False)


@pytest.mark.parametrize("aks", ['{"M": 8}', '[{"M": 8, "depht": 2}]', '[{"M": 0}]', "not json"])
def test_keyframes_command_refuses_bad_aks_parameters(aks, tmp_path):
    from egonlq.cli import main

    args = ["keyframes", "--queries", "q", "--clips", "c", "--video-dir", str(tmp_path),
            "--scorer", "encoder", "--aks", aks, "--progress", "p", "--scores", "s", "--selection", "x",
            "--frames-dir", str(tmp_path / "png"), "--stats", "st"]  # fmt: skip
    with pytest.raises(SystemExit, match="--aks: expected a JSON list"):
        main(args)
