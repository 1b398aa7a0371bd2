"""Shared fixtures: the repository root, Snakemake in a subprocess, and one tiny end-to-end run."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
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
