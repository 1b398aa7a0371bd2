"""NLQ annotation ingest: the spec examples, every counted quirk, every error (file, record, field named)."""

from __future__ import annotations

import copy
import json
from dataclasses import astuple
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from egonlq.data.annotations import (
    FORM_LABELS,
    NEGATIVE_TIME_TOLERANCE_SEC,
    clean_form_label,
    ingest_nlq,
    read_nlq,
)
from egonlq.data.tables import CLIPS, NLQ_VIDEOS, QUERIES
from egonlq.data.validation import ErrorCollector, QuirkReport
from egonlq.errors import InputError

# ego4d-formats.md, section 6, verbatim
SPEC_VAL = """{"version": "1", "date": "220216", "description": "NLQ Annotations (val)",
 "manifest": "s3://example/manifest.csv",
 "videos": [{"video_uid": "5f3c0a9e-0000-4000-8000-00000000a001", "split": "val",
   "clips": [{"clip_uid": "7b1d2e4f-0000-4000-8000-00000000c001",
     "video_start_sec": 60.0, "video_end_sec": 540.0, "video_start_frame": 1800, "video_end_frame": 16200,
     "clip_start_sec": 0, "clip_end_sec": 480.0, "clip_start_frame": 0, "clip_end_frame": 14400,
     "source_clip_uid": "9c8b7a6d-0000-4000-8000-00000000b001",
     "annotations": [{"annotation_uid": "3e2f1a0b-0000-4000-8000-00000000a0a1",
       "language_queries": [
         {"clip_start_sec": 10.0, "clip_end_sec": 20.0, "video_start_sec": 70.0, "video_end_sec": 80.0,
          "video_start_frame": 2100, "video_end_frame": 2400,
          "template": "Place: Where did I put X?", "query": "Where did I put the knife?",
          "slot_x": "knife", "verb_x": "put",
          "raw_tags": ["Place: Where did I put X?", "Where did I put the knife?", "knife", "put"]},
         {"clip_start_sec": 30.0, "clip_end_sec": 30.0, "video_start_sec": 90.0, "video_end_sec": 90.0,
          "video_start_frame": 2700, "video_end_frame": 2700,
          "template": null, "query": "What did I put in the bowl", "raw_tags": [null, "What did I put in the bowl"]}
       ]}]}]}]}"""  # noqa: E501

VIDEO = "5f3c0a9e-0000-4000-8000-00000000a001"
CLIP = "7b1d2e4f-0000-4000-8000-00000000c001"
ANN = "3e2f1a0b-0000-4000-8000-00000000a0a1"


def spec() -> dict:
    return json.loads(SPEC_VAL)


def spec_test() -> dict:
    """The unannotated test variant of section 6."""
    data = spec()
    data["description"] = "NLQ Annotations (test unannotated)"
    video = data["videos"][0]
    video["split"] = "test"
    video["clips"][0]["annotations"][0]["language_queries"] = [{"query": "Where is the red cup?"}]
    return data


def write(tmp_path: Path, data: dict | str, name: str = "nlq_val.json") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    return path


def queries_of(data: dict) -> list[dict]:
    return data["videos"][0]["clips"][0]["annotations"][0]["language_queries"]


# ---------------------------------------------------------------------------------------------- valid input


def test_spec_example_values(tmp_path: Path) -> None:
    path = write(tmp_path, SPEC_VAL)
    clips, queries, report = ingest_nlq(path, "val")
    assert clips.schema == CLIPS and queries.schema == QUERIES
    assert clips.to_pylist() == [
        {
            "split": "val",
            "video_uid": VIDEO,
            "clip_uid": CLIP,
            "video_start_sec": 60.0,
            "video_end_sec": 540.0,
            "clip_end_sec": 480.0,
            "source_clip_uid": "9c8b7a6d-0000-4000-8000-00000000b001",
            "num_annotations": 1,
            "num_queries": 2,
            "negative_time_clamped": False,
        }
    ]
    q0, q1 = queries.to_pylist()
    assert q0 == {
        "split": "val",
        "video_uid": VIDEO,
        "clip_uid": CLIP,
        "annotation_uid": ANN,
        "query_idx": 0,
        "query": "Where did I put the knife?",
        "query_clean": "Where did I put the knife?",
        "template": "Place: Where did I put X?",
        "slot_x": "knife",
        "verb_x": "put",
        "slot_y": None,
        "verb_y": None,
        "answer": None,
        "raw_tags": ["Place: Where did I put X?", "Where did I put the knife?", "knife", "put"],
        "clip_start_sec": 10.0,
        "clip_end_sec": 20.0,
        "video_start_sec": 70.0,
        "video_end_sec": 80.0,
        "annotated": True,
        "has_text": True,
        "zero_length": False,
        "ends_after_clip": False,
        "negative_time_clamped": False,
    }
    assert (
        q1["query_idx"] == 1
        and q1["template"] is None
        and q1["raw_tags"] == [None, "What did I put in the bowl"]
    )
    assert (q1["clip_start_sec"], q1["clip_end_sec"], q1["zero_length"]) == (30.0, 30.0, True)
    assert report.to_dict()["counts"] == {
        "clip_start_sec_int": 1,
        "null_template": 1,
        "missing_slot_keys": 1,
        "zero_length_window": 1,
    }


def test_unannotated_test_split_keeps_empty_query_and_indices(tmp_path: Path) -> None:
    data = spec_test()
    queries_of(data)[:] = [{"query": ""}, {"query": "Where is the red cup?"}, {"query": "What did I wash?"}]
    clips, queries, report = ingest_nlq(write(tmp_path, data, "nlq_test_unannotated.json"), "test")
    rows = queries.to_pylist()
    assert [r["query_idx"] for r in rows] == [0, 1, 2]
    assert [r["has_text"] for r in rows] == [False, True, True]
    assert [r["query"] for r in rows] == ["", "Where is the red cup?", "What did I wash?"]
    assert all(
        r["annotated"] is False and r["clip_start_sec"] is None and r["clip_end_sec"] is None for r in rows
    )
    assert all(r["zero_length"] is False and r["ends_after_clip"] is False for r in rows)
    assert clips.column("num_queries").to_pylist() == [3]
    # unannotated queries carry only "query": absent template/slots/raw_tags are not quirks there
    assert report.to_dict()["counts"] == {"clip_start_sec_int": 1, "empty_query_text": 1}


def test_annotated_test_split_is_detected(tmp_path: Path) -> None:
    data = spec()
    data["videos"][0]["split"] = "test"
    _, queries, report = ingest_nlq(write(tmp_path, data, "nlq_test_gt.json"), "test")
    assert queries.column("annotated").to_pylist() == [True, True]
    assert queries.column("clip_end_sec").to_pylist() == [20.0, 30.0]
    assert report.count("split_field_mismatch") == 0


def test_query_idx_preserved_across_textless_entry(tmp_path: Path) -> None:
    data = spec()
    qs = queries_of(data)
    textless = {k: v for k, v in qs[0].items() if k not in ("query", "template", "slot_x", "verb_x")}
    textless["raw_tags"] = []
    qs[:] = [qs[0], textless, {**qs[0], "query": None}, {**qs[0], "query": "  "}, qs[1]]
    _, queries, report = ingest_nlq(write(tmp_path, data), "val")
    assert queries.column("query_idx").to_pylist() == [0, 1, 2, 3, 4]
    assert queries.column("has_text").to_pylist() == [True, False, False, False, True]
    assert queries.column("query").to_pylist()[1:4] == [None, None, "  "]
    assert queries.column("query_clean").to_pylist()[1:4] == [None, None, ""]
    assert report.count("missing_query_key") == 1
    assert report.count("null_query_text") == 1
    assert report.count("empty_query_text") == 1
    assert report.count("missing_template_key") == 1


def test_clip_start_sec_int_and_float_zero(tmp_path: Path) -> None:
    data = spec()
    data["videos"][0]["clips"][0]["clip_start_sec"] = 0.0
    _, _, report = ingest_nlq(write(tmp_path, data), "val")
    assert report.count("clip_start_sec_int") == 0
    _, _, report = ingest_nlq(write(tmp_path, SPEC_VAL), "val")
    assert report.count("clip_start_sec_int") == 1


def test_v2_form_labels_are_cleaned(tmp_path: Path) -> None:
    data = spec()
    data.pop("manifest")
    data.update(version="2.0", date="230105", metadata="s3://example/metadata.csv")
    ann = data["videos"][0]["clips"][0]["annotations"][0]
    ann["request_uid"] = "req-1"
    ann["language_queries"][0].update(
        query="Query Text: Where did I put the knife ?",
        slot_x="X Text (Optional): knife",
        verb_x="X Verb (Optional):  put ",
        slot_y="Y Text (Optional):drawer",
        verb_y="Y Verb (Optional): open",
        answer="Answer (Optional): in the drawer",
    )
    ann["language_queries"][1]["query"] = "query text:"  # label only, other case
    _, queries, report = ingest_nlq(write(tmp_path, data), "val")
    q0, q1 = queries.to_pylist()
    assert q0["query"] == "Query Text: Where did I put the knife ?"
    assert q0["query_clean"] == "Where did I put the knife ?"
    assert (q0["slot_x"], q0["verb_x"], q0["slot_y"], q0["verb_y"]) == ("knife", "put", "drawer", "open")
    assert q0["answer"] == "in the drawer"
    assert q0["raw_tags"][2] == "knife"  # raw_tags untouched
    assert (q1["query"], q1["query_clean"], q1["has_text"]) == ("query text:", "", False)
    counts = report.to_dict()["counts"]
    assert counts["v2_form_label_query"] == 2
    for field in ("slot_x", "verb_x", "slot_y", "verb_y", "answer"):
        assert counts[f"v2_form_label_{field}"] == 1
    assert counts["empty_query_text"] == 1


@given(st.sampled_from(sorted(FORM_LABELS)), st.text(max_size=30))
def test_clean_form_label_property(field: str, text: str) -> None:
    cleaned, had = clean_form_label(field, FORM_LABELS[field] + text)
    assert had and cleaned == text.strip()
    if not text.lstrip().lower().startswith(FORM_LABELS[field].lower()):
        assert clean_form_label(field, text) == (text, False)


def test_window_flags_and_counts(tmp_path: Path) -> None:
    data = spec()
    qs = queries_of(data)
    base = qs[0]
    qs[:] = [
        {**base, "clip_start_sec": 470.0, "clip_end_sec": 480.3},  # ends after the clip
        {**base, "clip_start_sec": 470.0, "clip_end_sec": 480.0000005},  # within 1e-6
        {**base, "clip_start_sec": 5.0, "clip_end_sec": 5.0 + 1 / 30},  # zero length (boundary)
        {**base, "clip_start_sec": 5.0, "clip_end_sec": 5.05},
        {**base, "clip_start_sec": 5.02, "clip_end_sec": 5.0},  # start > end within 1/30: kept, zero length
    ]
    for q in qs:
        q.pop("video_start_frame")
        q.pop("video_end_frame")
    _, queries, report = ingest_nlq(write(tmp_path, data), "val")
    assert queries.column("ends_after_clip").to_pylist() == [True, False, False, False, False]
    assert queries.column("zero_length").to_pylist() == [False, False, True, False, True]
    assert queries.column("clip_end_sec").to_pylist()[0] == 480.3  # GT never altered
    assert report.count("window_ends_after_clip") == 1
    assert report.count("zero_length_window") == 2


def test_frame_fields_inconsistent(tmp_path: Path) -> None:
    data = spec()
    clip = data["videos"][0]["clips"][0]
    clip["clip_end_frame"] = 14401  # one frame off: fine
    _, _, report = ingest_nlq(write(tmp_path, data), "val")
    assert report.count("frame_fields_inconsistent") == 0
    clip["video_start_frame"] = clip["video_end_frame"] = 35999  # the real junk
    queries_of(data)[0]["video_end_frame"] = 2100  # query start == end frame
    queries_of(data)[1]["video_start_frame"] = "x"
    _, queries, report = ingest_nlq(write(tmp_path, data), "val")
    assert report.count("frame_fields_inconsistent") == 3  # once per record
    assert queries.column("clip_end_sec").to_pylist() == [20.0, 30.0]  # frames never used
    examples = report.to_dict()["examples"]["frame_fields_inconsistent"]
    assert "video_start_frame=35999" in examples[0] and CLIP in examples[0]


def test_empty_containers_and_split_mismatch(tmp_path: Path) -> None:
    data = spec()
    clip = data["videos"][0]["clips"][0]
    empty_clip = {**clip, "clip_uid": "c-empty", "annotations": []}
    no_queries = {
        **clip,
        "clip_uid": "c-noq",
        "annotations": [{"annotation_uid": "a-noq", "language_queries": []}],
    }
    data["videos"][0]["clips"] += [empty_clip, no_queries]
    data["videos"].append({"video_uid": "v-noclips", "split": "train", "clips": []})
    clips, queries, videos, report = astuple(read_nlq(write(tmp_path, data), "val"))
    assert videos.schema == NLQ_VIDEOS
    assert videos.to_pylist() == [
        {"split": "val", "video_uid": VIDEO, "num_clips": 3},
        {"split": "val", "video_uid": "v-noclips", "num_clips": 0},
    ]
    assert clips.column("clip_uid").to_pylist() == [CLIP, "c-empty", "c-noq"]
    assert clips.column("num_annotations").to_pylist() == [1, 0, 1]
    assert clips.column("num_queries").to_pylist() == [2, 0, 0]
    assert queries.num_rows == 2
    counts = report.to_dict()["counts"]
    assert counts["video_without_clips"] == 1
    assert counts["clip_without_annotations"] == 1
    assert counts["annotation_without_queries"] == 1
    assert counts["split_field_mismatch"] == 1
    assert report.to_dict()["examples"]["split_field_mismatch"] == ["video_uid=v-noclips split='train'"]


def test_absent_optional_keys_are_counted(tmp_path: Path) -> None:
    data = spec()
    q = queries_of(data)[0]
    for key in (
        "template",
        "raw_tags",
        "video_start_sec",
        "video_end_sec",
        "video_start_frame",
        "video_end_frame",
    ):
        q.pop(key)
    data["videos"][0]["clips"][0]["clip_end_sec"] = 470.0  # 10 s off the video window
    data["videos"][0]["clips"][0].pop("clip_end_frame")
    _, queries, report = ingest_nlq(write(tmp_path, data), "val")
    row = queries.to_pylist()[0]
    assert (row["template"], row["raw_tags"], row["video_start_sec"]) == (None, None, None)
    counts = report.to_dict()["counts"]
    assert counts["missing_template_key"] == 1
    assert counts["missing_raw_tags"] == 1
    assert counts["missing_query_video_sec"] == 1
    assert counts["clip_duration_mismatch"] == 1


def test_slightly_negative_times_are_clamped_flagged_and_counted(tmp_path: Path) -> None:
    """Real v1 val/test, v2 val: clip video_start_sec -4e-7 or -0.0123, a few negative query times."""
    data = spec()
    clip = data["videos"][0]["clips"][0]
    clip["video_start_sec"] = -3.999999999976245e-07
    second = {**copy.deepcopy(clip), "clip_uid": "c2", "video_start_sec": -0.012304733333333331}
    second["annotations"][0]["language_queries"][0].update(clip_start_sec=-0.01, video_start_sec=-0.0123)
    boundary = {**copy.deepcopy(clip), "clip_uid": "c3", "video_start_sec": -NEGATIVE_TIME_TOLERANCE_SEC}
    data["videos"][0]["clips"] += [second, boundary]
    clips, queries, report = ingest_nlq(write(tmp_path, data), "val")
    assert clips.column("video_start_sec").to_pylist() == [0.0, 0.0, 0.0]
    assert clips.column("negative_time_clamped").to_pylist() == [True, True, True]
    rows = queries.to_pylist()
    assert [r["negative_time_clamped"] for r in rows] == [False, False, True, False, False, False]
    assert (rows[2]["clip_start_sec"], rows[2]["video_start_sec"], rows[2]["clip_end_sec"]) == (
        0.0,
        0.0,
        20.0,
    )
    assert report.count("negative_time_clamped") == 4  # one per flagged row
    example = report.to_dict()["examples"]["negative_time_clamped"][2]
    assert "clip_uid=c2" in example and "query_idx=0" in example and "clip_start_sec=-0.01" in example

    clip["video_start_sec"] = -NEGATIVE_TIME_TOLERANCE_SEC - 1e-6  # beyond the tolerance: an error
    with pytest.raises(InputError, match="video_start_sec is negative") as info:
        ingest_nlq(write(tmp_path, data), "val")
    assert info.value.field == "video_start_sec" and CLIP in str(info.value)


def test_negative_times_reach_the_metric_unchanged(tmp_path: Path) -> None:
    """The evaluator reads the raw JSON like the official script: negative GT times are kept as they are."""
    from egonlq.evaluation.metric import load_ground_truth

    data = spec()
    queries_of(data)[0].update(clip_start_sec=-0.0123, video_start_sec=59.9877)
    data["videos"][0]["clips"][0]["video_start_sec"] = -3.999999999976245e-07
    path = write(tmp_path, data)
    _, queries, _ = ingest_nlq(path, "val")
    assert queries.column("clip_start_sec").to_pylist() == [0.0, 30.0]
    gt = load_ground_truth(path)
    assert [(q.start, q.end) for _, q in gt.iter_queries()] == [(-0.0123, 20.0), (30.0, 30.0)]


# ---------------------------------------------------------------------------------------------- errors


def _set(path: tuple, value):
    def mutate(data: dict) -> None:
        target = data
        for key in path[:-1]:
            target = target[key]
        if value is _DELETE:
            del target[path[-1]]
        else:
            target[path[-1]] = value

    return mutate


_DELETE = object()
V0 = ("videos", 0)
C0 = (*V0, "clips", 0)
A0 = (*C0, "annotations", 0)
Q0 = (*A0, "language_queries", 0)
Q_RECORD = (VIDEO, CLIP, ANN, "query_idx=0")


def _dup(path: tuple, **changes):
    def mutate(data: dict) -> None:
        container = data
        for key in path[:-1]:
            container = container[key]
        container.append({**copy.deepcopy(container[path[-1]]), **changes})

    return mutate


ERROR_CASES = {
    "videos missing": (_set(("videos",), _DELETE), (), "videos"),
    "videos not a list": (_set(("videos",), {"a": 1}), (), "videos"),
    "video not an object": (_set(V0, [1]), ("videos[0]",), None),
    "video_uid missing": (_set((*V0, "video_uid"), _DELETE), ("videos[0]",), "video_uid"),
    "clips not a list": (_set((*V0, "clips"), {}), (VIDEO,), "clips"),
    "clips missing": (_set((*V0, "clips"), _DELETE), (VIDEO,), "clips"),
    "clip_uid missing": (_set((*C0, "clip_uid"), _DELETE), (VIDEO, "clips[0]"), "clip_uid"),
    "clip video_start_sec missing": (
        _set((*C0, "video_start_sec"), _DELETE),
        (VIDEO, CLIP),
        "video_start_sec",
    ),
    "clip video_end_sec missing": (_set((*C0, "video_end_sec"), _DELETE), (VIDEO, CLIP), "video_end_sec"),
    "clip clip_end_sec missing": (_set((*C0, "clip_end_sec"), _DELETE), (VIDEO, CLIP), "clip_end_sec"),
    "clip time a string": (_set((*C0, "video_start_sec"), "60.0"), (VIDEO, CLIP), "video_start_sec"),
    "clip time a bool": (_set((*C0, "clip_end_sec"), True), (VIDEO, CLIP), "clip_end_sec"),
    "clip time negative": (_set((*C0, "video_start_sec"), -1.0), (VIDEO, CLIP), "video_start_sec"),
    "clip window inverted": (_set((*C0, "video_start_sec"), 600.0), (VIDEO, CLIP), "video_end_sec"),
    "clip_start_sec not 0": (_set((*C0, "clip_start_sec"), 5), (VIDEO, CLIP), "clip_start_sec"),
    "annotations missing": (_set((*C0, "annotations"), _DELETE), (VIDEO, CLIP), "annotations"),
    "annotation_uid missing": (
        _set((*A0, "annotation_uid"), _DELETE),
        (CLIP, "annotations[0]"),
        "annotation_uid",
    ),
    "language_queries missing": (_set((*A0, "language_queries"), _DELETE), (CLIP, ANN), "language_queries"),
    "language_queries not a list": (_set((*A0, "language_queries"), "q"), (CLIP, ANN), "language_queries"),
    "query not an object": (_set(Q0, ["Where?"]), Q_RECORD, None),
    "query clip_start_sec missing": (_set((*Q0, "clip_start_sec"), _DELETE), Q_RECORD, "clip_start_sec"),
    "query clip_end_sec missing": (_set((*Q0, "clip_end_sec"), _DELETE), Q_RECORD, "clip_end_sec"),
    "query time a string": (_set((*Q0, "clip_start_sec"), "10.0"), Q_RECORD, "clip_start_sec"),
    "query time a bool": (_set((*Q0, "clip_end_sec"), False), Q_RECORD, "clip_end_sec"),
    "query time null": (_set((*Q0, "clip_end_sec"), None), Q_RECORD, "clip_end_sec"),
    "query time negative": (_set((*Q0, "clip_start_sec"), -0.51), Q_RECORD, "clip_start_sec"),
    "query time NaN": (_set((*Q0, "clip_start_sec"), float("nan")), Q_RECORD, "clip_start_sec"),
    "query time Infinity": (_set((*Q0, "clip_end_sec"), float("inf")), Q_RECORD, "clip_end_sec"),
    "query window inverted": (_set((*Q0, "clip_start_sec"), 25.0), Q_RECORD, "clip_end_sec"),
    "query video window inverted": (_set((*Q0, "video_start_sec"), 95.0), Q_RECORD, "video_end_sec"),
    "query text a number": (_set((*Q0, "query"), 7), Q_RECORD, "query"),
    "slot a list": (_set((*Q0, "slot_x"), ["knife"]), Q_RECORD, "slot_x"),
    "raw_tags not a list": (_set((*Q0, "raw_tags"), "knife"), Q_RECORD, "raw_tags"),
    "raw_tags item a number": (_set((*Q0, "raw_tags"), [1]), Q_RECORD, "raw_tags"),
    "duplicate video_uid": (_dup(V0), (VIDEO,), "video_uid"),
    "duplicate clip_uid": (_dup(C0), (VIDEO, CLIP), "clip_uid"),
    "duplicate annotation_uid": (_dup(A0), (CLIP, ANN), "annotation_uid"),
    "duplicate clip_uid across videos": (
        _dup(V0, video_uid="other-video"),
        ("other-video", CLIP),
        "clip_uid",
    ),
}


@pytest.mark.parametrize("case", sorted(ERROR_CASES))
def test_errors_name_file_record_and_field(tmp_path: Path, case: str) -> None:
    mutate, record_parts, field = ERROR_CASES[case]
    data = spec()
    mutate(data)
    path = write(tmp_path, data, "nlq_bad.json")
    with pytest.raises(InputError) as info:
        ingest_nlq(path, "val")
    message = str(info.value)
    assert "nlq_bad.json" in message
    for part in record_parts:
        assert part in message
    if field is not None:
        assert f"'{field}'" in message
        assert info.value.field == field


@pytest.mark.parametrize(
    "text, what",
    [('{"videos": [', "malformed JSON"), ("[1, 2]", "top level"), ("", "malformed JSON")],
)
def test_file_level_errors(tmp_path: Path, text: str, what: str) -> None:
    path = write(tmp_path, text, "nlq_broken.json")
    with pytest.raises(InputError, match=what) as info:
        ingest_nlq(path, "val")
    assert "nlq_broken.json" in str(info.value)


def test_all_errors_of_a_file_are_listed(tmp_path: Path) -> None:
    data = spec()
    queries_of(data)[0]["clip_start_sec"] = "10"
    queries_of(data)[1]["clip_end_sec"] = -3.0
    data["videos"][0]["clips"].append({"clip_uid": "c2", "video_start_sec": 0.0, "video_end_sec": 1.0})
    with pytest.raises(InputError) as info:
        ingest_nlq(write(tmp_path, data), "val")
    message = str(info.value)
    assert message.count("nlq_val.json") == 1 and "4 problems" in message
    assert "query_idx=0" in message and "query_idx=1" in message
    assert "clip_uid=c2" in message and "'clip_end_sec'" in message and "'annotations'" in message
    assert info.value.field == "clip_start_sec"  # attributes of the first error


def test_errors_below_a_bad_record_are_listed_too(tmp_path: Path) -> None:
    """A bad clip (or video, or duplicate) does not hide the errors of its annotations and queries."""
    data = spec()
    clip = data["videos"][0]["clips"][0]
    del clip["clip_end_sec"]
    queries_of(data)[0]["clip_start_sec"] = "10"
    duplicate = copy.deepcopy(clip)
    duplicate["annotations"][0]["language_queries"][1]["clip_end_sec"] = -2.0
    data["videos"][0]["clips"].append(duplicate)
    nameless = copy.deepcopy(data["videos"][0])
    del nameless["video_uid"]
    nameless["clips"] = [{**copy.deepcopy(clip), "clip_uid": "c9", "clip_end_sec": 480.0}]
    nameless["clips"][0]["annotations"][0]["language_queries"][0].update(
        clip_start_sec=10.0, clip_end_sec=None
    )
    data["videos"].append(nameless)
    with pytest.raises(InputError) as info:
        ingest_nlq(write(tmp_path, data), "val")
    lines = str(info.value).splitlines()[1:]
    expected = [
        (CLIP, "'clip_end_sec'", "is missing"),
        (CLIP, "query_idx=0", "'clip_start_sec'"),
        (CLIP, "'clip_uid'", "duplicate clip_uid"),
        (CLIP, "'clip_end_sec'", "is missing"),
        (CLIP, "query_idx=0", "'clip_start_sec'"),
        (CLIP, "query_idx=1", "'clip_end_sec'"),
        ("videos[1]", "'video_uid'", "missing"),
        ("videos[1], clip_uid=c9", "query_idx=0", "'clip_end_sec'"),
    ]
    assert len(lines) == len(expected), lines
    for line, parts in zip(lines, expected, strict=True):
        assert all(part in line for part in parts), (line, parts)


def test_unknown_split_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="split"):
        ingest_nlq(write(tmp_path, SPEC_VAL), "validation")


# ---------------------------------------------------------------------------------------------- reports


def test_quirk_report_counts_examples_and_merge() -> None:
    a = QuirkReport()
    for i in range(7):
        a.add("zero_length_window", f"q{i}")
    a.add("null_template", "t0", n=3)
    b = QuirkReport()
    b.add("null_template", "t1")
    b.add_many("status:done", (f"v{i}" for i in range(100)), 100)
    a.merge(b)
    d = a.to_dict()
    assert d["counts"] == {"null_template": 4, "status:done": 100, "zero_length_window": 7}
    assert d["examples"]["zero_length_window"] == ["q0", "q1", "q2", "q3", "q4"]
    assert d["examples"]["null_template"] == ["t0", "t1"]
    assert len(d["examples"]["status:done"]) == 5
    assert a.count("missing") == 0 and a.count("status:done") == 100
    a.add("never", "x", n=0)
    assert "never" not in a.to_dict()["counts"]


def test_error_collector_single_and_many(tmp_path: Path) -> None:
    errors = ErrorCollector(tmp_path / "f.json")
    errors.raise_if_any()  # nothing collected: no error
    errors.add("bad", record="clip_uid=c1", field="clip_end_sec", expected="a number")
    with pytest.raises(InputError) as info:
        errors.raise_if_any()
    assert str(info.value) == (
        f"{tmp_path / 'f.json'}: bad [record clip_uid=c1] [field 'clip_end_sec'] (expected a number)"
    )
    for i in range(60):
        errors.add(f"bad {i}", record=f"r{i}", field="x")
    with pytest.raises(InputError, match=r"61 problems(.|\n)*and 11 more"):
        errors.raise_if_any()
