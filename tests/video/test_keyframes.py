"""Keyframe selection on the tiny demo world: tables, resume after a kill, failures, the CLI."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import torch
from PIL import Image

from egonlq.errors import InputError
from egonlq.video.aks import AKSParams, select_keyframes, topk_selection, uniform_selection
from egonlq.video.decode import iter_frames
from egonlq.video.frame_encoders import DemoEncoder
from egonlq.video.keyframes import (
    METHODS,
    SCORES,
    SELECTION,
    ProgressLog,
    settings_for,
)
from egonlq.video.moment_hits import moment_hit_table
from tests.video.world import PARAMS, pa_table, run

torch.set_num_threads(1)


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
    assert list(stats["videos_failed"]) == [world.video_uid] and stats["failed"] == {}
    assert pq.read_table(tmp_path / "selection.parquet").num_rows == 0


def test_run_keyframes_refuses_a_video_of_the_wrong_length(world, demo, tmp_path):
    """A short file standing in for a long video: its clips' windows are not in it, so every query of it
    fails instead of being scored on whatever frames happen to fall inside."""
    frames = world.num_frames[world.video_uid]
    stats = run(world, tmp_path / "long", demo, canonical_frames={world.video_uid: frames * 10})
    assert stats["queries_failed"] == world.n_eligible and stats["score_rows"] == 0
    assert "canonical video has" in stats["videos_failed"][world.video_uid]
    within = frames + 29  # 0.97 s longer: inside DURATION_TOLERANCE_SEC
    stats = run(world, tmp_path / "close", demo, canonical_frames={world.video_uid: within})
    assert stats["queries_failed"] == 0 and stats["score_rows"] == world.n_eligible
    assert stats["videos_unchecked"] == 0
    stats = run(world, tmp_path / "unknown", demo, canonical_frames={})
    assert stats["videos_unchecked"] == 1 and stats["score_rows"] == world.n_eligible


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
         "--videos", str(tmp_path / "videos.parquet"),
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


@pytest.mark.parametrize("aks", ['{"M": 8}', '[{"M": 8, "depht": 2}]', '[{"M": 0}]', "not json", "seeds"])
def test_keyframes_command_refuses_bad_aks_parameters(aks, tmp_path):
    from egonlq.cli import main

    args = ["keyframes", "--queries", "q", "--clips", "c", "--videos", "v", "--video-dir", str(tmp_path),
            "--scorer", "encoder", "--aks", aks, "--progress", "p", "--scores", "s", "--selection", "x",
            "--frames-dir", str(tmp_path / "png"), "--stats", "st"]  # fmt: skip
    with pytest.raises(SystemExit, match="--aks: expected one of \\['demo', 'seed'\\] or a JSON list"):
        main(args)


def test_named_parameter_sets_hold_the_seed_defaults():
    from egonlq.video.aks import parameter_sets

    assert parameter_sets("seed") == [AKSParams(M=32, depth=5, t1=0.8, t2=-100.0)]
    assert [p.M for p in parameter_sets("demo")] == [8, 16]
    assert parameter_sets([{"M": 4, "depth": 2}]) == [AKSParams(M=4, depth=2)]
    with pytest.raises(ValueError, match="unknown AKS parameter set 'seeds'"):
        parameter_sets("seeds")


def test_text_sources_summary_and_weighted_both(world, demo, tmp_path):
    from egonlq.video.keyframes import ScoringText

    only = dict(methods=("topk",), params_list=[AKSParams(M=4)])
    clips = sorted(set(world.queries.loc[world.queries["video_uid"] == world.video_uid, "clip_uid"]))
    summaries = {clip: "C washes a cup in the sink" for clip in clips}
    run(world, tmp_path / "q", demo, **only)
    s_stats = run(world, tmp_path / "s", demo, text=ScoringText("summary", summaries=summaries), **only)
    b_stats = run(world, tmp_path / "b", demo, text=ScoringText("both", 0.25, summaries), **only)
    none = run(world, tmp_path / "n", demo, text=ScoringText("summary", summaries={}), **only)
    q = pd.read_parquet(tmp_path / "q" / "scores.parquet").set_index("query_uid")
    s = pd.read_parquet(tmp_path / "s" / "scores.parquet").set_index("query_uid")
    b = pd.read_parquet(tmp_path / "b" / "scores.parquet").set_index("query_uid")
    assert len(s) == len(b) == len(q) == world.n_eligible
    assert s_stats["queries_no_summary"] == b_stats["queries_no_summary"] == 0
    assert none["queries_no_summary"] == world.n_eligible and none["score_rows"] == 0  # skipped, counted
    assert set(s["scorer"]) == {"cosine:demo-visual-code|summary"}
    assert set(b["scorer"]) == {"cosine:demo-visual-code|both:0.25"}
    assert s_stats["scorer_fingerprint"] != b_stats["scorer_fingerprint"]
    for uid in s.index:
        assert s.loc[uid, "text"] == "C washes a cup in the sink"
        expected = 0.75 * np.asarray(q.loc[uid, "scores"]) + 0.25 * np.asarray(s.loc[uid, "scores"])
        np.testing.assert_allclose(b.loc[uid, "scores"], expected, atol=1e-6)
    assert any(not np.allclose(s.loc[u, "scores"], q.loc[u, "scores"]) for u in s.index)
    same_clip = s.groupby("clip_uid")["scores"].apply(lambda col: len({tuple(v) for v in col}))
    assert (same_clip == 1).all()  # a summary scores every query of a clip alike
    with pytest.raises(ValueError, match="needs the clip summaries"):
        ScoringText("summary")
    with pytest.raises(ValueError, match="strictly between"):
        ScoringText("both", 1.0, summaries)


def test_select_from_scores_equals_a_run_with_those_settings(world, demo, tmp_path):
    from egonlq.video.keyframes import select_from_scores

    seed_set = [AKSParams(M=32, depth=5)]
    run(world, tmp_path / "demo", demo)  # the demo's sets
    direct = run(world, tmp_path / "seed", demo, params_list=seed_set)  # scored again with the seed set
    out = tmp_path / "reselected.parquet"
    stats = select_from_scores(tmp_path / "demo" / "scores.parquet", settings_for(METHODS, seed_set), out)
    assert pq.read_table(out).equals(pq.read_table(tmp_path / "seed" / "selection.parquet"))
    assert stats["selection_rows"] == direct["selection_rows"] == 4 * direct["score_rows"]
    assert stats["short_video_rows"] == direct["short_video_rows"]
