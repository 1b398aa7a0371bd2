"""The demo world's NLQ annotations (and the minimal VQ / MQ train files NaQ pools clips from).

Clips are 480 s (or the whole video when shorter), 1-2 annotations per clip, 3-10 queries per annotation,
each asked with one of the 13 official templates about an event inside the clip; its window is the event's
clip-relative span. The real files' quirks (ego4d-formats.md 2.2) are then planted at about the real rates,
at least once per split, and counted by kind (:data:`QUIRK_RATES`).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

import numpy as np

from egonlq.demo.model import CLIP_SEC, NLQ_SPLITS, DemoPreset, Video, draw_uuids, world_rng
from egonlq.demo.vocabulary import (
    OBJ_CATEGORY,
    OBJECTS,
    PEOPLE,
    PEOPLE_TEMPLATES,
    PLACE_PREP,
    PLACES,
    PUT_VERBS,
    STATE_VERBS,
    TEMPLATE_WEIGHTS,
    TEMPLATES,
    VERB_FORMS,
    VERBS,
    plural,
)
from egonlq.timegrid import CANONICAL_FPS

# Real-data rates of the planted quirks (ego4d-formats.md 2.1-2.2, v1 val unless said otherwise). Each kind is
# planted max(1, round(rate * n)) times in every split listed for it.
QUIRK_RATES: dict[str, float] = {
    "video_no_clips": 3 / 247,  # videos with an empty clips list
    "junk_clip_frames": 0.10,  # clip video_start_frame == video_end_frame (e.g. 35999)
    "clip_end_mismatch": 0.15,  # clip_end_sec 1/30 s shorter than video_end_sec - video_start_sec
    "ends_after_clip": 59 / 3875,  # an extra last query of a clip ending up to 0.58 s after the clip
    "zero_length": 346 / 3875,  # |end - start| <= 1/30 s
    "video_sec_offset": 217 / 3875,  # video_*_sec != video_start_sec + clip_*_sec (by 1/30 s)
    "junk_query_frames": 0.30,  # video_start_frame == video_end_frame on a non-empty window
    "null_template": 15 / 3875,
    "null_slot_x": 183 / 3875,
    "absent_slot_x": 36 / 3875,
    "null_verb_x": 56 / 3875,
    "absent_verb_x": 110 / 3875,
    "missing_query_key": 1 / 3875,  # no "query" key
    "empty_query": 1 / 4005,  # "query": ""
    "bare_query": 1 / 3875,  # only the six time/frame fields and raw_tags [] (zero-length)
    "lowercase_query": 0.05,  # original casing varies
    "no_question_mark": 0.03,
    "negative_clip_start": 0.035,  # clip video_start_sec slightly negative (v1 val/test, v2 val: ~3-4 %)
    "negative_query_start": 4 / 3875,  # query clip_start_sec slightly negative ("a few"; count unmeasured)
}
_QUIRK_SPLITS: dict[str, tuple[str, ...]] = {
    "missing_query_key": ("train", "val"),
    "bare_query": ("train", "val"),
    "empty_query": ("train", "test"),
    "negative_clip_start": ("val", "test"),  # where it was measured (train unverified)
}
# Magnitudes of the slightly negative times seen in the real files.
NEGATIVE_TIMES: tuple[float, ...] = (3.999999999976245e-07, 0.012304733333333331)


def _round(x: float) -> float:
    return round(float(x), 5)


def _place_clips(rng: np.random.Generator, video: Video, n: int) -> list[tuple[float, float]]:
    """``n`` non-overlapping frame-aligned clips of 480 s (or the whole video when shorter)."""
    if video.duration_sec <= CLIP_SEC + 1.0:
        return [(0.0, video.duration_sec)]
    n = min(n, int(video.duration_sec // (CLIP_SEC + 1.0)))
    length = CLIP_SEC + (1 / CANONICAL_FPS if rng.random() < 0.3 else 0.0)
    free = video.duration_sec - n * length - 1.0
    cuts = np.sort(rng.uniform(0.0, free, n))
    out = []
    for k, c in enumerate(cuts.tolist()):
        start = math.floor((c + k * length) * CANONICAL_FPS) / CANONICAL_FPS
        out.append((start, start + length))
    return out


def _clip_record(vs: float, ve: float, uids: list[str]) -> dict:
    return {
        "clip_uid": uids[0],
        "video_start_sec": _round(vs),
        "video_end_sec": _round(ve),
        "video_start_frame": round(vs * CANONICAL_FPS),
        "video_end_frame": round(ve * CANONICAL_FPS),
        "clip_start_sec": 0,
        "clip_end_sec": _round(ve - vs),
        "clip_start_frame": 0,
        "clip_end_frame": round((ve - vs) * CANONICAL_FPS),
        "source_clip_uid": uids[1],
        "annotations": [],
    }


def _plant_clip_quirks(rng: np.random.Generator, clips: list[dict], quirks: Counter) -> None:
    """Junk clip frame fields, and ``clip_end_sec`` 1/30 s short of the video span where no window ends in
    that last 1/30 s (so that only the counted ``ends_after_clip`` windows ever end after their clip)."""
    for clip in _pick(rng, clips, QUIRK_RATES["junk_clip_frames"]):
        clip["video_start_frame"] = clip["video_end_frame"] = int(
            rng.choice([35999, 17999, clip["video_end_frame"]])
        )
        quirks["junk_clip_frames"] += 1
    shorter = [
        c
        for c in clips
        if max((q["clip_end_sec"] for a in c["annotations"] for q in a["language_queries"]), default=0.0)
        <= c["clip_end_sec"] - 1 / CANONICAL_FPS
    ]
    for clip in _pick(rng, shorter, QUIRK_RATES["clip_end_mismatch"]):
        clip["clip_end_sec"] = _round(clip["clip_end_sec"] - 1 / CANONICAL_FPS)
        clip["clip_end_frame"] = round(clip["clip_end_sec"] * CANONICAL_FPS)
        quirks["clip_end_mismatch"] += 1


def _query_text(tid: int, video: Video, e: int, ref: int) -> tuple[str, dict[str, str]]:
    """Query text and slot values for template ``tid`` asked about event ``e`` (``ref``: the Y event)."""
    obj, verb = OBJECTS[video.ev_obj[e]], VERBS[video.ev_verb[e]]
    place = PLACES[video.ev_place[e]]
    category = str(OBJ_CATEGORY[video.ev_obj[e]])
    na = "[verb_not_applicable]"
    if tid == 0:
        ref_obj, ref_verb = OBJECTS[video.ev_obj[ref]], VERBS[video.ev_verb[ref]]
        when = "before" if ref > e else "after"
        text = f"Where was the {obj} {when} I {VERB_FORMS[ref_verb][1]} the {ref_obj}?"
        return text, {"slot_x": obj, "verb_x": na, "slot_y": ref_obj, "verb_y": ref_verb}
    if tid == 1:
        return f"Where did I put the {obj}?", {"slot_x": obj, "verb_x": "put"}
    if tid == 2:
        return f"What did I put in the {place}?", {"slot_x": place, "verb_x": "put"}
    if tid == 3:
        return f"Where is the {obj}?", {"slot_x": obj, "verb_x": na}
    if tid == 4:
        return f"What {category} did I {verb}?", {"slot_x": category, "verb_x": verb}
    if tid == 5:
        prep = PLACE_PREP[video.ev_place[e]]
        return f"What {category} is {prep} the {place}?", {"slot_x": category, "verb_x": na, "slot_y": place}
    if tid == 6:
        return f"How many {plural(obj)} did I {verb}?", {"slot_x": obj, "verb_x": verb}
    if tid == 7:
        return f"In what location did I see the {obj}?", {"slot_x": obj, "verb_x": na}
    if tid == 8:
        return f"Did I {verb} the {obj}?", {"slot_x": obj, "verb_x": verb}
    if tid == 9:
        return f"Who did I interact with when I {VERB_FORMS[verb][1]} the {obj}?", {
            "slot_x": obj,
            "verb_x": verb,
        }
    if tid == 10:
        return f"Who did I talk to in the {place}?", {"slot_x": place, "verb_x": "talk"}
    if tid == 11:
        return f"Where is my {obj}?", {"slot_x": obj, "verb_x": na}
    person = PEOPLE[video.ev_person[e]]
    return f"When did I talk to the {person}?", {"slot_x": person, "verb_x": "talk"}


def _eligible(tid: int, video: Video, events: np.ndarray) -> np.ndarray:
    """The events among ``events`` that template ``tid`` can ask about."""
    verbs = np.array(VERBS)[video.ev_verb[events]]
    by_c = video.ev_person[events] < 0
    if tid in (1, 2):
        return events[by_c & np.isin(verbs, PUT_VERBS)]
    if tid in (4, 6):
        return events[by_c]
    if tid == 8:
        return events[by_c & np.isin(verbs, STATE_VERBS)]
    if tid in PEOPLE_TEMPLATES:
        return events[~by_c]
    return events


def _raw_tags(q: dict) -> list[str | None]:
    """``[template, query, slot_x, verb_x, slot_y, verb_y]`` up to the last key the query has."""
    keys = ("template", "query", "slot_x", "verb_x", "slot_y", "verb_y")
    present = [i for i, k in enumerate(keys) if k in q]
    return [q.get(k) for k in keys[: present[-1] + 1]] if present else []


def _language_query(
    vs: float, s: float, e: float, template: int | None, text: str, slots: dict[str, str]
) -> dict:
    """One annotated language query; ``s``/``e`` clip-relative (already rounded)."""
    q = {
        "clip_start_sec": s,
        "clip_end_sec": e,
        "video_start_sec": _round(vs + s),
        "video_end_sec": _round(vs + e),
        "video_start_frame": round((vs + s) * CANONICAL_FPS),
        "video_end_frame": round((vs + e) * CANONICAL_FPS),
        "template": TEMPLATES[template] if template is not None else None,
        "query": text,
        **slots,
    }
    q["raw_tags"] = _raw_tags(q)
    return q


def _annotation_queries(
    rng: np.random.Generator, p: DemoPreset, video: Video, vs: float, clip_end: float
) -> list[dict]:
    """3-10 queries about distinct events lying entirely inside the clip, windows = event spans."""
    inside = np.flatnonzero((video.ev_start >= vs) & (video.ev_end <= vs + clip_end))
    k = 3 + int(rng.choice(len(p.queries_per_annotation), p=_normalised(p.queries_per_annotation)))
    used: set[int] = set()
    out = []
    for _ in range(k):
        tid = int(rng.choice(len(TEMPLATES), p=TEMPLATE_WEIGHTS / TEMPLATE_WEIGHTS.sum()))
        candidates = [c for c in _eligible(tid, video, inside).tolist() if c not in used]
        ref = -1
        if tid == 0:  # needs a neighbour inside the clip with another object
            candidates = [c for c in candidates if _neighbour(video, inside, c) >= 0]
        if not candidates:
            tid = 3
            candidates = [c for c in inside.tolist() if c not in used]
            if not candidates:
                break
        ev = int(rng.choice(candidates))
        if tid == 0:
            ref = _neighbour(video, inside, ev)
        used.add(ev)
        text, slots = _query_text(tid, video, ev, ref)
        s, e = _round(video.ev_start[ev] - vs), _round(video.ev_end[ev] - vs)
        out.append(_language_query(vs, s, e, tid, text, slots))
    return out


def _neighbour(video: Video, inside: np.ndarray, e: int) -> int:
    """The next (else previous) event inside the clip with a different object, or -1."""
    for n in (e + 1, e - 1):
        if n in inside and video.ev_obj[n] != video.ev_obj[e]:
            return n
    return -1


def _normalised(w: Sequence[float]) -> np.ndarray:
    a = np.asarray(w, dtype=np.float64)
    return a / a.sum()


def _pick(rng: np.random.Generator, pool: list, rate: float, of: int | None = None) -> list:
    """``max(1, round(rate * n))`` distinct items of ``pool`` (fewer if the pool is smaller); ``n`` is
    ``of`` when the rate applies to a larger population than the eligible pool, else ``len(pool)``."""
    k = min(len(pool), max(1, round(rate * (len(pool) if of is None else of))))
    return [pool[i] for i in sorted(rng.choice(len(pool), size=k, replace=False).tolist())] if k else []


def _ends_after_query(rng: np.random.Generator, video: Video, clip: dict) -> dict | None:
    """A query whose window runs from the clip's last event to up to 0.58 s past the clip end."""
    vs, clip_end = clip["video_start_sec"], clip["clip_end_sec"]
    starts = np.flatnonzero((video.ev_start >= vs) & (video.ev_start < vs + clip_end - 1.0))
    if len(starts) == 0:
        return None
    ev = int(starts[-1])
    s = _round(video.ev_start[ev] - vs)
    e = _round(clip_end + rng.uniform(0.02, 0.58))
    text, slots = _query_text(3, video, ev, -1)
    return _language_query(vs, s, e, 3, text, slots)


def _plant_query_quirks(rng: np.random.Generator, split: str, queries: list[dict], quirks: Counter) -> None:
    """Alter ``queries`` in place to carry the real files' per-query quirks, at about the real rates."""
    pool = list(range(len(queries)))
    window_pool = [i for i in pool if not queries[i].get("_ends_after")]
    taken: set[int] = set()

    def take(kind: str, candidates: list[int]) -> list[int]:
        chosen = _pick(rng, [i for i in candidates if i not in taken], QUIRK_RATES[kind])
        quirks[kind] += len(chosen)
        return chosen

    for kind in ("missing_query_key", "empty_query", "bare_query"):
        if split in _QUIRK_SPLITS[kind]:
            for i in take(kind, window_pool):
                taken.add(i)
                q = queries[i]
                if kind == "missing_query_key":
                    del q["query"]
                elif kind == "empty_query":
                    q["query"] = ""
                else:
                    q["clip_end_sec"], q["video_end_sec"] = q["clip_start_sec"], q["video_start_sec"]
                    q["video_end_frame"] = q["video_start_frame"]
                    for key in ("template", "query", "slot_x", "verb_x", "slot_y", "verb_y"):
                        q.pop(key, None)
    for i in take("zero_length", window_pool):
        taken.add(i)
        q = queries[i]
        q["clip_end_sec"], q["video_end_sec"] = q["clip_start_sec"], q["video_start_sec"]
        q["video_end_frame"] = q["video_start_frame"]
    for i in take("video_sec_offset", window_pool):
        taken.add(i)
        q = queries[i]
        q["video_start_sec"] = _round(q["video_start_sec"] + 1 / CANONICAL_FPS)
        q["video_end_sec"] = _round(q["video_end_sec"] + 1 / CANONICAL_FPS)
    texts = [i for i in pool if queries[i].get("query")]
    templated = [i for i in texts if "template" in queries[i]]
    for kind, key, new in (
        ("null_slot_x", "slot_x", None),
        ("absent_slot_x", "slot_x", ...),
        ("null_verb_x", "verb_x", None),
        ("absent_verb_x", "verb_x", ...),
    ):
        for i in _pick(rng, [i for i in templated if queries[i].get(key) is not None], QUIRK_RATES[kind]):
            quirks[kind] += 1
            if new is ...:
                del queries[i][key]
            else:
                queries[i][key] = new
    for i in _pick(rng, templated, QUIRK_RATES["null_template"]):
        quirks["null_template"] += 1
        queries[i]["template"] = None
    windows = [
        i
        for i in pool
        if "template" in queries[i] and queries[i]["clip_end_sec"] > queries[i]["clip_start_sec"]
    ]
    for i in _pick(rng, windows, QUIRK_RATES["junk_query_frames"]):
        quirks["junk_query_frames"] += 1
        queries[i]["video_end_frame"] = queries[i]["video_start_frame"]
    for i in _pick(rng, texts, QUIRK_RATES["lowercase_query"]):
        quirks["lowercase_query"] += 1
        queries[i]["query"] = queries[i]["query"].lower()
    for i in _pick(rng, texts, QUIRK_RATES["no_question_mark"]):
        quirks["no_question_mark"] += 1
        queries[i]["query"] = queries[i]["query"].rstrip("?")
    for q in queries:
        q.pop("_ends_after", None)
        if "raw_tags" in q and q["raw_tags"]:
            q["raw_tags"] = _raw_tags(q)


def make_nlq_split(seed: int, p: DemoPreset, split: str, videos: list[Video], quirks: Counter) -> list[dict]:
    """Video records of one NLQ split (annotated schema; the test split's answers included)."""
    rng = world_rng(seed, "nlq", NLQ_SPLITS.index(split))
    no_clips = set(_pick(rng, [v.uid for v in videos], QUIRK_RATES["video_no_clips"]))
    quirks["video_no_clips"] += len(no_clips)
    records, clips = [], []
    for video in videos:
        record = {"video_uid": video.uid, "split": split, "clips": []}
        records.append(record)
        if video.uid in no_clips:
            continue
        n = 1 + int(rng.choice(len(p.clips_per_video), p=_normalised(p.clips_per_video)))
        for vs, ve in _place_clips(rng, video, n):
            clip = _clip_record(vs, ve, draw_uuids(rng, 2))
            for _ in range(2 if rng.random() < p.two_annotations_rate else 1):
                lq = _annotation_queries(rng, p, video, clip["video_start_sec"], clip["clip_end_sec"])
                clip["annotations"].append({"annotation_uid": draw_uuids(rng, 1)[0], "language_queries": lq})
            record["clips"].append(clip)
            clips.append((video, clip))
    for video, clip in _pick(rng, clips, 12 * QUIRK_RATES["ends_after_clip"]):  # ~12 queries per clip
        q = _ends_after_query(rng, video, clip)
        if q is not None:
            q["_ends_after"] = True
            clip["annotations"][-1]["language_queries"].append(q)
            quirks["ends_after_clip"] += 1
    queries = [q for _, c in clips for a in c["annotations"] for q in a["language_queries"]]
    quirk_rng = world_rng(seed, "quirks", NLQ_SPLITS.index(split))
    _plant_clip_quirks(quirk_rng, [c for _, c in clips], quirks)
    _plant_query_quirks(quirk_rng, split, queries, quirks)
    _plant_negative_times(world_rng(seed, "negative_times", NLQ_SPLITS.index(split)), split, clips, quirks)
    return records


def _plant_negative_times(
    rng: np.random.Generator, split: str, clips: list[tuple[Video, dict]], quirks: Counter
) -> None:
    """Slightly negative times as in the real files: the ``video_start_sec`` of clips that start their video
    (their queries' ``video_*_sec`` follow), and the start of a few queries (``clip_start_sec``, and
    ``video_start_sec`` = the clip's start plus it). Own generator: the other quirks stay as they were."""
    if split in _QUIRK_SPLITS["negative_clip_start"]:
        at_zero = [c for _, c in clips if c["video_start_sec"] == 0.0]
        for clip in _pick(rng, at_zero, QUIRK_RATES["negative_clip_start"], of=len(clips)):
            shift = -float(rng.choice(NEGATIVE_TIMES))
            clip["video_start_sec"] = shift
            for q in (q for a in clip["annotations"] for q in a["language_queries"]):
                q["video_start_sec"] += shift
                q["video_end_sec"] += shift
            quirks["negative_clip_start"] += 1
    candidates = [
        (clip, q)
        for _, clip in clips
        for a in clip["annotations"]
        for q in a["language_queries"]
        if "template" in q  # not a bare query
        and q["clip_start_sec"] + 1 / CANONICAL_FPS < q["clip_end_sec"] <= clip["clip_end_sec"]
        and abs(q["video_start_sec"] - (clip["video_start_sec"] + q["clip_start_sec"])) < 1e-4
    ]
    for clip, q in _pick(rng, candidates, QUIRK_RATES["negative_query_start"]):
        q["clip_start_sec"] = -float(rng.choice(NEGATIVE_TIMES))
        q["video_start_sec"] = clip["video_start_sec"] + q["clip_start_sec"]
        q["video_start_frame"] = round(q["video_start_sec"] * CANONICAL_FPS)
        quirks["negative_query_start"] += 1


def make_em_train(seed: int, nlq_train: list[dict], videos: list[Video]) -> dict[str, list[dict]]:
    """Minimal VQ and MQ train files: their own clips on ``em_train`` videos plus some NLQ train clips."""
    rng = world_rng(seed, "em")
    files: dict[str, dict[str, list[dict]]] = {"vq": {}, "moments": {}}

    def add(task: str, video_uid: str, clip_uid: str, vs: float, ve: float) -> None:
        files[task].setdefault(video_uid, []).append(
            {
                "clip_uid": clip_uid,
                "video_start_sec": vs,
                "video_end_sec": ve,
                "video_start_frame": round(vs * CANONICAL_FPS),
                "video_end_frame": round(ve * CANONICAL_FPS),
            }
        )

    for record in nlq_train:  # the same clip annotated for several tasks (same uid, same times)
        for clip in record["clips"]:
            u = rng.random()
            for task in ("vq",) * (u < 0.3) + ("moments",) * (0.2 <= u < 0.45):
                add(
                    task,
                    record["video_uid"],
                    clip["clip_uid"],
                    clip["video_start_sec"],
                    clip["video_end_sec"],
                )
    tasks_cycle = (("vq",), ("moments",), ("vq",), ("vq", "moments"))  # both files always hold clips
    for k, video in enumerate(videos):
        for vs, ve in _place_clips(rng, video, int(rng.integers(1, 4))):
            tasks = tasks_cycle[k % len(tasks_cycle)]
            clip_uid = draw_uuids(rng, 1)[0]
            for task in tasks:
                add(task, video.uid, clip_uid, _round(vs), _round(ve))
    return {
        task: [
            {"video_uid": uid, "split": "train", "clips": sorted(c, key=lambda c: c["video_start_sec"])}
            for uid, c in sorted(by_video.items())
        ]
        for task, by_video in files.items()
    }
