"""Benchmark: one VSLNet evaluation of the val split (the trainer's periodic validation) against the published
code's method.

One evaluation is what training runs after every epoch (and every ``eval_period`` steps): the model in eval
mode over every val query, top-5 span decoding, unit indices to seconds, the challenge predictions JSON and
the official Recall@k / IoU metric. Both sides run on the SAME model object (randomly initialised, seeded:
the cost of an evaluation does not depend on training), the same val records, the same batch size and the
same batches: both build them with our ``collate`` from the text cache (the data pipeline is not what is
compared; the published code would also run its BERT on every val batch, which would only widen the gap:
``--with-encoder`` adds that row).

- ``published`` (the BASELINE): EGO4D/episodic-memory NLQ/VSLNet, ``main.py`` (``model.eval()``, then
  ``utils/runner_utils.py::eval_test``, then ``model.train()``) and ``utils/evaluate_ego4d_nlq.py``,
  re-stated here step for step with the same I/O pattern: per batch under ``torch.no_grad()`` the model,
  then the predictor's ``extract_index`` (softmax of the start and end logits, their outer product by
  ``torch.matmul``, ``torch.triu``, flattened row-major, ``topk(5)``, ``//`` and ``%`` by the padded width:
  vslnet.md 9), the indices moved to numpy, and per query and window the data utils' ``index_to_time``
  (two float32 grids built per call, on the record's ``D = int(duration * 1.875) / 1.875``) into one dict per
  query (``copy.deepcopy`` of its windows) appended to a list; one ``json.dump`` of ``{"version": "1.0",
  "challenge": "ego4d_nlq_challenge", "results": [...]}`` to the predictions file; the GT JSON read with
  ``json.load`` (every evaluation, as ``eval_test`` does); and ``evaluate_nlq_performance``: the GT walked
  into a ``(clip_uid, annotation_uid)`` dict, then per prediction its IoUs by the script's ``compute_IoU``
  (small numpy arrays per result: that is how the script computes them, not a Python loop over windows),
  the "mean of the 3 best" top-1 IoU and one ``(overlap > t)[:k].any()`` per threshold and k appended to
  lists, ``np.array(...).mean`` and ``np.mean`` at the end (evaluation.md 3). As in ``eval_test``, the
  scoring reads the in-memory predictions list, not the file it has just written. Left out: tqdm, the
  prints and the terminaltables display of the scores (display only; leaving them out makes the baseline
  slightly faster, not slower).
- ``ours``: ``egonlq.grounding.train._evaluate``, the function the trainer's ``_Run._evaluation`` calls:
  :func:`egonlq.grounding.predict.predict_records` (batched, ``decode_topk``, ``span_times``),
  :func:`egonlq.evaluation.predictions.write_predictions` (sorted, validated, atomic) and
  :func:`egonlq.evaluation.metric.evaluate` in official mode, which reads the predictions back from the file.
  The GT is parsed once per training (``load_ground_truth`` in ``train``), so not in an evaluation; its
  one-time cost is printed.
- ``published+enc`` (with ``--with-encoder``): the baseline with the frozen text encoder run on every val
  batch, as the published code runs its BERT inside the model (here the MiniLM of the cache, in the
  ``compat="official"`` form: padded outputs kept, nothing memoised; the reference's BERT-base is larger, so
  this still understates it). Its text values are not the float16 cache's, so its predictions are not
  compared with ours; its official scores are checked against ``evaluate`` on its own file.

Both run under the trainer's ``deterministic`` context, alternating, after one uncounted warm-up each;
``--repeat`` runs each. Per side: wall and CPU (process) seconds per evaluation as median (min, max), the
ratio of the baseline's median to ours, and the median split into stages (our ``collate``,
``write_predictions`` and ``evaluate`` calls timed by wrappers, the model forward by hooks on the shared
model; "decode + times" is the rest of the prediction loop). The warm-up outputs are checked: the two
prediction lists must be equal query for query, and the official metric (every R@k at IoU 0.3, 0.5, 0.01,
mIoU and "Evaluated x / y") of the baseline's scoring must equal ours exactly on the same predictions
(the baseline's file scored by ``evaluate``), and on each side's own predictions up to the summation order
of mIoU (our file lists the results sorted by key; the official mean adds them in file order, which can
move the last bits); the script raises otherwise.

Synthetic data: ``bench_train_throughput.synthetic_set`` (``--clips`` clips of 480 s with random 256-d
features, 128 units after pooling, ``--val-queries`` templated val queries and their compact GT JSON); the
model is ``VSLNetConfig`` at the reference size (dim 128, 8 heads, max_pos_len 128, video 256, text 384 from
a text cache built once by the MiniLM encoder). ``--nlq-val`` sizes the val split like the real NLQ v1 val
(3,874 queries). The compact GT is smaller than the real annotation file, so the baseline's GT load is
cheaper here than on real data.

    .venv/bin/python bench/bench_eval.py [--val-queries 500 | --nlq-val] [--clips 32] [--batch 32]
        [--dim 128] [--max-pos-len 128] [--repeat 3] [--threads 1] [--device cpu] [--with-encoder] [--quick]
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import math
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

import bench_train_throughput
from bench_train_throughput import synthetic_set
from egonlq.evaluation.metric import DEFAULT_KS, DEFAULT_THRESHOLDS, EvalResult, evaluate, load_ground_truth
from egonlq.grounding import predict as predict_module
from egonlq.grounding import train as train_module
from egonlq.grounding.nlq_dataset import (
    NLQDataset,
    Records,
    check_text,
    collate,
    load_records,
    make_text_source,
)
from egonlq.grounding.text_encoder import TextEncoder, build_text_cache, default_model_path
from egonlq.grounding.vslnet import VSLNet, VSLNetConfig
from medians import check_repeat, median, spread

NLQ_VAL_QUERIES = 3874  # NLQ v1 val (evaluation.md 4)
BASELINE = "published"
STAGES = ("collate", "model forward", "decode + times", "JSON write", "GT load", "metric")
TOP_K = 5  # windows per query, both sides
MIOU_ORDER_REL = 1e-12  # mIoU of the same IoUs summed in another order


# ------------------------------------------------------------------------------------------ stage timing


class Stages:
    """Seconds per stage of one evaluation, accumulated by :meth:`timed` blocks, wrappers and model hooks."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)

    @contextlib.contextmanager
    def timed(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] += time.perf_counter() - start

    def wrap(self, name: str, fn: Callable) -> Callable:
        def timed_call(*args: Any, **kwargs: Any) -> Any:
            with self.timed(name):
                return fn(*args, **kwargs)

        return timed_call


class ForwardClock:
    """Hooks on the shared model: each forward's wall time goes to the current :class:`Stages`."""

    def __init__(self, model: nn.Module, device: torch.device) -> None:
        self.stages: Stages | None = None
        self.sync = device.type == "cuda"
        self.started = 0.0
        model.register_forward_pre_hook(self._pre)
        model.register_forward_hook(self._post)

    def _pre(self, *_: Any) -> None:
        if self.sync:
            torch.cuda.synchronize()
        self.started = time.perf_counter()

    def _post(self, *_: Any) -> None:
        if self.sync:
            torch.cuda.synchronize()
        if self.stages is not None:
            self.stages.seconds["model forward"] += time.perf_counter() - self.started


@contextlib.contextmanager
def instrumented_ours(stages: Stages) -> Iterator[None]:
    """While active, the functions ``train._evaluate`` and ``predict_records`` look up are wrapped in timers
    (their own code runs unchanged)."""
    swaps = [
        (predict_module, "collate", "collate"),
        (train_module, "predict_records", "predict"),
        (train_module, "write_predictions", "JSON write"),
        (train_module, "evaluate", "metric"),
    ]
    saved = [getattr(module, name) for module, name, _ in swaps]
    for (module, name, stage), fn in zip(swaps, saved, strict=True):
        setattr(module, name, stages.wrap(stage, fn))
    try:
        yield
    finally:
        for (module, name, _), fn in zip(swaps, saved, strict=True):
            setattr(module, name, fn)


# -------------------------------------------------------------------------------- the published method


def reference_records(records: Records) -> list[dict]:
    """The per-query records the published test loader hands to ``eval_test`` (the fields it reads): ``vid``,
    ``annotation_uid``, ``query_idx``, ``v_len`` and ``duration`` = ``num_frames / 1.875`` with
    ``num_frames = int(clip duration * 1.875)`` (vslnet.md 1). Built once: data preparation, not
    evaluation."""
    rate = records.grid.rows_per_second
    return [
        {
            "vid": records.clip_uid[i],
            "annotation_uid": records.annotation_uid[i],
            "query_idx": int(records.query_idx[i]),
            "v_len": int(records.v_len[i]),
            "duration": int(float(records.duration[i]) * rate) / rate,
        }
        for i in range(len(records))
    ]


def reference_extract_index(start_logits: torch.Tensor, end_logits: torch.Tensor) -> tuple[Any, Any]:
    """The published predictor's top-5 decoding (vslnet.md 9): row-major top 5 of the upper triangle of
    ``softmax(start) x softmax(end)``, split by the padded width."""
    p_start = nn.Softmax(dim=1)(start_logits)
    p_end = nn.Softmax(dim=1)(end_logits)
    outer = torch.triu(torch.matmul(p_start.unsqueeze(dim=2), p_end.unsqueeze(dim=1)), diagonal=0)
    batch, _, width = outer.shape
    _, flat = outer.view(batch, -1).topk(TOP_K, dim=-1)
    return flat // width, flat % width


def reference_index_to_time(start: Any, end: Any, num_units: int, duration: float) -> tuple[Any, Any]:
    """The published data utils' index -> seconds: a float32 grid of unit starts and one of unit ends, built
    on each call, ``i * D / L``."""
    unit_starts = np.arange(0, num_units).astype(np.float32) * duration / float(num_units)
    unit_ends = np.arange(1, num_units + 1).astype(np.float32) * duration / float(num_units)
    return unit_starts[start], unit_ends[end]


def reference_iou(pred: Any, gt: Any) -> np.ndarray:
    """The official script's ``compute_IoU`` for a list of windows against ``[[start, end]]``: ``[N, 1]``."""
    assert isinstance(pred, list) and isinstance(gt, list)
    if not isinstance(pred[0], list):
        pred = [pred]
    if not isinstance(gt[0], list):
        gt = [gt]
    p, g = np.array(pred), np.array(gt)
    inter = np.maximum(
        0.0, np.minimum(p[:, 1, None], g[None, :, 1]) - np.maximum(p[:, 0, None], g[None, :, 0])
    )
    union = np.maximum(
        0.0, np.maximum(p[:, 1, None], g[None, :, 1]) - np.minimum(p[:, 0, None], g[None, :, 0])
    )
    return 1.0 * inter / union


def reference_scoring(
    predictions: list[dict], ground_truth: dict, thresholds: list[float], top_k: list[int]
) -> tuple[np.ndarray, float, int, int]:
    """The official ``evaluate_nlq_performance``: recall ``[threshold][k]``, mIoU, "Evaluated x / y"."""
    gt_dict = {}
    num_gt_queries = 0
    for video_datum in ground_truth["videos"]:
        for clip_datum in video_datum["clips"]:
            for ann_datum in clip_datum["annotations"]:
                gt_dict[(clip_datum["clip_uid"], ann_datum["annotation_uid"])] = ann_datum
                num_gt_queries += len(ann_datum["language_queries"])
    hits: list[list[list[Any]]] = [[[] for _ in top_k] for _ in thresholds]
    average_iou = []
    num_instances = 0
    for pred_datum in predictions:
        key = (pred_datum["clip_uid"], pred_datum["annotation_uid"])
        assert key in gt_dict, "Instance not present!"
        query = gt_dict[key]["language_queries"][pred_datum["query_idx"]]
        overlap = reference_iou(
            pred_datum["predicted_times"], [[query["clip_start_sec"], query["clip_end_sec"]]]
        )
        average_iou.append(np.mean(np.sort(overlap[0])[-3:]))
        for tt, threshold in enumerate(thresholds):
            for kk, k in enumerate(top_k):
                hits[tt][kk].append((overlap > threshold)[:k].any())
        num_instances += 1
    return np.array(hits).mean(axis=-1), np.mean(average_iou), num_instances, num_gt_queries


def published_evaluation(
    model: VSLNet,
    records: Records,
    ref_records: list[dict],
    text: Any,
    gt_json: Path,
    out_path: Path,
    *,
    batch_size: int,
    device: torch.device,
    stages: Stages,
) -> tuple[list[dict], np.ndarray, float, int, int]:
    """One evaluation as ``main.py`` + ``eval_test`` run it; returns the predictions and the official
    scores."""
    model.eval()
    dataset = NLQDataset(records)
    predictions = []
    with torch.no_grad():
        for start in range(0, len(dataset), batch_size):
            with stages.timed("collate"):
                stop = min(start + batch_size, len(dataset))
                batch = collate([dataset[i] for i in range(start, stop)], text).to(device)
            out = model(batch.video, batch.video_mask, batch.text, batch.text_mask)  # timed by the hooks
            with stages.timed("decode + times"):
                start_indices, end_indices = reference_extract_index(out.start_logits, out.end_logits)
                start_indices = start_indices.cpu().numpy()
                end_indices = end_indices.cpu().numpy()
                for record, starts, ends in zip(
                    ref_records[start:stop], start_indices, end_indices, strict=True
                ):
                    windows = []
                    for s, e in zip(starts, ends, strict=True):
                        s_time, e_time = reference_index_to_time(s, e, record["v_len"], record["duration"])
                        windows.append([float(s_time), float(e_time)])
                    predictions.append(
                        {
                            "clip_uid": record["vid"],
                            "annotation_uid": record["annotation_uid"],
                            "query_idx": int(record["query_idx"]),
                            "predicted_times": copy.deepcopy(windows),
                        }
                    )
    with stages.timed("JSON write"):
        with open(out_path, "w") as f:
            json.dump({"version": "1.0", "challenge": "ego4d_nlq_challenge", "results": predictions}, f)
    with stages.timed("GT load"):
        with open(gt_json) as f:
            ground_truth = json.load(f)
    with stages.timed("metric"):
        recall, miou, x, y = reference_scoring(
            predictions, ground_truth, list(DEFAULT_THRESHOLDS), list(DEFAULT_KS)
        )
    model.train()
    return predictions, recall, miou, x, y


# ------------------------------------------------------------------------------------------------- ours


def our_evaluation(
    model: VSLNet,
    records: Records,
    text: Any,
    gt: Any,
    out_path: Path,
    *,
    batch_size: int,
    device: torch.device,
    stages: Stages,
) -> EvalResult:
    """One evaluation as the trainer runs it (``train._evaluate``), its stages timed by wrappers."""
    with instrumented_ours(stages):
        result = train_module._evaluate(
            model, records, text, gt, out_path, batch_size=batch_size, device=device
        )
    s = stages.seconds
    s["decode + times"] = s.pop("predict") - s["collate"] - s["model forward"]
    return result


# --------------------------------------------------------------------------------------------- checks


def _same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


def metric_problems(
    recall: np.ndarray, miou: float, x: int, y: int, ours: EvalResult, *, miou_rel: float = 0.0
) -> list[str]:
    """Differences between the official script's scores and ours (empty: they match): recall and counts
    exactly, mIoU within ``miou_rel`` (relative; 0: exactly)."""
    problems = [
        f"R{k}@{t:g}: published {recall[tt][kk]!r}, ours {ours.recall[(t, k)]!r}"
        for tt, t in enumerate(DEFAULT_THRESHOLDS)
        for kk, k in enumerate(DEFAULT_KS)
        if not _same(float(recall[tt][kk]), ours.recall[(t, k)])
    ]
    if not (_same(float(miou), ours.miou) or math.isclose(miou, ours.miou, rel_tol=miou_rel, abs_tol=0.0)):
        problems.append(f"mIoU: published {miou!r}, ours {ours.miou!r}")
    if (x, y) != ours.evaluated():
        problems.append(f"Evaluated: published {x} / {y}, ours {ours.evaluated()}")
    return problems


def same_file_problems(
    base: tuple[list[dict], np.ndarray, float, int, int], path: Path, gt: Any
) -> list[str]:
    """The official script's scores of a published-method run against ``evaluate`` on the file it wrote."""
    _, recall, miou, x, y = base
    ours = evaluate(gt, path, mode="official")
    return [
        f"on the {path.parent.name} predictions file: {p}" for p in metric_problems(recall, miou, x, y, ours)
    ]


def check_agreement(
    base: tuple[list[dict], np.ndarray, float, int, int],
    base_path: Path,
    ours: EvalResult,
    ours_path: Path,
    gt: Any,
) -> str:
    """The agreement line; raises when the metrics differ on the same predictions."""
    predictions, recall, miou, x, y = base
    theirs = {(p["clip_uid"], p["annotation_uid"], p["query_idx"]): p["predicted_times"] for p in predictions}
    with open(ours_path) as f:
        mine = {
            (p["clip_uid"], p["annotation_uid"], p["query_idx"]): p["predicted_times"]
            for p in json.load(f)["results"]
        }
    differ = sorted(key for key in theirs.keys() | mine.keys() if theirs.get(key) != mine.get(key))
    problems = same_file_problems(base, base_path, gt)
    if not differ:  # ours writes the results sorted by key, and the official mIoU sums in file order
        each = metric_problems(recall, miou, x, y, ours, miou_rel=MIOU_ORDER_REL)
        problems += [f"on each side's predictions: {p}" for p in each]
    if problems:
        raise SystemExit("official metrics DIFFER:\n  " + "\n  ".join(problems))
    keys = len(theirs.keys() | mine.keys())
    scores = ", ".join(
        f"R{k}@{t:g} {recall[tt][kk]:.4f}"
        for kk, k in enumerate(DEFAULT_KS)
        for tt, t in enumerate(DEFAULT_THRESHOLDS)
        if t != 0.01
    )
    if differ:
        return (
            f"agreement: predictions differ for {len(differ)} of {keys} queries (first {differ[0]}); "
            f"official metrics match on the same predictions file ({scores}, mIoU {miou:.4f}, "
            f"Evaluated {x} / {y})"
        )
    order = ""
    if not _same(float(miou), ours.miou):
        order = (
            f"; mIoU differs by {abs(float(miou) - ours.miou):.1e} (summation order: our file lists the "
            "results sorted by key, the official mean adds them in file order)"
        )
    return (
        f"agreement: predictions identical for {keys} / {keys} queries; official metrics match "
        f"({scores}, mIoU {miou:.4f}, Evaluated {x} / {y}), exactly on the published predictions file{order}"
    )


# ----------------------------------------------------------------------------------------------- main


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--val-queries", type=int, default=500, help="val queries (the real NLQ val has ~3.9k)")
    ap.add_argument(
        "--nlq-val", action="store_true", help=f"the real NLQ v1 val size: {NLQ_VAL_QUERIES} queries"
    )
    ap.add_argument("--clips", type=int, default=32, help="val clips (480 s each) the queries share")
    ap.add_argument("--batch", type=int, default=32, help="evaluation batch (the reference's batch_size)")
    ap.add_argument("--dim", type=int, default=128, help="model size (128: the reference)")
    ap.add_argument("--max-pos-len", type=int, default=128, help="units per clip (128: the reference)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (0: torch's default)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true", help="a tiny smoke run (24 queries on 4 clips)")
    ap.add_argument(
        "--with-encoder", action="store_true", help="add the published method with its text encoder per batch"
    )
    args = ap.parse_args()
    check_repeat(args.repeat)
    if args.nlq_val:
        args.val_queries = NLQ_VAL_QUERIES
    if args.quick:
        args.val_queries, args.clips = 24, 4
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    config = VSLNetConfig(video_dim=256, text_dim=384, dim=args.dim, max_pos_len=args.max_pos_len)
    model_path = default_model_path()

    with tempfile.TemporaryDirectory(prefix="bench_eval_") as tmp:
        root = Path(tmp)
        bench_train_throughput.VAL_QUERIES = args.val_queries  # synthetic_set's val split size
        inputs = synthetic_set(
            root / "data", n_queries=args.clips, n_clips=args.clips, dim=256, seconds=480.0, seed=args.seed
        )
        cache = root / "text_cache.safetensors"
        build_text_cache(inputs["texts"], TextEncoder(model_path, max_len=config.max_pos_len), cache)
        records = load_records(
            inputs["val_queries"],
            inputs["val_clips"],
            inputs["val_features"],
            max_pos_len=config.max_pos_len,
            label_mode="compatible",  # TrainSpec's default, the reference's
            video_dim=config.video_dim,
            progress=False,
        )
        text = make_text_source("cache", text_cache=cache, text_model=model_path, max_len=config.max_pos_len)
        check_text(records, text, text_dim=config.text_dim, where=cache)
        ref_records = reference_records(records)
        started = time.perf_counter()
        gt = load_ground_truth(inputs["val_gt"])  # ours: once per training
        gt_once = time.perf_counter() - started
        torch.manual_seed(args.seed)
        model = VSLNet(config).to(device).train()
        clock = ForwardClock(model, device)
        sides = ["published", "ours", *(["published+enc"] if args.with_encoder else [])]
        texts = {"published": text, "ours": text}
        if args.with_encoder:  # the encoder on every batch, as the reference's model runs its BERT
            texts["published+enc"] = make_text_source(
                "encoder",
                text_cache=None,
                text_model=model_path,
                max_len=config.max_pos_len,
                device=device,
                compat="official",
            )
        paths = {side: root / side / "VSLNet_0_1_preds.json" for side in sides}
        for path in paths.values():
            path.parent.mkdir()

        def run(side: str) -> tuple[Any, Stages]:
            stages = Stages()
            clock.stages = stages
            if side == "ours":
                out = our_evaluation(
                    model, records, text, gt, paths[side], batch_size=args.batch, device=device, stages=stages
                )
            else:
                out = published_evaluation(
                    model,
                    records,
                    ref_records,
                    texts[side],
                    inputs["val_gt"],
                    paths[side],
                    batch_size=args.batch,
                    device=device,
                    stages=stages,
                )
            clock.stages = None
            return out, stages

        walls: dict[str, list[float]] = {side: [] for side in sides}
        cpus: dict[str, list[float]] = {side: [] for side in sides}
        stage_runs: dict[str, list[dict[str, float]]] = {side: [] for side in sides}
        with train_module.deterministic(device):
            warm = {side: run(side)[0] for side in sides}  # not counted; checked below
            agreement = [check_agreement(warm[BASELINE], paths[BASELINE], warm["ours"], paths["ours"], gt)]
            if args.with_encoder:
                problems = same_file_problems(warm["published+enc"], paths["published+enc"], gt)
                if problems:
                    raise SystemExit("official metrics DIFFER:\n  " + "\n  ".join(problems))
                agreement.append(
                    "agreement: published+enc (text from the encoder, not the float16 cache, so its "
                    "predictions are not compared): its official metrics match evaluate() on its own file"
                )
            for r in range(args.repeat):
                for side in sides if r % 2 == 0 else sides[::-1]:
                    wall, cpu = time.perf_counter(), time.process_time()
                    _, stages = run(side)
                    walls[side].append(time.perf_counter() - wall)
                    cpus[side].append(time.process_time() - cpu)
                    stage_runs[side].append(dict(stages.seconds))
                    print(
                        f"  repeat {r}: {side:13s} {walls[side][-1]:.3f} s wall, {cpus[side][-1]:.3f} s CPU",
                        flush=True,
                    )

    print(
        f"VSLNet evaluation of {len(records)} val queries ({args.clips} clips of 480 s, "
        f"{int(records.v_len.max())} units), model dim {config.dim}, max_pos_len {config.max_pos_len}, video "
        f"{config.video_dim}, text {config.text_dim}, batch {args.batch}, {torch.get_num_threads()} torch "
        f"thread(s), device {device}; {args.repeat} runs per side, alternating, after one warm-up each"
    )
    base_wall = median(walls[BASELINE])
    print(f"{'side':13s} {'wall s per evaluation':>32s} {'CPU s per evaluation':>32s} {'vs published':>13s}")
    for side in sides:
        print(
            f"{side:13s} {spread(walls[side], digits=3):>32s} {spread(cpus[side], digits=3):>32s} "
            f"{base_wall / median(walls[side]):12.2f}x"
        )
    ours_wall, ours_cpu = median(walls["ours"]), median(cpus["ours"])
    for side in [s for s in sides if s != "ours"]:
        wall, cpu = median(walls[side]), median(cpus[side])
        print(
            f"ratio: {side} / ours = {wall / ours_wall:.2f}x wall ({wall:.3f} s vs {ours_wall:.3f} s per "
            f"evaluation), {cpu / ours_cpu:.2f}x CPU ({cpu:.3f} s vs {ours_cpu:.3f} s)"
        )
    print(f"{'stage (median s)':18s}" + "".join(f" {side:>13s}" for side in sides))
    for stage in STAGES:
        cells = [median([run.get(stage, 0.0) for run in stage_runs[side]]) for side in sides]
        print(f"{stage:18s}" + "".join(f" {cell:13.4f}" for cell in cells))
    print(f"(ours parses the GT once per training, not per evaluation: {gt_once:.4f} s here)")
    if args.with_encoder:
        print("(published+enc: its text encoder runs in the collate stage)")
    print("\n".join(agreement))


if __name__ == "__main__":
    main()
