"""Benchmark: our ingest (metadata + NLQ annotations + streaming narrations) against a naive baseline.

The baseline stands for what one writes first (there is no published ingest to run instead): ``json.load`` of
each file, a Python loop over every record building row dicts, ``pa.Table.from_pylist`` and one
``pq.write_table``. Each side runs in its own subprocess on the same inputs, ``--repeat`` times (at least 3,
sides alternating); medians are compared (with min and max) of the wall time (of the whole subprocess,
interpreter start included) and of its stages, the CPU time of the child (user + system, all threads: the
steadier figure on a shared machine) and of its stages, and peak RSS (the child's ``VmHWM``: ``ru_maxrss``
would include the pages of the forked parent), and the narration and summary tables of both sides are checked
to be equal.

Inputs: ``--preset full`` (Ego4D scale, ~3.85M narrations) builds the file set with
``egonlq.demo.world.build_world(..., write_features=False)``; ``--narrations N`` instead writes a synthetic
``narration.json`` of about N narrations (plus small metadata and NLQ files) with this script's own
generator, for quick runs::

    .venv/bin/python bench/bench_ingest.py --narrations 500000
    .venv/bin/python bench/bench_ingest.py --preset full --workdir /tmp/bench_full
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from egonlq.data import narrations as narr
from egonlq.data.tables import CLIPS, NARRATIONS, QUERIES, SUMMARIES, VIDEOS
from medians import check_repeat, median, spread

NLQ_SPLITS = {
    "nlq_train.json": "train",
    "nlq_val.json": "val",
    "nlq_test_unannotated.json": "test",
    "nlq_test_gt.json": "test",
}


# ---------------------------------------------------------------------------------------------- inputs


def find_inputs(root: Path) -> dict[str, Path]:
    """The Ego4D-named input files under ``root`` (any depth): ego4d.json, narration.json, nlq_*.json."""
    found = {}
    for name in ("ego4d.json", "narration.json", *NLQ_SPLITS):
        hits = sorted(root.rglob(name))
        if hits:
            found[name] = hits[0]
    if "narration.json" not in found:
        raise SystemExit(f"no narration.json under {root}")
    return found


def synthetic_inputs(root: Path, n_narrations: int, *, seed: int = 0) -> None:
    """Write ego4d.json, three NLQ files and a narration.json of about ``n_narrations`` (Ego4D-like)."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    objects = ["knife", "cup", "bowl", "drawer", "fridge", "tap", "spoon", "pan", "towel", "lid", "plate"]
    verbs = ["picks", "puts", "opens", "closes", "washes", "holds", "drops", "cuts", "pours", "takes"]
    n_videos = max(1, n_narrations // 400)
    sizes = rng.multinomial(n_narrations, np.full(n_videos, 1 / n_videos))
    uids = [f"{seed:08x}-0000-4000-8000-{i:012x}" for i in range(n_videos)]
    durations = rng.uniform(300, 3600, n_videos).round(3)

    with open(root / "narration.json", "w", encoding="utf-8") as f:
        f.write("{")
        for v, (uid, size, duration) in enumerate(zip(uids, sizes, durations, strict=True)):
            two_passes = rng.random() < 0.6
            per_pass = [size - size // 2, size // 2] if two_passes else [size]
            video = {}
            for p, count in enumerate(per_pass, start=1):
                ts = rng.uniform(0, duration, count).round(4)
                actor = rng.random(count) < 0.9
                ann = f"aa{v:06x}-{p:04x}-4000-8000-000000000001"
                entries = []
                for t, is_c, verb, obj, r in zip(
                    ts.tolist(),
                    actor.tolist(),
                    rng.choice(verbs, count).tolist(),
                    rng.choice(objects, count).tolist(),
                    rng.random(count).tolist(),
                    strict=True,
                ):
                    text = f"#C C {verb} the {obj}" if is_c else f"#O a man {verb} the {obj}"
                    if r < 0.01:
                        text += " #unsure"
                    elif r < 0.02:
                        text += " in the café’s “kitchen”"
                    entries.append(
                        {
                            "timestamp_sec": t,
                            "timestamp_frame": round(t * 30),
                            "_unmapped_timestamp_sec": t,
                            "narration_text": text,
                            "annotation_uid": ann,
                        }
                    )
                summaries = [
                    {
                        "start_sec": 0.0,
                        "end_sec": float(duration),
                        "summary_text": "#summary C works.",
                        "annotation_uid": ann,
                    }
                ]
                video[f"narration_pass_{p}"] = {"narrations": entries, "summaries": summaries}
            video["status"] = "complete"
            f.write(("," if v else "") + f"\n{json.dumps(uid)}: " + json.dumps(video, ensure_ascii=False))
        f.write("\n}\n")

    videos = [
        {
            "video_uid": uid,
            "duration_sec": float(d),
            "video_metadata": {"fps": 30.0, "num_frames": int(d * 30)},
        }
        for uid, d in zip(uids, durations, strict=True)
    ]
    (root / "ego4d.json").write_text(json.dumps({"videos": videos}))
    for name, split in (
        ("nlq_train.json", "train"),
        ("nlq_val.json", "val"),
        ("nlq_test_unannotated.json", "test"),
    ):
        nlq_videos = []
        for i in range(min(n_videos, 100)):
            q = {"query": f"Where did I put the {objects[i % len(objects)]}?"}
            if split != "test":
                start = float(rng.uniform(0, 400))
                q.update(
                    clip_start_sec=start,
                    clip_end_sec=start + 10.0,
                    video_start_sec=start,
                    video_end_sec=start + 10.0,
                    template="Place: Where did I put X?",
                    slot_x="x",
                    verb_x="put",
                    raw_tags=["Place: Where did I put X?", q["query"], "x", "put"],
                )
            nlq_videos.append(
                {
                    "video_uid": uids[i],
                    "split": split,
                    "clips": [
                        {
                            "clip_uid": f"{split}-clip-{i}",
                            "video_start_sec": 0.0,
                            "video_end_sec": 480.0,
                            "clip_start_sec": 0,
                            "clip_end_sec": 480.0,
                            "source_clip_uid": f"src-{i}",
                            "annotations": [
                                {"annotation_uid": f"{split}-ann-{i}", "language_queries": [q] * 8}
                            ],
                        }
                    ],
                }
            )
        (root / name).write_text(json.dumps({"version": "1", "videos": nlq_videos}))


# ---------------------------------------------------------------------------------------------- the two sides


class StageClock:
    """Wall and CPU seconds of consecutive stages (CPU: ``process_time``, all threads of the process)."""

    def __init__(self) -> None:
        self.times: dict[str, float] = {}
        self._start()

    def _start(self) -> None:
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def lap(self, stage: str) -> None:
        """End ``stage`` (begun at the previous lap, or at creation) and begin the next."""
        self.times[stage] = time.perf_counter() - self.wall
        self.times[f"{stage}_cpu"] = time.process_time() - self.cpu
        self._start()


def run_ours(inputs: dict[str, Path], out: Path) -> dict[str, float]:
    from egonlq.data.annotations import ingest_nlq
    from egonlq.data.metadata import ingest_metadata
    from egonlq.io import write_parquet

    clock = StageClock()
    if "ego4d.json" in inputs:
        videos, _ = ingest_metadata(inputs["ego4d.json"])
        write_parquet(videos, out / "videos.parquet", VIDEOS)
        known = set(videos.column("video_uid").to_pylist())
    else:
        known = None
    clock.lap("metadata")
    for name, split in NLQ_SPLITS.items():
        if name in inputs:
            clips, queries, _ = ingest_nlq(inputs[name], split)
            write_parquet(clips, out / f"{name}.clips.parquet", CLIPS)
            write_parquet(queries, out / f"{name}.queries.parquet", QUERIES)
    clock.lap("nlq")
    narr.ingest_narrations(
        inputs["narration.json"], out / "narrations.parquet", out / "summaries.parquet", known_videos=known
    )
    clock.lap("narrations")
    return clock.times


def _naive_tag(text: str | None) -> tuple[str, bool]:
    if text is None:
        return "none", False
    n_unsure = len(re.findall(narr.UNSURE_PATTERN, text, re.ASCII))
    if re.match(narr.SUMMARY_PATTERN, text, re.ASCII):
        return "#summary", n_unsure > 0
    lead = re.match(narr.LEADING_CO_PATTERN, text, re.ASCII)
    if lead:
        return ("#C" if lead["co"] in "Cc" else "#O"), n_unsure > 0
    n_tags = len(re.findall(narr.TAG_PATTERN, text, re.ASCII))
    return ("#unsure" if n_tags and n_tags == n_unsure else "none"), n_unsure > 0


def _naive_number(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def run_baseline(inputs: dict[str, Path], out: Path) -> dict[str, float]:
    clock = StageClock()
    if "ego4d.json" in inputs:
        with open(inputs["ego4d.json"], encoding="utf-8") as f:
            data = json.load(f)
        rows = [
            {
                "video_uid": v["video_uid"],
                "duration_sec": v["duration_sec"],
                "fps": v["video_metadata"]["fps"],
                "num_frames": v["video_metadata"]["num_frames"],
            }
            for v in data["videos"]
        ]
        pq.write_table(pa.Table.from_pylist(rows, schema=VIDEOS), out / "videos.parquet", compression="zstd")
    clock.lap("metadata")

    for name, split in NLQ_SPLITS.items():
        if name not in inputs:
            continue
        with open(inputs[name], encoding="utf-8") as f:
            data = json.load(f)
        clips, queries = [], []
        for video in data["videos"]:
            for clip in video["clips"]:
                n_queries = 0
                for ann in clip["annotations"]:
                    for i, q in enumerate(ann["language_queries"]):
                        n_queries += 1
                        start, end = q.get("clip_start_sec"), q.get("clip_end_sec")
                        text = q.get("query")
                        queries.append(
                            {
                                "split": split,
                                "video_uid": video["video_uid"],
                                "clip_uid": clip["clip_uid"],
                                "annotation_uid": ann["annotation_uid"],
                                "query_idx": i,
                                "query": text,
                                "query_clean": text.strip() if text is not None else None,
                                **{
                                    k: q.get(k)
                                    for k in (
                                        "template",
                                        "slot_x",
                                        "verb_x",
                                        "slot_y",
                                        "verb_y",
                                        "answer",
                                        "raw_tags",
                                        "video_start_sec",
                                        "video_end_sec",
                                    )
                                },
                                "clip_start_sec": start,
                                "clip_end_sec": end,
                                "annotated": start is not None,
                                "has_text": bool(text and text.strip()),
                                "zero_length": start is not None and abs(end - start) <= 1 / 30,
                                "ends_after_clip": end is not None and end > clip["clip_end_sec"] + 1e-6,
                            }
                        )
                clips.append(
                    {
                        "split": split,
                        "video_uid": video["video_uid"],
                        "clip_uid": clip["clip_uid"],
                        "video_start_sec": clip["video_start_sec"],
                        "video_end_sec": clip["video_end_sec"],
                        "clip_end_sec": clip["clip_end_sec"],
                        "source_clip_uid": clip.get("source_clip_uid"),
                        "num_annotations": len(clip["annotations"]),
                        "num_queries": n_queries,
                    }
                )
        pq.write_table(pa.Table.from_pylist(clips, schema=CLIPS), out / f"{name}.clips.parquet")
        pq.write_table(pa.Table.from_pylist(queries, schema=QUERIES), out / f"{name}.queries.parquet")
    clock.lap("nlq")

    with open(inputs["narration.json"], encoding="utf-8") as f:
        data = json.load(f)
    rows, summaries = [], []
    for uid, video in data.items():
        for p in (1, 2):
            pass_value = video.get(f"narration_pass_{p}") or {}
            for i, n in enumerate(pass_value.get("narrations", [])):
                text = n.get("narration_text")
                text = text if isinstance(text, str) and text.strip() else None
                tag, unsure = _naive_tag(text)
                frame = n.get("timestamp_frame")
                rows.append(
                    {
                        "video_uid": uid,
                        "pass": p,
                        "narration_idx": i,
                        "timestamp_sec": _naive_number(n.get("timestamp_sec")),
                        "timestamp_frame": frame
                        if isinstance(frame, int) and not isinstance(frame, bool)
                        else None,
                        "text": text,
                        "tag": tag,
                        "unsure": unsure,
                        "annotation_uid": n.get("annotation_uid"),
                    }
                )
            for s in pass_value.get("summaries", []):
                text = s.get("summary_text")
                summaries.append(
                    {
                        "video_uid": uid,
                        "pass": p,
                        "start_sec": _naive_number(s.get("start_sec")),
                        "end_sec": _naive_number(s.get("end_sec")),
                        "text": text if isinstance(text, str) and text.strip() else None,
                        "annotation_uid": s.get("annotation_uid"),
                    }
                )
    pq.write_table(
        pa.Table.from_pylist(rows, schema=NARRATIONS), out / "narrations.parquet", compression="zstd"
    )
    pq.write_table(
        pa.Table.from_pylist(summaries, schema=SUMMARIES), out / "summaries.parquet", compression="zstd"
    )
    clock.lap("narrations")
    return clock.times


# ---------------------------------------------------------------------------------------------- driver


def peak_rss_mib() -> float:
    """Peak RSS of this process since its exec (``VmHWM``; ``ru_maxrss`` also counts the forked parent)."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(side: str, inputs_root: Path, out: Path) -> dict:
    """Run one side in a fresh subprocess; its wall time, stage times and peak RSS (MiB)."""
    out.mkdir(parents=True, exist_ok=True)
    stages = out / "stages.json"
    cmd = [sys.executable, __file__, "--side", side, "--inputs", str(inputs_root), "--out", str(out)]
    t = time.perf_counter()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run([*cmd, "--stages", str(stages)], check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall = time.perf_counter() - t
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall_s": wall, "cpu_s": cpu, **json.loads(stages.read_text())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--preset", default="full", help="demo_world preset (tiny, demo, full)")
    ap.add_argument("--narrations", type=int, help="use a synthetic narration.json of about N narrations")
    ap.add_argument("--workdir", type=Path, help="where inputs and outputs go (default: a temp folder)")
    ap.add_argument("--no-check", action="store_true", help="skip the equality check of the outputs")
    ap.add_argument("--repeat", type=int, default=3, help="runs of each side (medians, min, max; >= 3)")
    ap.add_argument("--side", choices=["ours", "baseline"], help=argparse.SUPPRESS)
    ap.add_argument("--inputs", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--stages", type=Path, help=argparse.SUPPRESS)
    a = ap.parse_args()

    if a.side:  # child process: one side, stage times to --stages
        run = run_ours if a.side == "ours" else run_baseline
        stages = run(find_inputs(a.inputs), a.out)
        a.stages.write_text(json.dumps({**stages, "peak_rss_mib": peak_rss_mib()}))
        return

    workdir = a.workdir or Path(tempfile.mkdtemp(prefix="bench_ingest_"))
    if a.narrations:
        inputs_root = workdir / f"synthetic_{a.narrations}"
        if not (inputs_root / "narration.json").exists():
            print(f"writing synthetic inputs ({a.narrations} narrations) to {inputs_root}", flush=True)
            synthetic_inputs(inputs_root, a.narrations)
    else:
        inputs_root = workdir / f"world_{a.preset}"
        if not (inputs_root / "narration.json").exists() and not list(inputs_root.rglob("narration.json")):
            from egonlq.demo.world import build_world

            print(f"building the demo world ({a.preset}) in {inputs_root}", flush=True)
            build_world(inputs_root, preset=a.preset, write_features=False)
    inputs = find_inputs(inputs_root)
    size_mib = inputs["narration.json"].stat().st_size / 2**20

    runs: dict[str, list[dict]] = {"baseline": [], "ours": []}
    for _ in range(check_repeat(a.repeat)):
        for side in runs:
            runs[side].append(measure(side, inputs_root, workdir / f"out_{side}"))
    n_rows = pq.ParquetFile(workdir / "out_ours" / "narrations.parquet").metadata.num_rows
    print(f"\nnarration.json: {size_mib:.1f} MiB, {n_rows} narrations; inputs {sorted(inputs)}")
    print(f"medians of {a.repeat} runs each (min, max); ratio = baseline / ours: > 1 means ours is faster")
    print(f"{'':22}{'baseline':>34}{'ours':>34}{'ratio':>10}")
    rows = [
        ("wall time (s)", "wall_s"),
        ("  metadata (s)", "metadata"),
        ("  nlq (s)", "nlq"),
        ("  narrations (s)", "narrations"),
        ("CPU time (s)", "cpu_s"),
        ("  metadata (s)", "metadata_cpu"),
        ("  nlq (s)", "nlq_cpu"),
        ("  narrations (s)", "narrations_cpu"),
        ("peak RSS (MiB)", "peak_rss_mib"),
    ]
    for label, key in rows:
        b, o = ([r[key] for r in runs[side]] for side in ("baseline", "ours"))
        ratio = median(b) / median(o) if median(o) else float("nan")
        print(f"{label:22}{spread(b, unit=''):>34}{spread(o, unit=''):>34}{ratio:9.2f}x")

    if not a.no_check:
        for name in ("narrations.parquet", "summaries.parquet"):
            ours = pq.read_table(workdir / "out_ours" / name)
            base = pq.read_table(workdir / "out_baseline" / name)
            same = ours.equals(base)
            print(f"check {name}: {'identical' if same else 'DIFFERENT'} ({ours.num_rows} rows)")
            if not same:
                raise SystemExit(1)


if __name__ == "__main__":
    main()
