"""One final-training rule, and the search's own contribution on the leaderboard (issue 32).

A searching method's job runs its search once and trains the picked architecture twice, each from the run's seed:
*as published* (``Method.distill``, the method's own final training: the record's fields) and *protocol retraining*
(``Method.protocol_retrain``, the protocol's one KD recipe, ``vanilla_kd``'s: the record's ``protocol_final``). For
the leaderboard a record with a ``protocol_final`` stands for two rows: ``expand`` adds the second one as a derived
record labelled ``method[retrain=protocol]`` (same search, trace, teacher and seed; the protocol retraining's metrics,
per-patient confusions and training costs), so the aggregate compares it with ``vanilla_kd`` like any row. Its
``vs_vanilla_kd`` comparison is the **search gain**: the searched architecture against the default student, both
trained by the same KD recipe, paired over patients. ``final_training_section`` shows, per searching method, the two
final trainings side by side and that gain; ``search_size_note`` and ``method_notes`` render what the runs measured
(``provenance.notes.reported``, see ``RunContext.report``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from benchmark.results import RunResult

PROTOCOL_OPTION, PROTOCOL_VALUE = "retrain", "protocol"
PROTOCOL_VARIANT = f"{PROTOCOL_OPTION}={PROTOCOL_VALUE}"
SEARCH_PREFIX = "search: "  # reported numbers the "Search size" line shows (``runner.run_one``)
NETWORKS, BLOCK_PATHS = f"{SEARCH_PREFIX}networks evaluated", f"{SEARCH_PREFIX}block paths evaluated"


# ---------------------------------------------------------------------------------------------------------------------
# Records


def protocol_variant(variant: str) -> str:
    """A published row's variant with the protocol retraining's option added: ``"" -> "retrain=protocol"``."""
    return ",".join(sorted(v for v in (*variant.split(","), PROTOCOL_VARIANT) if v))


def published_variant(variant: str) -> str:
    """The variant of the published row a protocol-retraining row comes from (the option removed)."""
    return ",".join(v for v in variant.split(",") if v and v != PROTOCOL_VARIANT)


def is_protocol_variant(variant: str) -> bool:
    return PROTOCOL_VARIANT in str(variant).split(",")


def protocol_record(record: RunResult) -> RunResult:
    """The protocol retraining of ``record``'s search as a record of its own (for the aggregate; never written)."""
    final = record.protocol_final
    method_config = {**(record.config.get("method") or {}), PROTOCOL_OPTION: PROTOCOL_VALUE}
    return replace(record, key=replace(record.key, variant=protocol_variant(record.key.variant)),
                   metrics=dict(final.get("metrics") or {}), val_metrics=dict(final.get("val_metrics") or {}),
                   test_confusion_by_group=dict(final.get("test_confusion_by_group") or {}),
                   deployed_params=final.get("deployed_params", record.deployed_params),
                   train_cost=float(final.get("train_cost", 0.0)), train_wall_s=float(final.get("train_wall_s", 0.0)),
                   config={**record.config, "method": method_config}, protocol_final={}, model={}, history=[])


def expand(records: Iterable[RunResult]) -> list[RunResult]:
    """Every record, each OK one with a ``protocol_final`` followed by its protocol-retraining record."""
    out: list[RunResult] = []
    for record in records:
        out.append(record)
        if record.ok and record.protocol_final.get("metrics"):
            out.append(protocol_record(record))
    return out


def reported(records: Sequence[RunResult]) -> dict[str, float]:
    """The numbers a run reported (``provenance.notes.reported``), averaged over its records (a CV run's folds)."""
    values: dict[str, list[float]] = {}
    for record in records:
        notes = record.provenance.get("notes") if isinstance(record.provenance, Mapping) else None
        found = notes.get("reported") if isinstance(notes, Mapping) else None
        for name, value in (found or {}).items():
            if isinstance(value, int | float) and math.isfinite(value):
                values.setdefault(str(name), []).append(float(value))
    return {name: float(np.mean(v)) for name, v in sorted(values.items())}


def mean_reported(cells: Iterable[Any]) -> dict[str, float]:
    """Per name, the mean over runs (seeds) that reported it."""
    values: dict[str, list[float]] = {}
    for cell in cells:
        for name, value in (cell or {}).items():
            values.setdefault(name, []).append(value)
    return {name: float(np.mean(v)) for name, v in sorted(values.items())}


# ---------------------------------------------------------------------------------------------------------------------
# Leaderboard


def split_rows(table: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(the table without protocol-retraining rows, those rows): they are shown in their own section only."""
    if not len(table) or "variant" not in table:
        return table, table.iloc[0:0]
    mask = table["variant"].map(is_protocol_variant)
    return table[~mask], table[mask]


SECTION_TITLE = "Final training and search gain"
SECTION_NOTE = (
    "Each searching method's search ran once; its pick was trained twice from the same seed with the same epochs: "
    "**as published** (the method's own final training, the row above) and **protocol retraining** (the protocol's "
    "one KD recipe, `vanilla_kd`'s: Hinton KD from the protocol's KD source). **Search gain** = protocol retraining "
    "\u2212 `vanilla_kd` on the default student: the same recipe on both, so the difference is the searched "
    "architecture's (mean difference on common seeds with its paired 95 % CI and p-value, as the Δ columns)."
)


def final_training_section(published: pd.DataFrame, protocol: pd.DataFrame, main: str) -> str | None:
    """Markdown: per protocol-retraining row, its published row's score, its own, and the search gain."""
    if not len(protocol):
        return None
    from benchmark.leaderboard import DASH, METRIC_FORMAT, escape_cell, format_comparison, format_mean_std

    title, scale, decimals = METRIC_FORMAT.get(main, (main, 1.0, 3))
    by_label = {row["method_label"]: row for row in published.to_dict("records")}
    body = []
    for row in protocol.sort_values(["mean", "method_label"], ascending=[False, True]).to_dict("records"):
        variant = published_variant(row["variant"])
        label = f"{row['method']}[{variant}]" if variant else row["method"]
        mine = by_label.get(label)
        body.append([escape_cell(label),
                     format_mean_std(mine["mean"], mine["std"], scale, decimals) if mine else DASH,
                     format_mean_std(row["mean"], row["std"], scale, decimals),
                     format_comparison(row, "vanilla_kd", scale, decimals), str(row["n_seeds"])])
    header = ["Method", f"As published: {title}", f"Protocol retraining: {title}",
              "Search gain vs vanilla_kd", "Seeds"]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join([":--", "--:", "--:", "--:", "--:"]) + "|"]
    lines += ["| " + " | ".join(cells) + " |" for cells in body]
    return f"### {SECTION_TITLE}\n\n{SECTION_NOTE}\n\n" + "\n".join(lines)


def _rows_reporting(table: pd.DataFrame, name: str) -> list[dict[str, Any]]:
    if "reported" not in table:
        return []
    return [row for row in table.to_dict("records") if name in (row.get("reported") or {})]


def search_size_note(table: pd.DataFrame) -> str | None:
    """Networks evaluated at any fidelity per searching row (mean over seeds), block paths counted apart; None when no
    row's records report it (records before issue 32: the leaderboard keeps its earlier line)."""
    rows = _rows_reporting(table, NETWORKS)
    if not rows:
        return None
    rows.sort(key=lambda r: (-r["reported"][NETWORKS], r["method_label"]))
    each = []
    for row in rows:
        text = f"{row['method_label']} {row['reported'][NETWORKS]:,.0f}"
        if BLOCK_PATHS in row["reported"]:
            text += f" (+ {row['reported'][BLOCK_PATHS]:,.0f} block paths)"
        each.append(text)
    return ("Search size per seed (networks evaluated at any fidelity, mean over seeds; a network scored by the sum of "
            "its separately trained blocks' scores counts as evaluated, and those block paths are counted apart; "
            "fidelities and scores in each record, `python -m benchmark audit-search` checks the ranking): "
            + ", ".join(each) + ".")


def method_notes(table: pd.DataFrame) -> str | None:
    """What the runs measured about their methods (``RunContext.report``; mean over seeds), one entry per row."""
    if "reported" not in table:
        return None
    parts = []
    for row in table.sort_values("method_label").to_dict("records"):
        found = {k: v for k, v in (row.get("reported") or {}).items() if not k.startswith(SEARCH_PREFIX)}
        if found:
            parts.append(f"{row['method_label']}: " + "; ".join(f"{k} {v:.3g}" for k, v in found.items()))
    if not parts:
        return None
    return ("Method notes (measured by each run, mean over seeds; `provenance.notes.reported`): "
            + " · ".join(parts) + ".")
