"""What a record's types cannot say: finite numbers, scores in range, confusion shapes, the folder matching the key.

The types themselves (required fields, ints, strings, ``status`` "ok"/"failed") are checked by pydantic against the
``RunResult`` dataclass in ``benchmark.results``; these are the value checks on top, each returning the first
problem as text ("" when there is none), so the reader can name the file and the reason in one line.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from benchmark.results import RunResult

SCORE_RANGES = {"accuracy": (0.0, 1.0), "macro_f1": (0.0, 1.0), "kappa": (-1.0, 1.0)}
CLASS_SCORES = ("f1", "ppv", "sensitivity", "se")


def non_finite(value: Any, where: str = "") -> str:
    """The dotted path of the first NaN or infinite number in parsed JSON ``value``; "" when all are finite."""
    if isinstance(value, float) and not math.isfinite(value):
        return f"{where or 'value'} is {value}"
    items = value.items() if isinstance(value, Mapping) else enumerate(value) if isinstance(value, list) else ()
    for name, item in items:
        found = non_finite(item, f"{where}.{name}" if where else str(name))
        if found:
            return found
    return ""


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _score_problem(metrics: Mapping[str, Any], where: str) -> str:
    """Scores out of range in ``metrics``."""
    for name, (low, high) in SCORE_RANGES.items():
        if name in metrics and not (_number(metrics[name]) and low <= metrics[name] <= high):
            return f"{where}.{name} = {metrics[name]!r} is not a number in [{low:g}, {high:g}]"
    per_class = metrics.get("per_class", {})
    if not isinstance(per_class, Mapping):
        return f"{where}.per_class is not an object"
    for cls, scores in per_class.items():
        for name in CLASS_SCORES:
            value = scores.get(name) if isinstance(scores, Mapping) else None
            if value is not None and not (_number(value) and 0.0 <= value <= 1.0):
                return f"{where}.per_class.{cls}.{name} = {value!r} is not a number in [0, 1]"
    return ""


def _matrix_problem(matrix: Any, n: int, where: str) -> str:
    """Whether ``matrix`` is an n×n table of non-negative counts."""
    if not (isinstance(matrix, list) and len(matrix) == n
            and all(isinstance(row, list) and len(row) == n for row in matrix)):
        return f"{where} is not a {n}×{n} matrix (one row and column per class)"
    if not all(isinstance(c, int) and not isinstance(c, bool) and c >= 0 for row in matrix for c in row):
        return f"{where} holds a value that is not a non-negative count"
    return ""


def _confusion_problem(record: RunResult) -> str:
    classes = record.metrics.get("classes")
    if classes is not None and not (isinstance(classes, list) and all(isinstance(c, str) for c in classes)):
        return "metrics.classes is not a list of class names"
    confusion = record.metrics.get("confusion")
    if classes is None and not isinstance(confusion, list):  # an old record without either: nothing to match
        return ""
    n = len(classes) if classes is not None else len(confusion)  # type: ignore[arg-type]
    if "confusion" in record.metrics:
        problem = _matrix_problem(record.metrics["confusion"], n, "metrics.confusion")
        if problem:
            return problem
    for group, matrix in record.test_confusion_by_group.items():
        problem = _matrix_problem(matrix, n, f"test_confusion_by_group.{group}")
        if problem:
            return problem
    if record.test_confusion_by_group and "confusion" in record.metrics:
        total = [[sum(m[i][j] for m in record.test_confusion_by_group.values()) for j in range(n)] for i in range(n)]
        if total != record.metrics["confusion"]:
            return "test_confusion_by_group does not sum to metrics.confusion"
    return ""


def record_problem(record: RunResult) -> str:
    """The first value problem of a typed record; "" when there is none. An OK record must hold its main metric."""
    if record.key.seed < 0:
        return f"key.seed {record.key.seed} is negative"
    if record.ok:
        main = record.metrics.get(record.main_metric)
        if not _number(main):
            return f"an ok record without a numeric metrics.{record.main_metric}"
    for where, metrics in (("metrics", record.metrics), ("val_metrics", record.val_metrics)):
        problem = _score_problem(metrics, where)
        if problem:
            return problem
    return _confusion_problem(record)


def location_problem(path: Path, results_dir: Path, record: RunResult) -> str:
    """Whether ``path`` (under ``results_dir``) is where ``record``'s key says it belongs; "" when it is."""
    from benchmark.results import results_path

    expected = results_path(results_dir, record.key)
    if Path(path).resolve() == expected.resolve():
        return ""
    return f"its key {record.key.label()} belongs in {expected}, not here"
