"""The Ego4D NLQ metric: Recall@k at IoU thresholds and mIoU, in two modes (evaluation.md).

* ``official``: bit-for-bit the official script (EGO4D/episodic-memory, NLQ/VSLNet/utils/
  evaluate_ego4d_nlq.py), quirks included: it iterates the *predictions* (the denominator is the number of
  submitted results, a query predicted twice counts twice, a missing one not at all), a hit needs IoU strictly
  greater than the threshold among the first k windows in list order, mIoU is the mean IoU of the top-1
  window (NaN when that IoU is 0/0), and bad input aborts with the same kind of exception the script raises.
* ``strict``: the denominator is every ground-truth query (minus explicitly named exclusions), a missing
  query is a miss with IoU 0, IoU is 0 when the union is 0, and bad input is rejected by ONE exception that
  lists every offending entry.
"""

from __future__ import annotations

import json
import logging
import math
import warnings
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from egonlq.data.provenance import attach, markdown_footer, with_schema_metadata
from egonlq.data.validation import is_number
from egonlq.errors import InputError
from egonlq.evaluation.ground_truth import GroundTruth, QueryKey
from egonlq.evaluation.ground_truth import load_ground_truth as load_ground_truth  # re-exported
from egonlq.evaluation.predictions import validate_predictions
from egonlq.io import read_json, write_json, write_parquet, write_text

logger = logging.getLogger(__name__)

MODES = ("official", "strict")
EXCLUSION_FILTERS = ("exclude_zero_length", "exclude_no_text")
DEFAULT_THRESHOLDS = (0.3, 0.5, 0.01)
DEFAULT_KS = (1, 3, 5)

# ------------------------------------------------------------------------------------------------------ IoU


Column = Callable[[np.ndarray, int], np.ndarray]  # (array, j) -> window starts (j=0) or ends (j=1)


def _iou_formula(
    pred: np.ndarray, gt: np.ndarray, pred_col: Column, gt_col: Column, strict: bool
) -> np.ndarray:
    """The official IoU, operation for operation (so that odd input fails where the script fails):
    ``max(0, intersection) / max(0, union)``, NaN for 0/0 unless ``strict``."""
    inter_left = np.maximum(pred_col(pred, 0), gt_col(gt, 0))
    inter_right = np.minimum(pred_col(pred, 1), gt_col(gt, 1))
    inter = np.maximum(0.0, inter_right - inter_left)
    union_left = np.minimum(pred_col(pred, 0), gt_col(gt, 0))
    union_right = np.maximum(pred_col(pred, 1), gt_col(gt, 1))
    union = np.maximum(0.0, union_right - union_left)
    with np.errstate(divide="ignore", invalid="ignore"):
        overlap = 1.0 * inter / union
    if strict:
        overlap = np.where(union == 0, 0.0, overlap)
    return overlap


def _last_axis(a: np.ndarray, j: int) -> np.ndarray:
    return a[..., j]


def iou(pred: np.ndarray, gt: np.ndarray, *, strict: bool = False) -> np.ndarray:
    """IoU of windows ``pred`` [..., 2] with one window ``gt`` [2] (or windows broadcastable with
    ``pred``); returns shape [...].

    Official formula by default (0/0 gives NaN, e.g. a zero-length window on a zero-length GT point);
    ``strict=True`` defines the IoU as 0 when the union is 0.
    """
    return _iou_formula(np.asarray(pred), np.asarray(gt), _last_axis, _last_axis, strict)


# ------------------------------------------------------------------------------------------------ result


@dataclass(frozen=True)
class EvalResult:
    """Recall (fractions, keyed ``(threshold, k)``), mIoU and the counts that make them comparable.

    ``num_results``: entries in the submitted ``results``; ``num_gt``: GT queries in the file;
    ``num_evaluated``: the recall denominator (official: ``num_results``; strict: ``num_gt`` minus
    exclusions); ``num_missing``: evaluated GT queries without a prediction; ``excluded``: queries removed per
    strict filter; ``num_ignored``: strict-mode predictions of excluded queries (not scored).
    """

    mode: str
    thresholds: tuple[float, ...]
    ks: tuple[int, ...]
    recall: dict[tuple[float, int], float]
    miou: float
    num_results: int
    num_gt: int
    num_evaluated: int
    num_missing: int
    excluded: dict[str, int] = field(default_factory=dict)
    num_ignored: int = 0

    def evaluated(self) -> tuple[int, int]:
        """The (x, y) of "Evaluated: x / y instances"."""
        if self.mode == "official":
            return self.num_results, self.num_gt
        return self.num_evaluated - self.num_missing, self.num_evaluated

    def summary_line(self) -> str:
        x, y = self.evaluated()
        line = f"Evaluated: {x} / {y} instances"
        if self.mode == "strict":
            removed = ", ".join(f"{name} removed {n}" for name, n in self.excluded.items()) or "no exclusions"
            line += (
                f" (strict: {self.num_missing} missing counted as misses; {removed};"
                f" {self.num_gt} GT queries, {self.num_results} results)"
            )
        return line

    def to_table(self) -> str:
        """The official display: percent, two decimals, columns ``Rank@{k}\\nmIoU@{t}`` then ``mIoU``."""
        header = [f"Rank@{k}\nmIoU@{t}" for k in self.ks for t in self.thresholds] + ["mIoU"]
        values = [f"{self.recall[(t, k)] * 100:.02f}" for k in self.ks for t in self.thresholds]
        values.append(f"{self.miou * 100:.02f}")
        return _ascii_table([header, values], centered=len(header) - 1)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe view: NaN becomes null, recall keys read ``R{k}@{t}``; adds the display table."""
        recall = {
            _recall_key(k, t): _finite_or_none(self.recall[(t, k)]) for k in self.ks for t in self.thresholds
        }
        mean_recall = {
            f"MR{k}": _finite_or_none((self.recall[(0.3, k)] + self.recall[(0.5, k)]) / 2)
            for k in self.ks
            if (0.3, k) in self.recall and (0.5, k) in self.recall
        }
        x, y = self.evaluated()
        return {
            "mode": self.mode,
            "thresholds": list(self.thresholds),
            "ks": list(self.ks),
            "recall": recall,
            "mean_recall": mean_recall,
            "miou": _finite_or_none(self.miou),
            "num_results": self.num_results,
            "num_gt": self.num_gt,
            "num_evaluated": self.num_evaluated,
            "num_missing": self.num_missing,
            "num_ignored": self.num_ignored,
            "excluded": dict(self.excluded),
            "evaluated": [x, y],
            "summary": self.summary_line(),
            "table": self.to_table(),
        }


def _recall_key(k: int, t: float) -> str:
    return f"R{k}@{t:g}"


def _finite_or_none(x: float) -> float | None:
    return None if x is None or math.isnan(x) else float(x)


def _ascii_table(rows: list[list[str]], *, centered: int) -> str:
    """A terminaltables ``AsciiTable`` (no title, heading separator, the first ``centered`` columns
    centred, the rest left-aligned), as the official script prints it."""
    cells = [[cell.splitlines() or [""] for cell in row] for row in rows]
    widths = [max(len(line) for row in cells for line in row[c]) for c in range(len(rows[0]))]
    border = "+" + "+".join("-" * (w + 2) for w in widths) + "+"
    out = [border]
    for r, row in enumerate(cells):
        height = max(len(lines) for lines in row)
        for h in range(height):
            parts = []
            for c, lines in enumerate(row):
                text = lines[h] if h < len(lines) else ""
                parts.append(text.center(widths[c]) if c < centered else text.ljust(widths[c]))
            out.append("| " + " | ".join(parts) + " |")
        if r == 0:
            out.append(border)
    out.append(border)
    return "\n".join(out)


# -------------------------------------------------------------------------------------------- evaluation


class StrictEvalError(InputError):
    """Strict-mode rejection; ``problems`` lists every offending entry."""

    def __init__(self, path: str | Path | None, problems: list[str]) -> None:
        self.problems = problems
        listing = "\n".join(f"  - {p}" for p in problems)
        super().__init__(path, f"strict evaluation refused, {len(problems)} problem(s):\n{listing}")


def _load_predictions(predictions: Mapping | Path | str) -> tuple[Any, str | None]:
    if isinstance(predictions, str | Path):
        return read_json(predictions), str(predictions)
    return predictions, None


def _check_args(thresholds: Sequence[float], ks: Sequence[int], exclude: Sequence[str]) -> None:
    if not thresholds or not ks:
        raise ValueError("thresholds and ks must be non-empty")
    unknown = [name for name in exclude if name not in EXCLUSION_FILTERS]
    if unknown:
        raise ValueError(f"unknown exclusion filter(s) {unknown}; known: {list(EXCLUSION_FILTERS)}")


def evaluate(
    gt: GroundTruth,
    predictions: Mapping | Path,
    *,
    mode: str = "official",
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
    ks: Sequence[int] = DEFAULT_KS,
    exclude: Sequence[str] = (),
) -> EvalResult:
    """Score a challenge prediction file (parsed dict or path) against ``gt``.

    ``official`` checks ``version``/``challenge`` as the official command line does and raises what the
    official script raises (AssertionError "Instance not present!", IndexError, TypeError, numpy AxisError,
    ...; a note names the offending result). ``strict`` raises
    :class:`StrictEvalError` listing every problem; ``exclude`` names strict filters from
    ``EXCLUSION_FILTERS``, applied in order (each query is counted under the first filter that removes it).
    """
    thresholds, ks = tuple(thresholds), tuple(ks)
    _check_args(thresholds, ks, exclude)
    if mode == "official":
        if exclude:
            raise ValueError("exclusion filters exist only in strict mode")
        obj, _ = _load_predictions(predictions)
        return _evaluate_official(gt, obj, thresholds, ks)
    if mode == "strict":
        obj, source = _load_predictions(predictions)
        scored = _score_strict(gt, obj, thresholds, ks, tuple(exclude), source=source)
        return scored.result(np.ones(len(scored.keys), dtype=bool))
    raise ValueError(f"mode must be one of {MODES}, got {mode!r}")


def _official_top1_and_hits(
    predicted_times: Any, gt_window: list, thresholds: tuple[float, ...], ks: tuple[int, ...]
) -> tuple[Any, list[list[bool]]]:
    """One result as the official script scores it, failing where and how it fails."""
    if not isinstance(predicted_times, list):
        raise AssertionError("predicted_times is not a list")
    flat = not isinstance(predicted_times[0], list)  # IndexError on an empty list, as in the script
    pred = np.array([predicted_times] if flat else predicted_times)
    gt = np.array([gt_window])
    # pred [N, 2] x gt [1, 2] -> overlap [N, 1], indexed exactly as the script does
    overlap = _iou_formula(pred, gt, lambda a, j: a[:, j, None], lambda a, j: a[None, :, j], strict=False)
    if flat:
        overlap = overlap[0]
    # The script's "mean of the 3 best" sorts a one-element slice: the top-1 window's IoU (AxisError if flat).
    top1 = np.mean(np.sort(overlap[0])[-3:])
    hits = [[(overlap > t)[:k].any() for k in ks] for t in thresholds]
    return top1, hits


def _evaluate_official(
    gt: GroundTruth, predictions: Any, thresholds: tuple[float, ...], ks: tuple[int, ...]
) -> EvalResult:
    if predictions.get("version", None) != "1.0":
        raise AssertionError("Ego4D version does not match!")
    if predictions.get("challenge", None) != "ego4d_nlq_challenge":
        raise AssertionError("Ego4D challenge does not match!")
    gt_dict = gt.official_dict
    hits: list[list[list[bool]]] = [[[] for _ in ks] for _ in thresholds]
    top1: list[Any] = []
    seen: set[tuple[str, str, int]] = set()
    for i, p in enumerate(predictions["results"]):
        try:
            key = (p["clip_uid"], p["annotation_uid"])
            if key not in gt_dict:
                raise AssertionError("Instance not present!")
            queries = gt_dict[key]
            query_idx = p["query_idx"]
            q = queries[query_idx]
            iou1, hit = _official_top1_and_hits(p["predicted_times"], [q.start, q.end], thresholds, ks)
        except Exception as e:
            e.add_note(f"official evaluation aborted at results[{i}]: {_describe(p)}")
            raise
        seen.add((*key, range(len(queries))[query_idx]))
        top1.append(iou1)
        for tt in range(len(thresholds)):
            for kk in range(len(ks)):
                hits[tt][kk].append(hit[tt][kk])
    with warnings.catch_warnings():  # empty results: NaN with numpy warnings, as in the script
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.array(hits).mean(axis=-1)
        miou = float(np.mean(top1))
    n = len(top1)
    logger.info("official: Evaluated: %d / %d instances", n, gt.num_gt)
    return EvalResult(
        mode="official",
        thresholds=thresholds,
        ks=ks,
        recall={(t, k): float(mean[tt][kk]) for tt, t in enumerate(thresholds) for kk, k in enumerate(ks)},
        miou=miou,
        num_results=n,
        num_gt=gt.num_gt,
        num_evaluated=n,
        num_missing=gt.num_gt - len(seen),
    )


def _describe(p: Any) -> str:
    if not isinstance(p, dict):
        return f"entry {p!r:.80}"
    return ", ".join(f"{k}={p.get(k)!r}" for k in ("clip_uid", "annotation_uid", "query_idx"))


@dataclass(frozen=True)
class _StrictScores:
    """Per-query strict scores of the evaluated (non-excluded) GT queries, in GT order."""

    thresholds: tuple[float, ...]
    ks: tuple[int, ...]
    keys: list[QueryKey]
    hits: np.ndarray  # [T, K, N] bool
    top1: np.ndarray  # [N] IoU of the top-1 window, 0 when missing
    missing: np.ndarray  # [N] bool
    num_results: int
    num_gt: int
    excluded: dict[str, int]
    num_ignored: int

    def result(self, mask: np.ndarray) -> EvalResult:
        n = int(mask.sum())
        recall = {
            (t, k): float(self.hits[tt, kk, mask].mean()) if n else math.nan
            for tt, t in enumerate(self.thresholds)
            for kk, k in enumerate(self.ks)
        }
        return EvalResult(
            mode="strict",
            thresholds=self.thresholds,
            ks=self.ks,
            recall=recall,
            miou=float(self.top1[mask].mean()) if n else math.nan,
            num_results=self.num_results,
            num_gt=self.num_gt,
            num_evaluated=n,
            num_missing=int(self.missing[mask].sum()),
            excluded=dict(self.excluded),
            num_ignored=self.num_ignored,
        )

    def group_rows(self, groups: Mapping[QueryKey, str], missing_group: str) -> list[dict[str, Any]]:
        """Strict recall per group, largest group first: ``group``, ``num_evaluated``, ``num_missing``,
        ``R{k}@{t}`` (fractions), ``miou``."""
        labels = np.array([groups.get(key, missing_group) for key in self.keys], dtype=object)
        rows = []
        for group, _ in Counter(labels.tolist()).most_common():
            r = self.result(labels == group)
            rows.append(
                {
                    "group": group,
                    "num_evaluated": r.num_evaluated,
                    "num_missing": r.num_missing,
                    **{
                        _recall_key(k, t): _finite_or_none(r.recall[(t, k)])
                        for k in self.ks
                        for t in self.thresholds
                    },
                    "miou": _finite_or_none(r.miou),
                }
            )
        return rows


def _score_strict(
    gt: GroundTruth,
    obj: Any,
    thresholds: tuple[float, ...],
    ks: tuple[int, ...],
    exclude: tuple[str, ...],
    *,
    source: str | None = None,
) -> _StrictScores:
    """Validate (every offence at once: :class:`StrictEvalError`) and score the parsed ``obj``."""
    problems = [
        f"ground truth{' ' + gt.path if gt.path else ''}: duplicate (clip_uid, annotation_uid) {key} at "
        + ", ".join(locs)
        for key, locs in gt.duplicate_keys().items()
    ]
    problems += validate_predictions(obj, gt=gt)
    if problems:
        raise StrictEvalError(source, problems)

    predicted = {
        (r["clip_uid"], r["annotation_uid"], r["query_idx"]): r["predicted_times"] for r in obj["results"]
    }
    excluded = dict.fromkeys(exclude, 0)
    keys, gt_windows, windows = [], [], []
    num_ignored = 0
    for key, q in gt.iter_queries():
        reason = next(
            (
                name
                for name in exclude
                if (name == "exclude_zero_length" and q.zero_length)
                or (name == "exclude_no_text" and not q.has_text)
            ),
            None,
        )
        if reason is not None:
            excluded[reason] += 1
            num_ignored += key in predicted
            continue
        keys.append(key)
        gt_windows.append((q.start, q.end))
        windows.append(predicted.get(key))

    hits = np.zeros((len(thresholds), len(ks), len(keys)), dtype=bool)
    top1 = np.zeros(len(keys))
    missing = np.array([w is None for w in windows], dtype=bool)
    for n, (w, g) in enumerate(zip(windows, gt_windows, strict=True)):
        if w is None:
            continue
        overlap = iou(np.array(w, dtype=np.float64), np.array(g, dtype=np.float64), strict=True)
        top1[n] = overlap[0]
        for tt, t in enumerate(thresholds):
            for kk, k in enumerate(ks):
                hits[tt, kk, n] = bool((overlap[:k] > t).any())
    logger.info(
        "strict: %d GT queries, %d evaluated, %d missing, excluded %s, %d predictions of excluded queries"
        " ignored",
        gt.num_gt,
        len(keys),
        int(missing.sum()),
        excluded,
        num_ignored,
    )
    return _StrictScores(
        thresholds, ks, keys, hits, top1, missing, len(obj["results"]), gt.num_gt, excluded, num_ignored
    )


def evaluate_both(
    gt: GroundTruth,
    predictions: Mapping | Path,
    *,
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
    ks: Sequence[int] = DEFAULT_KS,
    exclude: Sequence[str] = (),
    groups: Mapping[QueryKey, str] | None = None,
    missing_group: str = "(no group)",
) -> dict[str, dict[str, Any]]:
    """Official and strict results side by side: ``{"official": ..., "strict": ...}``.

    Each value is :meth:`EvalResult.to_dict` (with ``table`` and ``summary``), or ``{"mode": m, "error":
    "<ExceptionType>: <message>"}`` when that mode refuses the predictions (one mode may fail while the
    other succeeds; a strict refusal's message lists every offence). ``exclude`` applies to strict mode
    only. ``groups`` (e.g. each query's template) adds ``by_group`` to the strict entry: one row per group,
    largest first (:meth:`_StrictScores.group_rows`); queries absent from ``groups`` fall in
    ``missing_group``. A predictions file that cannot be read at all raises :class:`InputError`: that is no
    mode's verdict.
    """
    thresholds, ks = tuple(thresholds), tuple(ks)
    _check_args(thresholds, ks, exclude)
    obj, source = _load_predictions(predictions)
    out: dict[str, dict[str, Any]] = {}
    for mode in MODES:
        try:
            if mode == "official":
                out[mode] = _evaluate_official(gt, obj, thresholds, ks).to_dict()
                continue
            scored = _score_strict(gt, obj, thresholds, ks, tuple(exclude), source=source)
            out[mode] = scored.result(np.ones(len(scored.keys), dtype=bool)).to_dict()
            if groups is not None:
                out[mode]["by_group"] = scored.group_rows(groups, missing_group)
        except (AssertionError, LookupError, TypeError, ValueError, AttributeError) as e:
            text = f"{type(e).__name__}: {e}"
            notes = getattr(e, "__notes__", [])
            if notes:
                text += " (" + "; ".join(notes) + ")"
            logger.warning("%s evaluation failed: %s", mode, _first_lines(e, text))
            out[mode] = {"mode": mode, "error": text}
    return out


SHOWN_PROBLEMS = 5  # offences of a strict refusal shown in the log (the metrics JSON keeps them all)


def _first_lines(e: Exception, text: str) -> str:
    """A refusal for the log: a strict refusal's count and its first :data:`SHOWN_PROBLEMS` offences."""
    if not isinstance(e, StrictEvalError):
        return text
    shown = "; ".join(e.problems[:SHOWN_PROBLEMS])
    more = len(e.problems) - SHOWN_PROBLEMS
    return f"{len(e.problems)} problem(s), first: {shown}" + (f" (and {more} more)" if more > 0 else "")


# ---------------------------------------------------------------------------------------------- metrics files

# results/eval/metrics.parquet: one row per (predictor, split, mode); recall and mIoU as fractions
METRIC_COLUMNS = ("R1@0.3", "R1@0.5", "R3@0.3", "R3@0.5", "R5@0.3", "R5@0.5")
METRICS = pa.schema(
    [
        pa.field("predictor", pa.string(), nullable=False),
        pa.field("split", pa.string(), nullable=False),
        pa.field("mode", pa.string(), nullable=False),
        pa.field("error", pa.string()),  # null when the mode succeeded
        *(pa.field(name, pa.float64()) for name in METRIC_COLUMNS),
        pa.field("MR1", pa.float64()),
        pa.field("MR5", pa.float64()),
        pa.field("miou", pa.float64()),
        pa.field("num_results", pa.int64()),
        pa.field("num_gt", pa.int64()),
        pa.field("num_evaluated", pa.int64()),
        pa.field("num_missing", pa.int64()),
        pa.field("num_excluded", pa.int64()),
        pa.field("excluded", pa.string()),  # JSON object {filter: queries removed}
        pa.field("evaluated_x", pa.int64()),
        pa.field("evaluated_y", pa.int64()),
    ]
)


def write_metrics(
    result_dict: Mapping[str, Any], path: Path, provenance: Mapping[str, Any] | None = None
) -> None:
    """Write one metrics JSON: ``predictor``, ``split`` and the :func:`evaluate_both` entries per mode, and
    the ``provenance`` of the numbers (resolved config and data fingerprint, ``egonlq.data.provenance``)."""
    for key in ("predictor", "split"):
        if not isinstance(result_dict.get(key), str):
            raise ValueError(f"metrics for {path} need a string {key!r}")
    if not any(mode in result_dict for mode in MODES):
        raise ValueError(f"metrics for {path} hold no mode out of {MODES}")
    write_json(attach(dict(result_dict), provenance), path, indent=2)


def read_metrics(path: Path) -> dict[str, Any]:
    """Read one metrics JSON written by :func:`write_metrics` and check its shape.

    Returns the object: string ``predictor`` and ``split``, and for every mode of :data:`MODES` it holds
    either ``{"mode", "error": str}`` or a full :meth:`EvalResult.to_dict` entry (``recall`` and
    ``mean_recall`` maps of fractions or null, ``miou``, the counts, ``excluded``, ``evaluated`` [x, y]).
    An optional ``provenance`` object records the config and data behind the numbers. Raises
    :class:`InputError` naming the file, the predictor/split and the field otherwise, or when no mode is
    present.
    """
    obj = read_json(path)
    if not isinstance(obj, dict):
        raise InputError(path, "not a JSON object", expected="the output of evaluation.write_metrics")
    for key in ("predictor", "split"):
        if not isinstance(obj.get(key), str):
            raise InputError(path, "key missing or not a string", field=key, expected="a string")
    record = f"{obj['predictor']}/{obj['split']}"
    modes = [mode for mode in MODES if mode in obj]
    if not modes:
        raise InputError(path, f"no mode out of {MODES}", record=record)
    for mode in modes:
        problem = _entry_problem(obj[mode])
        if problem is not None:
            raise InputError(path, f"malformed {mode} entry: {problem}", record=record, field=mode)
    if not isinstance(obj.get("provenance", {}), dict):
        raise InputError(path, "not an object", record=record, field="provenance", expected="an object")
    return obj


def _entry_problem(entry: Any) -> str | None:
    """What is wrong with one mode's entry of a metrics JSON (None when it is well formed)."""
    if not isinstance(entry, Mapping):
        return f"not an object: {entry!r:.80}"
    if "error" in entry:
        return None if isinstance(entry["error"], str) else "'error' is not a string"

    def fraction(x: Any) -> bool:
        return x is None or is_number(x)

    def count(x: Any) -> bool:
        return isinstance(x, int) and not isinstance(x, bool) and x >= 0

    for key in ("recall", "mean_recall", "excluded"):
        if not isinstance(entry.get(key), Mapping):
            return f"{key!r} missing or not an object"
    bad = [name for name, x in entry["recall"].items() if not fraction(x)]
    bad += [name for name, x in entry["mean_recall"].items() if not fraction(x)]
    if bad:
        return f"recall values {bad} are not numbers or null"
    if not all(count(n) for n in entry["excluded"].values()):
        return "'excluded' holds a count that is not an integer >= 0"
    if "miou" not in entry or not fraction(entry["miou"]):
        return "'miou' missing or not a number or null"
    for key in ("num_results", "num_gt", "num_evaluated", "num_missing"):
        if not count(entry.get(key)):
            return f"{key!r} missing or not an integer >= 0"
    evaluated = entry.get("evaluated")
    if not (isinstance(evaluated, list) and len(evaluated) == 2 and all(count(v) for v in evaluated)):
        return f"'evaluated' must be [x, y] integers, got {evaluated!r:.80}"
    return None


def metrics_table(
    metric_json_paths: list[Path],
    parquet_out: Path,
    markdown_out: Path,
    provenance: Mapping[str, Any] | None = None,
) -> pd.DataFrame:
    """Collect metrics JSONs into one row per (predictor, split, mode); write parquet and markdown.

    ``provenance`` (the table's own config and data) goes into the parquet schema metadata and the
    markdown footer, which also warns when the gathered files ran on different data."""
    rows, sources = [], []
    for path in metric_json_paths:
        obj = read_metrics(path)
        sources.append(obj.get("provenance"))
        rows += [
            _metrics_row(obj["predictor"], obj["split"], mode, obj[mode]) for mode in MODES if mode in obj
        ]
    seen: dict[tuple[str, str, str], int] = Counter((r["predictor"], r["split"], r["mode"]) for r in rows)
    for (predictor, split, mode), n in seen.items():
        if n > 1:
            raise InputError(
                None, f"several metrics files for predictor={predictor}, split={split}, mode={mode}"
            )
    rows.sort(key=lambda r: (r["split"], r["predictor"], r["mode"]))
    table = pa.Table.from_pylist(rows, schema=METRICS)
    write_parquet(table, parquet_out, with_schema_metadata(METRICS, provenance))
    write_text(_metrics_markdown(rows) + markdown_footer(provenance, sources), markdown_out)
    logger.info("metrics table: %d rows from %d files", len(rows), len(metric_json_paths))
    return table.to_pandas()


def _metrics_row(predictor: str, split: str, mode: str, entry: Mapping[str, Any]) -> dict[str, Any]:
    """One :data:`METRICS` row from an entry that :func:`read_metrics` accepted."""
    row: dict[str, Any] = dict.fromkeys(METRICS.names)
    row.update(predictor=predictor, split=split, mode=mode)
    if "error" in entry:
        row["error"] = entry["error"]
        return row
    recall, excluded = entry["recall"], entry["excluded"]
    row.update({name: recall.get(name) for name in METRIC_COLUMNS})
    row.update(MR1=entry["mean_recall"].get("MR1"), MR5=entry["mean_recall"].get("MR5"), miou=entry["miou"])
    row.update({key: entry[key] for key in ("num_results", "num_gt", "num_evaluated", "num_missing")})
    row["num_excluded"] = sum(excluded.values())
    row["excluded"] = json.dumps(excluded, sort_keys=True)
    row["evaluated_x"], row["evaluated_y"] = entry["evaluated"]
    return row


def _metrics_markdown(rows: list[dict[str, Any]]) -> str:
    def pct(x: Any) -> str:
        return "–" if x is None else f"{x * 100:.2f}"

    lines = [
        "| predictor | split | mode | R@1 IoU0.3 | R@1 IoU0.5 | R@5 IoU0.3 | R@5 IoU0.5 | mIoU | Evaluated"
        " | note |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if isinstance(r["error"], str):
            cells = ["–"] * 6 + ["error: " + r["error"].splitlines()[0].replace("|", "\\|")]
        else:
            note = ""
            if r["mode"] == "strict":
                removed = [f"{name} removed {n}" for name, n in json.loads(r["excluded"]).items()]
                note = "; ".join([f"{r['num_missing']} missing", *removed])
            cells = [
                *(pct(r[name]) for name in ("R1@0.3", "R1@0.5", "R5@0.3", "R5@0.5", "miou")),
                f"{r['evaluated_x']} / {r['evaluated_y']}",
                note,
            ]
        lines.append("| " + " | ".join([r["predictor"], r["split"], r["mode"], *cells]) + " |")
    return "\n".join(lines) + "\n"
