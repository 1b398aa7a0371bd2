"""The narrator model: gates at 0 leave the LM unchanged, only the new parts train, bad folders refused."""

from __future__ import annotations

import json
import math

import pytest
import torch

from egonlq.errors import InputError
from egonlq.narrator.decode import Decoding, entropy, entropy_score, nucleus_probs, sample, window_uniforms
from egonlq.narrator.lm import encode_texts, next_token_loss
from egonlq.narrator.model import Narrator, NarratorConfig, load_causal_lm, load_video_tower

from .conftest import TEXTS, VIDEO_DIM


def _narrator(lm_dir, tower_dir, **kw) -> tuple[Narrator, object]:
    lm, tok = load_causal_lm(lm_dir)
    video = load_video_tower(tower_dir, video_dim=VIDEO_DIM)
    torch.manual_seed(1)
    config = NarratorConfig(num_queries=3, heads=2, video_width=8, lm_width=16, **kw)
    return Narrator(config, video, lm), tok


def test_gates_at_zero_leave_the_lm_unchanged(lm_dir, tower_dir, bank):
    narrator, tok = _narrator(lm_dir, tower_dir)
    ids, _ = encode_texts(tok, TEXTS, 77)
    plain, _ = load_causal_lm(lm_dir)
    reference = plain(input_ids=ids, attention_mask=torch.ones_like(ids)).logits
    rows, mask = bank.gather(torch.tensor([0, 5, 30, 40]), torch.tensor([3, 4, 2, 5]), 4)
    conditioned = narrator(rows, mask, ids, torch.ones_like(ids))
    assert torch.allclose(conditioned, reference, atol=1e-6)
    # a gate moved away from 0 makes the video matter
    with torch.no_grad():
        narrator.cross[0].attn_gate.fill_(1.0)
    assert not torch.allclose(narrator(rows, mask, ids, torch.ones_like(ids)), reference, atol=1e-4)


def test_lm_called_without_visual_tokens_is_an_error(lm_dir, tower_dir):
    narrator, tok = _narrator(lm_dir, tower_dir)
    ids, _ = encode_texts(tok, TEXTS[:1], 77)
    with pytest.raises(RuntimeError, match="without visual tokens"):
        narrator.lm(input_ids=ids)


def test_only_pooler_and_cross_attention_train(lm_dir, tower_dir, bank):
    narrator, tok = _narrator(lm_dir, tower_dir, cross_every=2)
    assert len(narrator.cross) == 1  # 2 blocks, one cross-attention block before every 2nd
    trainable = {id(p) for p in narrator.parameters() if p.requires_grad}
    assert trainable == {id(p) for p in [*narrator.pooler.parameters(), *narrator.cross.parameters()]}
    ids, labels = encode_texts(tok, TEXTS, 77)
    rows, mask = bank.gather(torch.tensor([0, 5, 30, 40]), torch.tensor([3, 4, 2, 5]), 4)
    next_token_loss(narrator(rows, mask, ids, torch.ones_like(ids)), labels).backward()
    assert narrator.cross[0].attn_gate.grad is not None and narrator.cross[0].attn_gate.grad.abs() > 0
    assert all(p.grad is None for p in narrator.lm.parameters() if id(p) not in trainable)
    assert all(p.grad is None for p in narrator.video.parameters())


def test_entropy_score_hand_example():
    # two tokens: uniform over 4 (entropy ln 4), then certain (0); the third step is past EOS and ignored
    ent = entropy(torch.tensor([[[0.25, 0.25, 0.25, 0.25], [1.0, 0.0, 0.0, 0.0], [0.5, 0.5, 0.0, 0.0]]]))
    assert ent[0].tolist() == pytest.approx([math.log(4), 0.0, math.log(2)])
    score = entropy_score(ent, torch.tensor([2]))
    assert float(score) == pytest.approx(math.exp(math.log(4) / 2)) == pytest.approx(2.0)


def test_nucleus_cut_hand_example():
    # probabilities 0.5, 0.3, 0.15, 0.05 at T = 1: top_p 0.7 keeps the first two (0.5 < 0.7 <= 0.8)
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    probs = nucleus_probs(logits, top_p=0.7, temperature=1.0)
    assert probs[0].tolist() == pytest.approx([0.625, 0.375, 0.0, 0.0])
    # a lower temperature sharpens: T = 0.5 squares the probabilities before normalising
    sharp = nucleus_probs(logits, top_p=1.0, temperature=0.5)
    squares = torch.tensor([0.25, 0.09, 0.0225, 0.0025])
    assert sharp[0].tolist() == pytest.approx((squares / squares.sum()).tolist())


def test_sampling_shapes_scores_and_determinism(lm_dir, tower_dir, bank):
    narrator, tok = _narrator(lm_dir, tower_dir)
    rows, mask = bank.gather(torch.tensor([0, 30]), torch.tensor([3, 4]), 4)
    decoding = Decoding(num_sequences=3, max_tokens=5)
    uniforms = torch.stack([window_uniforms(k, 0, decoding) for k in ("a", "b")])
    texts, scores = sample(
        narrator,
        rows,
        mask,
        bos_id=tok.bos_token_id,
        eos_id=tok.eos_token_id,
        decoding=decoding,
        uniforms=uniforms,
    )
    again, scores2 = sample(
        narrator,
        rows,
        mask,
        bos_id=tok.bos_token_id,
        eos_id=tok.eos_token_id,
        decoding=decoding,
        uniforms=uniforms,
    )
    assert texts == again and torch.equal(scores, scores2)
    # a window's texts do not depend on its batch
    alone, _ = sample(
        narrator,
        rows[1:],
        mask[1:],
        bos_id=tok.bos_token_id,
        eos_id=tok.eos_token_id,
        decoding=decoding,
        uniforms=uniforms[1:],
    )
    assert alone == texts[1:]
    assert len(texts) == 2 and all(len(w) == 3 for w in texts)
    assert all(len(seq) <= 5 and tok.eos_token_id not in seq for w in texts for seq in w)
    # exp(entropy) lies between 1 (certain) and the vocabulary size (uniform)
    assert scores.shape == (2, 3) and bool((scores >= 1).all()) and bool((scores <= len(tok)).all())


def test_folder_that_is_not_a_causal_lm(tmp_path):
    with pytest.raises(InputError, match="no config.json"):
        load_causal_lm(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert", "architectures": ["BertModel"]}))
    with pytest.raises(InputError, match="not a causal LM") as e:
        load_causal_lm(tmp_path)
    assert e.value.field == "model_type"


def test_video_tower_of_the_wrong_dimension(tower_dir):
    with pytest.raises(InputError, match="6-d features") as e:
        load_video_tower(tower_dir, video_dim=VIDEO_DIM + 1)
    assert e.value.field == "video_dim" and e.value.path.endswith("config.json")


def test_narrator_config_refuses_256_queries():
    with pytest.raises(ValueError, match="num_queries"):
        NarratorConfig(num_queries=256)
