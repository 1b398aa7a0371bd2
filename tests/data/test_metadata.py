"""ego4d.json ingest: values, ignored extra fields, counted quirks, errors naming video_uid and field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from egonlq.data.metadata import ingest_metadata
from egonlq.data.tables import VIDEOS
from egonlq.errors import InputError


def video(uid: str, duration: float = 480.0, **meta) -> dict:
    return {
        "video_uid": uid,
        "duration_sec": duration,
        "video_metadata": {"fps": 30.0, "num_frames": round(duration * 30), **meta},
    }


def write(tmp_path: Path, data: object, name: str = "ego4d.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(data) if not isinstance(data, str) else data, encoding="utf-8")
    return path


def test_values_and_extra_fields_ignored(tmp_path: Path) -> None:
    real_like = video(
        "v1", 128.033333, video_codec="h264", display_resolution_width=1920, mp4_duration_sec=128.1
    )
    real_like.update(scenarios=["Cooking"], split_em="val", is_stereo=False, s3_path="s3://x/v1.mp4")
    data = {"date": "2022-02-16", "version": "v1", "videos": [real_like, video("v2", 1200.5)], "concepts": {}}
    table, report = ingest_metadata(write(tmp_path, data))
    assert table.schema == VIDEOS
    assert table.to_pylist() == [
        {"video_uid": "v1", "duration_sec": 128.033333, "fps": 30.0, "num_frames": 3841},
        {"video_uid": "v2", "duration_sec": 1200.5, "fps": 30.0, "num_frames": 36015},
    ]
    assert report.to_dict() == {"counts": {}, "examples": {}}


def test_quirks_are_counted(tmp_path: Path) -> None:
    videos = [
        video("ok", 100.0),
        {"video_uid": "fps25", "duration_sec": 100.0, "video_metadata": {"fps": 25.0, "num_frames": 2500}},
        {"video_uid": "short", "duration_sec": 100.0, "video_metadata": {"fps": 30.0, "num_frames": 2900}},
        {"video_uid": "int-fps", "duration_sec": 10, "video_metadata": {"fps": 30, "num_frames": 300}},
    ]
    table, report = ingest_metadata(write(tmp_path, {"videos": videos}))
    assert table.num_rows == 4
    assert table.column("fps").to_pylist() == [30.0, 25.0, 30.0, 30.0]
    assert report.to_dict()["counts"] == {"duration_frames_mismatch": 1, "fps_not_30": 1}
    assert report.to_dict()["examples"]["duration_frames_mismatch"][0].startswith("video_uid=short")


def test_empty_videos_list(tmp_path: Path) -> None:
    table, _ = ingest_metadata(write(tmp_path, {"videos": []}))
    assert table.num_rows == 0 and table.schema == VIDEOS


def _without(key: str) -> dict:
    v = video("v-bad")
    del v[key]
    return v


def _meta(**changes) -> dict:
    v = video("v-bad")
    for key, value in changes.items():
        if value is None:
            del v["video_metadata"][key]
        else:
            v["video_metadata"][key] = value
    return v


@pytest.mark.parametrize(
    "bad, field",
    [
        (_without("duration_sec"), "duration_sec"),
        (_without("video_metadata"), "video_metadata"),
        ({**video("v-bad"), "video_metadata": None}, "video_metadata"),
        (_meta(fps=None), "video_metadata.fps"),
        (_meta(num_frames=None), "video_metadata.num_frames"),
        ({**video("v-bad"), "duration_sec": "480"}, "duration_sec"),
        ({**video("v-bad"), "duration_sec": True}, "duration_sec"),
        ({**video("v-bad"), "duration_sec": -1.0}, "duration_sec"),
        (_meta(fps=0.0), "video_metadata.fps"),
        (_meta(fps="30"), "video_metadata.fps"),
        (_meta(num_frames=14400.0), "video_metadata.num_frames"),
        (_meta(num_frames=True), "video_metadata.num_frames"),
        (_meta(num_frames=-5), "video_metadata.num_frames"),
    ],
)
def test_bad_fields_name_video_and_field(tmp_path: Path, bad: dict, field: str) -> None:
    path = write(tmp_path, {"videos": [video("v-good"), bad]})
    with pytest.raises(InputError) as info:
        ingest_metadata(path)
    message = str(info.value)
    assert "ego4d.json" in message and "video_uid=v-bad" in message and f"'{field}'" in message
    assert info.value.field == field and info.value.record == "video_uid=v-bad"


def test_nan_duration_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, '{"videos": [{"video_uid": "v", "duration_sec": NaN, "video_metadata": {}}]}')
    with pytest.raises(InputError, match="duration_sec"):
        ingest_metadata(path)


def test_duplicate_and_missing_uids(tmp_path: Path) -> None:
    path = write(tmp_path, {"videos": [video("v1"), video("v1"), {"duration_sec": 1.0}, "v3"]})
    with pytest.raises(InputError) as info:
        ingest_metadata(path)
    message = str(info.value)
    assert "3 problems" in message
    assert "duplicate video_uid [record video_uid=v1]" in message
    assert "[record videos[2]] [field 'video_uid']" in message
    assert "[record videos[3]]" in message


@pytest.mark.parametrize(
    "text, what",
    [
        ("{", "malformed JSON at line 1"),
        ("[]", "top level"),
        ('{"video": []}', "'videos' is missing"),
        ('{"videos": {}}', "'videos' is a dict"),
    ],
)
def test_file_level_errors(tmp_path: Path, text: str, what: str) -> None:
    with pytest.raises(InputError, match=what) as info:
        ingest_metadata(write(tmp_path, text))
    assert "ego4d.json" in str(info.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="file not found"):
        ingest_metadata(tmp_path / "nope.json")
