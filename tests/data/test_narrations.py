"""Streaming narration ingest: values, tags, defects kept and counted, the streaming parser, and a property
test against a reference ``json.load`` conversion."""

from __future__ import annotations

import io
import json
import math
import re
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from egonlq.data import narrations as narr
from egonlq.data.narrations import JsonObjectStream, ingest_narrations
from egonlq.data.tables import NARRATIONS, SUMMARIES
from egonlq.errors import InputError
from egonlq.io import read_parquet

# ego4d-formats.md, section 6, verbatim
SPEC = """{"5f3c0a9e-0000-4000-8000-00000000a001": {
  "narration_pass_1": {
    "narrations": [
      {"timestamp_sec": 12.5, "timestamp_frame": 375, "_unmapped_timestamp_sec": 12.5,
       "narration_text": "#C C picks a knife from the table", "annotation_uid": "aa000000-0000-4000-8000-000000000001"},
      {"timestamp_sec": 3.2, "timestamp_frame": 96, "_unmapped_timestamp_sec": 3.2,
       "narration_text": "#O man X opens the fridge", "annotation_uid": "aa000000-0000-4000-8000-000000000001"}],
    "summaries": [{"start_sec": 0.0, "end_sec": 300.0, "summary_text": "#summary C cooks in the kitchen",
                   "annotation_uid": "aa000000-0000-4000-8000-000000000001"}]},
  "status": "complete"}}"""  # noqa: E501

VIDEO = "5f3c0a9e-0000-4000-8000-00000000a001"
ANN = "aa000000-0000-4000-8000-000000000001"


def run(tmp_path: Path, text: str, **kwargs) -> tuple[list[dict], list[dict], dict]:
    path = tmp_path / "narration.json"
    path.write_text(text, encoding="utf-8")
    report = ingest_narrations(
        path, tmp_path / "narrations.parquet", tmp_path / "summaries.parquet", **kwargs
    )
    narrations = read_parquet(tmp_path / "narrations.parquet", NARRATIONS)
    summaries = read_parquet(tmp_path / "summaries.parquet", SUMMARIES)
    return narrations.to_pylist(), summaries.to_pylist(), report.to_dict()["counts"]


def entry(text: object = "#C C opens the door", ts: object = 1.0, **extra) -> dict:
    e = {"timestamp_sec": ts, "timestamp_frame": round(ts * 30) if isinstance(ts, float) else 0}
    e.update(narration_text=text, annotation_uid=ANN, **extra)
    return e


def one_video(*entries: object, **video) -> str:
    return json.dumps({"v1": {"narration_pass_1": {"narrations": list(entries)}, "status": "done", **video}})


# ---------------------------------------------------------------------------------------------- values


def test_spec_example(tmp_path: Path) -> None:
    narrations, summaries, counts = run(tmp_path, SPEC, known_videos={VIDEO})
    assert narrations == [
        {
            "video_uid": VIDEO,
            "pass": 1,
            "narration_idx": 0,
            "timestamp_sec": 12.5,
            "timestamp_frame": 375,
            "text": "#C C picks a knife from the table",
            "tag": "#C",
            "unsure": False,
            "annotation_uid": ANN,
        },
        {
            "video_uid": VIDEO,
            "pass": 1,
            "narration_idx": 1,
            "timestamp_sec": 3.2,
            "timestamp_frame": 96,
            "text": "#O man X opens the fridge",
            "tag": "#O",
            "unsure": False,
            "annotation_uid": ANN,
        },
    ]
    assert summaries == [
        {
            "video_uid": VIDEO,
            "pass": 1,
            "start_sec": 0.0,
            "end_sec": 300.0,
            "text": "#summary C cooks in the kitchen",
            "annotation_uid": ANN,
        }
    ]
    assert counts == {"status:complete": 1}


@pytest.mark.parametrize(
    "text, tag, unsure",
    [
        ("#C C opens the door", "#C", False),
        ("#c c opens the door", "#C", False),
        ("  #C C leading spaces", "#C", False),
        ("#O man X opens the fridge", "#O", False),
        ("#o woman Y sits", "#O", False),
        ("#O man X gives #C C a cup", "#O", False),
        ("#summary C cooks in the kitchen", "#summary", False),
        ("#SUMMARY c cooks", "#summary", False),
        ("#C C picks #unsure a cup", "#C", True),
        ("#unsure #C C picks a cup", "#C", True),
        ("#Unsure #o man X waves", "#O", True),
        ("C opens the #unsure door", "#unsure", True),
        ("#unsure", "#unsure", True),
        ("#UNSURE C washes", "#unsure", True),
        ("#unsure C picks #x", "none", True),
        ("C opens the door", "none", False),
        ("#Cat sits on the mat", "none", False),
        ("#unsureX C picks", "none", False),
        ("the #C tag is not leading", "none", False),
    ],
)
def test_tags(tmp_path: Path, text: str, tag: str, unsure: bool) -> None:
    narrations, _, _ = run(tmp_path, one_video(entry(text)))
    assert (narrations[0]["tag"], narrations[0]["unsure"]) == (tag, unsure)


def test_two_passes_indices_and_missing_passes(tmp_path: Path) -> None:
    data = {
        "v1": {
            "narration_pass_1": {"narrations": [entry("#C a", 5.0), entry("#C b", 1.0)], "summaries": []},
            "narration_pass_2": {
                "narrations": [entry("#O c", 3.0), entry("#C d", 2.0), entry("#C e", 9.0)],
                "summaries": [{"start_sec": 0.0, "end_sec": 10.0, "summary_text": "#summary s2"}],
            },
            "status": "complete",
        },
        "v2": {"narration_pass_2": {"narrations": [entry("#C f", 4.0)]}, "status": "redo"},
        "v3": {"narration_pass_1": None, "status": "complete"},
        "v4": {},
    }
    narrations, summaries, counts = run(tmp_path, json.dumps(data, indent=2))
    keys = [(r["video_uid"], r["pass"], r["narration_idx"], r["text"]) for r in narrations]
    assert keys == [  # file order, not sorted by time
        ("v1", 1, 0, "#C a"),
        ("v1", 1, 1, "#C b"),
        ("v1", 2, 0, "#O c"),
        ("v1", 2, 1, "#C d"),
        ("v1", 2, 2, "#C e"),
        ("v2", 2, 0, "#C f"),
    ]
    assert [r["timestamp_sec"] for r in narrations] == [5.0, 1.0, 3.0, 2.0, 9.0, 4.0]
    assert summaries == [
        {
            "video_uid": "v1",
            "pass": 2,
            "start_sec": 0.0,
            "end_sec": 10.0,
            "text": "#summary s2",
            "annotation_uid": None,
        }
    ]
    assert counts == {
        "status:complete": 2,
        "status:redo": 1,
        "status:<missing>": 1,
        "summary_bad_annotation_uid": 1,
    }


def test_bad_timestamps_are_kept_null_and_counted(tmp_path: Path) -> None:
    text = (
        '{"v1": {"narration_pass_1": {"narrations": ['
        '{"timestamp_frame": 30, "narration_text": "#C a", "annotation_uid": "u"},'
        '{"timestamp_sec": "12.5", "timestamp_frame": 375, "narration_text": "#C b", "annotation_uid": "u"},'
        '{"timestamp_sec": true, "timestamp_frame": 30, "narration_text": "#C c", "annotation_uid": "u"},'
        '{"timestamp_sec": null, "timestamp_frame": 30, "narration_text": "#C d", "annotation_uid": "u"},'
        '{"timestamp_sec": NaN, "timestamp_frame": 30, "narration_text": "#C e", "annotation_uid": "u"},'
        '{"timestamp_sec": -Infinity, "timestamp_frame": 30, "narration_text": "#C f", "annotation_uid": "u"},'  # noqa: E501
        '{"timestamp_sec": -2.0, "timestamp_frame": -60, "narration_text": "#C g", "annotation_uid": "u"},'
        '{"timestamp_sec": 1, "timestamp_frame": 30.0, "narration_text": "#C h", "annotation_uid": "u"},'
        '{"timestamp_sec": 2.0, "timestamp_frame": 60.5, "narration_text": "#C i", "annotation_uid": "u"},'
        '{"timestamp_sec": 2.0, "timestamp_frame": false, "narration_text": "#C j", "annotation_uid": "u"},'
        '{"timestamp_sec": 2.0, "timestamp_frame": 600, "narration_text": "#C k", "annotation_uid": 7}'
        "]}}}"
    )
    narrations, _, counts = run(tmp_path, text)
    assert [r["text"] for r in narrations] == [f"#C {c}" for c in "abcdefghijk"]  # all kept
    assert [r["timestamp_sec"] for r in narrations] == [None] * 6 + [-2.0, 1.0, 2.0, 2.0, 2.0]
    assert [r["timestamp_frame"] for r in narrations] == [30, 375, 30, 30, 30, 30, -60, 30, None, None, 600]
    assert narrations[-1]["annotation_uid"] is None
    assert counts == {
        "narration_bad_timestamp": 6,
        "narration_negative_timestamp": 1,
        "narration_bad_timestamp_frame": 2,
        "narration_frame_inconsistent": 1,
        "narration_bad_annotation_uid": 1,
        "status:<missing>": 1,
    }


def test_bools_are_not_numbers_even_where_arrow_would_take_them(tmp_path: Path) -> None:
    # every other value is valid, so this exercises the bool check of the fast path
    text = (
        '{"v": {"narration_pass_1": {"narrations": ['
        '{"timestamp_sec": 0.0, "timestamp_frame": 0, "narration_text": "#C a", "annotation_uid": "u"},'
        '{"timestamp_sec": true, "timestamp_frame": 30, "narration_text": "#C b", "annotation_uid": "u"},'
        '{"timestamp_sec": 1.0, "timestamp_frame": 1, "narration_text": "#C c", "annotation_uid": "u"}],'
        '"summaries": [{"start_sec": false, "end_sec": 1.0, "summary_text": "#summary", '
        '"annotation_uid": "u"}]}}}'
    )
    narrations, summaries, counts = run(tmp_path, text)
    assert [r["timestamp_sec"] for r in narrations] == [0.0, None, 1.0]
    assert [r["timestamp_frame"] for r in narrations] == [0, 30, 1]
    assert (summaries[0]["start_sec"], summaries[0]["end_sec"]) == (None, 1.0)
    assert counts["narration_bad_timestamp"] == 1 and counts["summary_bad_time"] == 1
    assert counts["narration_frame_inconsistent"] == 1  # frame 1 at 1.0 s


def test_empty_text_and_non_objects(tmp_path: Path) -> None:
    entries = [entry(None), 5, entry(""), None, entry("  \t"), [], entry(7), "text", entry("#C ok")]
    entries.append({k: v for k, v in entry().items() if k != "narration_text"})
    narrations, _, counts = run(tmp_path, one_video(*entries))
    assert [r["narration_idx"] for r in narrations] == [0, 2, 4, 6, 8, 9]  # original positions
    assert [r["text"] for r in narrations] == [None, None, None, None, "#C ok", None]
    assert [r["tag"] for r in narrations] == ["none"] * 4 + ["#C", "none"]
    assert counts == {"narration_empty_text": 5, "narration_not_object": 4, "status:done": 1}


def test_bad_containers_and_unknown_videos(tmp_path: Path) -> None:
    data = {
        "known": {"narration_pass_1": {"narrations": [entry()]}, "status": "complete"},
        "unknown": {"narration_pass_1": {"narrations": [entry()]}, "status": 3},
        "not-object": [1, 2],
        "bad-pass": {
            "narration_pass_1": [entry()],
            "narration_pass_2": {"narrations": {"a": 1}, "summaries": 5},
        },
    }
    narrations, _, counts = run(tmp_path, json.dumps(data), known_videos={"known", "bad-pass"})
    assert [r["video_uid"] for r in narrations] == ["known", "unknown"]
    assert counts == {
        "narration_video_not_object": 1,
        "narration_video_unknown": 1,
        "narration_pass_not_object": 1,
        "narration_list_not_list": 1,
        "summary_list_not_list": 1,
        "status:complete": 1,
        "status:3": 1,
        "status:<missing>": 1,
    }


def test_summary_defects(tmp_path: Path) -> None:
    summaries = [
        {"start_sec": 0.0, "end_sec": "300", "summary_text": "#summary a", "annotation_uid": "u"},
        {"start_sec": None, "end_sec": 5.0, "summary_text": "", "annotation_uid": "u"},
        "not an object",
        {"start_sec": 1, "end_sec": 2, "summary_text": "#summary b", "annotation_uid": "u"},
    ]
    _, rows, counts = run(tmp_path, json.dumps({"v": {"narration_pass_1": {"summaries": summaries}}}))
    assert [(r["start_sec"], r["end_sec"], r["text"]) for r in rows] == [
        (0.0, None, "#summary a"),
        (None, 5.0, None),
        (1.0, 2.0, "#summary b"),
    ]
    assert counts == {
        "summary_bad_time": 2,
        "summary_empty_text": 1,
        "summary_not_object": 1,
        "status:<missing>": 1,
    }


def test_row_groups_are_bounded(tmp_path: Path) -> None:
    data = {
        f"v{i}": {"narration_pass_1": {"narrations": [entry(f"#C {j}", float(j)) for j in range(7)]}}
        for i in range(9)
    }
    narrations, _, _ = run(tmp_path, json.dumps(data), rows_per_group=10)
    assert len(narrations) == 63
    meta = pq.ParquetFile(tmp_path / "narrations.parquet").metadata
    assert meta.num_row_groups > 1
    assert max(meta.row_group(i).num_rows for i in range(meta.num_row_groups)) <= 10 + 7
    assert [r["narration_idx"] for r in narrations] == list(range(7)) * 9


def test_lone_surrogate_is_replaced_and_counted(tmp_path: Path) -> None:
    text = json.dumps({"v": {"narration_pass_1": {"narrations": [{"narration_text": "#C \ud800"}]}}})
    narrations, _, counts = run(tmp_path, text)
    assert narrations[0]["text"] == "#C \ufffd"
    assert counts["invalid_unicode"] == 1


# ---------------------------------------------------------------------------------------------- streaming


TRICKY = {
    "vidé😀-1": {
        "narration_pass_1": {
            "narrations": [
                entry('#C C says "hi" to {X} ] [ }{ ,: \\ / \u00e9 \u2019 日本 😀'),
                entry('#O man\'s "quoted" {json: [1, 2]} true false null', 2.5),
                entry("tab\there\nnewline \\u0000 \u0000 \u001f", 3.25),
            ]
        },
        "status": "complete",
    },
    "v2": {"narration_pass_2": {"narrations": [entry("#c c opens the door", 1e-7)]}},
}


@pytest.mark.parametrize("chunk_chars", [1, 3, 7, 64, 1 << 20])
@pytest.mark.parametrize(
    "dump",
    [
        lambda d: json.dumps(d),
        lambda d: json.dumps(d, ensure_ascii=False),
        lambda d: json.dumps(d, indent=4, ensure_ascii=False),
        lambda d: "\r\n \t" + json.dumps(d, indent="\t", separators=(" ,\r\n", " :\n ")) + " \n\n",
    ],
)
def test_streaming_handles_unicode_escapes_braces_whitespace(tmp_path: Path, chunk_chars: int, dump) -> None:
    narrations, _, _ = run(tmp_path, dump(TRICKY), chunk_chars=chunk_chars)
    assert [r["text"] for r in narrations] == [
        e["narration_text"]
        for v in TRICKY.values()
        for p in v.values()
        if isinstance(p, dict)
        for e in p["narrations"]
    ]
    assert [r["video_uid"] for r in narrations] == ["vidé😀-1"] * 3 + ["v2"]
    assert [r["timestamp_sec"] for r in narrations] == [1.0, 2.5, 3.25, 1e-7]
    assert [r["tag"] for r in narrations] == ["#C", "#O", "none", "#C"]


@pytest.mark.parametrize("text", ["{}", " {\n} \n", "{ }"])
def test_empty_object(tmp_path: Path, text: str) -> None:
    narrations, summaries, counts = run(tmp_path, text)
    assert narrations == [] and summaries == [] and counts == {}
    assert pq.read_schema(tmp_path / "narrations.parquet").names == NARRATIONS.names


def test_every_truncation_is_an_error(tmp_path: Path) -> None:
    full = json.dumps(TRICKY, indent=1, ensure_ascii=False)
    path = tmp_path / "narration.json"
    out = tmp_path / "out.parquet", tmp_path / "summ.parquet"
    for cut in range(len(full.rstrip()) - 1, -1, -1 if len(full) < 400 else -7):
        path.write_text(full[:cut], encoding="utf-8")
        with pytest.raises(InputError) as info:
            ingest_narrations(path, *out, chunk_chars=16)
        assert "narration.json" in str(info.value), cut
        assert "line" in str(info.value)
        assert not out[0].exists() and not out[1].exists()  # nothing half-written
    assert not list(tmp_path.glob(".*.tmp"))


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "top level is not a JSON object"),
        ("[{}]", "top level is not a JSON object"),
        ('{"v": {},}', "trailing comma"),
        ('{"v" {}}', "expected ':'"),
        ('{"v": {} "w": {}}', "expected ',' or '}'"),
        ("{v: {}}", "property name"),
        ('{"v": {}} {}', "extra data"),
        ('{"v": {}, "v": {}}', "duplicate key 'v'"),
        ('{"v": {"narration_pass_1": {"narrations": [1,,2]}}}', "Expecting value"),
        ('{\n"v": {"narration_pass_1":\n {"narrations": [tru]}}}', "line 3, column"),
    ],
)
def test_malformed_json(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(InputError, match=re.escape(message)) as info:
        run(tmp_path, text, chunk_chars=4)
    assert "narration.json" in str(info.value)


def test_error_position_is_exact(tmp_path: Path) -> None:
    text = '{"a": {},\n "b": {"narration_pass_1": {"narrations": [1 2]}}}'
    with pytest.raises(InputError, match=r"line 2, column 46 \(character 55\)"):
        run(tmp_path, text, chunk_chars=5)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="file not found"):
        ingest_narrations(tmp_path / "none.json", tmp_path / "a.parquet", tmp_path / "b.parquet")


# ---------------------------------------------------------------------------------------------- properties


json_scalars = st.none() | st.booleans() | st.integers(-(10**20), 10**20) | st.floats() | st.text(max_size=8)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
    max_leaves=12,
)


def _big_ints_as_floats(value: object) -> object:
    """``value`` with integers beyond 64 bits as the nearest float (how orjson reads them)."""
    if isinstance(value, dict):
        return {k: _big_ints_as_floats(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_big_ints_as_floats(v) for v in value]
    if isinstance(value, int) and not isinstance(value, bool) and not -(2**63) <= value < 2**64:
        return float(value)
    return value


@settings(max_examples=150, deadline=None)
@given(members=st.dictionaries(st.text(max_size=6), json_values, max_size=5), chunk=st.integers(1, 40))
def test_stream_matches_json_load(members: dict, chunk: int) -> None:
    text = json.dumps(members, ensure_ascii=chunk % 2 == 0, indent=chunk % 3 or None)
    stream = JsonObjectStream(io.StringIO(text), Path("mem.json"), chunk_chars=chunk)
    got = list(stream)
    want = list(json.loads(text).items())
    assert [k for k, _ in got] == [k for k, _ in want]
    # NaN-safe comparison; big integers may be floats where orjson read the value
    same = _big_ints_as_floats
    assert json.dumps([same(v) for _, v in got]) == json.dumps([same(v) for _, v in want])


def test_stream_reads_objects_with_orjson_and_falls_back_to_json() -> None:
    """Object values go through orjson when the text up to the likely end parses; NaN, lone surrogates, a
    false end ("}, " inside a string) and non-objects go through the json module, with the same values."""
    members = {
        "a": {"narration_pass_1": {"narrations": [{"narration_text": 'x}, "y": {'}]}, "status": "ok"},
        "b": {"t": float("nan")},
        "c": {"s": "\ud800"},
        "d": [1, {"e": 2}],
        "f": {"g": 12345678901234567890123},
        "e": 12345678901234567890123,
    }
    text = json.dumps(members)
    got = dict(JsonObjectStream(io.StringIO(text), Path("mem.json")))
    assert json.dumps(got) == json.dumps({**members, "f": {"g": 1.2345678901234568e22}})
    assert got["e"] == 12345678901234567890123


TAG_WORDS = [
    "#C",
    "#c",
    "#O",
    "#o",
    "#unsure",
    "#UNSURE",
    "#summary",
    "#Summary",
    "#x1",
    "#Cat",
    "C",
    "picks",
]
PIECES = [
    *TAG_WORDS,
    " ",
    "\t",
    "\n",
    "\x0b",
    "é",
    "’",
    '"',
    "\\",
    "{",
    "}",
    "[",
    "]",
    ":",
    ",",
    "true",
    "false",
]
texts = st.lists(st.sampled_from(PIECES), max_size=8).map("".join) | st.text(max_size=10)
numbers = st.floats() | st.integers(-(10**20), 10**20) | st.booleans() | st.none() | st.text(max_size=3)
MISSING = object()


def _maybe(value_strategy):
    return st.one_of(st.just(MISSING), value_strategy)


narration_entries = st.fixed_dictionaries(
    {
        "timestamp_sec": _maybe(numbers),
        "timestamp_frame": _maybe(numbers),
        "narration_text": _maybe(texts | st.none() | st.integers()),
        "annotation_uid": _maybe(st.text(max_size=4) | st.none() | st.integers()),
        "_unmapped_timestamp_sec": _maybe(numbers),
    }
).map(lambda d: {k: v for k, v in d.items() if v is not MISSING})
summary_entries = st.fixed_dictionaries(
    {
        "start_sec": _maybe(numbers),
        "end_sec": _maybe(numbers),
        "summary_text": _maybe(texts | st.none()),
        "annotation_uid": _maybe(st.text(max_size=4) | st.none()),
    }
).map(lambda d: {k: v for k, v in d.items() if v is not MISSING})
entry_lists = st.lists(narration_entries | json_scalars, max_size=6) | json_scalars
passes = st.fixed_dictionaries(
    {
        "narrations": _maybe(entry_lists),
        "summaries": _maybe(st.lists(summary_entries | json_scalars, max_size=3)),
    }
).map(lambda d: {k: v for k, v in d.items() if v is not MISSING})
# a status is shown as read, and an integer beyond 64 bits is a float where orjson read the video
status_scalars = (
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats() | st.text(max_size=8)
)
videos = st.fixed_dictionaries(
    {
        "narration_pass_1": _maybe(passes | st.none() | json_scalars),
        "narration_pass_2": _maybe(passes),
        "status": _maybe(st.sampled_from(["complete", "redo"]) | status_scalars),
    }
).map(lambda d: {k: v for k, v in d.items() if v is not MISSING})
narration_files = st.dictionaries(st.text(min_size=1, max_size=4), videos | json_scalars, max_size=4)


def _float(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        value = float(value)
    except OverflowError:
        return None
    return value if math.isfinite(value) else None


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value.strip(" \t\n\r\f\v") else None


def _tag(text: str | None) -> tuple[str, bool]:
    if text is None:
        return "none", False
    unsure = len(re.findall(narr.UNSURE_PATTERN, text, re.ASCII))
    if re.match(narr.SUMMARY_PATTERN, text, re.ASCII):
        return "#summary", unsure > 0
    lead = re.match(narr.LEADING_CO_PATTERN, text, re.ASCII)
    if lead:
        return ("#C" if lead["co"] in "Cc" else "#O"), unsure > 0
    tags = len(re.findall(narr.TAG_PATTERN, text, re.ASCII))
    return ("#unsure" if tags and tags == unsure else "none"), unsure > 0


def reference(data: dict, known: set[str] | None) -> tuple[list[dict], list[dict], dict]:
    """The same conversion, written plainly over ``json.load`` output."""
    rows, summaries, counts = [], [], {}

    def count(kind: str, n: int = 1) -> None:
        if n:
            counts[kind] = counts.get(kind, 0) + n

    for uid, video in data.items():
        if not isinstance(video, dict):
            count("narration_video_not_object")
            continue
        if known is not None and uid not in known:
            count("narration_video_unknown")
        status = video.get("status", MISSING)
        count(
            "status:"
            + (
                "<missing>"
                if status is MISSING
                else status
                if isinstance(status, str)
                else json.dumps(status)
            )
        )
        for p in (1, 2):
            pv = video.get(f"narration_pass_{p}")
            if pv is None:
                continue
            if not isinstance(pv, dict):
                count("narration_pass_not_object")
                continue
            entries = pv.get("narrations", [])
            if not isinstance(entries, list):
                count("narration_list_not_list")
                entries = []
            for i, e in enumerate(entries):
                if not isinstance(e, dict):
                    count("narration_not_object")
                    continue
                ts = _float(e.get("timestamp_sec"))
                count("narration_bad_timestamp", ts is None)
                count("narration_negative_timestamp", ts is not None and ts < 0)
                f = _float(e.get("timestamp_frame"))
                frame = int(f) if f is not None and f.is_integer() and -(2.0**63) <= f < 2.0**63 else None
                count("narration_bad_timestamp_frame", frame is None)
                count(
                    "narration_frame_inconsistent",
                    frame is not None and ts is not None and abs(f - ts * 30) > 1,
                )
                text = _text(e.get("narration_text"))
                count("narration_empty_text", text is None)
                ann = e.get("annotation_uid") if isinstance(e.get("annotation_uid"), str) else None
                count("narration_bad_annotation_uid", ann is None)
                tag, unsure = _tag(text)
                rows.append(
                    {
                        "video_uid": uid,
                        "pass": p,
                        "narration_idx": i,
                        "timestamp_sec": ts,
                        "timestamp_frame": frame,
                        "text": text,
                        "tag": tag,
                        "unsure": unsure,
                        "annotation_uid": ann,
                    }
                )
            entries = pv.get("summaries", [])
            if not isinstance(entries, list):
                count("summary_list_not_list")
                entries = []
            for s in entries:
                if not isinstance(s, dict):
                    count("summary_not_object")
                    continue
                start, end = _float(s.get("start_sec")), _float(s.get("end_sec"))
                count("summary_bad_time", start is None or end is None)
                text = _text(s.get("summary_text"))
                count("summary_empty_text", text is None)
                ann = s.get("annotation_uid") if isinstance(s.get("annotation_uid"), str) else None
                count("summary_bad_annotation_uid", ann is None)
                summaries.append(
                    {
                        "video_uid": uid,
                        "pass": p,
                        "start_sec": start,
                        "end_sec": end,
                        "text": text,
                        "annotation_uid": ann,
                    }
                )
    return rows, summaries, counts


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=narration_files, chunk=st.integers(1, 300), group=st.integers(1, 20), with_known=st.booleans())
def test_streaming_ingest_equals_reference(
    tmp_path: Path, data: dict, chunk: int, group: int, with_known: bool
) -> None:
    known = set(list(data)[::2]) if with_known else None
    text = json.dumps(data, indent=1 if chunk % 2 else None, ensure_ascii=chunk % 3 == 0)
    narrations, summaries, counts = run(
        tmp_path, text, known_videos=known, chunk_chars=chunk, rows_per_group=group
    )
    want_rows, want_summaries, want_counts = reference(json.loads(text), known)
    assert narrations == want_rows
    assert summaries == want_summaries
    assert counts == want_counts


# ---------------------------------------------------------------------------------------------- fast pass


def exact_ingest(path: Path, narrations_out: Path, summaries_out: Path, **kwargs) -> narr.QuirkReport:
    """The exact pass alone (every value parsed as it is read): the reference of the fast pass."""
    return narr._ingest(
        path,
        narrations_out,
        summaries_out,
        kwargs.get("known_videos"),
        kwargs.get("rows_per_group", narr.ROWS_PER_GROUP),
        kwargs.get("chunk_chars", narr.CHUNK_CHARS),
        fast=False,
    )


def _exactly(table) -> list[dict]:
    """Rows with floats as hex, so that -0.0 and 0.0 differ."""
    return [{k: v.hex() if isinstance(v, float) else v for k, v in row.items()} for row in table.to_pylist()]


def both_passes(tmp_path: Path, text: str, **kwargs) -> list:
    """``ingest_narrations`` and the exact pass on the same file: tables (bit for bit), row groups and
    quirk reports with their examples, or the error."""
    path = tmp_path / "narration.json"
    path.write_text(text, encoding="utf-8")
    results = []
    for name, ingest in (("fast", ingest_narrations), ("exact", exact_ingest)):
        out = (tmp_path / f"{name}.narrations.parquet", tmp_path / f"{name}.summaries.parquet")
        try:
            report = ingest(path, *out, **kwargs)
        except InputError as e:
            results.append(("error", str(e)))
            continue
        files = [pq.ParquetFile(p) for p in out]
        groups = [[f.metadata.row_group(i).num_rows for i in range(f.metadata.num_row_groups)] for f in files]
        results.append(([_exactly(f.read()) for f in files], groups, report.to_dict()))
    return results


def clean_video(entries: list[dict], status: str = "complete") -> dict:
    summary = {"start_sec": 0.0, "end_sec": 60.0, "summary_text": "#summary C cooks", "annotation_uid": ANN}
    return {"narration_pass_1": {"narrations": entries, "summaries": [summary]}, "status": status}


@pytest.mark.parametrize(
    "snippet",
    [
        '"timestamp_sec": -0',  # the integer 0 in Python, -0.0 for Arrow
        '"timestamp_sec": -0.0',
        '"timestamp_sec": NaN',
        '"timestamp_sec": -Infinity',
        '"timestamp_sec": Inf',  # Arrow reads it; not JSON for the json module
        '"timestamp_sec": -NaN',
        '"timestamp_sec": 1e400',
        '"timestamp_sec": 1.7976931348623159e308',
        '"timestamp_sec": 123456789012345678901234567890',
        '"timestamp_frame": 9007199254740993',
        '"timestamp_frame": 18446744073709551617',
        '"timestamp_sec": true',
        '"timestamp_sec": "1.0"',
        '"narration_text": 7',
        '"narration_text": "#C \\ud800"',
        '"narration_text": "a\\u0000b \\u00e9 \\ud83d\\ude00 \\/"',
        '"timestamp_sec": 1.0, "timestamp_sec": 2.0',
        '"annotation_uid": null',
        '"extra": {"a": [1, null, true]}',
        '"extra": ' + "[" * 3000 + "]" * 3000,  # deeper than the json module decodes
        '"_unmapped_timestamp_sec": Inf',
        '"_unmapped_timestamp_sec": "12.5"',
    ],
)
def test_fast_pass_reads_entries_as_the_exact_pass(tmp_path: Path, monkeypatch, snippet: str) -> None:
    monkeypatch.setattr(narr, "BATCH_CHARS", 1)  # a batch a video: the clean ones go through Arrow
    clean = json.dumps(clean_video([entry()]))
    odd = '{"timestamp_frame": 30, "narration_text": "#C C opens", "annotation_uid": "u", ' + snippet + "}"
    video = '{"narration_pass_1": {"narrations": [' + odd + '], "summaries": []}, "status": "complete"}'
    text = f'{{"v0": {clean}, "v1": {video}, "v2": {clean}}}'
    fast, exact = both_passes(tmp_path, text)
    assert fast == exact
    if snippet == '"timestamp_sec": -0':  # the integer 0: 0.0, not -0.0
        assert fast[0][0][1]["timestamp_sec"] == (0.0).hex()


@pytest.mark.parametrize(
    "video",
    [
        '{"narration_pass_1": {"narrations": [], "summaries": []}, "status": null}',
        '{"narration_pass_1": {"narrations": [], "summaries": []}}',
        '{"narration_pass_1": {"narrations": null, "summaries": []}, "status": "complete"}',
        '{"narration_pass_1": {"summaries": []}, "status": "complete"}',
        '{"narration_pass_1": null, "narration_pass_2": {}, "status": "complete"}',
        '{"narration_pass_1": {"narrations": [null, 3, []]}, "status": "complete"}',
        '{"narration_pass_1": {"narrations": [null], "summaries": []}, "status": "complete"}',
        '{"narration_pass_1": {"narrations": []}, "narration_pass_1": {"narrations": []}, "status": "x"}',
        '{"narration_pass_1": {"narrations": [], "extra": 1}, "status": "complete"}',
        '{"status": 3.50}',
        '{"status": {"a": 1}}',
        '{"status":\n "complete",\n "narration_pass_1": {"narrations":\n []}}',
        '{"status": "a"} {"status": "b"}',  # two values where one is guessed
    ],
)
def test_fast_pass_reads_videos_as_the_exact_pass(tmp_path: Path, monkeypatch, video: str) -> None:
    monkeypatch.setattr(narr, "BATCH_CHARS", 1)
    clean = json.dumps(clean_video([entry()]))
    fast, exact = both_passes(
        tmp_path, f'{{"v0": {clean}, "v1": {video}, "v2": {clean}}}', known_videos={"v0"}
    )
    assert fast == exact


def test_clean_videos_are_read_by_arrow(tmp_path: Path, monkeypatch) -> None:
    read_with_arrow, batches = narr._read_with_arrow, []

    def spy(*args):
        batches.append(read_with_arrow(*args))
        return batches[-1]

    monkeypatch.setattr(narr, "_read_with_arrow", spy)
    data = {f"v{i}": clean_video([entry(f"#C C takes {j}", float(j)) for j in range(5)]) for i in range(4)}
    narrations, summaries, counts = run(tmp_path, json.dumps(data))
    assert [batch is not None for batch in batches] == [True]  # the last video has no likely end: Python
    assert len(narrations) == 20 and len(summaries) == 4 and counts == {"status:complete": 4}


def test_a_wrong_guess_of_a_video_end_reads_the_file_again(tmp_path: Path, caplog) -> None:
    # a text ending in "}, " puts a likely video end inside a string
    data = {"v0": clean_video([entry("#C C writes {x}, "), entry()]), "v1": clean_video([entry()])}
    with caplog.at_level("INFO", logger="egonlq.data.narrations"):
        fast, exact = both_passes(tmp_path, json.dumps(data))
    assert "read again value by value" in caplog.text
    assert fast == exact
    assert [r["text"] for r in fast[0][0]] == ["#C C writes {x}, ", *["#C C opens the door"] * 2]


clean_entries = st.builds(
    lambda t, text, uid: {
        "timestamp_sec": t,
        "timestamp_frame": round(t * 30),
        "_unmapped_timestamp_sec": t,
        "narration_text": text,
        "annotation_uid": uid,
    },
    st.floats(-5, 4000, allow_nan=False) | st.integers(0, 4000),
    texts,
    st.text(max_size=4),
)
clean_videos = st.builds(
    lambda p1, p2, status: {
        **({"narration_pass_1": {"narrations": p1, "summaries": []}} if p1 is not None else {}),
        **({"narration_pass_2": {"narrations": p2, "summaries": []}} if p2 is not None else {}),
        "status": status,
    },
    st.none() | st.lists(clean_entries, max_size=5),
    st.none() | st.lists(clean_entries, max_size=5),
    st.sampled_from(["complete", "redo"]),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    data=st.dictionaries(st.text(min_size=1, max_size=4), clean_videos | videos | json_scalars, max_size=6),
    batch=st.integers(1, 600),
    group=st.integers(1, 12),
    indent=st.sampled_from([None, None, 1]),
)
def test_fast_pass_equals_exact_pass(
    tmp_path: Path, monkeypatch, data: dict, batch: int, group: int, indent: int | None
) -> None:
    monkeypatch.setattr(narr, "BATCH_CHARS", batch)
    text = json.dumps(data, indent=indent, ensure_ascii=batch % 2 == 0)
    fast, exact = both_passes(tmp_path, text, rows_per_group=group, known_videos=set(list(data)[::2]))
    assert fast == exact
