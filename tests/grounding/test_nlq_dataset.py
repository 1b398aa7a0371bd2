"""VSLNet records and batches: pooling and labels, filters, few-shot, jittering, padding, text sources."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from egonlq.data.features import cut_clip, cut_clips
from egonlq.data.tables import CLIPS, QUERIES
from egonlq.errors import InputError
from egonlq.grounding.nlq_dataset import (
    NO_LABEL,
    CachedText,
    EncodedText,
    NLQDataset,
    _few_shot_mask,
    check_text,
    collate,
    load_records,
    make_text_source,
)
from egonlq.grounding.predict import predict_records
from egonlq.grounding.spans import highlight_labels, jitter_span, pool_features, span_labels
from egonlq.grounding.text_encoder import TextEncoder, build_text_cache, normalise_query
from egonlq.grounding.vslnet import VSLNet, VSLNetConfig
from egonlq.io import write_json, write_parquet
from egonlq.queries.training_queries import TRAINING_CLIPS, TRAINING_QUERIES
from egonlq.timegrid import OFFICIAL, FeatureGrid
from tests.conftest import write_tiny_bert

OBJECTS = ["cup", "key", "bag", "knife"]
WORDS = ["where", "is", "the", "did", "i", "put", "#", "c", "picks", "up", "?", *OBJECTS]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


# ------------------------------------------------------------------------------------------ a tiny world


def tiny_encoder(path: Path) -> Path:
    """A random 1-layer BERT (hidden 12) whose tokenizer knows the words of this world."""
    return write_tiny_bert(path, WORDS, hidden_size=12, num_hidden_layers=1)


@dataclass
class Query:
    clip: int
    obj: int
    start: float
    end: float
    source: str = "nlq"
    text: str | None = None  # default: from the object


@dataclass
class World:
    root: Path
    train_queries: Path
    train_clips: Path
    val_queries: Path
    val_clips: Path
    test_queries: Path
    features: Path
    gt: Path
    text_model: Path
    text_cache: Path
    raw: dict  # clip_uid -> the clip's cut feature rows
    queries: list[Query]
    durations: list[float]

    def paths(self) -> dict:
        """The input arguments of egonlq.grounding.train.train, val = the training clips' NLQ queries."""
        return dict(
            train_queries=self.train_queries,
            train_clips=self.train_clips,
            train_features=self.features,
            val_queries=self.val_queries,
            val_clips=self.val_clips,
            val_features=self.features,
            val_gt=self.gt,
            text_cache=self.text_cache,
            text_model=self.text_model,
        )


def query_text(q: Query) -> str:
    if q.text is not None:
        return q.text
    obj = OBJECTS[q.obj]
    return f"#C C picks up the {obj}" if q.source == "naq" else f"Where is the {obj}?"


def clip_uid(c: int) -> str:
    return f"clip{c:02d}"


def build_world(
    root: Path,
    durations: list[float],
    queries: list[Query],
    *,
    dim: int = 8,
    seed: int = 0,
    no_features: tuple[int, ...] = (),
    noise: float = 0.1,
    grid: FeatureGrid = OFFICIAL,
) -> World:
    """Clips cut from per-video feature files (video i holds clip i from 3 s on) whose rows sit on ``grid``;
    every feature row inside a query's window gets +1 in dimension ``obj`` (so the window is visible in the
    video)."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    feature_dir = root / "video_features"
    feature_dir.mkdir()
    clips = []
    for c, duration in enumerate(durations):
        rows = int((duration + 6) * grid.rows_per_second) + 1
        x = (noise * rng.standard_normal((rows, dim))).astype(np.float32)
        t = np.arange(rows) / grid.rows_per_second - 3.0  # clip-relative start time of each row
        for q in queries:
            if q.clip == c:
                x[(t + 0.5 >= q.start) & (t <= q.end), q.obj] += 1.0
        if c not in no_features:
            torch.save(torch.from_numpy(x), feature_dir / f"video{c:02d}.pt")
        clips.append(
            {
                "clip_uid": clip_uid(c),
                "video_uid": f"video{c:02d}",
                "video_start_sec": 3.0,
                "video_end_sec": 3.0 + duration,
                "clip_end_sec": duration,
            }
        )
    clip_frame = pd.DataFrame(clips)
    features = root / "clip_features.parquet"
    cut_clips(clip_frame, feature_dir, features, expected_dim=dim, on_missing="skip", grid=grid)
    raw = {}
    for c in range(len(durations)):
        if c not in no_features:
            full = torch.load(feature_dir / f"video{c:02d}.pt").numpy()
            raw[clip_uid(c)] = cut_clip(full, 3.0, 3.0 + durations[c], grid=grid)

    by_clip: dict[int, int] = {}
    rows = []
    for i, q in enumerate(queries):
        idx = by_clip.get(q.clip, 0)
        by_clip[q.clip] = idx + 1
        duration = durations[q.clip]
        annotation = f"ann{q.clip:02d}" if q.source == "nlq" else f"naq{q.clip:02d}"
        uid = f"{clip_uid(q.clip)}:{annotation}:{idx}" if q.source == "nlq" else f"naq:{annotation}:{i}"
        rows.append(
            {
                "query_uid": uid,
                "source": q.source,
                "video_uid": f"video{q.clip:02d}",
                "clip_uid": clip_uid(q.clip),
                "annotation_uid": annotation,
                "query_idx": idx,
                "query": query_text(q),
                "clip_start_sec": q.start,
                "clip_end_sec": q.end,
                "zero_length": abs(q.end - q.start) <= 1 / 30,
                "ends_after_clip": q.end > duration,
            }
        )
    train_queries = root / "training_queries.parquet"
    write_parquet(pa.Table.from_pylist(rows, schema=TRAINING_QUERIES), train_queries)
    train_clips = root / "training_clips.parquet"
    write_parquet(
        pa.Table.from_pylist([{**c, "sources": ["nlq"]} for c in clips], schema=TRAINING_CLIPS), train_clips
    )

    nlq = [r for r in rows if r["source"] == "nlq"]
    val_queries, test_queries = root / "val_queries.parquet", root / "test_queries.parquet"
    for split, path in (("val", val_queries), ("test", test_queries)):
        table = [query_row(r, split, annotated=split == "val") for r in nlq]
        write_parquet(pa.Table.from_pylist(table, schema=QUERIES), path)
    val_clips = root / "val_clips.parquet"
    write_parquet(
        pa.Table.from_pylist(
            [
                {
                    **c,
                    "split": "val",
                    "source_clip_uid": None,
                    "num_annotations": 1,
                    "num_queries": sum(r["clip_uid"] == c["clip_uid"] for r in nlq),
                }
                for c in clips
            ],
            schema=CLIPS,
        ),
        val_clips,
    )
    gt = root / "nlq_val.json"
    write_json(gt_json(nlq), gt)

    text_model = tiny_encoder(root / "encoder")
    text_cache = root / "text_cache.safetensors"
    build_text_cache([r["query"] for r in rows], TextEncoder(text_model, max_len=16), text_cache)
    return World(
        root,
        train_queries,
        train_clips,
        val_queries,
        val_clips,
        test_queries,
        features,
        gt,
        text_model,
        text_cache,
        raw,
        queries,
        durations,
    )


def query_row(r: dict, split: str, *, annotated: bool) -> dict:
    """A QUERIES row of a training row (test split: no GT window)."""
    return {
        "split": split,
        "video_uid": r["video_uid"],
        "clip_uid": r["clip_uid"],
        "annotation_uid": r["annotation_uid"],
        "query_idx": r["query_idx"],
        "query": r["query"],
        "query_clean": r["query"],
        "template": None,
        "slot_x": None,
        "verb_x": None,
        "slot_y": None,
        "verb_y": None,
        "answer": None,
        "raw_tags": None,
        "clip_start_sec": r["clip_start_sec"] if annotated else None,
        "clip_end_sec": r["clip_end_sec"] if annotated else None,
        "video_start_sec": None,
        "video_end_sec": None,
        "annotated": annotated,
        "has_text": r["query"].strip() != "",
        "zero_length": annotated and r["zero_length"],
        "ends_after_clip": annotated and r["ends_after_clip"],
    }


def gt_json(rows: list[dict]) -> dict:
    clips: dict[str, dict] = {}
    for r in rows:
        clip = clips.setdefault(
            r["clip_uid"],
            {
                "clip_uid": r["clip_uid"],
                "annotations": [{"annotation_uid": r["annotation_uid"], "language_queries": []}],
            },
        )
        clip["annotations"][0]["language_queries"].append(
            {"clip_start_sec": r["clip_start_sec"], "clip_end_sec": r["clip_end_sec"], "query": r["query"]}
        )
    return {"version": "v1", "videos": [{"video_uid": "v", "clips": list(clips.values())}]}


# ------------------------------------------------------------------------------------------------ tests

DURATIONS = [40.0, 40.0, 5.0, 40.0, 40.0]
QUERIES_ = [
    Query(0, 0, 10.0, 20.0),
    Query(0, 1, 30.0, 45.0),  # ends after its 40 s clip
    Query(0, 2, 12.2, 12.2),  # zero length
    Query(1, 3, 0.0, 8.0),
    Query(1, 0, 2.0, 6.0, source="naq"),
    Query(2, 1, 1.0, 3.0),  # a 5 s clip: fewer rows than max_pos_len
    Query(3, 2, 5.0, 9.0),
    Query(3, 0, 15.0, 25.0, source="naq"),
    Query(4, 3, 20.0, 30.0),  # clip 4 has no features
]


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> World:
    return build_world(tmp_path_factory.mktemp("world"), DURATIONS, QUERIES_, no_features=(4,))


def records(world: World, path: Path | None = None, **kw):
    args = dict(max_pos_len=16, label_mode="compatible", video_dim=8, progress=False)
    return load_records(path or world.train_queries, world.train_clips, world.features, **(args | kw))


@pytest.mark.parametrize("mode", ["compatible", "corrected"])
def test_pooling_labels_and_keys(world, mode):
    r = records(world, label_mode=mode)
    assert r.stats["records"] == 8 and r.stats["dropped_no_features"] == 1
    assert r.stats["clips_no_features"] == 1 and r.stats["clips"] == 4
    assert r.query_uid[0] == "clip00:ann00:0" and r.annotation_uid[1] == "ann00" and r.query_idx[2] == 2
    assert r.text[0] == "where is the cup?" and r.text[4] == normalise_query("#C C picks up the cup")
    assert r.source == ["nlq", "nlq", "nlq", "nlq", "naq", "nlq", "nlq", "naq"]
    assert r.stats["per_source"] == {"naq": 2, "nlq": 6} and r.stats["sources_in"] == {"naq": 2, "nlq": 7}
    for i, q in enumerate(QUERIES_[:8]):
        uid = clip_uid(q.clip)
        raw = world.raw[uid]
        np.testing.assert_array_equal(r.features[r.clip[i]], pool_features(raw, 16))
        assert r.v_len[i] == min(16, len(raw)) and r.duration[i] == DURATIONS[q.clip]
        end = min(q.end, DURATIONS[q.clip])  # the GT is clamped to the clip
        assert (r.s_ind[i], r.e_ind[i]) == span_labels(mode, q.start, end, DURATIONS[q.clip], int(r.v_len[i]))
    assert len(world.raw["clip00"]) == 76 and r.v_len[0] == 16
    assert r.v_len[5] == 11  # a 5 s clip from 3 s: rows 5..15
    assert (r.s_ind[0], r.e_ind[0]) == (4, 7)  # [10, 20] s on 2.5 s units
    assert r.stats["clamped_to_clip"] == 1 and r.stats["zero_length_kept"] == 1
    assert (r.s_ind[2], r.e_ind[2]) == ((0, 0) if mode == "compatible" else (4, 4))  # 12.2 s / 2.5 s units


def test_labels_and_predictions_follow_the_feature_files_grid(world, tmp_path):
    """A 6 rows/s set: [10.7, 11.0] s keeps its length (officially it falls inside one 0.53 s row and
    becomes the label (0, 0)), and predictions decode on the set's floored duration int(40.3 * 6) / 6."""
    six = FeatureGrid.of_windows(30.0, 5, 5)
    w = build_world(tmp_path / "six", [40.3], [Query(0, 0, 10.7, 11.0), Query(0, 1, 20.0, 30.0)], grid=six)
    r = records(w)
    assert r.grid == six and r.stats["rows_per_second"] == 6.0
    assert len(w.raw["clip00"]) == 242 and r.v_len.tolist() == [16, 16]  # rows int(3 * 6) .. int(43.3 * 6)
    assert (r.s_ind[0], r.e_ind[0]) == (4, 4)  # 2.52 s units: [10.67, 11.0] s is in unit 4
    assert span_labels("compatible", 10.7, 11.0, 40.3, 16) == (0, 0)  # what the official grid would give
    config = VSLNetConfig(video_dim=8, text_dim=12, dim=16, num_heads=2, max_pos_len=16, num_conv_layers=1)
    model = VSLNet(config)
    text = make_text_source("cache", text_cache=w.text_cache, text_model=w.text_model, max_len=16)
    unit = (241 / 6) / 16  # int(40.3 * 6) = 241 rows; the official grid would give 40 / 16 = 2.5 s
    for pred in predict_records(model, r, text):
        for s, e in pred.predicted_times:
            assert s / unit == pytest.approx(round(s / unit), abs=1e-4) and e <= 241 / 6 + 1e-4
    assert records(world).grid == OFFICIAL and records(world).stats["rows_per_second"] == 1.875


def test_filters_and_query_tables(world):
    r = records(world, remove_zero_length=True, require_labels=True)
    assert r.stats["dropped_zero_length"] == 1 and r.stats["records"] == 7
    assert "clip00:ann00:2" not in r.query_uid
    val = records(world, world.val_queries)  # QUERIES format: source nlq, uid from the keys
    assert val.stats["queries_in"] == 7 and val.stats["records"] == 6 and set(val.source) == {"nlq"}
    assert val.query_uid == [
        u for u, s in zip(records(world).query_uid, records(world).source, strict=True) if s == "nlq"
    ]
    test = records(world, world.test_queries)
    assert test.stats["records"] == 6 and (test.s_ind == NO_LABEL).all() and (test.e_ind == NO_LABEL).all()
    assert records(world, world.test_queries, require_labels=True).stats["dropped_not_annotated"] == 7
    naq = records(world, sources=["naq"])
    assert naq.source == ["naq", "naq"] and naq.stats["dropped_source"] == 7
    capped = records(world, max_queries=3, seed=1)
    assert len(capped) == 3 and capped.stats["dropped_cap"] == 5
    assert capped.query_uid == records(world, max_queries=3, seed=1).query_uid
    assert capped.query_uid == [u for u in records(world).query_uid if u in capped.query_uid]  # table order


def test_bad_inputs(world, tmp_path):
    with pytest.raises(InputError, match="features have dim 8.*field 'dim'"):
        records(world, video_dim=10)
    with pytest.raises(InputError, match="clip table not found"):
        load_records(
            world.train_queries,
            tmp_path / "none.parquet",
            world.features,
            max_pos_len=16,
            label_mode="compatible",
            video_dim=8,
        )
    clips = pd.read_parquet(world.train_clips).iloc[1:]
    write_parquet(
        pa.Table.from_pandas(clips, schema=TRAINING_CLIPS, preserve_index=False), tmp_path / "c.parquet"
    )
    with pytest.raises(InputError, match="1 clip.*absent from the clip table.*clip00"):
        load_records(
            world.train_queries,
            tmp_path / "c.parquet",
            world.features,
            max_pos_len=16,
            label_mode="compatible",
            video_dim=8,
        )


def test_few_shot_keeps_whole_nlq_clips(world):
    full = records(world)
    half = records(world, nlq_fraction=0.5, seed=3)
    assert half.stats["nlq_clips"] == 5 and half.stats["nlq_clips_kept"] == 2  # round(2.5) = 2
    kept = {c for c, s in zip(half.clip_uid, half.source, strict=True) if s == "nlq"}
    assert len(kept) <= 2
    for uid, c, s in zip(full.query_uid, full.clip_uid, full.source, strict=True):
        assert (uid in half.query_uid) == (s == "naq" or c in kept)
    assert half.query_uid == records(world, nlq_fraction=0.5, seed=3).query_uid
    zero = records(world, nlq_fraction=0.0)
    assert zero.source == ["naq", "naq"]


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 6), st.sampled_from(["nlq", "naq"])), min_size=1, max_size=30),
    st.floats(0, 1),
    st.integers(0, 50),
)
def test_few_shot_property(rows, fraction, seed):
    clip = np.array([f"c{c}" for c, _ in rows], dtype=object)
    source = np.array([s for _, s in rows], dtype=object)
    keep, n, n_keep = _few_shot_mask(source, clip, fraction, seed)
    assert n == len(set(clip[source == "nlq"])) and n_keep == round(fraction * n)
    assert keep[source == "naq"].all()
    kept_clips = set(clip[keep & (source == "nlq")])
    assert len(kept_clips) == n_keep
    assert all(keep[i] for i in range(len(rows)) if source[i] == "nlq" and clip[i] in kept_clips)


def test_jitter_only_on_configured_sources(world):
    r = records(world)
    draws = 60
    dataset = NLQDataset(r, jitter_factor=2.5, jitter_sources=["naq"], seed=7)
    seen: dict[int, set] = {i: set() for i in range(len(r))}
    for _ in range(draws):
        for i in range(len(r)):
            sample = dataset[i]
            s, e = sample["s_ind"], sample["e_ind"]
            seen[i].add((s, e))
            np.testing.assert_array_equal(sample["highlight"], highlight_labels(s, e, int(r.v_len[i])))
            assert 0 <= s <= r.s_ind[i] <= r.e_ind[i] <= e < r.v_len[i]  # contains the original
    for i, source in enumerate(r.source):
        if source == "nlq":
            assert seen[i] == {(r.s_ind[i], r.e_ind[i])}
        else:
            assert len(seen[i]) >= 2
    assert len(seen[7]) > 3  # a NaQ window inside its clip: many expansions and shifts
    again = NLQDataset(r, jitter_factor=2.5, jitter_sources=["naq"], seed=7)
    rng = random.Random(7)  # the seeded sequence: a fresh generator drawn as the dataset draws
    expected = [jitter_span(int(r.s_ind[4]), int(r.e_ind[4]), int(r.v_len[4]), 2.5, rng) for _ in range(5)]
    assert [(d["s_ind"], d["e_ind"]) for d in (again[4] for _ in range(5))] == expected
    off = NLQDataset(r, jitter_factor=0.0, jitter_sources=["naq"], seed=7)
    assert all(off[i]["s_ind"] == r.s_ind[i] for i in range(len(r)) for _ in range(3))
    llm = NLQDataset(r, jitter_factor=2.5, jitter_sources=["llm:*", "nlq"], seed=7)
    assert llm.jittered.tolist() == [s == "nlq" for s in r.source]
    with pytest.raises(ValueError, match="jitter_factor"):
        NLQDataset(r, jitter_factor=1.0)


def test_collate_pads_with_zeros(world):
    r = records(world)
    text = CachedText(
        make_text_source("cache", text_cache=world.text_cache, text_model=world.text_model, max_len=16).cache
    )
    dataset = NLQDataset(r)
    batch = collate([dataset[5], dataset[4]], text)  # 11 and 16 units
    assert batch.video.shape == (2, 16, 8) and batch.video_mask.sum(1).tolist() == [11.0, 16.0]
    assert torch.all(batch.video[0, 11:] == 0) and torch.all(batch.highlight[0, 11:] == 0)
    np.testing.assert_array_equal(batch.video[0, :11].numpy(), r.features[r.clip[5]])
    assert batch.index.tolist() == [5, 4] and batch.s_ind.tolist() == [r.s_ind[5], r.s_ind[4]]
    lengths = batch.text_mask.sum(1).long().tolist()
    assert lengths[0] != lengths[1]
    short = int(np.argmin(lengths))
    assert torch.all(batch.text[short, min(lengths) :] == 0)


def test_cached_and_encoded_text_agree(world):
    r = records(world)
    cached = make_text_source("cache", text_cache=world.text_cache, text_model=world.text_model, max_len=16)
    encoded = make_text_source("encoder", text_cache=None, text_model=world.text_model, max_len=16)
    assert isinstance(cached, CachedText) and isinstance(encoded, EncodedText)
    a, mask_a = cached.embed(r.text)
    b, mask_b = encoded.embed(r.text)
    torch.testing.assert_close(mask_a, mask_b)
    torch.testing.assert_close(a, b, atol=2e-3, rtol=2e-3)  # the cache stores float16
    assert torch.all(b[mask_b == 0] == 0) and a.abs().sum() > 0


def counting_encoder(world) -> tuple[TextEncoder, list[list[str]], Callable]:
    """The world's encoder with its ``embed`` calls recorded: (encoder, calls, the original embed)."""
    encoder = TextEncoder(world.text_model, max_len=16)
    calls: list[list[str]] = []
    embed = encoder.embed

    def counting(texts: list[str], **kw) -> tuple[torch.Tensor, torch.Tensor]:
        calls.append(list(texts))
        return embed(texts, **kw)

    encoder.embed = counting
    return encoder, calls, embed


def test_encoded_text_runs_the_encoder_once_per_unique_text(world):
    r = records(world)
    encoder, calls, embed = counting_encoder(world)
    texts = r.text[:4] + r.text[:2]  # duplicates inside one batch
    source = EncodedText(encoder)
    a, mask_a = source.embed(texts, training=True)
    assert calls == [[t] for t in dict.fromkeys(texts)]  # each text once, alone
    b, mask_b = source.embed(list(reversed(texts)))
    assert len(calls) == 4  # all seen: no encoder call
    assert torch.equal(b, a.flip(0)) and torch.equal(mask_b, mask_a.flip(0))
    for text, row, real in zip(texts, a, mask_a, strict=True):  # exactly the text encoded alone, zero padding
        alone, _ = embed([text])
        n = int(real.sum())
        assert n == alone.shape[1] and torch.equal(row[:n], alone[0]) and torch.all(row[n:] == 0)
    capped = EncodedText(encoder, memo_bytes=0)  # nothing kept: every batch runs the encoder, same values
    calls.clear()
    c, _ = capped.embed(texts)
    capped.embed(texts)
    assert len(calls) == 8 and capped.memo == {} and torch.equal(c, a)
    official = EncodedText(encoder, official=True)
    calls.clear()
    official.embed(texts, training=True)
    official.embed(texts, training=True)
    assert calls == [texts, texts] and official.memo == {}  # the reference's encoder run per batch


def test_encoded_text_prepare_batches_equal_lengths(world):
    """prepare() encodes a run's texts up front in batches without padding: the values of each text alone
    (up to rounding), the same for every run over the same texts, within the memory budget."""
    r = records(world)
    encoder, calls, embed = counting_encoder(world)
    texts = list(dict.fromkeys(r.text))
    source = EncodedText(encoder)
    source.prepare(texts + texts[:3])
    assert set(source.memo) == set(texts) and sum(map(len, calls)) == len(texts)
    assert len(calls) < len(texts)  # batched
    for batch in calls:  # one token count per batch: no padding
        assert len({n for n in encoder.token_lengths(batch)}) == 1
    calls.clear()
    padded, mask = source.embed(texts)
    assert calls == []  # all kept
    for text, row, real in zip(texts, padded, mask, strict=True):
        alone, _ = embed([text])
        n = int(real.sum())
        assert n == alone.shape[1] and torch.allclose(row[:n], alone[0], atol=1e-5)
        assert torch.all(row[n:] == 0)
    again = EncodedText(encoder)
    again.prepare(list(reversed(texts)))  # same set, another order: the same values
    assert all(np.array_equal(again.memo[t], source.memo[t]) for t in texts)
    capped = EncodedText(encoder, memo_bytes=1)  # room for no text
    capped.prepare(texts)
    assert capped.memo == {}
    official = EncodedText(encoder, official=True)
    calls.clear()
    official.prepare(texts)
    assert calls == [] and official.memo == {}


def test_text_checks(world, tmp_path):
    r = records(world)
    cached = make_text_source("cache", text_cache=world.text_cache, text_model=world.text_model, max_len=16)
    check_text(r, cached, text_dim=12, where=world.text_cache)
    with pytest.raises(InputError, match="size 12.*text_dim"):
        check_text(r, cached, text_dim=384, where=world.text_cache)
    r.text[0] = "an unknown query?"
    with pytest.raises(InputError, match="1 query text.*not in the text cache.*unknown query"):
        check_text(r, cached, text_dim=12, where=world.text_cache)
    with pytest.raises(InputError, match="max_len"):
        make_text_source("cache", text_cache=world.text_cache, text_model=world.text_model, max_len=32)
    with pytest.raises(InputError, match="needs a text cache"):
        make_text_source("cache", text_cache=None, text_model=world.text_model, max_len=16)
    assert json.loads(json.dumps(r.stats))["records"] == 8
