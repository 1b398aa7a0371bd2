"""Commands of the dual-encoder stage: pairs, pooled texts, training (torchrun-able), evaluation, table."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from egonlq.cli.registry import command, log, log_stats, set_threads


def _text_model(name: str) -> Path:
    from egonlq.grounding.text_encoder import default_model_path

    return default_model_path() if name == "default" else Path(name)


def _pairs_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--curated", type=Path, required=True)
    p.add_argument("--generated", type=Path, nargs="*", default=[])
    p.add_argument("--guard-videos", type=Path, nargs="+", required=True, help="NLQ val/test videos tables")
    p.add_argument("--heldout-fraction", type=float, default=0.2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--stats", type=Path, required=True)


@command("dualenc-pairs", _pairs_args)
def dualenc_pairs(a: argparse.Namespace) -> None:
    from egonlq.dualenc.pairs import PAIRS, build_pairs, guard_videos
    from egonlq.io import read_parquet, write_json, write_parquet
    from egonlq.queries.curation import CURATED
    from egonlq.queries.llm_queries import GENERATED

    table, stats = build_pairs(
        read_parquet(a.curated, CURATED),
        [read_parquet(p, GENERATED) for p in a.generated],
        guard=guard_videos(a.guard_videos),
        heldout_fraction=a.heldout_fraction,
        seed=a.seed,
    )
    write_parquet(table, a.out, PAIRS)
    log_stats("pairs", stats)
    write_json(stats, a.stats, indent=1)


def _text_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--pairs", type=Path, required=True)
    p.add_argument("--queries", type=Path, nargs="*", default=[], help="NLQ query tables (zero-shot)")
    p.add_argument("--model", default="default")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--stats", type=Path, required=True)


@command("dualenc-text", _text_args)
def dualenc_text(a: argparse.Namespace) -> None:
    import pyarrow.compute as pc

    from egonlq.dualenc.pairs import read_pairs
    from egonlq.dualenc.text import PooledTextEncoder, build_pooled_cache
    from egonlq.io import read_parquet, write_json

    set_threads(a.threads)
    encoder = PooledTextEncoder(_text_model(a.model))  # refuses a folder that is not an encoder first
    texts = read_pairs(a.pairs).column("text").to_pylist()
    for path in a.queries:
        texts += pc.drop_null(read_parquet(path).column("query")).to_pylist()
    stats = build_pooled_cache(texts, encoder, a.out)
    log_stats("pooled texts", stats)
    write_json(stats, a.stats, indent=1)


def _train_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--spec", required=True, help="DualEncoderSpec as JSON (without the data-given dims)")
    p.add_argument("--pairs", type=Path, required=True)
    p.add_argument("--text-cache", type=Path, required=True)
    p.add_argument("--text-model", default="default")
    p.add_argument("--feature-dir", type=Path, required=True)
    p.add_argument("--video-dim", type=int, required=True)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="auto")
    p.add_argument("--out-dir", type=Path, required=True)


@command("dualenc-train", _train_args)
def dualenc_train(a: argparse.Namespace) -> None:
    """Train a dual encoder; run it under ``torchrun --nproc-per-node N`` for DistributedDataParallel."""
    from egonlq.dualenc.text import PooledTexts
    from egonlq.dualenc.train import DualEncoderSpec, train

    set_threads(a.threads)
    text_model = _text_model(a.text_model)
    text_dim = PooledTexts.load(a.text_cache, model_path=text_model).hidden_size
    d = json.loads(a.spec)
    d["model"] = {
        **d.get("model", {}),
        "video_dim": a.video_dim,
        "text_dim": text_dim,
        "text_model": str(text_model.name),
    }
    summary = train(
        DualEncoderSpec.from_dict(d),
        pairs_path=a.pairs,
        text_cache=a.text_cache,
        text_model=text_model,
        feature_dir=a.feature_dir,
        out_dir=a.out_dir,
        device=a.device,
        progress=True,  # a bar on a terminal, a line per interval in a log (egonlq.progress)
    )
    log_stats("dual encoder training", summary)


def _embedder_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model-dir", type=Path, required=True)
    p.add_argument("--text-cache", type=Path, required=True)
    p.add_argument("--text-model", default="default")
    p.add_argument("--feature-dir", type=Path, required=True)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", type=Path, required=True)


def _eval_args(p: argparse.ArgumentParser) -> None:
    _embedder_args(p)
    p.add_argument("--pairs", type=Path, required=True)
    p.add_argument("--seed", type=int, default=0)


@command("dualenc-eval", _eval_args)
def dualenc_eval(a: argparse.Namespace) -> None:
    """EgoMCQ-style accuracy and retrieval on the held-out narrations."""
    from egonlq.dualenc.evaluate import Embedder, evaluate_heldout, heldout_pool
    from egonlq.io import write_json

    set_threads(a.threads)
    pool = heldout_pool(a.pairs)
    embedder = Embedder.load(
        a.model_dir,
        text_cache=a.text_cache,
        text_model=_text_model(a.text_model),
        feature_dir=a.feature_dir,
        video_uids=pool["video_uid"].unique().tolist(),
    )
    result = evaluate_heldout(embedder, pool, seed=a.seed, where=a.pairs)
    log_stats("held-out evaluation", result)
    write_json(result, a.out, indent=1)


def _predict_args(p: argparse.ArgumentParser) -> None:
    _embedder_args(p)
    p.add_argument("--queries", type=Path, required=True)
    p.add_argument("--clips", type=Path, required=True)
    p.add_argument("--window-sec", type=float, nargs="+", default=[2.0, 4.0, 8.0, 16.0])
    p.add_argument("--stride", type=float, default=0.5)
    p.add_argument("--nms-iou", type=float, default=0.5)


@command("dualenc-predict", _predict_args)
def dualenc_predict(a: argparse.Namespace) -> None:
    """Zero-shot NLQ predictions (challenge format) of a split."""
    from egonlq.dualenc.evaluate import Embedder
    from egonlq.dualenc.zeroshot import clip_videos, predict_zero_shot
    from egonlq.evaluation.predictions import write_predictions

    set_threads(a.threads)
    embedder = Embedder.load(
        a.model_dir,
        text_cache=a.text_cache,
        text_model=_text_model(a.text_model),
        feature_dir=a.feature_dir,
        video_uids=clip_videos(a.clips),
    )
    rows, stats = predict_zero_shot(
        embedder,
        a.queries,
        a.clips,
        window_sec=a.window_sec,
        stride=a.stride,
        nms_iou=a.nms_iou,
        progress=True,  # a bar on a terminal, a line per interval in a log (egonlq.progress)
    )
    write_predictions(rows, a.out)
    log_stats("zero-shot NLQ", stats)


def _features_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model-dir", type=Path, required=True, help="a trained dual encoder")
    p.add_argument("--text-model", default="default", help="its text encoder (when it trained layers)")
    p.add_argument("--feature-dir", type=Path, required=True, help="the input set's <video_uid>.pt files")
    p.add_argument("--feature-set", required=True, help="the input set's name (its sidecar gives the grid)")
    p.add_argument("--window-rows", type=int, default=3, help="odd: input rows embedded around each row")
    p.add_argument("--name", required=True, help="the new set's name (its sidecar)")
    p.add_argument("--backbone", required=True, help="the new set's backbone (its sidecar)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out-dir", type=Path, required=True, help="<video_uid>.pt, official layout")
    p.add_argument("--stats", type=Path, required=True)


@command("dualenc-features", _features_args)
def dualenc_features(a: argparse.Namespace) -> None:
    """The frozen video tower over every video's rows: a new feature set on the input's time grid."""
    from egonlq.dualenc.evaluate import load_model
    from egonlq.dualenc.features import embed_feature_set
    from egonlq.io import write_json, write_manifest

    set_threads(a.threads)
    model, _ = load_model(a.model_dir, _text_model(a.text_model))
    stats = embed_feature_set(
        model,
        a.feature_dir,
        a.feature_set,
        a.out_dir,
        name=a.name,
        backbone=a.backbone,
        window_rows=a.window_rows,
        progress=True,  # a bar on a terminal, a line per interval in a log (egonlq.progress)
    )
    write_manifest(a.out_dir, pattern="*.pt")
    log_stats("dual encoder features", stats)
    write_json(stats, a.stats, indent=1)


def _table_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--runs", required=True, help="dual_encoder.runs as JSON")
    p.add_argument("--seeds", type=int, nargs="+", required=True)
    p.add_argument("--sources", required=True, help="comma-separated available sources")
    p.add_argument("--heldout", type=Path, nargs="*", default=[], help="<root>/<run>/seed<seed>/heldout.json")
    p.add_argument("--nlq", type=Path, nargs="*", default=[], help="eval/dualenc_<run>_seed<seed>/val.json")
    p.add_argument("--reference", type=Path, nargs="*", default=[], help="VSLNet eval JSONs on val")
    p.add_argument("--synthetic", action="store_true")
    p.add_argument("--parquet", type=Path, required=True)
    p.add_argument("--markdown", type=Path, required=True)
    p.add_argument("--plot", type=Path, required=True)


@command("dualenc-table", _table_args)
def dualenc_table(a: argparse.Namespace) -> None:
    from egonlq.dualenc.experiments import build_table, parse_runs, write_outputs

    runs, skipped = parse_runs(json.loads(a.runs), set(a.sources.split(",")))
    run_dirs = {(p.parent.parent.name, int(p.parent.name.removeprefix("seed"))): p.parent for p in a.heldout}
    nlq = {}
    for path in a.nlq:
        run, seed = path.parent.name.removeprefix("dualenc_").rsplit("_seed", 1)
        nlq[(run, int(seed))] = path
    table = build_table(
        runs, skipped, a.seeds, run_dirs=run_dirs, nlq_metrics=nlq, reference_metrics=a.reference
    )
    write_outputs(table, parquet=a.parquet, md=a.markdown, png=a.plot, synthetic=a.synthetic)
    log.info("dual encoder table:\n%s", a.markdown.read_text())


def _feature_table_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--baseline-label", required=True, help="the input feature set's name")
    p.add_argument("--baseline", type=Path, nargs="+", required=True, help="its VSLNet runs' val metrics")
    p.add_argument("--dualenc-label", required=True, help="the dual encoder's feature set's name")
    p.add_argument("--dualenc", type=Path, nargs="+", required=True, help="the same runs' on its features")
    p.add_argument("--synthetic", action="store_true")
    p.add_argument("--parquet", type=Path, required=True)
    p.add_argument("--markdown", type=Path, required=True)


@command("dualenc-feature-table", _feature_table_args)
def dualenc_feature_table(a: argparse.Namespace) -> None:
    """VSLNet on the input features vs on the dual encoder's features, over seeds."""
    from egonlq.dualenc.feature_table import build_table, write_outputs

    table = build_table((a.baseline_label, a.baseline), (a.dualenc_label, a.dualenc))
    text = write_outputs(
        table, a.baseline_label, a.dualenc_label, parquet=a.parquet, md=a.markdown, synthetic=a.synthetic
    )
    log.info("VSLNet feature table:\n%s", text)


def _recipe_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--table", type=Path, required=True, help="the dual encoder's table (table.parquet)")
    p.add_argument("--synthetic", action="store_true")
    p.add_argument("--parquet", type=Path, required=True)
    p.add_argument("--markdown", type=Path, required=True)
    p.add_argument("--plot", type=Path, required=True)


@command("dualenc-recipe", _recipe_args)
def dualenc_recipe(a: argparse.Namespace) -> None:
    """LaViLa's claim against the dual encoder's table: claim first, verdict last (issue 17)."""
    from egonlq.dualenc.recipe import write_dualenc_recipe

    write_dualenc_recipe(
        a.table, out_parquet=a.parquet, out_markdown=a.markdown, out_png=a.plot, synthetic=a.synthetic
    )
    log.info("dual encoder recipe:\n%s", a.markdown.read_text())
