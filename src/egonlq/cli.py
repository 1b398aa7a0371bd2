"""Command-line entry points, one per workflow step: ``python -m egonlq.cli <command> ...``.

Each command parses its arguments, calls one function of the package and logs/writes what it returns.
Imports are local to each command so that a step pays only for the libraries it uses.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path

from egonlq.errors import InputError

log = logging.getLogger("egonlq")

COMMANDS: dict[str, tuple[Callable[[argparse.Namespace], None], Callable[[argparse.ArgumentParser], None]]] = {}


def command(name: str, configure: Callable[[argparse.ArgumentParser], None]):
    def register(fn: Callable[[argparse.Namespace], None]):
        COMMANDS[name] = (fn, configure)
        return fn

    return register


def _log_stats(title: str, stats: dict) -> None:
    log.info("%s: %s", title, json.dumps(stats, indent=1, sort_keys=True, default=str))


# ---------------------------------------------------------------------------------------------- demo world


def _demo_world_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--preset", default="demo")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--feature-name", default="demo_features")
    p.add_argument("--feature-dim", type=int, default=256)
    p.add_argument("--videos-dir", default="v1/full_scale")
    p.add_argument("--stats", type=Path, required=True)


@command("demo-world", _demo_world_args)
def demo_world(a: argparse.Namespace) -> None:
    from egonlq.demo_world import build_world
    from egonlq.io import write_json, write_manifest

    stats = build_world(
        a.out, preset=a.preset, seed=a.seed, feature_name=a.feature_name, feature_dim=a.feature_dim
    )
    for folder, pattern in ((a.out / "v1" / a.feature_name, "*.pt"), (a.out / a.videos_dir, "*.mp4")):
        folder.mkdir(parents=True, exist_ok=True)
        stats[f"manifest:{folder.name}"] = len(write_manifest(folder, pattern=pattern)["files"])
    stats["synthetic"] = True
    _log_stats("demo world", stats)
    write_json(stats, a.stats, indent=1)


# ---------------------------------------------------------------------------------------------- ingest


def _ingest_metadata_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--input", type=Path, required=True)
    p.add_argument("--videos", type=Path, required=True)
    p.add_argument("--report", type=Path, required=True)


@command("ingest-metadata", _ingest_metadata_args)
def ingest_metadata(a: argparse.Namespace) -> None:
    from egonlq.io import write_json, write_parquet
    from egonlq.metadata import ingest_metadata as run
    from egonlq.tables import VIDEOS

    table, report = run(a.input)
    write_parquet(table, a.videos, VIDEOS)
    out = {"source": str(a.input), "rows": table.num_rows, **report.to_dict()}
    _log_stats("metadata", out)
    write_json(out, a.report, indent=1)


def _ingest_nlq_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--input", type=Path, required=True)
    p.add_argument("--split", required=True)
    p.add_argument("--clips", type=Path, required=True)
    p.add_argument("--queries", type=Path, required=True)
    p.add_argument("--report", type=Path, required=True)


@command("ingest-nlq", _ingest_nlq_args)
def ingest_nlq(a: argparse.Namespace) -> None:
    from egonlq.annotations import ingest_nlq as run
    from egonlq.io import write_json, write_parquet
    from egonlq.tables import CLIPS, QUERIES

    clips, queries, report = run(a.input, a.split)
    write_parquet(clips, a.clips, CLIPS)
    write_parquet(queries, a.queries, QUERIES)
    out = {"source": str(a.input), "split": a.split, "clips": clips.num_rows, "queries": queries.num_rows,
           **report.to_dict()}
    _log_stats(f"nlq {a.split}", out)
    write_json(out, a.report, indent=1)


def _ingest_narrations_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--input", type=Path, required=True)
    p.add_argument("--videos", type=Path, required=True)
    p.add_argument("--narrations", type=Path, required=True)
    p.add_argument("--summaries", type=Path, required=True)
    p.add_argument("--report", type=Path, required=True)


@command("ingest-narrations", _ingest_narrations_args)
def ingest_narrations(a: argparse.Namespace) -> None:
    from egonlq.io import read_parquet, write_json
    from egonlq.narrations import ingest_narrations as run
    from egonlq.tables import VIDEOS

    known = set(read_parquet(a.videos, VIDEOS).column("video_uid").to_pylist())
    report = run(a.input, a.narrations, a.summaries, known_videos=known)
    out = {"source": str(a.input), **report.to_dict()}
    _log_stats("narrations", out)
    write_json(out, a.report, indent=1)


def _ingest_egoclip_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--input", type=Path, required=True)
    p.add_argument("--table", type=Path, required=True)
    p.add_argument("--report", type=Path, required=True)


@command("ingest-egoclip", _ingest_egoclip_args)
def ingest_egoclip(a: argparse.Namespace) -> None:
    from egonlq.egoclip import read_egoclip_csv
    from egonlq.io import write_json, write_parquet
    from egonlq.tables import EGOCLIP

    table, stats = read_egoclip_csv(a.input)
    write_parquet(table, a.table, EGOCLIP)
    counts = {k: v for k, v in stats.items() if k in ("malformed_lines", "bad_window") and v}
    out = {"source": str(a.input), **stats, "counts": {f"egoclip_{k}": v for k, v in counts.items()}}
    _log_stats("egoclip", out)
    write_json(out, a.report, indent=1)


def _validation_report_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--inputs", type=Path, nargs="+", required=True)
    p.add_argument("--out", type=Path, required=True)


@command("validation-report", _validation_report_args)
def validation_report(a: argparse.Namespace) -> None:
    from egonlq.io import read_json, write_json

    sources = {p.stem: read_json(p) for p in a.inputs}
    totals: dict[str, int] = {}
    for rep in sources.values():
        for kind, n in rep.get("counts", {}).items():
            totals[kind] = totals.get(kind, 0) + n
    out = {"quirk_totals": dict(sorted(totals.items())), "sources": sources}
    _log_stats("validation totals", out["quirk_totals"])
    write_json(out, a.out, indent=1)


# ---------------------------------------------------------------------------------------------- features


def _clip_features_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--clips", type=Path, required=True)
    p.add_argument("--videos", type=Path, required=True)
    p.add_argument("--feature-dir", type=Path, required=True)
    p.add_argument("--dim", type=int, required=True)
    p.add_argument("--mode", choices=("compatible", "corrected"), default="compatible")
    p.add_argument("--on-missing", choices=("error", "skip"), default="error")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--shapes", type=Path, required=True)
    p.add_argument("--stats", type=Path, required=True)


@command("clip-features", _clip_features_args)
def clip_features(a: argparse.Namespace) -> None:
    from egonlq.features import cut_clips
    from egonlq.io import read_parquet, write_json
    from egonlq.tables import CLIPS, VIDEOS

    clips = read_parquet(a.clips, CLIPS).to_pandas()
    videos = read_parquet(a.videos, VIDEOS).to_pandas()
    num_frames = dict(zip(videos["video_uid"], videos["num_frames"], strict=True))
    stats = cut_clips(
        clips, a.feature_dir, a.out, expected_dim=a.dim, mode=a.mode, on_missing=a.on_missing,
        num_frames=num_frames, shapes_json=a.shapes,
    )
    _log_stats("clip features", stats)
    write_json(stats, a.stats, indent=1)


# ---------------------------------------------------------------------------------------------- baselines


def _fit_prior_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--queries", type=Path, required=True)
    p.add_argument("--clips", type=Path, required=True)
    p.add_argument("--num-windows", type=int, default=5)
    p.add_argument("--grid", type=int, default=50)
    p.add_argument("--iou-threshold", type=float, default=0.3)
    p.add_argument("--out", type=Path, required=True)


@command("fit-prior", _fit_prior_args)
def fit_prior(a: argparse.Namespace) -> None:
    from egonlq.baselines import fit_prior as fit
    from egonlq.io import read_parquet, write_json
    from egonlq.tables import CLIPS, QUERIES

    queries = read_parquet(a.queries, QUERIES).to_pandas()
    clips = read_parquet(a.clips, CLIPS).to_pandas()
    prior = fit(queries, clips, n=a.num_windows, grid=a.grid, iou_threshold=a.iou_threshold)
    out = prior.to_dict()
    _log_stats("train prior", out)
    write_json(out, a.out, indent=1)


def _predict_baseline_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--kind", choices=("uniform", "prior"), required=True)
    p.add_argument("--queries", type=Path, required=True)
    p.add_argument("--clips", type=Path, required=True)
    p.add_argument("--prior", type=Path)
    p.add_argument("--num-windows", type=int, default=5)
    p.add_argument("--out", type=Path, required=True)


@command("predict-baseline", _predict_baseline_args)
def predict_baseline(a: argparse.Namespace) -> None:
    from egonlq.baselines import PriorModel, predict_baseline as predict
    from egonlq.io import read_json, read_parquet
    from egonlq.predictions import write_predictions
    from egonlq.tables import CLIPS, QUERIES

    queries = read_parquet(a.queries, QUERIES).to_pandas()
    clips = read_parquet(a.clips, CLIPS).to_pandas()
    prior = PriorModel.from_dict(read_json(a.prior)) if a.prior else None
    rows = predict(queries, clips, kind=a.kind, prior=prior, n=a.num_windows)
    write_predictions(rows, a.out, num_windows=a.num_windows)
    log.info("%s baseline: %d predictions for %d queries (%d without text are not predicted)",
             a.kind, len(rows), len(queries), int((~queries["has_text"]).sum()))


# ---------------------------------------------------------------------------------------------- evaluation


def _evaluate_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--gt", type=Path, required=True)
    p.add_argument("--predictions", type=Path, required=True)
    p.add_argument("--queries", type=Path)
    p.add_argument("--predictor", required=True)
    p.add_argument("--split", required=True)
    p.add_argument("--thresholds", type=float, nargs="+", default=[0.3, 0.5, 0.01])
    p.add_argument("--ks", type=int, nargs="+", default=[1, 3, 5])
    p.add_argument("--exclude", nargs="*", default=[])
    p.add_argument("--out", type=Path, required=True)


@command("evaluate", _evaluate_args)
def evaluate(a: argparse.Namespace) -> None:
    from egonlq.evaluation import evaluate_both, load_ground_truth, write_metrics

    gt = load_ground_truth(a.gt)
    result = evaluate_both(gt, a.predictions, thresholds=tuple(a.thresholds), ks=tuple(a.ks),
                           exclude=tuple(a.exclude))
    result.update({"predictor": a.predictor, "split": a.split, "gt": str(a.gt),
                   "predictions": str(a.predictions)})
    for mode in ("official", "strict"):
        if "table" in result.get(mode, {}):
            log.info("%s mode, %s / %s:\n%s", mode, a.predictor, a.split, result[mode]["table"])
    write_metrics(result, a.out)


def _metrics_table_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--inputs", type=Path, nargs="+", required=True)
    p.add_argument("--parquet", type=Path, required=True)
    p.add_argument("--markdown", type=Path, required=True)


@command("metrics-table", _metrics_table_args)
def metrics_table(a: argparse.Namespace) -> None:
    from egonlq.evaluation import metrics_table as run

    df = run(a.inputs, a.parquet, a.markdown)
    log.info("metrics table: %d rows\n%s", len(df), a.markdown.read_text())


def _validate_predictions_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("predictions", type=Path)
    p.add_argument("--gt", type=Path)


@command("validate-predictions", _validate_predictions_args)
def validate_predictions(a: argparse.Namespace) -> None:
    from egonlq.evaluation import load_ground_truth
    from egonlq.predictions import validate_predictions as check

    problems = check(a.predictions, gt=load_ground_truth(a.gt) if a.gt else None)
    for problem in problems:
        print(problem)
    if problems:
        raise SystemExit(f"{a.predictions}: {len(problems)} problem(s)")
    print(f"{a.predictions}: valid")


# ---------------------------------------------------------------------------------------------- main


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="egonlq", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (fn, configure) in COMMANDS.items():
        p = sub.add_parser(name, help=(fn.__doc__ or "").strip().split("\n")[0] or None)
        configure(p)
        p.set_defaults(func=fn)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        stream=sys.stderr)
    t0 = time.perf_counter()
    try:
        args.func(args)
    except InputError as e:
        log.error("bad input: %s", e)
        raise SystemExit(2) from e
    log.info("%s done in %.1f s", args.command, time.perf_counter() - t0)


if __name__ == "__main__":
    main()
