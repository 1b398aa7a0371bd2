"""Narration curation: drop reasons, split exclusion, passes, duplicates, sorting, windows, pseudo-clips."""

from __future__ import annotations

import uuid

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from egonlq.data.egoclip import mean_gaps
from egonlq.data.tables import NARRATIONS, VIDEOS
from egonlq.queries.curation import (
    CURATED,
    PSEUDO_CLIP_NAMESPACE,
    assign_pseudo_clips,
    clean_narration_text,
    curate_narrations,
    pseudo_clips,
)

SPLITS = {"train": {"vtrain"}, "val": {"vval"}, "test": {"vtest"}}
DURATIONS = {"vtrain": 100.0, "vval": 100.0, "vtest": 100.0, "va": 100.0, "vb": 50.0}


def _row(video: str, p: int, idx: int, t: float | None, text: str | None, tag: str | None = None) -> dict:
    if tag is None:
        tag = text.split()[0] if text and text.startswith("#") else "none"
    unsure = bool(text and "#unsure" in text.lower())
    return {"video_uid": video, "pass": p, "narration_idx": idx, "timestamp_sec": t, "timestamp_frame": None,
            "text": text, "tag": tag, "unsure": unsure, "annotation_uid": "a"}  # fmt: skip


def _videos(durations: dict[str, float] = DURATIONS) -> pa.Table:
    rows = [
        {"video_uid": v, "duration_sec": d, "fps": 30.0, "num_frames": int(d * 30)}
        for v, d in durations.items()
    ]
    return pa.Table.from_pylist(rows, schema=VIDEOS)


# The literal table: every drop reason at least once; va pass 1 unsorted in the file.
ROWS = [
    _row("va", 1, 0, 40.0, "#C C puts the cup in the sink"),
    _row("va", 1, 1, 10.0, "#C C picks a cup from the table"),
    _row("va", 1, 2, 20.0, "#O man X opens the fridge"),
    _row("va", 1, 3, 25.0, "#C C picks #unsure the knife"),
    _row("va", 1, 4, 30.0, "#summary C cooks"),
    _row("va", 1, 5, 35.0, "C looks around", tag="none"),
    _row("va", 1, 6, None, "#C C opens the drawer"),
    _row("va", 1, 7, 150.0, "#C C opens the drawer"),  # after the video's end
    _row("va", 1, 8, 12.0, "#C C"),  # nothing left once the tags are removed
    _row("va", 2, 0, 10.0, "#C C picks a cup from the table"),  # same as pass 1 idx 1: duplicate when merged
    _row("va", 2, 1, 16.0, "#C C washes the cup"),
    _row("va", 2, 2, 4.0, "#C C holds the cup"),
    _row("vb", 1, 0, 7.0, "#C C cuts the onion"),
    _row("vb", 1, 1, 5.0, "#C C takes the knife"),
    _row("vb", 1, 2, 7.0, "#C C cuts the onion"),  # exact duplicate within the pass
    _row("vtrain", 1, 0, 3.0, "#C C opens the door"),
    _row("vval", 1, 0, 3.0, "#C C opens the door"),
    _row("vtest", 1, 0, 3.0, "#C C opens the door"),
    _row("vghost", 1, 0, 3.0, "#C C opens the door"),
]
NARR = pa.Table.from_pylist(ROWS, schema=NARRATIONS)


def _curate(**kwargs: object) -> tuple[pa.Table, dict]:
    kwargs.setdefault("exclude_videos", SPLITS)
    return curate_narrations(NARR, _videos(), **kwargs)


def test_counts_by_reason_default() -> None:
    table, stats = _curate(alpha=5.0)
    assert stats["rows_in"] == 19
    assert stats["dropped"] == {
        "excluded_split:val": 1, "excluded_split:test": 1, "excluded_split:train": 1, "video_unknown": 1,
        "pass_not_selected": 3, "tag_summary": 1, "tag_unsure": 1, "tag_none": 1, "tag_other_person": 0,
        "bad_timestamp": 2, "empty_text": 1, "duplicate": 1,
    }  # fmt: skip
    assert stats["rows_out"] == table.num_rows == 5
    assert stats["rows_in"] == stats["rows_out"] + sum(stats["dropped"].values())
    assert table.schema == CURATED
    assert table.column("narration_uid").to_pylist() == ["va:1:1", "va:1:2", "va:1:0", "vb:1:1", "vb:1:0"]


def test_val_and_test_never_pass_and_train_is_configurable() -> None:
    table, stats = _curate(allow_splits=("train",), alpha=5.0)
    videos = set(table.column("video_uid").to_pylist())
    assert "vtrain" in videos and not videos & {"vval", "vtest"}
    assert "excluded_split:train" not in stats["dropped"]
    assert stats["excluded_splits"] == ["val", "test"]
    with pytest.raises(ValueError, match="can never be allowed"):
        _curate(allow_splits=("val",))
    with pytest.raises(ValueError, match="always excluded"):
        _curate(exclude_videos={"train": {"vtrain"}, "val": {"vval"}})


def test_other_person_switch() -> None:
    table, stats = _curate(keep_other=False, alpha=5.0)
    assert stats["dropped"]["tag_other_person"] == 1
    assert "O" not in table.column("actor").to_pylist()
    kept, _ = _curate(alpha=5.0)
    assert kept.column("actor").to_pylist() == ["C", "O", "C", "C", "C"]


def test_passes_pick_and_merge_with_duplicates() -> None:
    second, stats2 = _curate(passes="2", alpha=5.0)
    assert second.column("narration_uid").to_pylist() == ["va:2:2", "va:2:0", "va:2:1"]
    assert stats2["dropped"]["pass_not_selected"] == 12
    assert stats2["dropped"]["duplicate"] == 0
    merged, stats = _curate(passes="merge", alpha=5.0)
    assert stats["dropped"]["pass_not_selected"] == 0
    assert stats["dropped"]["duplicate"] == 2  # pass 2's copy of a pass 1 line, and vb's repeat
    assert merged.column("narration_uid").to_pylist() == [
        "va:2:2", "va:1:1", "va:2:1", "va:1:2", "va:1:0", "vb:1:1", "vb:1:0"
    ]  # fmt: skip
    times = merged.column("timestamp_sec").to_pylist()
    assert times == [4.0, 10.0, 16.0, 20.0, 40.0, 5.0, 7.0]


def test_windows_are_the_egoclip_rule() -> None:
    table, stats = _curate(passes="merge", alpha=5.0, window_scale=2.0)
    got = {u: (s, e) for u, s, e in zip(*(table.column(c).to_pylist() for c in (
        "narration_uid", "window_start_sec", "window_end_sec")), strict=True)}  # fmt: skip
    # va pass 1 keeps 10, 20, 40 -> beta 15; pass 2 keeps 4, 10(dup dropped), 16 -> 4, 16 -> beta 12.
    # half width = scale * beta / (2 alpha): pass 1 3.0, pass 2 2.4; vb keeps 5, 7 -> beta 2 -> 0.4.
    assert got["va:1:1"] == pytest.approx((7.0, 13.0))
    assert got["va:1:0"] == pytest.approx((37.0, 43.0))
    assert got["va:2:2"] == pytest.approx((1.6, 6.4))
    assert got["va:2:1"] == pytest.approx((13.6, 18.4))
    assert got["vb:1:1"] == pytest.approx((4.6, 5.4))
    assert stats["alpha"] == 5.0 and stats["alpha_given"]


def test_alpha_over_whole_input_and_clamping() -> None:
    _, stats = _curate()
    # alpha: every valid timestamp except #summary, whatever split or pass (vtrain/vval/vtest/vghost: 1 each).
    eligible = {
        ("va", 1): [40, 10, 20, 25, 35, 12], ("va", 2): [10, 16, 4], ("vb", 1): [7, 5, 7],
    }  # fmt: skip
    betas = [b for b in mean_gaps({k: np.array(v, float) for k, v in eligible.items()}).values()]
    assert stats["alpha"] == pytest.approx(float(np.mean(betas)))
    rows = [_row("va", 1, 0, 0.5, "#C C opens the door"), _row("va", 1, 1, 99.8, "#C C closes the door")]
    narr = pa.Table.from_pylist(rows, schema=NARRATIONS)
    table, _ = curate_narrations(narr, _videos(), exclude_videos=SPLITS, alpha=10.0)
    # beta 99.3, half 4.965: clamped to [0, 100]
    assert table.column("window_start_sec").to_pylist() == pytest.approx([0.0, 99.8 - 4.965])
    assert table.column("window_end_sec").to_pylist() == pytest.approx([0.5 + 4.965, 100.0])


def test_clean_text() -> None:
    raw = pa.array(
        [
            "#C C picks a knife.",
            "#O man X gives C a cup",
            "#c c opens the door",
            "#C C picks #unsure it",
            None,
            "#C C",
        ]
    )
    assert clean_narration_text(raw).to_pylist() == [
        "The camera wearer picks a knife",
        "Man X gives the camera wearer a cup",
        "The camera wearer opens the door",
        "The camera wearer picks it",
        None,
        "The camera wearer",
    ]


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["va", "vb", "vval", "vtest", "vtrain", "vghost"]),
            st.sampled_from([1, 2]),
            st.one_of(st.none(), st.floats(-5, 120), st.just(float("nan"))),
            st.sampled_from(
                ["#C C picks a cup", "#O man X opens it", "#unsure C", "#summary C", "x", "#C C"]
            ),
        ),
        max_size=30,
    ),
    st.sampled_from(["1", "2", "merge"]),
    st.booleans(),
)
def test_invariants(rows: list, passes: str, keep_other: bool) -> None:
    table = pa.Table.from_pylist(
        [_row(v, p, i, t, x) for i, (v, p, t, x) in enumerate(rows)], schema=NARRATIONS
    )
    out, stats = curate_narrations(
        table, _videos(), exclude_videos=SPLITS, passes=passes, keep_other=keep_other, alpha=4.0
    )
    assert stats["rows_in"] == len(rows) == stats["rows_out"] + sum(stats["dropped"].values())
    df = out.to_pandas()
    assert not set(df["video_uid"]) & {"vval", "vtest", "vtrain", "vghost"}
    assert (df["window_start_sec"] <= df["timestamp_sec"]).all() and (
        df["timestamp_sec"] <= df["window_end_sec"]
    ).all()
    assert (df["window_start_sec"] >= 0).all() and (df["window_end_sec"] <= df["video_duration_sec"]).all()
    keys = list(zip(df["video_uid"], df["timestamp_sec"], df["pass"], df["narration_idx"], strict=True))
    assert keys == sorted(keys)
    assert not df.duplicated(["video_uid", "timestamp_sec", "text"]).any()


def test_pseudo_clips_and_assignment() -> None:
    rows = [
        _row("va", 1, 0, 470.0, "#C C picks a cup"),
        _row("va", 1, 1, 490.0, "#C C puts the cup down"),
        _row("vb", 1, 0, 3.0, "#C C opens the door"),
        _row("vb", 1, 1, 959.5, "#C C closes the door"),
    ]
    videos = _videos({"va": 1000.0, "vb": 961.0, "vval": 1.0, "vtest": 1.0, "vtrain": 1.0})
    cur, _ = curate_narrations(pa.Table.from_pylist(rows, schema=NARRATIONS), videos, exclude_videos=SPLITS,
                               alpha=1.0)  # fmt: skip
    clips = pseudo_clips(cur)
    spans = list(zip(clips["video_uid"], clips["video_start_sec"], clips["video_end_sec"], strict=True))
    # vb's 1 s tail is merged into the clip before it
    assert spans == [("va", 0.0, 480.0), ("va", 480.0, 960.0), ("va", 960.0, 1000.0),
                     ("vb", 0.0, 480.0), ("vb", 480.0, 961.0)]  # fmt: skip
    assert clips["clip_end_sec"].tolist() == [480.0, 480.0, 40.0, 480.0, 481.0]
    assert clips["clip_uid"].iloc[1] == str(uuid.uuid5(PSEUDO_CLIP_NAMESPACE, "va:480.0"))
    assigned, stats = assign_pseudo_clips(cur, clips)
    a = assigned.to_pandas().set_index("narration_uid")
    # va: beta 20, half 10: [460, 480] fits clip 0; [480, 500] fits clip 1. vb: half 478.25, so [0, 481.25]
    # straddles 480 (clamped to clip 0) and [481.25, 961] fits clip 1.
    assert a.loc["va:1:0", "clip_uid"] == clips["clip_uid"].iloc[0]
    assert (a.loc["va:1:0", "clip_start_sec"], a.loc["va:1:0", "clip_end_sec"]) == pytest.approx(
        (460.0, 480.0)
    )
    assert (a.loc["va:1:1", "clip_start_sec"], a.loc["va:1:1", "clip_end_sec"]) == pytest.approx((0.0, 20.0))
    assert not a.loc["va:1:0", "window_clamped"] and not a.loc["va:1:1", "window_clamped"]
    assert a.loc["vb:1:0", "window_clamped"]
    assert (a.loc["vb:1:0", "clip_start_sec"], a.loc["vb:1:0", "clip_end_sec"]) == pytest.approx((0.0, 480.0))
    assert a.loc["vb:1:1", "clip_uid"] == clips["clip_uid"].iloc[4] and not a.loc["vb:1:1", "window_clamped"]
    assert (a.loc["vb:1:1", "clip_start_sec"], a.loc["vb:1:1", "clip_end_sec"]) == pytest.approx(
        (1.25, 481.0)
    )
    assert a.loc["vb:1:1", "clip_duration_sec"] == 481.0
    assert stats == {"rows": 4, "window_clamped": 1}
