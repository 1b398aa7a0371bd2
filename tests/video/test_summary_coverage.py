"""Summary coverage: narrated moments of a clip with a selected frame within +-w s, per setting."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from egonlq.video.summary_coverage import (
    clip_moments,
    covered,
    summary_coverage_table,
    write_summary_coverage,
)

_times = st.lists(st.floats(0, 300, allow_nan=False), max_size=30)


@given(_times, _times, st.floats(0, 20, allow_nan=False))
def test_covered_matches_brute_force(moments, selected, window):
    m = np.sort(np.array(moments, dtype=np.float64))
    expected = sum(any(abs(s - t) <= window + 1e-9 for s in selected) for t in m)
    assert covered(m, np.array(selected), window) == expected


def _clips():
    return pd.DataFrame(
        {
            "clip_uid": ["c1", "c2"],
            "video_uid": ["v", "v"],
            "video_start_sec": [10.0, 100.0],
            "video_end_sec": [50.0, 140.0],
        }
    )


def _narrations():
    return pd.DataFrame(
        {
            "video_uid": ["v"] * 6,
            "timestamp_sec": [12.0, 30.0, 48.0, None, 20.0, 110.0],
            "tag": ["#C", "#O", "#C", "#C", "#summary", "#C"],
        }
    )


def _queries():
    return pd.DataFrame({"clip_uid": ["c1", "c2"], "annotation_uid": ["a", "a"], "query_idx": [0, 0]})


def test_clip_moments_are_clip_relative_timed_narrations_without_summaries():
    moments = clip_moments(_narrations(), _clips())
    assert moments["c1"].tolist() == [2.0, 20.0, 38.0]
    assert moments["c2"].tolist() == [10.0]


def _row(uid, method, scorer, times):
    return {
        "query_uid": uid,
        "method": method,
        "mode": None,
        "M": 2,
        "L": None,
        "t1": None,
        "t2": None,
        "ratio": None,
        "scorer": scorer,
        "selected_time_s": times,
        "n_selected": len(times),
    }


def test_table_pools_moments_compares_common_queries_and_counts_uniform_once(tmp_path):
    selection = pd.DataFrame(
        [
            _row("c1:a:0", "topk", "cos", [1.0, 21.5]),  # covers 2 (within 2 s) and 20
            _row("c2:a:0", "topk", "cos", [30.0]),  # misses 10
            _row("c1:a:0", "topk", "cos|summary", [2.0, 37.0]),  # covers 2 and 38
            _row("c1:a:0", "uniform", "cos", [10.0, 40.0]),  # covers 38 only (40 - 38 = 2)
            _row("c1:a:0", "uniform", "cos|summary", [10.0, 40.0]),
        ]
    )
    table = summary_coverage_table(selection, _queries(), _narrations(), _clips(), window=2.0)
    by = table.set_index("setting")
    # c2:a:0 has no summary-guided row: left out of every row so all compare the same query
    assert by.loc["cos: topk M=2", ["n_queries", "n_moments"]].tolist() == [1, 3]
    assert by.loc["cos: topk M=2", "moment_coverage"] == pytest.approx(2 / 3)
    assert by.loc["cos|summary: topk M=2", "moment_coverage"] == pytest.approx(2 / 3)
    assert by.loc["uniform M=2", "moment_coverage"] == pytest.approx(1 / 3)
    assert len(table) == 3
    write_summary_coverage(table, tmp_path / "t.parquet", tmp_path / "t.md", synthetic=True)
    text = (tmp_path / "t.md").read_text()
    assert "| uniform M=2 | 1 | 3 | 2.0 | 33.3 |" in text and "±2 s" in text and "Synthetic" in text
    assert pd.read_parquet(tmp_path / "t.parquet")["moment_coverage"].notna().all()
    with pytest.raises(ValueError, match="window"):
        summary_coverage_table(selection, _queries(), _narrations(), _clips(), window=-1)
