# Shared definitions: config validation, paths, the code each rule depends on, and target lists.

import json
import sys
from pathlib import Path

from snakemake.settings.types import DeploymentMethod
from snakemake.utils import validate


validate(config, schema="../schemas/config.schema.yaml")

REPO = Path(workflow.basedir)
SRC = REPO / "src"
sys.path.insert(0, str(SRC))  # parse-time helpers (experiment planning) come from the package
# Rules run the interpreter that runs Snakemake (or, with --sdm conda, the rule's env's python),
# with the repository's src/ first on the path.
USE_CONDA = DeploymentMethod.CONDA in workflow.deployment_settings.deployment_method
PY = f"PYTHONPATH={SRC} " + ("python" if USE_CONDA else sys.executable)
CLI = f"{PY} -m egonlq.cli"

DATA = config["data"]
# Model jobs ask the scheduler for a GPU only when the config says they need one (device: cuda); `auto` uses a
# GPU where the job lands on one and asks for none, so CPU-only clusters never see a GPU request.
DEVICE = config["device"]
GPU_REQUEST = int(DEVICE == "cuda")
DEMO_ROOT = "results/demo/world"
IS_DEMO = Path(DATA["root"]) == Path(DEMO_ROOT)
ROOT = Path(DATA["root"])

# Official feature sets (ego4d-formats.md section 5) and the demo's own.
KNOWN_FEATURE_DIMS = {
    "slowfast8x8_r101_k400": 2304,
    "omnivore_video_swinl": 1536,
    "omnivore_video_swinl_fp16": 1536,
    "omnivore_image_swinl": 1536,
    "egovlp": 256,
    "demo_features": 256,
}
FEATURE_NAME = DATA["features"]["name"]
if FEATURE_NAME == "auto":
    FEATURE_NAME = "demo_features" if IS_DEMO else "omnivore_video_swinl"
FEATURE_DIM = DATA["features"]["dim"]
if FEATURE_DIM == "auto":
    if FEATURE_NAME not in KNOWN_FEATURE_DIMS:
        raise ValueError(
            f"config.yaml: data.features.dim is 'auto' but the feature set {FEATURE_NAME!r} is not a known one "
            f"({', '.join(sorted(KNOWN_FEATURE_DIMS))}); set data.features.dim explicitly"
        )
    FEATURE_DIM = KNOWN_FEATURE_DIMS[FEATURE_NAME]

SPLITS = ["train", "val", "test"]


def data_path(rel):
    """A path of the input data set, relative to the data root."""
    return str(ROOT / rel)


def optional_data_path(key, demo_default):
    """Resolve an optional input: 'auto' means the demo's file in the demo world, or the file if it exists."""
    value = DATA[key]
    if value is None:
        return None
    if value == "auto":
        if IS_DEMO:
            return data_path(demo_default) if demo_default else None
        candidate = {"egoclip": "egoclip.csv"}.get(key)
        return data_path(candidate) if candidate and (ROOT / candidate).exists() else None
    return data_path(value)


TEST_GT = optional_data_path("test_gt", "v1/annotations/nlq_test_gt.json")
EGOCLIP = optional_data_path("egoclip", "egoclip.csv")

# The train files of the other episodic-memory tasks, which NaQ pools clips from besides NLQ train's.
EM_TRAIN_FILES = ["v1/annotations/vq_train.json", "v1/annotations/moments_train.json"]


def em_train_paths(value):
    """Resolve data.em_train to paths relative to the root. auto: the standard files that exist (the demo
    writes both), the dry run saying which are absent and what that changes; a list: every file must exist."""
    from snakemake.logging import logger

    if value == "auto":
        present = [p for p in EM_TRAIN_FILES if IS_DEMO or (ROOT / p).is_file()]
        absent = [p for p in EM_TRAIN_FILES if p not in present]
        if absent:
            pool = " + ".join(["NLQ train", *(Path(p).stem for p in present)])
            logger.info(
                f"data.em_train (auto): {', '.join(absent)} absent under {ROOT}: NaQ's clip pool is {pool} clips"
                " (fewer clips, hence fewer NaQ queries, than with every EM train file)"
            )
        return present
    produced = set(EM_TRAIN_FILES) if IS_DEMO else set()
    missing = [p for p in value if p not in produced and not (ROOT / p).is_file()]
    if missing:
        raise ValueError(
            f"config.yaml: data.em_train lists {', '.join(missing)}, absent under {ROOT}; remove them, or set"
            " data.em_train: auto to use the EM train files that exist"
        )
    return list(value)


DATA["em_train"] = em_train_paths(DATA["em_train"])  # resolved once: every rule reads the list
FEATURE_DIR = data_path(f"v1/{FEATURE_NAME}")
# The demo world's features come with a manifest (one file for the DAG); real features are a folder.
FEATURE_INPUT = f"{FEATURE_DIR}/manifest.json" if IS_DEMO else FEATURE_DIR


def nlq_json(split):
    return data_path(DATA["nlq"][split])


def gt_json(split):
    """Ground truth for scoring a split; None for a test split without published answers."""
    if split == "test":
        return TEST_GT
    return nlq_json(split)


EVAL_SPLITS = [s for s in config["evaluation"]["splits"] if gt_json(s) is not None]
PREDICT_SPLITS = sorted(set(config["evaluation"]["splits"]) | {"val"})
BASELINES = config["baselines"]["predictors"]


def src_files(stage, *modules):
    """Code a rule depends on: the command module of its stage (``egonlq.cli.<stage>``), the modules its command
    calls and everything they import (read from the source). Editing one of these files reruns the rule."""
    from egonlq.imports import code_files

    return [str(SRC / "egonlq" / f) for f in code_files(stage, *modules)]


wildcard_constraints:
    split="|".join(SPLITS),
    baseline="|".join(["uniform", "prior"]),


def all_targets():
    targets = [
        "results/data/validation_report.json",
        expand("results/features/{split}_clips.parquet", split=SPLITS),
        "results/eval/metrics.md",
        "results/queries/training_queries.parquet",
        "results/features/training_clips.parquet",
    ]
    if RUNS:
        targets.append("results/experiments/table.md")
    # every predictor's challenge files, test included whether or not test answers exist to score them
    targets += expand(
        "results/predictions/{predictor}/{split}.json", predictor=predictor_names(), split=PREDICT_SPLITS
    )
    targets += keyframe_targets()  # defined in keyframes.smk
    return targets


# ---------------------------------------------------------------------------------------------- query sources

QCFG = config["queries"]
GENERATORS = {g["name"]: g for g in QCFG["generators"]}
NUM_SHARDS = QCFG["generation"]["shards"]


def repo_path(path):
    """A file of the repository (prompts): relative paths are relative to the repository, not the workdir."""
    p = Path(path)
    return str(p if p.is_absolute() else REPO / p)


def generator_source(name):
    """The `source` tag of a generator's queries (template, llm:<model>), known at parse time."""
    from egonlq.queries.llm_backends import source_name

    g = GENERATORS[name]
    return source_name(g["backend"], g["options"].get("model_path") or g["options"].get("model"))


REPHRASE = QCFG["rephrase"]
if REPHRASE["enabled"]:
    if REPHRASE["generator"] not in GENERATORS:
        raise ValueError(f"config.yaml: queries.rephrase.generator {REPHRASE['generator']!r} is not a generator")
    if REPHRASE["origin"] != "narration" and REPHRASE["origin"] not in GENERATORS:
        raise ValueError(f"config.yaml: queries.rephrase.origin {REPHRASE['origin']!r} is neither narration nor a generator")

# Every source a training run may name: NaQ, one per generator, and the rephrasings.
QUERY_SOURCES = {"naq"} | {generator_source(g) for g in GENERATORS}
if REPHRASE["enabled"]:
    origin = "narration" if REPHRASE["origin"] == "narration" else generator_source(REPHRASE["origin"])
    QUERY_SOURCES.add(f"rephrase:{origin}")


def generated_tables():
    tables = expand("results/queries/{generator}/generated.parquet", generator=sorted(GENERATORS))
    if REPHRASE["enabled"]:
        tables.append("results/queries/rephrase/generated.parquet")
    return tables


# ---------------------------------------------------------------------------------------------- VSLNet runs

from snakemake.logging import logger

from egonlq.grounding.experiments import parse_experiments, predictor_name

# A rule's shell line that starts the CLI as the job's own process (bash execs it), so that the signals a
# scheduler sends to the job (a kill, a timeout) reach the Python process instead of orphaning it.
EXEC_CLI = f"exec env {CLI}"
from egonlq.grounding.presets import resolve_auto

# "auto" model and training settings: the demo's in the demo world, the reference's on real data.
VSLNET_WORLD = "demo" if IS_DEMO else "reference"
VCFG, _VSLNET_AUTO = resolve_auto(config["vslnet"], VSLNET_WORLD)
if _VSLNET_AUTO:
    logger.info(
        f"vslnet settings (auto -> {VSLNET_WORLD}): " + ", ".join(f"{k}={v}" for k, v in _VSLNET_AUTO.items())
    )
RUNS = {
    r.name: r
    for r in parse_experiments(
        {k: VCFG[k] for k in ("label_mode", "model", "train")},
        config["experiments"],
        available_sources=QUERY_SOURCES,
    )
}
for _run in RUNS.values():
    if _run.trains:
        logger.info(
            f"vslnet run {_run.name} ({_run.stage}): "
            + ", ".join(f"{k}={v}" for k, v in {**_run.model, **_run.train}.items())
        )
SEEDS = list(config["experiments"]["seeds"])
TEXT_ENCODER = VCFG["text_encoder"]
TEXT_TAG = "minilm" if TEXT_ENCODER == "default" else Path(TEXT_ENCODER).name
TEXT_CACHE = f"results/text/{TEXT_TAG}/embeddings.safetensors"


def run_dir(run, seed):
    return f"results/vslnet/{run}/seed{seed}"


def checkpoint_dir(run, seed):
    """Where a run's scored checkpoint lives: zeroshot runs use their pretrain run's."""
    spec = RUNS[run]
    if not spec.trains:
        run, seed = spec.depends_on(int(seed))
    return run_dir(run, seed)


def scored_predictors():
    return [predictor_name(r, s) for r, spec in RUNS.items() if spec.scored for s in SEEDS]


def predictor_names():
    """Every predictor whose predictions are scored: the baselines and the scored VSLNet runs."""
    return list(BASELINES) + scored_predictors()


wildcard_constraints:
    run="|".join(RUNS) if RUNS else "NO_RUNS",
    seed=r"\d+",
