"""Each rule's ``code`` input is exactly what its command imports, so that editing a module reruns exactly
the rules whose code imports it (the closure is read from the source, not listed by hand).

The jobs come from Snakemake's own DAG of the tiny world (with the optional rephrasing on, so that every rule
is planned); the expected files come from the AST of the CLI command each job's shell line runs.
"""

from __future__ import annotations

import ast
import re
import shutil

import pytest
import yaml

from egonlq import imports
from tests.conftest import FIXTURES, REPO

pytestmark = pytest.mark.workflow

LAYERS = {  # a stage may import only the stages below it (and the package's top-level modules)
    "data": set(),
    "queries": {"data"},
    "demo": {"data"},
    "evaluation": {"data"},
    "grounding": {"data", "queries", "evaluation"},
    "dualenc": {"data", "queries", "evaluation", "grounding"},
    "steps": {"data", "queries", "evaluation", "grounding", "dualenc"},
    "video": {"data", "queries", "demo", "evaluation", "grounding", "dualenc"},
    "narrator": {"data", "queries", "evaluation", "grounding", "dualenc"},
}


@pytest.fixture(scope="module")
def planned_jobs(tmp_path_factory: pytest.TempPathFactory) -> list:
    from snakemake.api import SnakemakeApi
    from snakemake.settings.types import DAGSettings, OutputSettings, ResourceSettings

    work = tmp_path_factory.mktemp("rule_code")
    config = yaml.safe_load((FIXTURES / "tiny" / "config.yaml").read_text())
    config.setdefault("queries", {})["rephrase"] = {"enabled": True}
    (work / "config.yaml").write_text(yaml.safe_dump(config))
    with SnakemakeApi(OutputSettings(quiet={"all"})) as api:
        workflow = api.workflow(
            resource_settings=ResourceSettings(cores=1), snakefile=REPO / "Snakefile", workdir=work
        )
        # the default target and the own targets of the dual encoder, steps, recipes, narrator, the dual
        # encoder's keyframe scorer (not in `all`)
        targets = {"all", "dual_encoder", "steps", "recipes", "recipe_keyframes", "narrator"}
        targets.add("keyframes_dualenc")
        workflow.dag(DAGSettings(targets=targets, forceall=True)).execute_workflow(executor="dryrun")
        jobs = [job for job in workflow._workflow.dag.jobs if job.shellcmd]
    shutil.rmtree(work, ignore_errors=True)
    return jobs


def test_every_rule_is_planned(planned_jobs: list) -> None:
    text = "".join(p.read_text() for p in (REPO / "workflow" / "rules").glob("*.smk"))
    names = ("llm_pretrain", "naq", "naq_zeroshot", "naq_lowshot", "keyframes", "narrator")
    names += ("dualenc", "steps")
    recipes = {"recipes", *(f"recipe_{r}" for r in names)}
    targets = {"all", "dual_encoder", "steps", "narrator", "keyframes_dualenc", *recipes}
    declared = re.findall(r"^\s*rule (\w+):|^\s*use rule \w+ as (\w+) with:", text, flags=re.M)
    shell_rules = {a or b for a, b in declared} - targets
    assert {job.rule.name for job in planned_jobs} == shell_rules


def test_each_rules_code_input_is_what_its_command_imports(planned_jobs: list) -> None:
    src = str(REPO / "src" / "egonlq") + "/"
    checked = set()
    for job in planned_jobs:
        command = re.search(r"-m egonlq\.cli (\S+)", job.shellcmd).group(1)
        declared = {f.removeprefix(src) for f in job.input if f.startswith(src) and f.endswith(".py")}
        expected = set(imports.source_files(imports.command_modules(command)))
        assert declared == expected, (
            f"rule {job.rule.name} ({command}): missing {sorted(expected - declared)}, "
            f"extra {sorted(declared - expected)}"
        )
        checked.add(job.rule.name)
    assert len(checked) >= 25


def test_the_scan_follows_function_level_imports_and_stops_at_other_stages() -> None:
    train = set(imports.source_files(imports.command_modules("train")))
    assert {"grounding/train.py", "grounding/vslnet.py", "cli/grounding.py", "io.py"} <= train
    assert not {"cli/data.py", "video/keyframes.py"} & train
    # keyframes.py imports the VSLNet model inside a function
    assert "grounding/vslnet.py" in imports.source_files(imports.command_modules("keyframes"))


def test_no_stage_imports_a_stage_above_it() -> None:
    package = REPO / "src" / "egonlq"
    for stage, allowed in LAYERS.items():
        for path in sorted((package / stage).rglob("*.py")):
            ours, _ = imports.imports_of(ast.parse(path.read_text()))
            stages = {m.split(".")[0] for m in ours if (package / m.split(".")[0]).is_dir()}
            above = stages - allowed - {stage}
            assert not above, f"{path.relative_to(package)} imports {sorted(above)}"
    top_level = [p for p in package.glob("*.py")]
    for path in top_level:
        ours, _ = imports.imports_of(ast.parse(path.read_text()))
        assert not {m for m in ours if (package / m.split(".")[0]).is_dir()}, path.name


def test_the_import_lists_are_cached_per_file_change(tmp_path, monkeypatch) -> None:
    """A second start reads the import lists from .snakemake/; an edited module is read again."""
    import importlib

    monkeypatch.chdir(tmp_path)
    (tmp_path / ".snakemake").mkdir()
    fresh = importlib.reload(imports)
    first = fresh.code_files("grounding", "grounding.train")
    fresh._save_cache()
    saved = (tmp_path / ".snakemake" / "egonlq_imports.json").read_text()
    key = str(fresh.module_path("grounding.train"))
    assert key in saved
    again = importlib.reload(imports)
    entry = again._load_cache()[key]
    entry[2] = ["planted"]  # a cached list is used as long as the file's mtime and size match
    again._cache = {key: entry}
    assert again._module_imports("grounding.train") == frozenset({"planted"})
    entry[0] -= 1  # the file changed: its imports are read again
    again._module_imports.cache_clear()
    assert "grounding.vslnet" in again._module_imports("grounding.train")
    importlib.reload(imports)
    assert first == imports.code_files("grounding", "grounding.train")


def test_planning_loads_no_torch_matplotlib_or_transformers() -> None:
    """The modules the Snakefile and its rule files import while Snakemake plans (every ``from egonlq...
    import``, at any indentation, the feature-set lookup of a real root's ``dim: auto`` included) load without
    torch, matplotlib or transformers: every Snakemake start (each dry run, each cluster job's) would take
    ~1.3 s longer with torch and matplotlib (a demo dry run: 4.3 s against 1.9 s)."""
    import subprocess
    import sys

    sources = [REPO / "Snakefile", *sorted((REPO / "workflow" / "rules").glob("*.smk"))]
    modules = sorted(
        {m for p in sources for m in re.findall(r"^\s*from (egonlq[\w.]*) import", p.read_text(), re.M)}
    )
    assert "egonlq.data.feature_sets" in modules and "egonlq.grounding.recipes" in modules
    code = (
        "import importlib, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        "print(sorted(m for m in ('torch', 'matplotlib', 'transformers') if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": str(REPO / "src")},
    )
    assert out.stdout.strip() == "[]"
