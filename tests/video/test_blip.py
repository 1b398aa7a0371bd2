"""BLIP scorers on a tiny random BLIP: ITC cosine and ITM probability against the Hugging Face forward,
bad folders refused before any work, and decode -> score -> select end to end on the tiny demo video."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from egonlq.errors import InputError
from egonlq.video.aks import AKSParams
from egonlq.video.blip import BlipEncoder, BlipITMScorer, make_blip_scorer, write_tiny_random_blip
from egonlq.video.frame_encoders import FrameEncoder
from egonlq.video.keyframes import SELECTION
from egonlq.video.scorers import ClipSample, EncoderScorer
from tests.video.world import run

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def tiny_blip(tmp_path_factory) -> Path:
    return write_tiny_random_blip(tmp_path_factory.mktemp("blip") / "tiny-blip", seed=0)


def frames(n: int, seed: int = 0, side: int = 40) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, side, side, 3), dtype=np.uint8)


def _hf(tiny_blip, encoder, images, text, itm):
    from transformers import BlipForImageTextRetrieval

    model = BlipForImageTextRetrieval.from_pretrained(tiny_blip, local_files_only=True).eval()
    pixels = encoder.processor(images=list(images), return_tensors="pt")["pixel_values"]
    tokens = encoder.tokenizer([text] * len(images), return_tensors="pt")
    with torch.no_grad():
        out = model(pixel_values=pixels, input_ids=tokens["input_ids"], use_itm_head=itm)
    return out.itm_score


def test_itc_encoder_matches_the_hugging_face_forward(tiny_blip):
    encoder = BlipEncoder(tiny_blip, batch_size=2)
    assert isinstance(encoder, FrameEncoder) and encoder.dim == 16
    images, text = frames(5), "where is the knife?"
    cosine = encoder.encode_images(images) @ encoder.encode_texts([text])[0]
    # use_itm_head=False: normalised image CLS projections @ text CLS projection, [images, texts]
    expected = _hf(tiny_blip, encoder, images, text, itm=False)[:, 0].numpy()
    np.testing.assert_allclose(cosine, expected, atol=1e-5)
    assert encoder.fingerprint() == BlipEncoder(tiny_blip).fingerprint() and len(encoder.fingerprint()) == 64


def test_itm_scorer_matches_the_hugging_face_head_in_batches(tiny_blip, world):
    from egonlq.video.decode import iter_frames

    scorer = make_blip_scorer(tiny_blip, head="itm", batch_size=3)
    assert isinstance(scorer, BlipITMScorer) and scorer.name == "blip-itm:tiny-blip"
    idx = np.arange(0, 35, 5)
    clip = ClipSample(world.video_uid, "c", world.mp4, 5.0, 5, 0.0, 10.0, idx)
    text = "what did i put in the sink"
    got = scorer.score(clip, text)
    images = np.concatenate([f for _, f in iter_frames(world.mp4, idx)])
    probabilities = torch.softmax(_hf(tiny_blip, scorer.encoder, images, text, itm=True), dim=-1)[:, 1]
    np.testing.assert_allclose(got, probabilities.numpy(), atol=1e-5)
    assert ((got > 0) & (got < 1)).all()
    scorer.score(clip, "another text")
    assert scorer.stats == {"frames_encoded": len(idx), "texts_scored": 2}  # vision pass once per clip
    assert isinstance(make_blip_scorer(tiny_blip, head="itc"), EncoderScorer)
    with pytest.raises(ValueError, match="BLIP head"):
        make_blip_scorer(tiny_blip, head="itx")


def test_bad_blip_folders_are_refused_before_loading(tiny_blip, tmp_path):
    def copy(name):
        return Path(shutil.copytree(tiny_blip, tmp_path / name))

    with pytest.raises(InputError, match="BLIP model folder not found"):
        BlipEncoder(tmp_path / "absent")
    clip_like = copy("clip_like")
    config = json.loads((clip_like / "config.json").read_text())
    (clip_like / "config.json").write_text(json.dumps({**config, "model_type": "clip"}))
    with pytest.raises(InputError, match="model_type is 'clip'"):
        BlipEncoder(clip_like)
    for name, message in (
        ("preprocessor_config.json", "no image processor"),
        ("vocab.txt", "no tokenizer"),
        ("model.safetensors", "no weights"),
    ):
        folder = copy(f"no_{name}")
        for f in [folder / name, *([folder / "tokenizer.json"] if name == "vocab.txt" else [])]:
            f.unlink(missing_ok=True)
        with pytest.raises(InputError, match=message):
            BlipEncoder(folder)


@pytest.mark.parametrize("head", ["itm", "itc"])
def test_blip_end_to_end_decode_score_select(tiny_blip, world, tmp_path, head):
    scorer = make_blip_scorer(tiny_blip, head=head, batch_size=8)
    params = [AKSParams(M=4, depth=2)]
    stats = run(world, tmp_path, scorer, params_list=params, methods=("aks_reference", "topk", "uniform"))
    assert stats["queries_scored"] == stats["score_rows"] == world.n_eligible > 0
    assert stats["selection_rows"] == 3 * world.n_eligible and stats["queries_failed"] == 0
    scores = pd.read_parquet(tmp_path / "scores.parquet")
    assert set(scores["scorer"]) == {"blip-itm:tiny-blip" if head == "itm" else "cosine:blip-itc:tiny-blip"}
    values = np.concatenate(scores["scores"].to_list())
    assert np.isfinite(values).all() and (values.min() >= 0 if head == "itm" else values.min() >= -1)
    selection = pd.read_parquet(tmp_path / "selection.parquet")
    assert list(selection.columns) == SELECTION.names
    assert (selection["n_selected"] == 4).all()
    for r in selection[selection["method"] == "topk"].itertuples():
        s = scores.set_index("query_uid").loc[r.query_uid]
        best = np.asarray(s["sampled_frame_idx"])[np.argsort(-np.asarray(s["scores"]), kind="stable")[:4]]
        assert sorted(r.selected_frame_idx) == sorted(best.tolist())


def test_make_encoder_builds_the_itc_encoder(tiny_blip):
    from egonlq.video.frame_encoders import make_encoder

    assert make_encoder("blip", model_path=tiny_blip).name == "blip-itc:tiny-blip"
