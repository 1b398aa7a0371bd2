"""Does keyframe selection find the moment? The table on literal inputs, pooled scorers, outputs."""

from __future__ import annotations

import pandas as pd
import pyarrow.parquet as pq
import pytest

from egonlq.video.moment_hits import MOMENT_HITS, moment_hit_table, plot_moment_hits, write_moment_hits


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
