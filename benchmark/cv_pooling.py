"""Cross-validation pooling: a run's per-fold result records become one pooled record.

The OK folds of one run (same key apart from the split, same fold set) become ONE record scored from their summed
confusion matrices, with fold-mean costs and a ``20-fold CV (k of 20 folds pooled)`` split; failed folds move under
their run's pooled split. Also the small record helpers the leaderboard shares. Pure functions; no markdown here.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import astuple, replace
from typing import Any

import numpy as np

from benchmark.metrics import metrics_from_confusion
from benchmark.record_versions import current_records
from benchmark.results import RunResult

COST_FIELDS: tuple[str, ...] = (
    "deployed_params", "param_budget", "macs", "latency_ms", "search_cost", "train_cost", "search_wall_s",
    "train_wall_s",
)  # fmt: skip
_FOLD_SPLIT = re.compile(r"fold(\d+)")
_EN_DASH = "\u2013"  # joins a run of three or more fold numbers: 0–4


# ---------------------------------------------------------------------------------------------------------------------
# Record helpers


def sorted_records(results: Iterable[RunResult]) -> list[RunResult]:
    """Records in a canonical order (key, status, then full content), so output never depends on input order."""
    return sorted(results, key=lambda r: (astuple(r.key), r.status, r.to_json()))


def hardware_label(provenance: Mapping[str, Any]) -> str:
    """A short one-line hardware string from ``provenance["hardware"]`` (a string, or a dict of strings)."""
    hardware = provenance.get("hardware")
    if isinstance(hardware, Mapping):
        named = [hardware[k] for k in ("name", "summary", "gpu", "cpu", "device") if hardware.get(k)]
        hardware = named[0] if named else ", ".join(f"{k}={hardware[k]}" for k in sorted(hardware))
    text = " ".join(str(hardware).split()) if hardware not in (None, "") else ""
    return text or "unknown"


def float_or_nan(value: Any) -> float:
    """A float, NaN for a missing or non-numeric value."""
    try:
        return float(value) if value is not None else math.nan
    except (TypeError, ValueError):
        return math.nan


def finite_values(values: Iterable[Any]) -> np.ndarray:
    """The finite values as a float array, in input order."""
    array = np.asarray([float_or_nan(v) for v in values], dtype=float)
    return array[np.isfinite(array)]


# ---------------------------------------------------------------------------------------------------------------------
# Cross-validation: pool each run's folds into one record

CvUnit = tuple[str, str, str, str, str, int, int, str, str]  # key without split + n_folds, folds file and sha256


def cv_card(record: RunResult) -> Mapping[str, Any] | None:
    """The record's ``config["dataset_card"]["cv"]`` entry, None for a record of a fixed-split dataset."""
    card = record.config.get("dataset_card")
    cv = card.get("cv") if isinstance(card, Mapping) else None
    return cv if isinstance(cv, Mapping) else None


def _is_fold_record(record: RunResult) -> bool:
    """True for a not yet pooled fold record: a ``cv`` card entry with a ``fold`` and no pooled ``label``."""
    cv = cv_card(record)
    return cv is not None and "fold" in cv and "label" not in cv


def _cv_unit(record: RunResult, cv: Mapping[str, Any]) -> CvUnit:
    """The pooling unit of a fold record: its key without the split, plus the fold set's size, file and sha256."""
    key = record.key
    try:
        n_folds = int(cv["n_folds"])
    except (KeyError, TypeError, ValueError):
        raise ValueError(f"{key.label()}: cv card has no integer n_folds") from None
    return (key.dataset, key.budget, key.profile, key.method, key.variant, key.seed, n_folds,
            str(cv.get("folds_file", "")), str(cv.get("folds_sha256", "")))  # fmt: skip


def _fold_number(record: RunResult, cv: Mapping[str, Any]) -> int:
    """The fold a fold record scored (``cv["fold"]``)."""
    try:
        return int(cv["fold"])
    except (KeyError, TypeError, ValueError):
        raise ValueError(f"{record.key.label()}: cv card has no integer fold") from None


def _fold_runs(folds: Sequence[int]) -> str:
    """Sorted distinct fold numbers with runs of three or more compressed: ``0–4, 7, 9, 10``."""
    parts: list[str] = []
    ordered = sorted(set(folds))
    start = 0
    for i in range(1, len(ordered) + 1):
        if i == len(ordered) or ordered[i] != ordered[i - 1] + 1:
            run = ordered[start:i]
            parts.append(f"{run[0]}{_EN_DASH}{run[-1]}" if len(run) >= 3 else ", ".join(str(f) for f in run))
            start = i
    return ", ".join(parts)


def cv_split_label(n_folds: int, folds: Sequence[int]) -> str:
    """The split label of a pooled run: ``20-fold CV (20 of 20 folds pooled)`` or, for a subset,
    ``20-fold CV (3 of 20 folds pooled: 0–2)``."""
    pooled = sorted(set(folds))
    subset = f": {_fold_runs(pooled)}" if pooled and pooled != list(range(n_folds)) else ""
    return f"{n_folds}-fold CV ({len(pooled)} of {n_folds} folds pooled{subset})"


def _class_order(folds: Sequence[RunResult]) -> tuple[list[str], list[str]]:
    """The (classes, scored_classes) the folds' confusion matrices use; raise when missing or when folds disagree."""
    orders = set()
    for record in folds:
        classes, scored = record.metrics.get("classes"), record.metrics.get("scored_classes")
        if not isinstance(classes, list) or "confusion" not in record.metrics:
            raise ValueError(f"{record.key.label()}: cannot pool a fold whose metrics lack 'confusion' and 'classes' "
                             "(the confusion matrix's class order); re-run it")  # fmt: skip
        orders.add((tuple(classes), tuple(scored) if isinstance(scored, list) else tuple(classes)))
    if len(orders) != 1:
        raise ValueError(f"{folds[0].key.label()}: folds disagree on the class order {sorted(orders)}")
    classes, scored = orders.pop()
    return list(classes), list(scored)


def _summed_confusion(folds: Sequence[RunResult], n_classes: int) -> np.ndarray:
    """The sum of the folds' test confusion matrices."""
    total = np.zeros((n_classes, n_classes), dtype=np.int64)
    for record in folds:
        matrix = np.asarray(record.metrics["confusion"])
        if matrix.shape != total.shape:
            raise ValueError(f"{record.key.label()}: confusion matrix of shape {matrix.shape}, expected {total.shape}")
        total += matrix.astype(np.int64)
    return total


def _fold_mean(folds: Sequence[RunResult], field: str) -> float | None:
    """Mean of a numeric record field over the folds' finite values; None when no fold has one."""
    values = finite_values(getattr(r, field) for r in folds)
    return float(np.mean(values)) if values.size else None


def _pooled_card(cv: Mapping[str, Any], folds: Sequence[int], label: str) -> dict[str, Any]:
    """A dataset card of a pooled run: only a ``cv`` entry (the fold set's fields, the pooled ``folds``, ``label``);
    per-fold fields (test subjects, class counts) describe one fold, so they are left out."""
    pooled_cv = {k: cv[k] for k in ("n_folds", "folds_file", "folds_sha256", "scheme") if k in cv}
    pooled_cv.update(folds=sorted(folds), label=label)
    return {"cv": pooled_cv}


def _fold_units(records: Sequence[RunResult]) -> dict[CvUnit, list[RunResult]]:
    """The OK fold records per pooling unit, in ``records`` order."""
    units: dict[CvUnit, list[RunResult]] = {}
    for record in records:
        if record.ok and _is_fold_record(record):
            units.setdefault(_cv_unit(record, cv_card(record) or {}), []).append(record)
    return units


def _unit_folds(folds: Sequence[RunResult]) -> list[int]:
    """The sorted fold numbers of a unit's OK fold records; raise when a fold appears twice."""
    numbers = sorted(_fold_number(r, cv_card(r) or {}) for r in folds)
    if len(set(numbers)) != len(numbers):
        raise ValueError(f"{folds[0].key.label()}: a fold appears twice among {numbers}")
    return numbers


def _pooled_record(folds: Sequence[RunResult], label: str) -> RunResult:
    """One OK record of a run's OK fold records: summed-confusion metrics, fold-mean costs, split ``label``."""
    first = folds[0]
    classes, scored = _class_order(folds)
    metrics = metrics_from_confusion(_summed_confusion(folds, len(classes)), classes, scored)
    hardware = ", ".join(sorted({hardware_label(r.provenance) for r in folds}))
    costs = {name: _fold_mean(folds, name) for name in COST_FIELDS}
    costs.update({name: costs[name] or 0.0 for name in COST_FIELDS if name.startswith(("search_", "train_"))})
    card = _pooled_card(cv_card(first) or {}, _unit_folds(folds), label)
    return RunResult(
        key=replace(first.key, split=label),
        status="ok",
        metrics=metrics,
        config={**first.config, "dataset_card": card},
        provenance={"hardware": hardware},
        protocol_version=first.protocol_version,  # the leaderboard pools one protocol version (record_versions)
        **costs,
    )


def _unit_of_failed(record: RunResult, labels: Mapping[CvUnit, str]) -> tuple[CvUnit, int] | None:
    """(pooling unit, fold) of a failed fold record: from its cv card, else (a failure before the dataset card was
    written) from a ``foldNN`` split when exactly one pooled run of the same key matches; None when neither."""
    cv = cv_card(record)
    if cv is not None and "label" not in cv:
        return _cv_unit(record, cv), _fold_number(record, cv)
    match = _FOLD_SPLIT.fullmatch(record.key.split)
    if cv is not None or match is None:
        return None
    key, fold = record.key, int(match.group(1))
    same = (key.dataset, key.budget, key.profile, key.method, key.variant, key.seed)
    candidates = [unit for unit in labels if unit[:6] == same and fold < unit[6]]
    return (candidates[0], fold) if len(candidates) == 1 else None


def _relabel_failed(record: RunResult, unit: CvUnit, fold: int, label: str) -> RunResult:
    """A failed fold record moved under its run's pooled split ``label``; its cv card keeps the fold number."""
    cv = {**(cv_card(record) or {}), "n_folds": unit[6], "folds_file": unit[7], "folds_sha256": unit[8]}
    cv.update(fold=fold, label=label)
    card = {**record.config.get("dataset_card", {}), "cv": cv}
    return replace(record, key=replace(record.key, split=label), config={**record.config, "dataset_card": card})


def _failed_records(records: Sequence[RunResult], labels: Mapping[CvUnit, str]) -> list[RunResult]:
    """The failed records; a failed fold moved under its run's pooled split (``0 of N folds`` when none is OK)."""
    out = []
    for record in records:
        found = None if record.ok else _unit_of_failed(record, labels)
        if found is not None:
            unit, fold = found
            record = _relabel_failed(record, unit, fold, labels.get(unit) or cv_split_label(unit[6], []))
        if not record.ok:
            out.append(record)
    return out


def _pooled_labels(units: Mapping[CvUnit, Sequence[RunResult]]) -> dict[CvUnit, str]:
    """The pooled split label of each unit (which of its folds are pooled)."""
    return {unit: cv_split_label(unit[6], _unit_folds(folds)) for unit, folds in units.items()}


def pool_cv_records(results: Iterable[RunResult]) -> list[RunResult]:
    """The records with each cross-validated run's folds pooled, in canonical order.

    OK fold records (a ``config["dataset_card"]["cv"]`` entry) are grouped per (dataset, budget, profile, method,
    seed, n_folds, folds file, folds sha256) and replaced by ONE OK record: metrics from the summed confusion
    matrices, params/MACs/latency/costs/wall times the mean over the folds, split ``cv_split_label`` (which folds
    it pools). A failed fold record is kept, moved under its run's pooled split. Other records pass through.
    Records of other data, split or protocol versions than the current one are left out (``current_records``).
    """
    records = sorted_records(current_records(results)[0])
    units = _fold_units(records)
    labels = _pooled_labels(units)
    pooled = [_pooled_record(folds, labels[unit]) for unit, folds in units.items()]
    fixed = [r for r in records if r.ok and not _is_fold_record(r)]
    return sorted_records([*pooled, *fixed, *_failed_records(records, labels)])


def failed_cv_records(results: Iterable[RunResult]) -> list[RunResult]:
    """The failed records as ``pool_cv_records`` returns them, without scoring any pool."""
    records = sorted_records(current_records(results)[0])
    return _failed_records(records, _pooled_labels(_fold_units(records)))
