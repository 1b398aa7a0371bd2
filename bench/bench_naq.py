"""Benchmark: NaQ end to end (EgoClip csv -> NaQ + merged JSON) against the published script's method.

Baseline (what a user would otherwise run): ``srama2512/NaQ`` ``utils/create_naq_dataset.py``, re-stated here
step for step with the same I/O pattern and per-query Python construction: pandas ``read_csv`` of the
tab-separated ``egoclip.csv`` (``on_bad_lines="skip"``, the current name of its ``error_bad_lines=False``), a
per-row loop into a dict of lists per video, the EM train clips read with ``json.load`` (vq, nlq, moments)
into a (video, clip) dict plus the sorted list of clip uids, ``random.seed(300)`` and one shuffle of the
sorted video uids (v1, 95 %), a per-clip, per-narration containment loop building one dict per query (clips
checked against the set of pool clip uids), the NLQ merge through a set of (video, clip) pairs with its three
``calculate_stats`` passes and assertions, and one ``json.dump`` of the merged object. Left out: its tqdm
progress bars and prints (display only; leaving them out makes the baseline slightly faster, not slower).

Two environments for the baseline. This interpreter's pandas (3.x here) is the method on today's libraries,
the stricter comparison: pandas 3 parses the csv four to six times faster than pandas 1.5. But the script as
published runs on no pandas from 2.0 on (``error_bad_lines`` was removed), so a user runs it with its own
pins (``requirements.txt``: pandas 1.5.2): ``--published-python`` times the same baseline under a second
interpreter (``make published-env`` builds ``.venv-published`` with pandas 1.5.2 and numpy 1.23.5), and the
ratios are given against both.

Ours: the workflow's two jobs, each its own process: ``python -m egonlq.cli ingest-egoclip`` (csv ->
EGOCLIP parquet) and ``python -m egonlq.cli naq`` (NaQ JSON, merged JSON, the training-queries table, clips
table, stats). Timed separately and together, so the ratio is given for the NaQ job and for both.

Outputs are checked to be identical: our ``naq_train.json`` equals the baseline's NaQ object (video order,
clip order within each video and query order included), and our merged JSON equals the baseline's merged
object once both are sorted by ``(video_uid, clip_uid)`` (the reference iterates a Python set).

    .venv/bin/python bench/bench_naq.py --world /tmp/naq_world   # builds the full demo world if absent
    .venv/bin/python bench/bench_naq.py --world /tmp/naq_world --malformed-lines 100   # lines to skip
    .venv/bin/python bench/bench_naq.py --world /tmp/naq_world --published-python .venv-published/bin/python
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from medians import check_repeat, median, spread

REPO = Path(__file__).resolve().parent.parent


def _baseline_em_clips(ann: Path) -> tuple[list[str], dict[str, list[tuple[str, float, float]]]]:
    """The reference's ``get_em_clips``: sorted clip uids, and the clips of the VQ, NLQ and MQ train files
    (in that order) per video."""
    seen: dict[tuple[str, str], tuple[float, float]] = {}
    for task in ("vq", "nlq", "moments"):
        with open(ann / f"{task}_train.json") as f:
            data = json.load(f)
        for video in data["videos"]:
            for clip in video["clips"]:
                key = (video["video_uid"], clip["clip_uid"])
                bounds = (clip["video_start_sec"], clip["video_end_sec"])
                if key in seen:
                    assert seen[key] == bounds
                else:
                    seen[key] = bounds
    by_video: dict[str, list[tuple[str, float, float]]] = {}
    for (video_uid, clip_uid), (vs, ve) in seen.items():
        by_video.setdefault(video_uid, []).append((clip_uid, vs, ve))
    return sorted({clip_uid for _, clip_uid in seen}), by_video


def _baseline_stats(data: dict) -> tuple[int, set[str], set[str]]:
    """The reference's ``calculate_stats``: non-null queries, videos with clips, clip uids."""
    n_queries, video_uids, clip_uids = 0, set(), set()
    for video in data["videos"]:
        if video["clips"]:
            video_uids.add(video["video_uid"])
        for clip in video["clips"]:
            clip_uids.add(clip["clip_uid"])
            for ann in clip["annotations"]:
                for lq in ann.get("language_queries", []):
                    if lq is not None:
                        n_queries += 1
    return n_queries, video_uids, clip_uids


def _baseline_merge(naq: dict, nlq: dict) -> dict:
    """The reference's ``merge_naq_and_nlq``: NLQ annotations first; pairs from a set."""
    nlq_ann, naq_ann, md = {}, {}, {}
    fields = ("video_start_sec", "video_end_sec", "video_start_frame", "video_end_frame")
    for src, ann in ((nlq, nlq_ann), (naq, naq_ann)):
        for video in src["videos"]:
            for clip in video["clips"]:
                assert (video["video_uid"], clip["clip_uid"]) not in ann
                ann[(video["video_uid"], clip["clip_uid"])] = clip["annotations"]
                if clip["clip_uid"] in md:
                    for key in fields[:2]:
                        assert math.isclose(md[clip["clip_uid"]][key], clip[key])
                else:
                    md[clip["clip_uid"]] = {k: clip[k] for k in fields}
    by_video: dict[str, list[str]] = {}
    for vid, cid in set(list(nlq_ann) + list(naq_ann)):
        by_video.setdefault(vid, []).append(cid)
    out = {"videos": []}
    for vid, cids in by_video.items():
        clips = []
        for cid in cids:
            clip = {"clip_uid": cid, **md[cid], "annotations": []}
            clip["annotations"] += nlq_ann.get((vid, cid), [])
            clip["annotations"] += naq_ann.get((vid, cid), [])
            clips.append(clip)
        out["videos"].append({"video_uid": vid, "clips": clips, "split": "train"})
    (n_nlq, v_nlq, c_nlq), (n_naq, v_naq, c_naq) = _baseline_stats(nlq), _baseline_stats(naq)
    n_out, v_out, c_out = _baseline_stats(out)
    assert n_out == n_nlq + n_naq and v_out == v_nlq | v_naq and c_out == c_nlq | c_naq
    return out


def run_baseline(csv: Path, ann: Path, out: Path) -> None:
    """The published script's method; writes the merged JSON (timed) and the NaQ object (not timed)."""
    import pandas as pd

    random.seed(300)
    frame = pd.read_csv(csv, sep="\t", on_bad_lines="skip")
    narrations: dict[str, list[tuple[float, float, str]]] = {}
    for video_uid, a, b, text in zip(
        frame["video_uid"].tolist(),
        frame["clip_start"].tolist(),
        frame["clip_end"].tolist(),
        frame["clip_text"].tolist(),
        strict=True,
    ):
        narrations.setdefault(video_uid, []).append((a, b, text))
    pool_clips, clips_of = _baseline_em_clips(ann)
    pool_clips = set(pool_clips)
    videos = sorted(clips_of)
    random.shuffle(videos)
    kept = {v: clips_of[v] for v in videos[: int(len(videos) * 0.95)]}
    naq: dict = {"videos": []}
    for video_uid, rows in narrations.items():
        if video_uid not in kept:
            continue
        video = {"video_uid": video_uid, "clips": [], "split": "train"}
        for clip_uid, vs, ve in kept[video_uid]:
            if clip_uid not in pool_clips:
                continue
            queries = [
                {
                    "clip_start_sec": a - vs,
                    "clip_end_sec": b - vs,
                    "video_start_sec": a,
                    "video_end_sec": b,
                    "video_start_frame": int(math.floor(a * 30.0)),
                    "video_end_frame": int(math.ceil(b * 30.0)),
                    "query": text,
                }
                for a, b, text in rows
                if not (a < vs or b > ve)
            ]
            video["clips"].append(
                {
                    "clip_uid": clip_uid,
                    "video_start_sec": vs,
                    "video_end_sec": ve,
                    "video_start_frame": int(math.floor(vs * 30.0)),
                    "video_end_frame": int(math.ceil(ve * 30.0)),
                    "annotations": [
                        {"language_queries": queries, "annotation_uid": f"{video_uid}_{clip_uid}"}
                    ],
                }
            )
        naq["videos"].append(video)
    with open(ann / "nlq_train.json") as f:
        nlq = json.load(f)
    merged = _baseline_merge(naq, nlq)
    with open(out / "merged.json", "w") as f:
        json.dump(merged, f)
    print(f"TIMED {time.perf_counter()} {_cpu_seconds(resource.RUSAGE_SELF)} {pd.__version__}", flush=True)
    with open(out / "naq_train.json", "w") as f:
        json.dump(naq, f)


def with_malformed_lines(csv: Path, out: Path, n: int) -> Path:
    """A copy of ``csv`` with ``n`` lines of too many fields (a data line and two more) spread through it."""
    lines = csv.read_bytes().splitlines(keepends=True)
    step = max(1, (len(lines) - 1) // (n + 1))
    with open(out, "wb") as f:
        f.write(lines[0])
        for i, line in enumerate(lines[1:], start=1):
            f.write(line)
            if i % step == 0 and i // step <= n:
                f.write(line.rstrip(b"\r\n") + b"\textra\tfields\n")
    return out


def _cpu_seconds(who: int) -> float:
    """User + system CPU seconds of this process or its waited-for children (all threads)."""
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def _cli(*args: str) -> tuple[float, float]:
    """Run one egonlq command in its own process; its wall and CPU seconds."""
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    wall, cpu = time.perf_counter(), _cpu_seconds(resource.RUSAGE_CHILDREN)
    subprocess.run([sys.executable, "-m", "egonlq.cli", *args], check=True, env=env, capture_output=True)
    return time.perf_counter() - wall, _cpu_seconds(resource.RUSAGE_CHILDREN) - cpu


def run_ours(csv: Path, ann: Path, out: Path) -> tuple[tuple[float, float], tuple[float, float]]:
    """The workflow's ingest-egoclip and naq jobs; the (wall, CPU) seconds of each."""
    ingest = _cli("ingest-egoclip", "--input", str(csv), "--table", str(out / "egoclip.parquet"),
                  "--report", str(out / "egoclip_report.json"))  # fmt: skip
    naq = _cli("naq", "--egoclip", str(out / "egoclip.parquet"),
               "--em-train", str(ann / "vq_train.json"), str(ann / "moments_train.json"),
               "--nlq-train", str(ann / "nlq_train.json"), "--table", str(out / "naq.parquet"),
               "--clips", str(out / "clips.parquet"), "--naq-json", str(out / "naq_train.json"),
               "--merged-json", str(out / "merged.json"), "--stats", str(out / "stats.json"))  # fmt: skip
    return ingest, naq


def _sorted(merged: dict) -> list:
    videos = sorted(merged["videos"], key=lambda v: v["video_uid"])
    return [{**v, "clips": sorted(v["clips"], key=lambda c: c["clip_uid"])} for v in videos]


def identical(ours: Path, base: Path) -> tuple[bool, bool]:
    """(NaQ objects equal in order, merged objects equal once sorted by (video, clip))."""
    load = lambda p: json.loads(p.read_bytes())  # noqa: E731
    naq_same = load(ours / "naq_train.json") == load(base / "naq_train.json")
    merged_same = _sorted(load(ours / "merged.json")) == _sorted(load(base / "merged.json"))
    return naq_same, merged_same


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--world", type=Path, default=Path(tempfile.gettempdir()) / "bench_naq_world")
    ap.add_argument("--preset", default="full", help="demo world preset built when --world has none")
    ap.add_argument("--repeat", type=int, default=3, help="runs of each side (medians, min, max; >= 3)")
    ap.add_argument(
        "--malformed-lines",
        type=int,
        default=0,
        help="run on a copy of the csv with this many lines of too many fields spread through it (both sides "
        "skip them, as EgoVLP's loader expects of the real file)",
    )
    ap.add_argument(
        "--published-python",
        type=Path,
        help="also run the baseline under this interpreter: a venv with the script's own pins (pandas 1.5.2, "
        "`make published-env`), where its `error_bad_lines=False` still runs; ratios are given against both",
    )
    ap.add_argument("--side", choices=["baseline"], help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--csv", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    csv = args.csv or args.world / "egoclip.csv"
    ann = args.world / "v1" / "annotations"
    if args.side == "baseline":
        run_baseline(csv, ann, args.out)
        return
    check_repeat(args.repeat)
    if not csv.exists():
        from egonlq.demo.world import build_world

        print(f"building the demo world ({args.preset}) in {args.world}", flush=True)
        build_world(args.world, preset=args.preset, write_features=False)
    interpreters = {"baseline": Path(sys.executable)}
    if args.published_python:
        interpreters["published"] = args.published_python
    # wall and CPU seconds per run: each baseline up to its merged JSON, our two jobs
    runs: dict[str, list[tuple[float, float]]] = {key: [] for key in (*interpreters, "ingest-egoclip", "naq")}
    pandas_of: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as tmp:
        if args.malformed_lines:
            csv = with_malformed_lines(csv, Path(tmp) / "egoclip.csv", args.malformed_lines)
        ours_out = Path(tmp) / "ours"
        ours_out.mkdir()
        for _ in range(args.repeat):  # the sides alternate, so a drift of the machine's speed hits them all
            for key, python in interpreters.items():
                (Path(tmp) / key).mkdir(exist_ok=True)
                runs[key].append(_baseline_run(python, csv, args.world, Path(tmp) / key, pandas_of, key))
            ingest, naq = run_ours(csv, ann, ours_out)
            runs["ingest-egoclip"].append(ingest)
            runs["naq"].append(naq)
        same = {key: identical(ours_out, Path(tmp) / key) for key in interpreters}
    runs["both jobs"] = [
        (a[0] + b[0], a[1] + b[1]) for a, b in zip(runs["ingest-egoclip"], runs["naq"], strict=True)
    ]
    bad = f", {args.malformed_lines} malformed lines added" if args.malformed_lines else ""
    print(f"NaQ end to end, {args.world}{bad} (medians of {args.repeat} runs each, min and max)")
    labels = {
        "baseline": f"baseline (published method, pandas {pandas_of['baseline']})",
        "published": f"baseline (published pins, pandas {pandas_of.get('published')})",
        "ingest-egoclip": "ours: ingest-egoclip",
        "naq": "ours: naq",
        "both jobs": "ours: both jobs",
    }
    for i, what in enumerate(("wall", "CPU (user + system, all threads)")):
        print(f"  {what}" + "".join(f"   ratio vs {key}" for key in interpreters))
        bases = [median([r[i] for r in runs[key]]) for key in interpreters]
        for key, label in labels.items():
            if key not in runs:
                continue
            times = [r[i] for r in runs[key]]
            ratios = "".join(f"   {base / median(times):8.2f}x" for base in bases)
            print(f"    {label:<56}{spread(times):>32}{ratios}")
    for key, (naq_same, merged_same) in same.items():
        print(f"  output identical to {key}: NaQ JSON {naq_same}, merged JSON (sorted) {merged_same}")
    if not all(all(pair) for pair in same.values()):
        raise SystemExit("outputs differ")


def _baseline_run(
    python: Path, csv: Path, world: Path, out: Path, pandas_of: dict[str, str], key: str
) -> tuple[float, float]:
    """One run of the baseline under ``python``: (wall, CPU) seconds up to its merged JSON, the interpreter's
    start and imports included; records the pandas version it ran with."""
    t0 = time.perf_counter()
    cmd = [str(python), __file__, "--side", "baseline", "--world", str(world), "--csv", str(csv)]
    try:
        proc = subprocess.run([*cmd, "--out", str(out)], capture_output=True, text=True)
    except OSError as e:  # no such interpreter
        raise SystemExit(f"the baseline's interpreter {python} cannot run: {e}") from e
    if proc.returncode != 0:
        raise SystemExit(f"the baseline under {python} failed (rc {proc.returncode}):\n{proc.stderr[-2000:]}")
    _, done, cpu, version = next(ln for ln in proc.stdout.splitlines() if ln.startswith("TIMED")).split()
    pandas_of[key] = version
    return float(done) - t0, float(cpu)


if __name__ == "__main__":
    main()
