"""What every bench script reports (issue 15 goal 5): the median of at least 3 runs, with its min and max.

Imported by the scripts of bench/ (they run as ``python bench/<script>.py``, so this folder is on the path).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence

MIN_REPEAT = 3


def check_repeat(repeat: int) -> int:
    """``repeat`` itself, or a clear exit when it is below :data:`MIN_REPEAT` (a median needs 3 runs)."""
    if repeat < MIN_REPEAT:
        raise SystemExit(f"--repeat must be at least {MIN_REPEAT}: figures are medians with min and max")
    return repeat


def run_times(fn: Callable[[], object], repeat: int, number: int = 1) -> list[float]:
    """Seconds per call of ``fn`` in each of ``repeat`` runs of ``number`` calls."""
    times = []
    for _ in range(check_repeat(repeat)):
        start = time.perf_counter()
        for _ in range(number):
            fn()
        times.append((time.perf_counter() - start) / number)
    return times


def median(times: Sequence[float]) -> float:
    return statistics.median(times)


def spread(times: Sequence[float], *, scale: float = 1.0, unit: str = "s", digits: int = 2) -> str:
    """``"median U (min a, max b)"`` of ``times`` multiplied by ``scale`` (1e3 for ms)."""
    med, lo, hi = (scale * v for v in (statistics.median(times), min(times), max(times)))
    unit = f" {unit}" if unit else ""
    return f"{med:.{digits}f}{unit} (min {lo:.{digits}f}, max {hi:.{digits}f})"
