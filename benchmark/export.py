"""``benchmark export``: the aggregate (or the per-run frame) written as CSV or Parquet, one flat table.

Sequence columns (seeds, folds, teacher_ids, classes) become comma-joined text and mappings (per-patient
confusions) JSON text, so both formats hold plain scalars and a CSV reads back with ``pandas.read_csv``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from benchmark.atomic import atomic_path
from benchmark.validation import UsageError

FORMATS = ("csv", "parquet")


def _flat(value: Any) -> Any:
    if isinstance(value, (tuple, list)):
        return ",".join(str(v) for v in value)
    if isinstance(value, Mapping):
        return json.dumps(value, sort_keys=True)
    return value


def flatten(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with sequence cells joined by commas and mapping cells as JSON text (``attrs`` dropped)."""
    flat = frame.copy()
    for column in flat.columns:
        if flat[column].dtype == object:
            flat[column] = flat[column].map(_flat)
    flat.attrs = {}
    return flat


def export_format(out: Path, fmt: str | None) -> str:
    """The format: ``fmt`` when given, else from the file suffix (``.parquet``), else csv."""
    chosen = fmt or ("parquet" if Path(out).suffix.lower() in (".parquet", ".pq") else "csv")
    if chosen not in FORMATS:
        raise UsageError(f"--format: expected one of {', '.join(FORMATS)}, got {chosen!r}")
    return chosen


def write_table(frame: pd.DataFrame, out: Path, fmt: str) -> Path:
    """Write ``frame`` flattened to ``out`` atomically as ``fmt``; parquet needs pyarrow (a one-line error if not)."""
    flat = flatten(frame)
    if fmt == "parquet":
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise UsageError("--format parquet needs pyarrow: pip install pyarrow") from None
    with atomic_path(Path(out)) as tmp:
        if fmt == "parquet":
            flat.to_parquet(tmp, index=False)
        else:
            flat.to_csv(tmp, index=False)
    return Path(out)
