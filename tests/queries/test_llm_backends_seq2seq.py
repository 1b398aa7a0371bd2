"""The hf backend with a seq2seq model: a tiny random T5 (LaViLa's rephraser role) generates through it."""

from __future__ import annotations

from pathlib import Path

import pytest

from egonlq.queries.llm_backends import HFBackend, write_tiny_random_t5

CORPUS = ["paraphrase: c opens the drawer", "c picks a knife from the table", "c cuts the onion slowly"]


@pytest.fixture(scope="module")
def t5_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_random_t5(tmp_path_factory.mktemp("t5") / "t5-tiny", corpus=CORPUS)


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
