"""The training-queries table: per-source rows, uniqueness, clips, leakage guard, stats."""

from __future__ import annotations

import uuid

import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from egonlq.data.tables import QUERIES
from egonlq.errors import InputError
from egonlq.io import read_json
from egonlq.queries.llm_queries import GENERATED as GENERATED_SCHEMA
from egonlq.queries.llm_queries import QUERY_NAMESPACE, export_nlq_json
from egonlq.queries.naq import build_naq, naq_clips, naq_table
from egonlq.queries.training_queries import (
    TRAINING_CLIPS,
    TRAINING_QUERIES,
    build_training_queries,
    derived_flags,
    generated_rows,
    is_valid_source,
    nlq_rows,
)


def queries(rows: list[dict]) -> pa.Table:
    """QUERIES rows with defaults for the columns a test does not care about."""
    base = {
        "split": "train",
        "video_uid": "V1",
        "clip_uid": "C1",
        "annotation_uid": "A1",
        "query_idx": 0,
        "query": "Where is the cup?",
        "query_clean": "Where is the cup?",
        "template": None,
        "slot_x": None,
        "verb_x": None,
        "slot_y": None,
        "verb_y": None,
        "answer": None,
        "raw_tags": [],
        "clip_start_sec": 1.0,
        "clip_end_sec": 2.0,
        "video_start_sec": 11.0,
        "video_end_sec": 12.0,
        "annotated": True,
        "has_text": True,
        "zero_length": False,
        "ends_after_clip": False,
    }
    full = [{**base, **r} for r in rows]
    return pa.Table.from_pylist(full, schema=QUERIES)


NLQ_QUERIES = queries(
    [
        {"query_idx": 0, "query": "Where is the cup?"},
        {"query_idx": 1, "query": None, "query_clean": None, "has_text": False},  # text-less: leaves a gap
        {
            "query_idx": 2,
            "query": "What did I put in the bowl",
            "clip_start_sec": 30.0,
            "clip_end_sec": 30.0,
            "zero_length": True,
        },
        {"query_idx": 0, "annotation_uid": "A2", "query": "Where did I put X?", "clip_end_sec": 480.3},
    ]
)
NLQ_CLIPS = pd.DataFrame(
    {
        "clip_uid": ["C1"],
        "video_uid": ["V1"],
        "video_start_sec": [10.0],
        "video_end_sec": [490.0],
        "clip_end_sec": [480.0],
    }
)


def test_nlq_rows_keep_original_indices():
    table, stats = nlq_rows(NLQ_QUERIES)
    assert table.schema == TRAINING_QUERIES
    d = table.to_pydict()
    assert d["query_idx"] == [0, 2, 0]
    assert d["query_uid"] == ["C1:A1:0", "C1:A1:2", "C1:A2:0"]
    assert d["source"] == ["nlq"] * 3
    assert d["query"][1] == "What did I put in the bowl"
    assert d["zero_length"] == [False, True, False]
    assert stats == {"rows_in": 4, "rows_out": 3, "dropped_no_text": 1, "dropped_not_annotated": 0}


def test_nlq_rows_refuse_other_splits():
    with pytest.raises(InputError) as e:
        nlq_rows(queries([{"split": "val"}]))
    assert e.value.field == "split" and "val" in str(e.value)


def test_nlq_rows_drop_unannotated_text():
    _, stats = nlq_rows(queries([{"annotated": False, "clip_start_sec": None, "clip_end_sec": None}]))
    assert stats["dropped_not_annotated"] == 1 and stats["rows_out"] == 0


GENERATED = pa.table(
    {
        "query_uid": ["g1", "g2", "g3"],
        "video_uid": ["V5", "V5", "V5"],
        "clip_uid": ["P1", "P2", "P1"],
        "narration_uid": ["V5:1:0", "V5:1:1", "V5:1:2"],
        "source": ["template", "llm:gemma", "rephrase:template"],
        "query": ["Where did I put the knife?", "What did I open?", "Where was the knife put?"],
        "window_start_sec": [10.0, 481.0, 12.0],
        "window_end_sec": [11.0, 482.0, 13.0],
        "clip_start_sec": [10.0, 1.0, 12.0],
        "clip_end_sec": [11.0, 2.0, 13.0],
    }
)
PSEUDO = pd.DataFrame(
    {
        "clip_uid": ["P1", "P2"],
        "video_uid": ["V5", "V5"],
        "video_start_sec": [0.0, 480.0],
        "video_end_sec": [480.0, 481.5],
        "clip_end_sec": [480.0, 1.5],
    }
)


def test_generated_rows():
    table = generated_rows(GENERATED, PSEUDO)
    assert table.schema == TRAINING_QUERIES
    d = table.to_pydict()
    assert d["query_uid"] == ["g1", "g2", "g3"]
    ann = {c: str(uuid.uuid5(QUERY_NAMESPACE, f"annotation:{c}")) for c in ("P1", "P2")}
    assert d["annotation_uid"] == [ann["P1"], ann["P2"], ann["P1"]]
    assert d["query_idx"] == [0, 0, 1]  # position in the exported annotation: by clip start
    assert d["ends_after_clip"] == [False, True, False]  # 2.0 > 1.5
    swapped = GENERATED.set_column(8, "clip_start_sec", pa.array([12.5, 1.0, 12.0]))
    assert generated_rows(swapped, PSEUDO).column("query_idx").to_pylist() == [1, 0, 0]


def test_generated_rows_match_the_export(tmp_path):
    generated = pa.Table.from_pylist(
        [
            {**row, "block_id": "", "prompt_sha256": "x", "backend": "{}", "parent_query_uid": None}
            for row in GENERATED.to_pylist()
        ],
        schema=GENERATED_SCHEMA,
    )
    export_nlq_json(generated, PSEUDO, tmp_path / "gen.json")
    exported = {
        (a["annotation_uid"], i): lq["query"]
        for v in read_json(tmp_path / "gen.json")["videos"]
        for c in v["clips"]
        for a in c["annotations"]
        for i, lq in enumerate(a["language_queries"])
    }
    d = generated_rows(generated, PSEUDO).to_pydict()
    ours = {(a, i): q for a, i, q in zip(d["annotation_uid"], d["query_idx"], d["query"], strict=True)}
    assert ours == exported


def test_generated_rows_check_clips():
    with pytest.raises(InputError, match="absent"):
        generated_rows(GENERATED, PSEUDO.iloc[:1])
    with pytest.raises(InputError, match="video"):
        generated_rows(GENERATED, PSEUDO.assign(video_uid="other"))


def naq_part():
    egoclip = pa.table(
        {
            "video_uid": ["V1", "V1", "V2"],
            "clip_start": [20.0, 489.99, 5.0],
            "clip_end": [21.0, 490.0, 6.0],
            "clip_text": ["#C C a", "#C C b", "#C C c"],
        }
    )
    pool = pd.DataFrame(
        {
            "video_uid": ["V1", "V2"],
            "clip_uid": ["C1", "C7"],
            "video_start_sec": [10.0, 0.0],
            "video_end_sec": [490.0, 100.0],
        }
    )
    naq, _ = build_naq(egoclip, pool, subsample_v1=False)
    return naq_table(naq), naq_clips(naq)


def build(**overrides):
    nlq, _ = nlq_rows(NLQ_QUERIES)
    naq, naq_clip_table = naq_part()
    args = {
        "parts": {"nlq": nlq, "naq": naq, "generated": generated_rows(GENERATED, PSEUDO)},
        "clips": [NLQ_CLIPS, naq_clip_table, PSEUDO],
        "leak_guard": {"VAL1", "TEST1"},
    }
    args.update(overrides)
    return build_training_queries(args.pop("parts"), args.pop("clips"), **args)


def test_build_training_queries_stats_and_clips():
    table, clips, stats = build()
    assert table.schema == TRAINING_QUERIES and clips.schema == TRAINING_CLIPS
    assert table.num_rows == 3 + 3 + 3
    assert table.column("source").to_pylist()[:4] == ["nlq", "nlq", "nlq", "naq"]
    assert stats["per_source"] == {
        "nlq": {"queries": 3, "clips": 1, "videos": 1, "zero_length": 1, "ends_after_clip": 1},
        "naq": {"queries": 3, "clips": 2, "videos": 2, "zero_length": 1, "ends_after_clip": 0},
        "template": {"queries": 1, "clips": 1, "videos": 1, "zero_length": 0, "ends_after_clip": 0},
        "llm:gemma": {"queries": 1, "clips": 1, "videos": 1, "zero_length": 0, "ends_after_clip": 1},
        "rephrase:template": {"queries": 1, "clips": 1, "videos": 1, "zero_length": 0, "ends_after_clip": 0},
    }
    assert stats["queries"] == 9 and stats["clips"] == 4 and stats["videos"] == 3
    assert stats["parts"] == {"nlq": 3, "naq": 3, "generated": 3}
    assert stats["clips_without_queries"] == 0
    c = clips.to_pydict()
    assert c["clip_uid"] == ["C1", "C7", "P1", "P2"]  # sorted by (video_uid, clip_uid)
    assert c["sources"][0] == ["naq", "nlq"]
    assert c["sources"][2] == ["rephrase:template", "template"]
    assert c["clip_end_sec"][0] == 480.0  # the NLQ table (first) wins over NaQ's 490 - 10


def test_ends_after_clip_recomputed_against_training_clip():
    # the NaQ row ends at clip-relative 490 - 10 = 480: inside NaQ's clip, after an NLQ duration of 479.9
    nlq_long = NLQ_CLIPS.assign(clip_end_sec=479.9)
    table, _, stats = build(clips=[nlq_long, naq_part()[1], PSEUDO])
    assert stats["per_source"]["naq"]["ends_after_clip"] == 1
    uid = table.column("query_uid").to_pylist().index("naq:V1_C1:1")
    assert table.column("ends_after_clip")[uid].as_py() is True


def test_duplicate_query_uid_is_an_error():
    nlq, _ = nlq_rows(NLQ_QUERIES)
    with pytest.raises(InputError, match="duplicate") as e:
        build(parts={"a": nlq, "b": nlq})
    assert "C1:A1:0" in e.value.record and e.value.field == "query_uid"


def test_leakage_guard_raises_on_val_video():
    with pytest.raises(InputError, match="LEAKAGE") as e:
        build(leak_guard={"V2", "V5", "VAL1"})
    msg = str(e.value)
    assert "naq: 1 video(s) [V2]" in msg
    assert "llm:gemma: 1 video(s) [V5]" in msg and "template" in msg
    assert "nlq" not in msg.split("LEAKAGE")[1]


def test_leakage_guard_checks_clip_tables_too():
    val_clip = pd.DataFrame(
        {
            "clip_uid": ["CV"],
            "video_uid": ["VAL1"],
            "video_start_sec": [0.0],
            "video_end_sec": [480.0],
            "clip_end_sec": [480.0],
        }
    )
    naq_clip_table = naq_part()[1]
    with pytest.raises(InputError, match="LEAKAGE") as e:
        build(clips=[NLQ_CLIPS, naq_clip_table, PSEUDO, val_clip])
    assert "clips[3]" in str(e.value) and "VAL1" in str(e.value)


def test_clip_errors():
    conflicting = NLQ_CLIPS.assign(video_start_sec=11.0)
    with pytest.raises(InputError, match="conflict") as e:
        build(clips=[NLQ_CLIPS, conflicting, naq_part()[1], PSEUDO])
    assert e.value.record == "clip_uid=C1"
    with pytest.raises(InputError, match="absent"):
        build(clips=[NLQ_CLIPS, PSEUDO])
    wrong_video = NLQ_CLIPS.assign(video_uid="V9")
    with pytest.raises(InputError, match="differs"):
        build(parts={"nlq": nlq_rows(NLQ_QUERIES)[0]}, clips=[wrong_video])


def test_unused_clips_are_counted_not_kept():
    extra = pd.DataFrame(
        {
            "clip_uid": ["CX"],
            "video_uid": ["V3"],
            "video_start_sec": [0.0],
            "video_end_sec": [10.0],
            "clip_end_sec": [10.0],
        }
    )
    _, clips, stats = build(clips=[NLQ_CLIPS, naq_part()[1], PSEUDO, extra])
    assert "CX" not in clips.column("clip_uid").to_pylist()
    assert stats["clips_without_queries"] == 1


def test_bad_source_and_nulls():
    nlq, _ = nlq_rows(NLQ_QUERIES)
    bad = nlq.set_column(1, "source", pa.array(["llm:"] * nlq.num_rows))
    with pytest.raises(InputError, match="unknown source"):
        build(parts={"bad": bad})
    assert is_valid_source("llm:google/gemma-2b-it") and is_valid_source("rephrase:naq")
    assert is_valid_source("narrator")  # the narrator's NaQ-style queries (egonlq.narrator.queries)
    assert not is_valid_source("llm") and not is_valid_source("NLQ")


@given(st.floats(0, 1000), st.floats(0, 1000), st.floats(1, 1000))
def test_derived_flags_match_definitions(start, end, clip_len):
    zero, after = derived_flags([start], [end], [clip_len])
    assert bool(zero[0]) == (abs(end - start) <= 1 / 30)
    assert bool(after[0]) == (end > clip_len + 1e-6)
