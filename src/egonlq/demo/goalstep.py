"""The demo world's Ego4D Goal-Step files, in the real schema (spec dual-encoder-and-steps §4):

    v2/annotations/goalstep_{train,valid,test}.json   test: ``step_segments`` + ``segment_count``, no times
    v2/annotations/goalstep_video_groups.tsv          university, video_group (a Python list of uids)

Steps are runs of 1-3 consecutive events of a world video, described by the first event's verb and object
(so the planted features carry the signal); a step of several events has one substep per event. About a
quarter of the entries are ``grp-<first uid>`` groups of 2-3 videos whose times are on the concatenated
timeline (the members' durations added). The real quirks are planted at their val rates (:data:`RATES`) and
counted: overlapping consecutive steps, out-of-order steps, "Unspecified" steps, substeps past their parent,
one entry that does not start at 0, one step without its ``is_*`` fields, and steps that repeat a description
within their entry (42 %). Repeats come first from the video itself (an event whose action recurs in the video
mostly starts a step of its own, so its step is named after it); each split is then topped up to the rate by
giving a few steps the description of the step before them, counted as ``relabelled_repeats``. Same seed, same
bytes.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from egonlq.demo.model import Video, World, world_rng
from egonlq.demo.vocabulary import OBJECTS, VERBS
from egonlq.io import write_json, write_text

GOALSTEP_SPLITS = ("train", "valid", "test")
# Goal-Step val rates (spec §4): 60 of 3,349 consecutive pairs overlap; 2 of 134 videos out of order;
# 8 of 3,349 steps "Unspecified"; 261 of 4,347 substeps past their parent; 33 of 134 entries are groups.
RATES = {"overlap": 60 / 3349, "out_of_order": 2 / 134, "unspecified": 8 / 3349, "past_parent": 261 / 4347}
# 1,420 of 3,349 val steps share their exact description with another step of the same entry
REPEAT_RATE = 1420 / 3349
UNSPECIFIED = "Unspecified"
# how often a recurring action starts its own step: the repeats that follow from the video then sit a little
# under REPEAT_RATE (about 0.37 on the demo preset), and relabelling a few steps closes the gap
_OWN_STEP = 0.7
GROUP_RATE = 33 / 134
_SPLIT_SHARE = (0.6, 0.2, 0.2)
_GOALS = ("COOKING:MAKE_SALAD", "COOKING:MAKE_TEA", "CLEANING:TIDY_KITCHEN", "CRAFTS:BUILD_SHELF")


def _description(video: Video, event: int) -> str:
    return f"{VERBS[video.ev_verb[event]]} {OBJECTS[video.ev_obj[event]]}"


def _node(start: float, end: float, description: str, category: str) -> dict:
    return {
        "start_time": round(float(start), 3),
        "end_time": round(float(end), 3),
        "step_category": category,
        "step_description": description,
        "is_continued": False,
        "is_procedural": True,
        "is_relevant": "essential",
        "summary": [description],
        "segments": [],
    }


def _steps(video: Video, offset: float, rng: np.random.Generator, quirks: Counter) -> list[dict]:
    """The steps of one member video, shifted by ``offset`` seconds (its place on a group's timeline)."""
    steps = []
    i = 0
    n_events = len(video.ev_start)
    actions = [_description(video, e) for e in range(n_events)]
    recurring = {a for a, c in Counter(actions).items() if c > 1}
    while i < n_events:
        j = min(n_events, i + int(rng.integers(1, 4)))
        if rng.random() < _OWN_STEP:  # an action that recurs in the video starts a step of its own
            j = next((e for e in range(i + 1, j) if actions[e] in recurring), j)
        desc = actions[i]
        if rng.random() < RATES["unspecified"]:
            desc = UNSPECIFIED
            quirks["unspecified_steps"] += 1
        step = _node(offset + video.ev_start[i], offset + video.ev_end[j - 1], desc, f"General: {desc}")
        if j - i > 1:
            for e in range(i, j):
                sub = _node(
                    offset + video.ev_start[e], offset + video.ev_end[e], f"{_description(video, e)} now", ""
                )
                if e == j - 1 and rng.random() < RATES["past_parent"] * (j - i):
                    sub["end_time"] = round(sub["end_time"] + float(rng.uniform(0.1, 1.5)), 3)
                    quirks["substeps_past_parent"] += 1
                step["segments"].append(sub)
        steps.append(step)
        i = j
    return steps


def _plant_repeats(entries: list[dict], rng: np.random.Generator, quirks: Counter) -> None:
    """Top one split up to :data:`REPEAT_RATE` of steps that repeat a description within their entry: steps
    with a description of their own (in random order) take the description of the step before them until
    the split reaches the rate. A split already above it is left as it is."""
    counts = [Counter(s["step_description"] for s in e["segments"]) for e in entries]
    repeated = sum(c for cs in counts for c in cs.values() if c > 1)
    target = round(REPEAT_RATE * sum(len(e["segments"]) for e in entries))
    slots = [(i, k) for i, e in enumerate(entries) for k in range(1, len(e["segments"]))]
    for slot in rng.permutation(len(slots)):
        if repeated >= target:
            break
        i, k = slots[slot]
        step, previous = entries[i]["segments"][k], entries[i]["segments"][k - 1]
        own, before = step["step_description"], previous["step_description"]
        if counts[i][own] > 1 or UNSPECIFIED in (own, before):
            continue
        repeated += 1 + (counts[i][before] == 1)  # the step before starts repeating too if it was alone
        counts[i][own] -= 1
        counts[i][before] += 1
        step.update(step_description=before, step_category=f"General: {before}", summary=[before])
        quirks["relabelled_repeats"] += 1
    quirks["steps_with_repeated_description"] += repeated


def _entry(members: list[Video], rng: np.random.Generator, quirks: Counter) -> dict:
    offsets = np.concatenate([[0.0], np.cumsum([v.duration_sec for v in members])])
    steps = [s for v, off in zip(members, offsets, strict=False) for s in _steps(v, off, rng, quirks)]
    for a, b in zip(steps, steps[1:], strict=False):
        if rng.random() < RATES["overlap"]:
            a["end_time"] = round(max(a["end_time"], b["start_time"] + float(rng.uniform(0.2, 2.0))), 3)
            quirks["overlapping_step_pairs"] += 1
    if len(steps) > 2 and rng.random() < RATES["out_of_order"]:
        k = int(rng.integers(0, len(steps) - 1))
        steps[k], steps[k + 1] = steps[k + 1], steps[k]
        quirks["out_of_order_videos"] += 1
    quirks["steps"] += len(steps)
    quirks["substeps"] += sum(len(s["segments"]) for s in steps)
    goal = _GOALS[int(rng.integers(len(_GOALS)))]
    uid = members[0].uid if len(members) == 1 else f"grp-{members[0].uid}"
    return {
        "video_uid": uid,
        "start_time": 0.0,
        "end_time": round(float(offsets[-1]), 3),
        "goal_category": goal,
        "goal_description": goal.split(":")[1].replace("_", " ").lower(),
        "goal_wikihow_url": "",
        "summary": [],
        "is_procedural": True,
        "segments": steps,
    }


def _test_entry(entry: dict) -> dict:
    """The test schema: descriptions with their counts, in order of first appearance, no times."""
    counts = Counter(s["step_description"] for s in entry["segments"])
    return {
        "video_uid": entry["video_uid"],
        "step_segments": [{"step_description": d, "segment_count": c} for d, c in counts.items()],
    }


def make_goalstep(world: World) -> tuple[dict[str, list[dict]], list[list[str]], Counter]:
    """Entries per split (annotated; test is stripped when written), the groups and the planted quirks."""
    rng = world_rng(world.seed, "goalstep")
    videos = [v for v in world.videos if len(v.ev_start) >= 2]
    order = rng.permutation(len(videos))
    units: list[list[Video]] = []
    i = 0
    while i < len(order):
        size = int(rng.integers(2, 4)) if rng.random() < GROUP_RATE else 1
        units.append([videos[k] for k in order[i : i + size]])
        i += size
    quirks: Counter = Counter()
    bounds = np.cumsum(np.array(_SPLIT_SHARE) * len(units)).round().astype(int)
    entries = [_entry(members, rng, quirks) for members in units]
    splits = dict(zip(GOALSTEP_SPLITS, np.split(np.array(entries, dtype=object), bounds[:2]), strict=True))
    out = {split: list(items) for split, items in splits.items()}
    for items in out.values():
        _plant_repeats(items, rng, quirks)
    valid = out["valid"]
    if valid:  # one entry that does not start at 0: its steps begin after start_time
        late = valid[0]
        late["start_time"] = round(max(0.0, late["segments"][0]["start_time"] - 0.6), 3)
        quirks["entries_not_starting_at_0"] += 1
        step = late["segments"][-1]
        for key in ("is_continued", "is_procedural", "is_relevant"):
            del step[key]
        quirks["steps_without_is_fields"] += 1
    groups = [[v.uid for v in members] for members in units if len(members) > 1]
    quirks["groups"] = len(groups)
    return out, groups, quirks


def write_goalstep(world: World, ann_dir: Path) -> list[Path]:
    """Write the Goal-Step files of ``world`` under ``ann_dir``; return the paths written."""
    entries, groups, quirks = make_goalstep(world)
    paths = []
    for split in GOALSTEP_SPLITS:
        videos = [_test_entry(e) for e in entries[split]] if split == "test" else entries[split]
        doc = {
            "version": "1.0",
            "date": "231129",
            "description": f"Goal-Step ({split}, demo)",
            "split": split,
        }
        path = ann_dir / f"goalstep_{split}.json"
        write_json({**doc, "videos": videos}, path)
        paths.append(path)
    tsv = "university\tvideo_group\n" + "".join(f"demo\t{members!r}\n" for members in groups)
    write_text(tsv, ann_dir / "goalstep_video_groups.tsv")
    paths.append(ann_dir / "goalstep_video_groups.tsv")
    world.quirks.update({f"goalstep_{k}": v for k, v in quirks.items()})
    return paths
