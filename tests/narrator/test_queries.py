"""The narrator's texts as NaQ-style training queries: text choice, NaQ placement, the leakage guard."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pytest

from egonlq.errors import InputError
from egonlq.narrator.narrate import NARRATIONS
from egonlq.narrator.queries import narrator_queries, window_texts
from egonlq.queries.training_queries import TRAINING_QUERIES, build_training_queries

# NaQ's clips: V1 [10, 40] and [30, 60] overlap on [30, 40]; V2 [0, 20]
POOL = pd.DataFrame(
    {
        "clip_uid": ["C1", "C2", "C3"],
        "video_uid": ["V1", "V1", "V2"],
        "video_start_sec": [10.0, 30.0, 0.0],
        "video_end_sec": [40.0, 60.0, 20.0],
        "clip_end_sec": [30.0, 30.0, 20.0],
    }
)


def narrations(rows: list[tuple]) -> pa.Table:
    """NARRATIONS rows from (item_uid, kind, video_uid, start, end, texts, scores)."""
    keys = ("item_uid", "kind", "video_uid", "start_sec", "end_sec", "texts", "entropy_scores")
    full = [
        {
            **dict(zip(keys, r, strict=True)),
            "timestamp_sec": (r[3] + r[4]) / 2,
            "model": "m",
            "decoding": "{}",
        }
        for r in rows
    ]
    return pa.Table.from_pylist(full, schema=NARRATIONS)


NARRATED = narrations(
    [
        ("n1", "egoclip", "V1", 12.0, 14.0, ["c opens", "c shuts", "c opens"], [3.0, 1.5, 2.0]),
        ("dense:V1:32.000", "dense", "V1", 32.0, 36.0, [" c walks ", ""], [1.0, 0.5]),  # in C1 and C2
        ("n2", "egoclip", "V1", 58.0, 62.0, ["c sits"], [1.0]),  # past C2's end: in no clip
        ("h1", "heldout", "V2", 1.0, 3.0, ["c reads"], [1.0]),  # scores the narrator only
        ("n3", "egoclip", "V2", 5.0, 7.0, ["", " "], [1.0, 2.0]),  # no text left
    ]
)


def test_best_text_is_the_lowest_entropy_score_and_all_keeps_distinct_texts():
    best, stats = window_texts(NARRATED, texts="best")
    assert best[["clip_start", "clip_text"]].values.tolist() == [
        [12.0, "c shuts"],  # 1.5 < 2.0 < 3.0: lower is more confident
        [32.0, "c walks"],  # the empty text (score 0.5) is not a candidate
        [58.0, "c sits"],
    ]
    assert stats["windows"] == {"dense": 1, "egoclip": 3, "heldout": 1}
    assert stats["empty_texts"] == 3 and stats["windows_without_text"] == 1
    assert stats["rows"] == {"egoclip": 2, "dense": 1}
    every, stats = window_texts(NARRATED, texts="all")
    assert every["clip_text"].tolist() == ["c opens", "c shuts", "c walks", "c sits"]
    assert stats["duplicate_texts"] == 1
    with pytest.raises(ValueError, match="texts 'some'"):
        window_texts(NARRATED, texts="some")


def test_queries_are_placed_into_naq_clips_the_naq_way():
    table, clips, stats = narrator_queries(NARRATED, POOL, texts="best")
    assert table.schema == TRAINING_QUERIES
    rows = table.to_pylist()
    got = [(r["query_uid"], r["clip_uid"], r["query"], r["clip_start_sec"], r["clip_end_sec"]) for r in rows]
    assert got == [
        ("narrator:V1_C1:0", "C1", "c shuts", 2.0, 4.0),  # clip-relative: 12 - 10
        ("narrator:V1_C1:1", "C1", "c walks", 22.0, 26.0),
        ("narrator:V1_C2:0", "C2", "c walks", 2.0, 6.0),  # duplicated into every clip holding it
    ]
    assert {r["source"] for r in rows} == {"narrator"}
    assert stats["rows_outside_naq_clips"] == 1  # n2 crosses C2's end: dropped, counted
    assert stats["placement"]["rows_duplicated"] == 1
    assert "V2" not in clips["video_uid"].tolist()  # no V2 text: NaQ emits no clip of V2
    assert clips["clip_uid"].tolist() == ["C1", "C2"]


def test_queries_join_naq_in_one_training_table_on_shared_clips():
    table, clips, _ = narrator_queries(NARRATED, POOL, texts="all")
    naq = table.set_column(0, "query_uid", pa.array([f"naq:{i}" for i in range(table.num_rows)]))
    naq = naq.set_column(1, "source", pa.array(["naq"] * table.num_rows))
    out, out_clips, stats = build_training_queries(
        {"naq": naq, "narrator": table}, [POOL, clips], leak_guard={"VAL1"}
    )
    assert stats["per_source"]["narrator"]["queries"] == table.num_rows == 4
    assert out_clips.column("sources").to_pylist() == [["naq", "narrator"]] * 2


def test_a_narrator_query_on_an_nlq_val_video_is_leakage():
    table, clips, _ = narrator_queries(NARRATED, POOL)
    with pytest.raises(InputError, match="LEAKAGE") as e:
        build_training_queries({"narrator": table}, [clips], leak_guard={"V1"})
    assert "narrator: 1 video(s) [V1]" in str(e.value)


def test_heldout_windows_never_become_queries():
    held = narrations([("h1", "heldout", "V2", 1.0, 3.0, ["c reads"], [1.0])])
    table, clips, stats = narrator_queries(held, POOL)
    assert table.num_rows == 0 and clips.empty and stats["windows"] == {"heldout": 1}


def test_bad_inputs_name_the_record_and_field():
    bad = narrations([("n9", "egoclip", "V1", 12.0, 14.0, ["a", "b"], [1.0])])
    with pytest.raises(InputError, match="differ in length") as e:
        window_texts(bad)
    assert e.value.record == "item_uid=n9" and e.value.field == "entropy_scores"
    with pytest.raises(InputError, match="lacks columns") as e:
        narrator_queries(NARRATED, POOL.drop(columns="clip_end_sec"))
    assert e.value.field == "clip_end_sec"
