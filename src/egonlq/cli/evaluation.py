"""Commands of the evaluation stage: baselines, the official metric, the metrics table, prediction checks."""

from __future__ import annotations

import argparse
from pathlib import Path

from egonlq.cli.registry import command, log, log_stats

# ---------------------------------------------------------------------------------------------- baselines


def _fit_prior_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--queries", type=Path, required=True, help="train queries table (GT windows to cover)")
    p.add_argument("--clips", type=Path, required=True, help="train clips table (clip durations)")
    p.add_argument("--num-windows", type=int, default=5, help="ranked windows to choose (default 5)")
    p.add_argument("--grid", type=int, default=50, help="candidate starts/lengths per clip duration")
    p.add_argument("--iou-threshold", type=float, default=0.3, help="IoU above which a window covers a query")
    p.add_argument("--out", type=Path, required=True, help="the prior as JSON")


@command("fit-prior", _fit_prior_args)
def fit_prior(a: argparse.Namespace) -> None:
    """Fit the prior baseline: ranked windows (clip-duration units) covering most train GT windows."""
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
    p.add_argument("--kind", choices=("uniform", "prior"), required=True, help="which baseline")
    p.add_argument("--queries", type=Path, required=True, help="queries table of the split to predict")
    p.add_argument("--clips", type=Path, required=True, help="clips table of that split (durations)")
    p.add_argument("--prior", type=Path, help="the fit-prior JSON (kind prior)")
    p.add_argument("--num-windows", type=int, default=5, help="windows per query (default 5)")
    p.add_argument("--out", type=Path, required=True, help="challenge-format predictions JSON")


@command("predict-baseline", _predict_baseline_args)
def predict_baseline(a: argparse.Namespace) -> None:
    """Predict every query with text by a baseline (uniform windows or the fitted prior)."""
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


NO_TEMPLATE = "(no template)"  # the group of queries without a template (or absent from --queries)


def _evaluate_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--gt", type=Path, required=True, help="annotated NLQ JSON of the split")
    p.add_argument("--predictions", type=Path, required=True, help="challenge-format predictions JSON")
    p.add_argument(
        "--queries", type=Path, help="queries table of the split: adds strict recall per template (by_group)"
    )
    p.add_argument("--predictor", required=True, help="the predictor's name, stored in the output")
    p.add_argument("--split", required=True, help="the split's name, stored in the output")
    p.add_argument("--thresholds", type=float, nargs="+", default=[0.3, 0.5, 0.01], help="IoU thresholds")
    p.add_argument("--ks", type=int, nargs="+", default=[1, 3, 5], help="the k of Recall@k")
    p.add_argument(
        "--exclude", nargs="*", default=[], help="strict-mode exclusion filters (exclude_zero_length, ...)"
    )
    p.add_argument("--out", type=Path, required=True, help="metrics JSON (official and strict side by side)")
    _provenance_args(p)


def _provenance_args(p: argparse.ArgumentParser) -> None:
    from egonlq.data.provenance import add_arguments

    add_arguments(p)


def _provenance(a: argparse.Namespace):
    from egonlq.data.provenance import from_arguments

    return from_arguments(a)


@command("evaluate", _evaluate_args)
def evaluate(a: argparse.Namespace) -> None:
    """Score predictions in official and strict mode; exits non-zero when neither mode could score them.

    One mode failing while the other scores (e.g. strict refusing a duplicate that official mode counts
    twice) is normal: the refusal is recorded in the JSON. A predictions file that cannot be read, or one
    that both modes refuse, produces no metrics and ends the command with a one-line reason.
    """
    from egonlq.data.tables import QUERIES
    from egonlq.evaluation.ground_truth import load_ground_truth
    from egonlq.evaluation.metric import MODES, evaluate_both, write_metrics
    from egonlq.io import read_parquet

    gt = load_ground_truth(a.gt)
    groups = None
    if a.queries is not None:
        q = read_parquet(a.queries, QUERIES).to_pandas()
        keys = zip(q["clip_uid"].tolist(), q["annotation_uid"].tolist(), q["query_idx"].tolist(), strict=True)
        groups = dict(zip(keys, q["template"].fillna(NO_TEMPLATE).tolist(), strict=True))
    result = evaluate_both(
        gt,
        a.predictions,
        thresholds=tuple(a.thresholds),
        ks=tuple(a.ks),
        exclude=tuple(a.exclude),
        groups=groups,
        missing_group=NO_TEMPLATE,
    )
    failed = [mode for mode in MODES if "error" in result[mode]]
    if len(failed) == len(MODES):
        reasons = "; ".join(f"{m}: {result[m]['error'].splitlines()[0]}" for m in MODES)
        raise SystemExit(f"evaluate: no mode could score {a.predictions} ({reasons})")
    result.update(
        {"predictor": a.predictor, "split": a.split, "gt": str(a.gt), "predictions": str(a.predictions)}
    )
    if groups is not None:
        result["group_by"] = "template"
    for mode in MODES:
        if "table" in result[mode]:
            log.info("%s mode, %s / %s:\n%s", mode, a.predictor, a.split, result[mode]["table"])
    for row in result["strict"].get("by_group", []):
        log.info("strict, template %s: %s", row["group"], {k: v for k, v in row.items() if k != "group"})
    write_metrics(result, a.out, _provenance(a))


def _metrics_table_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--inputs", type=Path, nargs="+", required=True, help="metrics JSONs of evaluate")
    p.add_argument("--parquet", type=Path, required=True, help="the table, one row per predictor/split/mode")
    p.add_argument("--markdown", type=Path, required=True, help="the same table for the report")
    _provenance_args(p)


@command("metrics-table", _metrics_table_args)
def metrics_table(a: argparse.Namespace) -> None:
    """Gather metrics JSONs into one table (parquet and markdown)."""
    from egonlq.evaluation.metric import metrics_table as run

    df = run(a.inputs, a.parquet, a.markdown, provenance=_provenance(a))
    log.info("metrics table: %d rows\n%s", len(df), a.markdown.read_text())


def _validate_predictions_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("predictions", type=Path, help="challenge-format predictions JSON")
    p.add_argument("--gt", type=Path, help="annotated NLQ JSON: also check keys, coverage and clip bounds")
    p.add_argument(
        "--min-coverage",
        type=float,
        default=1.0,
        help="with --gt: the share of GT queries that must be answered (default 1.0: all)",
    )
    p.add_argument(
        "--allow-outside", action="store_true", help="with --gt: accept windows outside [0, clip duration]"
    )


@command("validate-predictions", _validate_predictions_args)
def validate_predictions(a: argparse.Namespace) -> None:
    """Check a predictions file: format problems, and with --gt unknown keys, coverage and clip bounds.

    Exits non-zero on any format problem, on coverage below --min-coverage, and on windows outside their
    clip unless --allow-outside.
    """
    from egonlq.evaluation.ground_truth import load_ground_truth
    from egonlq.evaluation.predictions import coverage
    from egonlq.evaluation.predictions import validate_predictions as check
    from egonlq.io import read_json

    gt = load_ground_truth(a.gt) if a.gt else None
    obj = read_json(a.predictions)
    problems = check(obj, gt=gt)
    for problem in problems:
        print(problem)
    verdict = [f"{len(problems)} problem(s)"] if problems else []
    if gt is None:
        print("no --gt: coverage and clip bounds not checked")
    else:
        report = coverage(obj, gt)
        print("\n".join(report.lines()))
        if report.fraction < a.min_coverage:
            verdict.append(f"coverage {report.fraction * 100:.1f} % below {a.min_coverage * 100:.1f} %")
        if report.outside and not a.allow_outside:
            verdict.append(f"{len(report.outside)} window(s) outside their clip")
    if verdict:
        raise SystemExit(f"{a.predictions}: " + "; ".join(verdict))
    print(f"{a.predictions}: valid")
