"""AKS selection time: egonlq.video.aks (both modes) against a straightforward pure-Python reference
implementation.

The input is a one-hour video scored at 1 sample/s (3600 scores by default), at the defaults
(M 64, L 5, t1 0.8), on two curves: Gaussian noise (the common case: 32 bins of 2) and a wide plateau (the
root is kept: global top-64). Baseline: what a user would write from the method's description, spec/aks.md
section 4 in plain Python with lists, ``heapq`` and plain sums (it stands for a straightforward
implementation, not for a published script); its selections are checked against reference mode before
timing. Each figure is the median of ``--repeat`` runs (of ``--number`` calls each) with min and max.

    python bench/bench_aks.py                  # 3600 scores
    python bench/bench_aks.py --samples 600    # a ten-minute video
"""

from __future__ import annotations

import argparse
import heapq
import math

import numpy as np

from egonlq.video.aks import AKSParams, select_keyframes
from medians import median, run_times, spread


def pure_python_reference(
    scores: list[float], ids: list[int], M: int, L: int, t1: float, t2: float
) -> list[int]:
    """Reference-mode AKS with ratio 1 in plain Python (the baseline)."""
    if len(scores) < M:
        return list(ids)
    lo, hi = min(scores), max(scores)
    x = [(s - lo) / (hi - lo) for s in scores]
    level, leaves = [(0, len(x), 0)], []
    while level:
        next_level = []
        for a, b, d in level:
            seg = x[a:b]
            mean = sum(seg) / len(seg)
            top = heapq.nlargest(M, seg)
            std = math.sqrt(sum((v - mean) ** 2 for v in seg) / len(seg))
            if sum(top) / len(top) - mean > t1 and std > t2:
                leaves.append((a, b, d))
            elif d < L:
                mid = a + (b - a) // 2
                next_level += [(a, mid, d + 1), (mid, b, d + 1)]
            else:
                leaves.append((a, b, d))
        level = next_level
    out = []
    for a, b, d in leaves:
        k = int(M / 2**d)
        out += [ids[a + i] for i in heapq.nlargest(k, range(b - a), key=x[a:b].__getitem__)]
    return sorted(out)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--samples", type=int, default=3600, help="scores per video (1 per second)")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--number", type=int, default=20, help="calls per timing")
    args = parser.parse_args()

    n = args.samples
    rng = np.random.default_rng(0)
    plateau = np.full(n, 0.05)
    plateau[n // 3 : n // 3 + 200] = 1.0
    curves = {"noise": rng.normal(size=n).tolist(), "wide plateau": plateau.tolist()}
    ids = [30 * j for j in range(n)]  # 30 fps, step 30
    defaults = AKSParams()

    print(f"{n} scores, M={defaults.M}, L={defaults.depth}, t1={defaults.t1}, t2={defaults.t2}")
    header = f"{'curve':<13} | {'implementation':<26} | {'ms/video: median (min, max)':>32}"
    print(f"\n{header} | {'vs baseline':>11}")
    print("-" * 93)
    for name, scores in curves.items():
        args_ref = (scores, ids, defaults.M, defaults.depth, defaults.t1, defaults.t2)
        baseline_ids = pure_python_reference(*args_ref)
        assert baseline_ids == select_keyframes(scores, ids, defaults).frame_ids, "baseline disagrees"
        timings = {
            "pure Python (baseline)": run_times(
                lambda a=args_ref: pure_python_reference(*a), args.repeat, args.number
            )
        }
        for mode in ("reference", "improved"):
            params = AKSParams(mode=mode)
            timings[f"egonlq.video.aks {mode}"] = run_times(
                lambda p=params, s=scores: select_keyframes(s, ids, p), args.repeat, args.number
            )
        base = median(timings["pure Python (baseline)"])
        for impl, times in timings.items():
            shown = spread(times, scale=1e3, unit="ms", digits=3)
            print(f"{name:<13} | {impl:<26} | {shown:>32} | {base / median(times):>10.2f}x")


if __name__ == "__main__":
    main()
