"""Commands of the step-grounding stage (Ego4D Goal-Step): ingest, step texts, adapters, decoding."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from egonlq.cli.registry import command, log, log_stats, set_threads


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


def _text_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--queries", type=Path, nargs="+", required=True, help="<split>_queries.parquet tables")
    p.add_argument("--model", default="default", help="the dual encoder's text encoder (a local HF folder)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--stats", type=Path, required=True)


@command("steps-text", _text_args)
def steps_text(a: argparse.Namespace) -> None:
    """The pooled cache of every step and substep description, with the dual encoder's text encoder."""
    from egonlq.cli.dualenc import _text_model
    from egonlq.dualenc.text import PooledTextEncoder, build_pooled_cache
    from egonlq.io import read_parquet, write_json

    set_threads(a.threads)
    texts = [t for path in a.queries for t in read_parquet(path).column("query").to_pylist()]
    stats = build_pooled_cache(texts, PooledTextEncoder(_text_model(a.model)), a.out)
    log_stats("step texts", stats)
    write_json(stats, a.stats, indent=1)


def _decode_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model-dir", type=Path, required=True, help="a dual encoder checkpoint folder")
    p.add_argument("--adapters", type=Path, help="step adapters trained on it (steps-adapters)")
    p.add_argument("--text-cache", type=Path, required=True, help="the steps-text cache")
    p.add_argument("--text-model", default="default")
    p.add_argument("--feature-dir", type=Path, required=True)
    p.add_argument("--groups", type=Path, required=True, help="goalstep_video_groups.tsv")
    p.add_argument("--valid", type=Path, required=True, help="valid_queries.parquet")
    p.add_argument("--gt", type=Path, required=True, help="valid_gt.json")
    p.add_argument("--test", type=Path, help="test_queries.parquet: writes test_challenge.json")
    p.add_argument("--name", required=True, help="predictor name prefix in the metrics")
    p.add_argument("--decode", required=True, help="DecodeParams as JSON (null mu: no skips)")
    p.add_argument("--challenge-decoder", default="dp")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out-dir", type=Path, required=True)


def decode_params(text: str) -> object:
    """``--decode`` JSON to :class:`DecodeParams` (``mu: null`` is no skips)."""
    import json

    from egonlq.steps.zeroshot import DecodeParams

    d = json.loads(text)
    d["mu"] = math.inf if d.get("mu") is None else float(d["mu"])
    return DecodeParams(**d)


@command("steps-decode", _decode_args)
def steps_decode(a: argparse.Namespace) -> None:
    """A dual encoder (zero-shot, or with step adapters) on Goal-Step: every decoder scored on valid with the
    NLQ metric, and the test challenge file."""
    from egonlq.cli.dualenc import _text_model
    from egonlq.dualenc.evaluate import Embedder
    from egonlq.io import read_json, read_parquet, write_json
    from egonlq.steps.adapters import AdaptedEncoder
    from egonlq.steps.chunks import entry_loader
    from egonlq.steps.evaluate import evaluate_model
    from egonlq.steps.goalstep import STEP_QUERIES, STEP_TEST_QUERIES, read_groups

    set_threads(a.threads)
    embedder = Embedder.load(
        a.model_dir, text_cache=a.text_cache, text_model=_text_model(a.text_model), feature_dir=a.feature_dir,
        video_uids=[], progress=False,
    )  # fmt: skip
    if a.adapters is not None:
        embedder.model = AdaptedEncoder.from_pretrained(a.adapters, embedder.model)
    load_rows = entry_loader(
        a.feature_dir, read_groups(a.groups), dim=embedder.model.config.video_dim, groups_path=a.groups
    )
    stats = evaluate_model(
        embedder,
        read_parquet(a.valid, STEP_QUERIES).to_pandas(),
        a.gt,
        load_rows,
        embedder.bank.grid.rows_per_second,  # the feature folder's grid
        decode_params(a.decode),
        name=a.name,
        out_dir=a.out_dir,
        test=read_parquet(a.test, STEP_TEST_QUERIES).to_pandas() if a.test else None,
        challenge_decoder=a.challenge_decoder,
    )
    stats["model"] = read_json(a.model_dir / "config.json").get("model_type")
    write_json(stats, a.out_dir / "stats.json", indent=1)
    log_stats(f"steps {a.name}", stats)


def _adapters_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model-dir", type=Path, required=True, help="the dual encoder checkpoint (kept frozen)")
    p.add_argument("--text-cache", type=Path, required=True, help="the steps-text cache")
    p.add_argument("--text-model", default="default")
    p.add_argument("--feature-dir", type=Path, required=True)
    p.add_argument("--groups", type=Path, required=True, help="goalstep_video_groups.tsv")
    p.add_argument("--train", type=Path, required=True, help="train_queries.parquet")
    p.add_argument("--spec", required=True, help="AdapterSpec as JSON")
    p.add_argument("--chunk-sec", type=float, default=2.0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out-dir", type=Path, required=True)


@command("steps-adapters", _adapters_args)
def steps_adapters(a: argparse.Namespace) -> None:
    """Bottleneck adapters on the frozen dual-encoder towers, trained on Goal-Step train (masked InfoNCE)."""
    from egonlq.cli.dualenc import _text_model
    from egonlq.dualenc.evaluate import Embedder
    from egonlq.io import read_parquet, write_json
    from egonlq.steps.adapters import fit_adapters, spec_from_json
    from egonlq.steps.chunks import entry_loader
    from egonlq.steps.evaluate import embed_queries
    from egonlq.steps.goalstep import STEP_QUERIES, read_groups

    set_threads(a.threads)
    embedder = Embedder.load(
        a.model_dir, text_cache=a.text_cache, text_model=_text_model(a.text_model), feature_dir=a.feature_dir,
        video_uids=[], progress=False,
    )  # fmt: skip
    train = read_parquet(a.train, STEP_QUERIES).to_pandas()
    load_rows = entry_loader(
        a.feature_dir, read_groups(a.groups), dim=embedder.model.config.video_dim, groups_path=a.groups
    )
    spec = spec_from_json(a.spec)
    model, losses, stats = fit_adapters(
        embedder.model, embed_queries(embedder, train, where=a.train), train, load_rows,
        embedder.bank.grid.rows_per_second, a.chunk_sec, spec,
    )  # fmt: skip
    a.out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(a.out_dir, spec, a.model_dir)
    write_json({**stats, "loss": losses}, a.out_dir / "train.json", indent=1)
    log_stats("step adapters", stats)


def _vslnet_data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--gt", type=Path, nargs="+", required=True, help="<split>_gt.json of steps-ingest (train, valid)"
    )
    p.add_argument("--groups", type=Path, required=True, help="goalstep_video_groups.tsv")
    p.add_argument("--feature-dir", type=Path, required=True)
    p.add_argument("--dim", type=int, required=True)
    p.add_argument(
        "--feature-set", required=True, help="the set's name: its sidecar, or the known set, gives its grid"
    )
    p.add_argument("--mode", choices=("compatible", "corrected"), default="compatible")
    p.add_argument("--out-dir", type=Path, required=True, help="<split>_{nlq.json,queries,clips,features}")
    p.add_argument("--stats", type=Path, required=True)


@command("steps-vslnet-data", _vslnet_data_args)
def steps_vslnet_data(a: argparse.Namespace) -> None:
    """Goal-Step train/valid in VSLNet's shapes (NLQ file, QUERIES, CLIPS, clip features on the video or group
    timeline), for the official baseline trained with the project's VSLNet commands."""
    from egonlq.data.feature_sets import resolve_feature_set
    from egonlq.io import write_json
    from egonlq.steps.vslnet_data import write_vslnet_split

    grid = resolve_feature_set(a.feature_dir, a.feature_set).grid
    stats = {}
    for gt in a.gt:
        split = gt.name.removesuffix("_gt.json")
        stats[split] = write_vslnet_split(
            gt, split, groups_path=a.groups, feature_dir=a.feature_dir, dim=a.dim, grid=grid, mode=a.mode,
            out_dir=a.out_dir,
        )  # fmt: skip
    log_stats("Goal-Step for VSLNet", stats)
    write_json(stats, a.stats, indent=1)


def _table_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--metrics", type=Path, nargs="+", required=True, help="*_metrics.json of steps-decode")
    p.add_argument("--example", type=Path, required=True, help="an example.npz of steps-decode, for the plot")
    p.add_argument("--parquet", type=Path, required=True, help="the table, one row per model/decoder/mode")
    p.add_argument("--markdown", type=Path, required=True, help="the same table for the report")
    p.add_argument("--plot", type=Path, required=True, help="PNG: the example's similarities and DP path")
    p.add_argument("--synthetic", action="store_true", help="say in the table that the data are synthetic")


@command("steps-table", _table_args)
def steps_table(a: argparse.Namespace) -> None:
    """The step-grounding table over seeds (models x decoders) and the alignment plot."""
    from egonlq.steps.table import plot_alignment, write_steps_table

    rows = write_steps_table(a.metrics, a.parquet, a.markdown, synthetic=a.synthetic)
    plot_alignment(a.example, a.plot)
    log_stats("steps table", {"rows": len(rows), "metrics_files": len(a.metrics)})


def _recipe_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--metrics", type=Path, nargs="+", required=True, help="the steps stage's metrics files")
    p.add_argument("--run", required=True, help="the dual encoder run whose decoders are compared")
    p.add_argument("--synthetic", action="store_true")
    p.add_argument("--parquet", type=Path, required=True)
    p.add_argument("--markdown", type=Path, required=True)
    p.add_argument("--plot", type=Path, required=True)


@command("steps-recipe", _recipe_args)
def steps_recipe(a: argparse.Namespace) -> None:
    """The step-grounding claim against the stage's metrics: claim first, verdict last (issue 17)."""
    from egonlq.steps.recipe import write_steps_recipe

    out = {"out_parquet": a.parquet, "out_markdown": a.markdown, "out_png": a.plot}
    write_steps_recipe(a.metrics, a.run, **out, synthetic=a.synthetic)
    log.info("steps recipe:\n%s", a.markdown.read_text())
