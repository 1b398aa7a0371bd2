"""Image/text encoders that put video frames and query texts in one space, for per-frame relevance scores.

Every encoder follows :class:`FrameEncoder`: ``encode_images(frames uint8 [B, H, W, 3]) -> float32 [B, D]``
and ``encode_texts(texts) -> float32 [T, D]``, both L2-normalised (an all-zero row stays zero), so that the
cosine of a frame and a text is a plain dot product. Two backends:

- :class:`CLIPEncoder`: a local Hugging Face CLIP folder (model, tokenizer, image processor), the projected
  image and text features of the AKS ``clip`` scorer (aks.md, section 3). Nothing is downloaded.
- :class:`DemoEncoder` (``demo-visual-code``): an offline, deterministic encoder that reads the public visual
  code of the demo's rendered videos (``egonlq.demo.render``): which object is drawn (colour x shape), where
  (the verb's anchor), on which place (background colour) and whether another person's glyph is there. It
  embeds a frame into a vocabulary space (one dimension per object, verb, place and person, plus a coarse
  hue histogram) and maps the words of a query into the same space, so that frame-text cosine is high
  exactly when the frame shows what the query asks about. On real videos it is meaningless.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import logging
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from egonlq.demo.render import (
    OBJECT_STYLE,
    PERSON_COLOUR,
    PLACE_STYLE,
    SHAPES,
    VERB_ANCHOR,
    object_mask,
    render_frame,
)
from egonlq.demo.vocabulary import OBJECTS, PEOPLE, PLACES, VERBS, plural
from egonlq.errors import InputError

logger = logging.getLogger(__name__)

ENCODER_KINDS = ("demo", "clip", "blip")
CLIP_TOKENIZER_FILES = ("tokenizer.json", "vocab.json")
CLIP_MAX_TOKENS = 77  # the reference truncates the question to CLIP's 77 positions


@runtime_checkable
class FrameEncoder(Protocol):
    """Frames and texts into one L2-normalised space of size ``dim``; ``fingerprint`` changes with weights."""

    name: str
    dim: int

    def encode_images(self, frames: np.ndarray) -> np.ndarray: ...

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray: ...

    def fingerprint(self) -> str: ...


def l2_normalise(x: np.ndarray) -> np.ndarray:
    """Rows divided by their L2 norm (computed in float64: tiny float32 rows do not underflow), float32; rows
    of norm 0 stay 0."""
    x = np.asarray(x, dtype=np.float64)
    norm = np.linalg.norm(x, axis=-1, keepdims=True)
    return np.divide(x, norm, out=np.zeros_like(x), where=norm > 0).astype(np.float32)


def check_frames(frames: np.ndarray) -> np.ndarray:
    """``frames`` as a uint8 ``[B, H, W, 3]`` array, or a ValueError saying what it is."""
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[3] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be uint8 [B, H, W, 3] RGB, got {frames.dtype} {frames.shape}")
    return frames


def make_encoder(
    kind: str, *, model_path: Path | None = None, device: str = "cpu", batch_size: int = 32
) -> FrameEncoder:
    """The encoder named by ``kind`` (one of :data:`ENCODER_KINDS`); ``clip`` and ``blip`` (its ITC
    embeddings, :mod:`egonlq.video.blip`) need ``model_path``."""
    if kind == "demo":
        return DemoEncoder()
    if kind == "clip":
        if model_path is None:
            raise InputError(None, "the clip frame encoder needs a model folder", field="model_path")
        return CLIPEncoder(model_path, device=device, batch_size=batch_size)
    if kind == "blip":
        from egonlq.video.blip import BlipEncoder

        if model_path is None:
            raise InputError(None, "the blip frame encoder needs a model folder", field="model_path")
        return BlipEncoder(model_path, device=device, batch_size=batch_size)
    raise ValueError(f"unknown frame encoder {kind!r}, expected one of {ENCODER_KINDS}")


# ------------------------------------------------------------------------------------------------- CLIP


class CLIPEncoder:
    """A local Hugging Face CLIP: ``visual_projection(vision pooled)`` and ``text_projection(text pooled)``.

    Images go through the folder's image processor (resize, centre crop, normalise), texts through its
    tokenizer truncated to ``min(77, max_position_embeddings)`` tokens. Cosine with no logit scale is the
    AKS ``clip`` score. The folder is checked before anything is loaded.
    """

    def __init__(self, model_path: str | Path, *, device: str = "cpu", batch_size: int = 32):
        import torch
        from transformers import CLIPModel

        self.model_path = Path(model_path)
        _check_clip_folder(self.model_path)
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.tokenizer, self.processor, self.model = load_image_text_model(
            self.model_path, CLIPModel, "the CLIP model", device
        )
        self._torch = torch
        self.device = torch.device(device)
        self.batch_size = batch_size
        config = self.model.config
        self.dim = int(config.projection_dim)
        self.max_tokens = int(min(CLIP_MAX_TOKENS, config.text_config.max_position_embeddings))
        self.name = f"clip:{self.model_path.name}"
        self._fingerprint = model_folder_fingerprint(self.model_path)

    def encode_images(self, frames: np.ndarray) -> np.ndarray:
        frames = check_frames(frames)
        out = np.zeros((len(frames), self.dim), dtype=np.float32)
        for start in range(0, len(frames), self.batch_size):
            batch = list(frames[start : start + self.batch_size])
            pixels = self.processor(images=batch, return_tensors="pt")["pixel_values"].to(self.device)
            with self._torch.inference_mode():
                pooled = self.model.vision_model(pixel_values=pixels).pooler_output
                out[start : start + len(batch)] = self.model.visual_projection(pooled).float().cpu().numpy()
        return l2_normalise(out)

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        texts = list(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for start in range(0, len(texts), self.batch_size):
            batch = texts[start : start + self.batch_size]
            tokens = self.tokenizer(
                batch, padding=True, truncation=True, max_length=self.max_tokens, return_tensors="pt"
            ).to(self.device)
            with self._torch.inference_mode():
                pooled = self.model.text_model(
                    input_ids=tokens["input_ids"], attention_mask=tokens["attention_mask"]
                ).pooler_output
                out[start : start + len(batch)] = self.model.text_projection(pooled).float().cpu().numpy()
        return l2_normalise(out)

    def fingerprint(self) -> str:
        return self._fingerprint


def load_image_text_model(model_path: Path, model_class: type, what: str, device: str) -> tuple:
    """(tokenizer, image processor, frozen model in eval mode on ``device``) of a local image-text model
    folder (CLIP, BLIP); a folder transformers cannot load is an error naming it."""
    import torch
    from transformers import AutoImageProcessor, AutoTokenizer

    # without torchvision, transformers falls back to the PIL processor anyway (with a warning)
    backend = {} if importlib.util.find_spec("torchvision") else {"backend": "pil"}
    try:
        tokenizer = AutoTokenizer.from_pretrained(model_path, local_files_only=True)
        processor = AutoImageProcessor.from_pretrained(model_path, local_files_only=True, **backend)
        model = model_class.from_pretrained(model_path, local_files_only=True, dtype=torch.float32)
    except (OSError, ValueError, TypeError) as e:
        raise InputError(model_path, f"cannot load {what}: {e}") from e
    model.requires_grad_(False).eval().to(torch.device(device))
    return tokenizer, processor, model


def write_tiny_random_clip(out_dir: str | Path, *, seed: int = 0, image_size: int = 32) -> Path:
    """Save a tiny random CLIP (model, character-level tokenizer, image processor) in ``out_dir``.

    Its embeddings mean nothing: it exercises :class:`CLIPEncoder` through the real ``from_pretrained`` APIs
    (tests, benchmarks, an offline demo) without any downloaded weights.
    """
    import string

    import torch
    from transformers import CLIPConfig, CLIPImageProcessorPil, CLIPModel, CLIPTokenizer

    out_dir = Path(out_dir)
    chars = [*string.ascii_lowercase, *string.digits, *"?'.,-!"]
    vocab = {c: i for i, c in enumerate(chars)}
    vocab.update({f"{c}</w>": len(chars) + i for i, c in enumerate(chars)})
    bos, eos = "<|startoftext|>", "<|endoftext|>"
    vocab.update({bos: len(vocab), eos: len(vocab) + 1})
    tokenizer = CLIPTokenizer(vocab=vocab, merges=[])
    config = CLIPConfig(
        text_config={
            "vocab_size": len(vocab),
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "max_position_embeddings": CLIP_MAX_TOKENS,
            "bos_token_id": vocab[bos],
            "eos_token_id": vocab[eos],
            "pad_token_id": vocab[eos],
        },
        vision_config={
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "image_size": image_size,
            "patch_size": 8,
        },
        projection_dim=16,
    )
    torch.manual_seed(seed)
    CLIPModel(config).save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    size = {"shortest_edge": image_size}
    crop = {"height": image_size, "width": image_size}
    CLIPImageProcessorPil(size=size, crop_size=crop).save_pretrained(out_dir)  # same config as the torch one
    return out_dir


def _check_clip_folder(path: Path) -> None:
    """Fail before loading anything when the folder cannot hold a CLIP (model, tokenizer, image processor)."""
    check_model_folder(path, "clip", "CLIP", CLIP_TOKENIZER_FILES, processor_hint="CLIPImageProcessor")


def check_model_folder(
    path: Path, model_type: str, label: str, tokenizer_files: Sequence[str], *, processor_hint: str
) -> None:
    """Fail before loading anything when ``path`` is not a local Hugging Face folder of ``model_type`` with
    its config, image processor, tokenizer (one of ``tokenizer_files``) and weights."""
    if not path.is_dir():
        raise InputError(
            path, f"{label} model folder not found", expected=f"a local Hugging Face {label} folder"
        )
    if not (path / "config.json").is_file():
        raise InputError(path, f"{label} model folder has no config.json")
    found = _read_model_type(path / "config.json")
    if found != model_type:
        raise InputError(
            path / "config.json", f"model_type is {found!r}", field="model_type", expected=repr(model_type)
        )
    if not (path / "preprocessor_config.json").is_file():
        raise InputError(
            path,
            f"{label} model folder has no image processor",
            expected=f"preprocessor_config.json (save a {processor_hint} or the model's processor)",
        )
    if not any((path / name).is_file() for name in tokenizer_files):
        raise InputError(
            path, f"{label} model folder has no tokenizer", expected=f"one of {tuple(tokenizer_files)}"
        )
    if not [*path.glob("*.safetensors"), *path.glob("*.bin")]:
        raise InputError(path, f"{label} model folder has no weights", expected="*.safetensors or *.bin")


def _read_model_type(path: Path) -> object:
    try:
        return json.loads(path.read_text(encoding="utf-8")).get("model_type")
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError) as e:
        raise InputError(path, f"not a JSON object: {e}") from e


def model_folder_fingerprint(path: Path) -> str:
    """The text encoder's model fingerprint (config, tokenizer, weights) plus the image processor config and
    BPE merges: what a CLIP or BLIP folder's scores depend on."""
    from egonlq.grounding.text_encoder import model_fingerprint

    digest = hashlib.sha256(model_fingerprint(path).encode())
    for name in ("preprocessor_config.json", "merges.txt"):
        if (path / name).is_file():
            digest.update(name.encode() + b"\0" + (path / name).read_bytes())
    return digest.hexdigest()


# ------------------------------------------------------------------------------------------ demo encoder

# Block weights: a frame-text cosine is the weighted sum of the blocks' agreements, so the object counts most.
_BLOCKS: tuple[tuple[str, tuple[str, ...], float], ...] = (
    ("object", OBJECTS, 1.0),
    ("place", PLACES, 0.6),
    ("verb", VERBS, 0.5),
    ("person", PEOPLE, 0.5),
)
_HUE_BINS = 8
_HUE_WEIGHT = 0.25  # the coarse hue histogram: image side only, generic colour information
_SIZE = 96  # frames are resampled to the render size the visual code is defined at
_SATURATED = 100  # max - min of RGB: objects ~255, places / people / borders < 70 after noise and H.264
_IOU_TEMPERATURE = 0.03  # softmax temperature over template IoUs (shape and verb)
_HUE_SIGMA = 0.025  # object hues are 0.1 apart
_PLACE_SIGMA = 8.0  # RGB distance; place backgrounds are >= ~20 apart
_PERSON_SIGMA = 10.0
_IRREGULAR = {"took": "take", "taken": "take", "held": "hold"}
_WORD = re.compile(r"[a-z]+")


class DemoEncoder:
    """The demo's visual code as an encoder (see the module docstring); deterministic, no model files.

    Image side, per frame (resampled to 96 x 96): saturated pixels are the object; their IoU with the object
    masks of every (shape, verb anchor) pair gives a soft shape and verb, their mean hue a soft colour, and
    colour x shape a soft object, scaled by a presence confidence (no object: zeros). The mean colour of the
    pixels that are background in every rendering gives a soft place; the person glyph's pixels, when far
    from the background, a soft person. Text side: the words of the query (objects and places with their
    plurals, verb forms, people; "who" asks about any person) as one-hot blocks.
    """

    name = "demo-visual-code"
    VERSION = "demo-visual-code/1"

    def __init__(self) -> None:
        self.blocks = [(block, words, weight) for block, words, weight in _BLOCKS]
        self.offsets: dict[str, int] = {}
        at = 0
        for block, words, _ in self.blocks:
            self.offsets[block] = at
            at += len(words)
        self.hue_offset = at
        self.dim = at + _HUE_BINS
        self._templates = _templates()
        self._phrases = _phrase_table()

    # ---- images ----

    def encode_images(self, frames: np.ndarray) -> np.ndarray:
        t = self._templates
        flat = _resample(check_frames(frames)).reshape(len(frames), -1, 3)  # uint8 [B, P, 3]
        b = len(flat)
        r, g, bl = flat[..., 0], flat[..., 1], flat[..., 2]
        saturated = (np.maximum(np.maximum(r, g), bl) - np.minimum(np.minimum(r, g), bl)) > _SATURATED
        out = np.zeros((b, self.dim), dtype=np.float32)

        # object: shape x verb from template IoU, hue from the saturated pixels only
        inter = _intersections(saturated, t.pixel_masks)  # [B, V*S]
        iou = inter / np.maximum(saturated.sum(axis=1, keepdims=True) + t.areas[None, :] - inter, 1.0)
        present = np.clip((iou.max(axis=1) - 0.2) / 0.4, 0.0, 1.0)  # [B]
        joint = _softmax(iou / _IOU_TEMPERATURE).reshape(b, len(VERBS), len(SHAPES))
        p_verb, p_shape = joint.sum(axis=2), joint.sum(axis=1)
        frame, pixel = np.nonzero(saturated)
        angle = 2 * np.pi * _hue(flat[frame, pixel].astype(np.float32))  # [K]
        mean_angle = np.arctan2(
            np.bincount(frame, weights=np.sin(angle), minlength=b),
            np.bincount(frame, weights=np.cos(angle), minlength=b),
        )
        p_hue = _hue_probabilities(mean_angle / (2 * np.pi))  # [B, 10]
        p_object = p_hue[:, t.object_hue] * p_shape[:, t.object_shape]  # [B, O]
        p_object /= np.maximum(p_object.sum(axis=1, keepdims=True), 1e-12)
        self._put(out, "object", present[:, None] * p_object)
        self._put(out, "verb", present[:, None] * p_verb)

        # place: mean colour of (a sample of) the pixels that are background in every rendering
        bg = flat[:, t.background].mean(axis=1)  # [B, 3]
        self._put(out, "place", _nearest(bg, t.place_colours, _PLACE_SIGMA))

        # person: the glyph's unsaturated pixels, when far enough from the background
        w = ~saturated[:, t.person]  # [B, Np]
        glyph = np.einsum("bp,bpc->bc", w.astype(np.float32), flat[:, t.person].astype(np.float32))
        glyph /= np.maximum(w.sum(axis=1), 1)[:, None]
        contrast = np.linalg.norm(glyph - bg, axis=1)
        person_present = np.clip((contrast - 20.0) / 40.0, 0.0, 1.0) * (w.sum(axis=1) > 0)
        self._put(out, "person", person_present[:, None] * _nearest(glyph, t.person_colours, _PERSON_SIGMA))

        # coarse hue histogram of a pixel grid, weighted by chroma
        grid = flat[:, t.histogram].astype(np.float32)  # [B, Ng, 3]
        chroma = grid.max(axis=2) - grid.min(axis=2)
        bins = np.minimum((_hue(grid) * _HUE_BINS).astype(np.int64), _HUE_BINS - 1)
        cells = (np.arange(b)[:, None] * _HUE_BINS + bins).ravel()
        hist = np.bincount(cells, weights=chroma.ravel(), minlength=b * _HUE_BINS).reshape(b, _HUE_BINS)
        hist /= np.maximum(hist.sum(axis=1, keepdims=True), 1e-12)
        out[:, self.hue_offset :] = _HUE_WEIGHT * hist
        return l2_normalise(out)

    def _put(self, out: np.ndarray, block: str, values: np.ndarray) -> None:
        weight = next(w for name, _, w in self.blocks if name == block)
        start = self.offsets[block]
        out[:, start : start + values.shape[1]] = weight * values

    # ---- texts ----

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            found: dict[str, list[int]] = {}
            for block, index in self.words(text):
                found.setdefault(block, []).append(index)
            for block, indices in found.items():
                size = len(next(words for name, words, _ in self.blocks if name == block))
                values = np.zeros((1, size), dtype=np.float32)
                np.add.at(values[0], indices, 1.0)
                tmp = np.zeros((1, self.dim), dtype=np.float32)
                self._put(tmp, block, values / values.sum())
                out[row] += tmp[0]
        return l2_normalise(out)

    def words(self, text: str) -> list[tuple[str, int]]:
        """The vocabulary items ``(block, index)`` named in ``text``, longest phrase first, in text order.

        "who" names every person (a question about someone). Unknown words are ignored.
        """
        tokens = [_lemma(w) for w in _WORD.findall(text.lower())]
        found: list[tuple[str, int]] = []
        i = 0
        while i < len(tokens):
            for n in (2, 1):
                hits = self._phrases.get(tuple(tokens[i : i + n]))
                if hits is not None and i + n <= len(tokens):
                    found.extend(hits)
                    i += n
                    break
            else:
                i += 1
        return found

    def fingerprint(self) -> str:
        code = {
            "version": self.VERSION,
            "places": PLACE_STYLE,
            "objects": OBJECT_STYLE,
            "verbs": VERB_ANCHOR,
            "people": PERSON_COLOUR,
            "blocks": [(name, list(words), weight) for name, words, weight in self.blocks],
            "constants": [
                _HUE_BINS,
                _HUE_WEIGHT,
                _SIZE,
                _SATURATED,
                _IOU_TEMPERATURE,
                _HUE_SIGMA,
                _PLACE_SIGMA,
                _PERSON_SIGMA,
            ],
        }
        return hashlib.sha256(json.dumps(code, sort_keys=True).encode()).hexdigest()


class _Templates:
    """What the visual code looks like at 96 px, derived once from the public renderer."""

    def __init__(self) -> None:
        shape_object = {
            shape: next(o for o, (_, s) in OBJECT_STYLE.items() if s == shape) for shape in SHAPES
        }
        masks = [object_mask(shape_object[s], v, _SIZE).ravel() for v in VERBS for s in SHAPES]
        # [P, V*S], verb-major: pixel p lies in the mask of (verb v, shape s) at column v * len(SHAPES) + s
        self.pixel_masks = np.ascontiguousarray(np.stack(masks, axis=1), dtype=np.uint8)
        self.areas = self.pixel_masks.sum(axis=0, dtype=np.float64)
        hues = sorted({rgb for rgb, _ in OBJECT_STYLE.values()}, key=lambda c: _rgb_hue(c))
        self.hue_centres = np.array([_rgb_hue(c) for c in hues])  # [10]
        self.object_hue = np.array([hues.index(rgb) for rgb, _ in OBJECT_STYLE.values()])
        self.object_shape = np.array([SHAPES.index(s) for _, s in OBJECT_STYLE.values()])
        self.place_colours = np.array([PLACE_STYLE[p][0] for p in PLACES], dtype=np.float32)
        self.person_colours = np.array([PERSON_COLOUR[p] for p in PEOPLE], dtype=np.float32)
        # the person glyph: pixels that a person changes; background: pixels nothing ever covers
        rng = np.random.default_rng(0)
        empty = {p: render_frame(p, None, None, rng).astype(np.int16) for p in PLACES}
        person = np.zeros((_SIZE, _SIZE), dtype=bool)
        border = np.zeros((_SIZE, _SIZE), dtype=bool)
        for p, frame in empty.items():
            for who in PEOPLE:
                with_person = render_frame(p, None, None, rng, person=who).astype(np.int16)
                person |= np.abs(with_person - frame).max(axis=2) > 12
            border |= np.abs(frame - np.array(PLACE_STYLE[p][0])).max(axis=2) > 12
        objects = self.pixel_masks.max(axis=1).reshape(_SIZE, _SIZE) > 0
        self.person = np.flatnonzero(person & ~border)  # pixel indices of the glyph
        self.background = np.flatnonzero(~(person | border | objects))[::4]  # a quarter is plenty for a mean
        yy, xx = np.mgrid[:_SIZE, :_SIZE]
        self.histogram = np.flatnonzero((yy % 3 == 1) & (xx % 3 == 1))  # every 3rd row and column


@functools.lru_cache(maxsize=1)
def _templates() -> _Templates:
    return _Templates()


def _phrase_table() -> dict[tuple[str, ...], list[tuple[str, int]]]:
    """Lemmatised token tuples -> vocabulary items: objects and places (and their plurals), verbs, people."""
    table: dict[tuple[str, ...], list[tuple[str, int]]] = {}

    def add(phrase: str, block: str, index: int) -> None:
        key = tuple(_lemma(w) for w in phrase.split())
        if (block, index) not in table.setdefault(key, []):
            table[key].append((block, index))

    for block, words, _ in _BLOCKS:
        for index, word in enumerate(words):
            add(word, block, index)
            if block in ("object", "place"):
                add(plural(word), block, index)
    for index in range(len(PEOPLE)):
        add("who", "person", index)
    return table


@functools.lru_cache(maxsize=4096)
def _lemma(word: str) -> str:
    """A crude English lemma, enough for the demo vocabulary: irregular verbs, -s/-es/-ies, -ed/-ied, doubled
    consonants ("dropped"), -ves ("knives" -> "knife"). Vocabulary words are kept as they are."""
    if word in _IRREGULAR:
        return _IRREGULAR[word]
    if word in _VOCABULARY:
        return word
    candidates = []
    if word.endswith("ves"):
        candidates += [word[:-3] + "fe", word[:-3] + "f"]
    if word.endswith(("ies", "ied")):
        candidates.append(word[:-3] + "y")
    if word.endswith("ed"):
        candidates += [word[:-2], word[:-1], word[:-3]]
    if word.endswith("es"):
        candidates.append(word[:-2])
    if word.endswith("s"):
        candidates.append(word[:-1])
    return next((c for c in candidates if c in _VOCABULARY), word)


_VOCABULARY = frozenset(w for _, words, _ in _BLOCKS for phrase in words for w in phrase.split())


def _intersections(mask: np.ndarray, pixel_masks: np.ndarray, chunk: int = 32) -> np.ndarray:
    """``|mask_b & template_t|`` of boolean masks ``[B, P]`` and 0/1 templates ``[P, T]``, float ``[B, T]``.

    Sums the template rows of the set pixels (sparse: demo frames set a few hundred of 9216), a chunk of
    frames at a time; no BLAS call, whose thread start-up dominates at these sizes.
    """
    out = np.zeros((len(mask), pixel_masks.shape[1]), dtype=np.float64)
    for start in range(0, len(mask), chunk):
        frame, pixel = np.nonzero(mask[start : start + chunk])
        if len(frame) == 0:
            continue
        firsts = np.flatnonzero(np.diff(frame, prepend=-1))  # frames are sorted: where each one starts
        sums = np.add.reduceat(pixel_masks[pixel], firsts, axis=0, dtype=np.int64)
        out[start + frame[firsts]] = sums
    return out


def _resample(frames: np.ndarray) -> np.ndarray:
    """Nearest-neighbour resampling to 96 x 96 (the identity for rendered frames)."""
    _, h, w, _ = frames.shape
    if (h, w) == (_SIZE, _SIZE):
        return frames
    rows = ((np.arange(_SIZE) + 0.5) * h / _SIZE).astype(np.int64)
    cols = ((np.arange(_SIZE) + 0.5) * w / _SIZE).astype(np.int64)
    return frames[:, rows][:, :, cols]


def _hue(rgb: np.ndarray) -> np.ndarray:
    """HSV hue in [0, 1) of float RGB pixels ``[..., 3]`` (0 where the pixel is grey)."""
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    hi = np.maximum(np.maximum(r, g), b)
    chroma = np.maximum(hi - np.minimum(np.minimum(r, g), b), 1e-6)
    h = np.where(hi == r, (g - b) / chroma, np.where(hi == g, 2.0 + (b - r) / chroma, 4.0 + (r - g) / chroma))
    return (h / 6.0) % 1.0


def _rgb_hue(rgb: tuple[int, int, int]) -> float:
    return float(_hue(np.asarray(rgb, dtype=np.float64)))


def _hue_probabilities(h: np.ndarray) -> np.ndarray:
    centres = _templates().hue_centres
    d = np.abs(h[:, None] - centres[None, :])
    d = np.minimum(d, 1.0 - d)  # circular distance
    return _softmax(-0.5 * (d / _HUE_SIGMA) ** 2)


def _nearest(colours: np.ndarray, references: np.ndarray, sigma: float) -> np.ndarray:
    """Soft assignment ``[B, K]`` of colours ``[B, 3]`` to reference colours ``[K, 3]``."""
    d2 = ((colours[:, None, :] - references[None, :, :]) ** 2).sum(axis=2)
    return _softmax(-0.5 * d2 / sigma**2)


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return (e / e.sum(axis=-1, keepdims=True)).astype(np.float32)
