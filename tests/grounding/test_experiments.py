"""Experiments: parsing the configured runs, aggregating their metrics, and the report's figures."""

from __future__ import annotations

import ast
import copy
import math
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from egonlq.data.provenance import read_schema_provenance
from egonlq.errors import InputError
from egonlq.evaluation.metric import EvalResult, write_metrics
from egonlq.grounding.experiment_table import EXPERIMENT_METRICS, aggregate_experiments, summarize_experiments
from egonlq.grounding.experiments import RunSpec, parse_experiments, parse_predictor_name, predictor_name
from egonlq.grounding.plots import SYNTHETIC_NOTE, plot_recall_by_run, plot_training_curves
from egonlq.io import read_parquet

REPO = Path(__file__).resolve().parents[2]
SOURCES = {"naq", "llm:qwen", "llm:gemma", "template"}

CONFIG = yaml.safe_load(
    """
vslnet:
  label_mode: compatible
  model: {dim: 128, num_heads: 8, dropout: 0.2, max_pos_len: 128, highlight: true}
  train: {epochs: 30, batch_size: 32, lr: 0.001, warmup_proportion: 0.0, weight_decay: 0.01, clip_norm: 1.0,
          eval_per_epoch: 2, jitter_factor: 2.5, jitter_sources: [naq], max_train_queries: null}
experiments:
  seeds: [0, 1]
  runs:
    - {name: scratch, stage: scratch}
    - {name: naq_pt, stage: pretrain, sources: [naq], joint_nlq: true, train: {epochs: 5, batch_size: 128}}
    - {name: naq_ft, stage: finetune, init: naq_pt, train: {lr: 0.0001}}
    - {name: naqonly_pt, stage: pretrain, sources: [naq], joint_nlq: false, model: {dim: 64}}
    - {name: naq_zs, stage: zeroshot, init: naqonly_pt}
    - {name: fewshot25, stage: scratch, nlq_fraction: 0.25}
"""
)


def parse(config: dict = CONFIG) -> list[RunSpec]:
    return parse_experiments(config["vslnet"], config["experiments"], available_sources=SOURCES)


def by_name(runs: list[RunSpec]) -> dict[str, RunSpec]:
    return {r.name: r for r in runs}


# ---------------------------------------------------------------------------------------------------- parse


def test_parse_example_stages_merges_and_dependencies() -> None:
    runs = by_name(parse())
    assert list(runs) == ["scratch", "naq_pt", "naq_ft", "naqonly_pt", "naq_zs", "fewshot25"]
    assert {n: r.stage for n, r in runs.items()} == {
        "scratch": "scratch",
        "naq_pt": "pretrain",
        "naq_ft": "finetune",
        "naqonly_pt": "pretrain",
        "naq_zs": "zeroshot",
        "fewshot25": "scratch",
    }
    assert [n for n, r in runs.items() if not r.trains] == ["naq_zs"]
    assert [n for n, r in runs.items() if not r.scored] == ["naq_pt", "naqonly_pt"]

    pt, ft, zs = runs["naq_pt"], runs["naq_ft"], runs["naq_zs"]
    # deep merge: only the overridden keys change
    assert pt.train["epochs"] == 5 and pt.train["batch_size"] == 128 and pt.train["lr"] == 0.001
    assert pt.train["jitter_factor"] == 2.5 and pt.train["jitter_sources"] == ["naq"]
    assert pt.sources == ("naq",) and pt.joint_nlq and pt.nlq_fraction == 1.0
    # stage 2: fresh train settings from the defaults (not the init's), jittering off
    assert ft.train["lr"] == 0.0001 and ft.train["epochs"] == 30 and ft.train["batch_size"] == 32
    assert ft.train["jitter_factor"] == 0.0 and ft.train["jitter_sources"] == []
    assert ft.sources == () and ft.joint_nlq and ft.init == "naq_pt"
    # model overrides deep-merge; finetune and zeroshot take their init's model
    assert runs["naqonly_pt"].model == CONFIG["vslnet"]["model"] | {"dim": 64}
    assert zs.model == runs["naqonly_pt"].model and zs.train == {}
    assert zs.sources == ("naq",) and not zs.joint_nlq and zs.nlq_fraction is None
    assert runs["naqonly_pt"].nlq_fraction is None
    assert runs["fewshot25"].nlq_fraction == 0.25 and runs["scratch"].train["jitter_factor"] == 0.0
    # the shared defaults were not mutated by the merges
    assert CONFIG["vslnet"]["train"]["jitter_sources"] == ["naq"] and CONFIG["vslnet"]["model"]["dim"] == 128

    assert ft.depends_on(1) == ("naq_pt", 1) and zs.depends_on(0) == ("naqonly_pt", 0)
    assert runs["scratch"].depends_on(0) is None and pt.depends_on(1) is None
    with pytest.raises(ValueError, match="no seed 7"):
        ft.depends_on(7)
    assert ft.predictor(1) == "vslnet_naq_ft_seed1"


def _all_params(runs: list[RunSpec]) -> dict[tuple[str, int], dict]:
    """What the workflow's train rule passes as params (and the CLI turns into a TrainSpec)."""
    return {(r.name, s): r.train_spec_dict(s) for r in runs if r.trains for s in r.seeds}


def test_editing_one_run_changes_only_its_params() -> None:
    before = _all_params(parse())
    edited = copy.deepcopy(CONFIG)
    edited["experiments"]["runs"][1]["train"]["lr"] = 0.002  # naq_pt
    after = _all_params(parse(edited))
    changed = {key for key in before if before[key] != after[key]}
    assert changed == {("naq_pt", 0), ("naq_pt", 1)}
    assert after[("naq_pt", 0)]["lr"] == 0.002

    # a shared default changes every run that trains and does not override it
    edited = copy.deepcopy(CONFIG)
    edited["vslnet"]["train"]["lr"] = 0.01
    after = _all_params(parse(edited))
    changed_runs = {run for (run, _), p in before.items() if p != after[(run, _)]}
    assert changed_runs == {"scratch", "naq_pt", "naqonly_pt", "fewshot25"}

    # the jitter default cannot touch runs that never jitter
    edited = copy.deepcopy(CONFIG)
    edited["vslnet"]["train"]["jitter_factor"] = 5.0
    after = _all_params(parse(edited))
    assert {run for (run, _), p in before.items() if p != after[(run, _)]} == {"naq_pt", "naqonly_pt"}


def test_source_patterns_and_jitter_restricted_to_the_mix() -> None:
    config = copy.deepcopy(CONFIG)
    config["vslnet"]["train"]["jitter_sources"] = ["naq", "llm:*"]
    config["experiments"]["runs"] = [
        {"name": "llm_pt", "stage": "pretrain", "sources": ["llm:*"], "joint_nlq": True},
        {"name": "tpl_pt", "stage": "pretrain", "sources": ["template"], "joint_nlq": False},
        {"name": "mix_pt", "stage": "pretrain", "sources": ["naq", "llm:qwen"], "joint_nlq": True},
    ]
    runs = by_name(parse(config))
    assert runs["llm_pt"].train["jitter_sources"] == ["llm:*"]
    assert runs["tpl_pt"].train["jitter_sources"] == []
    assert runs["mix_pt"].train["jitter_sources"] == ["naq", "llm:*"]


def test_finetune_inherits_the_few_shot_fraction_of_its_init() -> None:
    config = copy.deepcopy(CONFIG)
    config["experiments"]["runs"] = [
        {"name": "ft10", "stage": "finetune", "init": "pt10"},  # init listed later: allowed
        {"name": "pt10", "stage": "pretrain", "sources": ["naq"], "joint_nlq": True, "nlq_fraction": 0.1},
        {"name": "ft_all", "stage": "finetune", "init": "pt10", "nlq_fraction": 1},
    ]
    runs = by_name(parse(config))
    assert runs["pt10"].nlq_fraction == 0.1 and runs["ft10"].nlq_fraction == 0.1
    assert runs["ft_all"].nlq_fraction == 1.0
    assert list(runs) == ["ft10", "pt10", "ft_all"]


def test_train_spec_dict_matches_the_trainspec_fields() -> None:
    """Every key handed to ``TrainSpec.from_dict`` is a TrainSpec field (read from the source, not imported:
    importing torch would dominate this file's run time)."""
    tree = ast.parse((REPO / "src" / "egonlq" / "grounding" / "train_spec.py").read_text())
    spec = next(n for n in ast.walk(tree) if isinstance(n, ast.ClassDef) and n.name == "TrainSpec")
    fields = {n.target.id for n in spec.body if isinstance(n, ast.AnnAssign)}
    runs = by_name(parse())
    for name in ("scratch", "naq_pt", "naq_ft", "naqonly_pt", "fewshot25"):
        d = runs[name].train_spec_dict(1)
        assert set(d) <= fields, set(d) - fields
        assert d["seed"] == 1 and d["stage"] == runs[name].stage
    assert runs["naqonly_pt"].train_spec_dict(0)["nlq_fraction"] == 1.0  # ignored without joint_nlq
    assert runs["naq_pt"].train_spec_dict(0)["sources"] == ["naq"]
    with pytest.raises(ValueError, match="does not train"):
        runs["naq_zs"].train_spec_dict(0)


def _with_run(index: int | None, run: dict) -> dict:
    """The example config with ``run`` appended (``index`` None) or in place of run ``index``."""
    config = copy.deepcopy(CONFIG)
    if index is None:
        config["experiments"]["runs"].append(run)
    else:
        config["experiments"]["runs"][index] = run
    return config


def _edit(path: str, value) -> dict:
    config = copy.deepcopy(CONFIG)
    *parents, last = path.split(".")
    node = config
    for key in parents:
        node = node[key]
    node[last] = value
    return config


X = {"name": "x"}
PT = {"name": "x", "stage": "pretrain", "sources": ["naq"], "joint_nlq": True}
FT = {"name": "x", "stage": "finetune", "init": "naq_pt"}
SC = {"name": "x", "stage": "scratch"}
NO_SOURCES = {k: v for k, v in PT.items() if k != "sources"}
NO_JOINT = {k: v for k, v in PT.items() if k != "joint_nlq"}

# (config, record fragment, field, message fragment)
PARSE_ERRORS = [
    (_with_run(None, {**PT, "sources": ["naqq"]}), "'x'", "sources", "unknown source"),
    (_with_run(None, {**PT, "sources": ["nlq"]}), "'x'", "sources", "not a synthetic"),
    (_with_run(None, {**PT, "sources": []}), "'x'", "sources", "empty source mix"),
    (_with_run(None, NO_SOURCES), "'x'", "sources", "empty source mix"),
    (_with_run(None, NO_JOINT), "'x'", "joint_nlq", "joint_nlq None"),
    (_with_run(None, {**PT, "joint_nlq": False, "nlq_fraction": 0.5}), "'x'", "nlq_fraction", "without NLQ"),
    (_with_run(None, {**SC, "name": "naq_ft"}), "runs[6] (name='naq_ft')", "name", "duplicate run name"),
    (_with_run(2, {**FT, "name": "naq_ft", "init": "nope"}), "'naq_ft'", "init", "not a configured run"),
    (_with_run(2, {"name": "naq_ft", "stage": "finetune"}), "'naq_ft'", "init", "init None"),
    (_with_run(2, {**FT, "name": "naq_ft", "init": "scratch"}), "'naq_ft'", "init", "is a scratch run"),
    (_with_run(None, {**X, "stage": "zeroshot", "init": "naq_ft"}), "'x'", "init", "is a finetune run"),
    (
        _with_run(4, {"name": "naq_zs", "stage": "zeroshot", "init": "naq_pt"}),
        "'naq_zs'",
        "init",
        "not zero-shot",
    ),
    (_with_run(None, {**X, "stage": "stage3"}), "'x'", "stage", "unknown stage"),
    (_with_run(None, X), "'x'", "stage", "unknown stage"),
    (_with_run(None, {**SC, "nlq_fraction": 0}), "'x'", "nlq_fraction", "outside (0, 1]"),
    (_with_run(None, {**SC, "nlq_fraction": 1.5}), "'x'", "nlq_fraction", "outside"),
    (_with_run(None, {**SC, "nlq_fraction": True}), "'x'", "nlq_fraction", "outside"),
    (_with_run(None, {**FT, "nlq_fraction": -0.1}), "'x'", "nlq_fraction", "outside"),
    (_with_run(None, {**PT, "nlq_fraction": "half"}), "'x'", "nlq_fraction", "outside"),
    (_with_run(None, {**SC, "name": "a/b"}), "'a/b'", "name", "not a safe token"),
    (_with_run(None, {**SC, "name": "a b"}), "'a b'", "name", "not a safe token"),
    (_with_run(None, {**SC, "name": "x_seed1"}), "'x_seed1'", "name", "not a safe token"),
    (_with_run(None, {**SC, "name": ""}), "name=''", "name", "not a safe token"),
    (_with_run(None, {"stage": "scratch"}), "name=None", "name", "not a safe token"),
    (_with_run(None, {**SC, "train": {"lrr": 1}}), "'x'", "train.lrr", "unknown key"),
    (_with_run(None, {**SC, "model": {"depth": 3}}), "'x'", "model.depth", "unknown key"),
    (
        _with_run(None, {**FT, "train": {"jitter_factor": 2.5}}),
        "'x'",
        "train.jitter_factor",
        "on a finetune run",
    ),
    (
        _with_run(None, {**SC, "train": {"jitter_sources": ["naq"]}}),
        "'x'",
        "train.jitter_sources",
        "jittering",
    ),
    (
        _with_run(None, {**PT, "train": {"jitter_factor": 0.5}}),
        "'x'",
        "train.jitter_factor",
        "jitter_factor 0.5",
    ),
    (_with_run(None, {**FT, "model": {"dim": 64}}), "'x'", "model", "does not apply to a finetune run"),
    (
        _with_run(None, {**X, "stage": "zeroshot", "init": "naqonly_pt", "train": {}}),
        "'x'",
        "train",
        "zeroshot",
    ),
    (_with_run(None, {**SC, "sources": ["naq"]}), "'x'", "sources", "does not apply"),
    (_with_run(None, {**SC, "label_mode": "exact"}), "'x'", "label_mode", "label_mode 'exact'"),
    (
        _edit("vslnet.train.jitter_sources", ["narrations"]),
        "vslnet",
        "train.jitter_sources",
        "unknown source",
    ),
    (_edit("vslnet.label_mode", "fixed"), "vslnet", "label_mode", "label_mode 'fixed'"),
    (_edit("experiments.seeds", []), "experiments", "seeds", "non-empty"),
    (_edit("experiments.seeds", [0, 0]), "experiments", "seeds", "repeated seed"),
    (_edit("experiments.seeds", [-1]), "experiments", "seeds", "non-negative"),
    (_edit("experiments.grid", {}), "experiments", "grid", "unknown key"),
]


@pytest.mark.parametrize(("config", "record", "field", "message"), PARSE_ERRORS)
def test_parse_errors_name_the_run_and_the_field(config: dict, record: str, field: str, message: str) -> None:
    with pytest.raises(InputError) as info:
        parse(config)
    err = info.value
    assert record in err.record and err.field == field, str(err)
    assert message in str(err) and f"[field {field!r}]" in str(err) and str(err).startswith("config.yaml:")


# ----------------------------------------------------------------------------------------- predictor names


@given(
    run=st.from_regex(r"[A-Za-z0-9_-]{1,20}", fullmatch=True).filter(lambda s: "_seed" not in s),
    seed=st.integers(0, 10**6),
)
def test_predictor_name_round_trip(run: str, seed: int) -> None:
    assert parse_predictor_name(predictor_name(run, seed)) == (run, seed)


def test_parse_predictor_name_other_names() -> None:
    assert parse_predictor_name("uniform") is None and parse_predictor_name("prior") is None
    assert parse_predictor_name("vslnet_naq_ft_seed12") == ("naq_ft", 12)
    for bad in ("vslnet_x", "vslnet_x_seed", "vslnet__seed1", "vslnet_a_seed1_seed2", "vslnet_a b_seed1"):
        with pytest.raises(ValueError, match="vslnet_<run>_seed<seed>"):
            parse_predictor_name(bad)


# ---------------------------------------------------------------------------------------------- aggregation


def result(mode: str, r1: tuple[float, float], r5: tuple[float, float], miou: float, x: int, y: int) -> dict:
    """An EvalResult entry as evaluation.evaluate_both writes it (R3 = the mean of R1 and R5)."""
    recall = {}
    for t, a, b in ((0.3, r1[0], r5[0]), (0.5, r1[1], r5[1]), (0.01, 0.9, 0.95)):
        recall.update({(t, 1): a, (t, 3): (a + b) / 2, (t, 5): b})
    missing = y - x if mode == "strict" else 0
    return EvalResult(
        mode=mode,
        thresholds=(0.3, 0.5, 0.01),
        ks=(1, 3, 5),
        recall=recall,
        miou=miou,
        num_results=x,
        num_gt=y,
        num_evaluated=x if mode == "official" else y,
        num_missing=missing,
    ).to_dict()


# (predictor, split) -> {mode: (R1@0.3, R1@0.5), (R5@0.3, R5@0.5), mIoU} or an error string
METRICS = {
    ("vslnet_scratch_seed0", "val"): {
        "official": ((0.10, 0.05), (0.30, 0.20), 0.08),
        "strict": ((0.10, 0.04), (0.28, 0.18), 0.07),
    },
    ("vslnet_scratch_seed1", "val"): {
        "official": ((0.14, 0.07), (0.34, 0.22), 0.10),
        "strict": ((0.14, 0.06), (0.30, 0.20), 0.09),
    },
    ("vslnet_naq_ft_seed0", "val"): {
        "official": ((0.15, 0.09), (0.40, 0.25), 0.12),
        "strict": ((0.15, 0.08), (0.38, 0.24), 0.11),
    },
    ("vslnet_naq_ft_seed1", "val"): {
        "official": ((0.16, 0.08), (0.42, 0.27), 0.13),
        "strict": ((0.12, 0.07), (0.36, 0.22), 0.10),
    },
    ("vslnet_naq_zs_seed0", "val"): {
        "official": ((0.06, 0.03), (0.20, 0.10), 0.05),
        "strict": "StrictEvalError: 2 problem(s)",
    },
    ("vslnet_naq_ft_seed0", "test"): {"official": ((0.11, 0.06), (0.31, 0.19), 0.09)},
    ("uniform", "val"): {
        "official": ((0.02, 0.01), (0.07, 0.03), 0.02),
        "strict": ((0.02, 0.01), (0.07, 0.03), 0.02),
    },
    ("prior", "val"): {
        "official": ((0.04, 0.02), (0.12, 0.06), 0.04),
        "strict": ((0.04, 0.02), (0.11, 0.05), 0.04),
    },
}


def write_metric_files(folder: Path) -> list[Path]:
    paths = []
    for (predictor, split), modes in METRICS.items():
        obj: dict = {"predictor": predictor, "split": split}
        for mode, spec in modes.items():
            if isinstance(spec, str):
                obj[mode] = {"mode": mode, "error": spec}
            else:
                x = 90 if mode == "official" else 100
                obj[mode] = result(mode, *spec, x=x, y=100)
        path = folder / predictor / f"{split}.json"
        write_metrics(obj, path)
        paths.append(path)
    return paths


@pytest.fixture
def aggregated(tmp_path: Path):
    runs = parse()
    paths = write_metric_files(tmp_path / "eval")
    df = aggregate_experiments(
        paths, runs, out_parquet=tmp_path / "experiments.parquet", out_markdown=tmp_path / "experiments.md"
    )
    return runs, df, tmp_path


def test_aggregate_rows_and_parquet(aggregated) -> None:
    runs, df, tmp_path = aggregated
    table = read_parquet(tmp_path / "experiments.parquet", EXPERIMENT_METRICS).to_pandas()
    assert len(table) == len(df) == 15
    assert list(table.columns) == EXPERIMENT_METRICS.names
    row = table[(table["predictor"] == "vslnet_naq_ft_seed1") & (table["mode"] == "strict")].iloc[0]
    assert (row["run"], row["stage"], row["seed"], row["split"]) == ("naq_ft", "finetune", 1, "val")
    assert row["R1@0.3"] == pytest.approx(0.12) and row["R3@0.5"] == pytest.approx(0.145)
    assert row["MR1"] == pytest.approx(0.095) and row["MR5"] == pytest.approx(0.29)
    assert row["mIoU"] == pytest.approx(0.10) and (row["evaluated"], row["total"]) == (100, 100)
    official = table[(table["predictor"] == "vslnet_naq_ft_seed1") & (table["mode"] == "official")].iloc[0]
    assert (official["evaluated"], official["total"]) == (90, 100)
    uniform = table[table["predictor"] == "uniform"]
    assert set(uniform["stage"]) == {"baseline"} and uniform["seed"].isna().all()
    failed = table[table["error"].notna()]
    assert failed["predictor"].tolist() == ["vslnet_naq_zs_seed0"] and math.isnan(failed["R1@0.3"].iloc[0])
    # display order: val before test, official before strict, baselines before runs in config order
    val_official = table[(table["split"] == "val") & (table["mode"] == "official")]["predictor"].tolist()
    assert val_official == [
        "uniform",
        "prior",
        "vslnet_scratch_seed0",
        "vslnet_scratch_seed1",
        "vslnet_naq_ft_seed0",
        "vslnet_naq_ft_seed1",
        "vslnet_naq_zs_seed0",
    ]
    assert table["split"].tolist()[-1] == "test"


def test_summary_means_and_sample_stds(aggregated) -> None:
    runs, df, _ = aggregated
    s = summarize_experiments(df, runs)
    row = s[(s["run"] == "scratch") & (s["split"] == "val") & (s["mode"] == "official")].iloc[0]
    assert row["seeds"] == 2 and row["failed"] == 0
    assert row["R1@0.3_mean"] == pytest.approx(0.12)
    assert row["R1@0.3_std"] == pytest.approx(math.sqrt(2 * 0.02**2))  # ddof 1
    assert row["MR5_mean"] == pytest.approx((0.25 + 0.28) / 2)
    assert row["evaluated"] == "90 / 100"
    zs = s[(s["run"] == "naq_zs") & (s["mode"] == "strict")].iloc[0]
    assert zs["seeds"] == 0 and zs["failed"] == 1 and math.isnan(zs["R1@0.3_mean"])
    one = s[(s["run"] == "naq_zs") & (s["mode"] == "official")].iloc[0]
    assert one["seeds"] == 1 and one["R1@0.3_mean"] == pytest.approx(0.06) and math.isnan(one["R1@0.3_std"])


def test_markdown_rows_and_headline(aggregated) -> None:
    _, _, tmp_path = aggregated
    md = (tmp_path / "experiments.md").read_text()
    assert (
        "- naq_ft vs scratch, val R1@0.3 (official): +3.50 points (15.50 over 2 seed(s) vs 12.00 over 2);"
        " every seed agrees: yes (2/2 paired seeds)"
    ) in md
    assert (
        "- naq_ft vs scratch, val R1@0.3 (strict): +1.50 points (13.50 over 2 seed(s) vs 12.00 over 2);"
        " every seed agrees: no (1/2 paired seeds)"
    ) in md
    assert "## val, official\n" in md and "## val, strict\n" in md and "## test, official\n" in md
    assert md.index("## val, official") < md.index("## val, strict") < md.index("## test, official")
    assert (
        "| scratch | scratch | 2 | 12.00 ± 2.83 | 6.00 ± 1.41 | 32.00 ± 2.83 | 21.00 ± 1.41"
        " | 9.00 ± 2.12 | 26.50 ± 2.12 | 9.00 ± 1.41 | 90 / 100 |"
    ) in md
    assert "| uniform | baseline | 1 | 2.00 | 1.00 | 7.00 | 3.00 | 1.50 | 5.00 | 2.00 | 90 / 100 |" in md
    assert "| naq_zs | zeroshot | 0 (1 failed) | – | – | – | – | – | – | – | – |" in md
    assert "- vslnet_naq_zs_seed0 val strict: StrictEvalError: 2 problem(s)" in md
    assert "- fewshot25" not in md  # a scratch run is no finetune run
    assert "SYNTHETIC" not in md


def test_markdown_says_synthetic(tmp_path: Path) -> None:
    paths = write_metric_files(tmp_path / "eval")
    out = {"out_parquet": tmp_path / "e.parquet", "out_markdown": tmp_path / "e.md"}
    aggregate_experiments(paths, parse(), synthetic=True, **out)
    assert "**SYNTHETIC demo data" in (tmp_path / "e.md").read_text()


def test_table_records_its_provenance(tmp_path: Path) -> None:
    paths = write_metric_files(tmp_path / "eval")
    record = {
        "config": {"experiments": {"seeds": [0]}},
        "config_sha256": "e" * 64,
        "data_fingerprint": "f" * 64,
    }
    out = {"out_parquet": tmp_path / "e.parquet", "out_markdown": tmp_path / "e.md"}
    aggregate_experiments(paths, parse(), provenance=record, **out)
    assert read_schema_provenance(pq.read_schema(tmp_path / "e.parquet")) == record
    md = (tmp_path / "e.md").read_text()
    assert (
        "Config (experiments): sha256 `eeeeeeeeeeeeeeee`." in md
        and "Data fingerprint: `ffffffffffffffff`" in md
    )


def test_headline_without_matching_scratch(tmp_path: Path) -> None:
    config = copy.deepcopy(CONFIG)
    config["experiments"]["runs"][2]["nlq_fraction"] = 0.5  # naq_ft on half of NLQ: no scratch at 0.5
    runs = parse(config)
    paths = write_metric_files(tmp_path / "eval")
    aggregate_experiments(paths, runs, out_parquet=tmp_path / "e.parquet", out_markdown=tmp_path / "e.md")
    assert "- naq_ft: no scratch run with nlq_fraction 0.5 to compare with" in (tmp_path / "e.md").read_text()


def test_aggregate_refuses_unknown_runs_duplicates_and_malformed(tmp_path: Path) -> None:
    runs = parse()
    out = {"out_parquet": tmp_path / "e.parquet", "out_markdown": tmp_path / "e.md"}
    entry = result("official", (0.1, 0.05), (0.3, 0.2), 0.1, x=10, y=10)
    write_metrics({"predictor": "vslnet_gone_seed0", "split": "val", "official": entry}, tmp_path / "a.json")
    with pytest.raises(InputError, match="run 'gone' is not configured"):
        aggregate_experiments([tmp_path / "a.json"], runs, **out)
    write_metrics(
        {"predictor": "vslnet_scratch_seed0", "split": "val", "official": entry}, tmp_path / "b.json"
    )
    with pytest.raises(InputError, match="several metrics files for predictor=vslnet_scratch_seed0"):
        aggregate_experiments([tmp_path / "b.json", tmp_path / "b.json"], runs, **out)
    broken = {k: v for k, v in entry.items() if k != "mean_recall"}
    write_metrics(
        {"predictor": "vslnet_scratch_seed0", "split": "val", "official": broken}, tmp_path / "c.json"
    )
    with pytest.raises(InputError, match="malformed official entry") as info:
        aggregate_experiments([tmp_path / "c.json"], runs, **out)
    assert info.value.field == "official" and info.value.path == str(tmp_path / "c.json")
    assert not (tmp_path / "e.parquet").exists()


# ---------------------------------------------------------------------------------------------------- plots


def is_png(path: Path) -> bool:
    return path.stat().st_size > 1000 and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def write_curve(path: Path, steps: list[int], losses: list[float], r13: list[float]) -> Path:
    lines = ["step,epoch,loss,span,highlight,lr,R1@0.3,R1@0.5,miou,evaluated_x,evaluated_y,best,seconds"]
    for s, loss, r in zip(steps, losses, r13, strict=True):
        lines.append(f"{s},{s // 10},{loss},{loss / 2},{loss / 4},0.001,{r},{r / 2},{r / 3},90,100,True,1.0")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_plot_training_curves(tmp_path: Path) -> None:
    runs = parse()
    csvs = {
        "vslnet_scratch_seed0": write_curve(
            tmp_path / "s0.csv", [5, 10, 15], [3.0, 2.5, 2.0], [0.05, 0.08, 0.1]
        ),
        "vslnet_scratch_seed1": write_curve(tmp_path / "s1.csv", [5, 10], [3.1, 2.4], [0.04, 0.09]),
        "vslnet_naq_pt_seed0": write_curve(tmp_path / "p0.csv", [50, 100], [4.0, 3.0], [0.02, 0.07]),
        "vslnet_naq_ft_seed0": write_curve(
            tmp_path / "f0.csv", [5, 10, 15, 20], [2.0, 1.8, 1.7, 1.6], [0.1] * 4
        ),
    }
    out = tmp_path / "figs" / "curves.png"
    fig = plot_training_curves(csvs, out, runs=runs, synthetic=True)
    assert is_png(out)
    assert SYNTHETIC_NOTE in fig._suptitle.get_text()
    axes = fig.axes
    assert len(axes) == 6  # 2 rows x 3 stages (scratch, pretrain, finetune)
    titles = [ax.get_title() for ax in axes[:3]]
    assert titles == ["scratch", "pretrain", "finetune"]
    assert [len(ax.get_lines()) for ax in axes] == [2, 1, 1, 2, 1, 1]
    line = next(ln for ln in axes[0].get_lines() if ln.get_gid() == "vslnet_scratch_seed0:val")
    assert list(line.get_xdata()) == [5, 10, 15] and list(line.get_ydata()) == pytest.approx([5, 8, 10])
    loss = next(ln for ln in axes[3].get_lines() if ln.get_gid() == "vslnet_scratch_seed1:loss")
    assert list(loss.get_ydata()) == [3.1, 2.4]
    assert [f.name for f in out.parent.iterdir()] == ["curves.png"]  # no temporary file left

    (tmp_path / "bad.csv").write_text("step,loss\n1,2.0\n")
    with pytest.raises(InputError, match="R1@0.3"):
        plot_training_curves({"vslnet_scratch_seed0": tmp_path / "bad.csv"}, out, runs=runs)
    with pytest.raises(ValueError, match="not a configured VSLNet run"):
        plot_training_curves({"uniform": tmp_path / "s0.csv"}, out, runs=runs)


def test_plot_recall_by_run(aggregated) -> None:
    runs, df, tmp_path = aggregated
    out = tmp_path / "recall.png"
    fig = plot_recall_by_run(df, out, "val", runs=runs)
    assert is_png(out)
    assert (
        SYNTHETIC_NOTE not in fig._suptitle.get_text() and "val split, official" in fig._suptitle.get_text()
    )
    (ax,) = fig.axes
    bars = [p for p in ax.patches if p.get_gid()]
    assert len(bars) == 3 * 4  # scratch, naq_ft, naq_zs x R1/R5 at 0.3/0.5
    heights = {p.get_gid(): p.get_height() for p in bars}
    assert heights["scratch:R1@0.3"] == pytest.approx(12.0) and heights["naq_ft:R5@0.5"] == pytest.approx(
        26.0
    )
    baselines = sorted(ln.get_gid() for ln in ax.get_lines() if (ln.get_gid() or "").startswith("baseline:"))
    assert len(baselines) == 2 * 4
    prior = next(ln for ln in ax.get_lines() if ln.get_gid() == "baseline:prior:R5@0.3")
    assert list(prior.get_ydata()) == pytest.approx([12.0, 12.0])
    assert [t.get_text().split("\n")[0] for t in ax.get_xticklabels()] == ["scratch", "naq_ft", "naq_zs"]

    fig = plot_recall_by_run(df, tmp_path / "strict.png", "val", mode="strict", runs=runs, synthetic=True)
    assert len([p for p in fig.axes[0].patches if p.get_gid()]) == 2 * 4  # naq_zs failed in strict mode
    assert SYNTHETIC_NOTE in fig._suptitle.get_text()
