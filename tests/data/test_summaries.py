"""NLQ clip summaries: overlap with the clip window, clip-relative times, counts, the JSON export."""

from __future__ import annotations

import math

import pandas as pd

from egonlq.data.summaries import clip_summaries, clip_summary_texts, summaries_json, summary_text


def _clips() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "clip_uid": ["c1", "c2", "c3"],
            "video_uid": ["v1", "v1", "v2"],
            "video_start_sec": [100.0, 400.0, 0.0],
            "video_end_sec": [400.0, 700.0, 300.0],
        }
    )


def _summaries() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "video_uid": ["v1", "v1", "v1", "v1", "v1", "v3"],
            "pass": [1, 1, 2, 1, 1, 1],
            "start_sec": [0.0, 300.0, 0.0, 400.0, None, 0.0],
            "end_sec": [300.0, 600.0, 700.0, 400.0, 50.0, 10.0],
            "text": [
                "#summary C cooks",
                "#Summary: C washes up",
                "#summary C cooks",
                "#summary x",
                "#summary y",
                "z",
            ],
            "annotation_uid": ["a", "a", "b", "a", "a", "c"],
        }
    )


def test_overlapping_summaries_with_clip_relative_times_and_counts():
    rows, stats = clip_summaries(_summaries(), _clips())
    c1 = rows[rows["clip_uid"] == "c1"]
    # [0, 300] covers 200 s of [100, 400]; [300, 600] 100 s; pass 2's [0, 700] all 300 s
    assert c1[["pass", "start_sec", "end_sec", "overlap_sec"]].values.tolist() == [
        [1, -100.0, 200.0, 200.0],
        [1, 200.0, 500.0, 100.0],
        [2, -100.0, 600.0, 300.0],
    ]
    c2 = rows[rows["clip_uid"] == "c2"]
    # [0, 300] ends before c2 starts: out; the zero-length [400, 400] touches only: out
    assert c2[["start_sec", "end_sec"]].values.tolist() == [[-100.0, 200.0], [-400.0, 300.0]]
    assert stats["clips"] == 3
    assert stats["clips_with_summary"] == 2
    assert stats["clips_without_summary"] == 1  # c2's video has none
    assert stats["summaries_no_time"] == 1
    assert stats["rows"] == 5
    assert stats["summaries_per_clip_mean"] == 2.5


def test_scoring_text_drops_the_tag_and_joins_distinct_texts_longest_overlap_first():
    assert summary_text("  #SUMMARY: C cooks in the kitchen ") == "C cooks in the kitchen"
    rows, _ = clip_summaries(_summaries(), _clips())
    assert clip_summary_texts(rows) == {
        "c1": "C cooks. C washes up",
        "c2": "C cooks. C washes up",
    }  # c2: pass 2 covers it all


def test_json_export_keyed_by_clip_with_clips_without_summary():
    rows, _ = clip_summaries(_summaries(), _clips())
    out = summaries_json(rows, _clips())
    assert sorted(out) == ["c1", "c2", "c3"]
    assert out["c3"] == {
        "video_uid": "v2",
        "video_start_sec": 0.0,
        "video_end_sec": 300.0,
        "summary": None,
        "summaries": [],
    }
    first = out["c1"]["summaries"][0]
    assert first == {
        "pass": 1,
        "start_sec": -100.0,
        "end_sec": 200.0,
        "text": "#summary C cooks",
        "annotation_uid": "a",
    }
    assert not any(math.isnan(s["start_sec"]) for c in out.values() for s in c["summaries"])
