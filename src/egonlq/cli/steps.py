"""Commands of the step-grounding stage (Ego4D Goal-Step): ingest."""

from __future__ import annotations

import argparse
from pathlib import Path

from egonlq.cli.registry import command, log_stats


def _ingest_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--annotated", type=Path, nargs="+", required=True, help="goalstep_{train,valid}.json")
    p.add_argument("--test", type=Path, help="goalstep_test.json (descriptions and counts, no times)")
    p.add_argument("--groups", type=Path, required=True, help="goalstep_video_groups.tsv")
    p.add_argument("--out-dir", type=Path, required=True, help="<split>_queries.parquet, <split>_gt.json")
    p.add_argument("--quirks", type=Path, required=True, help="the quirk report (JSON)")


@command("steps-ingest", _ingest_args)
def steps_ingest(a: argparse.Namespace) -> None:
    """Goal-Step files to query tables (each step then its substeps) and NLQ-style ground truth, with the
    quirk report."""
    from egonlq.steps.goalstep import ingest

    log_stats("Goal-Step ingest", ingest(a.annotated, a.test, a.groups, a.out_dir, a.quirks))
