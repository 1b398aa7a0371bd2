"""Commands of the grounding stage: text cache, VSLNet training and prediction, the experiment table."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from egonlq.cli.registry import command, log, log_stats, set_threads

COMPAT_HELP = (
    "official: as the published VSLNet code (encoder outputs kept at padded positions, the frozen encoder in "
    "train mode while training, transformers-4 AdamW; needs the text encoder, not the cache)"
)


def resolve_text_model(name: str) -> Path:
    from egonlq.grounding.text_encoder import default_model_path

    return default_model_path() if name == "default" else Path(name)


def _text_cache_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--tables", type=Path, nargs="+", required=True, help="tables with a `query` column")
    p.add_argument("--model", default="default")
    p.add_argument("--max-len", type=int, default=128)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--stats", type=Path, required=True)


@command("text-cache", _text_cache_args)
def text_cache(a: argparse.Namespace) -> None:
    import pyarrow.compute as pc

    from egonlq.grounding.text_encoder import TextEncoder, build_text_cache
    from egonlq.io import read_parquet, write_json

    texts: list[str] = []
    for path in a.tables:
        column = read_parquet(path).column("query")
        texts += [t for t in pc.drop_null(column).to_pylist() if t.strip()]
    encoder = TextEncoder(resolve_text_model(a.model), max_len=a.max_len)
    stats = build_text_cache(texts, encoder, a.out)
    log_stats("text cache", stats)
    write_json(stats, a.stats, indent=1)


def _train_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--spec", required=True, help="TrainSpec as JSON (without the data-given dims)")
    p.add_argument("--video-dim", type=int, required=True)
    for name in (
        "train-queries",
        "train-clips",
        "train-features",
        "val-queries",
        "val-clips",
        "val-features",
        "val-gt",
    ):
        p.add_argument(f"--{name}", type=Path, required=True)
    p.add_argument("--text-cache", type=Path)
    p.add_argument("--text-model", default="default")
    p.add_argument("--init-from", type=Path)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="auto")
    p.add_argument("--compat", choices=["egonlq", "official"], default="egonlq", help=COMPAT_HELP)
    p.add_argument("--out-dir", type=Path, required=True)
    p.add_argument(
        "--restart", action="store_true", help="start over even when the out dir holds a resumable last.pt"
    )
    _provenance_args(p)


def _provenance_args(p: argparse.ArgumentParser) -> None:
    from egonlq.data.provenance import add_arguments

    add_arguments(p)


def _provenance(a: argparse.Namespace, **resolved: object):
    """The resolved config the rule passed, with the sections the command resolved itself (``resolved``), and
    the data fingerprint: recorded with the result."""
    from egonlq.data.provenance import from_arguments

    return from_arguments(a, resolved)


@command("train", _train_args)
def train(a: argparse.Namespace) -> None:
    from egonlq.grounding.text_encoder import TextCache, TextEncoder
    from egonlq.grounding.train import train as run
    from egonlq.grounding.train_spec import TrainSpec

    set_threads(a.threads)
    text_model = resolve_text_model(a.text_model)
    if a.text_cache:
        text_dim = int(TextCache.load(a.text_cache).metadata["hidden_size"])
    else:
        text_dim = TextEncoder(text_model).hidden_size
    d = json.loads(a.spec)
    d["model"] = {**d.get("model", {}), "video_dim": a.video_dim, "text_dim": text_dim}
    spec = TrainSpec.from_dict(d)
    summary = run(
        spec,
        train_queries=a.train_queries,
        train_clips=a.train_clips,
        train_features=a.train_features,
        val_queries=a.val_queries,
        val_clips=a.val_clips,
        val_features=a.val_features,
        val_gt=a.val_gt,
        text_cache=a.text_cache,
        text_model=text_model,
        out_dir=a.out_dir,
        init_from=a.init_from,
        device=a.device,
        restart=a.restart,
        progress=True,  # a bar on a terminal, a line per interval in a log (egonlq.progress)
        compat=a.compat,
        provenance=_provenance(a, run=d),
    )
    log_stats("training", summary)


def _predict_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model-dir", type=Path, required=True)
    p.add_argument("--queries", type=Path, required=True)
    p.add_argument("--clips", type=Path, required=True)
    p.add_argument("--features", type=Path, required=True)
    p.add_argument("--text-cache", type=Path)
    p.add_argument("--text-model", default="default")
    p.add_argument("--label-mode", default="compatible")
    p.add_argument("--compat", choices=["egonlq", "official"], default="egonlq", help=COMPAT_HELP)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", type=Path, required=True)


@command("predict", _predict_args)
def predict(a: argparse.Namespace) -> None:
    from egonlq.grounding.predict import predict_split

    set_threads(a.threads)
    stats = predict_split(
        a.model_dir,
        queries=a.queries,
        clips=a.clips,
        features=a.features,
        text_cache=a.text_cache,
        text_model=resolve_text_model(a.text_model),
        out_path=a.out,
        label_mode=a.label_mode,
        progress=True,  # a bar on a terminal, a line per interval in a log (egonlq.progress)
        compat=a.compat,
    )
    log_stats("predictions", stats)


def _experiment_table_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--metrics", type=Path, nargs="+", required=True)
    p.add_argument("--curves", type=Path, nargs="*", default=[])
    p.add_argument("--vslnet", required=True, help="the vslnet config section as JSON")
    p.add_argument("--experiments", required=True, help="the experiments config section as JSON")
    p.add_argument("--sources", required=True, help="comma-separated query sources")
    p.add_argument("--synthetic", action="store_true")
    p.add_argument("--parquet", type=Path, required=True)
    p.add_argument("--markdown", type=Path, required=True)
    p.add_argument("--curves-png", type=Path, required=True)
    p.add_argument("--recall-png", type=Path, required=True)
    _provenance_args(p)


@command("experiment-table", _experiment_table_args)
def experiment_table(a: argparse.Namespace) -> None:
    from egonlq.grounding.experiment_table import aggregate_experiments
    from egonlq.grounding.experiments import parse_experiments
    from egonlq.grounding.plots import plot_recall_by_run, plot_training_curves

    runs = parse_experiments(
        json.loads(a.vslnet), json.loads(a.experiments), available_sources=set(a.sources.split(","))
    )
    table = aggregate_experiments(
        a.metrics,
        runs,
        out_parquet=a.parquet,
        out_markdown=a.markdown,
        synthetic=a.synthetic,
        provenance=_provenance(a),
    )
    # metrics.csv lives in results/vslnet/<run>/seed<seed>/
    curves = {f"vslnet_{p.parent.parent.name}_{p.parent.name}": p for p in a.curves}
    plot_training_curves(curves, a.curves_png, runs=runs, synthetic=a.synthetic)
    plot_recall_by_run(table, a.recall_png, split="val", runs=runs, synthetic=a.synthetic)
    log.info("experiment table:\n%s", a.markdown.read_text())


def _recipe_table_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--recipe", required=True, help="the recipe's name (egonlq.grounding.recipes)")
    p.add_argument("--metrics", type=Path, nargs="+", required=True, help="val metrics of its predictors")
    p.add_argument("--vslnet", required=True, help="the resolved vslnet defaults as JSON")
    p.add_argument("--recipes", required=True, help="the recipes config section as JSON")
    p.add_argument("--sources", required=True, help="comma-separated query sources")
    p.add_argument("--synthetic", action="store_true")
    p.add_argument("--parquet", type=Path, required=True)
    p.add_argument("--markdown", type=Path, required=True)
    p.add_argument("--plot", type=Path, required=True)


@command("recipe-table", _recipe_table_args)
def recipe_table(a: argparse.Namespace) -> None:
    from egonlq.grounding.recipes import plan_recipes, write_recipe_table

    sources = set(a.sources.split(","))
    plan = plan_recipes(json.loads(a.vslnet), json.loads(a.recipes), available_sources=sources)
    write_recipe_table(
        plan,
        a.recipe,
        a.metrics,
        out_parquet=a.parquet,
        out_markdown=a.markdown,
        out_png=a.plot,
        synthetic=a.synthetic,
    )
    log.info("recipe table:\n%s", a.markdown.read_text())
