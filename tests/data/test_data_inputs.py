"""Optional data inputs at plan time: the VQ/MQ train files of NaQ's clip pool (data.em_train), on a
real-layout root (a tiny world outside the demo folder, which the workflow treats as real data)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from egonlq.demo.world import build_world
from tests.conftest import FIXTURES, snakemake

pytestmark = pytest.mark.workflow

ANN = Path("v1") / "annotations"


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny world in the Ego4D layout without the MQ train file (VQ only)."""
    root = tmp_path_factory.mktemp("ego4d_data")
    build_world(root, preset="tiny", seed=0, render_videos=0)
    (root / ANN / "moments_train.json").unlink()
    return root


def plan(workdir: Path, root: Path, check: bool = True, **data) -> str:
    cfg = yaml.safe_load((FIXTURES / "tiny" / "config.yaml").read_text())
    cfg["data"] = {"root": str(root), "features": {"name": "demo_features", "dim": 256}, **data}
    (workdir / "config.yaml").write_text(yaml.safe_dump(cfg))
    proc = snakemake(workdir, "-n", "-p", "--cores", "1", "results/queries/naq/naq.parquet", check=check)
    return proc.stdout + proc.stderr


def em_train_args(output: str) -> list[str]:
    (args,) = re.findall(r"naq .*--em-train (.*?) --nlq-train", output)
    return args.split()


def test_auto_uses_the_em_train_files_that_exist_and_says_which_are_absent(
    root: Path, tmp_path: Path
) -> None:
    out = plan(tmp_path, root)  # em_train: auto is the default
    assert em_train_args(out) == [str(root / ANN / "vq_train.json")]
    assert "data.em_train (auto): v1/annotations/moments_train.json absent" in out
    assert "NaQ's clip pool is NLQ train + vq_train clips" in out


def test_an_explicit_list_must_exist_at_parse_time(root: Path, tmp_path: Path) -> None:
    listed = [str(ANN / "vq_train.json"), str(ANN / "moments_train.json")]
    out = plan(tmp_path, root, check=False, em_train=listed)
    assert "data.em_train lists v1/annotations/moments_train.json, absent under" in out
    assert "MissingInputException" not in out
    out = plan(tmp_path, root, em_train=listed[:1])
    assert em_train_args(out) == [str(root / ANN / "vq_train.json")]


def test_the_demo_world_pools_both_files(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text((FIXTURES / "tiny" / "config.yaml").read_text())
    out = snakemake(tmp_path, "-n", "-p", "--cores", "1", "results/queries/naq/naq.parquet").stdout
    world = Path("results/demo/world") / ANN
    assert em_train_args(out) == [str(world / "vq_train.json"), str(world / "moments_train.json")]
    assert "data.em_train (auto)" not in out
