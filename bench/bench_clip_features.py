"""Benchmark the clip-feature store: one parquet file (egonlq.data.features) vs one ``<clip_uid>.pt`` per
clip.

Layouts, all written from the same synthetic per-video feature files in the same run:

- ``parquet``: :func:`egonlq.data.features.cut_clips`, features column uncompressed (ours, the default).
- ``parquet-zstd``: the same with ``compression="zstd"``.
- ``pt``: one ``torch.save(clip.clone())`` per clip, each video loaded once: the per-clip layout of other NLQ
  codebases, written compactly (the baseline the ratios are against).
- ``pt-reference``: what EGO4D's prepare_ego4d_dataset.py writes: the video loaded once PER CLIP and
  ``torch.save(feature[a : b + 1])``, a view, so every clip file holds its whole video's storage.

Measured: write time, size on disk, and the time to load every clip as a float32 numpy array, both "cold"
(this run's files evicted from the page cache with posix_fadvise(DONTNEED) before each repetition; only
these files, nothing system-wide) and "warm" (files in the page cache, read afresh each repetition).
Repetitions interleave the layouts; the table gives the medians of ``--repeat`` (at least 3) load runs and
the lines under it their min and max; each layout is written once (its write time is that one run).

    .venv/bin/python bench/bench_clip_features.py [--clips 300] [--dim 256] [--seconds 480] [--repeat 5]
"""

from __future__ import annotations

import argparse
import gc
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from egonlq.data.features import cut_clip, cut_clips, load_video_features, read_clip_features
from egonlq.timegrid import FEATURES_PER_SEC
from medians import check_repeat, spread

CLIPS_PER_VIDEO = 3


def make_videos(root: Path, *, clips: int, dim: int, seconds: float, data: str, seed: int) -> pd.DataFrame:
    """Per-video files holding CLIPS_PER_VIDEO back-to-back clips each; returns the clip table."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True)
    rows_per_video = int(CLIPS_PER_VIDEO * seconds * FEATURES_PER_SEC) + 3
    table = []
    for v in range((clips + CLIPS_PER_VIDEO - 1) // CLIPS_PER_VIDEO):
        x = rng.standard_normal((rows_per_video, dim), dtype=np.float32)
        if data == "relu":
            x = np.maximum(x, 0.0)
        tensor = torch.from_numpy(x).half() if data == "fp16" else torch.from_numpy(x)
        torch.save(tensor, root / f"video{v:04d}.pt")
        for k in range(CLIPS_PER_VIDEO):
            if len(table) < clips:
                table.append((f"clip{len(table):05d}", f"video{v:04d}", k * seconds, (k + 1) * seconds))
    return pd.DataFrame(table, columns=["clip_uid", "video_uid", "video_start_sec", "video_end_sec"])


def write_pt_compact(clips: pd.DataFrame, video_dir: Path, out_dir: Path, dim: int) -> None:
    out_dir.mkdir()
    for video_uid, group in clips.groupby("video_uid"):
        features = load_video_features(video_dir / f"{video_uid}.pt", expected_dim=dim)
        for clip in group.itertuples():
            cut = cut_clip(features, clip.video_start_sec, clip.video_end_sec)
            torch.save(torch.from_numpy(cut.copy()), out_dir / f"{clip.clip_uid}.pt")


def write_pt_reference(clips: pd.DataFrame, video_dir: Path, out_dir: Path) -> None:
    out_dir.mkdir()
    for clip in clips.itertuples():
        feature = torch.load(video_dir / f"{clip.video_uid}.pt", weights_only=True)
        a, b = int(clip.video_start_sec * FEATURES_PER_SEC), int(clip.video_end_sec * FEATURES_PER_SEC)
        torch.save(feature[a : b + 1], out_dir / f"{clip.clip_uid}.pt")


def load_pt(out_dir: Path) -> dict[str, np.ndarray]:
    return {p.stem: torch.load(p, weights_only=True).float().numpy() for p in sorted(out_dir.glob("*.pt"))}


def files_of(path: Path) -> list[Path]:
    return sorted(path.glob("*.pt")) if path.is_dir() else [path]


def evict(files: list[Path]) -> None:
    """Drop these files' pages from the page cache (flushing them first: dirty pages cannot be dropped)."""
    for p in files:
        fd = os.open(p, os.O_RDONLY)
        try:
            os.fsync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def timed(load: Callable[[], dict]) -> float:
    gc.collect()
    start = time.perf_counter()
    loaded = load()
    seconds = time.perf_counter() - start
    del loaded
    return seconds


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clips", type=int, default=300, help="number of clips (the size knob)")
    parser.add_argument("--dim", type=int, default=256, help="feature dim")
    parser.add_argument("--seconds", type=float, default=480.0, help="clip length (480 s -> 901 rows)")
    parser.add_argument(
        "--data",
        choices=("normal", "relu", "fp16"),
        default="normal",
        help="feature values: dense floats, half zeros, or float16 source files",
    )
    parser.add_argument("--repeat", type=int, default=7, help="repetitions per measurement (median, >= 3)")
    parser.add_argument("--workdir", type=Path, help="where to write (default: a temporary folder, removed)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    check_repeat(args.repeat)
    cold_ok = hasattr(os, "posix_fadvise")

    work = Path(tempfile.mkdtemp(prefix="bench_clip_features.", dir=args.workdir))
    try:
        videos = work / "videos"
        clips = make_videos(
            videos, clips=args.clips, dim=args.dim, seconds=args.seconds, data=args.data, seed=args.seed
        )
        print(
            f"{len(clips)} clips of {args.seconds:g} s x {args.dim} ({args.data}) from "
            f"{clips.video_uid.nunique()} videos in {work}",
            file=sys.stderr,
        )
        parquet, zstd, pt, pt_ref = (
            work / "clips.parquet",
            work / "clips-zstd.parquet",
            work / "pt",
            work / "pt-reference",
        )
        # name: (path, write, load)
        layouts: dict[str, tuple[Path, Callable[[], object], Callable[[], dict]]] = {
            "parquet": (
                parquet,
                lambda: cut_clips(clips, videos, parquet, expected_dim=args.dim),
                lambda: read_clip_features(parquet),
            ),
            "parquet-zstd": (
                zstd,
                lambda: cut_clips(clips, videos, zstd, expected_dim=args.dim, compression="zstd"),
                lambda: read_clip_features(zstd),
            ),
            "pt": (pt, lambda: write_pt_compact(clips, videos, pt, args.dim), lambda: load_pt(pt)),
            "pt-reference": (
                pt_ref,
                lambda: write_pt_reference(clips, videos, pt_ref),
                lambda: load_pt(pt_ref),
            ),
        }
        written = {}
        for name, (_, write, _) in layouts.items():
            print(f"{name}: write", file=sys.stderr)
            start = time.perf_counter()
            write()
            written[name] = time.perf_counter() - start
        # Repetitions interleave the layouts so that load from other processes hits them all alike.
        cold_times: dict[str, list[float]] = {name: [] for name in layouts}
        warm_times: dict[str, list[float]] = {name: [] for name in layouts}
        for rep in range(args.repeat):
            print(f"load repetition {rep + 1}/{args.repeat}", file=sys.stderr)
            for name, (path, _, load) in layouts.items():
                if cold_ok:
                    evict(files_of(path))
                    cold_times[name].append(timed(load))
                warm_times[name].append(timed(load))
        results = {}
        for name, (path, _, _) in layouts.items():
            files = files_of(path)
            cold = statistics.median(cold_times[name]) if cold_ok else float("nan")
            results[name] = (
                len(files),
                sum(p.stat().st_size for p in files),
                written[name],
                cold,
                statistics.median(warm_times[name]),
            )

        reference = load_pt(pt)
        for name, (_, _, load) in layouts.items():
            loaded = load()
            assert loaded.keys() == reference.keys(), name
            assert all(np.array_equal(loaded[k], reference[k]) for k in reference), name

        total = sum(a.nbytes for a in reference.values())
        print(
            f"\n{len(reference)} clips, {total / 2**20:.1f} MiB of float32 features; median of "
            f"{args.repeat}; ratio = pt time / layout time (higher is faster)"
        )
        header = (
            f"{'layout':<14}{'files':>7}{'MiB':>9}{'write s':>9}{'cold s':>9}{'warm s':>9}"
            f"{'cold ratio':>12}{'warm ratio':>12}{'GiB/s warm':>12}"
        )
        print(header)
        print("-" * len(header))
        _, _, _, pt_cold, pt_warm = results["pt"]
        for name, (n, size, write_s, cold, warm) in results.items():
            print(
                f"{name:<14}{n:>7}{size / 2**20:>9.1f}{write_s:>9.2f}{cold:>9.3f}{warm:>9.3f}"
                f"{pt_cold / cold:>12.2f}{pt_warm / warm:>12.2f}{total / warm / 2**30:>12.2f}"
            )
        print("load seconds, median (min, max):")
        for name in layouts:
            cold = f"cold {spread(cold_times[name], digits=3)}, " if cold_ok else ""
            print(f"  {name:<14}{cold}warm {spread(warm_times[name], digits=3)}")
        if not cold_ok:
            print("(cold loads not measured: os.posix_fadvise is not available here)")
    finally:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
