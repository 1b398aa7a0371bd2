"""T5 as the rephraser (LaViLa's role): the rephrase command with ``--prompt-style t5`` sends each narration
to a tiny random T5 as "paraphrase: <narration>" and reads one paraphrase per returned sequence, as text."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import torch

from egonlq.cli import main
from egonlq.errors import InputError
from egonlq.io import read_json, write_parquet
from egonlq.queries.curation import ASSIGNED
from egonlq.queries.llm_backends import (
    T5_PREFIX,
    HFBackend,
    T5Rephraser,
    TemplateBackend,
    rephrase_backend,
    write_tiny_random_lm,
    write_tiny_random_t5,
)
from egonlq.queries.llm_parsing import parse_paraphrase
from egonlq.queries.llm_queries import load_prompt, render_rephrase_prompt
from tests.queries.test_llm_queries import _assigned

pytestmark = pytest.mark.usefixtures("one_torch_thread")

MAX_NEW = 8


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, pd.DataFrame]:
    """Curated narrations of two videos and a random T5 whose vocabulary is their words."""
    root = tmp_path_factory.mktemp("t5_rephrase")
    assigned = _assigned({"va": 6, "vb": 3})[0]
    write_parquet(assigned, root / "assigned.parquet", ASSIGNED)
    texts = assigned.column("text_clean").to_pylist()
    # seed 3: a random model whose outputs hold content words of the narrations, so some are accepted
    t5 = write_tiny_random_t5(root / "t5", corpus=[T5_PREFIX + t for t in texts], seed=3)
    return root, t5, assigned.to_pandas()


def _beams(backend: HFBackend, sentence: str, n: int) -> list[str]:
    """The model's own beam search on one sentence, decoded: what variant 1..n must be built from."""
    enc = backend.tokenizer([T5_PREFIX + sentence], return_tensors="pt")
    with torch.inference_mode():
        out = backend.model.generate(
            **enc, max_new_tokens=MAX_NEW, num_beams=n, num_return_sequences=n, do_sample=False
        )
    return [backend.tokenizer.decode(row[1:], skip_special_tokens=True) for row in out]


def _rephrase(root: Path, t5: Path, *extra: str) -> dict:
    options = json.dumps({"model_path": str(t5), "max_new_tokens": MAX_NEW, "batch_size": 4})
    (root / "prompt.txt").write_text(load_prompt("rephrase_v1"), encoding="utf-8")
    main(
        [
            "rephrase",
            *("--backend", "hf", "--backend-options", options, "--prompt-style", "t5"),
            *(
                "--input",
                str(root / "assigned.parquet"),
                "--narrations",
                "--prompt",
                str(root / "prompt.txt"),
            ),
            *("--num-variants", "2", "--batch-size", "3", "--cache", str(root / "cache.jsonl")),
            *("--out", str(root / "out.parquet"), "--stats", str(root / "stats.json"), *extra),
        ]
    )
    return read_json(root / "stats.json")


def test_rephrase_cli_with_t5_end_to_end(world: tuple[Path, Path, pd.DataFrame]) -> None:
    root, t5, assigned = world
    stats = _rephrase(root, t5)
    out = pd.read_parquet(root / "out.parquet")
    backend = HFBackend(t5, max_new_tokens=MAX_NEW)
    parents = assigned.set_index("narration_uid")["text_clean"]
    # each narration's two variants: the two best beams of the model on "paraphrase: <narration>"
    expected = {uid: [parse_paraphrase(b) for b in _beams(backend, text, 2)] for uid, text in parents.items()}
    assert len(out) == stats["accepted"] > 0
    for row in out.itertuples():
        assert row.query in expected[row.narration_uid], (row.query, expected[row.narration_uid])
        assert row.source == "rephrase:narration" and row.query != parents[row.narration_uid]
    # one text per sentence and variant was parsed (none empty here), and each is accepted or rejected
    assert (
        stats["questions_parsed"] == 2 * len(parents) == stats["accepted"] + sum(stats["rejected"].values())
    )
    assert stats["groups"] == 2 * 2  # one group of <= 8 narrations per video, 2 variants
    fingerprint = json.loads(out["backend"].iloc[0])
    assert fingerprint["prompt_style"] == "t5" and fingerprint["num_sequences"] == 2
    # the cache answers a rerun: same table, nothing generated
    again = _rephrase(root, t5)
    assert again["generated"] == 0 and again["cached"] == stats["generated"]
    pd.testing.assert_frame_equal(pd.read_parquet(root / "out.parquet"), out)


def test_a_sentence_is_generated_once_for_all_its_variants(world: tuple[Path, Path, pd.DataFrame]) -> None:
    _, t5, assigned = world
    inner = HFBackend(t5, max_new_tokens=MAX_NEW)
    calls: list[list[str]] = []
    generate_sequences = inner.generate_sequences

    def counting(prompts: list[str], n: int = 1) -> list:
        calls.append(prompts)
        return generate_sequences(prompts, n)

    inner.generate_sequences = counting  # type: ignore[method-assign]
    rephraser = T5Rephraser(inner, num_sequences=3)
    texts = assigned["text_clean"].tolist()[:4]
    template = load_prompt("rephrase_v1")
    prompts = [render_rephrase_prompt(texts, template, variant=v) for v in (1, 2, 3)]
    answers = [json.loads(g.text) for g in rephraser.generate(prompts)]
    assert [sorted(prompt) for prompt in calls] == [sorted(T5_PREFIX + t for t in texts)]
    beams = {t: _beams(inner, t, 3) for t in texts}
    for v, answer in enumerate(answers):
        assert answer == [
            {"i": i, "text": parse_paraphrase(beams[t][v])}
            for i, t in enumerate(texts, 1)
            if parse_paraphrase(beams[t][v]) is not None
        ]
    rephraser.generate(prompts[:1])
    assert len(calls) == 2 and calls[1] == [], "memoised: no sentence is generated twice"
    with pytest.raises(ValueError, match="variant 4"):
        rephraser.generate([render_rephrase_prompt(texts, template, variant=4)])


def test_t5_style_needs_a_seq2seq_hf_model(tmp_path: Path) -> None:
    lm = write_tiny_random_lm(tmp_path / "lm")
    with pytest.raises(InputError, match="seq2seq"):
        rephrase_backend(HFBackend(lm, max_new_tokens=2), "t5")
    with pytest.raises(ValueError, match="hf backend"):
        rephrase_backend(TemplateBackend(), "t5")
    with pytest.raises(ValueError, match="prompt style 'xml'"):
        rephrase_backend(TemplateBackend(), "xml")
    template = TemplateBackend()
    assert rephrase_backend(template, "json") is template  # the default: the current behaviour


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        ("paraphrasedoutput: Where did I put the knife? ", "Where did I put the knife?"),
        ('Paraphrase:  "c opens  the drawer"', "c opens the drawer"),
        ("paraphrased output:the man cuts", "the man cuts"),
        ("the paraphrase: stays inside", "the paraphrase: stays inside"),
        ("   ", None),
        ("paraphrase:", None),
    ],
)
def test_parse_paraphrase(raw: str, text: str | None) -> None:
    assert parse_paraphrase(raw) == text
