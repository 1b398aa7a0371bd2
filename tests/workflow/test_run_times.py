"""bench/run_times.py: per-job times of a finished run, its critical path and how busy the cores were."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO


def _run_times():
    spec = importlib.util.spec_from_file_location("run_times", REPO / "bench" / "run_times.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["run_times"] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_profile_of_the_tiny_run(tiny_run: Path) -> None:
    r = _run_times().report(tiny_run, ["all"], top=50)
    assert r["untimed"] == [] and r["timed"] == r["jobs"] - 1  # every job but the `all` target has a time
    names = [name for name, _, _ in r["critical_path"]]
    assert names[0] == "demo_world" and names[-1] == "all"  # the world comes first, everything ends in `all`
    assert any(name.startswith("train_vslnet") for name in names)
    assert (
        0 < r["critical_path_s"] <= r["job_s"]
        and sum(s or 0 for _, s, _ in r["critical_path"]) == (r["critical_path_s"])
    )
    assert 0 < r["wall_s"] and 0 < r["busy_cores"] <= 2.05  # the tiny run uses --cores 2
    assert sum(seconds for _, _, seconds, _ in r["rules"]) == pytest.approx(r["job_s"])


def test_critical_path_of_a_deep_chain_leaves_the_recursion_limit_alone() -> None:
    """A chain far deeper than Python's recursion limit, and a diamond whose slower branch wins; the limit
    (the whole test process's: it once stayed raised and changed later tests' JSON nesting errors) is not
    touched."""
    from dataclasses import dataclass

    @dataclass
    class Time:
        seconds: float | None

    critical_path = _run_times().critical_path
    limit = sys.getrecursionlimit()
    deps = {"a": [], "b": ["a"], "c": ["a"], "d": ["b", "c"]}
    times = {"a": Time(1.0), "b": Time(2.0), "c": Time(5.0), "d": Time(None)}
    assert critical_path(["d", "c", "b", "a"], deps, times) == (6.0, ["a", "c", "d"])
    n = 5 * limit
    chain = list(range(n))
    length, path = critical_path(
        chain[::-1], {i: [i - 1] if i else [] for i in chain}, {i: Time(1.0) for i in chain}
    )
    assert (length, path) == (float(n), chain)
    assert sys.getrecursionlimit() == limit
