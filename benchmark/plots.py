"""Leaderboard plots from the aggregate frame (matplotlib, Agg): per dataset table, a Pareto plot of the main metric
against params, MACs and CPU latency (CI bars), a per-class Se/+P chart, and the test confusion matrices (summed over
seeds) of the best ranked method, the teacher and the default student. Importing this module needs
matplotlib; ``benchmark.leaderboard`` skips the plots when it is missing."""

from __future__ import annotations

import io
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter

from benchmark.aggregate import TABLE_COLUMNS, in_table, table_key_values

MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "h", "*", "p", "8", "d", "H")
COST_AXES: tuple[tuple[str, str], ...] = (("params", "deployed parameters"), ("macs", "MACs per sample"),
                                          ("latency_ms", "CPU latency per sample (ms)"))  # fmt: skip
METRIC_TITLES = {"macro_f1": "macro-F1 (%)", "accuracy": "accuracy (%)", "kappa": "Cohen's κ"}


def _styles(labels: Sequence[str]) -> dict[str, tuple[str, Any]]:
    """One distinct (marker, colour) per method label, fixed by the sorted labels of the dataset."""
    from matplotlib import colormaps

    colours = colormaps["tab20"].colors
    return {label: (MARKERS[i % len(MARKERS)], colours[i % len(colours)]) for i, label in enumerate(sorted(labels))}


def _slug(key: Mapping[str, Any]) -> str:
    """A file-name part naming one table: budget, profile, split or fold set, protocol version."""
    split = key["split"] if not key["n_folds"] else f"{key['n_folds']}fold-cv-{len(key['folds'])}pooled"
    sha = f"-{str(key['folds_sha256'])[:8]}" if key["folds_sha256"] else ""
    text = f"{key['budget']}_{key['profile']}_{split}{sha}_v{key['protocol_version']}"
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text)


def _png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, metadata={"Software": None})
    return buffer.getvalue()


def _scale(metric: str) -> float:
    return 100.0 if metric in ("macro_f1", "accuracy") else 1.0


def pareto_png(table: pd.DataFrame, styles: Mapping[str, tuple[str, Any]], title: str) -> bytes | None:
    """Main metric (mean, 95 % CI bars where known, else ± std) against params, MACs and latency; None when empty."""
    rows = table[table["mean"].map(math.isfinite)]
    if not len(rows):
        return None
    metric = str(rows["main_metric"].iloc[0])
    scale = _scale(metric)
    fig = Figure(figsize=(15, 4.4), layout="constrained")
    axes = fig.subplots(1, len(COST_AXES))
    for ax, (column, label) in zip(axes, COST_AXES, strict=True):
        for row in rows.sort_values("method_label").to_dict("records"):
            if not math.isfinite(row[column]):
                continue
            marker, colour = styles[row["method_label"]]
            mean = row["mean"] * scale
            has_ci = math.isfinite(row["ci_low"]) and math.isfinite(row["ci_high"])
            spread = row["std"] * scale if math.isfinite(row["std"]) else 0.0
            yerr = [[mean - row["ci_low"] * scale], [row["ci_high"] * scale - mean]] if has_ci else [[spread],
                                                                                                   [spread]]
            ax.errorbar([row[column]], [mean], yerr=yerr, marker=marker, color=colour, capsize=3, linestyle="none",
                        markerfacecolor="none" if row["reference"] else colour, label=row["method_label"])
        ax.set(xlabel=label, ylabel=METRIC_TITLES.get(metric, metric))
        values = rows[column][rows[column].map(math.isfinite)]
        if len(values) and values.min() > 0 and values.max() > 10 * values.min():
            ax.set_xscale("log")
            ax.xaxis.set_minor_formatter(NullFormatter())
        ax.grid(True, alpha=0.3)
    axes[-1].legend(fontsize="small", loc="center left", bbox_to_anchor=(1.02, 0.5))
    fig.suptitle(f"{title} — mean over seeds, bars: 95 % CI (± std where no CI); hollow: reference")
    return _png(fig)


def per_class_png(table: pd.DataFrame, styles: Mapping[str, tuple[str, Any]], title: str) -> bytes | None:
    """Per-class sensitivity (Se) and positive predictivity (+P), mean over seeds, one bar per method."""
    present = {c.split(":", 1)[1] for c in table.columns if c.startswith("se:") and not c.endswith("_std")}
    order = [c for classes in table["classes"] for c in classes] if "classes" in table else []
    classes = [c for c in dict.fromkeys([*order, *sorted(present)]) if c in present]
    rows = table.sort_values("method_label")
    if not classes or not len(rows):
        return None
    fig = Figure(figsize=(max(8, 1.6 * len(classes) + 4), 6.5), layout="constrained")
    axes = fig.subplots(2, 1, sharex=True)
    width = 0.8 / len(rows)
    for ax, (short, name) in zip(axes, (("se", "Se (%)"), ("ppv", "+P (%)")), strict=True):
        for i, row in enumerate(rows.to_dict("records")):
            values = [100 * row.get(f"{short}:{c}", math.nan) for c in classes]
            _, colour = styles[row["method_label"]]
            ax.bar([k + (i - (len(rows) - 1) / 2) * width for k in range(len(classes))], values, width,
                   color=colour, label=row["method_label"], hatch="//" if row["reference"] else None)
        ax.set(ylabel=name, ylim=(0, 100))
        ax.grid(True, axis="y", alpha=0.3)
    axes[-1].set_xticks(range(len(classes)), classes)
    axes[0].legend(fontsize="small", loc="center left", bbox_to_anchor=(1.02, 0.0))
    fig.suptitle(f"{title} — per-class Se and +P, mean over seeds (hatched: reference)")
    return _png(fig)


CONFUSION_ROWS = ("teacher", "student")  # reference rows drawn beside the best ranked method


def confusion_png(runs: pd.DataFrame, labels: Sequence[str], title: str) -> bytes | None:
    """One panel per method label: its test confusion matrix summed over its runs (seeds), each row normalised to
    the share of that true class (colour) with the beat/epoch counts written in; None when no label has one."""
    import numpy as np

    panels = []
    for label in labels:
        mine = runs[(runs["method_label"] == label) & runs["confusion"].notna()]
        classes = next((tuple(c) for c in mine["classes"] if len(c)), ())
        if not len(mine) or not classes:
            continue
        total = sum(np.asarray(c, dtype=np.int64) for c in mine["confusion"])
        panels.append((label, classes, total, len(mine)))
    if not panels:
        return None
    fig = Figure(figsize=(4.3 * len(panels), 4.4), layout="constrained")
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (label, classes, total, n_runs) in zip(axes, panels, strict=True):
        shares = total / np.maximum(total.sum(axis=1, keepdims=True), 1)
        ax.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0)
        for (i, j), count in np.ndenumerate(total):
            ax.text(j, i, f"{count:,}", ha="center", va="center", fontsize="x-small",
                    color="white" if shares[i, j] > 0.6 else "black")
        ax.set_xticks(range(len(classes)), classes)
        ax.set_yticks(range(len(classes)), classes)
        ax.set(xlabel="predicted", ylabel="true", title=f"{label} ({n_runs} run{'s' if n_runs > 1 else ''})")
    fig.suptitle(f"{title} — test confusion, summed over seeds (colour: share of the true class)")
    return _png(fig)


def confusion_labels(table: pd.DataFrame) -> list[str]:
    """The best ranked method of ``table`` (first ranked row), then the teacher and the student where present."""
    ranked = table[table["table"] == "ranked"]
    best = [str(ranked["method_label"].iloc[0])] if len(ranked) else []
    return [*best, *(label for label in CONFUSION_ROWS if label in set(table["method_label"]))]


def dataset_plots(board: pd.DataFrame, dataset: str,
                  runs: pd.DataFrame | None = None) -> list[tuple[tuple[Any, ...], str, bytes]]:
    """(table key, file name, PNG) of the Pareto and per-class plots of every table of ``dataset`` in the aggregate
    ``board``, and, given the ``runs`` frame (``aggregate.runs_frame``), its confusion matrices. The table key is
    the table's values of ``TABLE_COLUMNS``, so a page can show each picture under its own table."""
    mine = board[board["dataset"] == dataset]
    styles = _styles(list(set(mine["method_label"])))
    out = []
    for values in sorted(table_key_values(mine), key=str):
        key = dict(zip(TABLE_COLUMNS, values, strict=True))
        table = in_table(mine, key)
        title = f"{dataset} · {key['budget']} · {key['profile']}"
        pictures = [("pareto", pareto_png(table, styles, title)), ("classes", per_class_png(table, styles, title))]
        if runs is not None and len(table):
            pictures.append(("confusion", confusion_png(in_table(runs, key), confusion_labels(table), title)))
        for kind, png in pictures:
            if png is not None:
                out.append((values, f"{dataset}_{_slug(key)}_{kind}.png", png))
    return out
