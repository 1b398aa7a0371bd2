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
    p.add_argument(
        "--encoder", choices=("demo", "clip", "blip"), default="demo", help="frame encoder (default demo)"
    )
    p.add_argument("--model-path", type=Path, help="a local Hugging Face CLIP or BLIP folder (clip, blip)")
    p.add_argument("--frame-rate", type=float, default=1.0, help="per-frame embeddings: samples per second")
    p.add_argument("--batch-size", type=int, default=32, help="frames encoded per batch")
    p.add_argument("--threads", type=int, default=1, help="torch threads")
    p.add_argument("--out-dir", type=Path, required=True, help="<video_uid>.pt, official layout")
    p.add_argument("--frames", type=Path, required=True, help="per-frame embeddings parquet")
    p.add_argument("--stats", type=Path, required=True, help="counts in, out and failed (JSON)")


@command("frame-features", _frame_features_args)
def frame_features(a: argparse.Namespace) -> None:
    """Encode the mp4s of a split's videos: features at 1.875 rows/s plus per-frame embeddings.

    Videos that fail (unreadable, or not their canonical length) are counted and skipped; the command ends
    non-zero only when no video could be encoded (none has an mp4, or every one failed).
    """
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
    log_stats("frame features", stats)
    if stats["videos_ok"] == 0:
        raise SystemExit(f"frame-features: no video encoded: {_nothing_reason(stats['failed'], a.video_dir)}")
    write_manifest(a.out_dir, pattern="*.pt")
    write_json(stats, a.stats, indent=1)


def _nothing_reason(failed: dict[str, str], video_dir: Path) -> str:
    """Why a run produced nothing, in one line: the failures (with the first one), or no input at all."""
    if not failed:
        return f"no video of the split has an mp4 in {video_dir}"
    uid, message = next(iter(failed.items()))
    return f"all {len(failed)} failed, first {uid}: {message.splitlines()[0]}"


def _frame_count(value: object) -> int | None:
    """A canonical frame count from the videos table (null for some real videos)."""
    try:
        count = int(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return count if count > 0 else None


def _keyframes_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--queries", type=Path, required=True, help="queries table of the split")
    p.add_argument("--clips", type=Path, required=True, help="clips table of the split (clip bounds)")
    p.add_argument(
        "--videos", type=Path, required=True, help="the videos table: each mp4's length is checked against it"
    )
    p.add_argument("--video-dir", type=Path, required=True, help="folder of <video_uid>.mp4")
    p.add_argument(
        "--scorer", choices=("encoder", "vslnet", "dualenc"), required=True, help="what scores the frames"
    )
    p.add_argument(
        "--encoder", choices=("demo", "clip", "blip"), default="demo", help="encoder scorer: which encoder"
    )
    p.add_argument("--model-path", type=Path, help="encoder clip / blip: a local CLIP or BLIP folder")
    p.add_argument(
        "--blip-head",
        choices=("itm", "itc"),
        default="itm",
        help="encoder blip: ITM match probability or ITC cosine (the latter reuses --frame-table)",
    )
    p.add_argument("--frame-table", type=Path, help="encoder scorers: per-frame embeddings to reuse")
    p.add_argument("--vslnet-dir", type=Path, help="vslnet scorer: a trained run folder")
    p.add_argument("--clip-features", type=Path, help="vslnet scorer: the split's clip features")
    p.add_argument(
        "--text-cache",
        type=Path,
        help="vslnet scorer: query token embeddings; dualenc scorer: its text encoder's pooled text cache",
    )
    p.add_argument("--dualenc-dir", type=Path, help="dualenc scorer: a trained dual encoder run folder")
    p.add_argument(
        "--feature-dir", type=Path, help="dualenc scorer: folder of per-video <video_uid>.pt features"
    )
    p.add_argument(
        "--text-model",
        default="default",
        help="dualenc scorer: its text encoder folder (default: the shipped one)",
    )
    p.add_argument(
        "--window-sec",
        type=float,
        help="dualenc scorer: seconds of features embedded around each frame (default 2, DUALENC_WINDOW_SEC)",
    )
    p.add_argument(
        "--label-mode",
        choices=("compatible", "corrected"),
        default="compatible",
        help="vslnet scorer: the label mode the run was trained with (checked against its train_spec.json)",
    )
    p.add_argument(
        "--unit-score", choices=("highlight", "inside"), default="highlight", help="vslnet scorer: unit score"
    )
    p.add_argument(
        "--text-source",
        choices=("query", "summary", "both"),
        default="query",
        help="what scores the frames: the query, the clip's summary, or (1-w)*query + w*summary",
    )
    p.add_argument("--summaries", type=Path, help="text source summary/both: the clip-summaries parquet")
    p.add_argument(
        "--summary-weight", type=float, default=0.5, help="text source both: the summary's weight w"
    )
    p.add_argument(
        "--aks", required=True, help="named AKS parameter set (seed, demo) or JSON list of {M, depth, ...}"
    )
    p.add_argument(
        "--methods",
        nargs="+",
        default=["aks_reference", "aks_improved", "uniform", "topk"],
        help="selection methods (default: all)",
    )
    p.add_argument("--sample-rate", type=float, default=1.0, help="frames sampled per second")
    p.add_argument("--batch-size", type=int, default=32, help="frames encoded per batch")
    p.add_argument("--save-frames", type=int, default=0, help="save the selected frames of this many queries")
    p.add_argument("--threads", type=int, default=1, help="torch threads")
    p.add_argument("--progress", type=Path, required=True, help="append-only progress file (kept on reruns)")
    p.add_argument("--scores", type=Path, required=True, help="per-frame scores table (parquet)")
    p.add_argument("--selection", type=Path, required=True, help="selected keyframes table (parquet)")
    p.add_argument("--frames-dir", type=Path, required=True, help="folder of saved frames (PNG)")
    p.add_argument("--stats", type=Path, required=True, help="counts in, out and failed (JSON)")


@command("keyframes", _keyframes_args)
def keyframes(a: argparse.Namespace) -> None:
    """Score a split's queries frame by frame and select keyframes (AKS, uniform, top-k).

    Queries of failed videos or clips are counted and skipped; the command ends non-zero only when no
    query could be scored (no query has a usable video, or every one failed).
    """
    from egonlq.data.tables import CLIPS, QUERIES, VIDEOS
    from egonlq.io import read_parquet, write_json
    from egonlq.video.frame_encoders import make_encoder
    from egonlq.video.keyframes import ScoringText, run_keyframes
    from egonlq.video.scorers import DualEncoderScorer, EncoderScorer, VSLNetScorer

    set_threads(a.threads)
    summaries = None
    if a.text_source != "query":
        if a.summaries is None:
            raise SystemExit(f"--text-source {a.text_source} needs --summaries (the clip-summaries parquet)")
        from egonlq.data.summaries import CLIP_SUMMARIES, clip_summary_texts

        summaries = clip_summary_texts(read_parquet(a.summaries, CLIP_SUMMARIES).to_pandas())
    try:
        text = ScoringText(a.text_source, a.summary_weight, summaries)
    except ValueError as e:
        raise SystemExit(f"--summary-weight: {e}") from e
    params = _aks_parameters(a.aks)
    needs = {
        "vslnet": ("vslnet_dir", "clip_features", "text_cache"),
        "dualenc": ("dualenc_dir", "feature_dir", "text_cache"),
    }
    missing = [n for n in needs.get(a.scorer, ()) if getattr(a, n) is None]
    if missing:
        raise SystemExit(
            f"the {a.scorer} scorer needs {', '.join('--' + m.replace('_', '-') for m in missing)}"
        )
    if a.scorer == "dualenc":
        from egonlq.grounding.text_encoder import default_model_path

        scorer = DualEncoderScorer.load(
            a.dualenc_dir,
            text_cache=a.text_cache,
            text_model=default_model_path() if a.text_model == "default" else Path(a.text_model),
            feature_dir=a.feature_dir,
            video_uids=[  # the videos that can be scored: those with an mp4
                u
                for u in sorted(set(read_parquet(a.clips, CLIPS).column("video_uid").to_pylist()))
                if (a.video_dir / f"{u}.mp4").is_file()
            ],
            **({} if a.window_sec is None else {"window_sec": a.window_sec}),
        )
    elif a.scorer == "vslnet":
        scorer = VSLNetScorer(
            a.vslnet_dir,
            a.clip_features,
            a.text_cache,
            label_mode=a.label_mode,
            unit_score=a.unit_score,
        )
    else:
        encoder = make_encoder(a.encoder, model_path=a.model_path, batch_size=a.batch_size)
        if a.encoder == "blip" and a.blip_head == "itm":
            from egonlq.video.blip import BlipITMScorer

            scorer = BlipITMScorer(encoder)
        else:
            scorer = EncoderScorer(encoder, batch_size=a.batch_size, frame_table=a.frame_table)
    a.frames_dir.mkdir(parents=True, exist_ok=True)
    videos = read_parquet(a.videos, VIDEOS).to_pandas()
    stats = run_keyframes(
        read_parquet(a.queries, QUERIES).to_pandas(),
        read_parquet(a.clips, CLIPS).to_pandas(),
        a.video_dir,
        scorer,
        canonical_frames={
            u: _frame_count(n) for u, n in zip(videos["video_uid"], videos["num_frames"], strict=True)
        },
        params_list=params,
        methods=a.methods,
        sample_rate=a.sample_rate,
        out_scores=a.scores,
        out_selection=a.selection,
        frames_dir=a.frames_dir,
        save_frames=a.save_frames,
        progress_path=a.progress,
        batch_size=a.batch_size,
        text=text,
    )
    log_stats("keyframes", stats)
    if stats["score_rows"] == 0:
        failed = {**stats["videos_failed"], **stats["failed"]}
        reason = (
            _nothing_reason(failed, a.video_dir)
            if failed or stats["queries_eligible"] == 0
            else f"none of {stats['queries_eligible']} queries has a sampled frame in its clip"
        )
        raise SystemExit(f"keyframes: no query scored: {reason}")
    write_json(stats, a.stats, indent=1)


def _aks_parameters(spec: str) -> list:
    """``--aks``: a named set of :data:`~egonlq.video.aks.PARAMETER_SETS` or a JSON list (else exits)."""
    from egonlq.video.aks import PARAMETER_SETS, parameter_sets

    try:
        return parameter_sets(spec if spec in PARAMETER_SETS else json.loads(spec))
    except (json.JSONDecodeError, TypeError, ValueError) as e:
        raise SystemExit(
            f"--aks: expected one of {sorted(PARAMETER_SETS)} or a JSON list of objects with keys M, depth,"
            f" t1, t2, ratio; got {spec!r} ({e})"
        ) from e


def _keyframes_select_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--scores", type=Path, required=True, help="per-frame scores table of a keyframes run")
    p.add_argument(
        "--aks", required=True, help="named AKS parameter set (seed, demo) or JSON list of {M, depth, ...}"
    )
    p.add_argument("--methods", nargs="+", required=True, help="selection methods")
    p.add_argument("--selection", type=Path, required=True, help="selected keyframes table (parquet)")
    p.add_argument("--stats", type=Path, required=True, help="counts (JSON)")


@command("keyframes-select", _keyframes_select_args)
def keyframes_select(a: argparse.Namespace) -> None:
    """Select keyframes again from stored scores with another AKS parameter set (nothing is re-scored)."""
    from egonlq.io import write_json
    from egonlq.video.keyframes import select_from_scores, settings_for

    try:
        settings = settings_for(a.methods, _aks_parameters(a.aks))
    except ValueError as e:
        raise SystemExit(f"--methods: {e}") from e
    stats = select_from_scores(a.scores, settings, a.selection)
    log_stats("keyframes-select", stats)
    write_json(stats, a.stats, indent=1)


def _clip_summaries_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--summaries", type=Path, required=True, help="the SUMMARIES table of the ingest")
    p.add_argument("--clips", type=Path, required=True, help="clips table of the split")
    p.add_argument("--parquet", type=Path, required=True, help="one row per clip and overlapping summary")
    p.add_argument("--json", type=Path, required=True, help="export keyed by clip uid")
    p.add_argument("--stats", type=Path, required=True, help="counts, clips without summary included (JSON)")


@command("clip-summaries", _clip_summaries_args)
def clip_summaries(a: argparse.Namespace) -> None:
    """The #summary entries overlapping each clip of a split, clip-relative; clips without one counted."""
    import pyarrow as pa

    from egonlq.data.summaries import CLIP_SUMMARIES, clip_summaries, summaries_json
    from egonlq.data.tables import CLIPS, SUMMARIES
    from egonlq.io import read_parquet, write_json, write_parquet

    clips = read_parquet(a.clips, CLIPS).to_pandas()
    rows, stats = clip_summaries(read_parquet(a.summaries, SUMMARIES).to_pandas(), clips)
    write_parquet(pa.Table.from_pandas(rows, preserve_index=False), a.parquet, CLIP_SUMMARIES)
    write_json(summaries_json(rows, clips), a.json, indent=1)
    log_stats("clip summaries", stats)
    write_json(stats, a.stats, indent=1)


def _moment_hits_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--selections", type=Path, nargs="+", required=True, help="selection tables of keyframes")
    p.add_argument("--queries", type=Path, required=True, help="queries table (the GT windows)")
    p.add_argument("--clips", type=Path, required=True, help="clips table (clip lengths, for chance)")
    p.add_argument("--synthetic", action="store_true", help="label the outputs as synthetic demo data")
    p.add_argument("--parquet", type=Path, required=True, help="the table (parquet)")
    p.add_argument("--markdown", type=Path, required=True, help="the table for the report")
    p.add_argument("--plot", type=Path, required=True, help="the bar plot (PNG)")
    p.add_argument(
        "--summary-selections", type=Path, nargs="*", default=[], help="summary-guided selection tables"
    )
    p.add_argument("--narrations", type=Path, help="NARRATIONS table: also write summary coverage")
    p.add_argument("--window", type=float, default=2.0, help="coverage: frame within +-window s of a moment")
    p.add_argument("--coverage-parquet", type=Path, help="summary coverage table (parquet)")
    p.add_argument("--coverage-markdown", type=Path, help="summary coverage table for the report")


@command("moment-hits", _moment_hits_args)
def moment_hits(a: argparse.Namespace) -> None:
    """Does keyframe selection find the moment? Shares of selected frames and queries inside the GT window.

    With ``--narrations``, also the summary-coverage table over the query-guided (``--selections``) and
    summary-guided (``--summary-selections``) selections: one evaluation of the keyframes, one rule.
    """
    import pandas as pd

    from egonlq.data.tables import CLIPS, NARRATIONS, QUERIES
    from egonlq.io import read_parquet
    from egonlq.video.keyframes import SELECTION
    from egonlq.video.moment_hits import moment_hit_table, plot_moment_hits, write_moment_hits
    from egonlq.video.summary_coverage import summary_coverage_table, write_summary_coverage

    coverage_out = (a.narrations, a.coverage_parquet, a.coverage_markdown)
    if any(x is not None for x in coverage_out) and None in coverage_out:
        raise SystemExit("summary coverage needs --narrations, --coverage-parquet and --coverage-markdown")
    queries = read_parquet(a.queries, QUERIES).to_pandas()
    clips = read_parquet(a.clips, CLIPS).to_pandas()
    selection = pd.concat([read_parquet(p, SELECTION).to_pandas() for p in a.selections], ignore_index=True)
    table = moment_hit_table(selection, queries, clips=clips)
    write_moment_hits(table, a.parquet, a.markdown, synthetic=a.synthetic)
    plot_moment_hits(table, a.plot, synthetic=a.synthetic)
    log.info("moment hits:\n%s", a.markdown.read_text())
    if a.narrations is None:
        return
    guided = [read_parquet(p, SELECTION).to_pandas() for p in a.summary_selections]
    narrations = read_parquet(a.narrations, NARRATIONS).select(["video_uid", "timestamp_sec", "tag"])
    coverage = summary_coverage_table(
        pd.concat([selection, *guided], ignore_index=True),
        queries,
        narrations.to_pandas(),
        clips,
        window=a.window,
    )
    write_summary_coverage(coverage, a.coverage_parquet, a.coverage_markdown, synthetic=a.synthetic)
    log.info("summary coverage:\n%s", a.coverage_markdown.read_text())


def _keyframe_recipe_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--selections",
        type=Path,
        nargs="+",
        required=True,
        help="selection tables of the AKS set 'seed', one per scorer: <root>/<scorer>/selection.parquet",
    )
    p.add_argument("--queries", type=Path, required=True, help="queries table (the GT windows)")
    p.add_argument("--clips", type=Path, required=True, help="clips table (clip lengths, for chance)")
    p.add_argument("--synthetic", action="store_true", help="label the outputs as synthetic demo data")
    p.add_argument("--parquet", type=Path, required=True, help="one row per scorer and method (parquet)")
    p.add_argument("--markdown", type=Path, required=True, help="the table: claim first, verdict last")
    p.add_argument("--plot", type=Path, required=True, help="queries with a hit per method (PNG)")


@command("keyframe-recipe", _keyframe_recipe_args)
def keyframe_recipe(a: argparse.Namespace) -> None:
    """The keyframe recipe: AKS at the source's defaults against uniform and top-k, claim and verdict."""
    from egonlq.data.tables import CLIPS, QUERIES
    from egonlq.io import read_parquet
    from egonlq.video.keyframe_recipe import write_keyframe_recipe
    from egonlq.video.keyframes import SELECTION

    selections = {p.parent.name: read_parquet(p, SELECTION).to_pandas() for p in a.selections}
    if len(selections) < len(a.selections):
        raise SystemExit("--selections: two tables of the same scorer folder")
    write_keyframe_recipe(
        selections,
        read_parquet(a.queries, QUERIES).to_pandas(),
        read_parquet(a.clips, CLIPS).to_pandas(),
        out_parquet=a.parquet,
        out_markdown=a.markdown,
        out_png=a.plot,
        synthetic=a.synthetic,
    )
    log.info("keyframe recipe:\n%s", a.markdown.read_text())
