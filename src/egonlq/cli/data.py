"""Commands of the data stage: ingest of annotations, narrations, EgoClip, and clip features."""

from __future__ import annotations

import argparse
from pathlib import Path

from egonlq.cli.registry import command, log_stats

# ---------------------------------------------------------------------------------------------- ingest


def _ingest_metadata_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--input", type=Path, required=True)
    p.add_argument("--videos", type=Path, required=True)
    p.add_argument("--report", type=Path, required=True)


@command("ingest-metadata", _ingest_metadata_args)
def ingest_metadata(a: argparse.Namespace) -> None:
    from egonlq.data.metadata import ingest_metadata as run
    from egonlq.data.tables import VIDEOS
    from egonlq.io import write_json, write_parquet

    table, report = run(a.input)
    write_parquet(table, a.videos, VIDEOS)
    out = {"source": str(a.input), "rows": table.num_rows, **report.to_dict()}
    log_stats("metadata", out)
    write_json(out, a.report, indent=1)


def _ingest_nlq_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--input", type=Path, required=True)
    p.add_argument("--split", required=True)
    p.add_argument("--clips", type=Path, required=True)
    p.add_argument("--queries", type=Path, required=True)
    p.add_argument("--videos", type=Path, required=True, help="every video the file lists (NLQ_VIDEOS)")
    p.add_argument("--report", type=Path, required=True)


@command("ingest-nlq", _ingest_nlq_args)
def ingest_nlq(a: argparse.Namespace) -> None:
    from egonlq.data.annotations import read_nlq
    from egonlq.data.tables import CLIPS, NLQ_VIDEOS, QUERIES
    from egonlq.io import write_json, write_parquet

    tables = read_nlq(a.input, a.split)
    write_parquet(tables.clips, a.clips, CLIPS)
    write_parquet(tables.queries, a.queries, QUERIES)
    write_parquet(tables.videos, a.videos, NLQ_VIDEOS)
    out = {
        "source": str(a.input),
        "split": a.split,
        "videos": tables.videos.num_rows,
        "clips": tables.clips.num_rows,
        "queries": tables.queries.num_rows,
        **tables.report.to_dict(),
    }
    log_stats(f"nlq {a.split}", out)
    write_json(out, a.report, indent=1)


def _ingest_narrations_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--input", type=Path, required=True)
    p.add_argument("--videos", type=Path, required=True)
    p.add_argument("--narrations", type=Path, required=True)
    p.add_argument("--summaries", type=Path, required=True)
    p.add_argument("--report", type=Path, required=True)


@command("ingest-narrations", _ingest_narrations_args)
def ingest_narrations(a: argparse.Namespace) -> None:
    from egonlq.data.narrations import ingest_narrations as run
    from egonlq.data.tables import VIDEOS
    from egonlq.io import read_parquet, write_json

    known = set(read_parquet(a.videos, VIDEOS).column("video_uid").to_pylist())
    report = run(a.input, a.narrations, a.summaries, known_videos=known)
    out = {"source": str(a.input), **report.to_dict()}
    log_stats("narrations", out)
    write_json(out, a.report, indent=1)


def _ingest_egoclip_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--input", type=Path, required=True)
    p.add_argument("--table", type=Path, required=True)
    p.add_argument("--report", type=Path, required=True)


@command("ingest-egoclip", _ingest_egoclip_args)
def ingest_egoclip(a: argparse.Namespace) -> None:
    from egonlq.data.egoclip import write_egoclip_parquet
    from egonlq.io import write_json

    stats = write_egoclip_parquet(a.input, a.table)
    kinds = ("malformed_lines", "short_rows_kept", "bad_window")
    counts = {k: v for k, v in stats.items() if k in kinds and v}
    out = {
        "source": str(a.input),
        **stats,
        "counts": {f"egoclip_{k}": v for k, v in counts.items()},
        "examples": {"egoclip_malformed_lines": stats["malformed_examples"]}
        if stats["malformed_lines"]
        else {},
    }
    log_stats("egoclip", out)
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
    log_stats("validation totals", out["quirk_totals"])
    write_json(out, a.out, indent=1)


# ---------------------------------------------------------------------------------------------- features


def _clip_features_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--clips", type=Path, required=True)
    p.add_argument("--videos", type=Path, required=True)
    p.add_argument("--feature-dir", type=Path, required=True)
    p.add_argument("--dim", type=int, required=True)
    p.add_argument(
        "--feature-set", required=True, help="the set's name: its sidecar, or the known set, gives its grid"
    )
    p.add_argument("--mode", choices=("compatible", "corrected"), default="compatible")
    p.add_argument("--on-missing", choices=("error", "skip"), default="error")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--shapes", type=Path, required=True)
    p.add_argument("--stats", type=Path, required=True)


@command("clip-features", _clip_features_args)
def clip_features(a: argparse.Namespace) -> None:
    from egonlq.data.feature_sets import resolve_feature_set
    from egonlq.data.features import cut_clips
    from egonlq.data.tables import VIDEOS
    from egonlq.io import read_parquet, write_json

    clips = read_parquet(a.clips).to_pandas()  # NLQ CLIPS or TRAINING_CLIPS: cut_clips checks the columns
    videos = read_parquet(a.videos, VIDEOS).to_pandas()
    num_frames = dict(zip(videos["video_uid"], videos["num_frames"], strict=True))
    fset = resolve_feature_set(a.feature_dir, a.feature_set)
    stats = cut_clips(
        clips,
        a.feature_dir,
        a.out,
        expected_dim=a.dim,
        mode=a.mode,
        on_missing=a.on_missing,
        num_frames=num_frames,
        shapes_json=a.shapes,
        grid=fset.grid,
    )
    stats["feature_set"] = fset.to_dict()
    log_stats("clip features", stats)
    write_json(stats, a.stats, indent=1)


# ---------------------------------------------------------------------------------------------- preflight


def _name_path(text: str) -> tuple[str, Path]:
    name, sep, path = text.partition("=")
    if not sep or not name or not path:
        raise argparse.ArgumentTypeError(f"expected NAME=PATH, got {text!r}")
    return name, Path(path)


def _preflight_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--input", type=_name_path, action="append", default=[], help="NAME=PATH, every input")
    p.add_argument("--nlq", type=_name_path, action="append", default=[], help="SPLIT=PATH, the NLQ files")
    p.add_argument(
        "--goalstep", type=_name_path, action="append", default=[], help="SPLIT=PATH, the Goal-Step files"
    )
    p.add_argument("--demo", action="store_true", help="the data are the demo world's")
    p.add_argument("--features", type=_name_path, help="SET=FOLDER, the feature set and its .pt files")
    p.add_argument("--feature-dim", type=int, help="the configured feature dim (with --features)")
    p.add_argument("--feature-sample", type=int, default=20, help="videos whose rows are checked (longest)")
    p.add_argument("--metadata", type=Path, help="ego4d.json: frame counts for the feature row check")
    p.add_argument("--json", type=Path, required=True)
    p.add_argument("--markdown", type=Path, required=True)


@command("preflight", _preflight_args)
def preflight(a: argparse.Namespace) -> None:
    from egonlq.data.preflight import Features, Input, preflight, to_markdown
    from egonlq.errors import InputError
    from egonlq.io import write_json, write_text

    features = None
    if a.features is not None:
        if a.feature_dim is None:
            raise SystemExit("preflight: --features needs --feature-dim")
        features = Features(*a.features, dim=a.feature_dim, sample=a.feature_sample)
    inputs = [Input(n, p) for n, p in a.input]
    report = preflight(
        inputs, dict(a.nlq), demo=a.demo, features=features, metadata=a.metadata, goalstep=dict(a.goalstep)
    )
    write_json(report, a.json, indent=1)
    write_text(to_markdown(report), a.markdown)
    notes = {f"{task} {s}": e["message"] for task in ("nlq", "goalstep") for s, e in report[task].items()}
    if "features" in report:
        notes["features"] = report["features"]["message"]
    log_stats("preflight", {"ok": report["ok"], "fingerprint": report["fingerprint"], **notes})
    if not report["ok"]:
        listed = "\n  ".join(report["problems"])
        raise InputError(a.json, f"preflight failed, {len(report['problems'])} problems:\n  {listed}")
