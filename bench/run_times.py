"""Where the time of a finished workflow run went: per-job times, the DAG's critical path and how busy the
cores were (issue 15, goal 6: `make run` within 15 minutes on 2 cores).

Reads a finished run in ``--directory`` (default: this checkout), through Snakemake's own API: the DAG of the
``--targets`` (every job, as if forced), each job's time from its benchmark file under results/benchmarks/
(the ``s`` column) or, for a rule without one, from the start and end Snakemake recorded for its outputs, and
the job's threads. Prints:

* the run's wall time (first start to last end of the recorded jobs) and its job time (sum over jobs), whose
  ratio is the average number of busy cores;
* the critical path: the chain of dependent jobs with the largest total time, the floor on the wall time
  with unlimited cores;
* the rules by total time, with their jobs and threads.

Baseline: none; this is a profile of the run, not a comparison. ``make run-times`` runs it after ``make run``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
from collections import defaultdict
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


@dataclass
class JobTime:
    name: str  # rule and wildcards
    rule: str
    seconds: float | None  # None: never ran here (no benchmark, no record)
    start: float | None
    end: float | None
    threads: int
    source: str  # "benchmark" | "metadata" | "-"


def _benchmark_seconds(path: Path) -> float | None:
    if not path.is_file():
        return None
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    return float(rows[-1]["s"]) if rows else None


def plan(directory: Path, targets: list[str]) -> tuple[list, dict]:
    """The jobs of ``targets`` (all of them, as if forced) and, per job, the jobs it depends on; plus the
    recorded (start, end) of each job from Snakemake's metadata of its outputs."""
    from snakemake.api import SnakemakeApi
    from snakemake.settings.types import DAGSettings, OutputSettings, ResourceSettings

    # the dry run's job list goes to the terminal whatever `quiet` says: keep this report readable
    with (
        open(os.devnull, "w") as devnull,
        redirect_stdout(devnull),
        redirect_stderr(devnull),
        SnakemakeApi(OutputSettings(quiet={"all"})) as api,
    ):
        wf = api.workflow(
            resource_settings=ResourceSettings(cores=2), snakefile=REPO / "Snakefile", workdir=directory
        )
        wf.dag(DAGSettings(targets=set(targets), forceall=True)).execute_workflow(executor="dryrun")
        dag = wf._workflow.dag
        jobs = list(dag.jobs)
        deps = {job: list(dag.dependencies[job]) for job in jobs}
        recorded = {}
        for job in jobs:
            spans = [
                (m.starttime, m.endtime)
                for f in job.output
                if (m := wf._workflow.persistence.metadata(f)) is not None and m.starttime and m.endtime
            ]
            if spans:
                recorded[job] = (min(s for s, _ in spans), max(e for _, e in spans))
    return jobs, {"deps": deps, "recorded": recorded}


def job_times(directory: Path, jobs: list, recorded: dict) -> dict:
    out = {}
    for job in jobs:
        name = f"{job.rule.name}" + (
            f"[{','.join(f'{k}={v}' for k, v in job.wildcards_dict.items())}]" if job.wildcards_dict else ""
        )
        start, end = recorded.get(job, (None, None))
        seconds, source = None, "-"
        if job.benchmark:
            seconds = _benchmark_seconds(directory / str(job.benchmark))
            source = "benchmark" if seconds is not None else source
        if seconds is None and start is not None:
            seconds, source = end - start, "metadata"
        out[job] = JobTime(name, job.rule.name, seconds, start, end, int(job.threads), source)
    return out


def critical_path(jobs: list, deps: dict, times: dict) -> tuple[float, list]:
    """The dependency chain with the largest total time (jobs without a time count 0).

    The longest path ending at each job, dependencies first, with an explicit stack: no recursion, so neither
    a deep DAG nor Python's recursion limit (which is the whole process's, left as it is) matter.
    """
    best: dict = {}  # job -> (longest path ending there, the dependency it comes through)
    for root in jobs:
        stack = [root]
        while stack:
            job = stack[-1]
            if job in best:
                stack.pop()
                continue
            waiting = [d for d in deps[job] if d not in best]
            if waiting:
                stack.extend(waiting)
                continue
            stack.pop()
            before = max(((best[d][0], d) for d in deps[job]), default=(0.0, None), key=lambda t: t[0])
            best[job] = (before[0] + (times[job].seconds or 0.0), before[1])
    end = max(jobs, key=lambda job: best[job][0])
    chain = []
    job = end
    while job is not None:
        chain.append(job)
        job = best[job][1]
    return best[end][0], chain[::-1]


def report(directory: Path, targets: list[str], top: int) -> dict:
    jobs, info = plan(directory, targets)
    times = job_times(directory, jobs, info["recorded"])
    timed = [t for t in times.values() if t.seconds is not None]
    spans = [t for t in times.values() if t.start is not None]
    wall = max(t.end for t in spans) - min(t.start for t in spans) if spans else None
    total = sum(t.seconds for t in timed)
    length, chain = critical_path(jobs, info["deps"], times)
    per_rule: dict[str, list[JobTime]] = defaultdict(list)
    for t in timed:
        per_rule[t.rule].append(t)
    rules = sorted(per_rule.items(), key=lambda kv: -sum(t.seconds for t in kv[1]))
    rules = [(r, len(ts), sum(t.seconds for t in ts), max(t.threads for t in ts)) for r, ts in rules]
    return {
        "jobs": len(jobs),
        "timed": len(timed),
        "untimed": sorted(t.name for t in times.values() if t.seconds is None and t.rule != "all"),
        "wall_s": wall,
        "job_s": total,
        "busy_cores": None if not wall else total / wall,
        "critical_path_s": length,
        "critical_path": [(times[j].name, times[j].seconds, times[j].threads) for j in chain],
        "rules": rules[:top],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--directory", type=Path, default=REPO, help="the work directory of a finished run")
    ap.add_argument("--targets", nargs="+", default=["all"])
    ap.add_argument("--top", type=int, default=15, help="rules shown, by total time")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    a = ap.parse_args()
    r = report(a.directory.resolve(), a.targets, a.top)
    fmt = lambda s: "-" if s is None else f"{s:7.1f} s"  # noqa: E731
    print(f"jobs: {r['jobs']} ({r['timed']} timed)")
    print(f"wall time (recorded jobs): {fmt(r['wall_s'])}   job time: {fmt(r['job_s'])}", end="")
    print("" if r["busy_cores"] is None else f"   average busy cores: {r['busy_cores']:.2f}")
    print(f"critical path: {fmt(r['critical_path_s'])} over {len(r['critical_path'])} jobs")
    for name, seconds, threads in r["critical_path"]:
        print(f"  {fmt(seconds)}  {threads} thr  {name}")
    print("rules by total time:")
    for rule, n, seconds, threads in r["rules"]:
        print(f"  {fmt(seconds)}  {n:4d} jobs  {threads} thr  {rule}")
    if r["untimed"]:
        print(f"untimed jobs (no benchmark, no record): {len(r['untimed'])}, e.g. {r['untimed'][:3]}")
    if a.json:
        a.json.write_text(json.dumps(r, indent=1) + "\n")


if __name__ == "__main__":
    main()
