# Shared definitions: config validation, paths, the code each rule depends on, and target lists.

import json
import shlex
import sys
from pathlib import Path

from snakemake.settings.types import DeploymentMethod
from snakemake.utils import validate


validate(config, schema="../schemas/config.schema.yaml")

REPO = Path(workflow.basedir)
SRC = REPO / "src"
sys.path.insert(0, str(SRC))  # parse-time helpers (experiment planning) come from the package
# Every job's shell: strict mode, the repository's src/ on the import path and, outside conda, the interpreter
# that runs Snakemake first on PATH (with --sdm conda, the rule's env's python). A rule's command is then the
# plain `exec python -m egonlq.cli <step> ...`: `exec` makes Python the job's own process, so that a kill or a
# scheduler's signal reaches it instead of orphaning it. Every value from the config or a path reaches the
# shell quoted (`{x:q}`).
USE_CONDA = DeploymentMethod.CONDA in workflow.deployment_settings.deployment_method
shell.prefix(
    f"set -euo pipefail; export PYTHONPATH={shlex.quote(str(SRC))}; "
    + ("" if USE_CONDA else f"export PATH={shlex.quote(str(Path(sys.executable).parent))}:\"$PATH\"; ")
)


def auto_feature_dim(name):
    """The dimension of feature set ``name`` for `data.features.dim: auto`: the demo's (256, its writer's
    default), else the set's own sidecar (feature_set.json in v1/<name>/), else the shipped table of known sets
    (egonlq.data.feature_sets)."""
    if name == "demo_features" and IS_DEMO:
        return 256
    from egonlq.data.feature_sets import resolve_feature_set
    from egonlq.errors import InputError

    try:
        return resolve_feature_set(ROOT / "v1" / name, name).dim
    except InputError as e:
        raise ValueError(f"config.yaml: data.features.dim is 'auto', but {e}; set data.features.dim") from e


DATA = config["data"]
# Model jobs ask the scheduler for a GPU only when the config says they need one (device: cuda); `auto` uses a
# GPU where the job lands on one and asks for none, so CPU-only clusters never see a GPU request.
DEVICE = config["device"]
GPU_REQUEST = int(DEVICE == "cuda")
DEMO_ROOT = "results/demo/world"
IS_DEMO = Path(DATA["root"]) == Path(DEMO_ROOT)
ROOT = Path(DATA["root"])

FEATURE_NAME = DATA["features"]["name"]
if FEATURE_NAME == "auto":
    FEATURE_NAME = "demo_features" if IS_DEMO else "omnivore_video_swinl"
FEATURE_DIM = DATA["features"]["dim"]
if FEATURE_DIM == "auto":
    FEATURE_DIM = auto_feature_dim(FEATURE_NAME)

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


def folder_of(path):
    """The folder of a per-video file set given as an input of a job; the demo's manifest stands for its folder."""
    return str(Path(path).parent) if Path(path).name == "manifest.json" else str(path)


def src_files(stage, *modules):
    """The code of a job: the command module of its stage (``egonlq.cli.<stage>``), the modules its command
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
    targets += expand("results/report/{table}.html", table=REPORT_TABLES)  # defined in report.smk
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


# The narrator's NaQ-style queries (source `narrator`) live in a training set of their own, the base set plus
# them, so that only the runs training on them depend on the narrator (`make run` never trains it).
NARRATOR_QUERY_SOURCE = "narrator"
NARRATOR_TRAINING_SET = {
    "train_queries": "results/queries/with_narrator/training_queries.parquet",
    "train_clips": "results/queries/with_narrator/training_clips.parquet",
    "train_features": "results/features/with_narrator/training_clips.parquet",
}


def uses_narrator_queries(sources):
    """Whether a run's source patterns (exact names or fnmatch patterns) select the narrator's queries."""
    import fnmatch

    return any(fnmatch.fnmatchcase(NARRATOR_QUERY_SOURCE, s) for s in sources)


def training_queries_inputs(narrator=False):
    """Inputs of the training-queries build: every source's table, the clip tables and the val/test guard; with
    ``narrator``, the narrator's queries and their clips too (the rule of results/queries/with_narrator/)."""
    inputs = {
        "nlq_queries": "results/data/nlq/train_queries.parquet",
        "nlq_clips": "results/data/nlq/train_clips.parquet",
        "naq": "results/queries/naq/naq.parquet",
        "naq_clips": "results/queries/naq/clips.parquet",
        "generated": generated_tables(),
        "pseudo_clips": "results/queries/pseudo_clips.parquet",
        "guard_clips": expand("results/data/nlq/{split}_videos.parquet", split=["val", "test"]),  # NLQ_VIDEOS
        "guard_queries": expand("results/data/nlq/{split}_queries.parquet", split=["val", "test"]),
        "code": src_files("queries", "queries.training_queries", "queries.curation", "data.tables"),
    }
    if narrator:
        inputs["extra_queries"] = "results/narrator/queries.parquet"
        inputs["extra_clips"] = "results/narrator/query_clips.parquet"
    return inputs


def narrator_text_cache():
    """The VSLNet text cache that also holds the narrator's query texts (TEXT_TAG: the VSLNet section's)."""
    return f"results/text/{TEXT_TAG}/with_narrator/embeddings.safetensors"


def training_set_inputs(sources):
    """The training set a run with these sources reads: the narrator's one (and its text cache) when it names
    `narrator`, else none (the base set of vslnet_train_inputs)."""
    if not uses_narrator_queries(sources):
        return {}
    return dict(NARRATOR_TRAINING_SET) | ({"text_cache": narrator_text_cache()} if VCFG["text"] == "cache" else {})


# ---------------------------------------------------------------------------------------------- VSLNet runs

from snakemake.logging import logger

from egonlq.grounding.experiments import parse_experiments, predictor_name

from egonlq.grounding.presets import resolve_auto

# "auto" model and training settings: the demo's in the demo world, the reference's on real data.
VSLNET_WORLD = "demo" if IS_DEMO else "reference"
VCFG, _VSLNET_AUTO = resolve_auto(config["vslnet"], VSLNET_WORLD)
if VCFG["compat"] == "official" and VCFG["text"] == "cache":
    raise ValueError(
        "config.yaml: vslnet.compat 'official' keeps the encoder's outputs at padded positions and its dropout "
        "in training, which a text cache cannot hold: set vslnet.text: encoder"
    )
if _VSLNET_AUTO:
    logger.info(
        f"vslnet settings (auto -> {VSLNET_WORLD}): " + ", ".join(f"{k}={v}" for k, v in _VSLNET_AUTO.items())
    )
# what a run may train on: the base set's sources, and the narrator's queries (a training set of their own)
RUN_SOURCES = QUERY_SOURCES | {NARRATOR_QUERY_SOURCE}
RUNS = {
    r.name: r
    for r in parse_experiments(
        {k: VCFG[k] for k in ("label_mode", "model", "train")},
        config["experiments"],
        available_sources=RUN_SOURCES,
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


# -------------------------------------------------------------------------------------- functions of baselines.smk


def baseline_inputs(wc):
    inputs = {
        "queries": f"results/data/nlq/{wc.split}_queries.parquet",
        "clips": f"results/data/nlq/{wc.split}_clips.parquet",
        "code": src_files("evaluation", "evaluation.baselines", "evaluation.predictions"),
    }
    if wc.baseline == "prior":
        inputs["prior"] = "results/baselines/prior.json"
    return inputs


# -------------------------------------------------------------------------------------- functions of dualenc.smk


def de_dir(run, seed):
    return f"results/dualenc/{run}/seed{seed}"


def de_pairs_file(pairset):
    """The pairs table of a pair set: the dual encoder's ("base"), or it plus the narrator's texts."""
    return "results/narrator/pairs.parquet" if pairset == "narrator" else "results/dualenc/pairs.parquet"


def de_text_cache(pairset):
    return f"results/dualenc/text/{DE_TEXT_TAG}/{pairset}/pooled.safetensors"


def de_pairset(run):
    """"narrator" when a source pattern of the run matches the narrator's source, else "base"."""
    import fnmatch

    return "narrator" if any(fnmatch.fnmatchcase("narrator", s) for s in DE_RUNS[run].sources) else "base"


def de_run_pairs(wc):
    return de_pairs_file(de_pairset(wc.derun))


def de_run_text(wc):
    return de_text_cache(de_pairset(wc.derun))


def de_set_pairs(wc):
    return de_pairs_file(wc.pairset)


def check_narrator_tower():
    """The narrator's video tower must be a run that exists and does not itself train on narrator text."""
    tower = config["narrator"]["video_tower"]
    if tower["run"] not in DE_RUNS:
        raise ValueError(f"config.yaml: narrator.video_tower.run {tower['run']!r} is not a dual_encoder run")
    if de_pairset(tower["run"]) == "narrator":
        raise ValueError(f"config.yaml: narrator.video_tower.run {tower['run']!r} trains on narrator text (a cycle)")


def narrator_lm_input():
    """The config.json of the narrator's LM: the demo's pre-trained one, or the configured local folder's."""
    lm = config["narrator"]["lm"]
    return "results/narrator/lm/demo/config.json" if lm == "demo" else str(Path(lm) / "config.json")


def narrator_query_texts():
    """narrator.queries.texts: "best" (the lowest-entropy text of a window, the default) or "all" its texts."""
    return config["narrator"].get("queries", {}).get("texts", "best")


def de_spec(wc):
    run = DE_RUNS[wc.derun]
    spec = {"sources": list(run.sources), "gt_fraction": run.gt_fraction, "seed": int(wc.seed),
            "model": DECFG["model"], **DECFG["train"]}
    return json.dumps(spec, sort_keys=True)


def de_vslnet_features():
    """The dual encoder run x seed whose video tower writes the VSLNet features, and the VSLNet run trained on
    them (an experiment run from scratch: an init would need training on these features too), as
    ``dual_encoder.vslnet_features`` gives them; unset, gt100 (else the first run) at the first seed and the
    first scratch run. None, with the reason logged, when unset and no such runs exist."""
    given = DECFG.get("vslnet_features")
    scratch = [name for name, run in RUNS.items() if run.stage == "scratch"]
    if not given and not (DE_RUNS and scratch):
        logger.info("dual encoder features for VSLNet: not planned (needs a dual_encoder run and a scratch run)")
        return None
    default_run = "gt100" if "gt100" in DE_RUNS else next(iter(DE_RUNS), None)
    vf = {"run": default_run, "seed": DE_SEEDS[0], "window_rows": 3, "baseline": next(iter(scratch), None)}
    vf.update(given or {})
    where = "config.yaml: dual_encoder.vslnet_features"
    if set(vf) != {"run", "seed", "window_rows", "baseline"}:
        raise ValueError(f"{where} has unknown keys {sorted(set(vf) - {'run', 'seed', 'window_rows', 'baseline'})}")
    if vf["run"] not in DE_RUNS or vf["seed"] not in DE_SEEDS:
        raise ValueError(
            f"{where} names run {vf['run']!r} seed {vf['seed']}: not a dual_encoder run that runs"
            f" ({', '.join(DE_RUNS) or 'none'}) at one of its seeds {DE_SEEDS}"
        )
    if vf["baseline"] not in scratch:
        raise ValueError(f"{where}.baseline {vf['baseline']!r} is not an experiments run with stage scratch")
    if not isinstance(vf["window_rows"], int) or vf["window_rows"] < 1 or vf["window_rows"] % 2 == 0:
        raise ValueError(f"{where}.window_rows {vf['window_rows']!r} is not an odd number >= 1")
    return vf


def de_vslnet_dir(seed):
    """The VSLNet run of the dual encoder's features at ``seed``."""
    return f"results/dualenc/vslnet/{DE_VF_NAME}/{DE_VF['baseline']}/seed{seed}"


def de_vslnet_predictor(seed):
    return f"vslnet_{DE_VF['baseline']}_on_{DE_VF_NAME}_seed{seed}"


def de_vslnet_train_inputs(wc):
    """The baseline run's training inputs with the dual encoder's clip features instead of the input set's."""
    return vslnet_train_inputs(None) | {
        "train_features": f"{DE_VF_TABLES}/training_clips.parquet",
        "val_features": f"{DE_VF_TABLES}/val_clips.parquet",
    }


def de_vslnet_predict_inputs(wc):
    inputs = vslnet_predict_inputs(de_vslnet_dir(wc.seed), wc.split)
    return inputs | {"features": f"{DE_VF_TABLES}/{wc.split}_clips.parquet"}


# -------------------------------------------------------------------------------------- functions of ingest.smk


def ingest_reports():
    reports = ["results/data/reports/metadata.json", "results/data/reports/narrations.json"]
    reports += expand("results/data/reports/nlq_{split}.json", split=SPLITS)
    if EGOCLIP:
        reports.append("results/data/reports/egoclip.json")
    return reports


def preflight_args():
    """``--input NAME=PATH`` for every input the configured workflow reads, ``--nlq SPLIT=PATH`` per split."""
    inputs = {
        "metadata": data_path(DATA["metadata"]),
        **{f"nlq_{s}": nlq_json(s) for s in SPLITS},
        "narrations": data_path(DATA["narrations"]),
        "features": FEATURE_DIR,
    }
    if TEST_GT:
        inputs["test_gt"] = TEST_GT
    if EGOCLIP:
        inputs["egoclip"] = EGOCLIP
    inputs.update({f"em_train_{Path(p).stem}": data_path(p) for p in DATA["em_train"]})
    if KEYFRAMES_ON:  # keyframes.smk
        inputs["videos"] = VIDEO_DIR
    goalstep = {s: STEPS_FILES[s] for s in STEPS_PRESENT} if STEPS_ON else {}  # steps.smk
    inputs.update({f"goalstep_{s}": path for s, path in goalstep.items()})
    if STEPS_ON:
        inputs["goalstep_groups"] = STEPS_GROUPS
    args = [f"--input {shlex.quote(f'{name}={path}')}" for name, path in inputs.items()]
    args += [f"--nlq {shlex.quote(f'{s}={nlq_json(s)}')}" for s in SPLITS]
    args += [f"--goalstep {shlex.quote(f'{s}={path}')}" for s, path in goalstep.items()]
    # the feature set: its sidecar or known description, and its rows against the metadata's frame counts
    args.append(f"--features {shlex.quote(f'{FEATURE_NAME}={FEATURE_DIR}')} --feature-dim {int(FEATURE_DIM)}")
    args.append(f"--metadata {shlex.quote(data_path(DATA['metadata']))}")
    return " ".join(args)


# -------------------------------------------------------------------------------------- functions of keyframes.smk


wildcard_constraints:
    text="(_summary|_both)?",  # keyframes_encoder: empty for the query-guided selections


def vslnet_scorer_tags(seeds=None):
    """Scorer tags of the VSLNet runs named by keyframes.vslnet_scorers, for their first seed or ``seeds``."""
    tags = []
    for run in KCFG["vslnet_scorers"]:
        if run not in RUNS:
            raise ValueError(
                f"config.yaml: keyframes.vslnet_scorers names {run!r}, which is not a run of experiments.runs "
                f"({', '.join(RUNS) or 'none'})"
            )
        tags += [f"vslnet_{run}_seed{s}" for s in (SEEDS[:1] if seeds is None else seeds)]
    return tags


def dualenc_scorer_tags(seeds=None):
    """Scorer tags of the dual encoder runs named by keyframes.dualenc_scorers (absent: none), for their first
    seed or ``seeds``. Called when the DAG is built: DE_RUNS comes from dualenc.smk, included after this."""
    runs = KCFG.get("dualenc_scorers", [])
    for run in runs:
        if run not in DE_RUNS:
            raise ValueError(
                f"config.yaml: keyframes.dualenc_scorers names {run!r}, which is not a run of dual_encoder.runs "
                f"({', '.join(DE_RUNS) or 'none'})"
            )
    return [f"dualenc_{run}_seed{s}" for run in runs for s in (DE_SEEDS[:1] if seeds is None else seeds)]


def check_keyframes_on(target):
    if not KEYFRAMES_ON:
        raise ValueError(f"the {target} target needs the keyframes stage, which is off (keyframes.enabled)")


def keyframes_dualenc_target():
    """The keyframes_dualenc target: the dual encoder run gt100, seed 0, as a keyframe scorer."""
    check_keyframes_on("keyframes_dualenc")
    if "gt100" not in DE_RUNS or 0 not in DE_SEEDS:
        raise ValueError("the keyframes_dualenc target needs the dual_encoder run gt100 with seed 0 in config.yaml")
    return [f"results/keyframes/dualenc_gt100_seed0/{f}" for f in ("selection.parquet", "stats.json")]


def moment_hit_selections(wc):
    """The query-guided selections of the moment-hit table: every scorer of the keyframes config."""
    return [f"results/keyframes/{tag}/selection.parquet" for tag in SCORER_TAGS + dualenc_scorer_tags()]


def keyframe_recipe_selections(wc):
    """The keyframe recipe's selections (AKS set ``seed``): the encoder, every seed of the VSLNet and dual
    encoder scorers."""
    check_keyframes_on("recipe_keyframes")
    tags = [f"encoder_{SCORER_TAG}", *vslnet_scorer_tags(SEEDS), *dualenc_scorer_tags(DE_SEEDS)]
    return [f"results/keyframes/aks_seed/{tag}/selection.parquet" for tag in tags]


def stage_recipe_targets(wc):
    """The step recipe's table for the aggregate `recipes` target ([] when the steps stage is off)."""
    return ["results/recipes/steps/table.md"] if STEPS_ON else []


def keyframe_recipe_targets(wc):
    """The keyframe recipe's table for the aggregate `recipes` target ([] when the keyframes stage is off)."""
    return ["results/recipes/keyframes/table.md"] if KEYFRAMES_ON else []


def keyframe_targets():
    """The keyframe stage's outputs ([] when it is off: report.smk reads that as "keyframes off")."""
    if not KEYFRAMES_ON:
        return []
    summaries = [f"results/keyframes/summaries/nlq_{s}_summaries.json" for s in SPLITS]
    return [*summaries, f"{FRAMES_DIR}/features/manifest.json", "results/keyframes/moment_hits.md"]


def keyframe_params():
    """Selection parameters shared by every scorer (params, so that editing one reruns the selections)."""
    return {
        "aks": KCFG["aks"] if isinstance(KCFG["aks"], str) else json.dumps(KCFG["aks"], sort_keys=True),
        "methods": " ".join(KCFG["methods"]),
        "rate": KCFG["frame_rate"],
        "batch": KCFG["batch_size"],
        "save": KCFG["save_frames"],
    }


def keyframe_command(tag):
    """The shared tail of the keyframes command: selection parameters and the outputs of scorer ``tag``."""
    return (
        " --videos {input.videos:q} --aks {params.aks:q} --methods {params.methods} --sample-rate {params.rate}"
        " --batch-size {params.batch} --save-frames {params.save} --threads {threads}"
        f" --progress results/keyframes/{tag}/progress.jsonl --scores {{output.scores:q}}"
        " --selection {output.selection:q} --frames-dir {output.frames:q} --stats {output.stats:q}"
    )


def keyframe_outputs(tag):
    return {
        "scores": f"results/keyframes/{tag}/scores.parquet",
        "selection": f"results/keyframes/{tag}/selection.parquet",
        "frames": directory(f"results/keyframes/{tag}/frames"),
        "stats": f"results/keyframes/{tag}/stats.json",
    }


def dualenc_scorer_inputs(wc):
    return {
        "queries": f"results/data/nlq/{KSPLIT}_queries.parquet",
        "clips": f"results/data/nlq/{KSPLIT}_clips.parquet",
        "videos": "results/data/videos.parquet",
        "model": f"{de_dir(wc.derun, wc.seed)}/model.safetensors",
        "text_cache": de_run_text(wc),
        "features": FEATURE_INPUT,
        "mp4": VIDEO_INPUT,
        "code": src_files("video", *KEYFRAME_CODE),
    }


def vslnet_scorer_inputs(wc):
    inputs = {
        "queries": f"results/data/nlq/{KSPLIT}_queries.parquet",
        "clips": f"results/data/nlq/{KSPLIT}_clips.parquet",
        "videos": "results/data/videos.parquet",
        "features": f"results/features/{KSPLIT}_clips.parquet",
        "model": f"{checkpoint_dir(wc.run, wc.seed)}/model.safetensors",
        "text_cache": TEXT_CACHE,
        "mp4": VIDEO_INPUT,
        "code": src_files("video", *KEYFRAME_CODE, "grounding.text_encoder"),
    }
    return inputs


# -------------------------------------------------------------------------------------- functions of queries.smk


def naq_inputs(wc):
    inputs = {
        "em_train": [data_path(p) for p in DATA["em_train"]],
        "nlq_train": nlq_json("train"),
        "code": src_files("queries", "queries.naq", "queries.training_queries", "data.tables"),
    }
    if EGOCLIP:
        inputs["egoclip"] = "results/data/egoclip.parquet"
    else:
        inputs["narrations"] = "results/data/narrations.parquet"
        inputs["videos"] = "results/data/videos.parquet"
    return inputs


# -------------------------------------------------------------------------------------- functions of vslnet.smk


def train_inputs(wc):
    dep = RUNS[wc.run].depends_on(int(wc.seed))
    inputs = vslnet_train_inputs(f"{run_dir(*dep)}/model.safetensors" if dep else None)
    return inputs | training_set_inputs(RUNS[wc.run].sources)


# The resolved settings behind every training run besides its spec (the command adds the spec, after `auto`).
TRAIN_PROVENANCE = json.dumps(
    {
        "features": {"name": FEATURE_NAME, "dim": FEATURE_DIM},
        "vslnet": {k: VCFG[k] for k in ("compat", "text", "text_encoder")},
        "device": DEVICE,
    },
    sort_keys=True,
)


def vslnet_train_inputs(init_model):
    """Inputs of a training job (experiment or recipe run); ``init_model``: the checkpoint it starts from."""
    inputs = {
        "train_queries": "results/queries/training_queries.parquet",
        "train_clips": "results/queries/training_clips.parquet",
        "train_features": "results/features/training_clips.parquet",
        "val_queries": "results/data/nlq/val_queries.parquet",
        "val_clips": "results/data/nlq/val_clips.parquet",
        "val_features": "results/features/val_clips.parquet",
        "val_gt": nlq_json("val"),
        "preflight": ancient(PREFLIGHT),  # its data fingerprint is recorded; only its existence counts
        "code": src_files("grounding", "grounding.train", "grounding.text_encoder", "data.provenance"),
    }
    if VCFG["text"] == "cache":
        inputs["text_cache"] = TEXT_CACHE
    if init_model:
        inputs["init"] = init_model
    return inputs


def predict_inputs(wc):
    return vslnet_predict_inputs(checkpoint_dir(wc.run, wc.seed), wc.split)


def vslnet_predict_inputs(ckpt, split):
    """Inputs of a prediction job on ``split`` from the checkpoint folder ``ckpt`` (experiment or recipe run)."""
    inputs = {
        "model": f"{ckpt}/model.safetensors",
        "queries": f"results/data/nlq/{split}_queries.parquet",
        "clips": f"results/data/nlq/{split}_clips.parquet",
        "features": f"results/features/{split}_clips.parquet",
        "code": src_files("grounding", "grounding.predict"),
    }
    if VCFG["text"] == "cache":
        inputs["text_cache"] = TEXT_CACHE
    return inputs


# -------------------------------------------------------------------------------------- functions of recipes.smk

from egonlq.grounding.recipes import plan_recipes

# Every recipe's runs under their parameter keys: a run two recipes share is one job (results/recipes/runs/<key>).
# Recipes may also train on the narrator's queries (their own training set, see training_set_inputs).
RECIPE_SOURCES = RUN_SOURCES
RECIPES = plan_recipes(
    {k: VCFG[k] for k in ("label_mode", "model", "train")}, config["recipes"], available_sources=RECIPE_SOURCES
)


wildcard_constraints:
    recipe="|".join(RECIPES.recipes),
    recipe_run="|".join(RECIPES.runs),


def recipe_run_dir(key, seed):
    return f"results/recipes/runs/{key}/seed{seed}"


def recipe_train_inputs(wc):
    spec = RECIPES.runs[wc.recipe_run]
    init = f"{recipe_run_dir(spec.init, wc.seed)}/model.safetensors" if spec.init else None
    return vslnet_train_inputs(init) | training_set_inputs(spec.sources)


def recipe_predict_inputs(wc):
    spec = RECIPES.runs[wc.recipe_run]
    return vslnet_predict_inputs(recipe_run_dir(spec.init if not spec.trains else spec.name, wc.seed), wc.split)


def recipe_metrics(wc):
    """The val metrics a recipe's table reads: its scored runs for every seed, and its baseline controls."""
    predictors = [predictor_name(key, s) for key in RECIPES.scored(wc.recipe).values() for s in RECIPES.seeds]
    return [f"results/eval/{p}/val.json" for p in predictors + RECIPES.baselines(wc.recipe)]
