"""The conda env files stay in step with the Python dependencies of pyproject.toml."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[ ]", requirement.strip(), maxsplit=1)[0].lower()


def _pins(requirements: list[str]) -> dict[str, str]:
    return {_name(r): r.replace(" ", "") for r in requirements if not r.startswith("-e")}


def test_env_files_pin_what_pyproject_pins() -> None:
    project = _pins(tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"])
    env_files = sorted((REPO / "envs").glob("*.yaml"))
    assert env_files
    for env_file in env_files:
        env = yaml.safe_load(env_file.read_text())
        pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
        assert any(r.startswith("-e") for r in pip), f"{env_file.name} must install the package itself"
        for name, pin in _pins(pip).items():
            assert name in project, f"{env_file.name}: {name} is not a dependency in pyproject.toml"
            assert pin == project[name], f"{env_file.name}: {pin} differs from pyproject's {project[name]}"
