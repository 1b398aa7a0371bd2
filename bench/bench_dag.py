"""How long a user waits for Snakemake to plan: `snakemake -n` on an up-to-date demo, and the parse and plan
of a generation DAG with 1,000 shards (a real-data configuration).

Baseline: Snakemake's own floor, the dry-run of a one-rule workflow in the same interpreter (start-up,
parsing, DAG and metadata machinery), measured in the same run. Goals (issue 14): the up-to-date demo
within 2 s on a quiet machine, the 1,000-shard plan within 10 s. Medians of --repeat runs with min and max.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "tests" / "fixtures" / "tiny" / "config.yaml"


def _time(cmd: list[str], cwd: Path, repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        subprocess.run(cmd, cwd=cwd, check=True, capture_output=True)
        times.append(time.perf_counter() - t0)
    return times


def _show(name: str, times: list[float], floor: float) -> None:
    med = statistics.median(times)
    spread = f"(min {min(times):.2f}, max {max(times):.2f})"
    print(f"{name:<44} {med:7.2f} s  {spread}  {med / floor:5.1f}x the floor")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--shards", type=int, default=1000)
    ap.add_argument("--demo-dir", type=Path, default=REPO, help="a folder where the demo run is up to date")
    a = ap.parse_args()
    snake = [sys.executable, "-m", "snakemake"]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        floor_dir = tmp / "floor"
        floor_dir.mkdir()
        (floor_dir / "Snakefile").write_text('rule all:\n    output: "x"\n    shell: "touch {output}"\n')
        floor = _time([*snake, "-n", "--cores", "1"], floor_dir, a.repeat)
        floor_med = statistics.median(floor)
        print(f"baseline: Snakemake's floor (one-rule workflow) {floor_med:.2f} s")
        _show("snakemake -n, one-rule workflow (floor)", floor, floor_med)
        demo = _time([*snake, "-n", "-s", str(REPO / "Snakefile"), "--cores", "1"], a.demo_dir, a.repeat)
        _show(f"snakemake -n, demo in {a.demo_dir.name}/", demo, floor_med)
        shards_dir = tmp / "shards"
        shards_dir.mkdir()
        config = yaml.safe_load(TINY.read_text())
        config.setdefault("queries", {}).setdefault("generation", {})["shards"] = a.shards
        (shards_dir / "config.yaml").write_text(yaml.safe_dump(config))
        plan = _time([*snake, "-n", "-q", "rules", "-s", str(REPO / "Snakefile"), "--cores", "1"], shards_dir,
                     a.repeat)  # fmt: skip
        _show(f"snakemake -n, {a.shards} generation shards", plan, floor_med)
        shutil.rmtree(shards_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
