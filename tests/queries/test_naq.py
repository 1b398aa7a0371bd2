"""NaQ (naq.md section 1): EM train pool, EgoClip rows from narrations, NaQ conversion, merge, flattening."""

from __future__ import annotations

import json
import math
import random
import tempfile
from pathlib import Path

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from egonlq.data.egoclip import alpha_of, egoclip_windows
from egonlq.data.tables import EGOCLIP, NARRATIONS, VIDEOS
from egonlq.errors import InputError
from egonlq.queries.naq import (
    EGOCLIP_ROWS,
    EncodedQueries,
    build_naq,
    em_train_clips,
    encoded_queries,
    json_numbers,
    json_strings,
    merge_naq_nlq,
    naq_clips,
    naq_columns,
    naq_object,
    naq_table,
    naq_windows_from_narrations,
    pool_file_order,
    query_table,
    subsample_videos,
    write_naq_json,
)
from egonlq.queries.training_queries import CLIP_COLUMNS, TRAINING_QUERIES

# ---------------------------------------------------------------------------------------------- helpers


def egoclip(rows: list[tuple[str, float, float, str]]) -> pa.Table:
    return pa.table(
        {
            "video_uid": pa.array([r[0] for r in rows], pa.string()),
            "clip_start": pa.array([r[1] for r in rows], pa.float64()),
            "clip_end": pa.array([r[2] for r in rows], pa.float64()),
            "clip_text": pa.array([r[3] for r in rows], pa.string()),
        }
    )


def pool_frame(rows: list[tuple[str, str, float, float]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["video_uid", "clip_uid", "video_start_sec", "video_end_sec"])


def q(a: float, b: float, vs: float, text: str) -> dict:
    """A NaQ query, every field written out by hand from the reference formula."""
    return {
        "clip_start_sec": a - vs,
        "clip_end_sec": b - vs,
        "video_start_sec": a,
        "video_end_sec": b,
        "video_start_frame": math.floor(30 * a),
        "video_end_frame": math.ceil(30 * b),
        "query": text,
    }


def written(obj: dict) -> bytes:
    """The bytes :func:`write_naq_json` writes for ``obj``."""
    with tempfile.TemporaryDirectory() as tmp:
        write_naq_json(obj, Path(tmp) / "x.json")
        return (Path(tmp) / "x.json").read_bytes()


# Pool order: V1/C2 first, so V1's clips come out C2, C1, C3 (pool order, not sorted).
POOL = pool_frame(
    [
        ("V1", "C2", 50.0, 150.02),
        ("V2", "C4", 0.0, 60.0),
        ("V1", "C1", 10.01, 100.0),
        ("V1", "C3", 300.0, 400.0),  # no narration falls inside
    ]
)
ROWS = egoclip(
    [
        ("V2", 1.0, 2.0, "#C C washes a cup"),
        ("V1", 60.0, 62.51, "#C C opens the fridge"),  # inside C1 and C2: duplicated
        ("V1", 20.25, 21.0, "#O a man picks a cup"),  # inside C1 only
        ("V1", 98.0, 102.0, "#C C closes the door"),  # partial for C1 (dropped there), inside C2
        ("V1", 5.0, 11.0, "#C C holds a knife"),  # partial for C1, outside C2: in no clip
        ("V3", 0.0, 1.0, "#C C not in the pool"),
    ]
)


# ---------------------------------------------------------------------------------------------- build_naq


def test_build_naq_hand_computed_records():
    naq, stats = build_naq(ROWS, POOL, subsample_v1=False)
    # V2 is first in the file, so first in the output; clips in pool order
    assert [v["video_uid"] for v in naq["videos"]] == ["V2", "V1"]
    assert all(v["split"] == "train" for v in naq["videos"])
    v2, v1 = naq["videos"]
    assert [c["clip_uid"] for c in v1["clips"]] == ["C2", "C1", "C3"]
    c2, c1, c3 = v1["clips"]

    assert c1 == {
        "clip_uid": "C1",
        "video_start_sec": 10.01,
        "video_end_sec": 100.0,
        "video_start_frame": 300,  # floor(300.3)
        "video_end_frame": 3000,
        "annotations": [
            {
                "language_queries": [
                    q(60.0, 62.51, 10.01, "#C C opens the fridge"),
                    q(20.25, 21.0, 10.01, "#O a man picks a cup"),
                ],
                "annotation_uid": "V1_C1",
            }
        ],
    }
    assert (c2["video_start_frame"], c2["video_end_frame"]) == (1500, 4501)  # ceil(4500.6)
    lq2 = c2["annotations"][0]["language_queries"]
    assert lq2 == [
        q(60.0, 62.51, 50.0, "#C C opens the fridge"),
        q(98.0, 102.0, 50.0, "#C C closes the door"),
    ]
    # frames written out by hand
    assert [(x["video_start_frame"], x["video_end_frame"]) for x in lq2] == [(1800, 1876), (2940, 3060)]
    assert c1["annotations"][0]["language_queries"][1]["video_start_frame"] == 607  # floor(607.5)
    assert lq2[1]["clip_start_sec"] == 48.0 and lq2[1]["clip_end_sec"] == 52.0
    assert c3["annotations"] == [{"language_queries": [], "annotation_uid": "V1_C3"}]
    assert v2["clips"][0]["annotations"][0]["language_queries"] == [q(1.0, 2.0, 0.0, "#C C washes a cup")]

    assert stats["queries"] == 5
    assert stats["clips"] == 4 and stats["videos"] == 2 and stats["clips_empty"] == 1
    assert stats["partial_overlaps"] == 2
    assert stats["rows_in_no_clip"] == 1
    assert stats["rows_duplicated"] == 1
    assert stats["rows_in_kept_videos"] == 5 and stats["egoclip_rows"] == 6
    assert stats["subsample_dropped_videos"] == 0
    json.dumps(naq, allow_nan=False)  # serialisable as written by egonlq.io.write_json


def test_containment_boundaries_are_inclusive():
    pool = pool_frame([("V", "C", 10.0, 20.0)])
    rows = egoclip([("V", 10.0, 20.0, "#C C a"), ("V", 9.999, 15.0, "#C C b"), ("V", 15.0, 20.001, "#C C c")])
    naq, stats = build_naq(rows, pool, subsample_v1=False)
    lq = naq["videos"][0]["clips"][0]["annotations"][0]["language_queries"]
    assert [x["query"] for x in lq] == ["#C C a"]
    assert stats["partial_overlaps"] == 2


def test_pool_videos_without_rows_are_not_emitted():
    pool = pool_frame([("V", "C", 0.0, 10.0), ("W", "D", 0.0, 10.0)])
    naq, stats = build_naq(egoclip([("V", 1.0, 2.0, "#C C a")]), pool, subsample_v1=False)
    assert [v["video_uid"] for v in naq["videos"]] == ["V"]
    assert stats["kept_videos_without_rows"] == 1


def test_v1_subsample_reproduces_python_random():
    uids = [f"vid-{i:03d}" for i in range(40)]
    shuffled = uids[::-1]  # pool order must not matter: the reference sorts first
    expected = sorted(uids)
    random.seed(300)
    random.shuffle(expected)
    expected = expected[: int(0.95 * 40)]
    assert subsample_videos(shuffled) == expected
    assert len(expected) == 38

    pool = pool_frame([(u, f"clip-{u}", 0.0, 100.0) for u in shuffled])
    rows = egoclip([(u, 1.0, 2.0, "#C C x") for u in uids])
    naq, stats = build_naq(rows, pool)
    assert {v["video_uid"] for v in naq["videos"]} == set(expected)
    assert stats["kept_videos"] == 38 and stats["subsample_dropped_videos"] == 2
    # v2: everything kept
    naq2, _ = build_naq(rows, pool, subsample_v1=False)
    assert len(naq2["videos"]) == 40


def test_other_seed_gives_other_subset():
    uids = [f"vid-{i:03d}" for i in range(100)]
    assert set(subsample_videos(uids, seed=300)) != set(subsample_videos(uids, seed=301))


def test_non_finite_window_is_an_error():
    with pytest.raises(InputError, match="non-finite"):
        build_naq(
            egoclip([("V", float("nan"), 2.0, "#C C a")]),
            pool_frame([("V", "C", 0.0, 9.0)]),
            subsample_v1=False,
        )


def reference_naq(
    rows: list[tuple[str, float, float, str]], pool: list[tuple[str, str, float, float]]
) -> dict:
    """The reference's loops (v2 mode), written independently for the property test."""
    narr: dict[str, list] = {}
    for video, a, b, text in rows:
        narr.setdefault(video, []).append((a, b, text))
    v2c: dict[str, list] = {}
    for video, cid, vs, ve in pool:
        v2c.setdefault(video, []).append((cid, vs, ve))
    out = []
    for video, items in narr.items():
        if video not in v2c:
            continue
        clips = []
        for cid, vs, ve in v2c[video]:
            lq = [q(a, b, vs, text) for a, b, text in items if not (a < vs or b > ve)]
            clips.append(
                {
                    "clip_uid": cid,
                    "video_start_sec": vs,
                    "video_end_sec": ve,
                    "video_start_frame": int(math.floor(vs * 30.0)),
                    "video_end_frame": int(math.ceil(ve * 30.0)),
                    "annotations": [{"language_queries": lq, "annotation_uid": f"{video}_{cid}"}],
                }
            )
        out.append({"video_uid": video, "clips": clips, "split": "train"})
    return {"videos": out}


times = st.floats(0, 200, allow_nan=False).map(lambda x: round(x, 3))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    clips=st.lists(st.tuples(st.sampled_from("ab"), times, times), min_size=1, max_size=5),
    rows=st.lists(st.tuples(st.sampled_from("abc"), times, times), max_size=25),
)
def test_build_naq_equals_reference_loops(clips, rows):
    pool = [(v, f"{v}{i}", min(s, e), max(s, e)) for i, (v, s, e) in enumerate(clips)]
    egorows = [(v, min(s, e), max(s, e), f"#C C {i}") for i, (v, s, e) in enumerate(rows)]
    naq, stats = build_naq(egoclip(egorows), pool_frame(pool), subsample_v1=False)
    assert naq == reference_naq(egorows, pool)
    assert stats["queries"] == sum(
        len(a["language_queries"]) for v in naq["videos"] for c in v["clips"] for a in c["annotations"]
    )
    columns, _ = naq_columns(egoclip(egorows), pool_frame(pool), subsample_v1=False)
    assert written(naq_object(columns, encoded_queries(columns))) == written(naq)


# ---------------------------------------------------------------------------------------------- JSON text

# Texts a narration could hold: JSON escapes (quotes, backslashes, control characters), non-ASCII, emoji
HOSTILE_TEXTS = [
    '#C C says "hi"',
    "#C C a\\b \\",
    "#C C line\nbreak\ttab\rcr\x08\x0c",
    "#C C nul\x00 unit\x1f del\x7f",
    "#C C unit separator alone \x1f",
    "#C C café naïve 中文 ñ",
    "#C C 🙂👍🏽 emoji",
    "#C C \u2028 \u2029 line separators",
    "#C C </script> / slash",
    "",
    '"',
    "\\",
]


def test_json_strings_are_orjsons_bytes():
    texts = pa.array([*HOSTILE_TEXTS, None, "#C C plain"])
    got = json_strings(texts).to_pylist()
    assert got == [orjson.dumps(t).decode() for t in texts.to_pylist()]
    assert got[-2] == "null"
    sliced = texts.slice(3, 6)  # an array with an offset into its buffers
    assert json_strings(sliced).to_pylist() == [orjson.dumps(t).decode() for t in sliced.to_pylist()]
    assert json_strings(pa.array([], pa.string())).to_pylist() == []


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(), max_size=20))
def test_json_strings_equal_orjson_for_any_text(texts):
    assert json_strings(pa.array(texts, pa.string())).to_pylist() == [orjson.dumps(t).decode() for t in texts]


SPECIAL_FLOATS = [0.0, -0.0, 0.1, 0.1 + 0.2, 1 / 3, 5.0, 1e-7, 1e16, 1e17, 1e21, 1e22, 123456789.123, 5e-324,
                  2.2250738585072014e-308, 1.7976931348623157e308, -1.5, 48.0, 2.51]  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(allow_nan=False, allow_infinity=False), max_size=30))
def test_json_numbers_are_orjsons_and_round_trip(values):
    values = np.array(values + SPECIAL_FLOATS, dtype=np.float64)
    got = json_numbers(values).to_pylist()
    assert got == [orjson.dumps(float(v)).decode() + "," for v in values]  # an item of a JSON list
    back = np.array([json.loads(g[:-1]) for g in got], dtype=np.float64)
    assert back.tobytes() == values.tobytes()  # bit for bit, -0.0 included


def test_json_numbers_of_integers_and_of_nothing():
    frames = np.array([0, 1, -3, 2**40, 1800], dtype=np.int64)
    assert json_numbers(frames).to_pylist() == ["0,", "1,", "-3,", "1099511627776,", "1800,"]
    assert json_numbers(np.zeros(0)).to_pylist() == []


# POOL with C1 where the NLQ train fixture has it (within math.isclose), for the merge
HOSTILE_POOL = POOL.assign(video_start_sec=POOL["video_start_sec"].replace(10.01, 10.0 + 1e-12))


def hostile_rows() -> pa.Table:
    """ROWS with every hostile text (each inside C1 and C2), windows whose clip seconds are inexact."""
    extra = [("V1", 60.0 + 0.1 * i, 60.3 + 0.2 * i, t) for i, t in enumerate(HOSTILE_TEXTS)]
    rows = ROWS.to_pylist()
    return egoclip([(r["video_uid"], r["clip_start"], r["clip_end"], r["clip_text"]) for r in rows] + extra)


def test_encoded_naq_and_merge_are_byte_for_byte_the_dict_path():
    rows = hostile_rows()
    naq, stats = build_naq(rows, HOSTILE_POOL, subsample_v1=False)
    columns, column_stats = naq_columns(rows, HOSTILE_POOL, subsample_v1=False)
    encoded = naq_object(columns, encoded_queries(columns))
    assert column_stats == stats
    assert written(encoded) == written(naq) == orjson.dumps(naq, option=orjson.OPT_APPEND_NEWLINE)
    parsed = json.loads(written(encoded))
    assert parsed == naq and [list(v) for v in parsed["videos"]] == [list(v) for v in naq["videos"]]
    lqs = [lq for v in parsed["videos"] for c in v["clips"] for lq in c["annotations"][0]["language_queries"]]
    assert {lq["query"] for lq in lqs} >= set(HOSTILE_TEXTS)
    assert any(lq["clip_start_sec"] == 60.0 + 0.1 * 3 - (10.0 + 1e-12) for lq in lqs)  # exact after parsing
    # C3 holds no narration: an empty list, counted as such
    c3 = next(c for v in encoded["videos"] for c in v["clips"] if c["clip_uid"] == "C3")
    assert c3["annotations"][0]["language_queries"] == EncodedQueries(memoryview(b"[]"), 0)

    merged, merge_stats = merge_naq_nlq(nlq_train(), naq)
    merged_encoded, encoded_stats = merge_naq_nlq(nlq_train(), encoded)
    assert encoded_stats == merge_stats
    assert written(merged_encoded) == written(merged)
    assert json.loads(written(merged_encoded)) == merged


def test_query_table_is_naq_table_of_the_object():
    rows = hostile_rows()
    columns, _ = naq_columns(rows, POOL, subsample_v1=False)
    naq, _ = build_naq(rows, POOL, subsample_v1=False)
    assert query_table(columns).equals(naq_table(naq), check_metadata=True)
    empty, _ = naq_columns(egoclip([]), POOL, subsample_v1=False)
    assert query_table(empty).num_rows == 0 and naq_object(empty, encoded_queries(empty)) == {"videos": []}


def test_write_naq_json_refuses_what_is_not_json(tmp_path):
    with pytest.raises(TypeError, match="object"):
        write_naq_json({"x": object()}, tmp_path / "x.json")
    assert not (tmp_path / "x.json").exists()


def test_chunked_and_dictionary_rows_give_the_same_naq():
    """Rows in many chunks, the video uids dictionary-encoded with a dictionary per chunk (as read by
    egonlq.io.read_parquet(..., dictionary=...)), give what one plain chunk gives."""
    rows = hostile_rows()
    expected = written(build_naq(rows, POOL, subsample_v1=False)[0])
    chunked = pa.concat_tables([rows.slice(i, 3) for i in range(0, rows.num_rows, 3)])
    assert chunked.column("clip_text").num_chunks > 3
    video = pa.chunked_array([pc.dictionary_encode(c) for c in chunked.column("video_uid").chunks])
    assert len({tuple(c.dictionary.to_pylist()) for c in video.chunks}) > 1
    for table in (chunked, chunked.set_column(0, "video_uid", video)):
        naq, stats = build_naq(table, POOL, subsample_v1=False)
        assert written(naq) == expected and stats["queries"] == 5 + 2 * len(HOSTILE_TEXTS)


# ------------------------------------------------------------------------------------------ em_train_clips


def write(path, videos):
    path.write_text(json.dumps({"version": "1", "videos": videos}))
    return path


def test_em_train_clips_union_in_file_order(tmp_path):
    vq = write(
        tmp_path / "vq_train.json",
        [
            {
                "video_uid": "V1",
                "clips": [
                    {"clip_uid": "Q1", "video_start_sec": 0, "video_end_sec": 480.0, "extra": "ignored"}
                ],
            }
        ],
    )
    nlq = write(
        tmp_path / "nlq_train.json",
        [
            {
                "video_uid": "V2",
                "clips": [{"clip_uid": "N1", "video_start_sec": 10.5, "video_end_sec": 490.5}],
            },
            {"video_uid": "V1", "clips": [{"clip_uid": "Q1", "video_start_sec": 0.0, "video_end_sec": 480}]},
            {"video_uid": "V3", "clips": []},
        ],
    )
    mq = write(
        tmp_path / "moments_train.json",
        [{"video_uid": "V1", "clips": [{"clip_uid": "M1", "video_start_sec": 100, "video_end_sec": 580}]}],
    )
    pool = em_train_clips([vq, nlq, mq])
    assert pool.to_dict("list") == {
        "video_uid": ["V1", "V2", "V1"],
        "clip_uid": ["Q1", "N1", "M1"],
        "video_start_sec": [0.0, 10.5, 100.0],
        "video_end_sec": [480.0, 490.5, 580.0],
    }
    assert pool["video_start_sec"].dtype == np.float64


def test_em_train_clips_conflicting_bounds(tmp_path):
    a = write(
        tmp_path / "vq_train.json",
        [{"video_uid": "V1", "clips": [{"clip_uid": "Q1", "video_start_sec": 0, "video_end_sec": 480.0}]}],
    )
    b = write(
        tmp_path / "moments_train.json",
        [{"video_uid": "V1", "clips": [{"clip_uid": "Q1", "video_start_sec": 0, "video_end_sec": 481.0}]}],
    )
    with pytest.raises(InputError, match="conflict") as e:
        em_train_clips([a, b])
    assert "moments_train.json" in str(e.value) and "vq_train.json" in str(e.value)
    assert "clip_uid=Q1" in str(e.value)


@pytest.mark.parametrize(
    ("clip", "field"),
    [
        ({"video_start_sec": 0, "video_end_sec": 1}, "clip_uid"),
        ({"clip_uid": "C", "video_end_sec": 1}, "video_start_sec"),
        ({"clip_uid": "C", "video_start_sec": "0", "video_end_sec": 1}, "video_start_sec"),
        ({"clip_uid": "C", "video_start_sec": 0, "video_end_sec": True}, "video_end_sec"),
        ({"clip_uid": "C", "video_start_sec": 5, "video_end_sec": 1}, "video_end_sec"),
    ],
)
def test_em_train_clips_bad_records(tmp_path, clip, field):
    path = write(tmp_path / "nlq_train.json", [{"video_uid": "V1", "clips": [clip]}])
    with pytest.raises(InputError) as e:
        em_train_clips([path])
    assert e.value.field == field
    assert "nlq_train.json" in str(e.value) and "V1" in e.value.record


def test_em_train_clips_bad_structure(tmp_path):
    path = tmp_path / "x.json"
    path.write_text(json.dumps({"videos": [{"video_uid": "V1"}]}))
    with pytest.raises(InputError) as e:
        em_train_clips([path])
    assert e.value.field == "clips"
    path.write_text("[]")
    with pytest.raises(InputError, match="videos"):
        em_train_clips([path])


def test_pool_file_order_is_the_references_vq_nlq_moments(tmp_path):
    vq, mq, nlq = Path("a/vq_train_v2.json"), Path("a/moments_train.json"), Path("a/nlq_train.json")
    assert pool_file_order(nlq, [mq, vq]) == [vq, nlq, mq]
    assert pool_file_order(nlq, []) == [nlq]
    # NLQ clips of a video come after its VQ clips, as in the reference's NaQ file
    clip = {"video_start_sec": 1, "video_end_sec": 8}
    v = write(tmp_path / "vq_train.json", [{"video_uid": "V1", "clips": [{"clip_uid": "Q", **clip}]}])
    n = write(tmp_path / "nlq_train.json", [{"video_uid": "V1", "clips": [{"clip_uid": "N", **clip}]}])
    assert em_train_clips(pool_file_order(n, [v]))["clip_uid"].tolist() == ["Q", "N"]


def test_em_train_clips_clamps_slightly_negative_starts(tmp_path):
    path = write(
        tmp_path / "vq_train.json",
        [
            {
                "video_uid": "V1",
                "clips": [
                    {"clip_uid": "A", "video_start_sec": -0.0123, "video_end_sec": 480.0},
                    {"clip_uid": "B", "video_start_sec": 5.0, "video_end_sec": 9.0},
                ],
            }
        ],
    )
    stats: dict = {}
    pool = em_train_clips([path], stats)
    assert pool["video_start_sec"].tolist() == [0.0, 5.0] and stats == {"negative_time_clamped": 1}
    naq, _ = build_naq(egoclip([("V1", 0.0, 1.0, "#C C x")]), pool, subsample_v1=False)
    assert naq["videos"][0]["clips"][0]["video_start_frame"] == 0
    # the NLQ file keeps its raw start: the merge compares the clamped values and keeps NLQ's metadata
    nlq = {"videos": [{"video_uid": "V1", "split": "train",
                       "clips": [nlq_clip("A", -0.0123, 480.0, [NLQ_ANN])]}]}  # fmt: skip
    merged, _ = merge_naq_nlq(nlq, naq)
    assert merged["videos"][0]["clips"][0]["video_start_sec"] == -0.0123
    path.write_text(path.read_text().replace("-0.0123", "-0.6"))
    with pytest.raises(InputError, match="-0.6") as e:
        em_train_clips([path])
    assert e.value.field == "video_start_sec" and "clip_uid=A" in e.value.record


def test_write_naq_json_parses_back_to_the_same_object(tmp_path):
    naq, _ = build_naq(ROWS, POOL, subsample_v1=False)
    write_naq_json(naq, tmp_path / "naq.json")
    text = (tmp_path / "naq.json").read_text(encoding="utf-8")
    assert json.loads(text) == naq and text.endswith("\n")
    write_naq_json({"q": "é 0.1", "x": 1e-07}, tmp_path / "u.json")
    assert json.loads((tmp_path / "u.json").read_text(encoding="utf-8")) == {"q": "é 0.1", "x": 1e-07}


def test_naq_command_runs_without_vq_or_mq_files(tmp_path):
    from egonlq.cli import main
    from egonlq.io import write_parquet

    n = ROWS.num_rows
    filler = {"clip_idx": pa.array(range(n), pa.int64()), "video_dur": [999.0] * n, "narration_ind": [0] * n,
              "narration_source": ["narration_pass_1"] * n, "narration_time": [0.0] * n,
              "tag_verb": ["[]"] * n, "tag_noun": ["[]"] * n}  # fmt: skip
    table = pa.table({**{c: ROWS.column(c) for c in ROWS.column_names}, **filler})
    write_parquet(table, tmp_path / "egoclip.parquet", EGOCLIP)
    (tmp_path / "nlq_train.json").write_text(json.dumps(nlq_train()))
    out = {k: tmp_path / f"{k}.out" for k in ("table", "clips", "naq-json", "merged-json", "stats")}
    args = [x for k, v in out.items() for x in (f"--{k}", str(v))]
    nlq = str(tmp_path / "nlq_train.json")
    main(["naq", "--egoclip", str(tmp_path / "egoclip.parquet"), "--nlq-train", nlq, "--no-subsample", *args])
    stats = json.loads(out["stats"].read_text())
    assert stats["pool"]["files"] == [str(tmp_path / "nlq_train.json")]
    naq = json.loads(out["naq-json"].read_text())
    assert [c["clip_uid"] for v in naq["videos"] for c in v["clips"]] == ["C1"]  # V1's NLQ clip [10, 100]
    assert stats["naq"]["queries"] == 2  # "#C C opens the fridge" and "#O a man picks a cup"
    # what the dict path gives, byte for byte
    obj, _ = build_naq(ROWS, em_train_clips([tmp_path / "nlq_train.json"]), subsample_v1=False)
    assert out["naq-json"].read_bytes() == written(obj)
    assert out["merged-json"].read_bytes() == written(merge_naq_nlq(nlq_train(), obj)[0])
    assert pq.read_table(out["table"]).equals(naq_table(obj))
    assert pq.read_table(out["clips"]).to_pandas().equals(naq_clips(obj)[list(CLIP_COLUMNS)])

    # a bad pool file, read in the background, is the usual bad-input exit
    (tmp_path / "nlq_train.json").write_text("[]")
    with pytest.raises(SystemExit) as e:
        main(["naq", "--egoclip", str(tmp_path / "egoclip.parquet"), "--nlq-train", nlq, *args])
    assert e.value.code == 2


# ---------------------------------------------------------------------------------------------- narrations


def narrations(rows: list[tuple]) -> pa.Table:
    """rows: (video_uid, pass, narration_idx, timestamp_sec, text, tag)."""
    return pa.table(
        {
            "video_uid": [r[0] for r in rows],
            "pass": pa.array([r[1] for r in rows], pa.int8()),
            "narration_idx": pa.array([r[2] for r in rows], pa.int32()),
            "timestamp_sec": pa.array([r[3] for r in rows], pa.float64()),
            "timestamp_frame": pa.array([None] * len(rows), pa.int64()),
            "text": pa.array([r[4] for r in rows], pa.string()),
            "tag": [r[5] for r in rows],
            "unsure": [r[5] == "#unsure" for r in rows],
            "annotation_uid": pa.array([None] * len(rows), pa.string()),
        },
        schema=NARRATIONS,
    )


NARR = narrations(
    [
        ("B", 1, 0, 5.0, "#C C b0", "#C"),
        ("A", 1, 0, 30.0, "#C C a0", "#C"),
        ("A", 1, 1, 10.0, "#O a man a1", "#O"),
        ("A", 1, 2, 20.0, "#C C a2 #unsure", "#C"),
        ("A", 1, 3, 50.0, "#summary C cooks", "#summary"),
        ("A", 1, 4, None, "#C C no time", "#C"),
        ("A", 1, 5, 40.0, "  ", "none"),
        ("A", 1, 6, 120.0, "#C C after the end", "#C"),
        ("A", 2, 0, 18.0, "#C C p2 b", "#C"),
        ("A", 2, 1, 12.0, "#C C p2 a", "#C"),
        ("B", 1, 1, 45.0, "#C C b1", "#C"),
        ("B", 1, 2, 49.9, "#C C b2", "#C"),
        ("Z", 1, 0, 3.0, "#C C unknown video", "#C"),
    ]
)
VIDEOS_T = pa.table(
    {"video_uid": ["A", "B"], "duration_sec": [100.0, 50.0], "fps": [30.0, 30.0], "num_frames": [3000, 1500]},
    schema=VIDEOS,
)


def test_windows_from_narrations_hand_values():
    rows, stats = naq_windows_from_narrations(NARR, VIDEOS_T, alpha=5.0)
    assert rows.schema == EGOCLIP_ROWS
    d = rows.to_pydict()
    # order: B (first seen), then A pass 1 by narration_idx, then A pass 2
    assert d["video_uid"] == ["B", "B", "B", "A", "A", "A", "A", "A"]
    assert d["narration_source"] == ["narration_pass_1"] * 6 + ["narration_pass_2"] * 2
    assert d["narration_ind"] == [0, 1, 2, 0, 1, 2, 0, 1]
    assert d["clip_text"][3:6] == ["#C C a0", "#O a man a1", "#C C a2 #unsure"]  # raw, tags kept
    # betas: B pass 1 (49.9 - 5) / 2 = 22.45; A pass 1 (30 - 10) / 2 = 10; A pass 2 (18 - 12) / 1 = 6
    # half widths with alpha 5: 2.245, 1.0, 0.6; B's last window clamped to its 50 s duration
    expected = [
        (2.755, 7.245),
        (42.755, 47.245),
        (47.655, 50.0),
        (29.0, 31.0),
        (9.0, 11.0),
        (19.0, 21.0),
        (17.4, 18.6),
        (11.4, 12.6),
    ]
    np.testing.assert_allclose(np.c_[d["clip_start"], d["clip_end"]], expected, atol=1e-12)
    assert stats["dropped"] == {
        "pass_not_selected": 0,
        "video_unknown": 1,
        "tag_summary": 1,
        "null_timestamp": 1,
        "timestamp_outside_video": 1,
        "empty_text": 1,
    }
    assert stats["rows_in"] == 13 and stats["rows_out"] == 8 and stats["videos_out"] == 2


def test_windows_from_narrations_equal_egoclip_rule():
    rows, stats = naq_windows_from_narrations(NARR, VIDEOS_T, alpha=None)
    betas = {("B", 1): 22.45, ("A", 1): 10.0, ("A", 2): 6.0}
    alpha = alpha_of(betas)
    assert stats["alpha"] == pytest.approx(alpha) and not stats["alpha_given"]
    t = np.array([5.0, 45.0, 49.9, 30.0, 10.0, 20.0, 18.0, 12.0])
    beta = np.array([22.45] * 3 + [10.0] * 3 + [6.0] * 2)
    start, end = egoclip_windows(t, beta, alpha, duration=np.array([50.0] * 3 + [100.0] * 5))
    np.testing.assert_allclose(rows.column("clip_start").to_numpy(), start, rtol=1e-12)
    np.testing.assert_allclose(rows.column("clip_end").to_numpy(), end, rtol=1e-12)
    np.testing.assert_array_equal(rows.column("narration_time").to_numpy(), t)


def test_windows_from_one_pass_and_single_narration():
    rows, stats = naq_windows_from_narrations(NARR, VIDEOS_T, alpha=5.0, passes=(2,))
    assert rows.column("narration_source").to_pylist() == ["narration_pass_2"] * 2
    assert stats["dropped"]["pass_not_selected"] == 11
    one = narrations([("A", 1, 0, 50.0, "#C C only", "#C")])
    rows, _ = naq_windows_from_narrations(one, VIDEOS_T, alpha=4.0)
    # a single narration has no gap: beta falls back to alpha, half width 1/2
    assert rows.to_pydict()["clip_start"] == [49.5] and rows.to_pydict()["clip_end"] == [50.5]


def test_windows_from_no_usable_narration():
    rows, stats = naq_windows_from_narrations(NARR.slice(4, 3), VIDEOS_T, alpha=5.0)
    assert rows.num_rows == 0 and rows.schema == EGOCLIP_ROWS
    assert stats["dropped"]["tag_summary"] == 1 and stats["videos_out"] == 0
    with pytest.raises(ValueError, match="alpha"):
        naq_windows_from_narrations(NARR.slice(4, 3), VIDEOS_T, alpha=None)


def test_naq_from_narration_windows_end_to_end():
    rows, _ = naq_windows_from_narrations(NARR, VIDEOS_T, alpha=5.0)
    naq, stats = build_naq(rows, pool_frame([("A", "CA", 8.0, 32.0)]), subsample_v1=False)
    lq = naq["videos"][0]["clips"][0]["annotations"][0]["language_queries"]
    assert [x["query"] for x in lq] == ["#C C a0", "#O a man a1", "#C C a2 #unsure", "#C C p2 b", "#C C p2 a"]
    assert lq[1]["clip_start_sec"] == pytest.approx(1.0) and lq[1]["clip_end_sec"] == pytest.approx(3.0)


# ---------------------------------------------------------------------------------------------- merge


def nlq_clip(cid: str, vs: float, ve: float, anns: list) -> dict:
    return {
        "clip_uid": cid,
        "video_start_sec": vs,
        "video_end_sec": ve,
        "video_start_frame": 35999,
        "video_end_frame": 35999,
        "clip_start_sec": 0,
        "clip_end_sec": ve - vs,
        "clip_start_frame": 0,
        "clip_end_frame": 14400,
        "source_clip_uid": "S",
        "annotations": anns,
    }


NLQ_ANN = {
    "annotation_uid": "a-uuid",
    "language_queries": [
        {"clip_start_sec": 1.0, "clip_end_sec": 2.0, "query": "Where is the cup?", "template": "T"},
        {"clip_start_sec": 3.0, "clip_end_sec": 3.0},
    ],
}


def nlq_train() -> dict:
    return {
        "version": "1",
        "videos": [
            {"video_uid": "V9", "split": "train", "clips": [nlq_clip("C9", 0.0, 480.0, [NLQ_ANN])]},
            {"video_uid": "V1", "split": "train", "clips": [nlq_clip("C1", 10.0, 100.0, [NLQ_ANN])]},
            {"video_uid": "V8", "split": "train", "clips": []},
        ],
    }


def test_merge_nlq_first_sorted_and_metadata_from_nlq():
    naq, _ = build_naq(
        ROWS,
        pool_frame([("V1", "C1", 10.0 + 1e-12, 100.0), ("V1", "C0", 50.0, 150.0), ("V2", "C4", 0.0, 60.0)]),
        subsample_v1=False,
    )
    merged, stats = merge_naq_nlq(nlq_train(), naq)
    assert [v["video_uid"] for v in merged["videos"]] == ["V1", "V2", "V9"]  # V8 had no clips
    v1 = merged["videos"][0]
    assert [c["clip_uid"] for c in v1["clips"]] == ["C0", "C1"]
    c1 = v1["clips"][1]
    assert list(c1) == [
        "clip_uid",
        "video_start_sec",
        "video_end_sec",
        "video_start_frame",
        "video_end_frame",
        "annotations",
    ]
    assert (c1["video_start_sec"], c1["video_start_frame"]) == (10.0, 35999)  # from NLQ, junk frames kept
    assert [a["annotation_uid"] for a in c1["annotations"]] == ["a-uuid", "V1_C1"]
    assert c1["annotations"][0] == NLQ_ANN
    assert all(v["split"] == "train" for v in merged["videos"])
    n_naq = sum(
        len(a["language_queries"]) for v in naq["videos"] for c in v["clips"] for a in c["annotations"]
    )
    assert stats["nlq_queries"] == 4 and stats["naq_queries"] == n_naq
    assert stats["merged_queries"] == 4 + n_naq
    assert stats["nlq_clips"] == 2 and stats["naq_clips"] == 3 and stats["merged_clips"] == 4
    assert stats["merged_videos"] == 3 and stats["shared_clips"] == 1


def test_merge_tolerance_and_split_errors():
    naq, _ = build_naq(ROWS, pool_frame([("V1", "C1", 10.5, 100.0)]), subsample_v1=False)
    with pytest.raises(InputError, match="disagrees") as e:
        merge_naq_nlq(nlq_train(), naq)
    assert e.value.field == "video_start_sec" and "C1" in e.value.record
    bad = nlq_train()
    bad["videos"][0]["split"] = "val"
    with pytest.raises(InputError) as e:
        merge_naq_nlq(bad, {"videos": []})
    assert e.value.field == "split"


# ---------------------------------------------------------------------------------------------- flattening


def test_naq_table_and_clips():
    naq, stats = build_naq(ROWS, POOL, subsample_v1=False)
    table = naq_table(naq)
    assert table.schema == TRAINING_QUERIES
    assert table.num_rows == stats["queries"]
    d = table.to_pydict()
    assert d["query_uid"][:3] == ["naq:V2_C4:0", "naq:V1_C2:0", "naq:V1_C2:1"]
    assert set(d["source"]) == {"naq"}
    assert d["query"][1] == "#C C opens the fridge"  # raw, "#" kept
    assert d["query_idx"][:5] == [0, 0, 1, 0, 1]
    assert d["clip_start_sec"][2] == 48.0 and d["clip_end_sec"][2] == 52.0
    assert not any(d["zero_length"]) and not any(d["ends_after_clip"])
    clips = naq_clips(naq)
    assert clips["clip_uid"].tolist() == ["C4", "C2", "C1", "C3"]
    assert clips.loc[clips["clip_uid"] == "C2", "clip_end_sec"].item() == pytest.approx(100.02)


def test_naq_table_zero_length_flag():
    naq, _ = build_naq(
        egoclip([("V", 5.0, 5.02, "#C C blink")]), pool_frame([("V", "C", 0.0, 9.0)]), subsample_v1=False
    )
    assert naq_table(naq).column("zero_length").to_pylist() == [True]


def test_merge_copies_junk_frames_but_needs_the_fields():
    nlq = nlq_train()
    nlq["videos"][0]["clips"][0]["video_start_frame"] = None  # junk frames are copied, not judged
    merged, _ = merge_naq_nlq(nlq, {"videos": []})
    assert merged["videos"][1]["clips"][0]["video_start_frame"] is None
    del nlq["videos"][0]["clips"][0]["video_end_frame"]
    with pytest.raises(InputError) as e:
        merge_naq_nlq(nlq, {"videos": []})
    assert e.value.field == "video_end_frame" and "C9" in e.value.record


def test_naq_table_indexes_queries_per_annotation():
    """query_idx restarts in each annotation, an empty annotation adds no row, keys repeat per query."""
    lq = q(1.0, 2.0, 0.0, "#C C a")
    obj = {
        "videos": [
            {
                "video_uid": "V",
                "clips": [
                    {
                        "clip_uid": "C",
                        "video_start_sec": 0.0,
                        "video_end_sec": 1.5,
                        "annotations": [
                            {"annotation_uid": "A", "language_queries": [lq, {**lq, "query": "#C C b"}]},
                            {"annotation_uid": "E", "language_queries": []},
                            {"annotation_uid": "B", "language_queries": [{**lq, "query": "#C C c"}]},
                        ],
                    }
                ],
            },
            {"video_uid": "W", "clips": []},
        ]
    }
    d = naq_table(obj).to_pydict()
    assert d["query_uid"] == ["naq:A:0", "naq:A:1", "naq:B:0"]
    assert d["query"] == ["#C C a", "#C C b", "#C C c"]
    assert d["video_uid"] == ["V"] * 3 and d["clip_uid"] == ["C"] * 3
    assert d["ends_after_clip"] == [True] * 3  # 2.0 > clip length 1.5
    assert naq_table({"videos": []}).num_rows == 0


def test_build_naq_needs_only_the_row_columns(tmp_path):
    from egonlq.io import read_parquet, write_parquet
    from egonlq.queries.naq import ROW_COLUMNS

    n = ROWS.num_rows
    full = ROWS.append_column("clip_idx", pa.array(range(n), pa.int64()))
    for f in EGOCLIP:
        if f.name not in full.column_names:
            full = full.append_column(f.name, pa.array([None] * n, f.type))
    write_parquet(full.select(EGOCLIP.names), tmp_path / "egoclip.parquet")
    rows = read_parquet(tmp_path / "egoclip.parquet", EGOCLIP, columns=ROW_COLUMNS)
    assert rows.column_names == list(ROW_COLUMNS)
    assert build_naq(rows, POOL) == build_naq(ROWS, POOL)
    # the naq job's read: video uids dictionary-encoded, their type checked as the plain one
    rows = read_parquet(tmp_path / "egoclip.parquet", EGOCLIP, columns=ROW_COLUMNS, dictionary=["video_uid"])
    assert pa.types.is_dictionary(rows.schema.field("video_uid").type)
    assert build_naq(rows, POOL) == build_naq(ROWS, POOL)
