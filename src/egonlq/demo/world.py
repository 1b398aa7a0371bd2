"""The embedded demo world ("mini-Ego4D"): seeded synthetic data in exactly the official Ego4D formats.

A fresh clone has no Ego4D (licence-gated, hundreds of gigabytes), so the workflow's default input is this
world. It writes the files a real Ego4D CLI download holds, under the same relative paths, so that a real user
only changes the root path (demo-world.md, ego4d-formats.md):

    ego4d.json
    v1/annotations/nlq_{train,val}.json, nlq_test_unannotated.json, nlq_test_gt.json (demo only: test answers)
    v1/annotations/vq_train.json, moments_train.json        (minimal: the EM train clips NaQ pools)
    v1/annotations/narration.json
    egoclip.csv
    v1/<feature_name>/<video_uid>.pt                          torch.Tensor [N, D] float16
    v1/full_scale/<video_uid>.mp4                            a few rendered videos (demo_render.py)

World model: each video is a sequence of scenes (a place each) filled with non-overlapping events
``(verb, object, place)`` of 1-20 s, some done by another person (``#O``). Every vocabulary item has a fixed
random unit vector; the feature at index ``i`` is the normalised sum of the vectors active at ``i / 1.875`` s
(the event's verb, object and person, the scene's place, weighted) plus Gaussian noise, times ``sqrt(D)`` so
that entries are of order 1 like real features (unit-norm rows would be drowned by VSLNet's N(0, 1) position
table, and the model would not learn). A model can only localise a query by learning which words map to which
directions. Narrations, NLQ queries (13 official templates) and EgoClip rows are written from the same events;
the real files' quirks are planted at about the real rates (at least once per split, so that even ``tiny``
exercises every code path) and counted.

Randomness: one ``numpy`` Generator per purpose, seeded from ``(seed, purpose, index)``, so that e.g. the
features or the rendering never shift the annotations. Same seed, same bytes.
"""

from __future__ import annotations

import functools
import logging
import math
import time
import zlib
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from egonlq.data.egoclip import alpha_of, egoclip_windows, mean_gaps
from egonlq.data.features import save_video_features
from egonlq.io import atomic_path, write_json
from egonlq.timegrid import CANONICAL_FPS, FEATURES_PER_SEC, num_features

logger = logging.getLogger(__name__)

# ----------------------------------------------------------------------------------------------------------
# Vocabulary
# ----------------------------------------------------------------------------------------------------------

DOMAINS: tuple[str, ...] = ("kitchen", "workshop", "household")

# (object, domain, category); categories decide which verbs apply and name the X of "What X did I Y?"
_OBJECT_TABLE: tuple[tuple[str, str, str], ...] = (
    ("knife", "kitchen", "utensil"),
    ("spoon", "kitchen", "utensil"),
    ("fork", "kitchen", "utensil"),
    ("plate", "kitchen", "utensil"),
    ("pan", "kitchen", "utensil"),
    ("cutting board", "kitchen", "utensil"),
    ("bowl", "kitchen", "container"),
    ("cup", "kitchen", "container"),
    ("mug", "kitchen", "container"),
    ("pot", "kitchen", "container"),
    ("bottle", "kitchen", "container"),
    ("jar", "kitchen", "container"),
    ("kettle", "kitchen", "device"),
    ("sponge", "kitchen", "item"),
    ("onion", "kitchen", "food"),
    ("tomato", "kitchen", "food"),
    ("carrot", "kitchen", "food"),
    ("potato", "kitchen", "food"),
    ("apple", "kitchen", "food"),
    ("egg", "kitchen", "food"),
    ("hammer", "workshop", "tool"),
    ("screwdriver", "workshop", "tool"),
    ("wrench", "workshop", "tool"),
    ("saw", "workshop", "tool"),
    ("chisel", "workshop", "tool"),
    ("clamp", "workshop", "tool"),
    ("tape measure", "workshop", "tool"),
    ("paintbrush", "workshop", "tool"),
    ("drill", "workshop", "device"),
    ("torch", "workshop", "device"),
    ("extension cord", "workshop", "device"),
    ("nail", "workshop", "item"),
    ("screw", "workshop", "item"),
    ("bolt", "workshop", "item"),
    ("plank", "workshop", "item"),
    ("ladder", "workshop", "item"),
    ("bucket", "workshop", "container"),
    ("toolbox", "workshop", "container"),
    ("glove", "workshop", "clothing"),
    ("helmet", "workshop", "clothing"),
    ("towel", "household", "clothing"),
    ("shirt", "household", "clothing"),
    ("sock", "household", "clothing"),
    ("shoe", "household", "clothing"),
    ("jacket", "household", "clothing"),
    ("hat", "household", "clothing"),
    ("blanket", "household", "clothing"),
    ("phone", "household", "device"),
    ("remote", "household", "device"),
    ("laptop", "household", "device"),
    ("lamp", "household", "device"),
    ("book", "household", "item"),
    ("pillow", "household", "item"),
    ("broom", "household", "item"),
    ("mop", "household", "item"),
    ("key", "household", "item"),
    ("wallet", "household", "item"),
    ("basket", "household", "container"),
    ("bag", "household", "container"),
    ("box", "household", "container"),
)
OBJECTS: tuple[str, ...] = tuple(name for name, _, _ in _OBJECT_TABLE)

# place -> (domain, preposition for "... the cup in the sink" / "... the cup on the table")
_PLACE_TABLE: tuple[tuple[str, str, str], ...] = (
    ("fridge", "kitchen", "in"),
    ("sink", "kitchen", "in"),
    ("counter", "kitchen", "on"),
    ("stove", "kitchen", "on"),
    ("drawer", "kitchen", "in"),
    ("workbench", "workshop", "on"),
    ("shelf", "workshop", "on"),
    ("rack", "workshop", "on"),
    ("cart", "workshop", "in"),
    ("floor", "workshop", "on"),
    ("table", "household", "on"),
    ("sofa", "household", "on"),
    ("bed", "household", "on"),
    ("closet", "household", "in"),
    ("desk", "household", "on"),
)
PLACES: tuple[str, ...] = tuple(name for name, _, _ in _PLACE_TABLE)

# verb -> (third person, past)
_VERB_FORMS: dict[str, tuple[str, str]] = {
    "pick": ("picks", "picked"),
    "put": ("puts", "put"),
    "take": ("takes", "took"),
    "hold": ("holds", "held"),
    "drop": ("drops", "dropped"),
    "move": ("moves", "moved"),
    "place": ("places", "placed"),
    "carry": ("carries", "carried"),
    "open": ("opens", "opened"),
    "close": ("closes", "closed"),
    "cut": ("cuts", "cut"),
    "wash": ("washes", "washed"),
    "pour": ("pours", "poured"),
    "turn on": ("turns on", "turned on"),
    "turn off": ("turns off", "turned off"),
    "clean": ("cleans", "cleaned"),
    "wipe": ("wipes", "wiped"),
    "fold": ("folds", "folded"),
    "stir": ("stirs", "stirred"),
    "fill": ("fills", "filled"),
}
VERBS: tuple[str, ...] = tuple(_VERB_FORMS)

PEOPLE: tuple[str, ...] = ("man", "woman", "boy", "girl", "lady", "person")

_GENERIC_VERBS = ("pick", "put", "take", "hold", "drop", "move", "place", "carry")
_CATEGORY_VERBS: dict[str, tuple[str, ...]] = {
    "utensil": ("wash", "clean", "wipe"),
    "container": ("open", "close", "wash", "pour", "fill", "stir"),
    "food": ("cut", "wash"),
    "tool": ("clean", "wipe"),
    "device": ("turn on", "turn off", "open", "close", "wipe"),
    "clothing": ("fold", "wash"),
    "item": ("clean", "wipe"),
}
_PUT_VERBS = ("put", "place", "drop")
_STATE_VERBS = ("open", "close", "turn on", "turn off", "fill", "wash", "cut", "fold", "clean")
_TAKE_VERBS = ("pick", "take")
_TOWARD_VERBS = ("move", "carry")

# Narrations that describe no event ("#C C walks to the sink"); EgoClip verb tags index VERBS + these.
_FILLERS: tuple[tuple[str, str, bool], ...] = (
    ("walk", "walks to the {place}", True),
    ("look", "looks around the {place}", True),
    ("stand", "stands up", False),
)
_ACTIVITIES = {
    "kitchen": "cooks in the kitchen",
    "workshop": "repairs things in the workshop",
    "household": "tidies up the house",
}

# The 13 official templates, verbatim (curly apostrophe, space before "?"); weights: their v1 val counts.
TEMPLATES: tuple[str, ...] = (
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
)
_TEMPLATE_WEIGHTS = np.array([644, 626, 476, 447, 312, 306, 300, 293, 168, 102, 83, 77, 25], dtype=np.float64)
_PEOPLE_TEMPLATES = (9, 10, 12)

_OBJ_CATEGORY = np.array([c for _, _, c in _OBJECT_TABLE])
_OBJ_DOMAIN = np.array([DOMAINS.index(d) for _, d, _ in _OBJECT_TABLE])
_PLACE_DOMAIN = np.array([DOMAINS.index(d) for _, d, _ in _PLACE_TABLE])
_PLACE_PREP = tuple(p for _, _, p in _PLACE_TABLE)


def _verb_weights() -> np.ndarray:
    """Compatibility weights ``[object, verb]``: generic verbs 1, the category's own verbs 2."""
    w = np.zeros((len(OBJECTS), len(VERBS)))
    for o, (_, _, category) in enumerate(_OBJECT_TABLE):
        for v in _GENERIC_VERBS:
            w[o, VERBS.index(v)] = 1.0
        for v in _CATEGORY_VERBS[category]:
            w[o, VERBS.index(v)] = 2.0
    return w / w.sum(axis=1, keepdims=True)


_VERB_CDF = np.cumsum(_verb_weights(), axis=1)


def plural(noun: str) -> str:
    """English plural of a vocabulary noun ("knife" -> "knives", "box" -> "boxes")."""
    if noun.endswith("fe"):
        return noun[:-2] + "ves"
    if noun.endswith(("s", "sh", "ch", "x", "o")):
        return noun + "es"
    return noun + "s"


# ----------------------------------------------------------------------------------------------------------
# Presets
# ----------------------------------------------------------------------------------------------------------


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
}
_QUIRK_SPLITS: dict[str, tuple[str, ...]] = {
    "missing_query_key": ("train", "val"),
    "bare_query": ("train", "val"),
    "empty_query": ("train", "test"),
}
_MANIFEST = "s3://ego4d-consortium-sharing/public/v1/full_scale/manifest.csv"
_ANNOTATION_DATE = "220216"

# ----------------------------------------------------------------------------------------------------------
# Randomness and identifiers
# ----------------------------------------------------------------------------------------------------------


def world_rng(seed: int, purpose: str, *keys: int) -> np.random.Generator:
    """An independent generator for one purpose (and e.g. one video index)."""
    return np.random.default_rng([seed, zlib.crc32(purpose.encode()), *keys])


def _uuids(rng: np.random.Generator, n: int) -> list[str]:
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


# ----------------------------------------------------------------------------------------------------------
# World model
# ----------------------------------------------------------------------------------------------------------


@dataclass
class NarrationPass:
    """One annotator's narrations of a video, in FILE order (not sorted by time)."""

    annotation_uid: str
    time: np.ndarray  # float64 seconds, rounded to 4 decimals
    event: np.ndarray  # int32 event index, -1 for a filler narration
    filler: np.ndarray  # int8 filler kind (index of _FILLERS), -1 for an event narration
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


def _durations(rng: np.random.Generator, p: DemoPreset, n: int) -> np.ndarray:
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


def _make_video(seed: int, p: DemoPreset, uid: str, role: str, index: int, duration: float) -> Video:
    rng = world_rng(seed, "video", index)
    num_frames = int(round(duration * CANONICAL_FPS))
    duration = num_frames / CANONICAL_FPS
    domain = int(rng.integers(len(DOMAINS)))
    ev_start, ev_end = _make_events(rng, p, duration)
    n = len(ev_start)

    # scenes: runs of events at one place, changing in the gap between two events
    places = rng.permutation(np.flatnonzero(_PLACE_DOMAIN == domain))[: int(rng.integers(3, 6))]
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
    domain_objs = np.flatnonzero(_OBJ_DOMAIN == domain)
    k = int(rng.integers(p.objects_per_video[0], p.objects_per_video[1] + 1))
    objs = rng.choice(domain_objs, size=k, replace=False)
    if rng.random() < 0.5:
        objs = np.append(objs, rng.integers(len(OBJECTS)))
    weights = 1.0 / np.arange(1, len(objs) + 1) ** 0.7
    ev_obj = rng.choice(objs, size=n, p=weights / weights.sum())
    ev_verb = (rng.random(n)[:, None] > _VERB_CDF[ev_obj]).sum(axis=1)
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
    filler = np.concatenate((np.full(len(said), -1), rng.integers(len(_FILLERS), size=len(gaps)))).astype(
        np.int8
    )
    place = np.concatenate((video.ev_place[said], video.state_at(t_fill)[0])).astype(np.int8)
    form = np.where(rng.random(m) < 0.7, forms[0], forms[1]).astype(np.int8)
    unsure = np.where(rng.random(m) < p.unsure_rate, rng.integers(1, 3, size=m), 0).astype(np.int8)
    lower_tag = rng.random(m) < p.tag_case_rate
    order = rng.permutation(m)  # the real file is not sorted by time
    return NarrationPass(
        annotation_uid=_uuids(rng, 1)[0],
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
    activity = _ACTIVITIES[DOMAINS[video.domain]]
    passes = [_make_pass(rng, p, video, (0, 1), f"#summary C {activity}")]
    if rng.random() < p.pass2_rate:
        passes.append(_make_pass(rng, p, video, (2, 3), f"#Summary C {activity} near the {main_place}"))
    return passes


@functools.cache
def _sentence(form: int, verb: int, obj: int, place: int, person: int, filler: int) -> str:
    """Ego4D-style narration text; forms 0/1 are first-pass style, 2/3 the second pass's paraphrases."""
    second = form >= 2
    if person >= 0:
        subject = f"#O {PEOPLE[person]} X" if second else f"#O the {PEOPLE[person]}"
    else:
        subject = "#C C"
    if filler >= 0:
        _, text, with_place = _FILLERS[filler]
        return f"{subject} {text.format(place=PLACES[place])}" if with_place else f"{subject} {text}"
    verb_name = VERBS[verb]
    article = ("an" if OBJECTS[obj][0] in "aeiou" else "a") if second else "the"
    sentence = f"{subject} {_VERB_FORMS[verb_name][0]} {article} {OBJECTS[obj]}"
    if form in (1, 3):
        return sentence
    if verb_name in _TAKE_VERBS:
        prep = "from"
    elif verb_name in _TOWARD_VERBS:
        prep = "to"
    else:
        prep = _PLACE_PREP[place]
    return f"{sentence} {prep} the {PLACES[place]}"


@functools.cache
def _tags(form: int, verb: int, obj: int, place: int, person: int, filler: int) -> tuple[str, str]:
    """EgoClip ``tag_verb`` / ``tag_noun``: indices into VERBS (+ fillers) and OBJECTS + PLACES + PEOPLE."""
    n_o, n_p = len(OBJECTS), len(PLACES)
    if filler >= 0:
        return f"[{len(VERBS) + filler}]", f"[{n_o + place}]" if _FILLERS[filler][2] else "[]"
    nouns = [obj] + ([n_o + place] if form in (0, 2) else []) + ([n_o + n_p + person] if person >= 0 else [])
    return f"[{verb}]", "[" + ", ".join(map(str, nouns)) + "]"


def _pass_strings(video: Video, npass: NarrationPass) -> tuple[list[str], list[str], list[str]]:
    """Texts, EgoClip verb tags and noun tags of one pass, in file order (texts with the planted variants).

    Strings are built once per distinct (form, verb, object, place, person, filler) and gathered.
    """
    on = npass.event >= 0
    ev = np.where(on, npass.event, 0)
    fields = (
        npass.form.astype(np.int64),
        np.where(on, video.ev_verb[ev], 0),
        np.where(on, video.ev_obj[ev], 0),
        npass.place.astype(np.int64),
        np.where(on, video.ev_person[ev], -1) + 1,
        npass.filler.astype(np.int64) + 1,
    )
    radix = (4, len(VERBS), len(OBJECTS), len(PLACES), len(PEOPLE) + 1, len(_FILLERS) + 1)
    code = np.ravel_multi_index(fields, radix)
    uniq, inverse = np.unique(code, return_inverse=True)
    keys = [
        (f, v, o, pl, pe - 1, k - 1)
        for f, v, o, pl, pe, k in zip(*(a.tolist() for a in np.unravel_index(uniq, radix)), strict=True)
    ]
    texts = np.array([_sentence(*k) for k in keys], dtype=object)[inverse].tolist()
    tags = [_tags(*k) for k in keys]
    verbs = np.array([t[0] for t in tags], dtype=object)[inverse].tolist()
    nouns = np.array([t[1] for t in tags], dtype=object)[inverse].tolist()
    for i in np.flatnonzero(npass.unsure | npass.lower_tag).tolist():
        text = texts[i]
        if npass.lower_tag[i]:
            text = text[:2].lower() + text[2:]
        if npass.unsure[i] == 1:  # mid-sentence, after the verb ("#C C picks #unsure the knife")
            words = text.split(" ")
            cut = 3 if words[0].lower() == "#c" else 4
            text = " ".join(words[:cut] + ["#unsure"] + words[cut:])
        elif npass.unsure[i] == 2:
            text = f"{text} #unsure"
        texts[i] = text
    return texts, verbs, nouns


# ----------------------------------------------------------------------------------------------------------
# NLQ annotations
# ----------------------------------------------------------------------------------------------------------


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
    category = str(_OBJ_CATEGORY[video.ev_obj[e]])
    na = "[verb_not_applicable]"
    if tid == 0:
        ref_obj, ref_verb = OBJECTS[video.ev_obj[ref]], VERBS[video.ev_verb[ref]]
        when = "before" if ref > e else "after"
        text = f"Where was the {obj} {when} I {_VERB_FORMS[ref_verb][1]} the {ref_obj}?"
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
        prep = _PLACE_PREP[video.ev_place[e]]
        return f"What {category} is {prep} the {place}?", {"slot_x": category, "verb_x": na, "slot_y": place}
    if tid == 6:
        return f"How many {plural(obj)} did I {verb}?", {"slot_x": obj, "verb_x": verb}
    if tid == 7:
        return f"In what location did I see the {obj}?", {"slot_x": obj, "verb_x": na}
    if tid == 8:
        return f"Did I {verb} the {obj}?", {"slot_x": obj, "verb_x": verb}
    if tid == 9:
        return f"Who did I interact with when I {_VERB_FORMS[verb][1]} the {obj}?", {
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
        return events[by_c & np.isin(verbs, _PUT_VERBS)]
    if tid in (4, 6):
        return events[by_c]
    if tid == 8:
        return events[by_c & np.isin(verbs, _STATE_VERBS)]
    if tid in _PEOPLE_TEMPLATES:
        return events[~by_c]
    return events


def _raw_tags(q: dict) -> list[str | None]:
    """``[template, query, slot_x, verb_x, slot_y, verb_y]`` up to the last key the query has."""
    keys = ("template", "query", "slot_x", "verb_x", "slot_y", "verb_y")
    present = [i for i, k in enumerate(keys) if k in q]
    return [q.get(k) for k in keys[: present[-1] + 1]] if present else []


def _language_query(
    video: Video, vs: float, s: float, e: float, template: int | None, text: str, slots: dict[str, str]
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
        tid = int(rng.choice(len(TEMPLATES), p=_TEMPLATE_WEIGHTS / _TEMPLATE_WEIGHTS.sum()))
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
        out.append(_language_query(video, vs, s, e, tid, text, slots))
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


def _pick(rng: np.random.Generator, pool: list, rate: float) -> list:
    """``max(1, round(rate * len(pool)))`` distinct items of ``pool`` (fewer if the pool is smaller)."""
    k = min(len(pool), max(1, round(rate * len(pool))))
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
    return _language_query(video, vs, s, e, 3, text, slots)


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


def _make_nlq_split(seed: int, p: DemoPreset, split: str, videos: list[Video], quirks: Counter) -> list[dict]:
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
            clip = _clip_record(vs, ve, _uuids(rng, 2))
            for _ in range(2 if rng.random() < p.two_annotations_rate else 1):
                lq = _annotation_queries(rng, p, video, clip["video_start_sec"], clip["clip_end_sec"])
                clip["annotations"].append({"annotation_uid": _uuids(rng, 1)[0], "language_queries": lq})
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
    return records


def _make_em_train(seed: int, nlq_train: list[dict], videos: list[Video]) -> dict[str, list[dict]]:
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
            clip_uid = _uuids(rng, 1)[0]
            for task in tasks:
                add(task, video.uid, clip_uid, _round(vs), _round(ve))
    return {
        task: [
            {"video_uid": uid, "split": "train", "clips": sorted(c, key=lambda c: c["video_start_sec"])}
            for uid, c in sorted(by_video.items())
        ]
        for task, by_video in files.items()
    }


def make_world(preset: str | DemoPreset = "demo", seed: int = 0) -> World:
    """Generate the whole world in memory (videos, events, narrations, annotations); writes nothing."""
    p = PRESETS[preset] if isinstance(preset, str) else preset
    rng = world_rng(seed, "videos")
    counts = (
        p.nlq_train_videos,
        p.nlq_val_videos,
        p.nlq_test_videos,
        p.em_train_videos,
        p.narration_only_videos,
    )
    roles = [role for role, n in zip(ROLES, counts, strict=True) for _ in range(n)]
    uids = _uuids(rng, len(roles))
    durations = _durations(rng, p, len(roles))
    max_clips = len(p.clips_per_video)
    for i, role in enumerate(roles):  # NLQ videos must hold their clips: room for the most clips drawn
        if role.startswith("nlq") and max_clips > 1:
            durations[i] = max(durations[i], max_clips * (CLIP_SEC + 1.0) + rng.uniform(0, 300))
    videos = [
        _make_video(seed, p, uid, role, i, float(d))
        for i, (uid, role, d) in enumerate(
            tqdm(list(zip(uids, roles, durations, strict=True)), desc="demo world: videos", disable=None)
        )
    ]
    quirks: Counter = Counter()
    nlq = {
        split: _make_nlq_split(seed, p, split, [v for v in videos if v.role == f"nlq_{split}"], quirks)
        for split in NLQ_SPLITS
    }
    em_train = _make_em_train(seed, nlq["train"], [v for v in videos if v.role == "em_train"])
    return World(p, seed, sorted(videos, key=lambda v: v.uid), nlq, em_train, quirks)


# ----------------------------------------------------------------------------------------------------------
# Features
# ----------------------------------------------------------------------------------------------------------


def video_features(world: World, video: Video, vectors: dict[str, np.ndarray]) -> np.ndarray:
    """The planted features of one video: ``[num_features(num_frames), D]`` float16."""
    p = world.preset
    dim = vectors["verbs"].shape[1]
    n = num_features(video.num_frames)
    place, ev = video.state_at(np.arange(n) / FEATURES_PER_SEC)
    x = p.place_weight * vectors["places"][place]
    on = ev >= 0
    e = ev[on]
    x[on] += vectors["verbs"][video.ev_verb[e]] + vectors["objects"][video.ev_obj[e]]
    person = video.ev_person[e]
    rows = np.flatnonzero(on)[person >= 0]
    x[rows] += vectors["people"][person[person >= 0]]
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    rng = world_rng(world.seed, "features", video.index, dim)
    x += (p.noise / math.sqrt(dim)) * rng.standard_normal((n, dim), dtype=np.float32)
    x *= math.sqrt(dim)  # entries of order 1, the scale of real features and of VSLNet's positions
    return x.astype(np.float16)


# ----------------------------------------------------------------------------------------------------------
# Writers
# ----------------------------------------------------------------------------------------------------------


def _nlq_file(split: str, videos: list[dict], description: str) -> dict:
    return {
        "version": "1",
        "date": _ANNOTATION_DATE,
        "description": description,
        "manifest": _MANIFEST,
        "videos": videos,
    }


def _unannotated(videos: list[dict]) -> list[dict]:
    """The test split as published: same clips, each language query only ``{"query": ...}``."""
    return [
        {
            **v,
            "clips": [
                {
                    **c,
                    "annotations": [
                        {
                            "annotation_uid": a["annotation_uid"],
                            "language_queries": [
                                {"query": q["query"]} if "query" in q else {} for q in a["language_queries"]
                            ],
                        }
                        for a in c["annotations"]
                    ],
                }
                for c in v["clips"]
            ],
        }
        for v in videos
    ]


_EGOCLIP_HEADER = (
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
)


def _pass_json(video: Video, npass: NarrationPass, texts: list[str]) -> str:
    """One ``narration_pass_N`` object, formatted by hand (the texts are plain words, nothing to escape)."""
    uid = npass.annotation_uid
    item = (
        '{"timestamp_sec": %r, "timestamp_frame": %d, "_unmapped_timestamp_sec": %r, '
        '"narration_text": "%s", "annotation_uid": "' + uid + '"}'
    )
    times = npass.time.tolist()
    frames = np.round(npass.time * CANONICAL_FPS).astype(np.int64).tolist()
    items = ",".join([item % row for row in zip(times, frames, times, texts, strict=True)])
    summary = (
        f'{{"start_sec": 0.0, "end_sec": {video.duration_sec}, '
        f'"summary_text": "{npass.summary}", "annotation_uid": "{uid}"}}'
    )
    return f'{{"narrations": [{items}], "summaries": [{summary}]}}'


def _write_narrations(world: World, json_path: Path, csv_path: Path) -> int:
    """Stream ``narration.json`` and ``egoclip.csv`` video by video (bounded memory at full scale).

    EgoClip has one row per narration of every pass, in file order, windows by the EgoClip rule
    (:mod:`egonlq.data.egoclip`: beta per (video, pass), alpha their mean, clamped to the video). Returns the
    number of narrations (= EgoClip rows).
    """
    betas = mean_gaps({(v.uid, j): p.time for v in world.videos for j, p in enumerate(v.passes)})
    alpha = alpha_of(betas)
    logger.info("egoclip.csv: alpha = %.4f s over %d (video, pass) groups", alpha, len(betas))
    total = 0
    with (
        atomic_path(json_path) as tmp_json,
        atomic_path(csv_path) as tmp_csv,
        open(tmp_json, "w", encoding="utf-8") as fj,
        open(tmp_csv, "w", encoding="utf-8") as fc,
    ):
        fc.write("\t".join(_EGOCLIP_HEADER) + "\n")
        fj.write("{")
        for k, video in enumerate(tqdm(world.videos, desc="demo world: narrations", disable=None)):
            fj.write(("," if k else "") + f'"{video.uid}": {{')
            for j, npass in enumerate(video.passes):
                texts, tag_verbs, tag_nouns = _pass_strings(video, npass)
                fj.write(f'"narration_pass_{j + 1}": {_pass_json(video, npass, texts)}, ')
                start, end = egoclip_windows(
                    npass.time, betas[(video.uid, j)], alpha, duration=video.duration_sec
                )
                head = f"%d\t{video.uid}\t{video.duration_sec:.6f}\tnarration_pass_{j + 1}\t"
                row = head + "%d\t%r\t%.6f\t%.6f\t%s\t%s\t%s\n"
                columns = (npass.time.tolist(), start.tolist(), end.tolist(), texts, tag_verbs, tag_nouns)
                fc.writelines([row % (total + i, i, *r) for i, r in enumerate(zip(*columns, strict=True))])
                total += len(texts)
            fj.write('"status": "complete"}')
        fj.write("}\n")
    return total


def _file_size(paths: Iterable[Path]) -> int:
    return sum(p.stat().st_size for p in paths)


def build_world(
    out_dir: Path,
    *,
    preset: str = "demo",
    seed: int = 0,
    feature_name: str = "demo_features",
    feature_dim: int = 256,
    write_features: bool | None = None,
    render_videos: int | None = None,
) -> dict:
    """Write the demo world under ``out_dir`` in the official Ego4D layout; return counts (see module doc).

    ``write_features`` / ``render_videos`` default to the preset's values (features for tiny/demo only).
    Every file is written atomically. The stats dict holds video counts per role, clips, annotations and
    queries per split, narration and EgoClip counts, every planted quirk (``quirk_<kind>``), the files
    written and their bytes.
    """
    if preset not in PRESETS:
        raise ValueError(f"unknown demo preset {preset!r}; expected one of {sorted(PRESETS)}")
    t0 = time.perf_counter()
    out_dir = Path(out_dir)
    world = make_world(preset, seed)
    p = world.preset
    write_features = p.write_features if write_features is None else write_features
    render_videos = p.render_videos if render_videos is None else render_videos
    ann = out_dir / "v1" / "annotations"
    written: list[Path] = []

    def json_file(obj: object, path: Path) -> None:
        write_json(obj, path)
        written.append(path)

    json_file(
        {
            "videos": [
                {
                    "video_uid": v.uid,
                    "duration_sec": round(v.duration_sec, 6),
                    "video_metadata": {"fps": CANONICAL_FPS, "num_frames": v.num_frames},
                }
                for v in world.videos
            ]
        },
        out_dir / "ego4d.json",
    )
    json_file(_nlq_file("train", world.nlq["train"], "NLQ Annotations (train)"), ann / "nlq_train.json")
    json_file(_nlq_file("val", world.nlq["val"], "NLQ Annotations (val)"), ann / "nlq_val.json")
    json_file(
        _nlq_file("test", _unannotated(world.nlq["test"]), "NLQ Annotations (test unannotated)"),
        ann / "nlq_test_unannotated.json",
    )
    json_file(
        _nlq_file("test", world.nlq["test"], "NLQ Annotations (test ground truth, demo world only)"),
        ann / "nlq_test_gt.json",
    )
    json_file(
        _nlq_file("train", world.em_train["vq"], "VQ Annotations (train, clips only)"), ann / "vq_train.json"
    )
    json_file(
        _nlq_file("train", world.em_train["moments"], "MQ Annotations (train, clips only)"),
        ann / "moments_train.json",
    )
    n_narrations = _write_narrations(world, ann / "narration.json", out_dir / "egoclip.csv")
    written += [ann / "narration.json", out_dir / "egoclip.csv"]

    n_features = 0
    if write_features:
        vectors = vocabulary_vectors(seed, feature_dim)
        for video in tqdm(world.videos, desc="demo world: features", disable=None):
            path = out_dir / "v1" / feature_name / f"{video.uid}.pt"
            save_video_features(video_features(world, video, vectors), path)
            written.append(path)
            n_features += 1

    rendered = []
    if render_videos:
        from egonlq.demo.render import render_world_videos  # imports PyAV only when rendering

        rendered = render_world_videos(world, out_dir / "v1" / "full_scale", render_videos)
        written.extend(rendered)

    stats = _stats(world, n_narrations)
    stats.update(
        feature_files=n_features,
        feature_dim=feature_dim if write_features else 0,
        rendered_videos=len(rendered),
        files_written=len(written),
        bytes_written=_file_size(written),
        seconds=round(time.perf_counter() - t0, 3),
    )
    logger.info("demo world %r (seed %d) written to %s: %s", preset, seed, out_dir, stats)
    return stats


def _stats(world: World, n_narrations: int) -> dict:
    roles = Counter(v.role for v in world.videos)
    stats: dict = {"preset": world.preset.name, "seed": world.seed, "videos": len(world.videos)}
    stats.update({f"videos_{role}": roles[role] for role in ROLES})
    for split, records in world.nlq.items():
        clips = [c for v in records for c in v["clips"]]
        annotations = [a for c in clips for a in c["annotations"]]
        stats[f"clips_{split}"] = len(clips)
        stats[f"annotations_{split}"] = len(annotations)
        stats[f"queries_{split}"] = sum(len(a["language_queries"]) for a in annotations)
    stats["clips_vq_train"] = sum(len(v["clips"]) for v in world.em_train["vq"])
    stats["clips_moments_train"] = sum(len(v["clips"]) for v in world.em_train["moments"])
    stats["narrations"] = n_narrations
    stats["narrations_pass_2"] = sum(len(v.passes[1].time) for v in world.videos if len(v.passes) > 1)
    stats["videos_with_pass_2"] = sum(len(v.passes) > 1 for v in world.videos)
    stats["summaries"] = sum(len(v.passes) for v in world.videos)
    stats["egoclip_rows"] = n_narrations
    stats.update({f"quirk_{kind}": world.quirks[kind] for kind in QUIRK_RATES})
    return stats
