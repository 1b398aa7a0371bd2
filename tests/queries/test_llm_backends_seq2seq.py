"""The hf backend with a seq2seq model: a tiny random T5 (LaViLa's rephraser role) generates through it."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from egonlq.queries.llm_backends import HFBackend

CORPUS = ["paraphrase: c opens the drawer", "c picks a knife from the table", "c cuts the onion slowly"]


def write_tiny_random_t5(out_dir: Path) -> Path:
    """A 1-layer random T5 with a word-level tokenizer (pad = decoder start, eos) saved as a HF folder."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast, T5Config, T5ForConditionalGeneration

    tok = Tokenizer(models.WordLevel(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.train_from_iterator(CORPUS, trainers.WordLevelTrainer(special_tokens=["<pad>", "</s>", "<unk>"]))
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>"
    )
    torch.manual_seed(0)
    config = T5Config(
        vocab_size=len(tokenizer), d_model=16, d_kv=4, d_ff=32, num_layers=1, num_heads=2,
        pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
        decoder_start_token_id=tokenizer.pad_token_id,
    )  # fmt: skip
    T5ForConditionalGeneration(config).save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return out_dir


@pytest.fixture(scope="module")
def t5_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_random_t5(tmp_path_factory.mktemp("t5") / "t5-tiny")


def test_seq2seq_model_generates_whole_decoder_outputs(t5_dir: Path) -> None:
    backend = HFBackend(t5_dir, max_new_tokens=6, batch_size=2)
    assert backend.seq2seq and backend.tokenizer.padding_side == "right"
    prompts = ["paraphrase: c opens the drawer", "paraphrase: c cuts the onion slowly", "c picks a knife"]
    out = backend.generate(prompts)
    assert len(out) == 3
    # greedy decoding of the same model: each answer matches the model's own generate on that prompt alone
    for prompt, gen in zip(prompts, out, strict=True):
        enc = backend.tokenizer([prompt], return_tensors="pt")
        ref = backend.model.generate(**enc, max_new_tokens=6, do_sample=False)[0, 1:].tolist()
        n = next((k + 1 for k, t in enumerate(ref) if t == backend.tokenizer.eos_token_id), len(ref))
        assert gen.n_new_tokens == n and 1 <= n <= 6
        assert gen.text == backend.tokenizer.decode(ref[:n], skip_special_tokens=True)
        assert gen.n_prompt_tokens == enc["input_ids"].shape[1]
    assert backend.fingerprint()["backend"] == "hf"


def test_a_causal_lm_is_not_seq2seq(tmp_path: Path) -> None:
    from egonlq.queries.llm_backends import write_tiny_random_lm

    backend = HFBackend(write_tiny_random_lm(tmp_path / "lm"), max_new_tokens=2)
    assert not backend.seq2seq and backend.tokenizer.padding_side == "left"
