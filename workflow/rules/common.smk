# Shared definitions: config validation, paths, the code each rule depends on, and target lists.

import sys
from pathlib import Path

from snakemake.settings.types import DeploymentMethod
from snakemake.utils import validate


validate(config, schema="../schemas/config.schema.yaml")

REPO = Path(workflow.basedir)
SRC = REPO / "src"
# Rules run the interpreter that runs Snakemake (or, with --sdm conda, the rule's env's python),
# with the repository's src/ first on the path.
USE_CONDA = DeploymentMethod.CONDA in workflow.deployment_settings.deployment_method
PY = f"PYTHONPATH={SRC} " + ("python" if USE_CONDA else sys.executable)
CLI = f"{PY} -m egonlq.cli"

DATA = config["data"]
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


def src_files(*rel):
    """Code a rule depends on: editing one of these files reruns the rule."""
    return [str(SRC / "egonlq" / r) for r in rel]


COMMON_CODE = ("cli.py", "errors.py", "io.py")


wildcard_constraints:
    split="|".join(SPLITS),
    baseline="|".join(["uniform", "prior"]),


def all_targets():
    targets = [
        "results/data/validation_report.json",
        expand("results/features/{split}_clips.parquet", split=SPLITS),
        "results/eval/metrics.md",
    ]
    targets += expand(
        "results/predictions/{predictor}/{split}.json", predictor=BASELINES, split=PREDICT_SPLITS
    )
    return targets
