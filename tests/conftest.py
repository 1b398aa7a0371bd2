"""Shared fixtures: the repository root, Snakemake in a subprocess, and one tiny end-to-end run."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def snakemake(
    workdir: Path, *args: str, check: bool = True, timeout: int = 900, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """Run ``python -m snakemake`` on the repository's Snakefile in ``workdir`` (in ``env``, default ours)."""
    env = dict(env or os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    cmd = [
        sys.executable,
        "-m",
        "snakemake",
        "-s",
        str(REPO / "Snakefile"),
        "--directory",
        str(workdir),
        *args,
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(
            f"snakemake {' '.join(args)} failed ({proc.returncode}):\n"
            f"{proc.stdout[-4000:]}\n{proc.stderr[-6000:]}"
        )
    return proc


@pytest.fixture(scope="module")
def one_torch_thread() -> Iterator[None]:
    """Tiny tensors: intra-op threads only contend, above all on a shared, loaded machine (15x slower with 2).
    Modules opt in with ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def write_tiny_bert(
    path: Path, words: Iterable[str], *, hidden_size: int, num_hidden_layers: int, max_len: int = 40
) -> Path:
    """A random BERT at ``path`` whose tokenizer knows ``words`` and whose [PAD] id is 4, not 0 (so code that
    assumes 0 fails). Seeded: the same call writes the same weights."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast

    path.mkdir(parents=True, exist_ok=True)
    vocab = ["[UNK]", "[CLS]", "[SEP]", "[MASK]", "[PAD]", *words]
    (path / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    tokenizer = BertTokenizerFast(vocab=str(path / "vocab.txt"), model_max_length=max_len)
    assert tokenizer.pad_token_id == 4
    tokenizer.save_pretrained(path)
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=hidden_size,
        num_hidden_layers=num_hidden_layers,
        num_attention_heads=2,
        intermediate_size=2 * hidden_size,
        max_position_embeddings=max_len,
        pad_token_id=4,
    )
    torch.manual_seed(0)
    BertModel(config).save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding the tiny fixture config, before any run."""
    work = tmp_path_factory.mktemp("tiny")
    shutil.copy(FIXTURES / "tiny" / "config.yaml", work / "config.yaml")
    return work


@pytest.fixture(scope="session")
def tiny_run(tiny_workdir: Path) -> Path:
    """The whole default DAG run once on the tiny demo world (shared by the workflow tests)."""
    snakemake(tiny_workdir, "--cores", "2")
    return tiny_workdir
