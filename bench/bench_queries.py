"""Benchmark: query sources (curation, NaQ, template questions) against straightforward per-row loops.

Three stages run on the same NARRATIONS table:

- ``curation``: :func:`egonlq.queries.curation.curate_narrations` +
:func:`~egonlq.queries.curation.pseudo_clips` +
  :func:`~egonlq.queries.curation.assign_pseudo_clips` (NLQ train/val/test videos excluded, pass 1, EgoClip
  windows);
- ``naq``: :func:`egonlq.queries.naq.em_train_clips` +
:func:`~egonlq.queries.naq.naq_windows_from_narrations` +
  :func:`~egonlq.queries.naq.build_naq` (v1 95 % subsample) + :func:`~egonlq.queries.naq.naq_table`;
- ``templates``: :func:`egonlq.queries.blocks.make_blocks` +
:func:`egonlq.queries.llm_queries.generate_shard` with the
  ``template`` backend (prompt rendering, cache, parsing, validation), on the first ``--template-blocks``
  blocks (default: all).

The baseline stands for what one writes first (no published script covers these stages on the NARRATIONS
table): ``to_pylist()`` rows as dicts, Python loops, dicts of lists, per-row
regexes, ``pa.Table.from_pylist`` at the end; its template stage calls the same rule-based writer and
validator directly, without prompts or cache. Each side runs in its own subprocess, ``--repeat`` times (at
least 3, sides alternating); medians (with min and max) of the wall time per stage and of peak RSS
(``os.wait4`` rusage of that child) are compared, and the outputs of both sides are checked to agree
(windows to 1e-9 s: the baseline sums gaps in a different order than numpy).

Inputs: ``--preset full`` (Ego4D scale, ~3.85M narrations) builds the world with
``egonlq.demo.world.build_world(..., write_features=False)`` and ingests it with the project's own ingest;
``--narrations N`` instead generates a synthetic NARRATIONS table of about N rows directly::

    .venv/bin/python bench/bench_queries.py --narrations 300000
    .venv/bin/python bench/bench_queries.py --preset full --workdir /tmp/bench_queries_full
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from egonlq.data.tables import NARRATIONS, VIDEOS
from medians import check_repeat, median, spread

EM_FILES = ("vq_train.json", "nlq_train.json", "moments_train.json")  # the reference's order
CHECK_COLUMNS = {
    "curated": [
        "narration_uid",
        "clip_uid",
        "window_start_sec",
        "window_end_sec",
        "clip_start_sec",
        "clip_end_sec",
    ],
    "naq": ["query_uid", "query", "clip_start_sec", "clip_end_sec"],
    "templates": ["narration_uid", "query", "clip_start_sec", "clip_end_sec"],
}


# ---------------------------------------------------------------------------------------------- inputs


def synthetic_inputs(root: Path, n_narrations: int, *, seed: int = 0) -> None:
    """NARRATIONS/VIDEOS parquet, NLQ split video lists and EM train files for about ``n_narrations``."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    objects = ["knife", "cup", "bowl", "spoon", "pan", "towel", "lid", "plate", "bottle", "brush", "phone"]
    places = ["drawer", "fridge", "table", "sink", "shelf", "counter", "cabinet"]
    verbs = ["picks", "puts", "opens", "closes", "washes", "holds", "drops", "takes", "places", "moves"]
    n_videos = max(4, n_narrations // 400)
    uids = np.array([f"{seed:08x}-0000-4000-8000-{i:012x}" for i in range(n_videos)], dtype=object)
    durations = rng.uniform(300, 3600, n_videos).round(3)
    video_of = np.sort(rng.integers(0, n_videos, n_narrations))
    pass_no = np.where(rng.random(n_narrations) < 0.4, 2, 1).astype(np.int8)
    order = np.lexsort((pass_no, video_of))
    video_of, pass_no = video_of[order], pass_no[order]
    group = video_of.astype(np.int64) * 2 + pass_no
    first = np.r_[0, np.flatnonzero(np.diff(group)) + 1]
    idx = np.arange(n_narrations) - np.repeat(first, np.diff(np.r_[first, n_narrations]))
    t = (rng.random(n_narrations) * durations[video_of]).round(4)
    t[rng.random(n_narrations) < 0.001] = np.nan
    kind = rng.random(n_narrations)
    text = np.array(
        [
            (f"#C C {v} the {o} from the {p}" if k >= 0.12 else f"#O a man {v} the {o} in the {p}")
            + (" #unsure" if k < 0.01 else "")
            for v, o, p, k in zip(
                rng.choice(verbs, n_narrations),
                rng.choice(objects, n_narrations),
                rng.choice(places, n_narrations),
                kind,
                strict=True,
            )
        ],
        dtype=object,
    )
    tag = np.where(kind < 0.12, "#O", "#C").astype(object)
    tag[kind < 0.01] = "#C"
    summary = rng.random(n_narrations) < 0.0005
    text[summary], tag[summary] = "#summary C works in the kitchen", "#summary"
    narrations = pa.table(
        {
            "video_uid": uids[video_of],
            "pass": pass_no,
            "narration_idx": idx.astype(np.int32),
            "timestamp_sec": pa.array(t, pa.float64(), from_pandas=True),
            "timestamp_frame": pa.array(np.round(np.nan_to_num(t) * 30).astype(np.int64)),
            "text": text,
            "tag": tag,
            "unsure": kind < 0.01,
            "annotation_uid": pa.array([None] * n_narrations, pa.string()),
        },
        schema=NARRATIONS,
    )
    pq.write_table(narrations, root / "narrations.parquet")
    videos = pa.table(
        {
            "video_uid": uids,
            "duration_sec": durations,
            "fps": np.full(n_videos, 30.0),
            "num_frames": (durations * 30).astype(np.int64),
        },
        schema=VIDEOS,
    )
    pq.write_table(videos, root / "videos.parquet")

    roles = rng.permutation(n_videos)
    n_split = max(1, n_videos // 12)
    splits = {
        "train": uids[roles[:n_split]].tolist(),
        "val": uids[roles[n_split : 2 * n_split]].tolist(),
        "test": uids[roles[2 * n_split : 3 * n_split]].tolist(),
    }
    (root / "splits.json").write_text(json.dumps(splits))
    em = {name: [] for name in EM_FILES}
    em_videos = np.concatenate([roles[:n_split], roles[3 * n_split : 3 * n_split + n_videos // 4]])
    for v in em_videos.tolist():
        dur = float(durations[v])
        for k, name in enumerate(EM_FILES):
            if name == "nlq_train.json" and v not in roles[:n_split]:
                continue
            start = round(float(rng.uniform(0, max(0.0, dur - 480))), 3)
            clip = {
                "clip_uid": f"{name[:2]}-{v}-{k}",
                "video_start_sec": start,
                "video_end_sec": round(min(dur, start + 480.0), 3),
            }
            em[name].append({"video_uid": uids[v], "clips": [clip]})
    for name, videos_ in em.items():
        (root / name).write_text(json.dumps({"videos": videos_}))


def world_inputs(root: Path, preset: str) -> None:
    """Build the demo world and ingest it with the project's own code into the files the sides read."""
    from egonlq.data.metadata import ingest_metadata
    from egonlq.data.narrations import ingest_narrations
    from egonlq.demo.world import build_world
    from egonlq.io import read_json, write_parquet

    world = root / "world"
    if not list(world.rglob("narration.json")):
        print(f"building the demo world ({preset}) in {world}", flush=True)
        build_world(world, preset=preset, write_features=False)
    ann = next(world.rglob("narration.json")).parent
    videos, _ = ingest_metadata(world / "ego4d.json")
    write_parquet(videos, root / "videos.parquet", VIDEOS)
    print("ingesting narration.json", flush=True)
    ingest_narrations(
        ann / "narration.json",
        root / "narrations.parquet",
        root / "summaries.parquet",
        known_videos=set(videos.column("video_uid").to_pylist()),
    )
    splits = {}
    for split, name in (
        ("train", "nlq_train.json"),
        ("val", "nlq_val.json"),
        ("test", "nlq_test_unannotated.json"),
    ):
        splits[split] = [v["video_uid"] for v in read_json(ann / name)["videos"]]
    (root / "splits.json").write_text(json.dumps(splits))
    for name in EM_FILES:
        (root / name).write_bytes((ann / name).read_bytes())


# ---------------------------------------------------------------------------------------------- ours


def _peak_mib() -> float:
    """Peak RSS of this process so far (the stage that raised it is the last one before)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_ours(root: Path, out: Path, template_blocks: int | None) -> dict:
    from egonlq.io import read_parquet
    from egonlq.queries.blocks import make_blocks
    from egonlq.queries.curation import assign_pseudo_clips, curate_narrations, pseudo_clips
    from egonlq.queries.llm_backends import TemplateBackend
    from egonlq.queries.llm_queries import generate_shard, load_prompt
    from egonlq.queries.naq import build_naq, em_train_clips, naq_table, naq_windows_from_narrations

    narrations = read_parquet(root / "narrations.parquet", NARRATIONS)
    videos = read_parquet(root / "videos.parquet", VIDEOS)
    splits = json.loads((root / "splits.json").read_text())
    times, peaks = {}, {}

    t = time.perf_counter()
    curated, _ = curate_narrations(narrations, videos, exclude_videos=splits)
    clips = pseudo_clips(curated)
    assigned, _ = assign_pseudo_clips(curated, clips)
    times["curation"], peaks["curation"] = time.perf_counter() - t, _peak_mib()

    t = time.perf_counter()
    pool = em_train_clips([root / name for name in EM_FILES])
    rows, _ = naq_windows_from_narrations(narrations, videos, alpha=None)
    naq, _ = build_naq(rows, pool)
    naq_rows = naq_table(naq)
    times["naq"], peaks["naq"] = time.perf_counter() - t, _peak_mib()

    t = time.perf_counter()
    blocks = make_blocks(assigned)[:template_blocks]
    for stale in (out / "cache.jsonl", out / "shard.parquet"):
        stale.unlink(missing_ok=True)
    generate_shard(
        blocks,
        TemplateBackend(),
        prompt_template=load_prompt(),
        cache_path=out / "cache.jsonl",
        out_path=out / "shard.parquet",
        batch_size=256,
    )
    generated = pq.read_table(out / "shard.parquet")
    times["templates"], peaks["templates"] = time.perf_counter() - t, _peak_mib()

    pq.write_table(assigned.select(CHECK_COLUMNS["curated"]), out / "curated.parquet")
    pq.write_table(naq_rows.select(CHECK_COLUMNS["naq"]), out / "naq.parquet")
    pq.write_table(generated.select(CHECK_COLUMNS["templates"]), out / "templates.parquet")
    return {"times": times, "peaks": peaks, "blocks": len(blocks)}


# ---------------------------------------------------------------------------------------------- baseline

CAMERA = "the camera wearer"
_LEAD_C = re.compile(r"^\s*#[cC]\s+[cC]\b", re.ASCII)
_TAGS = re.compile(r"#\w+", re.ASCII)
_LONE_C = re.compile(r"\bC\b", re.ASCII)
_SPACES = re.compile(r"\s+", re.ASCII)


def _clean(text: str | None) -> str | None:
    if text is None:
        return None
    t = _LONE_C.sub(CAMERA, _TAGS.sub(" ", _LEAD_C.sub(CAMERA, text)))
    t = _SPACES.sub(" ", t).strip(" .")
    return t[:1].upper() + t[1:]


def _mean_gap(ts: list[float]) -> float:
    ts = sorted(ts)
    return (
        sum(b - a for a, b in zip(ts[:-1], ts[1:], strict=True)) / (len(ts) - 1) if len(ts) >= 2 else math.nan
    )


def _window(t: float, beta: float, alpha: float, dur: float) -> tuple[float, float]:
    half = (alpha if math.isnan(beta) else beta) / (2 * alpha)
    return min(max(t - half, 0.0), dur), min(max(t + half, 0.0), dur)


def baseline_curation(
    rows: list[dict], durations: dict[str, float], splits: dict[str, list[str]]
) -> list[dict]:
    """curate_narrations + pseudo_clips + assign_pseudo_clips, row by row (defaults: pass 1, #O kept)."""
    from egonlq.queries.curation import pseudo_clip_uid  # the id formula only

    excluded = [set(splits["val"]), set(splits["test"]), set(splits["train"])]
    gaps: dict[tuple, list[float]] = defaultdict(list)
    kept = []
    for r in rows:
        t, dur, tag = r["timestamp_sec"], durations.get(r["video_uid"]), r["tag"].lower()
        valid = t is not None and math.isfinite(t) and t >= 0 and (dur is None or t <= dur)
        if valid and tag != "#summary":
            gaps[(r["video_uid"], r["pass"])].append(t)
        clean = _clean(r["text"])
        if (
            any(r["video_uid"] in s for s in excluded)
            or dur is None
            or r["pass"] != 1
            or tag == "#summary"
            or tag == "#unsure"
            or r["unsure"]
            or tag not in ("#c", "#o")
            or not valid
            or not clean
        ):
            continue
        kept.append({**r, "text_clean": clean, "dur": dur})
    betas = [b for b in (_mean_gap(ts) for ts in gaps.values()) if not math.isnan(b)]
    alpha = sum(betas) / len(betas)

    kept.sort(key=lambda r: (r["video_uid"], r["timestamp_sec"], r["pass"], r["narration_idx"]))
    seen, unique = set(), []
    for r in kept:
        key = (r["video_uid"], r["timestamp_sec"], r["text"])
        if key not in seen:
            seen.add(key)
            unique.append(r)
    per_group: dict[tuple, list[float]] = defaultdict(list)
    for r in unique:
        per_group[(r["video_uid"], r["pass"])].append(r["timestamp_sec"])
    beta = {k: _mean_gap(v) for k, v in per_group.items()}

    clips: dict[str, list[tuple[str, float, float]]] = {}
    for r in unique:
        vid = r["video_uid"]
        if vid not in clips:
            n = max(1, math.ceil(r["dur"] / 480.0))
            if n > 1 and r["dur"] - (n - 1) * 480.0 < 2.0:
                n -= 1
            clips[vid] = [
                (pseudo_clip_uid(vid, k * 480.0), k * 480.0, r["dur"] if k == n - 1 else (k + 1) * 480.0)
                for k in range(n)
            ]
        ws, we = _window(r["timestamp_sec"], beta[(vid, r["pass"])], alpha, r["dur"])
        cid, lo, hi = [c for c in clips[vid] if c[1] <= r["timestamp_sec"]][-1]
        r.update(
            narration_uid=f"{vid}:{r['pass']}:{r['narration_idx']}",
            window_start_sec=ws,
            window_end_sec=we,
            clip_uid=cid,
            clip_video_start_sec=lo,
            clip_duration_sec=hi - lo,
            clip_start_sec=min(max(ws, lo), hi) - lo,
            clip_end_sec=min(max(we, lo), hi) - lo,
        )
    return unique


def baseline_naq(root: Path, rows: list[dict], durations: dict[str, float]) -> list[dict]:
    """The reference create_naq_dataset.py loops, with EgoClip rows rebuilt from narrations by loops."""
    import random

    pool: dict[tuple[str, str], tuple[float, float]] = {}
    for name in EM_FILES:
        for v in json.loads((root / name).read_text())["videos"]:
            for c in v["clips"]:
                key = (v["video_uid"], c["clip_uid"])
                assert pool.setdefault(key, (c["video_start_sec"], c["video_end_sec"])) == (
                    c["video_start_sec"],
                    c["video_end_sec"],
                )
    v2c: dict[str, list] = defaultdict(list)
    for (vid, cid), (vs, ve) in pool.items():
        v2c[vid].append((cid, vs, ve))

    keep = [
        r
        for r in rows
        if r["video_uid"] in durations
        and r["tag"].lower() != "#summary"
        and r["timestamp_sec"] is not None
        and math.isfinite(r["timestamp_sec"])
        and 0 <= r["timestamp_sec"] <= durations[r["video_uid"]]
        and r["text"]
        and r["text"].strip()
    ]
    first_seen = {}
    for r in rows:
        first_seen.setdefault(r["video_uid"], len(first_seen))
    keep.sort(key=lambda r: (first_seen[r["video_uid"]], r["pass"], r["narration_idx"]))
    groups: dict[tuple, list[float]] = defaultdict(list)
    for r in keep:
        groups[(r["video_uid"], r["pass"])].append(r["timestamp_sec"])
    beta = {k: _mean_gap(v) for k, v in groups.items()}
    defined = [b for b in beta.values() if not math.isnan(b)]
    alpha = sum(defined) / len(defined)
    narr: dict[str, list] = {}
    for r in keep:
        a, b = _window(
            r["timestamp_sec"], beta[(r["video_uid"], r["pass"])], alpha, durations[r["video_uid"]]
        )
        narr.setdefault(r["video_uid"], []).append((a, b, r["text"]))

    random.seed(300)
    videos = sorted(v2c)
    random.shuffle(videos)
    kept_videos = set(videos[: int(len(videos) * 0.95)])
    out = []
    for vid, items in narr.items():
        if vid not in kept_videos:
            continue
        for cid, vs, ve in v2c[vid]:
            ann = f"{vid}_{cid}"
            lq = [(a - vs, b - vs, text) for a, b, text in items if not (a < vs or b > ve)]
            out.extend(
                {"query_uid": f"naq:{ann}:{i}", "query": text, "clip_start_sec": s, "clip_end_sec": e}
                for i, (s, e, text) in enumerate(lq)
            )
    return out


def baseline_templates(assigned: list[dict], limit: int | None) -> list[dict]:
    """Blocks of 8 by loops, the rule-based writer and the validator called directly (no prompt, no cache)."""
    from egonlq.queries.blocks import BlockRow, format_time
    from egonlq.queries.llm_parsing import SourceText, validate_items
    from egonlq.queries.llm_queries import DEFAULT_MIN_WINDOW_SEC, answer_window, fit_window
    from egonlq.queries.template_writer import write_block_questions

    by_video: dict[str, list[dict]] = defaultdict(list)
    for r in sorted(assigned, key=lambda r: (r["video_uid"], r["timestamp_sec"], r["narration_uid"])):
        by_video[r["video_uid"]].append(r)
    blocks = [(vid, rs[i : i + 8]) for vid, rs in by_video.items() for i in range(0, len(rs), 8)][:limit]
    seen: dict[str, set[str]] = defaultdict(set)
    out = []
    for vid, rs in blocks:
        items = [(format_time(r["timestamp_sec"]), r["text_clean"]) for r in rs]
        # the writer's (index from 1, template, question, last index from 1): "to", the last one spanned
        written = write_block_questions(items, seed=0)
        answer = [{"i": i, "question": q, "to": last} for i, _, q, last in written]
        sources = [SourceText(r["text"], r["text_clean"]) for r in rs]
        accepted, _ = validate_items(answer, sources, key="question", seen=seen[vid])
        rows = [
            BlockRow(
                r["narration_uid"], r["timestamp_sec"], r["text"], r["text_clean"], r["window_start_sec"],
                r["window_end_sec"], r["clip_uid"], r["clip_video_start_sec"], r["clip_duration_sec"],
                r["clip_start_sec"], r["clip_end_sec"],
            )
            for r in rs
        ]  # fmt: skip
        for index, question, last in accepted:
            r = rs[index]
            start, end = answer_window(rows, index, last)
            window = fit_window(start, end, r["clip_duration_sec"], min_window_sec=DEFAULT_MIN_WINDOW_SEC)
            if window is not None:
                out.append(
                    {
                        "narration_uid": r["narration_uid"],
                        "query": question,
                        "clip_start_sec": window[0],
                        "clip_end_sec": window[1],
                    }
                )
    return out


def run_baseline(root: Path, out: Path, template_blocks: int | None) -> dict:
    rows = pq.read_table(root / "narrations.parquet").to_pylist()
    durations = {
        r["video_uid"]: r["duration_sec"] for r in pq.read_table(root / "videos.parquet").to_pylist()
    }
    splits = json.loads((root / "splits.json").read_text())
    times, peaks = {}, {}
    t = time.perf_counter()
    assigned = baseline_curation(rows, durations, splits)
    times["curation"], peaks["curation"] = time.perf_counter() - t, _peak_mib()
    t = time.perf_counter()
    naq = baseline_naq(root, rows, durations)
    times["naq"], peaks["naq"] = time.perf_counter() - t, _peak_mib()
    t = time.perf_counter()
    generated = baseline_templates(assigned, template_blocks)
    times["templates"], peaks["templates"] = time.perf_counter() - t, _peak_mib()

    for name, records in (("curated", assigned), ("naq", naq), ("templates", generated)):
        cols = CHECK_COLUMNS[name]
        pq.write_table(pa.table({c: [r[c] for r in records] for c in cols}), out / f"{name}.parquet")
    return {"times": times, "peaks": peaks}


# ---------------------------------------------------------------------------------------------- driver


def measure(side: str, root: Path, out: Path, template_blocks: int | None) -> dict:
    """Run one side in a fresh subprocess; its stage times and peak RSS (MiB)."""
    out.mkdir(parents=True, exist_ok=True)
    result = out / "result.json"
    cmd = [
        sys.executable,
        __file__,
        "--side",
        side,
        "--inputs",
        str(root),
        "--out",
        str(out),
        "--result",
        str(result),
    ]
    if template_blocks is not None:
        cmd += ["--template-blocks", str(template_blocks)]
    t = time.perf_counter()
    proc = subprocess.Popen(cmd)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{side} side failed (status {status})")
    return {"wall_s": wall, "peak_rss_mib": usage.ru_maxrss / 1024, **json.loads(result.read_text())}


def compare(name: str, ours_path: Path, base_path: Path) -> bool:
    """Same rows (keyed by their id columns), windows within 1e-9 s."""
    key = CHECK_COLUMNS[name][:2]
    ours = pq.read_table(ours_path).to_pandas().sort_values(key, kind="stable").reset_index(drop=True)
    base = pq.read_table(base_path).to_pandas().sort_values(key, kind="stable").reset_index(drop=True)
    if len(ours) != len(base) or not (ours[key].to_numpy() == base[key].to_numpy()).all():
        print(f"check {name}: DIFFERENT rows ({len(ours)} ours vs {len(base)} baseline)")
        return False
    num = [c for c in CHECK_COLUMNS[name][2:] if c not in key]
    diff = max(
        (float(np.abs(ours[c].to_numpy(float) - base[c].to_numpy(float)).max()) for c in num if len(ours)),
        default=0.0,
    )
    ok = diff <= 1e-9
    verdict = "agree" if ok else "DIFFERENT"
    print(f"check {name}: {verdict} ({len(ours)} rows, max window difference {diff:.1e} s)")
    return ok


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--preset", default="full", help="demo_world preset (tiny, demo, full)")
    ap.add_argument("--narrations", type=int, help="use a synthetic NARRATIONS table of about N rows")
    ap.add_argument("--template-blocks", type=int, help="only the first N blocks in the template stage")
    ap.add_argument("--workdir", type=Path, help="where inputs and outputs go (default: a temp folder)")
    ap.add_argument("--repeat", type=int, default=3, help="runs of each side (medians, min, max; >= 3)")
    ap.add_argument("--side", choices=["ours", "baseline"], help=argparse.SUPPRESS)
    ap.add_argument("--inputs", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    a = ap.parse_args()

    if a.side:  # child process: one side
        run = run_ours if a.side == "ours" else run_baseline
        a.result.write_text(json.dumps(run(a.inputs, a.out, a.template_blocks)))
        return

    workdir = a.workdir or Path(tempfile.mkdtemp(prefix="bench_queries_"))
    root = workdir / (f"synthetic_{a.narrations}" if a.narrations else f"world_{a.preset}")
    if not (root / "narrations.parquet").exists():
        t = time.perf_counter()
        if a.narrations:
            print(f"writing synthetic inputs ({a.narrations} narrations) to {root}", flush=True)
            synthetic_inputs(root, a.narrations)
        else:
            world_inputs(root, a.preset)
        print(f"inputs ready in {time.perf_counter() - t:.1f} s", flush=True)
    n_rows = pq.ParquetFile(root / "narrations.parquet").metadata.num_rows

    runs: dict[str, list[dict]] = {"baseline": [], "ours": []}
    for _ in range(check_repeat(a.repeat)):
        for side in runs:
            runs[side].append(measure(side, root, workdir / f"out_{side}", a.template_blocks))
    print(f"\n{n_rows} narrations; template stage on {runs['ours'][0]['blocks']} blocks")
    print(f"medians of {a.repeat} runs each (min, max)")
    print(f"{'':22}{'baseline':>34}{'ours':>34}{'ratio':>10}")
    figures = {
        "stages total (s)": lambda r: sum(r["times"].values()),
        **{f"  {s} (s)": (lambda r, s=s: r["times"][s]) for s in ("curation", "naq", "templates")},
        "process wall (s)": lambda r: r["wall_s"],
        "peak RSS (MiB)": lambda r: r["peak_rss_mib"],
        **{f"  after {s} (MiB)": (lambda r, s=s: r["peaks"][s]) for s in ("curation", "naq", "templates")},
    }
    for label, figure in figures.items():
        b, o = ([figure(r) for r in runs[side]] for side in ("baseline", "ours"))
        ratio = median(b) / median(o) if median(o) else float("nan")
        print(f"{label:22}{spread(b, unit=''):>34}{spread(o, unit=''):>34}{ratio:9.2f}x")
    print(
        "(ratio = baseline / ours: > 1 means ours is faster / smaller; process wall includes reading inputs)"
    )
    ok = [
        compare(n, workdir / "out_ours" / f"{n}.parquet", workdir / "out_baseline" / f"{n}.parquet")
        for n in CHECK_COLUMNS
    ]
    if not all(ok):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
