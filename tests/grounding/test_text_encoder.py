"""The frozen token encoder and its cache, on a tiny random BERT built here and on the shipped MiniLM."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import BertConfig, BertModel

from egonlq.errors import InputError
from egonlq.grounding.text_encoder import (
    TextCache,
    TextEncoder,
    build_text_cache,
    default_model_path,
    model_fingerprint,
    normalise_query,
)
from tests.conftest import write_tiny_bert

WORDS = ["#", "c", "picks", "a", "bag", "where", "did", "i", "put", "the", "knife", "?", "."]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random 2-layer BERT (hidden 24, 40 positions) whose [PAD] id is 4, not 0."""
    return write_tiny_bert(tmp_path_factory.mktemp("tiny_bert"), WORDS, hidden_size=24, num_hidden_layers=2)


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [
        ("Where did I put the knife?", "where did i put the knife?"),
        ("  bowl. ", "bowl.?"),
        ("what??", "what?"),
        ("#C C picks a bag of clothes from the floor", "#c c picks a bag of clothes from the floor?"),
        ("\tWhere is it ?\n", "where is it ?\n?"),  # the reference strips spaces only, before adding "?"
    ],
)
def test_normalise_query(raw, normalised):
    assert normalise_query(raw) == normalised


def test_encode_token_embeddings(tiny_bert):
    encoder = TextEncoder(tiny_bert, max_len=8)
    assert encoder.hidden_size == 24 and encoder.max_tokens == 8
    texts = ["where did i put the knife?", "a bag?", "#c c picks a bag?"]
    out = encoder.encode(texts, batch_size=2)
    # [CLS] + tokens + [SEP]; 7 tokens + 2 specials = 9 > 8: truncated
    assert [x.shape for x in out] == [(8, 24), (5, 24), (8, 24)]
    assert all(x.dtype == np.float32 for x in out)
    # padding (id 4, not 0) never changes the real tokens: each text alone gives the same embeddings
    for text, emb in zip(texts, out, strict=True):
        np.testing.assert_allclose(encoder.encode([text])[0], emb, rtol=1e-5, atol=1e-5)
    # the last layer of the model itself, in eval mode
    ids = encoder.tokenizer(["a bag?"], return_tensors="pt")
    with torch.no_grad():
        ref = encoder.model(**ids).last_hidden_state[0].numpy()
    np.testing.assert_allclose(out[1], ref, rtol=1e-5, atol=1e-6)
    assert encoder.token_lengths(texts) == [9, 5, 9]


def test_embed_batch_and_dropout(tiny_bert):
    encoder = TextEncoder(tiny_bert)
    hidden, mask = encoder.embed(["a bag?", "where did i put the knife?"])
    assert hidden.shape == (2, 9, 24) and mask.tolist()[0] == [1.0] * 5 + [0.0] * 4
    assert not hidden.requires_grad
    again, _ = encoder.embed(["a bag?", "where did i put the knife?"])
    assert torch.equal(hidden, again)
    torch.manual_seed(1)
    noisy, _ = encoder.embed(["a bag?", "where did i put the knife?"], dropout=True)
    assert not torch.allclose(noisy, hidden)
    assert not encoder.model.training  # back in eval mode


def test_bad_model_folders_fail_before_loading(tmp_path, tiny_bert):
    with pytest.raises(InputError, match="nowhere.*text encoder folder not found"):
        TextEncoder(tmp_path / "nowhere")
    no_tokenizer = tmp_path / "no_tokenizer"
    no_tokenizer.mkdir()
    for name in ("config.json", "model.safetensors"):
        shutil.copy(tiny_bert / name, no_tokenizer / name)
    with pytest.raises(InputError, match="no_tokenizer.*has no tokenizer"):
        TextEncoder(no_tokenizer)


def test_text_cache_round_trip(tmp_path, tiny_bert):
    encoder = TextEncoder(tiny_bert, max_len=8)
    texts = ["Where did I put the knife?", "where did i put the knife", "A bag", "#C C picks a bag"]
    stats = build_text_cache(iter(texts), encoder, tmp_path / "cache.safetensors", dtype="float32")
    assert stats["n_texts"] == 4 and stats["n_unique"] == 3 and stats["n_truncated"] == 2
    assert stats["n_tokens"] == 8 + 5 + 8 and stats["hidden_size"] == 24 and stats["dtype"] == "float32"
    cache = TextCache.load(tmp_path / "cache.safetensors", model_path=tiny_bert, max_len=8)
    assert len(cache) == 3 and "WHERE did i put the knife?" in cache and "a knife" not in cache
    expected = encoder.encode(["#c c picks a bag?"])[0]
    np.testing.assert_array_equal(cache.get("#C C picks a bag"), expected)
    assert cache.get("  a bag??").shape == (5, 24)
    with pytest.raises(InputError, match=r"not in the text cache.*'a knife\?'"):
        cache.get("a knife")

    stats16 = build_text_cache(texts, encoder, tmp_path / "cache16.safetensors")
    assert stats16["dtype"] == "float16"
    half = TextCache.load(tmp_path / "cache16.safetensors")
    assert half.get("#C C picks a bag").dtype == np.float32
    np.testing.assert_allclose(half.get("#C C picks a bag"), expected, rtol=1e-3, atol=1e-3)
    # same texts in another order, same encoder: the same content
    build_text_cache(reversed(texts), encoder, tmp_path / "again.safetensors", dtype="float32")
    again = TextCache.load(tmp_path / "again.safetensors")
    assert again.index == cache.index and again.metadata == cache.metadata
    np.testing.assert_array_equal(again.embeddings, cache.embeddings)
    # ... and the same bytes (the safetensors header is written in a fixed key order)
    first = (tmp_path / "cache.safetensors").read_bytes()
    for name in ("again", "third"):
        build_text_cache(texts, encoder, tmp_path / f"{name}.safetensors", dtype="float32")
        assert (tmp_path / f"{name}.safetensors").read_bytes() == first, name


def test_empty_text_cache(tmp_path, tiny_bert):
    stats = build_text_cache([], TextEncoder(tiny_bert), tmp_path / "empty.safetensors")
    assert stats["n_unique"] == 0 and stats["n_tokens"] == 0
    cache = TextCache.load(tmp_path / "empty.safetensors")
    assert len(cache) == 0 and cache.embeddings.shape == (0, 24)


def test_text_cache_mismatch_is_detected(tmp_path, tiny_bert):
    encoder = TextEncoder(tiny_bert, max_len=8)
    build_text_cache(["a bag"], encoder, tmp_path / "cache.safetensors")
    with pytest.raises(InputError, match="max_len"):
        TextCache.load(tmp_path / "cache.safetensors", max_len=16)
    other = tmp_path / "other_bert"
    shutil.copytree(tiny_bert, other)
    config = BertConfig.from_pretrained(other)
    torch.manual_seed(1)
    BertModel(config).save_pretrained(other)  # same architecture, other weights
    assert model_fingerprint(other) != model_fingerprint(tiny_bert)
    with pytest.raises(InputError, match="cache.safetensors.*fingerprint"):
        TextCache.load(tmp_path / "cache.safetensors", model_path=other)
    (tmp_path / "junk.safetensors").write_bytes(b"not a cache")
    with pytest.raises(InputError, match="junk.safetensors.*not a readable"):
        TextCache.load(tmp_path / "junk.safetensors")


def test_shipped_minilm():
    path = default_model_path()
    assert path.name == "model" and (path / "config.json").is_file()
    encoder = TextEncoder(path)
    assert encoder.hidden_size == 384 and encoder.max_tokens == 128
    a, b = encoder.encode(["#c c picks a bag?", "where did i put the knife?"])
    assert a.shape == (9, 384)
    np.testing.assert_allclose(encoder.encode(["#c c picks a bag?"])[0], a, rtol=1e-5, atol=1e-5)
    assert not np.allclose(a[0], b[0])
