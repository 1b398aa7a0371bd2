"""Commands of the evaluation stage: baselines, the official metric, the metrics table, prediction checks."""

from __future__ import annotations

import argparse
from pathlib import Path

from egonlq.cli.registry import command, log, log_stats

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
    from egonlq.data.tables import CLIPS, QUERIES
    from egonlq.evaluation.baselines import fit_prior as fit
    from egonlq.io import read_parquet, write_json

    queries = read_parquet(a.queries, QUERIES).to_pandas()
    clips = read_parquet(a.clips, CLIPS).to_pandas()
    prior = fit(queries, clips, n=a.num_windows, grid=a.grid, iou_threshold=a.iou_threshold)
    out = prior.to_dict()
    log_stats("train prior", out)
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
    from egonlq.data.tables import CLIPS, QUERIES
    from egonlq.evaluation.baselines import PriorModel
    from egonlq.evaluation.baselines import predict_baseline as predict
    from egonlq.evaluation.predictions import write_predictions
    from egonlq.io import read_json, read_parquet

    queries = read_parquet(a.queries, QUERIES).to_pandas()
    clips = read_parquet(a.clips, CLIPS).to_pandas()
    prior = PriorModel.from_dict(read_json(a.prior)) if a.prior else None
    rows = predict(queries, clips, kind=a.kind, prior=prior, n=a.num_windows)
    write_predictions(rows, a.out, num_windows=a.num_windows)
    log.info(
        "%s baseline: %d predictions for %d queries (%d without text are not predicted)",
        a.kind,
        len(rows),
        len(queries),
        int((~queries["has_text"]).sum()),
    )


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
    from egonlq.evaluation.ground_truth import load_ground_truth
    from egonlq.evaluation.metric import evaluate_both, write_metrics

    gt = load_ground_truth(a.gt)
    result = evaluate_both(
        gt, a.predictions, thresholds=tuple(a.thresholds), ks=tuple(a.ks), exclude=tuple(a.exclude)
    )
    result.update(
        {"predictor": a.predictor, "split": a.split, "gt": str(a.gt), "predictions": str(a.predictions)}
    )
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
    from egonlq.evaluation.metric import metrics_table as run

    df = run(a.inputs, a.parquet, a.markdown)
    log.info("metrics table: %d rows\n%s", len(df), a.markdown.read_text())


def _validate_predictions_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("predictions", type=Path)
    p.add_argument("--gt", type=Path)


@command("validate-predictions", _validate_predictions_args)
def validate_predictions(a: argparse.Namespace) -> None:
    from egonlq.evaluation.ground_truth import load_ground_truth
    from egonlq.evaluation.predictions import validate_predictions as check

    problems = check(a.predictions, gt=load_ground_truth(a.gt) if a.gt else None)
    for problem in problems:
        print(problem)
    if problems:
        raise SystemExit(f"{a.predictions}: {len(problems)} problem(s)")
    print(f"{a.predictions}: valid")
