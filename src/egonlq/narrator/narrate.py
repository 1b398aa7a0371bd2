"""Re-narration and densification: the narrator writes N texts per window, cached, resumable and sharded.

Windows (from the dual encoder's pairs table, so never on an NLQ val/test video):

- ``egoclip``: the EgoClip window of every GT narration (re-narration; ``item_uid`` = the narration's uid);
- ``heldout``: the EgoClip windows of the held-out evaluation videos, narrated only to score the narrator
  against their GT narrations (:mod:`egonlq.narrator.quality`); no consumer reads them;
- ``dense``: windows of ``dense_sec`` tiled every ``dense_stride`` over the video that contain no narration
  timestamp (the stretches no one narrated; ``item_uid`` = ``dense:<video_uid>:<start>``).

Each finished window is one line of the shard's JSONL cache (:class:`egonlq.queries.generation_cache.
GenerationCache`), keyed by the window, the checkpoint's digest and the decoding settings: a killed job
resumes where it stopped, and a changed decoding parameter misses the cache for exactly the windows whose
settings changed (egoclip and dense windows have their own number of sequences). The table
(:data:`NARRATIONS`) is written from the cache.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import torch

from egonlq.dualenc.bank import FeatureBank
from egonlq.dualenc.pairs import GT_SOURCE
from egonlq.errors import InputError
from egonlq.io import read_parquet, write_json, write_parquet
from egonlq.narrator.decode import Decoding, sample, window_uniforms
from egonlq.narrator.model import Narrator
from egonlq.progress import tqdm
from egonlq.queries.blocks import shard_of
from egonlq.queries.generation_cache import GenerationCache, cache_key
from egonlq.timegrid import FEATURES_PER_SEC

logger = logging.getLogger(__name__)

KINDS = ("egoclip", "dense", "heldout")

# results/narrator/narrations.parquet: one row per window
NARRATIONS = pa.schema(
    [
        pa.field("item_uid", pa.string(), nullable=False),  # narration uid (egoclip) or dense:<video>:<start>
        pa.field("kind", pa.string(), nullable=False),  # "egoclip" or "dense"
        pa.field("video_uid", pa.string(), nullable=False),
        pa.field("start_sec", pa.float64(), nullable=False),
        pa.field("end_sec", pa.float64(), nullable=False),
        pa.field("timestamp_sec", pa.float64(), nullable=False),  # the narration's time, or the window centre
        pa.field("texts", pa.list_(pa.string()), nullable=False),
        pa.field(
            "entropy_scores", pa.list_(pa.float64()), nullable=False
        ),  # exp(mean token entropy) per text
        pa.field("model", pa.string(), nullable=False),  # the narrator checkpoint's digest
        pa.field("decoding", pa.string(), nullable=False),  # JSON of the Decoding settings
    ]
)


def narration_windows(
    pairs: pa.Table,
    video_rows: dict[str, int],
    *,
    dense_sec: float,
    dense_stride: float,
    rows_per_second: float = FEATURES_PER_SEC,
) -> pd.DataFrame:
    """The windows to narrate (item_uid, kind, video_uid, start_sec, end_sec, timestamp_sec), sorted.

    ``video_rows``: feature rows per video (its duration is ``rows / rows_per_second`` s, the feature set's
    grid; 1.875 for the official sets). ``dense_sec <= 0`` turns densification off.
    """
    df = pairs.to_pandas()
    df = df[df["source"] == GT_SOURCE].drop_duplicates("item_uid")
    gt = df[df["role"] == "train"]
    egoclip = pd.DataFrame(
        {
            "item_uid": df["item_uid"],
            "kind": np.where(df["role"] == "train", "egoclip", "heldout"),
            "video_uid": df["video_uid"],
            "start_sec": df["window_start_sec"],
            "end_sec": df["window_end_sec"],
            "timestamp_sec": df["timestamp_sec"],
        }
    )
    dense = []
    if dense_sec > 0:
        if dense_stride <= 0:
            raise ValueError(f"dense_stride {dense_stride} must be > 0")
        for video, stamps in gt.groupby("video_uid")["timestamp_sec"]:
            duration = video_rows[video] / rows_per_second
            starts = np.arange(0.0, max(duration - dense_sec, 0.0) + 1e-9, dense_stride)
            times = np.sort(stamps.to_numpy())
            # windows [s, s + L) holding no narration timestamp
            inside = np.searchsorted(times, starts + dense_sec, side="left") - np.searchsorted(
                times, starts, side="left"
            )
            for s in starts[inside == 0]:
                dense.append(
                    (
                        f"dense:{video}:{s:.3f}",
                        "dense",
                        video,
                        float(s),
                        float(min(s + dense_sec, duration)),
                        float(s + dense_sec / 2),
                    )
                )
    windows = pd.concat([egoclip, pd.DataFrame(dense, columns=egoclip.columns)], ignore_index=True)
    return windows.sort_values(["video_uid", "start_sec", "item_uid"], kind="stable").reset_index(drop=True)


def narrate_shard(
    narrator: Narrator,
    tokenizer,
    bank: FeatureBank,
    windows: pd.DataFrame,
    *,
    decodings: dict[str, Decoding],  # per kind
    model_digest: str,
    seed: int,
    max_rows: int,
    shard: int,
    num_shards: int,
    cache_path: str | Path,
    out_path: str | Path,
    stats_path: str | Path,
    batch_size: int = 32,
) -> dict:
    """Narrate the windows of shard ``shard`` (by video), reusing the cache; write the table and stats."""
    mine = windows[[shard_of(v, num_shards) == shard for v in windows["video_uid"]]].reset_index(drop=True)
    cache = GenerationCache(cache_path)
    keys = [
        cache_key(
            f"{r.kind}|{r.video_uid}|{r.start_sec:.3f}|{r.end_sec:.3f}",
            {"model": model_digest, "seed": seed, **decodings[r.kind].to_dict()},
        )
        for r in mine.itertuples()
    ]
    todo = [i for i, k in enumerate(keys) if k not in cache]
    logger.info(
        "shard %d/%d: %d windows, %d cached, %d to narrate",
        shard,
        num_shards,
        len(mine),
        len(mine) - len(todo),
        len(todo),
    )
    for kind in KINDS:
        idx = [i for i in todo if mine.at[i, "kind"] == kind]
        for b in tqdm(range(0, len(idx), batch_size), desc=f"narrate {kind}", unit="batch"):
            batch = mine.iloc[idx[b : b + batch_size]]
            first, count = bank.window_rows(
                batch["video_uid"].tolist(), batch["start_sec"].to_numpy(), batch["end_sec"].to_numpy()
            )
            rows, mask = bank.gather(torch.from_numpy(first), torch.from_numpy(count), max_rows)
            uniforms = torch.stack(
                [window_uniforms(keys[i], seed, decodings[kind]) for i in idx[b : b + batch_size]]
            )
            tokens, scores = sample(
                narrator,
                rows,
                mask,
                bos_id=tokenizer.bos_token_id,
                eos_id=tokenizer.eos_token_id,
                decoding=decodings[kind],
                uniforms=uniforms,
            )
            cache.append(
                [
                    {
                        "key": keys[i],
                        "unit_id": mine.at[i, "item_uid"],
                        "raw_output": {
                            "texts": [tokenizer.decode(t, skip_special_tokens=True).strip() for t in seqs],
                            "scores": [float(x) for x in window_scores],
                        },
                    }
                    for i, seqs, window_scores in zip(
                        idx[b : b + batch_size], tokens, scores.tolist(), strict=True
                    )
                ]
            )
    texts = [cache.get(k)["raw_output"]["texts"] for k in keys]
    table = pa.Table.from_pandas(
        mine.assign(
            texts=texts,
            entropy_scores=[cache.get(k)["raw_output"]["scores"] for k in keys],
            model=model_digest,
            decoding=[json.dumps(decodings[k].to_dict(), sort_keys=True) for k in mine["kind"]],
        )[NARRATIONS.names],
        schema=NARRATIONS,
        preserve_index=False,
    )
    write_parquet(table, out_path, NARRATIONS)
    stats = {
        "shard": shard,
        "num_shards": num_shards,
        "windows": {kind: int((mine["kind"] == kind).sum()) for kind in KINDS},
        "narrated": len(todo),
        "from_cache": len(mine) - len(todo),
        "texts": sum(len(t) for t in texts),
        "empty_texts": sum(1 for ts in texts for t in ts if not t),
    }
    write_json(stats, stats_path, indent=2)
    return stats


def read_narrations(paths: Sequence[str | Path]) -> pa.Table:
    """The narration tables of ``paths`` (schema checked), concatenated."""
    for path in paths:
        if not Path(path).is_file():
            raise InputError(path, "narrations table not found")
    return pa.concat_tables([read_parquet(p, NARRATIONS) for p in paths])
