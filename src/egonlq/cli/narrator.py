"""Commands of the narrator stage: the demo's LM, narrator training, narration (sharded), merge + quality,
and the dual encoder's pairs with the narrator's texts."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from egonlq.cli.registry import command, log_stats, set_threads


def _gt_rows(pairs_path: Path, gt_fraction: float):
    """GT narrations of training videos kept by ``gt_fraction`` (the dual encoder's nested subsets)."""
    from egonlq.dualenc.pairs import GT_SOURCE, read_pairs, select_pairs

    return select_pairs(
        read_pairs(pairs_path), sources=[GT_SOURCE], gt_fraction=gt_fraction, where=pairs_path
    )


def _lm_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--pairs", type=Path, required=True)
    p.add_argument("--gt-fraction", type=float, default=1.0)
    p.add_argument("--config", required=True, help="JSON: layers, width, heads, steps, batch_size, lr, seed")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out-dir", type=Path, required=True)


@command("narrator-lm", _lm_args)
def narrator_lm(a: argparse.Namespace) -> None:
    """Pre-train the demo's small GPT-2-configured LM on the kept GT narrations of training videos."""
    from egonlq.narrator.lm import pretrain_lm

    set_threads(a.threads)
    rows = _gt_rows(a.pairs, a.gt_fraction)
    log_stats("pre-trained LM", pretrain_lm(rows["text"].tolist(), a.out_dir, **json.loads(a.config)))


def _train_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--pairs", type=Path, required=True)
    p.add_argument("--gt-fraction", type=float, default=1.0)
    p.add_argument("--lm-dir", type=Path, required=True, help="a local causal LM folder (frozen)")
    p.add_argument(
        "--tower-dir", type=Path, required=True, help="a dual encoder checkpoint (frozen video tower)"
    )
    p.add_argument("--feature-dir", type=Path, required=True)
    p.add_argument("--video-dim", type=int, required=True)
    p.add_argument("--model", required=True, help="JSON: num_queries, heads, cross_every")
    p.add_argument("--spec", required=True, help="JSON: NarratorTrainSpec")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out-dir", type=Path, required=True)


@command("narrator-train", _train_args)
def narrator_train(a: argparse.Namespace) -> None:
    """Train the narrator's pooler and gated cross-attention on (EgoClip window, GT narration) pairs."""
    from egonlq.dualenc.bank import FeatureBank
    from egonlq.narrator.model import Narrator, NarratorConfig, load_causal_lm, load_video_tower
    from egonlq.narrator.train import NarratorTrainSpec, train_narrator

    set_threads(a.threads)
    lm, tokenizer = load_causal_lm(a.lm_dir)
    video = load_video_tower(a.tower_dir, video_dim=a.video_dim)
    spec = NarratorTrainSpec(**json.loads(a.spec))
    config = NarratorConfig(
        **json.loads(a.model), video_width=video.stem.out_features, lm_width=int(lm.config.hidden_size)
    )
    import torch

    torch.manual_seed(spec.seed)
    narrator = Narrator(config, video, lm, where=a.lm_dir)
    rows = _gt_rows(a.pairs, a.gt_fraction)
    bank = FeatureBank.load(a.feature_dir, rows["video_uid"].tolist(), dim=a.video_dim)
    provenance = {
        "lm_dir": str(a.lm_dir),
        "tower_dir": str(a.tower_dir),
        "video_dim": a.video_dim,
        "max_rows": spec.max_rows,
        "gt_fraction": a.gt_fraction,
    }
    log_stats(
        "narrator", train_narrator(narrator, tokenizer, rows, bank, spec, a.out_dir, provenance=provenance)
    )


def _narrate_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model-dir", type=Path, required=True)
    p.add_argument("--pairs", type=Path, required=True)
    p.add_argument("--feature-dir", type=Path, required=True)
    p.add_argument("--decoding", required=True, help="JSON Decoding of egoclip and heldout windows")
    p.add_argument("--dense-decoding", required=True, help="JSON Decoding of dense windows")
    p.add_argument("--dense-sec", type=float, required=True, help="dense window length (0: no densification)")
    p.add_argument("--dense-stride", type=float, required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--shard", type=int, default=0)
    p.add_argument("--num-shards", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--cache", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--stats", type=Path, required=True)


@command("narrator-narrate", _narrate_args)
def narrator_narrate(a: argparse.Namespace) -> None:
    """Write N texts per window of one shard (EgoClip windows, dense windows, held-out windows), cached."""
    import hashlib

    from egonlq.dualenc.bank import FeatureBank
    from egonlq.dualenc.pairs import read_pairs
    from egonlq.narrator.decode import Decoding
    from egonlq.narrator.model import WEIGHTS_NAME, load_narrator
    from egonlq.narrator.narrate import narrate_shard, narration_windows

    set_threads(a.threads)
    narrator, tokenizer, provenance = load_narrator(a.model_dir)
    pairs = read_pairs(a.pairs)
    videos = sorted(set(pairs.column("video_uid").to_pylist()))
    bank = FeatureBank.load(a.feature_dir, videos, dim=int(provenance["video_dim"]))
    counts = {v: int(bank.count[i]) for v, i in bank.videos.items()}
    windows = narration_windows(
        pairs,
        counts,
        dense_sec=a.dense_sec,
        dense_stride=a.dense_stride,
        rows_per_second=bank.grid.rows_per_second,  # the feature folder's grid
    )
    clip = Decoding(**json.loads(a.decoding))
    stats = narrate_shard(
        narrator,
        tokenizer,
        bank,
        windows,
        decodings={"egoclip": clip, "heldout": clip, "dense": Decoding(**json.loads(a.dense_decoding))},
        model_digest=hashlib.sha256((a.model_dir / WEIGHTS_NAME).read_bytes()).hexdigest()[:16],
        seed=a.seed,
        max_rows=int(provenance["max_rows"]),
        shard=a.shard,
        num_shards=a.num_shards,
        cache_path=a.cache,
        out_path=a.out,
        stats_path=a.stats,
        batch_size=a.batch_size,
    )
    log_stats("narrated", stats)


def _merge_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--shards", type=Path, nargs="+", required=True)
    p.add_argument(
        "--pairs", type=Path, required=True, help="the dual encoder's pairs (held-out GT narrations)"
    )
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--quality", type=Path, required=True)


@command("narrator-merge", _merge_args)
def narrator_merge(a: argparse.Namespace) -> None:
    """Concatenate the shard tables; score held-out windows with CIDEr and ROUGE-L against GT narrations."""
    from egonlq.dualenc.pairs import read_pairs
    from egonlq.io import write_json, write_parquet
    from egonlq.narrator.narrate import NARRATIONS, read_narrations
    from egonlq.narrator.quality import heldout_quality

    table = read_narrations(a.shards)
    quality = heldout_quality(table, read_pairs(a.pairs))
    write_parquet(table, a.out, NARRATIONS)
    log_stats("narrator quality (held-out windows)", quality)
    write_json(quality, a.quality, indent=1)


def _pairs_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--pairs", type=Path, required=True)
    p.add_argument("--narrations", type=Path, required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--stats", type=Path, required=True)


@command("narrator-pairs", _pairs_args)
def narrator_pairs_cmd(a: argparse.Namespace) -> None:
    """The dual encoder's pairs plus the narrator's texts (source ``narrator``)."""
    from egonlq.dualenc.pairs import PAIRS, read_pairs
    from egonlq.io import write_json, write_parquet
    from egonlq.narrator.consumers import narrator_pairs
    from egonlq.narrator.narrate import read_narrations

    table, stats = narrator_pairs(read_pairs(a.pairs), read_narrations([a.narrations]), seed=a.seed)
    write_parquet(table, a.out, PAIRS)
    log_stats("narrator pairs", stats)
    write_json(stats, a.stats, indent=1)


def _queries_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--narrations", type=Path, required=True, help="the merged NARRATIONS table")
    p.add_argument("--naq-clips", type=Path, required=True, help="NaQ's clips: the pool the windows go into")
    p.add_argument(
        "--texts", choices=["best", "all"], default="best", help="per window: lowest entropy, or all"
    )
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--clips", type=Path, required=True)
    p.add_argument("--stats", type=Path, required=True)


@command("narrator-queries", _queries_args)
def narrator_queries_cmd(a: argparse.Namespace) -> None:
    """The narrator's texts as NaQ-style VSLNet training queries (source ``narrator``) and their clips."""
    import pyarrow as pa

    from egonlq.io import read_parquet, write_json, write_parquet
    from egonlq.narrator.narrate import read_narrations
    from egonlq.narrator.queries import narrator_queries
    from egonlq.queries.training_queries import TRAINING_QUERIES

    table, clips, stats = narrator_queries(
        read_narrations([a.narrations]), read_parquet(a.naq_clips).to_pandas(), texts=a.texts
    )
    write_parquet(table, a.out, TRAINING_QUERIES)
    write_parquet(pa.Table.from_pandas(clips, preserve_index=False), a.clips)
    log_stats("narrator queries", stats)
    write_json(stats, a.stats, indent=1)
