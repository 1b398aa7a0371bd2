"""Rendered demo videos: small real mp4 files showing the demo world's scenes and events.

Each frame draws the scene's place as a muted background colour with a border pattern, and the active
event's object as a saturated shape (colour and shape fixed per object) at a position fixed per verb; an event
done by another person adds a person glyph of that person's colour on the left. Mild noise is added. The
code below (``PLACE_STYLE``, ``OBJECT_STYLE``, ``VERB_ANCHOR``, ``PERSON_COLOUR``, gathered in
``VISUAL_CODE``) is public data, so that an offline deterministic image encoder can be built that is truly
meaningful on these frames.

Frame ``k`` shows the world at ``k / fps`` seconds: time ``t`` in the mp4 is time ``t`` in the canonical
video.
"""

from __future__ import annotations

import colorsys
import functools
import logging
import math
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from egonlq.demo.model import Video, World, world_rng
from egonlq.demo.vocabulary import OBJECTS, PEOPLE, PLACES, VERBS
from egonlq.io import atomic_path
from egonlq.progress import tqdm

logger = logging.getLogger(__name__)

SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "diamond", "cross", "ring")
BORDERS: tuple[str, ...] = ("solid", "dashed", "dotted")
_N_HUES = 10
_BORDER_PX = 6  # at 96 px
_OBJECT_RADIUS = 13  # at 96 px
_NOISE = 4  # uniform integer noise amplitude per channel


def _rgb(h: float, s: float, v: float) -> tuple[int, int, int]:
    r, g, b = colorsys.hsv_to_rgb(h % 1.0, s, v)
    return round(r * 255), round(g * 255), round(b * 255)


# place -> (background RGB, border RGB, border pattern): muted colours, distinct hue/value per place
PLACE_STYLE: dict[str, tuple[tuple[int, int, int], tuple[int, int, int], str]] = {
    place: (
        _rgb(i / len(PLACES) + 0.03, 0.22, 0.78 if i % 2 else 0.62),
        _rgb(i / len(PLACES) + 0.03, 0.35, 0.30),
        BORDERS[i % len(BORDERS)],
    )
    for i, place in enumerate(PLACES)
}
# object -> (RGB, shape): saturated colours (10 hues) x 6 shapes, unique per object
OBJECT_STYLE: dict[str, tuple[tuple[int, int, int], str]] = {
    obj: (_rgb(i % _N_HUES / _N_HUES, 1.0, 1.0), SHAPES[i // _N_HUES]) for i, obj in enumerate(OBJECTS)
}
# verb -> object centre (x, y) at 96 px: a 5 x 4 grid
VERB_ANCHOR: dict[str, tuple[int, int]] = {
    verb: (30 + 9 * (i % 5), 34 + 9 * (i // 5)) for i, verb in enumerate(VERBS)
}
# person -> glyph RGB (dark or pale, never saturated: it cannot be mistaken for an object)
PERSON_COLOUR: dict[str, tuple[int, int, int]] = {
    person: _rgb(i / len(PEOPLE), 0.15, 0.12 if i % 2 else 0.97) for i, person in enumerate(PEOPLE)
}
VISUAL_CODE: dict[str, dict] = {
    "places": PLACE_STYLE,
    "objects": OBJECT_STYLE,
    "verbs": VERB_ANCHOR,
    "people": PERSON_COLOUR,
}


def _scale(size: int, px: float) -> int:
    return max(1, round(px * size / 96))


@functools.lru_cache(maxsize=64)
def _background(place: str, size: int) -> np.ndarray:
    bg, border, pattern = PLACE_STYLE[place]
    img = np.empty((size, size, 3), dtype=np.uint8)
    img[:] = bg
    b = _scale(size, _BORDER_PX)
    ring = np.zeros((size, size), dtype=bool)
    ring[:b], ring[-b:], ring[:, :b], ring[:, -b:] = True, True, True, True
    yy, xx = np.mgrid[:size, :size]
    along = np.where((yy < b) | (yy >= size - b), xx, yy)  # position along the border
    if pattern == "dashed":
        ring &= (along // _scale(size, 8)) % 2 == 0
    elif pattern == "dotted":
        ring &= (along // _scale(size, 3)) % 2 == 0
    img[ring] = border
    img.flags.writeable = False
    return img


@functools.lru_cache(maxsize=512)
def _shape_mask(shape: str, cx: int, cy: int, r: int, size: int) -> np.ndarray:
    yy, xx = np.mgrid[:size, :size]
    dx, dy = xx - cx, yy - cy
    if shape == "circle":
        m = dx * dx + dy * dy <= r * r
    elif shape == "square":
        m = (np.abs(dx) <= 0.85 * r) & (np.abs(dy) <= 0.85 * r)
    elif shape == "triangle":
        m = (dy >= -r) & (dy <= r) & (np.abs(dx) <= (dy + r) / 2)
    elif shape == "diamond":
        m = np.abs(dx) + np.abs(dy) <= r
    elif shape == "cross":
        t = r / 3
        m = ((np.abs(dx) <= t) & (np.abs(dy) <= r)) | ((np.abs(dy) <= t) & (np.abs(dx) <= r))
    else:  # ring
        d2 = dx * dx + dy * dy
        m = (d2 <= r * r) & (d2 >= (0.55 * r) ** 2)
    m.flags.writeable = False
    return m


@functools.lru_cache(maxsize=16)
def _person_mask(size: int) -> np.ndarray:
    yy, xx = np.mgrid[:size, :size]
    s = size / 96
    head = (xx - 15 * s) ** 2 + (yy - 36 * s) ** 2 <= (5 * s) ** 2
    body = (np.abs(xx - 15 * s) <= 4 * s) & (yy >= 42 * s) & (yy <= 62 * s)
    m = head | body
    m.flags.writeable = False
    return m


def object_mask(obj: str, verb: str, size: int = 96) -> np.ndarray:
    """Boolean ``[size, size]`` mask of the pixels where ``obj`` is drawn for an event with verb ``verb``."""
    cx, cy = VERB_ANCHOR[verb]
    return _shape_mask(
        OBJECT_STYLE[obj][1], _scale(size, cx), _scale(size, cy), _scale(size, _OBJECT_RADIUS), size
    )


@functools.lru_cache(maxsize=4096)
def _clean_frame(place: str, obj: str | None, verb: str | None, person: str | None, size: int) -> np.ndarray:
    img = _background(place, size).astype(np.int16)
    if person is not None:
        img[_person_mask(size)] = PERSON_COLOUR[person]
    if obj is not None:
        img[object_mask(obj, verb or VERBS[0], size)] = OBJECT_STYLE[obj][0]
    img.flags.writeable = False
    return img


def _noisy(clean: np.ndarray, noise: np.ndarray) -> np.ndarray:
    return np.clip(clean + noise, 0, 255).astype(np.uint8)


def render_frame(
    place: str,
    obj: str | None,
    verb: str | None,
    rng: np.random.Generator,
    *,
    person: str | None = None,
    size: int = 96,
) -> np.ndarray:
    """One ``[size, size, 3]`` uint8 RGB frame: the place, the object (if an event is active), mild noise."""
    noise = rng.integers(-_NOISE, _NOISE + 1, size=(size, size, 3), dtype=np.int16)
    return _noisy(_clean_frame(place, obj, verb, person, size), noise)


def render_frame_count(duration_sec: float, fps: float) -> int:
    """Frames of a rendered video: frame ``k`` at ``k / fps`` for every ``k / fps < duration``."""
    return max(1, math.ceil(duration_sec * fps - 1e-9))


def render_video(video: Video, path: Path, *, fps: float, size: int, rng: np.random.Generator) -> int:
    """Render one video to ``path`` (mp4, H.264, atomic); returns the number of frames."""
    n = render_frame_count(video.duration_sec, fps)
    places, events = video.state_at(np.arange(n) / fps)
    # a bank of noise images drawn once, picked at random per frame: as good as fresh noise, much faster
    bank = rng.integers(-_NOISE, _NOISE + 1, size=(16, size, size, 3), dtype=np.int16)
    picks = rng.integers(len(bank), size=n)
    with atomic_path(path) as tmp:
        with av.open(str(tmp), mode="w", format="mp4") as container:
            stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1000))
            stream.width = stream.height = size
            stream.pix_fmt = "yuv420p"
            stream.codec_context.thread_count = 1  # single-threaded x264 is deterministic
            stream.options = {"crf": "26", "preset": "veryfast"}
            rows = zip(places.tolist(), events.tolist(), picks.tolist(), strict=True)
            for index, (place, ev, k) in enumerate(rows):
                obj = verb = person = None
                if ev >= 0:
                    obj, verb = OBJECTS[video.ev_obj[ev]], VERBS[video.ev_verb[ev]]
                    person = PEOPLE[video.ev_person[ev]] if video.ev_person[ev] >= 0 else None
                frame = av.VideoFrame.from_ndarray(
                    _noisy(_clean_frame(PLACES[place], obj, verb, person, size), bank[k]), format="rgb24"
                )
                frame.pts = index  # explicit timestamps (in 1/fps): the encoder never guesses them
                for packet in stream.encode(frame):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
    return n


def videos_to_render(world: World, count: int) -> list[Video]:
    """Which videos are rendered: NLQ videos with clips, in uid order; one in five from train, the rest from
    val (keyframe selection is evaluated on val queries)."""
    with_clips = {v["video_uid"] for split in ("train", "val") for v in world.nlq[split] if v["clips"]}
    val = [v for v in world.videos if v.role == "nlq_val" and v.uid in with_clips]
    train = [v for v in world.videos if v.role == "nlq_train" and v.uid in with_clips]
    n_train = min(len(train), count // 5)
    chosen = val[: count - n_train]
    return chosen + train[: count - len(chosen)]


def render_world_videos(world: World, out_dir: Path, count: int) -> list[Path]:
    """Render ``count`` videos of ``world`` as ``out_dir/<video_uid>.mp4``; returns the paths written."""
    p = world.preset
    paths = []
    for video in tqdm(videos_to_render(world, count), desc="demo world: mp4", disable=None):
        path = Path(out_dir) / f"{video.uid}.mp4"
        frames = render_video(
            video,
            path,
            fps=p.render_fps,
            size=p.render_size,
            rng=world_rng(world.seed, "render", video.index),
        )
        logger.info("rendered %s: %d frames at %g fps", path.name, frames, p.render_fps)
        paths.append(path)
    return paths
