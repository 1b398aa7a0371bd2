"""Commands of the video stage: frame features, keyframe selection, the moment-hit table."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from egonlq.cli.registry import command, log, log_stats, set_threads

# ---------------------------------------------------------------------------------------------- keyframes


def _frame_features_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--clips", type=Path, required=True, help="NLQ clip table: whose videos to encode")
    p.add_argument("--videos", type=Path, required=True, help="the videos table (canonical frame counts)")
    p.add_argument("--video-dir", type=Path, required=True, help="folder of <video_uid>.mp4")
    p.add_argument("--encoder", choices=("demo", "clip"), default="demo")
    p.add_argument("--model-path", type=Path, help="a local Hugging Face CLIP folder (encoder clip)")
    p.add_argument("--frame-rate", type=float, default=1.0, help="per-frame embeddings: samples per second")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out-dir", type=Path, required=True, help="<video_uid>.pt, official layout")
    p.add_argument("--frames", type=Path, required=True, help="per-frame embeddings parquet")
    p.add_argument("--stats", type=Path, required=True)


@command("frame-features", _frame_features_args)
def frame_features(a: argparse.Namespace) -> None:
    """Encode the mp4s of a split's videos: features at 1.875 rows/s plus per-frame embeddings."""
    from egonlq.data.tables import CLIPS, VIDEOS
    from egonlq.io import read_parquet, write_json, write_manifest
    from egonlq.video.frame_encoders import make_encoder
    from egonlq.video.frame_features import extract_many

    set_threads(a.threads)
    uids = sorted(set(read_parquet(a.clips, CLIPS).column("video_uid").to_pylist()))
    videos = read_parquet(a.videos, VIDEOS).to_pandas()
    num_frames = dict(zip(videos["video_uid"], videos["num_frames"], strict=True))
    present = [u for u in uids if (a.video_dir / f"{u}.mp4").is_file()]
    encoder = make_encoder(a.encoder, model_path=a.model_path, batch_size=a.batch_size)
    a.out_dir.mkdir(parents=True, exist_ok=True)
    stats = extract_many(
        [(u, a.video_dir / f"{u}.mp4", _frame_count(num_frames.get(u))) for u in present],
        encoder,
        a.out_dir,
        batch_size=a.batch_size,
        frames_path=a.frames,
        frame_rate=a.frame_rate,
    )
    # Videos of the split without an mp4 are counted, not failures: the demo renders a few, downloads may
    # hold a subset of the canonical videos.
    stats = {"split_videos": len(uids), "videos_without_mp4": len(uids) - len(present), **stats}
    write_manifest(a.out_dir, pattern="*.pt")
    log_stats("frame features", stats)
    write_json(stats, a.stats, indent=1)


def _frame_count(value: object) -> int | None:
    """A canonical frame count from the videos table (null for some real videos)."""
    try:
        count = int(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return count if count > 0 else None


def _keyframes_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--queries", type=Path, required=True)
    p.add_argument("--clips", type=Path, required=True)
    p.add_argument("--video-dir", type=Path, required=True)
    p.add_argument("--scorer", choices=("encoder", "vslnet"), required=True)
    p.add_argument("--encoder", choices=("demo", "clip"), default="demo")
    p.add_argument("--model-path", type=Path, help="encoder clip: a local CLIP folder")
    p.add_argument("--frame-table", type=Path, help="encoder scorers: per-frame embeddings to reuse")
    p.add_argument("--vslnet-dir", type=Path, help="vslnet scorer: a trained run folder")
    p.add_argument("--clip-features", type=Path, help="vslnet scorer: the split's clip features")
    p.add_argument("--text-cache", type=Path, help="vslnet scorer: query token embeddings")
    p.add_argument("--label-mode", default="compatible")
    p.add_argument("--unit-score", choices=("highlight", "inside"), default="highlight")
    p.add_argument("--aks", required=True, help="JSON list of AKS parameter sets {M, depth, t1, t2, ratio}")
    p.add_argument("--methods", nargs="+", default=["aks_reference", "aks_improved", "uniform", "topk"])
    p.add_argument("--sample-rate", type=float, default=1.0)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--save-frames", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--progress", type=Path, required=True, help="append-only progress file (kept on reruns)")
    p.add_argument("--scores", type=Path, required=True)
    p.add_argument("--selection", type=Path, required=True)
    p.add_argument("--frames-dir", type=Path, required=True)
    p.add_argument("--stats", type=Path, required=True)


@command("keyframes", _keyframes_args)
def keyframes(a: argparse.Namespace) -> None:
    """Score a split's queries frame by frame and select keyframes (AKS, uniform, top-k)."""
    from egonlq.data.tables import CLIPS, QUERIES
    from egonlq.io import read_parquet, write_json
    from egonlq.video.aks import AKSParams
    from egonlq.video.frame_encoders import make_encoder
    from egonlq.video.keyframes import run_keyframes
    from egonlq.video.scorers import EncoderScorer, VSLNetScorer

    set_threads(a.threads)
    try:
        entries = json.loads(a.aks)
        params = [AKSParams(**p) for p in entries]
    except (json.JSONDecodeError, TypeError, ValueError) as e:
        raise SystemExit(
            f"--aks: expected a JSON list of objects with keys M, depth, t1, t2, ratio; got {a.aks!r} ({e})"
        ) from e
    if a.scorer == "vslnet":
        missing = [n for n in ("vslnet_dir", "clip_features", "text_cache") if getattr(a, n) is None]
        if missing:
            raise SystemExit(
                f"the vslnet scorer needs {', '.join('--' + m.replace('_', '-') for m in missing)}"
            )
        scorer = VSLNetScorer(
            a.vslnet_dir,
            a.clip_features,
            a.text_cache,
            label_mode=a.label_mode,
            unit_score=a.unit_score,
        )
    else:
        encoder = make_encoder(a.encoder, model_path=a.model_path, batch_size=a.batch_size)
        scorer = EncoderScorer(encoder, batch_size=a.batch_size, frame_table=a.frame_table)
    a.frames_dir.mkdir(parents=True, exist_ok=True)
    stats = run_keyframes(
        read_parquet(a.queries, QUERIES).to_pandas(),
        read_parquet(a.clips, CLIPS).to_pandas(),
        a.video_dir,
        scorer,
        params_list=params,
        methods=a.methods,
        sample_rate=a.sample_rate,
        out_scores=a.scores,
        out_selection=a.selection,
        frames_dir=a.frames_dir,
        save_frames=a.save_frames,
        progress_path=a.progress,
        batch_size=a.batch_size,
    )
    log_stats("keyframes", stats)
    write_json(stats, a.stats, indent=1)


def _moment_hits_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--selections", type=Path, nargs="+", required=True)
    p.add_argument("--queries", type=Path, required=True)
    p.add_argument("--clips", type=Path, required=True)
    p.add_argument("--synthetic", action="store_true")
    p.add_argument("--parquet", type=Path, required=True)
    p.add_argument("--markdown", type=Path, required=True)
    p.add_argument("--plot", type=Path, required=True)


@command("moment-hits", _moment_hits_args)
def moment_hits(a: argparse.Namespace) -> None:
    """Does keyframe selection find the moment? Shares of selected frames and queries inside the GT window."""
    import pandas as pd

    from egonlq.data.tables import CLIPS, QUERIES
    from egonlq.io import read_parquet
    from egonlq.video.keyframes import SELECTION
    from egonlq.video.moment_hits import moment_hit_table, plot_moment_hits, write_moment_hits

    selection = pd.concat([read_parquet(p, SELECTION).to_pandas() for p in a.selections], ignore_index=True)
    table = moment_hit_table(
        selection,
        read_parquet(a.queries, QUERIES).to_pandas(),
        clips=read_parquet(a.clips, CLIPS).to_pandas(),
    )
    write_moment_hits(table, a.parquet, a.markdown, synthetic=a.synthetic)
    plot_moment_hits(table, a.plot, synthetic=a.synthetic)
    log.info("moment hits:\n%s", a.markdown.read_text())


