"""The narrator's texts where narrations are consumed: the dual encoder's pairs (source ``narrator``).

- ``egoclip`` windows: each distinct non-empty text becomes one more text of the narration's item (the same
  window), like the other pseudo-text sources; LaViLa draws one text per fetch among them.
- ``heldout`` windows (quality only) are not added.
- ``dense`` windows: a new training item per window (``item_uid`` = ``dense:<video>:<start>``), its texts the
  narrator's only.
"""

from __future__ import annotations

import logging

import pandas as pd
import pyarrow as pa

from egonlq.dualenc.pairs import PAIRS, uniform_hash
from egonlq.errors import InputError

logger = logging.getLogger(__name__)

NARRATOR_SOURCE = "narrator"


def narrator_pairs(pairs: pa.Table, narrations: pa.Table, *, seed: int = 0) -> tuple[pa.Table, dict]:
    """``pairs`` plus one row per distinct narrator text (source ``narrator``), and what was added."""
    base = pairs.to_pandas()
    if (base["source"] == NARRATOR_SOURCE).any():
        raise InputError("pairs", "the pairs table already holds narrator rows", field="source")
    nar = narrations.to_pandas().explode("texts").rename(columns={"texts": "text"})
    nar["text"] = nar["text"].fillna("").astype(str).str.strip()
    empty = nar["text"] == ""
    nar = nar[~empty]
    before = len(nar)
    nar = nar.drop_duplicates(["item_uid", "text"])
    items = base.drop_duplicates("item_uid").set_index("item_uid")
    egoclip = nar[nar["kind"] == "egoclip"]
    unknown = ~egoclip["item_uid"].isin(items.index)
    if unknown.any():
        raise InputError(
            "narrations",
            f"{int(unknown.sum())} egoclip rows name narrations absent from the pairs table",
            record=f"item_uid={egoclip.loc[unknown, 'item_uid'].iloc[0]}",
            field="item_uid",
        )
    egoclip = egoclip[["item_uid", "text"]].join(
        items[["video_uid", "window_start_sec", "window_end_sec", "timestamp_sec", "role", "gt_rank"]],
        on="item_uid",
    )
    dense = nar[nar["kind"] == "dense"].rename(
        columns={"start_sec": "window_start_sec", "end_sec": "window_end_sec"}
    )
    dense = dense.assign(role="train", gt_rank=uniform_hash(dense["item_uid"].tolist(), f"gt:{seed}"))
    added = pd.concat([egoclip, dense[egoclip.columns]], ignore_index=True).assign(source=NARRATOR_SOURCE)
    out = pd.concat([base, added[PAIRS.names]], ignore_index=True).sort_values(
        ["video_uid", "timestamp_sec", "item_uid", "source", "text"], kind="stable"
    )
    stats = {
        "added": {"egoclip": len(egoclip), "dense": len(dense)},
        "dense_items": int(dense["item_uid"].nunique()),
        "dropped": {"empty_text": int(empty.sum()), "duplicate_text": before - len(nar)},
    }
    logger.info("narrator pairs: %s", stats)
    return pa.Table.from_pandas(out[PAIRS.names], schema=PAIRS, preserve_index=False), stats
