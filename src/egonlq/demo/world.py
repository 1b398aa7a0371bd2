"""The embedded demo world ("mini-Ego4D"): seeded synthetic data in exactly the official Ego4D formats.

A fresh clone has no Ego4D (licence-gated, hundreds of gigabytes), so the workflow's default input is this
world. It writes the files a real Ego4D CLI download holds, under the same relative paths, so that a real user
only changes the root path (demo-world.md, ego4d-formats.md):

    ego4d.json
    v1/annotations/nlq_{train,val}.json, nlq_test_unannotated.json, nlq_test_gt.json (demo only: test answers)
    v1/annotations/vq_train.json, moments_train.json        (minimal: the EM train clips NaQ pools)
    v1/annotations/narration.json
    egoclip.csv
    v1/<feature_name>/<video_uid>.pt                          torch.Tensor [N, D] float16
    v1/full_scale/<video_uid>.mp4                            a few rendered videos (render.py; videos_dir)

The world is built in rooms: :mod:`~egonlq.demo.vocabulary` (words, templates, sentences),
:mod:`~egonlq.demo.model` (presets, videos, events, narrations), :mod:`~egonlq.demo.nlq` (NLQ annotations
with the real files' quirks planted and counted) and :mod:`~egonlq.demo.render` (mp4 files); this module
assembles the world and writes the files. The feature at index ``i`` is the normalised sum of the vectors
active at ``i / 1.875`` s (the event's verb, object and person, the scene's place, weighted) plus Gaussian
noise, times ``sqrt(D)`` so that entries are of order 1 like real features (unit-norm rows would be drowned by
VSLNet's N(0, 1) position table, and the model would not learn). A model can only localise a query by
learning which words map to which directions. Same seed, same bytes.
"""

from __future__ import annotations

import logging
import math
import time
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from egonlq.data.egoclip import alpha_of, egoclip_windows, mean_gaps
from egonlq.data.feature_sets import write_sidecar
from egonlq.data.features import save_video_features
from egonlq.demo.goalstep import write_goalstep
from egonlq.demo.model import (
    CLIP_SEC,
    NLQ_SPLITS,
    PRESETS,
    ROLES,
    DemoPreset,
    NarrationPass,
    Video,
    World,
    draw_durations,
    draw_uuids,
    make_video,
    vocabulary_vectors,
    world_rng,
)
from egonlq.demo.nlq import QUIRK_RATES, make_em_train, make_nlq_split
from egonlq.demo.vocabulary import FILLERS, OBJECTS, PEOPLE, PLACES, VERBS, egoclip_tags, narration_sentence
from egonlq.demo.vocabulary import plural as plural  # re-exported for egonlq.video.frame_encoders
from egonlq.io import atomic_path, write_json
from egonlq.progress import tqdm
from egonlq.timegrid import CANONICAL_FPS, FEATURES_PER_SEC, OFFICIAL, num_features

logger = logging.getLogger(__name__)

_MANIFEST = "s3://ego4d-consortium-sharing/public/v1/full_scale/manifest.csv"
_ANNOTATION_DATE = "220216"


def make_world(preset: str | DemoPreset = "demo", seed: int = 0) -> World:
    """Generate the whole world in memory (videos, events, narrations, annotations); writes nothing."""
    p = PRESETS[preset] if isinstance(preset, str) else preset
    rng = world_rng(seed, "videos")
    counts = (
        p.nlq_train_videos,
        p.nlq_val_videos,
        p.nlq_test_videos,
        p.em_train_videos,
        p.narration_only_videos,
    )
    roles = [role for role, n in zip(ROLES, counts, strict=True) for _ in range(n)]
    uids = draw_uuids(rng, len(roles))
    durations = draw_durations(rng, p, len(roles))
    max_clips = len(p.clips_per_video)
    for i, role in enumerate(roles):  # NLQ videos must hold their clips: room for the most clips drawn
        if role.startswith("nlq") and max_clips > 1:
            durations[i] = max(durations[i], max_clips * (CLIP_SEC + 1.0) + rng.uniform(0, 300))
    videos = [
        make_video(seed, p, uid, role, i, float(d))
        for i, (uid, role, d) in enumerate(
            tqdm(list(zip(uids, roles, durations, strict=True)), desc="demo world: videos", disable=None)
        )
    ]
    quirks: Counter = Counter()
    nlq = {
        split: make_nlq_split(seed, p, split, [v for v in videos if v.role == f"nlq_{split}"], quirks)
        for split in NLQ_SPLITS
    }
    em_train = make_em_train(seed, nlq["train"], [v for v in videos if v.role == "em_train"])
    return World(p, seed, sorted(videos, key=lambda v: v.uid), nlq, em_train, quirks)


# ----------------------------------------------------------------------------------------------------------
# Features
# ----------------------------------------------------------------------------------------------------------


def video_features(world: World, video: Video, vectors: dict[str, np.ndarray]) -> np.ndarray:
    """The planted features of one video: ``[num_features(num_frames), D]`` float16."""
    p = world.preset
    dim = vectors["verbs"].shape[1]
    n = num_features(video.num_frames)
    place, ev = video.state_at(np.arange(n) / FEATURES_PER_SEC)
    x = p.place_weight * vectors["places"][place]
    on = ev >= 0
    e = ev[on]
    x[on] += vectors["verbs"][video.ev_verb[e]] + vectors["objects"][video.ev_obj[e]]
    person = video.ev_person[e]
    rows = np.flatnonzero(on)[person >= 0]
    x[rows] += vectors["people"][person[person >= 0]]
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    rng = world_rng(world.seed, "features", video.index, dim)
    x += (p.noise / math.sqrt(dim)) * rng.standard_normal((n, dim), dtype=np.float32)
    x *= math.sqrt(dim)  # entries of order 1, the scale of real features and of VSLNet's positions
    return x.astype(np.float16)


# ----------------------------------------------------------------------------------------------------------
# Writers
# ----------------------------------------------------------------------------------------------------------


def _nlq_file(videos: list[dict], description: str) -> dict:
    return {
        "version": "1",
        "date": _ANNOTATION_DATE,
        "description": description,
        "manifest": _MANIFEST,
        "videos": videos,
    }


def _unannotated(videos: list[dict]) -> list[dict]:
    """The test split as published: same clips, each language query only ``{"query": ...}``."""
    return [
        {
            **v,
            "clips": [
                {
                    **c,
                    "annotations": [
                        {
                            "annotation_uid": a["annotation_uid"],
                            "language_queries": [
                                {"query": q["query"]} if "query" in q else {} for q in a["language_queries"]
                            ],
                        }
                        for a in c["annotations"]
                    ],
                }
                for c in v["clips"]
            ],
        }
        for v in videos
    ]


_EGOCLIP_HEADER = (
    "clip_idx",
    "video_uid",
    "video_dur",
    "narration_source",
    "narration_ind",
    "narration_time",
    "clip_start",
    "clip_end",
    "clip_text",
    "tag_verb",
    "tag_noun",
)


def _pass_strings(video: Video, npass: NarrationPass) -> tuple[list[str], list[str], list[str]]:
    """Texts, EgoClip verb tags and noun tags of one pass, in file order (texts with the planted variants).

    Strings are built once per distinct (form, verb, object, place, person, filler) and gathered.
    """
    on = npass.event >= 0
    ev = np.where(on, npass.event, 0)
    fields = (
        npass.form.astype(np.int64),
        np.where(on, video.ev_verb[ev], 0),
        np.where(on, video.ev_obj[ev], 0),
        npass.place.astype(np.int64),
        np.where(on, video.ev_person[ev], -1) + 1,
        npass.filler.astype(np.int64) + 1,
    )
    radix = (4, len(VERBS), len(OBJECTS), len(PLACES), len(PEOPLE) + 1, len(FILLERS) + 1)
    code = np.ravel_multi_index(fields, radix)
    uniq, inverse = np.unique(code, return_inverse=True)
    keys = [
        (f, v, o, pl, pe - 1, k - 1)
        for f, v, o, pl, pe, k in zip(*(a.tolist() for a in np.unravel_index(uniq, radix)), strict=True)
    ]
    texts = np.array([narration_sentence(*k) for k in keys], dtype=object)[inverse].tolist()
    tags = [egoclip_tags(*k) for k in keys]
    verbs = np.array([t[0] for t in tags], dtype=object)[inverse].tolist()
    nouns = np.array([t[1] for t in tags], dtype=object)[inverse].tolist()
    for i in np.flatnonzero(npass.unsure | npass.lower_tag).tolist():
        text = texts[i]
        if npass.lower_tag[i]:
            text = text[:2].lower() + text[2:]
        if npass.unsure[i] == 1:  # mid-sentence, after the verb ("#C C picks #unsure the knife")
            words = text.split(" ")
            cut = 3 if words[0].lower() == "#c" else 4
            text = " ".join(words[:cut] + ["#unsure"] + words[cut:])
        elif npass.unsure[i] == 2:
            text = f"{text} #unsure"
        texts[i] = text
    return texts, verbs, nouns


def _pass_json(video: Video, npass: NarrationPass, texts: list[str]) -> str:
    """One ``narration_pass_N`` object, formatted by hand (the texts are plain words, nothing to escape)."""
    uid = npass.annotation_uid
    item = (
        '{"timestamp_sec": %r, "timestamp_frame": %d, "_unmapped_timestamp_sec": %r, '
        '"narration_text": "%s", "annotation_uid": "' + uid + '"}'
    )
    times = npass.time.tolist()
    frames = np.round(npass.time * CANONICAL_FPS).astype(np.int64).tolist()
    items = ",".join([item % row for row in zip(times, frames, times, texts, strict=True)])
    summary = (
        f'{{"start_sec": 0.0, "end_sec": {video.duration_sec}, '
        f'"summary_text": "{npass.summary}", "annotation_uid": "{uid}"}}'
    )
    return f'{{"narrations": [{items}], "summaries": [{summary}]}}'


def _write_narrations(world: World, json_path: Path, csv_path: Path) -> int:
    """Stream ``narration.json`` and ``egoclip.csv`` video by video (bounded memory at full scale).

    EgoClip has one row per narration of every pass, in file order, windows by the EgoClip rule
    (:mod:`egonlq.data.egoclip`: beta per (video, pass), alpha their mean, clamped to the video). Returns the
    number of narrations (= EgoClip rows).
    """
    betas = mean_gaps({(v.uid, j): p.time for v in world.videos for j, p in enumerate(v.passes)})
    alpha = alpha_of(betas)
    logger.info("egoclip.csv: alpha = %.4f s over %d (video, pass) groups", alpha, len(betas))
    total = 0
    with (
        atomic_path(json_path) as tmp_json,
        atomic_path(csv_path) as tmp_csv,
        open(tmp_json, "w", encoding="utf-8") as fj,
        open(tmp_csv, "w", encoding="utf-8") as fc,
    ):
        fc.write("\t".join(_EGOCLIP_HEADER) + "\n")
        fj.write("{")
        for k, video in enumerate(tqdm(world.videos, desc="demo world: narrations", disable=None)):
            fj.write(("," if k else "") + f'"{video.uid}": {{')
            for j, npass in enumerate(video.passes):
                texts, tag_verbs, tag_nouns = _pass_strings(video, npass)
                fj.write(f'"narration_pass_{j + 1}": {_pass_json(video, npass, texts)}, ')
                start, end = egoclip_windows(
                    npass.time, betas[(video.uid, j)], alpha, duration=video.duration_sec
                )
                head = f"%d\t{video.uid}\t{video.duration_sec:.6f}\tnarration_pass_{j + 1}\t"
                row = head + "%d\t%r\t%.6f\t%.6f\t%s\t%s\t%s\n"
                columns = (npass.time.tolist(), start.tolist(), end.tolist(), texts, tag_verbs, tag_nouns)
                fc.writelines([row % (total + i, i, *r) for i, r in enumerate(zip(*columns, strict=True))])
                total += len(texts)
            fj.write('"status": "complete"}')
        fj.write("}\n")
    return total


def _file_size(paths: Iterable[Path]) -> int:
    return sum(p.stat().st_size for p in paths)


def build_world(
    out_dir: Path,
    *,
    preset: str = "demo",
    seed: int = 0,
    feature_name: str = "demo_features",
    feature_dim: int = 256,
    write_features: bool | None = None,
    render_videos: int | None = None,
    videos_dir: str | Path = "v1/full_scale",
) -> dict:
    """Write the demo world under ``out_dir`` in the official Ego4D layout; return counts (see module doc).

    ``write_features`` / ``render_videos`` default to the preset's values (features for tiny/demo only);
    rendered mp4 files go to ``out_dir / videos_dir`` (the workflow's ``data.videos``).
    Every file is written atomically. The stats dict holds video counts per role, clips, annotations and
    queries per split, narration and EgoClip counts, every planted quirk (``quirk_<kind>``), the files
    written and their bytes.
    """
    if preset not in PRESETS:
        raise ValueError(f"unknown demo preset {preset!r}; expected one of {sorted(PRESETS)}")
    t0 = time.perf_counter()
    out_dir = Path(out_dir)
    world = make_world(preset, seed)
    p = world.preset
    write_features = p.write_features if write_features is None else write_features
    render_videos = p.render_videos if render_videos is None else render_videos
    ann = out_dir / "v1" / "annotations"
    written: list[Path] = []

    def json_file(obj: object, path: Path) -> None:
        write_json(obj, path)
        written.append(path)

    json_file(
        {
            "videos": [
                {
                    "video_uid": v.uid,
                    "duration_sec": round(v.duration_sec, 6),
                    "video_metadata": {"fps": CANONICAL_FPS, "num_frames": v.num_frames},
                }
                for v in world.videos
            ]
        },
        out_dir / "ego4d.json",
    )
    json_file(_nlq_file(world.nlq["train"], "NLQ Annotations (train)"), ann / "nlq_train.json")
    json_file(_nlq_file(world.nlq["val"], "NLQ Annotations (val)"), ann / "nlq_val.json")
    json_file(
        _nlq_file(_unannotated(world.nlq["test"]), "NLQ Annotations (test unannotated)"),
        ann / "nlq_test_unannotated.json",
    )
    json_file(
        _nlq_file(world.nlq["test"], "NLQ Annotations (test ground truth, demo world only)"),
        ann / "nlq_test_gt.json",
    )
    json_file(_nlq_file(world.em_train["vq"], "VQ Annotations (train, clips only)"), ann / "vq_train.json")
    json_file(
        _nlq_file(world.em_train["moments"], "MQ Annotations (train, clips only)"),
        ann / "moments_train.json",
    )
    written += write_goalstep(world, out_dir / "v2" / "annotations")
    n_narrations = _write_narrations(world, ann / "narration.json", out_dir / "egoclip.csv")
    written += [ann / "narration.json", out_dir / "egoclip.csv"]

    n_features = 0
    if write_features:
        vectors = vocabulary_vectors(seed, feature_dim)
        for video in tqdm(world.videos, desc="demo world: features", disable=None):
            path = out_dir / "v1" / feature_name / f"{video.uid}.pt"
            save_video_features(video_features(world, video, vectors), path)
            written.append(path)
            n_features += 1
        # the set's provenance: planted vectors on the official grid (egonlq.data.feature_sets)
        backbone = "demo world: planted event vectors plus noise"
        written.append(
            write_sidecar(out_dir / "v1" / feature_name, feature_name, backbone, OFFICIAL, feature_dim)
        )

    rendered = []
    if render_videos:
        from egonlq.demo.render import render_world_videos  # imports PyAV only when rendering

        rendered = render_world_videos(world, out_dir / videos_dir, render_videos)
        written.extend(rendered)

    stats = _stats(world, n_narrations)
    stats.update(
        feature_files=n_features,
        feature_dim=feature_dim if write_features else 0,
        rendered_videos=len(rendered),
        files_written=len(written),
        bytes_written=_file_size(written),
        seconds=round(time.perf_counter() - t0, 3),
    )
    logger.info("demo world %r (seed %d) written to %s: %s", preset, seed, out_dir, stats)
    return stats


def _stats(world: World, n_narrations: int) -> dict:
    roles = Counter(v.role for v in world.videos)
    stats: dict = {"preset": world.preset.name, "seed": world.seed, "videos": len(world.videos)}
    stats.update({f"videos_{role}": roles[role] for role in ROLES})
    for split, records in world.nlq.items():
        clips = [c for v in records for c in v["clips"]]
        annotations = [a for c in clips for a in c["annotations"]]
        stats[f"clips_{split}"] = len(clips)
        stats[f"annotations_{split}"] = len(annotations)
        stats[f"queries_{split}"] = sum(len(a["language_queries"]) for a in annotations)
    stats["clips_vq_train"] = sum(len(v["clips"]) for v in world.em_train["vq"])
    stats["clips_moments_train"] = sum(len(v["clips"]) for v in world.em_train["moments"])
    stats["narrations"] = n_narrations
    stats["narrations_pass_2"] = sum(len(v.passes[1].time) for v in world.videos if len(v.passes) > 1)
    stats["videos_with_pass_2"] = sum(len(v.passes) > 1 for v in world.videos)
    stats["summaries"] = sum(len(v.passes) for v in world.videos)
    stats["egoclip_rows"] = n_narrations
    stats.update({f"quirk_{kind}": world.quirks[kind] for kind in QUIRK_RATES})
    return stats
