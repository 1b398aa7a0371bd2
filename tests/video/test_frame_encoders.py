"""Frame encoders: the CLIP backend on a tiny random CLIP, and the demo's visual-code encoder."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from egonlq.demo.render import PERSON_COLOUR, render_frame
from egonlq.demo.world import OBJECTS, PEOPLE, PLACES, VERBS
from egonlq.errors import InputError
from egonlq.video.frame_encoders import (
    CLIPEncoder,
    DemoEncoder,
    FrameEncoder,
    l2_normalise,
    make_encoder,
    write_tiny_random_clip,
)

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory) -> Path:
    return write_tiny_random_clip(tmp_path_factory.mktemp("clip") / "tiny-clip", seed=0)


@pytest.fixture(scope="module")
def demo() -> DemoEncoder:
    return DemoEncoder()


def frames(n: int, seed: int = 0, side: int = 48) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, side, side, 3), dtype=np.uint8)


# ---- CLIP ----


def test_clip_encoder_matches_the_hugging_face_forward(tiny_clip):
    from transformers import CLIPModel

    encoder = CLIPEncoder(tiny_clip, batch_size=2)
    assert isinstance(encoder, FrameEncoder)
    images, texts = frames(5), ["Where is the knife?", "what did i put in the sink"]
    image_emb, text_emb = encoder.encode_images(images), encoder.encode_texts(texts)
    assert image_emb.shape == (5, 16) and text_emb.shape == (2, 16) and encoder.dim == 16
    assert image_emb.dtype == np.float32 and text_emb.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(image_emb, axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(text_emb, axis=1), 1.0, atol=1e-6)
    # CLIPModel's own image_embeds / text_embeds are the normalised projections: the same numbers
    model = CLIPModel.from_pretrained(tiny_clip, local_files_only=True).eval()
    pixels = encoder.processor(images=list(images), return_tensors="pt")["pixel_values"]
    tokens = encoder.tokenizer(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        out = model(
            pixel_values=pixels, input_ids=tokens["input_ids"], attention_mask=tokens["attention_mask"]
        )
    np.testing.assert_allclose(image_emb, out.image_embeds.numpy(), atol=1e-5)
    np.testing.assert_allclose(text_emb, out.text_embeds.numpy(), atol=1e-5)


def test_clip_encoder_is_deterministic_and_batch_independent(tiny_clip):
    images = frames(5, seed=1)
    a = CLIPEncoder(tiny_clip, batch_size=2)
    b = CLIPEncoder(tiny_clip, batch_size=32)
    np.testing.assert_array_equal(a.encode_images(images), a.encode_images(images))
    np.testing.assert_allclose(a.encode_images(images), b.encode_images(images), atol=1e-6)
    np.testing.assert_allclose(
        a.encode_texts(["a", "bb", "ccc"]), b.encode_texts(["a", "bb", "ccc"]), atol=1e-6
    )
    assert a.fingerprint() == b.fingerprint() and len(a.fingerprint()) == 64
    assert not np.allclose(a.encode_images(images[:1]), a.encode_images(images[1:2]))
    long_text = " ".join(["knife"] * 200)  # truncated to 77 tokens, not an error
    assert a.encode_texts([long_text]).shape == (1, 16)


def test_clip_fingerprint_changes_with_the_weights(tiny_clip, tmp_path):
    other = write_tiny_random_clip(tmp_path / "other", seed=1)
    assert CLIPEncoder(other).fingerprint() != CLIPEncoder(tiny_clip).fingerprint()


@pytest.mark.parametrize(
    ("remove", "message"),
    [
        ("preprocessor_config.json", "no image processor"),
        ("tokenizer.json", "no tokenizer"),
        ("model.safetensors", "no weights"),
        ("config.json", "no config.json"),
    ],
)
def test_clip_folder_checks_before_loading(tiny_clip, tmp_path, remove, message):
    broken = tmp_path / "broken"
    shutil.copytree(tiny_clip, broken)
    (broken / remove).unlink()
    with pytest.raises(InputError, match=message):
        CLIPEncoder(broken)


def test_clip_refuses_a_missing_folder_and_another_model_type(tmp_path, tiny_clip):
    with pytest.raises(InputError, match="not found"):
        CLIPEncoder(tmp_path / "nowhere")
    other = tmp_path / "bert"
    shutil.copytree(tiny_clip, other)
    (other / "config.json").write_text('{"model_type": "bert"}')
    with pytest.raises(InputError, match="model_type"):
        CLIPEncoder(other)


def test_make_encoder(tiny_clip):
    assert make_encoder("demo").name == "demo-visual-code"
    assert make_encoder("clip", model_path=tiny_clip).name == "clip:tiny-clip"
    with pytest.raises(InputError, match="model folder"):
        make_encoder("clip")
    with pytest.raises(InputError, match="blip frame encoder needs a model folder"):
        make_encoder("blip")
    with pytest.raises(ValueError, match="unknown frame encoder"):
        make_encoder("siglip")


# ---- demo visual code ----


def best_text(encoder: DemoEncoder, image: np.ndarray, texts: list[str]) -> int:
    """Index of the text whose embedding has the highest cosine with the image."""
    return int(np.argmax(encoder.encode_texts(texts) @ encoder.encode_images(image[None])[0]))


def test_demo_encoder_finds_every_object(demo):
    rng = np.random.default_rng(7)
    texts = [f"Where is the {obj}?" for obj in OBJECTS]
    wrong = []
    for i, obj in enumerate(OBJECTS):
        place, verb = PLACES[(3 * i) % len(PLACES)], VERBS[(7 * i) % len(VERBS)]
        person = PEOPLE[i % len(PEOPLE)] if i % 4 == 0 else None
        if best_text(demo, render_frame(place, obj, verb, rng, person=person), texts) != i:
            wrong.append(obj)
    assert wrong == []


def test_demo_encoder_finds_places_verbs_and_people(demo):
    rng = np.random.default_rng(3)
    place_texts = [f"What did I put in the {p}?" for p in PLACES]
    assert [best_text(demo, render_frame(p, None, None, rng), place_texts) for p in PLACES] == list(
        range(len(PLACES))
    )
    verb_block = slice(demo.offsets["verb"], demo.offsets["verb"] + len(VERBS))
    verbs = demo.encode_images(np.stack([render_frame("sink", "cup", v, rng) for v in VERBS]))[:, verb_block]
    assert verbs.argmax(axis=1).tolist() == list(range(len(VERBS)))
    person_block = slice(demo.offsets["person"], demo.offsets["person"] + len(PEOPLE))
    with_people = np.stack([render_frame("table", "book", "pick", rng, person=p) for p in PERSON_COLOUR])
    assert demo.encode_images(with_people)[:, person_block].argmax(axis=1).tolist() == list(
        range(len(PEOPLE))
    )
    alone = demo.encode_images(render_frame("table", "book", "pick", rng)[None])[0, person_block]
    assert alone.max() < 0.01


def test_demo_cosine_ranks_the_asked_object_first(demo):
    rng = np.random.default_rng(0)
    shown = render_frame("counter", "knife", "cut", rng)
    other = render_frame("counter", "spoon", "wash", rng)
    empty = render_frame("counter", None, None, rng)
    text = demo.encode_texts(["How many knives did I cut?"])[0]
    s_shown, s_other, s_empty = demo.encode_images(np.stack([shown, other, empty])) @ text
    assert s_shown > 0.8 and s_other < 0.3 and s_empty < 0.05


def test_demo_text_words(demo):
    def names(text: str) -> list[str]:
        vocab = {"object": OBJECTS, "place": PLACES, "verb": VERBS, "person": PEOPLE}
        return [vocab[block][i] for block, i in demo.words(text)]

    assert names("How many knives did I cut?") == ["knife", "cut"]
    assert names("Where was the knife before I dropped the cutting boards?") == [
        "knife",
        "drop",
        "cutting board",
    ]
    assert names("Did I turn off the lamp?") == ["turn off", "lamp"]
    assert names("What tool is on the shelves?") == ["shelf"]
    assert names("Who did I talk to in the closet?") == [*PEOPLE, "closet"]
    assert names("when did i talk to the lady") == ["lady"]
    assert names("Where is my tape measure") == ["tape measure"]
    assert names("I carried the boxes and took the keys") == ["carry", "box", "take", "key"]
    text = demo.encode_texts(["nothing to see here", "Where is the cup?"])
    assert np.linalg.norm(text, axis=1).tolist() == [0.0, pytest.approx(1.0)]


def test_demo_encoder_resamples_any_frame_size(demo):
    frame = render_frame("sofa", "pillow", "hold", np.random.default_rng(1))
    doubled = frame.repeat(2, axis=0).repeat(2, axis=1)  # 192 x 192: nearest-neighbour back to the same
    np.testing.assert_array_equal(demo.encode_images(doubled[None]), demo.encode_images(frame[None]))
    assert demo.encode_images(frame[None, :80]).shape == (1, demo.dim)  # not square: still encoded


def test_demo_encoder_is_deterministic(demo):
    images = np.stack([render_frame("bed", "sock", "fold", np.random.default_rng(k)) for k in range(3)])
    a = demo.encode_images(images)
    np.testing.assert_array_equal(a, DemoEncoder().encode_images(images))
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-6)
    assert DemoEncoder().fingerprint() == demo.fingerprint()
    with pytest.raises(ValueError, match="uint8"):
        demo.encode_images(images.astype(np.float32))


@settings(max_examples=40, deadline=None)
@given(
    hnp.arrays(
        np.float32, st.tuples(st.integers(1, 5), st.integers(1, 6)), elements=st.floats(-1e3, 1e3, width=32)
    )
)
def test_l2_normalise_gives_unit_or_zero_rows(x):
    y = l2_normalise(x)
    norms = np.linalg.norm(y, axis=1)
    zero = np.linalg.norm(x.astype(np.float64), axis=1) == 0
    assert np.all(norms[zero] == 0)
    np.testing.assert_allclose(norms[~zero], 1.0, atol=1e-4)


def test_frame_encoders_read_the_vocabulary_not_the_world_writer():
    """The encoders need the demo's words and its renderer, not the world writer (a lighter code input)."""
    from egonlq.imports import closure

    assert "demo.world" not in closure({"video.frame_encoders"})
    assert "demo.vocabulary" in closure({"video.frame_encoders"})
