"""VSLNet inference: top-k windows for every query with text, in the challenge format (vslnet.md 9).

:func:`predict_records` is THE prediction code: the periodic validation of ``egonlq.grounding.train`` and
:func:`predict_split` (a trained model on any split, the unannotated test split included) both call it.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import torch

from egonlq.errors import InputError
from egonlq.evaluation.predictions import Prediction, write_predictions
from egonlq.grounding.nlq_dataset import (
    NLQDataset,
    Records,
    TextSource,
    check_text,
    collate,
    load_records,
    make_text_source,
)
from egonlq.grounding.spans import span_times
from egonlq.grounding.vslnet import VSLNet, decode_topk
from egonlq.io import read_json
from egonlq.progress import tqdm

logger = logging.getLogger(__name__)

TRAIN_SPEC_NAME = "train_spec.json"  # written by egonlq.grounding.train next to the weights


@torch.no_grad()
def predict_records(
    model: VSLNet,
    records: Records,
    text: TextSource,
    *,
    k: int = 5,
    batch_size: int = 64,
    device: str | torch.device = "cpu",
    progress: bool = False,
) -> list[Prediction]:
    """Ranked windows (``k`` each) for every record, batched in record order, model in eval mode.

    Spans come from :func:`decode_topk` (best ``p_start[s] * p_end[e]`` with ``s <= e < v_len``) and become
    seconds by :func:`egonlq.grounding.spans.span_times` in the records' label mode, on their feature grid.
    The model's train/eval mode is restored afterwards.
    """
    was_training = model.training
    model.eval()
    dataset = NLQDataset(records)  # no jittering
    text.prepare(records.text)
    out: list[Prediction] = []
    starts = range(0, len(dataset), batch_size)
    try:
        for start in tqdm(starts, desc="predict", unit="batch", disable=None if progress else True):
            batch = collate([dataset[i] for i in range(start, min(start + batch_size, len(dataset)))], text)
            batch = batch.to(device)
            logits = model(batch.video, batch.video_mask, batch.text, batch.text_mask)
            s_top, e_top = decode_topk(logits.start_logits, logits.end_logits, batch.video_mask, k=k)
            for i, s_row, e_row in zip(batch.index.tolist(), s_top.tolist(), e_top.tolist(), strict=True):
                duration, v_len = float(records.duration[i]), int(records.v_len[i])
                windows = [
                    list(span_times(records.label_mode, s, e, duration, v_len, grid=records.grid))
                    for s, e in zip(s_row, e_row, strict=True)
                ]
                out.append(
                    Prediction(
                        records.clip_uid[i], records.annotation_uid[i], int(records.query_idx[i]), windows
                    )
                )
    finally:
        model.train(was_training)
    return out


def predict_split(
    model_dir: Path,
    *,
    queries: Path,
    clips: Path,
    features: Path,
    text_cache: Path | None,
    text_model: Path,
    out_path: Path,
    label_mode: str,
    k: int = 5,
    batch_size: int = 64,
    device: str = "cpu",
    progress: bool = True,
    compat: str = "egonlq",
) -> dict:
    """Predict every query with text of a QUERIES table (any split) with the model saved in ``model_dir``.

    ``text_cache`` None computes the text embeddings with the encoder in ``text_model``; otherwise the cache
    must have been built by that encoder. ``label_mode`` must be the one the model was trained with (it
    fixes the index -> seconds grid; checked against ``train_spec.json`` when the folder has one). Writes
    the challenge JSON ``out_path`` and returns the stats of
    :func:`egonlq.grounding.nlq_dataset.load_records` plus
    ``predicted``, ``k``, ``model_dir``, ``text``, ``seconds``.
    """
    started = time.perf_counter()
    trained = Path(model_dir) / TRAIN_SPEC_NAME
    trained_mode = read_json(trained).get("label_mode") if trained.is_file() else label_mode
    if trained_mode != label_mode:
        raise InputError(
            trained,
            f"the model was trained with label_mode {trained_mode!r}",
            field="label_mode",
            expected=f"{label_mode!r}, or predict with the model's label mode",
        )
    model = VSLNet.from_pretrained(model_dir, device=device)
    config = model.config
    records = load_records(
        queries,
        clips,
        features,
        max_pos_len=config.max_pos_len,
        label_mode=label_mode,
        video_dim=config.video_dim,
        progress=progress,
    )
    text = make_text_source(
        "cache" if text_cache is not None else "encoder",
        text_cache=text_cache,
        text_model=text_model,
        max_len=config.max_pos_len,
        device=device,
        compat=compat,  # "official": the encoder's outputs at padded positions are kept, as in training
    )
    check_text(records, text, text_dim=config.text_dim, where=text_cache or text_model)
    rows = predict_records(model, records, text, k=k, batch_size=batch_size, device=device, progress=progress)
    write_predictions(rows, out_path, num_windows=k)
    stats = {
        **records.stats,
        "predicted": len(rows),
        "k": k,
        "model_dir": str(model_dir),
        "text": text.kind,
        "seconds": round(time.perf_counter() - started, 3),
    }
    logger.info(
        "predicted %d of %d queries of %s into %s (%d without text, %d without features)",
        len(rows),
        stats["queries_in"],
        queries,
        out_path,
        stats["dropped_no_text"],
        stats["dropped_no_features"],
    )
    return stats
