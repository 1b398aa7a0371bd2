"""Run every benchmark of bench/ in turn (each prints its own table and ratios against its baseline).

`make bench` runs them at the sizes the closing notes quote; `--quick` runs each at a small size to check that
they still work. Also times `snakemake -n` on the demo configuration (the dry-run a user waits for).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent

FULL = {
    "bench_ingest.py": ["--preset", "full"],
    "bench_queries.py": ["--preset", "full"],
    "bench_naq.py": ["--preset", "full"],
    "bench_clip_features.py": [],
    "bench_train_throughput.py": ["--threads", "1"],
    "bench_llm_hf.py": [],
    "bench_video_decode.py": [],
    "bench_aks.py": [],
    "bench_frame_scoring.py": [],
    "bench_dualenc.py": [],
    "bench_steps.py": [],
    "bench_dag.py": [],
    "bench_gpu.py": ["--steps", "30"],
    "bench_eval.py": ["--threads", "1"],
    "bench_vslnet_demo.py": [],
}
QUICK = {
    "bench_ingest.py": ["--narrations", "50000"],
    "bench_queries.py": ["--narrations", "50000"],
    "bench_naq.py": ["--preset", "tiny", "--repeat", "3", "--world", "/tmp/bench_naq_tiny_world"],
    "bench_clip_features.py": ["--clips", "30", "--repeat", "3"],
    "bench_train_throughput.py": ["--queries", "64", "--clips", "8", "--repeat", "1", "--threads", "1"],
    "bench_llm_hf.py": ["--prompts", "4"],
    "bench_video_decode.py": ["--frames", "300", "--sizes", "96", "--repeat", "3"],
    "bench_aks.py": ["--repeat", "3", "--number", "2"],
    "bench_frame_scoring.py": [],
    "bench_dualenc.py": ["--videos", "10", "--pairs", "1000"],
    "bench_steps.py": ["--dfs-limit", "5", "--budget", "20", "--repeats", "2"],
    "bench_dag.py": ["--repeat", "3", "--shards", "100"],
    "bench_gpu.py": ["--quick", "--device", "cpu"],
    "bench_eval.py": ["--quick", "--threads", "1"],
    "bench_vslnet_demo.py": ["--epochs", "1", "--seeds", "0", "--rows", "official", "cache"],
}
# what a benchmark reads that only `make run` writes: without it the benchmark is skipped, and said so
NEEDS = {"bench_vslnet_demo.py": REPO / "results" / "vslnet" / "scratch" / "seed0" / "train_spec.json"}
# the NaQ script's own pins (`make published-env`): where built, bench_naq also times the method there
PUBLISHED_PYTHON = REPO / ".venv-published" / "bin" / "python"


def dry_run_seconds(repeat: int = 3) -> float:
    """Median wall time of `snakemake -n` on the repository's configuration."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "snakemake", "-n", "-q", "rules"],
            cwd=REPO,
            check=True,
            capture_output=True,
        )
        times.append(time.perf_counter() - t0)
    return sorted(times)[len(times) // 2]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="small sizes: check that every benchmark runs")
    ap.add_argument("--only", nargs="*", help="run only these scripts")
    args = ap.parse_args()
    plan = QUICK if args.quick else FULL
    failed = []
    for script, extra in plan.items():
        if args.only and script not in args.only:
            continue
        if not (BENCH / script).exists():
            continue
        if script in NEEDS and not NEEDS[script].exists():
            print(f"\n===== {script}: skipped, it needs {NEEDS[script].relative_to(REPO)} (`make run`)")
            continue
        if script == "bench_naq.py" and PUBLISHED_PYTHON.exists():
            extra = [*extra, "--published-python", str(PUBLISHED_PYTHON)]
        print(f"\n===== {script} {' '.join(extra)}", flush=True)
        if subprocess.run([sys.executable, str(BENCH / script), *extra], cwd=REPO).returncode != 0:
            failed.append(script)
    if not args.only:
        print(f"\n===== snakemake -n on config.yaml: {dry_run_seconds():.2f} s (median of 3)")
    if failed:
        raise SystemExit(f"failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
