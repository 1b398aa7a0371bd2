"""Benchmark VSLNet training throughput against the published code's training method.

Every run is :func:`egonlq.grounding.train.train` with the same :class:`~egonlq.grounding.train.TrainSpec`
on the same synthetic set; the rows differ in how the text reaches the model and in the training details:

- ``official`` (the BASELINE, the published VSLNet code's method, vslnet.md 4-7): the frozen encoder runs on
  every training batch in train mode (dropout on) with its outputs at padded positions kept, the
  transformers-4 AdamW, and the model's operations as the published code writes them (:func:`published_ops`:
  torch's dropout kernel, the attention scores scaled and masked out of place, the pointwise map as a
  kernel-1 Conv1d). The published code itself cannot run here (it is not installed, and its data
  preparation needs the real Ego4D layout); this is its method step for step on our model, whose blocks
  and logits match it (tests/grounding/test_compat.py, test_vslnet.py).
- ``compat``: ``compat="official"`` as a user runs it: the baseline's semantics with our faster operations.
- ``encoder`` (like for like: same encoder, no precomputed file): the frozen encoder in eval mode, each
  unique text encoded once per run, up front in batches of equal token count, and kept in memory
  (``EncodedText.prepare``: counted in the training time).
- ``cache``: token embeddings read from a text cache built once before training
  (:func:`egonlq.grounding.text_encoder.build_text_cache`, timed separately).
- ``encoder bf16``, ``cache bf16``: the same with ``precision="bf16"`` (the training steps under bfloat16
  autocast; accuracy compared in the README).

The encoder is the real MiniLM (``default_model_path()``). Throughput is training queries per second of
training time (the summary's ``queries_per_second``: evaluation excluded). After one uncounted warm-up run of
each, the runs alternate, ``--repeat`` times each; the table gives the median, min and max of each and the
ratio of the medians to the baseline's. The machine's other load affects every row alike.

Synthetic set: ``--clips`` clips of ``--seconds`` s with random ``--dim``-d features (1.875 rows/s, pooled to
128 units), ``--queries`` NLQ-style queries from templates spread over them, and a 16-query val split.

    .venv/bin/python bench/bench_train_throughput.py [--queries 256] [--clips 32] [--dim 256] [--seconds 480]
        [--batch 32] [--epochs 1] [--repeat 3] [--threads 0] [--device cpu]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import statistics
import tempfile
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import torch
import torch.nn.functional as F
from torch import nn

from egonlq.data.features import cut_clips
from egonlq.data.tables import CLIPS, QUERIES
from egonlq.grounding import vslnet
from egonlq.grounding.text_encoder import TextEncoder, build_text_cache, default_model_path
from egonlq.grounding.train import TrainSpec, train
from egonlq.grounding.vslnet import VSLNetConfig
from egonlq.io import write_json, write_parquet
from egonlq.queries.training_queries import TRAINING_CLIPS, TRAINING_QUERIES

OBJECTS = ["knife", "cup", "bowl", "spoon", "pan", "towel", "lid", "plate", "bottle", "phone", "keys", "bag"]
PLACES = ["drawer", "fridge", "table", "sink", "shelf", "counter", "cabinet", "floor"]
TEMPLATES = [
    "Where did I put the {o}?",
    "Where was the {o} before I picked it up?",
    "What did I put in the {p}?",
    "How many {o}s did I take from the {p}?",
    "In what location did I see the {o} after I left the {p}?",
    "Did I close the {p}?",
]
VAL_QUERIES = 16
# row -> (spec.text, compat, the published code's operations, precision); the first row is the baseline
VARIANTS = {
    "official": ("encoder", "official", True, "fp32"),
    "compat": ("encoder", "official", False, "fp32"),
    "encoder": ("encoder", "egonlq", False, "fp32"),
    "cache": ("cache", "egonlq", False, "fp32"),
    "encoder bf16": ("encoder", "egonlq", False, "bf16"),
    "cache bf16": ("cache", "egonlq", False, "bf16"),
}


def published_attention(self: vslnet.MultiHeadAttention, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The attention sub-block as the published code computes it: the scaled scores and the key mask each
    as a new [B, h, L, L] tensor (same values as ours)."""
    B, L, d = x.shape
    y = self.dropout(self.norm1(x))
    q, k, v = (self.split_heads(proj(y)) for proj in (self.query, self.key, self.value))
    scores = vslnet.mask_logits(q @ k.transpose(-2, -1) / math.sqrt(self.head_dim), mask[:, None, None, :])
    attn = self.dropout(F.softmax(scores, dim=-1))
    r = self.dropout((attn @ v).transpose(1, 2).reshape(B, L, d)) + x
    return self.dropout(self.out(self.dropout(self.norm2(r)))) + r


def published_conv(self: vslnet.DepthwiseSeparableConv, x: torch.Tensor) -> torch.Tensor:
    """The conv sub-block as the published code computes it: the pointwise map as a kernel-1 Conv1d."""
    y = F.relu(self.pointwise(self.depthwise(self.norm(x).transpose(1, 2))))
    return x + self.dropout(y.transpose(1, 2))


@contextlib.contextmanager
def published_ops(on: bool) -> Iterator[None]:
    """While ``on``, the model runs the published code's operations: torch's dropout kernel, the attention
    and conv sub-blocks above (our faster forms compute the same values, up to rounding for the conv)."""
    swaps = [
        (vslnet.Dropout, nn.Dropout.forward),
        (vslnet.MultiHeadAttention, published_attention),
        (vslnet.DepthwiseSeparableConv, published_conv),
    ]
    ours = [cls.forward for cls, _ in swaps]
    if on:
        for cls, forward in swaps:
            cls.forward = forward
    try:
        yield
    finally:
        for (cls, _), forward in zip(swaps, ours, strict=True):
            cls.forward = forward


def synthetic_set(
    root: Path, *, n_queries: int, n_clips: int, dim: int, seconds: float, seed: int = 0
) -> dict:
    """Training and val tables, clip features and the val GT JSON; returns the train() path arguments."""
    rng = np.random.default_rng(seed)
    feature_dir = root / "video_features"
    feature_dir.mkdir(parents=True)
    clips = []
    for c in range(n_clips):
        rows = int(seconds * 1.875) + 1
        torch.save(
            torch.from_numpy(rng.standard_normal((rows, dim), dtype=np.float32)), feature_dir / f"v{c}.pt"
        )
        clips.append(
            {
                "clip_uid": f"clip{c:04d}",
                "video_uid": f"v{c}",
                "video_start_sec": 0.0,
                "video_end_sec": seconds,
                "clip_end_sec": seconds,
            }
        )
    features = root / "clip_features.parquet"
    cut_clips(pd.DataFrame(clips), feature_dir, features, expected_dim=dim)

    def query(i: int, clip: int) -> dict:
        start = float(rng.uniform(0, seconds - 20))
        text = TEMPLATES[i % len(TEMPLATES)].format(o=rng.choice(OBJECTS), p=rng.choice(PLACES))
        return {
            "video_uid": f"v{clip}",
            "clip_uid": f"clip{clip:04d}",
            "annotation_uid": f"ann{clip:04d}",
            "query": text,
            "clip_start_sec": round(start, 3),
            "clip_end_sec": round(start + float(rng.uniform(1, 20)), 3),
        }

    train_rows, per_clip = [], [0] * n_clips
    for i in range(n_queries):
        row = query(i, i % n_clips)
        idx = per_clip[i % n_clips]
        per_clip[i % n_clips] += 1
        train_rows.append(
            {
                **row,
                "query_uid": f"{row['clip_uid']}:{row['annotation_uid']}:{idx}",
                "source": "nlq",
                "query_idx": idx,
                "zero_length": False,
                "ends_after_clip": False,
            }
        )
    write_parquet(pa.Table.from_pylist(train_rows, schema=TRAINING_QUERIES), root / "train_queries.parquet")
    write_parquet(
        pa.Table.from_pylist([{**c, "sources": ["nlq"]} for c in clips], schema=TRAINING_CLIPS),
        root / "train_clips.parquet",
    )

    val_rows = []
    for i in range(VAL_QUERIES):
        row = query(i, i % n_clips)
        val_rows.append(
            {
                **row,
                "split": "val",
                "query_idx": i // n_clips,
                "query_clean": row["query"],
                "annotated": True,
                "has_text": True,
                "zero_length": False,
                "ends_after_clip": False,
            }
        )
    write_parquet(pa.Table.from_pylist(val_rows, schema=QUERIES), root / "val_queries.parquet")
    val_clips = sorted({r["clip_uid"] for r in val_rows})
    write_parquet(
        pa.Table.from_pylist(
            [
                {**c, "split": "val", "num_annotations": 1, "num_queries": 1}
                for c in clips
                if c["clip_uid"] in val_clips
            ],
            schema=CLIPS,
        ),
        root / "val_clips.parquet",
    )
    gt: dict[str, dict] = {}
    for r in val_rows:
        clip = gt.setdefault(
            r["clip_uid"],
            {
                "clip_uid": r["clip_uid"],
                "annotations": [{"annotation_uid": r["annotation_uid"], "language_queries": []}],
            },
        )
        clip["annotations"][0]["language_queries"].append(
            {"clip_start_sec": r["clip_start_sec"], "clip_end_sec": r["clip_end_sec"], "query": r["query"]}
        )
    write_json({"videos": [{"video_uid": "v", "clips": list(gt.values())}]}, root / "val_gt.json")
    return {
        "train_queries": root / "train_queries.parquet",
        "train_clips": root / "train_clips.parquet",
        "train_features": features,
        "val_queries": root / "val_queries.parquet",
        "val_clips": root / "val_clips.parquet",
        "val_features": features,
        "val_gt": root / "val_gt.json",
        "texts": [r["query"] for r in train_rows + val_rows],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--queries", type=int, default=256, help="training queries (the --scale knob)")
    parser.add_argument("--clips", type=int, default=32)
    parser.add_argument("--dim", type=int, default=256, help="video feature size (256: EgoVLP)")
    parser.add_argument("--seconds", type=float, default=480.0, help="clip length")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    model_path = default_model_path()
    with tempfile.TemporaryDirectory(prefix="bench_train_") as tmp:
        root = Path(tmp)
        inputs = synthetic_set(
            root, n_queries=args.queries, n_clips=args.clips, dim=args.dim, seconds=args.seconds
        )
        texts = inputs.pop("texts")
        started = time.perf_counter()
        cache_stats = build_text_cache(
            texts, TextEncoder(model_path, max_len=128), root / "text_cache.safetensors"
        )
        cache_seconds = time.perf_counter() - started
        spec = TrainSpec(
            epochs=args.epochs,
            batch_size=args.batch,
            eval_per_epoch=1,
            model=VSLNetConfig(video_dim=args.dim, text_dim=384),
        )
        rates: dict[str, list[float]] = {name: [] for name in VARIANTS}
        for r in range(-1, args.repeat):  # repeat -1: warm-up of every row, not counted
            for name, (text, compat, published, precision) in VARIANTS.items():
                with published_ops(published):
                    summary = train(
                        replace(spec, text=text, precision=precision),
                        **inputs,
                        text_cache=root / "text_cache.safetensors",
                        text_model=model_path,
                        out_dir=root / f"run_{name.replace(' ', '_')}_{r}",
                        progress=False,
                        device=args.device,
                        compat=compat,
                    )
                if r < 0:
                    continue
                rates[name].append(summary["queries_per_second"])
                print(
                    f"  repeat {r}: {name:12s} {summary['queries_per_second']:8.1f} queries/s "
                    f"({summary['samples_trained']} queries in {summary['train_seconds']:.2f} s)",
                    flush=True,
                )
    print(
        json.dumps(
            {
                "queries": args.queries,
                "batch": args.batch,
                "epochs": args.epochs,
                "dim": args.dim,
                "device": args.device,
                "threads": torch.get_num_threads(),
                "unique_texts": cache_stats["n_unique"],
            }
        )
    )
    print(f"text cache built once: {cache_stats['n_unique']} unique texts in {cache_seconds:.2f} s")
    baseline = statistics.median(rates["official"])
    print(f"{'text':12s} {'median q/s':>10s} {'min':>8s} {'max':>8s} {'vs official':>12s}")
    for name, values in rates.items():
        median = statistics.median(values)
        print(f"{name:12s} {median:10.1f} {min(values):8.1f} {max(values):8.1f} {median / baseline:11.2f}x")


if __name__ == "__main__":
    main()
