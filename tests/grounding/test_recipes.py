"""Source recipes: runs shared by parameter key, the verdict rule, the table, and each target's dry run."""

from __future__ import annotations

import copy
import shutil
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from egonlq.errors import InputError
from egonlq.evaluation.metric import EvalResult, write_metrics
from egonlq.grounding.presets import resolve_auto
from egonlq.grounding.recipes import (
    RECIPE_ROWS,
    Comparison,
    RecipePlan,
    compare,
    plan_recipes,
    recipe_rows,
    verdict,
    write_recipe_table,
)

REPO = Path(__file__).resolve().parents[2]
CONFIG = yaml.safe_load((REPO / "config.yaml").read_text())
SOURCES = {"naq", "template", "narrator"}
TARGETS = (
    "recipe_llm_pretrain",
    "recipe_naq",
    "recipe_naq_zeroshot",
    "recipe_naq_lowshot",
    "recipe_narrator",
)


def _vslnet() -> dict:
    resolved, _ = resolve_auto(CONFIG["vslnet"], "demo")
    return {k: resolved[k] for k in ("label_mode", "model", "train")}


@pytest.fixture(scope="module")
def plan() -> RecipePlan:
    return plan_recipes(_vslnet(), CONFIG["recipes"], available_sources=SOURCES)


def test_runs_two_recipes_need_share_one_key(plan: RecipePlan) -> None:
    m = plan.members
    assert m["llm_pretrain"]["scratch"] == m["naq"]["scratch"] == m["naq_lowshot"]["scratch_100pct"]
    assert m["naq"]["naq_pt"] == m["naq_lowshot"]["naq_pt_100pct"]
    assert m["naq"]["naq_ft"] == m["naq_lowshot"]["naq_ft_100pct"]
    assert m["naq"]["naq_pt"] == m["narrator"]["naq_pt"] and m["naq"]["naq_ft"] == m["narrator"]["naq_ft"]
    named = sum(len(local) for local in m.values())
    assert len(plan.runs) == named - 6  # scratch (named 3 times), naq_pt and naq_ft (3 times) planned once
    # what differs is a different key: VSLBase, the LLM pre-training (sources only), each fraction
    assert m["naq"]["scratch_vslbase"] != m["naq"]["scratch"]
    assert len({m["naq_lowshot"][f"scratch_{p}pct"] for p in (10, 25, 50, 100)}) == 4


def test_each_recipe_trains_what_its_source_says(plan: RecipePlan) -> None:
    run = {recipe: {local: plan.runs[key] for local, key in m.items()} for recipe, m in plan.members.items()}
    llm = run["llm_pretrain"]
    assert (llm["llm_pt"].joint_nlq, llm["llm_pt"].sources, llm["llm_pt"].nlq_fraction) == (
        False,
        ("template",),
        None,
    )
    assert llm["llm_ft"].init == plan.members["llm_pretrain"]["llm_pt"] and llm["llm_ft"].stage == "finetune"
    naq = run["naq"]
    assert naq["naq_pt"].joint_nlq and naq["naq_pt"].train["jitter_factor"] == 2.5
    assert naq["naq_pt"].train["jitter_sources"] == ["naq"]
    assert naq["naq_ft"].train["jitter_factor"] == 0.0  # stage 2 never jitters
    assert [naq[n].model["highlight"] for n in ("scratch_vslbase", "naq_pt_vslbase", "naq_ft_vslbase")] == [
        False
    ] * 3
    assert naq["naq_ft"].model["highlight"] is True
    zs = run["naq_zeroshot"]
    assert (
        zs["naq_zs"].stage == "zeroshot" and zs["naq_zs"].init == plan.members["naq_zeroshot"]["naqonly_pt"]
    )
    assert not zs["naqonly_pt"].joint_nlq
    low = run["naq_lowshot"]
    assert [low[f"naq_ft_{p}pct"].nlq_fraction for p in (10, 25, 50, 100)] == [0.1, 0.25, 0.5, 1.0]
    assert low["naq_pt_10pct"].nlq_fraction == 0.1 and low["scratch_10pct"].nlq_fraction == 0.1
    assert plan.baselines("naq_zeroshot") == ["uniform"] and plan.baselines("naq") == []
    nar = run["narrator"]
    assert nar["narrator_pt"].sources == ("naq", "narrator") and nar["narrator_pt"].joint_nlq
    assert nar["narrator_pt"].train["jitter_sources"] == ["naq", "narrator"]  # both are narration windows
    assert {k: v for k, v in nar["narrator_pt"].train.items() if k != "jitter_sources"} == {
        k: v for k, v in nar["naq_pt"].train.items() if k != "jitter_sources"
    }  # the same pre-training but for its mix
    assert nar["narrator_ft"].init == plan.members["narrator"]["narrator_pt"]
    assert nar["narrator_ft"].train == nar["naq_ft"].train
    assert [(c.treatment, c.control) for c in plan.recipes["narrator"].comparisons] == [
        ("narrator_ft", "naq_ft")
    ]


def test_a_run_key_is_its_parameters_not_its_name() -> None:
    base = plan_recipes(_vslnet(), CONFIG["recipes"], available_sources=SOURCES)
    settings = copy.deepcopy(CONFIG["recipes"])
    settings["finetune"] = {**settings["finetune"], "lr": 0.0005}
    other = plan_recipes(_vslnet(), settings, available_sources=SOURCES)
    assert other.members["naq"]["scratch"] == base.members["naq"]["scratch"]  # untouched
    assert other.members["naq"]["naq_pt"] == base.members["naq"]["naq_pt"]
    assert other.members["naq"]["naq_ft"] != base.members["naq"]["naq_ft"]  # its lr changed
    settings = copy.deepcopy(CONFIG["recipes"])
    settings["seeds"] = [5, 6, 7]  # seeds are wildcards, not part of the key
    assert plan_recipes(_vslnet(), settings, available_sources=SOURCES).members == base.members


def test_an_unknown_llm_source_names_the_recipe() -> None:
    settings = {**CONFIG["recipes"], "llm_sources": ["llm:gemma"]}
    with pytest.raises(InputError, match=r"recipes\.llm_pretrain.*llm_pt.*sources"):
        plan_recipes(_vslnet(), settings, available_sources=SOURCES)


# ------------------------------------------------------------------------------------------ tables, verdicts


def _metrics(path: Path, predictor: str, r1: float, split: str = "val") -> Path:
    """A metrics file as the evaluate rule writes it: official mode, R@1 IoU0.3 = ``r1``."""
    recall = {(t, k): r1 / (2 if t == 0.5 else 1) for t in (0.3, 0.5, 0.01) for k in (1, 3, 5)}
    result = EvalResult(
        mode="official",
        thresholds=(0.3, 0.5, 0.01),
        ks=(1, 3, 5),
        recall=recall,
        miou=r1,
        num_results=10,
        num_gt=10,
        num_evaluated=10,
        num_missing=0,
    )
    out = path / f"{predictor}_{split}.json"
    write_metrics({"predictor": predictor, "split": split, "official": result.to_dict()}, out)
    return out


def _write(plan: RecipePlan, recipe: str, values: dict[str, list[float]], tmp: Path) -> list[Path]:
    """Metrics files: ``values`` maps a local run (or baseline) to its R1@0.3 per seed."""
    paths = []
    for local, per_seed in values.items():
        key = plan.members[recipe].get(local)
        if key is None:
            paths.append(_metrics(tmp, local, per_seed[0]))
            continue
        for seed, v in zip(plan.seeds, per_seed, strict=True):
            paths.append(_metrics(tmp, f"vslnet_{key}_seed{seed}", v))
    return paths


def test_the_table_states_the_claim_first_and_the_verdict_last(plan: RecipePlan, tmp_path: Path) -> None:
    values = {"scratch": [0.10, 0.12, 0.11], "llm_ft": [0.15, 0.16, 0.12]}
    paths = _write(plan, "llm_pretrain", values, tmp_path)
    out = tmp_path / "out"
    ok = write_recipe_table(
        plan,
        "llm_pretrain",
        paths,
        out_parquet=out / "table.parquet",
        out_markdown=out / "table.md",
        out_png=out / "plot.png",
        synthetic=True,
    )
    lines = (out / "table.md").read_text().splitlines()
    assert ok and lines[0].startswith("Claim: LLM-query recipe")
    assert lines[-1] == "Demo reproduces the claim: yes (every comparison passes the rule)"
    assert (
        "| VSLNet | llm_ft | scratch | 14.33 | 11.00 | 1.30x | +3.33 ± 2.08 | s0: +5.00, s1: +4.00, s2: +1.00"
        in (out / "table.md").read_text()
    )
    table = pq.read_table(out / "table.parquet")
    assert table.schema.equals(RECIPE_ROWS) and table.num_rows == 6
    assert (out / "plot.png").stat().st_size > 0

    values["llm_ft"][2] = 0.10  # one seed below scratch: the mean still gains, the rule does not hold
    write_recipe_table(
        plan,
        "llm_pretrain",
        _write(plan, "llm_pretrain", values, tmp_path),
        out_parquet=out / "table.parquet",
        out_markdown=out / "table.md",
        out_png=out / "plot.png",
    )
    last = (out / "table.md").read_text().splitlines()[-1]
    assert last == "Demo reproduces the claim: no (VSLNet: no gain on every seed)"


def test_zero_shot_pairs_every_seed_with_the_baseline(plan: RecipePlan, tmp_path: Path) -> None:
    paths = _write(plan, "naq_zeroshot", {"uniform": [0.05], "naq_zs": [0.07, 0.06, 0.051]}, tmp_path)
    rows = recipe_rows(plan, "naq_zeroshot", paths)
    gain = compare(rows, plan.recipes["naq_zeroshot"].comparisons[0])
    assert gain.per_seed == pytest.approx({0: 2.0, 1: 1.0, 2: 0.1})
    assert gain.gains and verdict(plan.recipes["naq_zeroshot"], [gain])[0]


def test_low_shot_needs_gains_that_grow_as_nlq_shrinks(plan: RecipePlan, tmp_path: Path) -> None:
    recipe = plan.recipes["naq_lowshot"]

    def run(gains: list[float]) -> tuple[bool, str]:
        values = {}
        for pct, g in zip((10, 25, 50, 100), gains, strict=True):
            values[f"scratch_{pct}pct"] = [0.1, 0.1, 0.1]
            values[f"naq_ft_{pct}pct"] = [0.1 + g, 0.1 + g, 0.1 + g]
        folder = tmp_path / "-".join(map(str, gains))
        folder.mkdir()
        rows = recipe_rows(plan, "naq_lowshot", _write(plan, "naq_lowshot", values, folder))
        return verdict(recipe, [compare(rows, c) for c in recipe.comparisons])

    assert run([0.05, 0.04, 0.03, 0.01]) == (True, "every comparison passes the rule")
    ok, why = run([0.01, 0.02, 0.03, 0.04])
    assert not ok and "does not exceed the gain at NLQ 100pct" in why


def test_a_metrics_file_of_another_split_or_run_is_an_error(plan: RecipePlan, tmp_path: Path) -> None:
    key = plan.members["llm_pretrain"]["scratch"]
    with pytest.raises(InputError, match="split"):
        recipe_rows(plan, "llm_pretrain", [_metrics(tmp_path, f"vslnet_{key}_seed0", 0.1, split="test")])
    other = plan.members["naq"]["naq_ft_vslbase"]
    with pytest.raises(InputError, match="not part of recipe 'llm_pretrain'"):
        recipe_rows(plan, "llm_pretrain", [_metrics(tmp_path, f"vslnet_{other}_seed0", 0.1)])


def test_comparison_against_missing_seeds_is_no_gain() -> None:
    import pandas as pd

    rows = pd.DataFrame({"run": ["a", "b"], "seed": [0, 1], "R1@0.3": [0.2, 0.1]})
    gain = compare(rows, Comparison("x", "a", "b"))
    assert gain.per_seed == {} and not gain.gains


# ------------------------------------------------------------------------------------------ dry runs


@pytest.fixture(scope="module")
def planned_trainings(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Counter]:
    """Per target, the recipe training jobs the dry run plans, counted by (run key, seed)."""
    from snakemake.api import SnakemakeApi
    from snakemake.settings.types import DAGSettings, OutputSettings, ResourceSettings

    work = tmp_path_factory.mktemp("recipes_dry")
    shutil.copy(REPO / "tests" / "fixtures" / "tiny" / "config.yaml", work / "config.yaml")
    planned = {}
    for target in (*TARGETS, "recipes", "all"):
        with SnakemakeApi(OutputSettings(quiet={"all"})) as api:
            workflow = api.workflow(
                resource_settings=ResourceSettings(cores=1), snakefile=REPO / "Snakefile", workdir=work
            )
            workflow.dag(DAGSettings(targets={target}, forceall=True)).execute_workflow(executor="dryrun")
            jobs = workflow._workflow.dag.jobs
            planned[target] = Counter(
                (job.wildcards["recipe_run"], int(job.wildcards["seed"]))
                for job in jobs
                if job.rule.name == "train_recipe_run"
            )
            planned[f"{target}:experiment trainings"] = sum(j.rule.name == "train_vslnet" for j in jobs)
            planned[f"{target}:rules"] = {j.rule.name for j in jobs}
            planned[f"{target}:table sources"] = {
                j.params.sources for j in jobs if j.rule.name == "recipe_table"
            }  # what the table command re-plans the recipes with
            planned[f"{target}:narrator set"] = {  # training jobs reading the set with the narrator's queries
                j.wildcards["recipe_run"]
                for j in jobs
                if j.rule.name == "train_recipe_run"
                and "results/queries/with_narrator/training_queries.parquet" in j.input
            }
    shutil.rmtree(work, ignore_errors=True)
    return planned


def _tiny_plan() -> RecipePlan:
    """The recipes of the tiny config, the one the dry runs plan."""
    from snakemake.utils import validate

    tiny = yaml.safe_load((REPO / "tests" / "fixtures" / "tiny" / "config.yaml").read_text())
    validate(
        tiny, str(REPO / "workflow" / "schemas" / "config.schema.yaml")
    )  # fills defaults as the run does
    resolved, _ = resolve_auto(tiny["vslnet"], "demo")
    return plan_recipes(
        {k: resolved[k] for k in ("label_mode", "model", "train")}, tiny["recipes"], available_sources=SOURCES
    )


def test_each_target_plans_its_runs_once_and_recipes_the_union(planned_trainings: dict) -> None:
    plan = _tiny_plan()
    union: set = set()
    for target in TARGETS:
        recipe = target.removeprefix("recipe_")
        keys = {k for k in plan.run_keys(recipe) if plan.runs[k].trains}
        expected = {(k, s) for k in keys for s in plan.seeds}
        assert set(planned_trainings[target]) == expected, target
        assert max(planned_trainings[target].values()) == 1
        assert (
            planned_trainings[f"{target}:experiment trainings"] == 0
        )  # recipes never retrain the table's runs
        union |= expected
    assert set(planned_trainings["recipes"]) == union and max(planned_trainings["recipes"].values()) == 1
    assert len(union) < sum(len(planned_trainings[t]) for t in TARGETS)  # shared runs are planned once
    assert not planned_trainings["all"]  # the default target trains no recipe run


def test_only_runs_on_narrator_queries_wait_on_the_narrator(planned_trainings: dict) -> None:
    """recipe_narrator's narrator pre-training reads the set with the narrator's queries; nothing else does,
    and neither the default target nor the other recipes train the narrator."""
    narrator_pt = _tiny_plan().members["narrator"]["narrator_pt"]
    assert planned_trainings["recipe_narrator:narrator set"] == {narrator_pt}
    assert {
        "narrator_queries",
        "narrator_training_queries",
        "narrator_training_clip_features",
        "narrator_text_embeddings",  # the narrator's query texts must be in the run's text cache
    } <= (planned_trainings["recipe_narrator:rules"])
    assert "train_narrator" in planned_trainings["recipe_narrator:rules"]
    (sources,) = planned_trainings["recipe_narrator:table sources"]
    assert "narrator" in sources.split(",")
    for target in ("all", *(t for t in TARGETS if t != "recipe_narrator")):
        assert "train_narrator" not in planned_trainings[f"{target}:rules"], target
        assert not planned_trainings[f"{target}:narrator set"], target
