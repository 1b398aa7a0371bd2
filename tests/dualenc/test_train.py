"""Training: it learns, resumes after kill -9 with the weights of an uninterrupted run, and refuses bad inputs
(missing or wrong-dim features, an empty pair set, a model folder that is not an encoder) before any work."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from safetensors.torch import load_file

from egonlq.data.features import save_video_features
from egonlq.dualenc.model import DualEncoder
from egonlq.dualenc.pairs import PAIRS
from egonlq.dualenc.text import PooledTextEncoder, build_pooled_cache
from egonlq.dualenc.train import DualEncoderSpec, train
from egonlq.errors import InputError
from egonlq.grounding.text_encoder import default_model_path
from egonlq.io import write_parquet
from egonlq.queries.llm_backends import write_tiny_random_lm
from tests.conftest import REPO

DIM = 6
WORDS = ["knife", "cup", "bread", "fridge", "door", "plate"]


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3 videos whose feature rows carry a word's direction; 60 pairs 'the camera wearer takes the <word>'."""
    root = tmp_path_factory.mktemp("dualenc")
    rng = np.random.default_rng(0)
    rows = {name: [] for name in PAIRS.names}
    for v in range(3):
        words = rng.integers(0, len(WORDS), size=20)
        feats = rng.normal(0, 0.3, size=(20 * 4, DIM)).astype(np.float32)
        for i, w in enumerate(words):
            feats[4 * i : 4 * i + 4, w] += 3.0
            t = 4 * i / 1.875
            values = dict(
                item_uid=f"v{v}:{i}",
                video_uid=f"v{v}",
                window_start_sec=t,
                window_end_sec=t + 1.0,
                text=f"The camera wearer takes the {WORDS[w]}",
                source="narration",
                role="train",
                gt_rank=float(rng.random()),
                timestamp_sec=t + 0.5,
            )
            for k, val in values.items():
                rows[k].append(val)
        save_video_features(feats, root / "features" / f"v{v}.pt")
    write_parquet(pa.table(rows, schema=PAIRS), root / "pairs.parquet", PAIRS)
    encoder = PooledTextEncoder(default_model_path())
    build_pooled_cache(rows["text"], encoder, root / "text.safetensors")
    return root


def _spec(**kw: object) -> DualEncoderSpec:
    base = {
        "steps": 40,
        "batch_size": 16,
        "lr": 3e-3,
        "save_every": 5,
        "seed": 1,
        "model": {"video_dim": DIM, "text_dim": 384, "width": 16, "heads": 2, "max_rows": 4, "dropout": 0.1},
    }
    return DualEncoderSpec.from_dict({**base, **kw})


def _train(data: Path, out: Path, spec: DualEncoderSpec, **kw: object) -> dict:
    return train(
        spec,
        pairs_path=data / "pairs.parquet",
        text_cache=data / "text.safetensors",
        text_model=default_model_path(),
        feature_dir=data / "features",
        out_dir=out,
        progress=False,
        **kw,
    )


def test_training_lowers_the_loss_and_saves_a_plain_checkpoint(data: Path, tmp_path: Path) -> None:
    summary = _train(data, tmp_path / "run", _spec(steps=60))
    history = (tmp_path / "run" / "metrics.csv").read_text().splitlines()
    first, last = float(history[1].split(",")[2]), float(history[-1].split(",")[2])
    assert summary["completed"] and last < 0.7 * first
    state = load_file(str(tmp_path / "run" / "model.safetensors"))  # plain safetensors
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["embed_dim"] == 256 and state["text_proj.weight"].shape == (256, 384)
    model = DualEncoder.from_pretrained(tmp_path / "run")
    assert float(model.scale()) == pytest.approx(1 / 0.07, rel=1e-6)  # fixed temperature


def test_resume_after_kill_9_gives_the_weights_of_an_uninterrupted_run(data: Path, tmp_path: Path) -> None:
    spec = _spec(steps=400, save_every=5)
    spec_json = json.dumps(
        {k: v for k, v in spec.to_dict().items() if k != "model"}
        | {"model": {k: spec.to_dict()["model"][k] for k in ("width", "heads", "max_rows", "dropout")}}
    )
    cmd = [
        sys.executable,
        "-m",
        "egonlq.cli",
        "dualenc-train",
        "--spec",
        spec_json,
        "--pairs",
        str(data / "pairs.parquet"),
        "--text-cache",
        str(data / "text.safetensors"),
        "--feature-dir",
        str(data / "features"),
        "--video-dim",
        str(DIM),
        "--threads",
        "1",
        "--out-dir",
        str(tmp_path / "run"),
    ]
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    reference = [*cmd[:-1], str(tmp_path / "reference")]  # the same command, uninterrupted
    assert subprocess.run(reference, env=env, capture_output=True, timeout=300).returncode == 0
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    last = tmp_path / "run" / "last.pt"
    deadline = time.time() + 120
    while not last.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert last.exists() and not (tmp_path / "run" / "summary.json").exists(), "killed before the end"
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["resumed_from_step"] is not None and 0 < summary["resumed_from_step"] < 400
    ours, reference = (
        load_file(str(tmp_path / "run" / "model.safetensors")),
        load_file(str(tmp_path / "reference" / "model.safetensors")),
    )
    assert ours.keys() == reference.keys()
    for name in ours:
        assert np.array_equal(ours[name].numpy(), reference[name].numpy()), name


def test_missing_feature_file_fails_before_training(data: Path, tmp_path: Path) -> None:
    features = tmp_path / "features"
    features.mkdir()
    for v in ("v0", "v1"):
        (features / f"{v}.pt").write_bytes((data / "features" / f"{v}.pt").read_bytes())
    with pytest.raises(InputError, match=r"v2\.pt.*1 of 3 videos have no feature file.*video_uid=v2"):
        train(
            _spec(),
            pairs_path=data / "pairs.parquet",
            text_cache=data / "text.safetensors",
            text_model=default_model_path(),
            feature_dir=features,
            out_dir=tmp_path / "run",
            progress=False,
        )
    assert not (tmp_path / "run" / "last.pt").exists()


def test_wrong_feature_dim_fails_before_training(data: Path, tmp_path: Path) -> None:
    spec = _spec(model={"video_dim": DIM + 1, "text_dim": 384, "width": 16, "heads": 2})
    with pytest.raises(InputError, match=r"feature dim is 6, expected 7.*video_uid=v0"):
        _train(data, tmp_path / "run", spec)
    assert not (tmp_path / "run" / "last.pt").exists()


def test_empty_pair_set_fails_before_training(data: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"pairs\.parquet.*no train pair for sources \['template'\]"):
        _train(data, tmp_path / "run", _spec(sources=["template"]))
    assert not (tmp_path / "run").exists()


def test_a_folder_that_is_not_an_encoder_is_refused(tmp_path: Path) -> None:
    lm = write_tiny_random_lm(tmp_path / "llama")
    with pytest.raises(InputError, match=r"config\.json.*is not a text encoder.*model_type"):
        PooledTextEncoder(lm)
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no config.json"):
        PooledTextEncoder(tmp_path / "empty")
