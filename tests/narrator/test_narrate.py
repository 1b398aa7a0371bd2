"""Narration windows, cached sharded narration, training resumption, the consumers, the quality scores."""

from __future__ import annotations

import json

import pandas as pd
import pyarrow as pa
import pytest
import torch

from egonlq.dualenc.pairs import PAIRS, select_pairs
from egonlq.errors import InputError
from egonlq.io import read_parquet
from egonlq.narrator.consumers import narrator_pairs
from egonlq.narrator.decode import Decoding
from egonlq.narrator.model import Narrator, NarratorConfig, load_causal_lm, load_narrator, load_video_tower
from egonlq.narrator.narrate import NARRATIONS, narrate_shard, narration_windows
from egonlq.narrator.quality import caption_scores, words
from egonlq.narrator.train import LAST_STATE, NarratorTrainSpec, train_narrator

from .conftest import TEXTS, VIDEO_DIM


def _pairs() -> pa.Table:
    """v1 (16 s, train): narrations at 2 s and 3 s; v2 (16 s, held out): one at 5 s; one template row."""
    rows = [
        ("n1", "v1", 1.5, 2.5, TEXTS[0], "narration", "train", 0.05, 2.0),
        ("n1", "v1", 1.5, 2.5, "what did i open?", "template", "train", 0.05, 2.0),
        ("n2", "v1", 2.5, 3.5, TEXTS[1], "narration", "train", 0.5, 3.0),
        ("n3", "v2", 4.5, 5.5, TEXTS[2], "narration", "heldout", 0.3, 5.0),
    ]
    return pa.Table.from_pandas(pd.DataFrame(rows, columns=PAIRS.names), schema=PAIRS, preserve_index=False)


def test_windows_egoclip_heldout_and_dense_gaps():
    # 30 rows = 16 s per video; dense 4 s windows every 4 s: [0,4) holds both v1 narrations, the others none
    w = narration_windows(_pairs(), {"v1": 30, "v2": 30}, dense_sec=4.0, dense_stride=4.0)
    assert w[w["kind"] == "egoclip"]["item_uid"].tolist() == ["n1", "n2"]
    assert w[w["kind"] == "heldout"]["item_uid"].tolist() == ["n3"]
    dense = w[w["kind"] == "dense"]
    assert dense["video_uid"].unique().tolist() == ["v1"]  # held-out videos are not densified
    assert dense["start_sec"].tolist() == [4.0, 8.0, 12.0]
    assert dense["end_sec"].tolist() == [8.0, 12.0, 16.0]
    assert (
        narration_windows(_pairs(), {"v1": 30, "v2": 30}, dense_sec=0, dense_stride=4)["kind"]
        .ne("dense")
        .all()
    )
    # the same 30 rows at 6 rows/s are 5 s of video: one dense window fits, and it holds the narrations
    rows = {"v1": 30, "v2": 30}
    six = narration_windows(_pairs(), rows, dense_sec=4.0, dense_stride=4.0, rows_per_second=6.0)
    assert not (six["kind"] == "dense").any()


@pytest.fixture()
def trained(lm_dir, tower_dir, bank, tmp_path):
    lm, tok = load_causal_lm(lm_dir)
    torch.manual_seed(0)
    narrator = Narrator(
        NarratorConfig(num_queries=3, heads=2, video_width=8, lm_width=16),
        load_video_tower(tower_dir, video_dim=VIDEO_DIM),
        lm,
    )
    rows = _pairs().to_pandas().query("source == 'narration'")
    provenance = {"lm_dir": str(lm_dir), "tower_dir": str(tower_dir), "video_dim": VIDEO_DIM, "max_rows": 4}
    spec = NarratorTrainSpec(steps=6, batch_size=2, save_every=2, max_rows=4)
    summary = train_narrator(narrator, tok, rows, bank, spec, tmp_path / "model", provenance=provenance)
    return tmp_path / "model", rows, spec, provenance, summary


def test_training_moves_the_gates_and_resumes_exactly(trained, lm_dir, tower_dir, bank, tmp_path):
    model_dir, rows, spec, provenance, summary = trained
    assert any(abs(g) > 0 for gates in summary["tanh_gates"].values() for g in gates)
    full = (model_dir / "narrator.safetensors").read_bytes()
    # a run killed after step 4: last.pt of step 4 is what the interrupted run left; resume to 6
    other = tmp_path / "resumed"
    lm, tok = load_causal_lm(lm_dir)
    torch.manual_seed(0)
    narrator = Narrator(
        NarratorConfig(num_queries=3, heads=2, video_width=8, lm_width=16),
        load_video_tower(tower_dir, video_dim=VIDEO_DIM),
        lm,
    )
    train_narrator(
        narrator,
        tok,
        rows,
        bank,
        NarratorTrainSpec(**{**spec.__dict__, "steps": 4}),
        other,
        provenance=provenance,
    )
    state = torch.load(other / LAST_STATE, weights_only=True)
    assert state["step"] == 4
    # the 4-step run's fingerprint differs (another spec): rewrite it as the 6-step run's state at step 4
    first = torch.load(model_dir / LAST_STATE, weights_only=True)
    state["fingerprint"] = first["fingerprint"]
    torch.save(state, other / LAST_STATE)
    lm, tok = load_causal_lm(lm_dir)
    torch.manual_seed(123)  # a different init: the resumed weights must come from last.pt
    narrator = Narrator(
        NarratorConfig(num_queries=3, heads=2, video_width=8, lm_width=16),
        load_video_tower(tower_dir, video_dim=VIDEO_DIM),
        lm,
    )
    resumed = train_narrator(narrator, tok, rows, bank, spec, other, provenance=provenance)
    assert resumed["resumed_at"] == 4
    assert (other / "narrator.safetensors").read_bytes() == full


def test_narrate_caches_resumes_and_regenerates_only_changed_kinds(trained, bank, tmp_path):
    model_dir = trained[0]
    narrator, tok, provenance = load_narrator(model_dir)
    windows = narration_windows(_pairs(), {"v1": 30, "v2": 30}, dense_sec=4.0, dense_stride=4.0)
    clip, dense = Decoding(num_sequences=3, max_tokens=6), Decoding(num_sequences=2, max_tokens=6)

    def run(decodings, tag):
        return narrate_shard(
            narrator, tok, bank, windows, decodings=decodings, model_digest="m", seed=0, max_rows=4, shard=0,
            num_shards=1, cache_path=tmp_path / "cache.jsonl", out_path=tmp_path / f"{tag}.parquet",
            stats_path=tmp_path / f"{tag}.json", batch_size=2,
        )  # fmt: skip

    first = run({"egoclip": clip, "heldout": clip, "dense": dense}, "a")
    assert first["narrated"] == 6 and first["from_cache"] == 0
    table = read_parquet(tmp_path / "a.parquet", NARRATIONS).to_pandas()
    assert [len(t) for t in table["texts"]] == [3 if k != "dense" else 2 for k in table["kind"]]
    assert json.loads(table["decoding"].iloc[0])["top_p"] == 0.95
    again = run({"egoclip": clip, "heldout": clip, "dense": dense}, "b")
    assert again["narrated"] == 0
    assert read_parquet(tmp_path / "b.parquet").equals(read_parquet(tmp_path / "a.parquet"))
    # a changed dense setting regenerates the 3 dense windows only
    changed = run(
        {"egoclip": clip, "heldout": clip, "dense": Decoding(num_sequences=2, max_tokens=6, temperature=1.0)},
        "c",
    )
    assert changed["narrated"] == 3 and changed["from_cache"] == 3


def test_narrate_shards_split_videos(trained, bank, tmp_path):
    narrator, tok, _ = load_narrator(trained[0])
    windows = narration_windows(_pairs(), {"v1": 30, "v2": 30}, dense_sec=0, dense_stride=4.0)
    clip = Decoding(num_sequences=1, max_tokens=3)
    seen = []
    for shard in range(2):
        narrate_shard(
            narrator, tok, bank, windows, decodings={"egoclip": clip, "heldout": clip}, model_digest="m",
            seed=0, max_rows=4, shard=shard, num_shards=2, cache_path=tmp_path / f"c{shard}.jsonl",
            out_path=tmp_path / f"s{shard}.parquet", stats_path=tmp_path / f"s{shard}.json",
        )  # fmt: skip
        seen += read_parquet(tmp_path / f"s{shard}.parquet").column("item_uid").to_pylist()
    assert sorted(seen) == ["n1", "n2", "n3"]


def _narrations(rows) -> pa.Table:
    df = pd.DataFrame(
        rows, columns=["item_uid", "kind", "video_uid", "start_sec", "end_sec", "timestamp_sec", "texts"]
    )
    df["entropy_scores"] = [[1.5] * len(t) for t in df["texts"]]
    df["model"], df["decoding"] = "m", "{}"
    return pa.Table.from_pandas(df[NARRATIONS.names], schema=NARRATIONS, preserve_index=False)


def test_narrator_pairs_extend_items_and_add_dense_items():
    nar = _narrations(
        [
            ("n1", "egoclip", "v1", 1.5, 2.5, 2.0, ["c opens a drawer", "c opens a drawer", ""]),
            ("dense:v1:8.000", "dense", "v1", 8.0, 12.0, 10.0, ["c walks"]),
            ("n3", "heldout", "v2", 4.5, 5.5, 5.0, ["c cuts"]),
        ]
    )
    table, stats = narrator_pairs(_pairs(), nar)
    df = table.to_pandas()
    added = df[df["source"] == "narrator"]
    assert added[["item_uid", "text", "window_start_sec", "role"]].values.tolist() == [
        ["n1", "c opens a drawer", 1.5, "train"],
        ["dense:v1:8.000", "c walks", 8.0, "train"],
    ]
    assert stats["dropped"] == {"empty_text": 1, "duplicate_text": 1}
    assert len(df) == _pairs().num_rows + 2
    # below every narration's gt_rank: GT and the template text written from it go, the narrator's stay
    run = select_pairs(table, sources=["narration", "template", "narrator"], gt_fraction=0.01)
    assert run["source"].tolist() == ["narrator", "narrator"]
    with pytest.raises(InputError, match="already holds narrator rows"):
        narrator_pairs(table, nar)
    unknown = _narrations([("nX", "egoclip", "v1", 0.0, 1.0, 0.5, ["c"])])
    with pytest.raises(InputError, match="absent from the pairs") as e:
        narrator_pairs(_pairs(), unknown)
    assert e.value.record == "item_uid=nX"


def test_caption_scores_hand_example():
    # two windows, one reference each. CIDEr-D: idf = log 2 for every n-gram (each in one window's refs).
    # Window A "a c" vs "a b": unigram cosine 1/2, no bigram -> 10 * (0.5 + 0 + 0 + 0) / 4 = 1.25;
    # window B identical -> 10 * (1 + 1 + 0 + 0) / 4 = 5; corpus mean 3.125.
    # ROUGE-L: A: LCS 1 of 2 words -> P = R = 1/2 -> F = 1/2; B: 1 -> mean 0.75.
    scores = caption_scores({"A": "a c", "B": "c d"}, {"A": ["a b"], "B": ["c d"]})
    assert scores["cider"] == pytest.approx(3.125)
    assert scores["rouge_l"] == pytest.approx(0.75)
    assert words("#C C opens the Drawer.") == "c opens the drawer"
    with pytest.raises(ValueError, match="same"):
        caption_scores({"A": "a"}, {"B": ["a"]})
