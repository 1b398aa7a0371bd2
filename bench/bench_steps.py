"""Benchmark step alignment: the exact segment DP against the DFS reference (branch and bound, exponential).

1. DP vs DFS for growing K at N = 600 chunks (20 minutes of 2 s chunks); every DFS run is a separate process
   stopped after ``--dfs-limit`` seconds, and the DFS series stops at the first K that does not finish (the
   bench's own time is capped by ``--budget``). Both must reach the same optimal score where DFS finishes.
2. The DP alone at K = 25, N = 600 and at the largest real video, K = 178, N = 3,600 (aim: < 50 ms), with and
   without a maximum segment length (sliding-window maximum): median, min and max of ``--repeats`` runs.

The similarities are synthetic and step-structured: K ordered true segments of random lengths, similarity 0.3
inside a step's own segment, 0 elsewhere, plus N(0, 0.1) noise; lambda is the 90th percentile (the default).

    .venv/bin/python bench/bench_steps.py [--dfs-limit 60] [--budget 300] [--repeats 20] [--seed 0]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import time

import numpy as np

from egonlq.steps.align import align_dfs, align_dp, background_bias


def synthetic_gain(k: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """A step-structured gain matrix: K ordered true segments, noise, minus the 90th-percentile bias."""
    cuts = np.sort(rng.choice(np.arange(1, n), size=k, replace=False))
    bounds = np.concatenate([[0], cuts, [n]])
    sim = rng.normal(0.0, 0.1, size=(k, n))
    for step in range(k):
        a, b = bounds[step], bounds[step + 1]
        sim[step, a : a + max(1, (b - a) * 2 // 3)] += 0.3
    return sim - background_bias(sim, 90)


def time_dp(gain: np.ndarray, repeats: int, max_len: int | None = None) -> tuple[float, float, float, float]:
    """Median, min and max wall time of the DP in ms over ``repeats`` runs, and the median CPU time (which a
    machine shared with other jobs inflates less than the wall time)."""
    wall, cpu = [], []
    for _ in range(repeats):
        t, c = time.perf_counter(), time.process_time()
        align_dp(gain, max_len=max_len)
        wall.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    ms = 1e3 * np.array(wall)
    return float(np.median(ms)), float(ms.min()), float(ms.max()), 1e3 * float(np.median(cpu))


def _dfs_worker(gain: np.ndarray, out: mp.Queue) -> None:
    t = time.perf_counter()
    result = align_dfs(gain)
    out.put((time.perf_counter() - t, result.score))


def time_dfs(gain: np.ndarray, limit: float) -> tuple[float, float] | None:
    """(seconds, score) of the DFS, or None when it does not finish within ``limit`` seconds."""
    out: mp.Queue = mp.Queue()
    proc = mp.Process(target=_dfs_worker, args=(gain, out))
    proc.start()
    proc.join(limit)
    if proc.is_alive():
        proc.terminate()
        proc.join()
        return None
    return out.get()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dfs-limit", type=float, default=60.0, help="seconds one DFS run may take")
    ap.add_argument("--budget", type=float, default=300.0, help="seconds the DFS series may take in all")
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)

    print(f"DP vs DFS at N = 600 (DFS limit {args.dfs_limit:.0f} s per run, budget {args.budget:.0f} s)")
    print(f"{'K':>4} {'DP ms':>9} {'DFS s':>10} {'DFS/DP':>10} {'same score':>11}")
    started = time.perf_counter()
    for k in range(1, 26):
        gain = synthetic_gain(k, 600, rng)
        dp_ms = time_dp(gain, args.repeats)[0]
        left = args.budget - (time.perf_counter() - started)
        dfs = time_dfs(gain, min(args.dfs_limit, left)) if left > 0 else None
        if dfs is None:
            print(f"{k:>4} {dp_ms:>9.2f} {'> limit':>10}   DFS stops finishing here")
            break
        same = abs(dfs[1] - align_dp(gain).score) < 1e-9
        print(f"{k:>4} {dp_ms:>9.2f} {dfs[0]:>10.3f} {1e3 * dfs[0] / dp_ms:>10.0f} {str(same):>11}")

    print(f"\nDP alone: median [min, max] wall ms of {args.repeats} runs, median CPU ms")
    for k, n in ((25, 600), (178, 3600)):
        gain = synthetic_gain(k, n, rng)
        for max_len in (None, n // k * 4):
            med, low, high, cpu = time_dp(gain, args.repeats, max_len=max_len)
            print(
                f"K = {k:>3}, N = {n:>5}, max_len {str(max_len):>4}: {med:7.2f} ms [{low:.2f}, {high:.2f}]"
                f", CPU {cpu:.2f} ms"
            )


if __name__ == "__main__":
    main()
