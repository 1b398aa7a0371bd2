"""Decoding a split end to end on planted features: every decoder's predictions and metrics files (DFS
marked not run past its step limit), the DP scoring perfectly, the example matrix, and the Goal-Step test
challenge file (its header, 5 windows per query)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import torch

from egonlq.evaluation.metric import read_metrics
from egonlq.steps.evaluate import GOALSTEP_CHALLENGE, evaluate_model
from egonlq.steps.goalstep import to_nlq_json
from egonlq.steps.zeroshot import DecodeParams

RATE = 1.0  # one feature row per second
TEXTS = ["cut onion", "wash pan", "stir soup"]


class _Model:
    """Masked mean of the rows, unit length: the planted feature direction of a chunk."""

    config = SimpleNamespace(max_rows=8)

    def encode_video(self, rows: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        mean = (rows * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
        return torch.nn.functional.normalize(mean, dim=-1)


class _Embedder:
    model = _Model()

    def text(self, texts: list[str], *, where: object = None) -> torch.Tensor:
        return torch.eye(4)[[TEXTS.index(t) for t in texts]]


def _entry(uid: str, spans: list[tuple[int, int, int]]) -> dict:
    steps = [{"start_time": float(s), "end_time": float(e), "step_description": TEXTS[t], "segments": []}
             for s, e, t in spans]  # fmt: skip
    return {"video_uid": uid, "start_time": 0.0, "end_time": 30.0, "segments": steps}


def _features(spans: list[tuple[int, int, int]]) -> np.ndarray:
    rows = np.tile(np.eye(4)[3] * 0.5, (30, 1)).astype(np.float32)  # background: its own direction
    for s, e, t in spans:
        rows[s:e] = np.eye(4)[t]
    return rows


def test_decoding_a_split(tmp_path: Path) -> None:
    spans = {"v1": [(2, 8, 0), (12, 16, 1), (20, 26, 2)], "v2": [(4, 10, 1), (14, 18, 0)]}
    entries = [_entry(uid, s) for uid, s in spans.items()]
    gt = tmp_path / "valid_gt.json"
    gt.write_text(json.dumps(to_nlq_json(entries, "valid")))
    from egonlq.steps.goalstep import to_queries

    valid = pd.DataFrame(to_queries(entries))
    test = pd.DataFrame({"video_uid": ["v1", "v1"], "annotation_uid": ["v1", "v1"], "query_idx": [0, 1],
                         "query": ["cut onion", "stir soup"], "segment_count": [1, 1]})  # fmt: skip
    params = DecodeParams(chunk_sec=2.0, lam_percentile=50, dfs_max_steps=2)
    stats = evaluate_model(
        _Embedder(), valid, gt, lambda uid: _features(spans[uid]), RATE, params,
        name="planted", out_dir=tmp_path / "out", test=test,
    )  # fmt: skip
    out = tmp_path / "out"
    dp = read_metrics(out / "dp_metrics.json")
    assert dp["predictor"] == "planted_dp" and dp["official"]["recall"]["R1@0.5"] == 1.0
    assert dp["official"]["miou"] == 1.0 and "error" not in dp["strict"]
    dfs = read_metrics(out / "dfs_metrics.json")  # v1 has 3 steps > dfs_max_steps
    assert dfs["official"]["error"].startswith("not run") and stats["dfs"] == "not run"
    assert not (out / "predictions" / "dfs.json").exists()
    assert sorted(p.name for p in (out / "predictions").iterdir()) == [
        "argmax.json",
        "dp.json",
        "viterbi.json",
    ]
    example = np.load(out / "example.npz")
    assert str(example["video_uid"]) == "v1" and example["sim"].shape == (3, 15)
    assert example["dp"].tolist() == [[1, 4], [6, 8], [10, 13]] and example["gt"][0].tolist() == [1.0, 4.0]
    challenge = json.loads((out / "test_challenge.json").read_text())
    assert challenge["challenge"] == GOALSTEP_CHALLENGE and challenge["version"] == "1.0"
    assert [len(r["predicted_times"]) for r in challenge["results"]] == [5, 5]
    assert challenge["results"][0]["predicted_times"][0] == [2.0, 8.0]
    assert challenge["results"][1]["predicted_times"][0] == [20.0, 26.0]
