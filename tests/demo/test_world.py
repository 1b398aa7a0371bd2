"""The demo world: official formats, planted quirks, a learnable signal, determinism (tiny preset, fast)."""

from __future__ import annotations

import ast
import hashlib
import json
import re
from pathlib import Path

import decord
import jsonschema
import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from egonlq.cli import main
from egonlq.data.annotations import ingest_nlq
from egonlq.data.egoclip import alpha_of, egoclip_windows, mean_gaps
from egonlq.data.feature_sets import resolve_feature_set
from egonlq.demo import world as dw
from egonlq.demo.model import PRESETS, vocabulary_vectors
from egonlq.demo.nlq import QUIRK_RATES
from egonlq.demo.render import OBJECT_STYLE, PLACE_STYLE, object_mask, render_frame, render_frame_count
from egonlq.demo.vocabulary import OBJECTS, PEOPLE, PLACES, TEMPLATES, VERB_FORMS, VERBS, plural
from egonlq.demo.world import build_world, make_world
from egonlq.imports import imports_of, module_path
from egonlq.timegrid import OFFICIAL, num_features

# The 13 templates as written in ego4d-formats.md 2.3, kept here independently of the module.
OFFICIAL_TEMPLATES = {
    "Objects: Where is object X before / after event Y?",
    "Place: Where did I put X?",
    "Objects: What did I put in X?",
    "Objects: Where is object X?",
    "Objects: What X did I Y?",
    "Objects: What X is Y?",
    "Objects: How many X\u2019s? (quantity question)",
    "Objects: In what location did I see object X ?",
    "Objects: State of an object",
    "People: Who did I interact with when I did activity X?",
    "People: Who did I talk to in location X?",
    "Objects: Where is my object X?",
    "People: When did I talk to or interact with person with role X?",
}
ANN = Path("v1") / "annotations"
NLQ_FILES = {"train": "nlq_train.json", "val": "nlq_val.json", "test": "nlq_test_gt.json"}


# ---------------------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("tiny_a")
    return out, build_world(out, preset="tiny", seed=0)


@pytest.fixture(scope="module")
def tiny_again(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("tiny_b")
    return out, build_world(out, preset="tiny", seed=0)


@pytest.fixture(scope="module")
def tiny_seed1(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("tiny_seed1")
    return out, build_world(out, preset="tiny", seed=1, feature_name="f32", feature_dim=32, render_videos=0)


@pytest.fixture(scope="module")
def mid(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """The demo preset's annotations and narrations (no features, no videos): for rates and coverage."""
    out = tmp_path_factory.mktemp("demo")
    return out, build_world(out, preset="demo", seed=0, write_features=False, render_videos=0)


def load(root: Path, name: str) -> dict:
    return json.loads((root / ANN / name).read_text(encoding="utf-8"))


def clips_of(doc: dict) -> list[dict]:
    return [c for v in doc["videos"] for c in v["clips"]]


def queries_of(doc: dict) -> list[tuple[dict, dict]]:
    """(clip, query) for every language query of an annotation file."""
    return [(c, q) for c in clips_of(doc) for a in c["annotations"] for q in a["language_queries"]]


def file_hashes(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


# ---------------------------------------------------------------------------------------------- schemas

NUM = {"type": "number"}
INT = {"type": "integer"}
STR = {"type": "string"}
STR_OR_NULL = {"type": ["string", "null"]}
UUID = {"type": "string", "pattern": "^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$"}


def obj(required: dict, optional: dict | None = None) -> dict:
    return {
        "type": "object",
        "properties": {**required, **(optional or {})},
        "required": list(required),
        "additionalProperties": False,
    }


ANNOTATED_QUERY = obj(
    {
        "clip_start_sec": NUM,
        "clip_end_sec": NUM,
        "video_start_sec": NUM,
        "video_end_sec": NUM,
        "video_start_frame": INT,
        "video_end_frame": INT,
        "raw_tags": {"type": "array", "items": STR_OR_NULL, "maxItems": 6},
    },
    {
        "template": STR_OR_NULL,
        "query": STR_OR_NULL,
        "slot_x": STR_OR_NULL,
        "verb_x": STR_OR_NULL,
        "slot_y": STR_OR_NULL,
        "verb_y": STR_OR_NULL,
    },
)


def nlq_schema(query: dict, split: str) -> dict:
    clip = obj(
        {
            "clip_uid": UUID,
            "video_start_sec": NUM,
            "video_end_sec": NUM,
            "video_start_frame": INT,
            "video_end_frame": INT,
            "clip_start_sec": {"type": "integer", "const": 0},
            "clip_end_sec": NUM,
            "clip_start_frame": {"const": 0},
            "clip_end_frame": INT,
            "source_clip_uid": STR,
            "annotations": {
                "type": "array",
                "minItems": 1,
                "maxItems": 2,
                "items": obj(
                    {
                        "annotation_uid": UUID,
                        "language_queries": {"type": "array", "minItems": 1, "items": query},
                    }
                ),
            },
        }
    )
    video = obj({"video_uid": UUID, "split": {"const": split}, "clips": {"type": "array", "items": clip}})
    return obj(
        {
            "version": {"const": "1"},
            "date": {"const": "220216"},
            "description": STR,
            "manifest": STR,
            "videos": {"type": "array", "items": video},
        }
    )


EGO4D_SCHEMA = obj(
    {
        "videos": {
            "type": "array",
            "items": obj(
                {
                    "video_uid": UUID,
                    "duration_sec": NUM,
                    "video_metadata": obj({"fps": {"const": 30.0}, "num_frames": INT}),
                }
            ),
        }
    }
)
EM_SCHEMA = obj(
    {
        "version": {"const": "1"},
        "date": STR,
        "description": STR,
        "manifest": STR,
        "videos": {
            "type": "array",
            "minItems": 1,
            "items": obj(
                {
                    "video_uid": UUID,
                    "split": {"const": "train"},
                    "clips": {
                        "type": "array",
                        "minItems": 1,
                        "items": obj(
                            {
                                "clip_uid": UUID,
                                "video_start_sec": NUM,
                                "video_end_sec": NUM,
                                "video_start_frame": INT,
                                "video_end_frame": INT,
                            }
                        ),
                    },
                }
            ),
        },
    }
)
_PASS = obj(
    {
        "narrations": {
            "type": "array",
            "items": obj(
                {
                    "timestamp_sec": NUM,
                    "timestamp_frame": INT,
                    "_unmapped_timestamp_sec": NUM,
                    "narration_text": STR,
                    "annotation_uid": UUID,
                }
            ),
        },
        "summaries": {
            "type": "array",
            "minItems": 1,
            "maxItems": 1,
            "items": obj({"start_sec": NUM, "end_sec": NUM, "summary_text": STR, "annotation_uid": UUID}),
        },
    }
)
NARRATION_SCHEMA = {
    "type": "object",
    "propertyNames": UUID,
    "additionalProperties": obj({"narration_pass_1": _PASS, "status": STR}, {"narration_pass_2": _PASS}),
}


# ---------------------------------------------------------------------------------------------- tests


def test_layout_and_determinism(tiny, tiny_again, tiny_seed1) -> None:
    (a, stats), (b, _), (c, _) = tiny, tiny_again, tiny_seed1
    hashes = file_hashes(a)
    expected = {"ego4d.json", "egoclip.csv"} | {
        str(ANN / n)
        for n in (
            "nlq_train.json",
            "nlq_val.json",
            "nlq_test_unannotated.json",
            "nlq_test_gt.json",
            "vq_train.json",
            "moments_train.json",
            "narration.json",
        )
    }
    assert expected <= set(hashes)
    assert (
        sum(k.startswith("v1/demo_features/") and k.endswith(".pt") for k in hashes) == stats["videos"] == 14
    )
    assert (
        sum(k.startswith("v1/full_scale/") and k.endswith(".mp4") for k in hashes)
        == stats["rendered_videos"]
        == 1
    )
    assert len(hashes) == stats["files_written"]
    assert sum((a / k).stat().st_size for k in hashes) == stats["bytes_written"]
    # the features' provenance: a sidecar on the official grid, read back as the configured set
    sidecar = resolve_feature_set(a / "v1" / "demo_features", "demo_features")
    assert (sidecar.grid, sidecar.dim, sidecar.origin) == (OFFICIAL, stats["feature_dim"], "sidecar")
    assert not [k for k in hashes if k.endswith(".tmp")]
    again = file_hashes(b)  # same seed: byte-identical, features and mp4 included
    differ = sorted(k for k in hashes.keys() | again.keys() if hashes.get(k) != again.get(k))
    assert not differ, f"the same seed wrote different bytes in {differ}"
    other = file_hashes(c)
    for name in ("ego4d.json", str(ANN / "nlq_train.json"), str(ANN / "narration.json"), "egoclip.csv"):
        assert other[name] != hashes[name]
    uids = {v["video_uid"] for v in json.loads((a / "ego4d.json").read_text())["videos"]}
    assert uids.isdisjoint(v["video_uid"] for v in json.loads((c / "ego4d.json").read_text())["videos"])


def test_every_file_matches_the_official_schema(tiny) -> None:
    root, _ = tiny
    jsonschema.validate(json.loads((root / "ego4d.json").read_text()), EGO4D_SCHEMA)
    for split, name in NLQ_FILES.items():
        jsonschema.validate(load(root, name), nlq_schema(ANNOTATED_QUERY, split))
    only_query = obj({}, {"query": STR})
    test = load(root, "nlq_test_unannotated.json")
    jsonschema.validate(test, nlq_schema(only_query, "test"))
    assert all(q == {"query": q["query"]} for _, q in queries_of(test))
    for name in ("vq_train.json", "moments_train.json"):
        jsonschema.validate(load(root, name), EM_SCHEMA)
    jsonschema.validate(load(root, "narration.json"), NARRATION_SCHEMA)


def test_test_split_hides_exactly_the_ground_truth(tiny) -> None:
    root, _ = tiny
    gt, hidden = load(root, "nlq_test_gt.json"), load(root, "nlq_test_unannotated.json")
    assert [c["clip_uid"] for c in clips_of(gt)] == [c["clip_uid"] for c in clips_of(hidden)]
    assert [q.get("query") for _, q in queries_of(gt)] == [q["query"] for _, q in queries_of(hidden)]
    assert "" in [q["query"] for _, q in queries_of(hidden)]  # the real test file has one empty query


def test_videos_roles_and_metadata(tiny) -> None:
    root, stats = tiny
    meta = json.loads((root / "ego4d.json").read_text())["videos"]
    for v in meta:
        assert v["video_metadata"]["num_frames"] == round(v["duration_sec"] * 30)
    all_uids = {v["video_uid"] for v in meta}
    nlq = {s: {v["video_uid"] for v in load(root, n)["videos"]} for s, n in NLQ_FILES.items()}
    assert nlq["train"].isdisjoint(nlq["val"]) and nlq["val"].isdisjoint(nlq["test"])
    assert nlq["train"].isdisjoint(nlq["test"])
    assert [len(nlq[s]) for s in ("train", "val", "test")] == [4, 3, 2]
    for split in ("train", "val", "test"):  # the real splits have videos without clips
        assert any(not v["clips"] for v in load(root, NLQ_FILES[split])["videos"])
    em = {v["video_uid"] for n in ("vq_train.json", "moments_train.json") for v in load(root, n)["videos"]}
    assert len(em - nlq["train"]) == stats["videos_em_train"] == 2
    assert set(load(root, "narration.json")) == all_uids  # every video is narrated
    assert len(all_uids - em - set().union(*nlq.values())) == stats["videos_narration_only"] == 3


def test_em_clips_agree_with_nlq_train_clips(mid) -> None:
    root, stats = mid
    nlq = {c["clip_uid"]: c for c in clips_of(load(root, "nlq_train.json"))}
    shared = 0
    for name in ("vq_train.json", "moments_train.json"):
        for clip in clips_of(load(root, name)):
            if clip["clip_uid"] in nlq:  # NaQ asserts equal times for a clip in several tasks
                shared += 1
                assert clip["video_start_sec"] == nlq[clip["clip_uid"]]["video_start_sec"]
                assert clip["video_end_sec"] == nlq[clip["clip_uid"]]["video_end_sec"]
    assert shared > 0
    assert stats["clips_vq_train"] > 0 and stats["clips_moments_train"] > 0


def test_features_have_the_official_row_count(tiny, tiny_seed1) -> None:
    for (root, _), name, dim in ((tiny, "demo_features", 256), (tiny_seed1, "f32", 32)):
        meta = json.loads((root / "ego4d.json").read_text())["videos"]
        for v in meta:
            x = torch.load(root / "v1" / name / f"{v['video_uid']}.pt")
            assert x.dtype == torch.float16
            assert tuple(x.shape) == (num_features(v["video_metadata"]["num_frames"]), dim)
            assert torch.isfinite(x.float()).all()


def test_features_carry_the_object_signal(tiny) -> None:
    root, _ = tiny
    world = make_world("tiny", 0)
    objects = vocabulary_vectors(0, 256)["objects"]
    own, others = [], []
    for video in world.videos:
        x = torch.load(root / "v1" / "demo_features" / f"{video.uid}.pt").float().numpy()
        _, ev = video.state_at(np.arange(len(x)) / 1.875)
        x = x[ev >= 0] / np.linalg.norm(x[ev >= 0], axis=1, keepdims=True)
        cos = x @ objects.T  # [rows, objects]
        obj = video.ev_obj[ev[ev >= 0]]
        own.append(cos[np.arange(len(obj)), obj])
        mask = np.ones_like(cos, dtype=bool)
        mask[np.arange(len(obj)), obj] = False
        others.append(cos[mask])
    own, others = np.concatenate(own), np.concatenate(others)
    assert own.mean() > 0.3 and abs(others.mean()) < 0.02
    assert own.mean() - others.mean() > 5 * others.std()  # clearly separable, yet noisy per row
    assert (own < 0.2).mean() < 0.1 and own.std() > 0.02


def test_nlq_windows_lie_inside_their_clips_except_counted_quirks(mid) -> None:
    root, stats = mid
    after, zero, offset, negative = [], 0, 0, []
    for name in NLQ_FILES.values():
        for clip, q in queries_of(load(root, name)):
            assert abs(clip["clip_end_sec"] - (clip["video_end_sec"] - clip["video_start_sec"])) <= 0.1
            s, e = q["clip_start_sec"], q["clip_end_sec"]
            assert -0.5 <= s <= e
            if s < 0:
                negative.append(s)
            if e > clip["clip_end_sec"]:
                after.append(e - clip["clip_end_sec"])
            zero += abs(e - s) <= 1 / 30
            offset += abs(q["video_start_sec"] - (clip["video_start_sec"] + s)) > 1e-4
    assert len(after) == stats["quirk_ends_after_clip"] >= 3 and max(after) <= 0.58
    assert zero == stats["quirk_zero_length"] + stats["quirk_bare_query"]
    assert offset == stats["quirk_video_sec_offset"] > 0
    assert len(negative) == stats["quirk_negative_query_start"] >= 3 and min(negative) > -0.02
    queries = stats["queries_train"] + stats["queries_val"] + stats["queries_test"]
    assert 0.06 < stats["quirk_zero_length"] / queries < 0.12  # real: 8.7-8.9 %


def test_negative_times_are_planted_at_the_real_rate_and_ingest_clamps_them(tiny, mid) -> None:
    """~3-4 % of val/test clips start slightly before 0 (as in real v1 val/test, v2 val), a few queries too;
    ingest clamps each to 0 and flags its row, one count per row."""
    for root, stats in (tiny, mid):
        flagged = 0
        for split, name in NLQ_FILES.items():
            clips, queries, report = ingest_nlq(root / ANN / name, split)
            rows = (
                clips.column("negative_time_clamped").to_pylist()
                + queries.column("negative_time_clamped").to_pylist()
            )
            assert sum(rows) == report.count("negative_time_clamped")
            assert min(clips.column("video_start_sec").to_pylist()) == 0.0
            flagged += sum(rows)
        assert flagged == stats["quirk_negative_clip_start"] + stats["quirk_negative_query_start"]
        starts = [
            c["video_start_sec"]
            for n in ("nlq_val.json", "nlq_test_gt.json")
            for c in clips_of(load(root, n))
        ]
        negative = [s for s in starts if s < 0]
        assert len(negative) == stats["quirk_negative_clip_start"] >= 2
        assert set(negative) <= {-3.999999999976245e-07, -0.012304733333333331}
    starts = [
        c["video_start_sec"] for n in ("nlq_val.json", "nlq_test_gt.json") for c in clips_of(load(mid[0], n))
    ]
    assert 0.02 < len([s for s in starts if s < 0]) / len(starts) < 0.05
    assert not [c for c in clips_of(load(mid[0], "nlq_train.json")) if c["video_start_sec"] < 0]  # NaQ's pool


def test_planted_quirks_are_present_and_counted(tiny, mid) -> None:
    for _, stats in (tiny, mid):
        missing = [k for k in QUIRK_RATES if stats[f"quirk_{k}"] == 0]
        assert not missing
    root, stats = mid
    counts = {
        "missing": 0,
        "empty": 0,
        "null_template": 0,
        "no_slot_x": 0,
        "no_verb_x": 0,
        "bare": 0,
        "junk_frames": 0,
        "no_clips": 0,
    }
    for name in NLQ_FILES.values():
        doc = load(root, name)
        counts["no_clips"] += sum(not v["clips"] for v in doc["videos"])
        for clip in clips_of(doc):
            assert type(clip["clip_start_sec"]) is int and clip["clip_start_sec"] == 0
            counts["junk_frames"] += clip["video_start_frame"] == clip["video_end_frame"]
        for _, q in queries_of(doc):
            counts["missing"] += "query" not in q and "template" in q
            counts["bare"] += q["raw_tags"] == [] and set(q) == {
                "clip_start_sec",
                "clip_end_sec",
                "video_start_sec",
                "video_end_sec",
                "video_start_frame",
                "video_end_frame",
                "raw_tags",
            }
            counts["empty"] += q.get("query") == ""
            counts["null_template"] += "template" in q and q["template"] is None
            counts["no_slot_x"] += "template" in q and "slot_x" not in q
            counts["no_verb_x"] += "template" in q and "verb_x" not in q
    assert counts["missing"] == stats["quirk_missing_query_key"] >= 2
    assert counts["bare"] == stats["quirk_bare_query"] >= 2
    assert counts["empty"] == stats["quirk_empty_query"] >= 2
    assert counts["null_template"] == stats["quirk_null_template"]
    assert counts["no_slot_x"] == stats["quirk_absent_slot_x"]
    assert counts["no_verb_x"] == stats["quirk_absent_verb_x"]
    assert counts["junk_frames"] == stats["quirk_junk_clip_frames"]
    assert counts["no_clips"] == stats["quirk_video_no_clips"] == 3


def test_templates_are_verbatim_and_slots_filled(mid) -> None:
    assert set(TEMPLATES) == OFFICIAL_TEMPLATES and len(TEMPLATES) == 13
    root, _ = mid
    used = set()
    for name in NLQ_FILES.values():
        for _, q in queries_of(load(root, name)):
            if q.get("template") is None or not q.get("query"):
                continue
            used.add(q["template"])
            tags = q["raw_tags"]
            assert tags[:2] == [q["template"], q["query"]]
            keys = ["template", "query", "slot_x", "verb_x", "slot_y", "verb_y"][: len(tags)]
            assert tags == [q.get(k) for k in keys]
            if "slot_y" in q:
                assert q["template"] in {TEMPLATES[0], TEMPLATES[5]}
    assert used == OFFICIAL_TEMPLATES


def test_narrations_look_like_ego4d(tiny) -> None:
    root, stats = tiny
    narr = load(root, "narration.json")
    texts, unsorted, passes, second = [], 0, 0, 0
    for entry in narr.values():
        second += "narration_pass_2" in entry
        for key in ("narration_pass_1", "narration_pass_2"):
            if key not in entry:
                continue
            passes += 1
            items = entry[key]["narrations"]
            times = [n["timestamp_sec"] for n in items]
            unsorted += times != sorted(times)
            assert all(n["timestamp_frame"] == round(n["timestamp_sec"] * 30) for n in items)
            assert entry[key]["summaries"][0]["summary_text"].lower().startswith("#summary c ")
            texts += [n["narration_text"] for n in items]
    assert unsorted == passes  # no pass is stored in time order
    assert 0 < second < len(narr) and second == stats["videos_with_pass_2"]
    assert len(texts) == stats["narrations"]
    assert all(re.match(r"#[CcOo] ", t) for t in texts)
    assert any(t.startswith("#O ") for t in texts) and any(t.startswith(("#c ", "#o ")) for t in texts)
    assert any("#unsure" in t and not t.endswith("#unsure") for t in texts)  # mid-sentence
    assert any(t.endswith(" #unsure") for t in texts)
    assert all(re.fullmatch(r"[#A-Za-z ]+", t) for t in texts)  # safe for hand-written JSON and TSV


def test_narration_only_videos_speak_the_queries_vocabulary(mid) -> None:
    root, _ = mid
    nlq = {v["video_uid"] for n in NLQ_FILES.values() for v in load(root, n)["videos"]}
    em = {v["video_uid"] for n in ("vq_train.json", "moments_train.json") for v in load(root, n)["videos"]}
    narr = load(root, "narration.json")
    words = " ".join(
        n["narration_text"]
        for uid, e in narr.items()
        if uid not in nlq | em
        for p in ("narration_pass_1", "narration_pass_2")
        if p in e
        for n in e[p]["narrations"]
    )
    vocabulary = set(OBJECTS) | set(PLACES) | set(PEOPLE)
    asked = {
        q["slot_x"]
        for n in NLQ_FILES.values()
        for _, q in queries_of(load(root, n))
        if q.get("slot_x") in vocabulary
    }
    assert len(asked) > 40
    assert not [w for w in asked if f" {w}" not in words]
    verbs = {VERBS[i] for i in range(len(VERBS))}
    assert all(f" {VERB_FORMS[v][0]} " in words for v in verbs)


def test_egoclip_rows_follow_the_window_rule(tiny) -> None:
    root, stats = tiny
    df = pd.read_csv(root / "egoclip.csv", sep="\t")
    assert list(df.columns) == [
        "clip_idx",
        "video_uid",
        "video_dur",
        "narration_source",
        "narration_ind",
        "narration_time",
        "clip_start",
        "clip_end",
        "clip_text",
        "tag_verb",
        "tag_noun",
    ]
    assert len(df) == stats["egoclip_rows"] == stats["narrations"]
    assert (df["clip_idx"] == np.arange(len(df))).all()
    inside = (df["clip_start"] > 0) & (df["clip_end"] < df["video_dur"])
    centre = (df["clip_start"] + df["clip_end"]) / 2
    assert np.allclose(centre[inside], df["narration_time"][inside], atol=2e-6)
    assert inside.mean() > 0.95
    narr = load(root, "narration.json")
    groups = {
        (u, p): np.array([n["timestamp_sec"] for n in e[p]["narrations"]])
        for u, e in narr.items()
        for p in ("narration_pass_1", "narration_pass_2")
        if p in e
    }
    betas = mean_gaps(groups)
    alpha = alpha_of(betas)
    for (uid, source), g in df.groupby(["video_uid", "narration_source"]):
        assert (g["narration_ind"] == np.arange(len(g))).all()
        items = narr[uid][source]["narrations"]
        assert g["clip_text"].tolist() == [n["narration_text"] for n in items]
        s, e = egoclip_windows(
            groups[(uid, source)], betas[(uid, source)], alpha, duration=g["video_dur"].iloc[0]
        )
        assert np.allclose(g["clip_start"], s, atol=1e-6) and np.allclose(g["clip_end"], e, atol=1e-6)
    assert df["tag_verb"].str.fullmatch(r"\[\d+\]").all()
    assert df["tag_noun"].str.fullmatch(r"\[(\d+(, \d+)*)?\]").all()


def test_rendered_video_decodes_and_shows_the_object(tiny) -> None:
    root, _ = tiny
    world = make_world("tiny", 0)
    (path,) = sorted((root / "v1" / "full_scale").glob("*.mp4"))
    video = next(v for v in world.videos if v.uid == path.stem)
    assert video.role == "nlq_val"
    vr = decord.VideoReader(str(path))
    fps = PRESETS["tiny"].render_fps
    assert len(vr) == render_frame_count(video.duration_sec, fps)
    assert vr.get_avg_fps() == pytest.approx(fps)
    hits, checked = 0, 0
    for e in range(len(video.ev_start)):
        k = int(np.ceil((video.ev_start[e] + video.ev_end[e]) / 2 * fps))
        if k / fps >= video.ev_end[e]:
            continue
        frame = vr[k].asnumpy().astype(int)
        obj, verb = OBJECTS[video.ev_obj[e]], VERBS[video.ev_verb[e]]
        mask = object_mask(obj, verb)
        close = np.abs(frame - np.array(OBJECT_STYLE[obj][0])).max(axis=2) < 60
        checked += 1
        hits += close[mask].mean() > 0.5 and close[~mask].mean() < 0.02
    assert checked >= 10 and hits / checked > 0.9


@settings(max_examples=40, deadline=None)
@given(
    place=st.sampled_from(PLACES),
    obj=st.sampled_from(OBJECTS),
    verb=st.sampled_from(VERBS),
    person=st.one_of(st.none(), st.sampled_from(PEOPLE)),
    seed=st.integers(0, 2**32 - 1),
)
def test_render_frame_draws_the_visual_code(place, obj, verb, person, seed) -> None:
    frame = render_frame(place, obj, verb, np.random.default_rng(seed), person=person).astype(int)
    assert frame.shape == (96, 96, 3)
    mask = object_mask(obj, verb)
    assert mask.sum() > 150
    assert np.abs(frame[mask] - OBJECT_STYLE[obj][0]).max() <= 4
    bg = np.abs(frame - PLACE_STYLE[place][0]).max(axis=2) <= 4
    assert bg.mean() > 0.5
    empty = render_frame(place, None, None, np.random.default_rng(seed)).astype(int)
    assert (np.abs(empty - OBJECT_STYLE[obj][0]).max(axis=2) <= 4).sum() == 0


def test_presets_and_vocabulary() -> None:
    assert set(PRESETS) == {"tiny", "demo", "full"}
    assert (len(VERBS), len(OBJECTS), len(PLACES)) == (20, 60, 15) and len(PEOPLE) >= 3
    assert len(set(OBJECTS) | set(PLACES) | set(PEOPLE)) == len(OBJECTS) + len(PLACES) + len(PEOPLE)
    assert all(re.fullmatch(r"[a-z ]+", w) for w in (*VERBS, *OBJECTS, *PLACES, *PEOPLE))
    assert len({(OBJECT_STYLE[o][0], OBJECT_STYLE[o][1]) for o in OBJECTS}) == len(OBJECTS)
    assert PRESETS["full"].num_videos > 9000 and not PRESETS["full"].write_features
    assert [plural(w) for w in ("knife", "box", "tomato", "cup")] == [
        "knives",
        "boxes",
        "tomatoes",
        "cups",
    ]
    with pytest.raises(ValueError, match="unknown demo preset"):
        build_world(Path("unused"), preset="huge")


def test_an_interrupted_build_leaves_no_complete_looking_file(tmp_path, monkeypatch) -> None:
    calls = []

    def failing(video, npass):
        calls.append(1)
        if len(calls) > 3:
            raise RuntimeError("interrupted")
        return original(video, npass)

    original = dw._pass_strings
    monkeypatch.setattr(dw, "_pass_strings", failing)
    with pytest.raises(RuntimeError, match="interrupted"):
        build_world(tmp_path, preset="tiny", write_features=False, render_videos=0)
    assert not (tmp_path / ANN / "narration.json").exists() and not (tmp_path / "egoclip.csv").exists()
    assert not list(tmp_path.rglob("*.tmp"))
    assert (tmp_path / ANN / "nlq_train.json").exists()  # written completely before the failure


def test_demo_modules_import_no_cycle() -> None:
    """vocabulary <- model <- nlq, render <- world: the world's parts import downwards only."""
    modules = ["demo.vocabulary", "demo.model", "demo.nlq", "demo.render", "demo.world"]
    trees = {m: ast.parse(module_path(m).read_text()) for m in modules}
    below = {m: {d for d in imports_of(tree)[0] if d.startswith("demo.")} for m, tree in trees.items()}
    assert below == {
        "demo.vocabulary": set(),
        "demo.model": {"demo.vocabulary"},
        "demo.nlq": {"demo.model", "demo.vocabulary"},
        "demo.render": {"demo.model", "demo.vocabulary"},
        "demo.world": {"demo.goalstep", "demo.model", "demo.nlq", "demo.render", "demo.vocabulary"},
    }


def test_demo_world_command_honours_videos_dir(tmp_path) -> None:
    out = tmp_path / "world"
    main(
        [
            "demo-world",
            "--out",
            str(out),
            "--preset",
            "tiny",
            "--videos-dir",
            "clips/mp4",
            "--stats",
            str(tmp_path / "stats.json"),
        ]
    )
    (mp4,) = sorted((out / "clips" / "mp4").glob("*.mp4"))
    manifest = json.loads((out / "clips" / "mp4" / "manifest.json").read_text())
    assert manifest["files"] == {mp4.name: mp4.stat().st_size}
    assert not (out / "v1" / "full_scale").exists()
    assert json.loads((tmp_path / "stats.json").read_text())["rendered_videos"] == 1
