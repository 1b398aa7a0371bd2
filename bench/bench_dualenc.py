"""Benchmark dual-encoder pair serving and window embedding.

1. Pair serving (pairs/s): batches of window rows for the training loop, from
   - the FeatureBank (:mod:`egonlq.dualenc.bank`): every video loaded once into one tensor, a batch is one
     vectorised gather (what training uses), against
   - the usual dataset pattern: ``__getitem__`` loads the item's per-video feature file
     (:func:`egonlq.data.features.load_video_features`) and cuts the window, a collate pads the batch.
   The bank's one-time load is timed separately and reported.
2. Embedding a full split of windows (windows/s) with the video tower, batched from the bank.

Synthetic set: ``--videos`` videos of ``--seconds`` s with random ``--dim``-d features (float16 files, as the
official releases), ``--pairs`` windows of ~1 s (EgoClip-like) spread over them. Each rate is the median of
``--repeat`` runs (at least 3) with min and max; the ratio compares the medians.

    .venv/bin/python bench/bench_dualenc.py [--videos 100] [--seconds 300] [--dim 256] [--pairs 4000]
        [--batch 128] [--baseline-batches 10] [--threads 1] [--repeat 3]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from egonlq.data.features import load_video_features, save_video_features
from egonlq.dualenc.bank import FeatureBank
from egonlq.dualenc.model import DualEncoder, DualEncoderConfig
from egonlq.timegrid import FEATURES_PER_SEC
from medians import check_repeat, median, run_times


def make_set(root: Path, videos: int, seconds: float, dim: int, pairs: int, seed: int = 0) -> tuple:
    rng = np.random.default_rng(seed)
    rows = int(seconds * FEATURES_PER_SEC)
    uids = [f"video{v:04d}" for v in range(videos)]
    for uid in uids:
        save_video_features(rng.normal(size=(rows, dim)).astype(np.float16), root / f"{uid}.pt")
    which = rng.integers(0, videos, size=pairs)
    start = rng.uniform(0, seconds - 2, size=pairs)
    return [uids[i] for i in which], start, start + rng.uniform(0.7, 1.6, size=pairs)


def per_item_load(root: Path, video: str, start: float, end: float, dim: int, max_rows: int) -> torch.Tensor:
    """The usual pattern: one feature file read per fetch, then the window cut."""
    features = load_video_features(root / f"{video}.pt", expected_dim=dim)
    first = int(np.floor(start * FEATURES_PER_SEC))
    last = max(first, int(np.ceil(end * FEATURES_PER_SEC)) - 1)
    return torch.from_numpy(features[first : min(last, len(features) - 1) + 1][:max_rows].copy())


def pad(items: list[torch.Tensor], max_rows: int) -> tuple[torch.Tensor, torch.Tensor]:
    length = max(len(x) for x in items)
    out = torch.zeros(len(items), length, items[0].shape[1])
    mask = torch.zeros(len(items), length, dtype=torch.bool)
    for i, x in enumerate(items):
        out[i, : len(x)], mask[i, : len(x)] = x, True
    return out, mask


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--videos", type=int, default=100)
    p.add_argument("--seconds", type=float, default=300.0)
    p.add_argument("--dim", type=int, default=256)
    p.add_argument("--pairs", type=int, default=4000)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--baseline-batches", type=int, default=10)
    p.add_argument("--max-rows", type=int, default=8)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeat", type=int, default=3, help="runs of each measurement (medians, min, max; >= 3)")
    a = p.parse_args()
    check_repeat(a.repeat)
    batches = a.pairs // a.batch  # full batches only, on both sides
    if batches < 1:
        raise SystemExit(f"--pairs ({a.pairs}) must be at least --batch ({a.batch})")
    baseline_batches = min(a.baseline_batches, batches)
    torch.set_num_threads(a.threads)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        videos, start, end = make_set(root, a.videos, a.seconds, a.dim, a.pairs)
        loads: list[float] = []
        for _ in range(a.repeat):
            t = time.perf_counter()
            bank = FeatureBank.load(root, videos, dim=a.dim, progress=False)
            loads.append(time.perf_counter() - t)
        first, count = bank.window_rows(videos, start, end)
        first_t, count_t = torch.from_numpy(first), torch.from_numpy(count)
        order = np.random.default_rng(1).permutation(a.pairs)

        def serve_bank() -> None:
            for b in range(batches):
                idx = torch.from_numpy(order[b * a.batch : (b + 1) * a.batch])
                bank.gather(first_t[idx], count_t[idx], a.max_rows)

        def serve_per_item() -> None:
            for b in range(baseline_batches):
                idx = order[b * a.batch : (b + 1) * a.batch]
                items = [per_item_load(root, videos[i], start[i], end[i], a.dim, a.max_rows) for i in idx]
                pad(items, a.max_rows)

        model = DualEncoder(DualEncoderConfig(video_dim=a.dim, text_dim=384)).eval()

        @torch.no_grad()
        def embed() -> None:
            for b in range(0, a.pairs, 1024):
                rows, mask = bank.gather(first_t[b : b + 1024], count_t[b : b + 1024], a.max_rows)
                model.encode_video(rows, mask)

        bank_rates = [batches * a.batch / s for s in run_times(serve_bank, a.repeat)]
        loop_rates = [baseline_batches * a.batch / s for s in run_times(serve_per_item, a.repeat)]
        embed_rates = [a.pairs / s for s in run_times(embed, a.repeat)]

    def rate(values: list[float]) -> str:
        return f"{median(values):,.0f} (min {min(values):,.0f}, max {max(values):,.0f})"

    bank_rate, loop_rate, load_s = median(bank_rates), median(loop_rates), median(loads)
    print(f"set: {a.videos} videos x {a.seconds:.0f} s, dim {a.dim}, {a.pairs} windows, batch {a.batch}")
    print(f"medians of {a.repeat} runs (min, max)")
    print("| what | rate | note |")
    print("|---|---|---|")
    rows = [
        ("pairs/s, feature bank (one gather per batch)", bank_rates, f"one-time load {load_s:.2f} s"),
        ("pairs/s, load the feature file per item (baseline)", loop_rates, f"{baseline_batches} batches"),
        ("windows/s, video tower over the split", embed_rates, f"batch 1024, {a.threads} thread(s)"),
    ]
    for what, values, note in rows:
        print(f"| {what} | {rate(values)} | {note} |")
    print(f"ratio bank / per-item loading: {bank_rate / loop_rate:,.0f}x")
    epoch = a.pairs / (load_s + a.pairs / bank_rate)
    print(f"bank incl. its one-time load, one epoch: {epoch:,.0f} pairs/s ({epoch / loop_rate:,.1f}x)")


if __name__ == "__main__":
    main()
