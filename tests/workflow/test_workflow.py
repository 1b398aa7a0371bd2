"""The Snakemake workflow, driven as a user would: dry-run, a tiny end-to-end run, --summary, param edits."""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml

from tests.conftest import FIXTURES, REPO, snakemake

pytestmark = pytest.mark.workflow

# Jobs of the default DAG on a fresh folder (the foundation stages).
EXPECTED_JOBS = {
    "demo_world": 1,
    "ingest_metadata": 1,
    "ingest_nlq": 3,
    "ingest_narrations": 1,
    "ingest_egoclip": 1,
    "validation_report": 1,
    "clip_features": 3,
    "fit_prior": 1,
    "predict_baseline": 4,
    "evaluate": 8,
    "metrics_table": 1,
    "curate_narrations": 1,
    "generate_queries": 2,
    "merge_queries": 1,
    "naq": 1,
    "training_queries": 1,
    "training_clip_features": 1,
    "text_embeddings": 1,
    "train_vslnet": 3,
    "predict_vslnet": 4,
    "experiment_table": 1,
    "frame_features": 1,
    "keyframes_encoder": 1,
    "keyframes_vslnet": 1,
    "moment_hits": 1,
    "all": 1,
}


def job_counts(dry_run_stdout: str) -> Counter:
    """Parse the job-count table that ``snakemake -n`` prints."""
    counts: Counter = Counter()
    in_table = False
    for line in dry_run_stdout.splitlines():
        if line.startswith("job") and "count" in line:
            in_table = True
            continue
        if in_table:
            m = re.match(r"^(\w+)\s+(\d+)$", line.strip())
            if m and m.group(1) != "total":
                counts[m.group(1)] = int(m.group(2))
            elif line.strip().startswith("total"):
                break
    return counts


def summary(workdir: Path, *args: str) -> list[dict]:
    proc = snakemake(workdir, "--summary", *args)
    rows = list(csv.DictReader(io.StringIO(proc.stdout), delimiter="\t"))
    assert rows and {"output_file", "rule", "status", "plan"} <= set(rows[0])
    return rows


def test_dry_run_lists_expected_jobs(tmp_path: Path) -> None:
    shutil.copy(FIXTURES / "tiny" / "config.yaml", tmp_path / "config.yaml")
    proc = snakemake(tmp_path, "-n")
    counts = job_counts(proc.stdout)
    for rule, n in EXPECTED_JOBS.items():
        assert counts[rule] == n, (rule, counts)
    # the tiny config sizes the model; the settings it leaves "auto" are the demo's
    from egonlq.grounding.presets import DEMO

    demo = DEMO["train"]
    assert (
        f"vslnet settings (auto -> demo): train.warmup_proportion={demo['warmup_proportion']}, "
        f"train.jitter_factor={demo['jitter_factor']}"
    ) in proc.stdout + proc.stderr


def test_an_experiment_run_may_pretrain_on_the_narrators_queries(tmp_path: Path) -> None:
    """Only the run naming `narrator` reads the narrator's training set (and so trains the narrator); the
    default runs keep the base set."""
    cfg = yaml.safe_load((FIXTURES / "tiny" / "config.yaml").read_text())
    cfg["experiments"]["runs"].append(
        {"name": "narr_pt", "stage": "pretrain", "sources": ["naq", "narrator"], "joint_nlq": True}
    )
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg))
    proc = snakemake(tmp_path, "-n", "-p")
    counts = job_counts(proc.stdout)
    assert counts["train_narrator"] == 1 and counts["narrator_training_queries"] == 1
    assert counts["train_vslnet"] == EXPECTED_JOBS["train_vslnet"] + 1
    train = [line for line in proc.stdout.splitlines() if "-m egonlq.cli train " in line]
    narr = [line for line in train if "narr_pt" in line]
    assert len(narr) == 1 and "results/queries/with_narrator/training_queries.parquet" in narr[0]
    assert not any("with_narrator" in line for line in train if "narr_pt" not in line)


def test_bad_config_fails_at_parse_time(tmp_path: Path) -> None:
    cfg = yaml.safe_load((FIXTURES / "tiny" / "config.yaml").read_text())
    cfg["features"] = {"cut_mode": "rounded"}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg))
    proc = snakemake(tmp_path, "-n", check=False)
    assert proc.returncode != 0
    assert "cut_mode" in proc.stdout + proc.stderr


def test_official_compat_mode_reaches_training_and_prediction(tmp_path: Path) -> None:
    cfg = yaml.safe_load((FIXTURES / "tiny" / "config.yaml").read_text())
    cfg["vslnet"] = {**cfg.get("vslnet", {}), "compat": "official"}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg))
    refused = snakemake(tmp_path, "-n", check=False)  # the text cache cannot hold what the mode needs
    assert refused.returncode != 0 and "set vslnet.text: encoder" in refused.stdout + refused.stderr
    cfg["vslnet"]["text"] = "encoder"
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg))
    lines = snakemake(tmp_path, "-n", "-p").stdout.splitlines()
    trains = [line for line in lines if "-m egonlq.cli train " in line]
    predicts = [line for line in lines if "-m egonlq.cli predict " in line]
    assert trains and predicts and all("--compat official" in line for line in trains + predicts)


def test_slurm_profile_dry_run(tmp_path: Path) -> None:
    shutil.copy(FIXTURES / "tiny" / "config.yaml", tmp_path / "config.yaml")
    proc = snakemake(tmp_path, "-n", "--workflow-profile", str(REPO / "workflow/profiles/slurm"))
    assert job_counts(proc.stdout)["clip_features"] == 3


def _tiny_sizes(tiny_run: Path) -> dict:
    """The tiny world's own counts (written by the demo_world rule), the reference of the size checks."""
    return json.loads((tiny_run / "results/demo/stats.json").read_text())


def _scored_predictors(tiny_run: Path) -> list[str]:
    cfg = yaml.safe_load((tiny_run / "config.yaml").read_text())
    runs = [r["name"] for r in cfg["experiments"]["runs"] if r["stage"] != "pretrain"]
    return [f"vslnet_{r}_seed{s}" for r in runs for s in cfg["experiments"]["seeds"]]


def test_end_to_end_outputs(tiny_run: Path) -> None:
    sizes = _tiny_sizes(tiny_run)
    predictors = ["uniform", "prior", *_scored_predictors(tiny_run)]
    metrics = pd.read_parquet(tiny_run / "results/eval/metrics.parquet")
    # one row per predictor, scored split (the tiny world publishes test answers) and mode
    assert len(metrics) == len(predictors) * 2 * 2
    assert sorted(set(metrics["predictor"])) == sorted(predictors)
    assert set(metrics["split"]) == {"val", "test"} and set(metrics["mode"]) == {"official", "strict"}
    assert metrics["error"].isna().all()
    recall = ["R1@0.3", "R1@0.5", "R3@0.3", "R3@0.5", "R5@0.3", "R5@0.5", "MR1", "MR5", "miou"]
    assert (
        metrics[recall].notna().all().all() and metrics[recall].apply(lambda c: c.between(0, 1)).all().all()
    )
    assert (metrics["R5@0.3"] >= metrics["R1@0.3"]).all() and (metrics["R1@0.3"] >= metrics["R1@0.5"]).all()
    for split in ("train", "val", "test"):
        queries = pd.read_parquet(tiny_run / f"results/data/nlq/{split}_queries.parquet")
        assert len(queries) == sizes[f"queries_{split}"]
        for table in (f"data/nlq/{split}_clips", f"features/{split}_clips"):
            assert len(pd.read_parquet(tiny_run / f"results/{table}.parquet")) == sizes[f"clips_{split}"], (
                table
            )
        if split == "train":
            continue
        with_text = int(queries["has_text"].sum())
        rows = metrics[metrics["split"] == split]
        assert (rows["evaluated_y"] == sizes[f"queries_{split}"]).all()  # official: x / all GT queries
        assert (rows["num_results"] == with_text).all() and (rows["evaluated_x"] == with_text).all()
        for predictor in predictors:  # every query with text predicted, 5 windows inside its clip
            preds = json.loads((tiny_run / f"results/predictions/{predictor}/{split}.json").read_text())
            assert preds["version"] == "1.0" and preds["challenge"] == "ego4d_nlq_challenge"
            assert len(preds["results"]) == with_text, (predictor, split)
            assert all(len(r["predicted_times"]) == 5 for r in preds["results"])
            assert all(0 <= s <= e for r in preds["results"] for s, e in r["predicted_times"])
    table = (tiny_run / "results/eval/metrics.md").read_text()
    assert sum(line.startswith("| ") for line in table.splitlines()) == 1 + len(metrics)
    report = json.loads((tiny_run / "results/data/validation_report.json").read_text())
    assert report["quirk_totals"], "the demo world plants quirks; the report must count them"


def test_second_run_has_nothing_to_do(tiny_run: Path) -> None:
    proc = snakemake(tiny_run, "-n")
    assert "Nothing to be done" in proc.stdout + proc.stderr


def test_summary_is_parseable_and_up_to_date(tiny_run: Path) -> None:
    rows = summary(tiny_run)
    pending = [r["output_file"] for r in rows if r["plan"] != "no update"]
    assert not pending, pending
    assert {r["rule"] for r in rows} >= {"demo_world", "evaluate", "metrics_table"}


def test_editing_an_evaluation_param_leaves_only_evaluation_pending(tiny_run: Path, tmp_path: Path) -> None:
    overlay = tmp_path / "overlay.yaml"
    overlay.write_text(yaml.safe_dump({"evaluation": {"thresholds": [0.3, 0.5, 0.7]}}))
    rows = summary(tiny_run, "--configfile", str(tiny_run / "config.yaml"), str(overlay))
    pending = {r["rule"] for r in rows if r["plan"] == "update pending"}
    # and the report pages of the two tables; nothing is trained or predicted again
    assert pending == {"evaluate", "metrics_table", "experiment_table", "report_table"}, pending
    pages = {r["output_file"] for r in rows if r["rule"] == "report_table" and r["plan"] == "update pending"}
    assert pages == {"results/report/metrics.html", "results/report/experiments.html"}, pages
    assert all(r["status"] == "params changed" for r in rows if r["rule"] == "evaluate")


def test_editing_one_runs_hyperparameter_reruns_that_run_and_the_aggregation(
    tiny_run: Path, tmp_path: Path
) -> None:
    cfg = yaml.safe_load((tiny_run / "config.yaml").read_text())
    runs = cfg["experiments"]["runs"]
    edited = next(r for r in runs if r["name"] == "naq_ft")
    edited["train"] = {"lr": 0.0005}
    overlay = tmp_path / "overlay.yaml"
    overlay.write_text(yaml.safe_dump({"experiments": {"runs": runs}}))
    rows = summary(tiny_run, "--configfile", str(tiny_run / "config.yaml"), str(overlay))
    pending = [r for r in rows if r["plan"] == "update pending"]
    assert {r["rule"] for r in pending} == {
        "train_vslnet",
        "predict_vslnet",
        "evaluate",
        "metrics_table",
        "experiment_table",
        "keyframes_vslnet",  # naq_ft is also the tiny config's keyframe scorer
        "moment_hits",
        "report_table",  # the pages of the tables that change
    }
    for r in pending:
        if r["rule"] in ("train_vslnet", "predict_vslnet", "evaluate", "keyframes_vslnet"):
            assert "naq_ft" in r["output_file"], r["output_file"]
    assert any(r["status"] == "params changed" for r in pending if r["rule"] == "train_vslnet")


def test_end_to_end_trains_and_scores_runs(tiny_run: Path) -> None:
    sizes = _tiny_sizes(tiny_run)
    metrics = pd.read_parquet(tiny_run / "results/eval/metrics.parquet")
    table = pd.read_parquet(tiny_run / "results/experiments/table.parquet")
    assert len(table) == len(metrics) and {"scratch", "naq_ft"} <= set(table["run"])
    assert set(table.loc[table["seed"].isna(), "stage"]) == {"baseline"}
    assert (
        table["total"] == table["split"].map({"val": sizes["queries_val"], "test": sizes["queries_test"]})
    ).all()
    assert (
        "naq_ft vs scratch, val R1@0.3 (official)" in (tiny_run / "results/experiments/table.md").read_text()
    )
    cfg = yaml.safe_load((tiny_run / "config.yaml").read_text())
    for run in ("scratch", "naq_pt", "naq_ft"):
        folder = tiny_run / f"results/vslnet/{run}/seed0"
        summary = json.loads((folder / "summary.json").read_text())
        curve = pd.read_csv(folder / "metrics.csv")
        assert summary["completed"] and summary["steps"] == summary["total_steps"] == curve["step"].iloc[-1]
        assert summary["evaluations"] == len(curve) and summary["resumed_from_step"] is None
        assert curve["R1@0.3"].between(0, 1).all() and (curve["evaluated_y"] == sizes["queries_val"]).all()
        assert summary["best"]["R1@0.3"] == pytest.approx(curve.loc[curve["best"], "R1@0.3"].iloc[-1])
    scratch = json.loads((tiny_run / "results/vslnet/scratch/seed0/summary.json").read_text())
    assert scratch["total_steps"] == cfg["vslnet"]["train"]["epochs"] * scratch["batches_per_epoch"]
    assert (tiny_run / "results/experiments/training_curves.png").read_bytes()[:4] == b"\x89PNG"
    ckpt = tiny_run / "results/vslnet/naq_ft/seed0"
    assert json.loads((ckpt / "config.json").read_text())["dim"] == 32
    from egonlq.grounding.vslnet import VSLNet

    model = VSLNet.from_pretrained(ckpt)
    assert model.config.video_dim == 256
    training = pd.read_parquet(tiny_run / "results/queries/training_queries.parquet")
    assert {"nlq", "naq", "template"} == set(training["source"])
    guard = pd.concat(
        pd.read_parquet(tiny_run / f"results/data/nlq/{split}_queries.parquet") for split in ("val", "test")
    )
    assert not set(training["video_uid"]) & set(guard["video_uid"]), "val/test videos leaked into training"


def test_end_to_end_results_record_settings_and_data(tiny_run: Path) -> None:
    """Every training run and the experiment table carry the resolved settings and the data fingerprint."""
    import pyarrow.parquet as pq

    from egonlq.data.provenance import read_schema_provenance

    fingerprint = json.loads((tiny_run / "results/preflight/report.json").read_text())["fingerprint"]
    table = read_schema_provenance(pq.read_schema(tiny_run / "results/experiments/table.parquet"))
    assert table["data_fingerprint"] == fingerprint and {"vslnet", "experiments"} <= set(table["config"])
    assert table["config"]["vslnet"]["model"]["dim"] == 32  # resolved, not "auto"
    for run in ("scratch", "naq_ft"):
        spec = json.loads((tiny_run / f"results/vslnet/{run}/seed0/train_spec.json").read_text())
        record = spec["provenance"]
        assert record["data_fingerprint"] == fingerprint
        assert record["config"]["run"]["seed"] == 0 and record["config"]["features"]["dim"] == 256


def test_end_to_end_keyframes(tiny_run: Path) -> None:
    from egonlq import timegrid
    from egonlq.data.features import cut_clips

    hits = pd.read_parquet(tiny_run / "results/keyframes/moment_hits.parquet")
    assert set(hits["scorer"].dropna()) == {"cosine:demo-visual-code", "vslnet:highlight"}
    assert set(hits["method"]) == {"aks_reference", "aks_improved", "uniform", "topk"}
    assert hits["scorer"].isna().sum() == 1, "uniform reads no score: counted once"
    assert (hits["n_queries"] > 0).all() and hits["query_hit_share"].between(0, 1).all()
    assert (tiny_run / "results/keyframes/moment_hits.png").read_bytes()[:4] == b"\x89PNG"
    for tag in ("encoder_demo", "vslnet_naq_ft_seed0"):
        stats = json.loads((tiny_run / f"results/keyframes/{tag}/stats.json").read_text())
        assert stats["queries_scored"] == stats["queries_eligible"] > 0 and stats["queries_failed"] == 0
        assert any((tiny_run / f"results/keyframes/{tag}/frames").rglob("*.png"))
        assert (tiny_run / f"results/keyframes/{tag}/progress.jsonl").stat().st_size > 0  # kept for resumes
    # the frame features follow the official per-video layout and cut like the official ones
    folder = tiny_run / "results/frames/demo/features"
    manifest = json.loads((folder / "manifest.json").read_text())
    videos = pd.read_parquet(tiny_run / "results/data/videos.parquet").set_index("video_uid")
    for name in manifest["files"]:
        rows = torch.load(folder / name).shape[0]
        assert rows == timegrid.num_features(int(videos.loc[name.removesuffix(".pt"), "num_frames"]))
    clips = pd.read_parquet(tiny_run / "results/data/nlq/val_clips.parquet")
    clips = clips[clips["video_uid"].isin([n.removesuffix(".pt") for n in manifest["files"]])]
    stats = cut_clips(clips, folder, tiny_run / "frame_clips.parquet", expected_dim=109, mode="compatible")
    assert stats["clips_written"] == clips["clip_uid"].nunique() > 0, stats


def test_editing_an_aks_param_reselects_from_stored_scores(tiny_run: Path, tmp_path: Path) -> None:
    overlay = tmp_path / "overlay.yaml"
    overlay.write_text(yaml.safe_dump({"keyframes": {"aks": [{"M": 4, "depth": 2, "t1": 0.5}]}}))
    rows = summary(tiny_run, "--configfile", str(tiny_run / "config.yaml"), str(overlay))
    pending = {r["rule"] for r in rows if r["plan"] == "update pending"}
    # the selections, their table and its page in the report: nothing is scored or trained again
    assert pending == {"keyframes_encoder", "keyframes_vslnet", "moment_hits", "report_table"}, pending


@pytest.fixture(scope="module")
def real_layout(tmp_path_factory) -> Path:
    """A tiny world in the Ego4D CLI layout outside the demo folder: the workflow treats it as real data."""
    from egonlq.demo.world import build_world

    root = tmp_path_factory.mktemp("ego4d_data")
    build_world(root, preset="tiny", seed=0, render_videos=0)
    return root


def _real_config(workdir: Path, root: Path, videos: Path | None = None, **keyframes) -> None:
    cfg = yaml.safe_load((FIXTURES / "tiny" / "config.yaml").read_text())
    cfg["data"] = {"root": str(root), "features": {"name": "demo_features", "dim": 256}}
    if videos is not None:
        cfg["data"]["videos"] = str(videos)
    cfg["keyframes"] = {**cfg["keyframes"], **keyframes}
    (workdir / "config.yaml").write_text(yaml.safe_dump(cfg))


def test_real_data_plans_test_predictions_with_reference_settings(real_layout: Path, tmp_path: Path) -> None:
    """Without test answers every scored run still writes its test challenge file; "auto" model and training
    settings are the reference's; each run predicts in its own label mode; jobs exec the CLI."""
    from egonlq.grounding.presets import REFERENCE

    _real_config(tmp_path, real_layout)
    cfg = yaml.safe_load((tmp_path / "config.yaml").read_text())
    del cfg["vslnet"]  # every size and training setting "auto"
    cfg["experiments"]["runs"].append({"name": "corr", "stage": "scratch", "label_mode": "corrected"})
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg))
    proc = snakemake(tmp_path, "-n", "-p")
    out = proc.stdout + proc.stderr
    counts = job_counts(proc.stdout)
    assert counts["predict_vslnet"] == 3 * 2 and counts["evaluate"] == (2 + 3) * 1  # val and test; val scored
    for run in ("scratch", "naq_ft", "corr"):
        assert f"results/predictions/vslnet_{run}_seed0/test.json" in proc.stdout
    # the resolved values are logged and reach the commands
    resolved = {**REFERENCE["model"], **REFERENCE["train"]}
    logged = re.search(r"vslnet settings \(auto -> reference\): (.*)", out).group(1)
    assert logged == ", ".join(
        f"{part}.{k}={v}" for part in ("model", "train") for k, v in REFERENCE[part].items()
    )
    assert resolved["dim"] == resolved["max_pos_len"] == 128 and resolved["epochs"] == 200
    scratch = next(line for line in proc.stdout.splitlines() if "--out-dir results/vslnet/scratch/" in line)
    spec = json.loads(re.search(r"--spec '(\{.*?\})'", scratch).group(1))
    assert {k: spec["model"][k] for k in REFERENCE["model"]} == REFERENCE["model"]
    assert {k: spec[k] for k in ("epochs", "batch_size", "lr", "eval_per_epoch")} == {
        "epochs": 200,
        "batch_size": 32,
        "lr": 1e-4,
        "eval_per_epoch": 2,
    }
    assert "--max-len 128 " in proc.stdout
    predicts = [line for line in proc.stdout.splitlines() if " predict --model-dir" in line]
    modes = {
        re.search(r"vslnet_(\w+)_seed0/", p).group(1): re.search(r"--label-mode (\w+)", p).group(1)
        for p in predicts
    }
    assert modes == {"scratch": "compatible", "naq_ft": "compatible", "corr": "corrected"}
    # every job execs Python (signals reach it), with values quoted for the shell
    lines = [line.strip().removeprefix("Shell command: ") for line in proc.stdout.splitlines()]
    commands = [line for line in lines if "-m egonlq.cli " in line]
    assert len(commands) >= 20
    assert all(re.match(r"exec python -m (egonlq\.cli|torch\.distributed\.run) ", c) for c in commands)


def test_paths_and_options_with_quotes_and_spaces_reach_the_commands_intact(
    real_layout: Path, tmp_path: Path
) -> None:
    """A data root and a prompt file whose paths hold an apostrophe, brackets and spaces: every shell line
    still parses, and the ingest and generation jobs run on them."""
    import shlex

    root = tmp_path / "Ego4D data's root"
    root.symlink_to(real_layout, target_is_directory=True)
    work = tmp_path / "work"
    work.mkdir()
    _real_config(work, root)
    prompt = tmp_path / "the team's prompt (v1).txt"
    prompt.write_text((REPO / "src/egonlq/queries/prompts/nlq_questions_v1.txt").read_text())
    cfg = yaml.safe_load((work / "config.yaml").read_text())
    cfg["queries"] = {"generation": {"prompt": str(prompt)}}
    (work / "config.yaml").write_text(yaml.safe_dump(cfg))
    proc = snakemake(work, "-n", "-p")
    lines = [line.strip() for line in proc.stdout.splitlines() if "-m egonlq.cli " in line]
    assert len(lines) >= 20
    parsed = [shlex.split(line) for line in lines]  # an unbalanced quote would raise here
    assert any(str(root / "ego4d.json") in args for args in parsed)
    generate = next(args for args in parsed if "generate-queries" in args)
    assert generate[generate.index("--prompt") + 1] == str(prompt)
    shard = "results/queries/template/shards/shard0.parquet"
    snakemake(work, "results/data/videos.parquet", shard, "--cores", "2")
    assert (work / "results" / "data" / "videos.parquet").is_file() and (work / shard).is_file()


def test_real_data_without_videos_plans_no_keyframes(real_layout: Path, tmp_path: Path) -> None:
    _real_config(tmp_path, real_layout)
    proc = snakemake(tmp_path, "-n")
    counts = job_counts(proc.stdout)
    assert counts["train_vslnet"] == 3 and counts["clip_features"] == 3
    assert not {"frame_features", "keyframes_encoder", "moment_hits"} & set(counts)
    assert "keyframes (enabled: auto) are off" in proc.stdout + proc.stderr
    _real_config(tmp_path, real_layout, enabled=True)  # asked for explicitly: an error naming the folder
    proc = snakemake(tmp_path, "-n", check=False)
    assert proc.returncode != 0 and "data.videos" in proc.stdout + proc.stderr


def test_real_data_with_videos_needs_a_clip_model(real_layout: Path, tmp_path: Path) -> None:
    from egonlq.video.frame_encoders import write_tiny_random_clip

    videos = tmp_path / "full_scale"
    videos.mkdir()
    _real_config(tmp_path, real_layout, videos)  # encoder auto = clip for real videos, and no clip_model
    assert "frame_features" not in job_counts(snakemake(tmp_path, "-n").stdout)
    clip = write_tiny_random_clip(tmp_path / "clip-vit-tiny")
    _real_config(tmp_path, real_layout, videos, clip_model=str(clip))
    proc = snakemake(tmp_path, "-n", "-p")
    counts = job_counts(proc.stdout)
    assert counts["frame_features"] == counts["keyframes_encoder"] == counts["moment_hits"] == 1
    assert "--encoder clip --model-path" in proc.stdout and "results/frames/clip_clip-vit-tiny" in proc.stdout


def test_keyframe_scorer_must_be_an_experiment_run(tmp_path: Path) -> None:
    cfg = yaml.safe_load((FIXTURES / "tiny" / "config.yaml").read_text())
    cfg["keyframes"]["vslnet_scorers"] = ["no_such_run"]
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg))
    proc = snakemake(tmp_path, "-n", check=False)
    assert proc.returncode != 0 and "no_such_run" in proc.stdout + proc.stderr


def test_auto_feature_dim_comes_from_the_sidecar_or_the_known_sets(real_layout: Path, tmp_path: Path) -> None:
    """`dim: auto` reads the set's own feature_set.json (the tiny world writes one for demo_features), then
    the package's table of known sets; a set neither describes stops the parse, naming its sidecar."""
    _real_config(tmp_path, real_layout)
    cfg = yaml.safe_load((tmp_path / "config.yaml").read_text())
    cfg["data"]["features"]["dim"] = "auto"
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg))
    proc = snakemake(tmp_path, "-n", "-p")
    assert "--video-dim 256" in proc.stdout
    cfg["data"]["features"]["name"] = "mystery_features"
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg))
    proc = snakemake(tmp_path, "-n", check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "data.features.dim is 'auto'" in out
    assert str(real_layout / "v1" / "mystery_features" / "feature_set.json") in out
