"""Narration quality as LaViLa reports it: CIDEr (the COCO caption CIDEr-D) and ROUGE-L of generated texts
against held-out GT narrations, from ``pycocoevalcap``.

Per window the candidate is the narrator's most certain text (lowest ``entropy_scores``). Texts are
lower-cased and split into words here (COCO's PTB tokenizer and METEOR need a Java runtime, which this
project does not install: METEOR is left out). Scores are corpus-level: CIDEr's document frequencies come
from the references of all windows scored together.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import pyarrow as pa

from egonlq.dualenc.pairs import GT_SOURCE
from egonlq.errors import InputError

_WORD = re.compile(r"[a-z0-9']+")


def words(text: str) -> str:
    """Lower-cased words joined by single spaces (punctuation and Ego4D's ``#c``/``#C`` marks dropped)."""
    return " ".join(w for w in _WORD.findall(text.lower().replace("#c", " ")))


def caption_scores(
    candidates: Mapping[str, str], references: Mapping[str, Sequence[str]]
) -> dict[str, float]:
    """Corpus CIDEr and ROUGE-L of one candidate per id against its references (the ids must agree)."""
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge

    if set(candidates) != set(references) or not candidates:
        raise ValueError("candidates and references must cover the same, non-empty set of ids")
    res = {k: [words(v)] for k, v in candidates.items()}
    gts = {k: [words(r) for r in refs] for k, refs in references.items()}
    cider, _ = Cider().compute_score(gts, res)
    rouge, _ = Rouge().compute_score(gts, res)
    return {"cider": float(cider), "rouge_l": float(rouge), "windows": len(res)}


def heldout_quality(narrations: pa.Table, pairs: pa.Table) -> dict[str, float]:
    """Scores of the ``heldout`` windows' most certain texts against their GT narrations."""
    nar = narrations.to_pandas()
    nar = nar[nar["kind"] == "heldout"]
    if nar.empty:
        raise InputError("narrations", "no heldout window to score", field="kind", expected="heldout rows")
    gt = pairs.to_pandas()
    gt = gt[(gt["source"] == GT_SOURCE) & (gt["role"] == "heldout")].groupby("item_uid")["text"].apply(list)
    candidates = {
        r.item_uid: r.texts[min(range(len(r.texts)), key=lambda i: r.entropy_scores[i])]
        for r in nar.itertuples()
    }
    return caption_scores(candidates, {k: gt[k] for k in candidates})
