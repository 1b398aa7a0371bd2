"""One dual encoder on Goal-Step: every decoder's predictions on the annotated split scored with the project's
NLQ metric (both modes), the test challenge file, and one entry's similarity matrix for the report.

The ground truth is the NLQ-style conversion (``<split>_gt.json`` of ``steps-ingest``), so the official
metric applies unchanged (spec dual-encoder-and-steps §5). A decoder that is not run (DFS beyond its step
limit) gets a metrics file whose modes say so instead of scores.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from egonlq.dualenc.evaluate import Embedder
from egonlq.evaluation.ground_truth import load_ground_truth
from egonlq.evaluation.metric import MODES, evaluate_both, write_metrics
from egonlq.evaluation.predictions import Prediction, validate_predictions, write_predictions
from egonlq.io import atomic_path, write_json
from egonlq.steps.zeroshot import DECODERS, NUM_WINDOWS, DecodeParams, decode_entry, predict_steps

logger = logging.getLogger(__name__)

GOALSTEP_CHALLENGE = "ego4d_goalstep_challenge"


def test_as_steps(test: pd.DataFrame) -> pd.DataFrame:
    """The test queries (descriptions with counts, no substeps, listed in order of first appearance) as steps
    of :data:`STEP_QUERIES` for the decoders: each description is one step, in the listed order."""
    out = test.copy()
    out["step_idx"] = out["query_idx"]
    out["is_substep"] = False
    return out


def embed_queries(embedder: Embedder, queries: pd.DataFrame, *, where: str | Path) -> torch.Tensor:
    """``[Q, E]`` text embeddings of the queries, in the frame's row order (its index must be 0..Q-1)."""
    if not (queries.index == np.arange(len(queries))).all():
        raise ValueError("queries must have a 0..Q-1 index")
    return embedder.text(queries["query"].tolist(), where=where)


def write_challenge(rows: Sequence[Prediction], path: Path) -> None:
    """The Goal-Step test submission (HiERO-StepG's header), 5 windows per query, checked like an NLQ file."""
    results = [r.to_json() for r in sorted(rows, key=lambda r: r.key)]
    short = [r for r in results if len(r["predicted_times"]) != NUM_WINDOWS]
    problems = [f"{len(short)} queries without {NUM_WINDOWS} windows"] if short else []
    # the NLQ validator knows the NLQ header only; the results themselves follow the same rules
    problems += validate_predictions(
        {"version": "1.0", "challenge": "ego4d_nlq_challenge", "results": results}
    )
    if problems:
        raise ValueError(f"refusing to write {path}: {problems[:5]}")
    write_json({"version": "1.0", "challenge": GOALSTEP_CHALLENGE, "results": results}, path)


def example_entry(queries: pd.DataFrame) -> str:
    """The entry shown in the report: the one with the most steps (the first such uid)."""
    steps = queries[~queries["is_substep"]].groupby("video_uid").size()
    return str(steps.sort_values(ascending=False, kind="stable").index[0])


def write_example(uid: str, sim: np.ndarray, queries: pd.DataFrame, params: DecodeParams, path: Path) -> None:
    """One entry's step rows of the similarity matrix with the DP windows and the ground truth (chunks)."""
    group = queries[queries["video_uid"] == uid].sort_values("query_idx")
    windows = decode_entry(sim, group, "dp", params)
    steps = ~group["is_substep"].to_numpy()
    w = params.chunk_sec
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(
            f,
            video_uid=np.array(uid),
            sim=sim[steps].astype(np.float32),
            dp=windows[steps, 0],
            gt=group[["clip_start_sec", "clip_end_sec"]].to_numpy()[steps] / w,
            chunk_sec=np.array(w),
        )


def not_run_metrics(predictor: str, split: str, reason: str) -> dict:
    """A metrics object for a decoder that was not run: every mode carries the reason."""
    return {
        "predictor": predictor,
        "split": split,
        **{m: {"mode": m, "error": f"not run: {reason}"} for m in MODES},
    }


def evaluate_model(
    embedder: Embedder,
    valid: pd.DataFrame,
    gt_path: Path,
    load_rows: Callable[[str], np.ndarray],
    rate: float,
    params: DecodeParams,
    *,
    name: str,
    out_dir: Path,
    test: pd.DataFrame | None = None,
    challenge_decoder: str = "dp",
    decoders: Sequence[str] = DECODERS,
) -> dict:
    """Decode ``valid`` with every decoder, write ``predictions/<decoder>.json`` and
    ``<decoder>_metrics.json`` (predictor ``<name>_<decoder>``), ``example.npz``, and with ``test`` the
    challenge file ``test_challenge.json`` (``challenge_decoder``). Returns counts and R@1 per decoder."""
    gt = load_ground_truth(gt_path)
    valid = valid.reset_index(drop=True)
    text = embed_queries(embedder, valid, where=gt_path)
    preds, sims = predict_steps(embedder.model, text, valid, load_rows, rate, params, decoders)
    (out_dir / "predictions").mkdir(parents=True, exist_ok=True)
    stats: dict = {"entries": int(valid["video_uid"].nunique()), "queries": len(valid)}
    for decoder, rows in preds.items():
        predictor = f"{name}_{decoder}"
        if rows is None:
            reason = f"an entry has more than {params.dfs_max_steps} steps (dfs_max_steps)"
            write_metrics(not_run_metrics(predictor, "valid", reason), out_dir / f"{decoder}_metrics.json")
            stats[decoder] = "not run"
            continue
        path = out_dir / "predictions" / f"{decoder}.json"
        write_predictions(rows, path, num_windows=NUM_WINDOWS)
        result = {"predictor": predictor, "split": "valid", **evaluate_both(gt, path)}
        write_metrics(result, out_dir / f"{decoder}_metrics.json")
        stats[decoder] = result["official"].get("recall", {}).get("R1@0.3")
    uid = example_entry(valid)
    write_example(uid, sims[uid], valid, params, out_dir / "example.npz")
    if test is not None:
        test = test_as_steps(test.reset_index(drop=True))
        test_text = embed_queries(embedder, test, where="test queries")
        rows, _ = predict_steps(embedder.model, test_text, test, load_rows, rate, params, [challenge_decoder])
        if rows[challenge_decoder] is None:
            raise ValueError(f"challenge decoder {challenge_decoder} did not run on test (dfs_max_steps)")
        write_challenge(rows[challenge_decoder], out_dir / "test_challenge.json")
        stats["test_queries"] = len(test)
    logger.info("steps %s: %s", name, stats)
    return stats
