"""The NLQ ground truth as the metric reads it (evaluation.md, section 1): annotations, query windows, clip
durations.

Both the metric (:mod:`egonlq.evaluation.metric`) and the prediction-file validator
(:mod:`egonlq.evaluation.predictions`) read it; it imports neither.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from egonlq.data.annotations import clean_form_label
from egonlq.data.validation import is_number
from egonlq.errors import InputError
from egonlq.io import read_json
from egonlq.timegrid import is_zero_length

logger = logging.getLogger(__name__)

QueryKey = tuple[str, str, int]  # (clip_uid, annotation_uid, query_idx)


@dataclass(frozen=True)
class GTQuery:
    """One entry of ``language_queries``: the GT window in clip-relative seconds (numbers as in the JSON)."""

    start: float
    end: float
    has_text: bool

    @property
    def zero_length(self) -> bool:
        return is_zero_length(self.start, self.end)


@dataclass(frozen=True)
class GTAnnotation:
    clip_uid: str
    annotation_uid: str
    queries: list[GTQuery]
    location: str  # e.g. "videos[0].clips[1].annotations[0]", for error messages


@dataclass(frozen=True)
class GroundTruth:
    """The parts of an annotated NLQ file that the metric reads, annotations in file order.

    The official script keys annotations by ``(clip_uid, annotation_uid)`` in a dict, so a repeated key
    silently replaces the earlier annotation while every annotation's queries still count in ``num_gt``;
    :meth:`official_dict` reproduces that, :meth:`duplicate_keys` lets strict mode refuse it.
    """

    annotations: list[GTAnnotation]
    path: str | None = None
    # clip_uid -> the clip's own clip_end_sec (its duration); clips without a numeric one are absent
    clip_durations: dict[str, float] = field(default_factory=dict)

    @property
    def num_gt(self) -> int:
        """Number of GT queries as the official script counts them (the y of "Evaluated x / y")."""
        return sum(len(a.queries) for a in self.annotations)

    @cached_property
    def official_dict(self) -> dict[tuple[str, str], list[GTQuery]]:
        """``(clip_uid, annotation_uid) -> queries``, later annotations overwriting earlier ones."""
        return {(a.clip_uid, a.annotation_uid): a.queries for a in self.annotations}

    def duplicate_keys(self) -> dict[tuple[str, str], list[str]]:
        """Keys that occur more than once, with the location of every occurrence."""
        where: dict[tuple[str, str], list[str]] = {}
        for a in self.annotations:
            where.setdefault((a.clip_uid, a.annotation_uid), []).append(a.location)
        return {key: locs for key, locs in where.items() if len(locs) > 1}

    def num_queries(self, clip_uid: str, annotation_uid: str) -> int | None:
        """Length of the annotation's ``language_queries`` (None for an unknown key)."""
        queries = self.official_dict.get((clip_uid, annotation_uid))
        return None if queries is None else len(queries)

    def iter_queries(self) -> list[tuple[QueryKey, GTQuery]]:
        """Every GT query with its key, in file order."""
        return [
            ((a.clip_uid, a.annotation_uid, i), q) for a in self.annotations for i, q in enumerate(a.queries)
        ]

    @classmethod
    def from_obj(cls, obj: Any, path: str | Path | None = None) -> GroundTruth:
        """Read the metric's keys from a parsed NLQ JSON; missing keys or non-numeric times are errors.

        A clip's ``clip_end_sec`` (its duration) is optional: compact files may leave it out."""

        def need(container: Any, key: str, kind: type | tuple[type, ...], record: str, expected: str) -> Any:
            if not isinstance(container, dict) or key not in container:
                raise InputError(path, "key missing", record=record, field=key, expected=expected)
            value = container[key]
            if not isinstance(value, kind) or isinstance(value, bool):
                raise InputError(path, f"bad value {value!r}", record=record, field=key, expected=expected)
            return value

        annotations, durations = [], {}
        for v, video in enumerate(need(obj, "videos", list, "root", "a list of videos")):
            for c, clip in enumerate(need(video, "clips", list, f"videos[{v}]", "a list of clips")):
                where = f"videos[{v}].clips[{c}]"
                clip_uid = need(clip, "clip_uid", str, where, "a string")
                if is_number(clip.get("clip_end_sec")):
                    durations[clip_uid] = float(clip["clip_end_sec"])
                for a, ann in enumerate(need(clip, "annotations", list, where, "a list of annotations")):
                    loc = f"{where}.annotations[{a}]"
                    ann_uid = need(ann, "annotation_uid", str, loc, "a string")
                    queries = []
                    for i, q in enumerate(need(ann, "language_queries", list, loc, "a list of queries")):
                        rec = f"{loc}.language_queries[{i}] (clip_uid={clip_uid}, annotation_uid={ann_uid})"
                        start = need(q, "clip_start_sec", (int, float), rec, "a number (annotated split)")
                        end = need(q, "clip_end_sec", (int, float), rec, "a number (annotated split)")
                        queries.append(GTQuery(start, end, _has_text(q.get("query"))))
                    annotations.append(GTAnnotation(clip_uid, ann_uid, queries, loc))
        return cls(annotations, str(path) if path is not None else None, durations)


def _has_text(query: Any) -> bool:
    """Same rule as the queries table's ``has_text``: non-empty once the v2 form label is removed."""
    return isinstance(query, str) and clean_form_label("query", query)[0].strip() != ""


def load_ground_truth(path: Path) -> GroundTruth:
    """Load an annotated NLQ JSON (full or compact: only the keys the metric reads are required)."""
    gt = GroundTruth.from_obj(read_json(path), path)
    logger.info("ground truth %s: %d annotations, %d queries", path, len(gt.annotations), gt.num_gt)
    return gt
