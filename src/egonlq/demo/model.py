"""The demo world's model: presets, seeded randomness, and videos made of scenes, events and narrations.

Each video is a sequence of scenes (a place each) filled with non-overlapping events ``(verb, object, place)``
of 1-20 s, some done by another person (``#O``); one or two annotators narrate it (passes, in file order, not
sorted by time). Every vocabulary item has a fixed random unit vector (:func:`vocabulary_vectors`), from which
the features are planted (:func:`egonlq.demo.world.video_features`).

Randomness: one ``numpy`` Generator per purpose, seeded from ``(seed, purpose, index)`` (:func:`world_rng`),
so that e.g. the features or the rendering never shift the annotations. Same seed, same world.
"""

from __future__ import annotations

import zlib
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from egonlq.demo.vocabulary import (
    ACTIVITIES,
    DOMAINS,
    FILLERS,
    OBJ_DOMAIN,
    OBJECTS,
    PEOPLE,
    PLACE_DOMAIN,
    PLACES,
    VERB_CDF,
    VERBS,
)
from egonlq.timegrid import CANONICAL_FPS


@dataclass(frozen=True)
class DemoPreset:
    """Sizes and rates of one demo world. Durations in seconds, rates are probabilities."""

    name: str
    # videos per role
    nlq_train_videos: int
    nlq_val_videos: int
    nlq_test_videos: int
    em_train_videos: int  # videos whose only EM clips are VQ / MQ train clips
    narration_only_videos: int
    # video durations: log-normal around a median, clipped
    duration_median: float
    duration_sigma: float
    duration_min: float
    duration_max: float
    # NLQ clips and annotations
    clips_per_video: tuple[float, ...]  # weights for 1, 2, 3, ... clips per NLQ video
    two_annotations_rate: float  # clips with 2 annotations (else 1)
    queries_per_annotation: tuple[float, ...]  # weights for 3..10 queries per annotation
    # events
    event_mean_sec: float  # mean event duration (1-20 s, exponential tail)
    gap_mean_sec: float  # mean gap between events
    scene_mean_events: float  # mean events per scene (a scene is a run of events at one place)
    other_person_rate: float  # events done by someone else (#O)
    objects_per_video: tuple[int, int]  # inclusive range of a video's object set size
    # narrations
    pass2_rate: float  # videos with a second, paraphrased narration pass
    missed_rate: float  # events a pass does not narrate
    filler_rate: float  # long gaps narrated with "#C C walks to the sink" and the like
    unsure_rate: float  # narrations with "#unsure"
    tag_case_rate: float  # narrations starting "#c" / "#o"
    # features
    write_features: bool
    noise: float  # expected norm of the Gaussian noise added to a unit-norm feature
    place_weight: float  # weight of the scene's place vector in the feature sum
    # rendered videos
    render_videos: int
    render_fps: float = 5.0
    render_size: int = 96

    @property
    def num_videos(self) -> int:
        return (
            self.nlq_train_videos
            + self.nlq_val_videos
            + self.nlq_test_videos
            + self.em_train_videos
            + self.narration_only_videos
        )


_QUERIES_PER_ANNOTATION = (1.0, 1.0, 1.5, 2.0, 2.0, 3.0, 2.0, 1.0)  # 3..10, mode 8 as in the real data

PRESETS: dict[str, DemoPreset] = {
    "tiny": DemoPreset(
        name="tiny",
        nlq_train_videos=4,
        nlq_val_videos=3,
        nlq_test_videos=2,
        em_train_videos=2,
        narration_only_videos=3,
        duration_median=160.0,
        duration_sigma=0.3,
        duration_min=100.0,
        duration_max=300.0,
        clips_per_video=(1.0,),
        two_annotations_rate=0.6,
        queries_per_annotation=_QUERIES_PER_ANNOTATION,
        event_mean_sec=4.5,
        gap_mean_sec=2.5,
        scene_mean_events=8.0,
        other_person_rate=0.12,
        objects_per_video=(8, 14),
        pass2_rate=0.6,
        missed_rate=0.03,
        filler_rate=0.3,
        unsure_rate=0.02,
        tag_case_rate=0.01,
        write_features=True,
        noise=1.0,
        place_weight=0.8,
        render_videos=1,
    ),
    "demo": DemoPreset(
        name="demo",
        # short videos (each NLQ clip is the whole video, ~20 events) and longer events than the real data:
        # fewer recurrences of an object per clip and event spans of about one unit at max_pos_len 32, so
        # that VSLNet learns within the demo's CPU budget
        nlq_train_videos=36,
        nlq_val_videos=22,
        nlq_test_videos=22,
        em_train_videos=40,
        narration_only_videos=100,
        duration_median=240.0,
        duration_sigma=0.3,
        duration_min=150.0,
        duration_max=420.0,
        clips_per_video=(1.0,),
        two_annotations_rate=0.5,
        queries_per_annotation=_QUERIES_PER_ANNOTATION,
        event_mean_sec=6.0,
        gap_mean_sec=4.0,
        scene_mean_events=8.0,
        other_person_rate=0.12,
        objects_per_video=(8, 14),
        pass2_rate=0.6,
        missed_rate=0.03,
        filler_rate=0.3,
        unsure_rate=0.015,
        tag_case_rate=0.005,
        write_features=True,
        noise=1.0,
        place_weight=0.8,
        render_videos=5,
    ),
    "full": DemoPreset(
        name="full",
        nlq_train_videos=760,
        nlq_val_videos=247,
        nlq_test_videos=258,
        em_train_videos=3000,
        narration_only_videos=5346,
        duration_median=960.0,
        duration_sigma=0.8,
        duration_min=60.0,
        duration_max=7200.0,
        clips_per_video=(0.72, 0.24, 0.04),
        two_annotations_rate=0.65,
        queries_per_annotation=_QUERIES_PER_ANNOTATION,
        event_mean_sec=4.3,
        gap_mean_sec=2.5,
        scene_mean_events=8.0,
        other_person_rate=0.12,
        objects_per_video=(8, 14),
        pass2_rate=0.8,
        missed_rate=0.03,
        filler_rate=0.3,
        unsure_rate=0.015,
        tag_case_rate=0.005,
        write_features=False,
        noise=1.0,
        place_weight=0.8,
        render_videos=0,
    ),
}

CLIP_SEC = 480.0
ROLES: tuple[str, ...] = ("nlq_train", "nlq_val", "nlq_test", "em_train", "narration_only")
NLQ_SPLITS: tuple[str, ...] = ("train", "val", "test")


def world_rng(seed: int, purpose: str, *keys: int) -> np.random.Generator:
    """An independent generator for one purpose (and e.g. one video index)."""
    return np.random.default_rng([seed, zlib.crc32(purpose.encode()), *keys])


def draw_uuids(rng: np.random.Generator, n: int) -> list[str]:
    """``n`` version-4 UUID strings drawn from ``rng``."""
    b = rng.integers(0, 256, size=(n, 16), dtype=np.uint8)
    b[:, 6] = (b[:, 6] & 0x0F) | 0x40
    b[:, 8] = (b[:, 8] & 0x3F) | 0x80
    h = b.tobytes().hex()
    return [
        f"{h[i : i + 8]}-{h[i + 8 : i + 12]}-{h[i + 12 : i + 16]}-{h[i + 16 : i + 20]}-{h[i + 20 : i + 32]}"
        for i in range(0, 32 * n, 32)
    ]


def vocabulary_vectors(seed: int, dim: int) -> dict[str, np.ndarray]:
    """The fixed unit vectors of the world: ``{"verbs": [V, D], "objects": [O, D], "places", "people"}``.

    Rows follow ``VERBS``, ``OBJECTS``, ``PLACES``, ``PEOPLE``. They depend on ``seed`` and ``dim`` only.
    """
    rng = world_rng(seed, "vectors", dim)
    sizes = {"verbs": len(VERBS), "objects": len(OBJECTS), "places": len(PLACES), "people": len(PEOPLE)}
    out = {}
    for name, n in sizes.items():
        v = rng.standard_normal((n, dim))
        out[name] = (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)
    return out


@dataclass
class NarrationPass:
    """One annotator's narrations of a video, in FILE order (not sorted by time)."""

    annotation_uid: str
    time: np.ndarray  # float64 seconds, rounded to 4 decimals
    event: np.ndarray  # int32 event index, -1 for a filler narration
    filler: np.ndarray  # int8 filler kind (index of FILLERS), -1 for an event narration
    place: np.ndarray  # int8 place named by the narration (the event's or the scene's)
    form: np.ndarray  # int8 sentence form (0-1 first pass, 2-3 paraphrases of the second)
    unsure: np.ndarray  # int8: 0 none, 1 "#unsure" mid-sentence, 2 "#unsure" at the end
    lower_tag: np.ndarray  # bool: "#c" / "#o" instead of "#C" / "#O"
    summary: str


@dataclass
class Video:
    """One canonical video: its scenes and events (the ground truth behind every file)."""

    uid: str
    role: str
    index: int  # generation index (seeds this video's generators)
    duration_sec: float
    num_frames: int
    domain: int
    scene_start: np.ndarray  # float64 [S], scene_start[0] == 0
    scene_place: np.ndarray  # int16 [S] index into PLACES
    ev_start: np.ndarray  # float64 [E], sorted, events never overlap
    ev_end: np.ndarray  # float64 [E]
    ev_verb: np.ndarray  # int16 [E] index into VERBS
    ev_obj: np.ndarray  # int16 [E] index into OBJECTS
    ev_place: np.ndarray  # int16 [E] index into PLACES
    ev_person: np.ndarray  # int16 [E] index into PEOPLE, -1 for the camera wearer (#C)
    passes: list[NarrationPass] = field(default_factory=list)

    def state_at(self, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Place index and active event index (-1 for none) at times ``t`` (seconds)."""
        t = np.asarray(t, dtype=np.float64)
        scene = np.searchsorted(self.scene_start, t, side="right") - 1
        ev = np.searchsorted(self.ev_start, t, side="right") - 1
        active = (ev >= 0) & (t < self.ev_end[np.maximum(ev, 0)])
        return self.scene_place[np.maximum(scene, 0)], np.where(active, ev, -1)


@dataclass
class World:
    """Everything ``build_world`` writes, in memory."""

    preset: DemoPreset
    seed: int
    videos: list[Video]  # sorted by uid
    nlq: dict[str, list[dict]]  # split -> video records of the annotated schema (test: with answers)
    em_train: dict[str, list[dict]]  # "vq" / "moments" -> video records of the minimal EM train files
    quirks: Counter = field(default_factory=Counter)


def draw_durations(rng: np.random.Generator, p: DemoPreset, n: int) -> np.ndarray:
    d = p.duration_median * np.exp(p.duration_sigma * rng.standard_normal(n))
    return np.clip(d, p.duration_min, p.duration_max)


def _make_events(rng: np.random.Generator, p: DemoPreset, duration: float) -> tuple[np.ndarray, np.ndarray]:
    """Sorted, non-overlapping event spans filling ``[0, duration]`` with gaps."""
    n = int(duration / (p.event_mean_sec + p.gap_mean_sec) * 1.5) + 8
    while True:
        dur = np.minimum(1.0 + rng.exponential(p.event_mean_sec - 1.0, n), 20.0)
        gap = 0.3 + rng.exponential(p.gap_mean_sec - 0.3, n)
        start = np.cumsum(gap) + np.concatenate(([0.0], np.cumsum(dur[:-1])))
        end = start + dur
        if end[-1] > duration - 0.5:
            keep = end <= duration - 0.5
            return np.round(start[keep], 3), np.round(end[keep], 3)
        n *= 2


def make_video(seed: int, p: DemoPreset, uid: str, role: str, index: int, duration: float) -> Video:
    rng = world_rng(seed, "video", index)
    num_frames = int(round(duration * CANONICAL_FPS))
    duration = num_frames / CANONICAL_FPS
    domain = int(rng.integers(len(DOMAINS)))
    ev_start, ev_end = _make_events(rng, p, duration)
    n = len(ev_start)

    # scenes: runs of events at one place, changing in the gap between two events
    places = rng.permutation(np.flatnonzero(PLACE_DOMAIN == domain))[: int(rng.integers(3, 6))]
    new_scene = rng.random(n) < 1.0 / p.scene_mean_events
    new_scene[0] = False
    scene_of_event = np.cumsum(new_scene)
    n_scenes = int(scene_of_event[-1]) + 1 if n else 1
    steps = rng.integers(1, len(places), size=n_scenes)  # never the same place twice in a row
    steps[0] = rng.integers(len(places))
    scene_place = places[np.cumsum(steps) % len(places)]
    first = np.flatnonzero(new_scene)
    scene_start = np.concatenate(([0.0], np.round((ev_end[first - 1] + ev_start[first]) / 2, 3)))

    # objects: a domain set (Zipf-like frequencies, so objects recur) plus now and then a stray one
    domain_objs = np.flatnonzero(OBJ_DOMAIN == domain)
    k = int(rng.integers(p.objects_per_video[0], p.objects_per_video[1] + 1))
    objs = rng.choice(domain_objs, size=k, replace=False)
    if rng.random() < 0.5:
        objs = np.append(objs, rng.integers(len(OBJECTS)))
    weights = 1.0 / np.arange(1, len(objs) + 1) ** 0.7
    ev_obj = rng.choice(objs, size=n, p=weights / weights.sum())
    ev_verb = (rng.random(n)[:, None] > VERB_CDF[ev_obj]).sum(axis=1)
    ev_verb = np.minimum(ev_verb, len(VERBS) - 1)
    people = rng.choice(len(PEOPLE), size=int(rng.integers(1, 3)), replace=False)
    ev_person = np.where(rng.random(n) < p.other_person_rate, rng.choice(people, size=n), -1)
    small = np.int16  # compact: the full preset holds ~2M events in memory
    video = Video(
        uid=uid,
        role=role,
        index=index,
        duration_sec=duration,
        num_frames=num_frames,
        domain=domain,
        scene_start=scene_start,
        scene_place=scene_place.astype(small),
        ev_start=ev_start,
        ev_end=ev_end,
        ev_verb=ev_verb.astype(small),
        ev_obj=ev_obj.astype(small),
        ev_place=scene_place[scene_of_event].astype(small),
        ev_person=ev_person.astype(small),
    )
    video.passes = _make_narrations(seed, p, video)
    return video


def _make_pass(
    rng: np.random.Generator, p: DemoPreset, video: Video, forms: tuple[int, int], summary: str
) -> NarrationPass:
    """Narrations of one pass: one per narrated event (at a moment inside it) plus fillers in long gaps."""
    n = len(video.ev_start)
    said = np.flatnonzero(rng.random(n) >= p.missed_rate)
    t_ev = video.ev_start[said] + (video.ev_end[said] - video.ev_start[said]) * rng.uniform(
        0.1, 0.7, len(said)
    )
    gap_start = np.concatenate(([0.0], video.ev_end[:-1]))
    gaps = np.flatnonzero((video.ev_start - gap_start > 2.0) & (rng.random(n) < p.filler_rate))
    t_fill = (gap_start[gaps] + video.ev_start[gaps]) / 2
    time_ = np.round(np.concatenate((t_ev, t_fill)), 4)
    m = len(time_)
    event = np.concatenate((said, np.full(len(gaps), -1))).astype(np.int32)
    filler = np.concatenate((np.full(len(said), -1), rng.integers(len(FILLERS), size=len(gaps)))).astype(
        np.int8
    )
    place = np.concatenate((video.ev_place[said], video.state_at(t_fill)[0])).astype(np.int8)
    form = np.where(rng.random(m) < 0.7, forms[0], forms[1]).astype(np.int8)
    unsure = np.where(rng.random(m) < p.unsure_rate, rng.integers(1, 3, size=m), 0).astype(np.int8)
    lower_tag = rng.random(m) < p.tag_case_rate
    order = rng.permutation(m)  # the real file is not sorted by time
    return NarrationPass(
        annotation_uid=draw_uuids(rng, 1)[0],
        time=time_[order],
        event=event[order],
        filler=filler[order],
        place=place[order],
        form=form[order],
        unsure=unsure[order],
        lower_tag=lower_tag[order],
        summary=summary,
    )


def _make_narrations(seed: int, p: DemoPreset, video: Video) -> list[NarrationPass]:
    rng = world_rng(seed, "narration", video.index)
    counts = np.bincount(video.scene_place, minlength=len(PLACES))
    main_place = PLACES[int(np.argmax(counts))]
    activity = ACTIVITIES[DOMAINS[video.domain]]
    passes = [_make_pass(rng, p, video, (0, 1), f"#summary C {activity}")]
    if rng.random() < p.pass2_rate:
        passes.append(_make_pass(rng, p, video, (2, 3), f"#Summary C {activity} near the {main_place}"))
    return passes
