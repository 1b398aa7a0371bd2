"""Commands of the demo stage: the embedded demo world."""

from __future__ import annotations

import argparse
from pathlib import Path

from egonlq.cli.registry import command, log_stats


def _demo_world_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--preset", default="demo")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--feature-name", default="demo_features")
    p.add_argument("--feature-dim", type=int, default=256)
    p.add_argument("--videos-dir", default="v1/full_scale", help="rendered mp4 folder, relative to --out")
    p.add_argument("--stats", type=Path, required=True)


@command("demo-world", _demo_world_args)
def demo_world(a: argparse.Namespace) -> None:
    from egonlq.demo.world import build_world
    from egonlq.io import write_json, write_manifest

    stats = build_world(
        a.out,
        preset=a.preset,
        seed=a.seed,
        feature_name=a.feature_name,
        feature_dim=a.feature_dim,
        videos_dir=a.videos_dir,
    )
    for folder, pattern in ((a.out / "v1" / a.feature_name, "*.pt"), (a.out / a.videos_dir, "*.mp4")):
        folder.mkdir(parents=True, exist_ok=True)
        stats[f"manifest:{folder.name}"] = len(write_manifest(folder, pattern=pattern)["files"])
    stats["synthetic"] = True
    log_stats("demo world", stats)
    write_json(stats, a.stats, indent=1)
