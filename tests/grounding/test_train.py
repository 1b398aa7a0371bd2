"""Training VSLNet on a tiny learnable world: determinism, exact resume, checkpoints, errors, predictions."""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import torch
from safetensors.torch import load_file

import egonlq
from egonlq.data.tables import QUERIES
from egonlq.errors import InputError
from egonlq.evaluation.baselines import uniform_windows
from egonlq.evaluation.metric import evaluate, load_ground_truth
from egonlq.evaluation.predictions import validate_predictions
from egonlq.grounding import train_state
from egonlq.grounding.predict import predict_split
from egonlq.grounding.train import linear_schedule, param_groups, train
from egonlq.grounding.train_spec import TrainSpec
from egonlq.grounding.vslnet import VSLNet, VSLNetConfig
from egonlq.io import write_parquet
from tests.grounding.test_nlq_dataset import Query, World, build_world

TINY = VSLNetConfig(
    video_dim=8, text_dim=12, dim=16, num_heads=2, dropout=0.1, max_pos_len=16, num_conv_layers=1
)
SPEC = TrainSpec(
    stage="pretrain",
    sources=("naq",),
    joint_nlq=True,
    epochs=10,
    batch_size=8,
    lr=2e-3,
    warmup_proportion=0.1,
    jitter_factor=2.5,
    model=TINY,
    seed=3,
    eval_per_epoch=1,
)
PROVENANCE = {
    "config": {"vslnet": {"label_mode": "compatible"}},
    "config_sha256": "1" * 64,
    "data_fingerprint": "2" * 64,
}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> World:
    """16 clips of 40 s, one NLQ query each (the window is marked in the features), 8 NaQ queries."""
    rng = np.random.default_rng(0)
    queries = []
    for c in range(16):
        start = float(rng.uniform(0, 28))
        queries.append(Query(c, c % 4, round(start, 2), round(start + rng.uniform(6, 12), 2)))
    for c in range(8):
        start = float(rng.uniform(0, 30))
        queries.append(Query(c, (c + 1) % 4, round(start, 2), round(start + 4, 2), source="naq"))
    return build_world(tmp_path_factory.mktemp("train_world"), [40.0] * 16, queries)


@pytest.fixture(scope="module")
def run_a(world, tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("run_a")
    return out, train(SPEC, **world.paths(), out_dir=out, progress=False, provenance=PROVENANCE)


def metric_values(out: Path) -> pd.DataFrame:
    return pd.read_csv(out / "metrics.csv").drop(columns="seconds")


def final_weights(out: Path) -> dict[str, torch.Tensor]:
    return torch.load(out / "last.pt", weights_only=True)["model"]


def assert_same_run(a: Path, b: Path) -> None:
    pd.testing.assert_frame_equal(metric_values(a), metric_values(b), check_exact=True)
    for weights in (lambda p: load_file(p / "model.safetensors"), final_weights):
        wa, wb = weights(a), weights(b)
        assert wa.keys() == wb.keys()
        for name in wa:
            assert torch.equal(wa[name], wb[name]), name
    assert (a / "best_val_predictions.json").read_bytes() == (b / "best_val_predictions.json").read_bytes()


def test_outputs_and_learning(world, run_a):
    out, summary = run_a
    assert summary["completed"] and summary["steps"] == summary["total_steps"] == 30
    assert (
        summary["batches_per_epoch"] == 3 and summary["evaluations"] == 10 and summary["train_queries"] == 24
    )
    metrics = pd.read_csv(out / "metrics.csv")
    assert metrics["step"].tolist() == list(range(3, 31, 3)) and metrics["epoch"].tolist() == list(range(10))
    assert {"loss", "loss_span", "loss_highlight", "lr", "R1@0.3", "R5@0.01", "miou", "evaluated_x"} <= set(
        metrics.columns
    )
    assert (metrics["evaluated_x"] == 16).all() and (metrics["evaluated_y"] == 16).all()
    # best: the LAST evaluation with the highest R1@0.3 (ties move forward)
    top = metrics["R1@0.3"].max()
    assert summary["best_step"] == metrics.loc[metrics["R1@0.3"] == top, "step"].max()
    assert summary["best"]["R1@0.3"] == pytest.approx(top)
    assert metrics["loss"].iloc[-1] < metrics["loss"].iloc[0]
    # the best checkpoint loads anywhere and gives the saved predictions
    model = VSLNet.from_pretrained(out)
    assert model.config == TINY
    assert validate_predictions(out / "best_val_predictions.json", gt=load_ground_truth(world.gt)) == []
    provenance = json.loads((out / "train_spec.json").read_text())
    assert provenance["spec"] == SPEC.to_dict() and provenance["label_mode"] == "compatible"
    assert provenance["provenance"] == PROVENANCE  # the resolved config and the data fingerprint
    assert (
        provenance["text_encoder"]["source"] == "cache"
        and len(provenance["text_encoder"]["fingerprint"]) == 64
    )
    # a trivially learnable problem: far better than uniform windows on its own data
    gt = load_ground_truth(world.gt)
    uniform = {
        "version": "1.0",
        "challenge": "ego4d_nlq_challenge",
        "results": [
            {
                "clip_uid": a.clip_uid,
                "annotation_uid": a.annotation_uid,
                "query_idx": i,
                "predicted_times": uniform_windows(40.0),
            }
            for a in gt.annotations
            for i in range(len(a.queries))
        ],
    }
    chance = evaluate(gt, uniform).recall[(0.3, 1)]
    assert top >= chance + 0.3, (top, chance)


def test_same_seed_same_run(world, run_a, tmp_path):
    again = train(SPEC, **world.paths(), out_dir=tmp_path, progress=False)
    assert_same_run(run_a[0], tmp_path)
    assert again["best"] == run_a[1]["best"]


def test_interrupted_and_resumed_equals_uninterrupted(world, run_a, tmp_path):
    stopped = train(SPEC, **world.paths(), out_dir=tmp_path, progress=False, stop_after_steps=8)
    assert stopped == {"completed": False, "steps": 8, "total_steps": 30}
    assert pd.read_csv(tmp_path / "metrics.csv")["step"].tolist() == [3, 6]  # step 7 and 8 are lost
    assert not (tmp_path / "summary.json").exists()
    resumed = train(SPEC, **world.paths(), out_dir=tmp_path, progress=False)
    assert resumed["resumed_from_step"] == 6 and resumed["best"] == run_a[1]["best"]
    assert_same_run(run_a[0], tmp_path)
    # a finished run resumes to its end at once
    assert train(SPEC, **world.paths(), out_dir=tmp_path, progress=False)["resumed_from_step"] == 30


def test_encoder_text_runs_are_reproducible_and_resume_exactly(world, tmp_path):
    """The encoder path keeps each text's embeddings in memory, which a resumed run starts without."""
    spec = replace(SPEC, text="encoder", epochs=3)
    paths = world.paths() | {"text_cache": None}
    whole = train(spec, **paths, out_dir=tmp_path / "whole", progress=False)
    train(spec, **paths, out_dir=tmp_path / "again", progress=False)
    assert_same_run(tmp_path / "whole", tmp_path / "again")
    assert train(spec, **paths, out_dir=tmp_path / "cut", progress=False, stop_after_steps=5)["steps"] == 5
    resumed = train(spec, **paths, out_dir=tmp_path / "cut", progress=False)
    assert resumed["resumed_from_step"] == 3 and resumed["best"] == whole["best"]
    assert_same_run(tmp_path / "whole", tmp_path / "cut")


def test_deterministic_sets_and_restores_torch_flags_without_importing_the_compiler():
    """The flags are set (without the NaN fill of new tensors) and restored, and no compiler import."""
    import subprocess
    import sys

    code = (
        "import sys, torch, torch.utils.deterministic\n"
        "from egonlq.grounding.train import deterministic\n"
        "with deterministic(torch.device('cpu')):\n"
        "    assert torch.are_deterministic_algorithms_enabled()\n"
        "    assert torch.is_deterministic_algorithms_warn_only_enabled()\n"
        "    assert not torch.utils.deterministic.fill_uninitialized_memory, 'NaN fill of new tensors'\n"
        "assert not torch.are_deterministic_algorithms_enabled()\n"
        "assert torch.utils.deterministic.fill_uninitialized_memory, 'not restored'\n"
        "assert 'torch._inductor' not in sys.modules, 'the compiler was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_bf16_autocast_runs_are_reproducible_and_keep_fp32_weights(world, tmp_path):
    """precision bf16: the steps under bfloat16 autocast, reproducible and resumable; weights stay fp32."""
    spec = replace(SPEC, precision="bf16", epochs=3)
    whole = train(spec, **world.paths(), out_dir=tmp_path / "whole", progress=False)
    fp32 = train(replace(spec, precision="fp32"), **world.paths(), out_dir=tmp_path / "fp32", progress=False)
    assert whole["completed"] and whole["best"] is not None
    weights = load_file(tmp_path / "whole" / "model.safetensors")
    assert all(w.dtype == torch.float32 for w in weights.values())
    other = load_file(tmp_path / "fp32" / "model.safetensors")
    assert any(not torch.equal(weights[k], other[k]) for k in weights)  # autocast did change the steps
    assert fp32["completed"]
    train(spec, **world.paths(), out_dir=tmp_path / "cut", progress=False, stop_after_steps=4)
    resumed = train(spec, **world.paths(), out_dir=tmp_path / "cut", progress=False)
    assert resumed["resumed_from_step"] is not None and resumed["best"] == whole["best"]
    assert_same_run(tmp_path / "whole", tmp_path / "cut")
    with pytest.raises(ValueError, match="precision 'fp16' is not one of"):
        replace(SPEC, precision="fp16")


def test_stale_state_is_never_resumed(world, tmp_path, caplog, monkeypatch):
    spec = replace(SPEC, epochs=2)
    fresh = train(replace(spec, lr=1e-3), **world.paths(), out_dir=tmp_path / "fresh", progress=False)

    def rerun(why: str, **changes) -> dict:
        caplog.clear()
        with caplog.at_level("WARNING"):
            summary = train(
                replace(spec, **changes), **world.paths(), out_dir=tmp_path / "run", progress=False
            )
        assert re.search(f"not resuming .*last.pt: .*{why}.*; starting over", caplog.text), caplog.text
        assert summary["completed"] and summary["resumed_from_step"] is None
        return summary

    train(spec, **world.paths(), out_dir=tmp_path / "run", progress=False, stop_after_steps=4)
    # another spec: starts over and ends like a fresh run of the new spec
    assert rerun(r"another spec \(lr: saved 0.002, now 0.001\)", lr=1e-3)["best"] == fresh["best"]
    assert_same_run(tmp_path / "fresh", tmp_path / "run")
    # a regenerated input (same bytes, new file), edited training code, an unreadable file
    features = world.paths()["train_features"]
    os.utime(features, ns=(features.stat().st_atime_ns, features.stat().st_mtime_ns + 10**9))
    rerun("the input files changed", lr=1e-3)
    monkeypatch.setattr(train_state, "code_digest", lambda: "edited")
    rerun("the training code changed", lr=1e-3)
    (tmp_path / "run" / "last.pt").write_bytes(b"garbage")
    rerun("unreadable training state", lr=1e-3)
    # restart=True ignores even a matching state
    summary = train(
        replace(spec, lr=1e-3), **world.paths(), out_dir=tmp_path / "run", progress=False, restart=True
    )
    assert summary["resumed_from_step"] is None


def test_resume_writes_the_outputs_a_rerun_deleted(world, run_a, tmp_path):
    """The workflow deletes a job's outputs before rerunning it: killed after its last evaluation, a run
    resumes with nothing left to train, and its outputs can only come back from last.pt."""
    stopped = train(SPEC, **world.paths(), out_dir=tmp_path, progress=False, stop_after_steps=30)
    assert stopped["completed"] is False and not (tmp_path / "summary.json").exists()
    for name in ("model.safetensors", "config.json", "metrics.csv"):
        (tmp_path / name).unlink()
    resumed = train(SPEC, **world.paths(), out_dir=tmp_path, progress=False)
    assert resumed["resumed_from_step"] == 30 and resumed["best"] == run_a[1]["best"]
    assert_same_run(run_a[0], tmp_path)


def test_killed_mid_run_resumes_to_the_same_end(world, run_a, tmp_path):
    """kill -9 of the training command: the next call continues from the last saved step (and says so)
    and ends with the weights and metrics of an uninterrupted run."""
    spec = SPEC.to_dict()
    spec["model"] = {k: v for k, v in spec["model"].items() if k not in ("video_dim", "text_dim")}
    paths = world.paths()
    cmd = [sys.executable, "-m", "egonlq.cli", "train", "--spec", json.dumps(spec), "--video-dim", "8"]
    for name, path in paths.items():
        cmd += [f"--{name.replace('_', '-')}", str(path)]
    cmd += ["--threads", "1", "--device", "cpu", "--out-dir", str(tmp_path)]
    env = dict(os.environ, PYTHONPATH=str(Path(egonlq.__file__).parents[1]))
    killed = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while not (tmp_path / "last.pt").exists() and killed.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    killed.send_signal(signal.SIGKILL)
    assert killed.wait() == -signal.SIGKILL, "the run ended before it could be killed"
    saved_step = torch.load(tmp_path / "last.pt", weights_only=True)["progress"]["step"]
    assert 0 < saved_step < 30 and not (tmp_path / "summary.json").exists()

    resumed = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"resuming {tmp_path / 'last.pt'} at step {saved_step} " in resumed.stderr
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["resumed_from_step"] == saved_step and summary["best"] == run_a[1]["best"]
    assert_same_run(run_a[0], tmp_path)


def test_a_source_matching_nothing_is_refused(world, tmp_path):
    with pytest.raises(
        InputError, match=r"source 'llm:\*' of the spec matches no training query.*'naq': 8, 'nlq': 16"
    ):
        train(replace(SPEC, sources=("naq", "llm:*")), **world.paths(), out_dir=tmp_path, progress=False)
    assert not (tmp_path / "last.pt").exists()


def test_finetune_from_checkpoint(world, run_a, tmp_path):
    spec = TrainSpec(stage="finetune", epochs=1, batch_size=8, lr=1e-4, model=TINY, seed=3)
    summary = train(spec, **world.paths(), out_dir=tmp_path / "ft", init_from=run_a[0], progress=False)
    assert summary["train_queries"] == 16 and summary["steps"] == 2  # NLQ only
    # weights start from the checkpoint: the fine-tuned model is close to it, unlike a fresh one
    start, tuned = load_file(run_a[0] / "model.safetensors"), load_file(tmp_path / "ft" / "model.safetensors")
    fresh = VSLNet(TINY).state_dict()
    name = "video_projection.linear.weight"
    assert (tuned[name] - start[name]).abs().max() < 0.01 < (fresh[name] - start[name]).abs().max()
    with pytest.raises(InputError, match="needs init_from"):
        train(spec, **world.paths(), out_dir=tmp_path / "x", progress=False)
    with pytest.raises(InputError, match="only for 'finetune'"):
        train(SPEC, **world.paths(), out_dir=tmp_path / "x", init_from=run_a[0], progress=False)
    with pytest.raises(InputError, match="another model config: dim=16"):
        train(
            replace(spec, model=replace(TINY, dim=32)),
            **world.paths(),
            out_dir=tmp_path / "x",
            init_from=run_a[0],
            progress=False,
        )
    broken = tmp_path / "broken"
    shutil.copytree(run_a[0], broken)
    (broken / "model.safetensors").write_bytes(b"\x00" * 100)
    with pytest.raises(InputError, match="model.safetensors.*not a readable safetensors"):
        train(spec, **world.paths(), out_dir=tmp_path / "x", init_from=broken, progress=False)


def test_bad_inputs_fail_before_training(world, tmp_path):
    with pytest.raises(InputError, match="features have dim 8.*field 'dim'.*expected 10"):
        train(
            replace(SPEC, model=replace(TINY, video_dim=10)),
            **world.paths(),
            out_dir=tmp_path,
            progress=False,
        )
    with pytest.raises(InputError, match="text embeddings have size 12.*expected 384"):
        train(
            replace(SPEC, model=replace(TINY, text_dim=384)),
            **world.paths(),
            out_dir=tmp_path,
            progress=False,
        )
    with pytest.raises(InputError, match="no training query left"):
        train(
            replace(SPEC, sources=("llm:*",), joint_nlq=False),
            **world.paths(),
            out_dir=tmp_path,
            progress=False,
        )
    assert not (tmp_path / "last.pt").exists()


def test_spec_validation_and_round_trip():
    assert TrainSpec.from_dict(json.loads(json.dumps(SPEC.to_dict()))) == SPEC
    for bad, match in [
        (dict(stage="stage3"), "stage"),
        (dict(sources=("nlq",)), "joint_nlq"),
        (dict(joint_nlq=False), "no training data"),
        (dict(jitter_factor=1.0), "jitter_factor"),
        (dict(stage="finetune", jitter_factor=2.5), "without jittering"),
        (dict(remove_empty_queries_from=("test",)), "remove_empty"),
        (dict(nlq_fraction=1.5), "nlq_fraction"),
    ]:
        with pytest.raises(ValueError, match=match):
            TrainSpec(**bad)
    with pytest.raises(ValueError, match="unknown TrainSpec keys"):
        TrainSpec.from_dict({"epochs": 1, "learning_rate": 1})


def test_optimizer_groups_and_schedule():
    model = VSLNet(TINY)
    decay, plain = param_groups(model, 0.01)
    names = {id(p): n for n, p in model.named_parameters()}
    plain_names = {names[id(p)] for p in plain["params"]}
    assert plain["weight_decay"] == 0.0 and decay["weight_decay"] == 0.01
    assert "encoder.convs.0.norm.weight" in plain_names and "predictor.start_norm.bias" in plain_names
    assert all(n.endswith("bias") or "norm" in n for n in plain_names)
    assert {names[id(p)] for p in decay["params"]} >= {"encoder.position.weight", "cq_attention.w_c"}
    assert len(decay["params"]) + len(plain["params"]) == len(list(model.parameters()))
    f = linear_schedule(2, 10)
    assert [f(s) for s in (0, 1, 2, 6, 10, 11)] == [0.0, 0.5, 1.0, 0.5, 0.0, 0.0]
    assert linear_schedule(0, 4)(0) == 1.0


def test_predict_split_any_split(world, run_a, tmp_path):
    gt = load_ground_truth(world.gt)
    stats = predict_split(
        run_a[0],
        queries=world.val_queries,
        clips=world.val_clips,
        features=world.features,
        text_cache=world.text_cache,
        text_model=world.text_model,
        out_path=tmp_path / "val.json",
        label_mode="compatible",
        batch_size=8,
        progress=False,
    )
    assert stats["predicted"] == 16 and validate_predictions(tmp_path / "val.json", gt=gt) == []
    # the same code as the training's evaluation: the best checkpoint's predictions come back
    assert (tmp_path / "val.json").read_bytes() == (run_a[0] / "best_val_predictions.json").read_bytes()
    stats = predict_split(
        run_a[0],
        queries=world.test_queries,
        clips=world.val_clips,
        features=world.features,
        text_cache=None,
        text_model=world.text_model,
        out_path=tmp_path / "test.json",
        label_mode="compatible",
        progress=False,
    )
    obj = json.loads((tmp_path / "test.json").read_text())
    with pytest.raises(InputError, match="trained with label_mode 'compatible'"):
        predict_split(
            run_a[0],
            queries=world.test_queries,
            clips=world.val_clips,
            features=world.features,
            text_cache=None,
            text_model=world.text_model,
            out_path=tmp_path / "x.json",
            label_mode="corrected",
            progress=False,
        )
    assert stats["predicted"] == 16 and stats["text"] == "encoder" and validate_predictions(obj) == []
    for result in obj["results"]:
        assert len(result["predicted_times"]) == 5
        assert all(
            0 <= s < e <= 40.0 and math.isclose(s / 2.5, round(s / 2.5), abs_tol=1e-4)
            for s, e in result["predicted_times"]
        )


def test_empty_val_gives_nan_and_the_last_checkpoint(world, tmp_path):
    empty = tmp_path / "no_val.parquet"
    write_parquet(pa.Table.from_pylist([], schema=QUERIES), empty)
    paths = world.paths() | {"val_queries": empty}
    summary = train(replace(SPEC, epochs=2), **paths, out_dir=tmp_path / "run", progress=False)
    metrics = pd.read_csv(tmp_path / "run" / "metrics.csv")
    assert metrics["R1@0.3"].isna().all() and metrics["best"].all()  # NaN ties with NaN: moves forward
    assert summary["best_step"] == 6 and summary["best"]["R1@0.3"] is None and summary["val_queries"] == 0
    assert json.loads((tmp_path / "run" / "best_val_predictions.json").read_text())["results"] == []
