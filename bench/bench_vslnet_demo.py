"""Benchmark: VSLNet training speed AND accuracy on the demo's own run, against the published method.

The issue's setting ("VSLNet training, demo, same config and encoder"): the demo world's ``scratch`` run as
``make run`` trained it (its ``train_spec.json``: the same spec, tables, features and val GT), trained again
here once per row and seed, in this process, one torch thread unless ``--threads``:

- ``official`` (the BASELINE): the published VSLNet code's method (``bench_train_throughput.published_ops``:
  the frozen encoder run on every batch in train mode with padded outputs kept, the transformers-4 AdamW,
  torch's dropout kernel, the out-of-place attention and the Conv1d blocks);
- ``compat``: ``compat="official"`` as a user runs it (the same semantics, our operations);
- ``encoder``: our defaults with the frozen encoder (each unique text encoded once, in batches);
- ``cache``: our defaults with the text cache the workflow built (``results/text/...``);
- ``cache bf16``: the same under bfloat16 autocast (``precision: bf16``).

Reported per row: training queries/s (the summary's ``queries_per_second``: evaluation excluded) as the
median over seeds with min and max, its ratio to the baseline's median, the range of the ratios seed by seed
(each against the baseline's run of that seed, a few minutes apart), and the best val R1@0.3 and R1@0.5
(mean over seeds, each seed listed), so a speed-up is seen together with the accuracy it keeps. Needs a
finished ``make run`` (``--results``, default ``results/``).

    .venv/bin/python bench/bench_vslnet_demo.py [--results results] [--seeds 0 1] [--epochs 30] [--threads 1]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from dataclasses import replace
from pathlib import Path

import torch

from bench_train_throughput import published_ops
from egonlq.grounding.text_encoder import default_model_path
from egonlq.grounding.train import train
from egonlq.grounding.train_spec import TrainSpec
from egonlq.io import read_json

# row -> (spec.text, compat, the published code's operations, precision); the first row is the baseline
ROWS = {
    "official": ("encoder", "official", True, "fp32"),
    "compat": ("encoder", "official", False, "fp32"),
    "encoder": ("encoder", "egonlq", False, "fp32"),
    "cache": ("cache", "egonlq", False, "fp32"),
    "cache bf16": ("cache", "egonlq", False, "bf16"),
}
INPUTS = (
    *("train_queries", "train_clips", "train_features"),
    *("val_queries", "val_clips", "val_features", "val_gt"),
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--results", type=Path, default=Path("results"), help="a finished `make run`")
    ap.add_argument("--run", default="scratch", help="the demo run whose spec and inputs are used")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--epochs", type=int, help="override the run's epochs (default: as the demo)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (0: torch's default)")
    ap.add_argument("--rows", nargs="+", choices=list(ROWS), default=list(ROWS))
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    saved = read_json(args.results / "vslnet" / args.run / "seed0" / "train_spec.json")
    spec = TrainSpec.from_dict(saved["spec"])
    if args.epochs:
        spec = replace(spec, epochs=args.epochs)
    inputs = {name: Path(saved["inputs"][name]) for name in INPUTS}
    text_cache = Path(saved["inputs"]["text_cache"])
    rates: dict[str, list[float]] = {row: [] for row in args.rows}
    scores: dict[str, list[tuple[float, float]]] = {row: [] for row in args.rows}
    with tempfile.TemporaryDirectory(prefix="bench_vslnet_demo_") as tmp:
        for seed in args.seeds:
            for row in args.rows:
                text, compat, published, precision = ROWS[row]
                with published_ops(published):
                    summary = train(
                        replace(spec, seed=seed, text=text, precision=precision),
                        **inputs,
                        text_cache=text_cache,
                        text_model=default_model_path(),
                        out_dir=Path(tmp) / f"{row.replace(' ', '_')}_{seed}",
                        progress=False,
                        device="cpu",
                        compat=compat,
                    )
                rates[row].append(summary["queries_per_second"])
                scores[row].append((summary["best"]["R1@0.3"], summary["best"]["R1@0.5"]))
                print(
                    f"  seed {seed} {row:11s} {summary['queries_per_second']:7.1f} queries/s, best R1@0.3 "
                    f"{scores[row][-1][0]:.3f}, R1@0.5 {scores[row][-1][1]:.3f}",
                    flush=True,
                )
    print(
        f"VSLNet '{args.run}' run of the demo ({spec.epochs} epochs, batch {spec.batch_size}, "
        f"dim {spec.model.dim}), {torch.get_num_threads()} thread(s), seeds {args.seeds}"
    )
    header = f"{'row':12s} {'queries/s':>10s} {'min':>7s} {'max':>7s} {'ratio':>7s} {'per seed':>12s}"
    print(f"{header}   R1@0.3 (per seed)   R1@0.5")
    baseline = rates[args.rows[0]]
    for row in args.rows:
        r03 = [s[0] for s in scores[row]]
        r05 = [s[1] for s in scores[row]]
        # the ratio of each seed to the baseline's run of the same seed: how far the machine drifted
        per_seed = [r / b for r, b in zip(rates[row], baseline, strict=True)]
        print(
            f"{row:12s} {statistics.median(rates[row]):10.1f} {min(rates[row]):7.1f} {max(rates[row]):7.1f} "
            f"{statistics.median(rates[row]) / statistics.median(baseline):6.2f}x "
            f"{min(per_seed):5.2f}-{max(per_seed):4.2f}x   {statistics.mean(r03):.3f} "
            f"({', '.join(f'{v:.3f}' for v in r03)})   {statistics.mean(r05):.3f}"
        )


if __name__ == "__main__":
    main()
