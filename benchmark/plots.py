"""Leaderboard plots from the aggregate frame (matplotlib, Agg): per dataset table, a Pareto plot of the main metric
against params, MACs and CPU latency (CI bars), a per-class Se/+P chart, and the test confusion matrices (summed over
seeds) of the best ranked method, the teacher and the default student. Importing this module needs
matplotlib; ``benchmark.leaderboard`` skips the plots when it is missing."""

from __future__ import annotations

import io
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from benchmark.aggregate import TABLE_COLUMNS, in_table, table_key_values

MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "h", "*", "p")
HATCHES = ("//", "..", "xx", "\\\\", "--", "oo", "++", "||")
REFERENCE_COLOURS = ("black", "dimgray", "gray", "darkgray")
COST_AXES: tuple[tuple[str, str], ...] = (("params", "deployed parameters"), ("macs", "MACs per sample"),
                                          ("latency_ms", "CPU latency per sample (ms)"))  # fmt: skip
METRIC_TITLES = {"macro_f1": "macro-F1 (%)", "accuracy": "accuracy (%)", "kappa": "Cohen's κ"}
FAMILY_TITLES = ("methods and reference rows", "ablation variants beside their methods")
LEGEND_TITLES = {FAMILY_TITLES[0]: "best first", FAMILY_TITLES[1]: "methods best first,\neach with its variants"}
OFF_SCALE = 1.6  # a reference row this many times costlier than every other point of a panel is drawn as a line


@dataclass(frozen=True)
class Style:
    """How one method label is drawn: colour, marker, filled or hollow, bar hatch."""

    colour: Any
    marker: str
    filled: bool
    hatch: str | None


def _parent(label: str) -> str:
    return label.split("[", 1)[0]


def _styles(table: pd.DataFrame) -> dict[str, Style]:
    """Methods: one tab10 colour and marker each, filled; reference rows: greys, hollow, hatched; ablation variants:
    their method's colour, hollow, each its own marker and hatch (so a variant reads as its method's). Fixed by the
    sorted labels of ``table`` (a dataset's every table), so a method keeps its colour on every plot of a page."""
    from matplotlib import colormaps

    colours = colormaps["tab10"].colors
    rows = table.drop_duplicates("method_label").sort_values("method_label")
    styles: dict[str, Style] = {}
    methods = [r for r in rows.to_dict("records") if not r["reference"] and r["table"] != "ablation"]
    for i, row in enumerate(methods):
        styles[row["method_label"]] = Style(colours[i % len(colours)], MARKERS[i % len(MARKERS)], True, None)
    references = [r["method_label"] for r in rows.to_dict("records") if r["reference"]]
    for i, label in enumerate(references):
        styles[label] = Style(REFERENCE_COLOURS[i % len(REFERENCE_COLOURS)], MARKERS[i % len(MARKERS)], False, "//")
    per_parent: dict[str, int] = {}
    for row in rows.to_dict("records"):
        label = row["method_label"]
        if label in styles:
            continue
        parent = styles.get(_parent(label))
        k = per_parent.setdefault(_parent(label), 0)
        per_parent[_parent(label)] += 1
        colour = parent.colour if parent else colours[(len(methods) + len(per_parent)) % len(colours)]
        styles[label] = Style(colour, MARKERS[(k + 1) % len(MARKERS)], False, HATCHES[k % len(HATCHES)])
    return styles


def _families(table: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """(title, rows) per panel row: the methods with the reference rows, then (when any) the ablation variants with
    the methods they vary. Each ordered by the main metric, best first (variants after their method)."""
    order = table.sort_values(["mean", "method_label"], ascending=[False, True], na_position="last")
    ablation = order["table"] == "ablation"
    main = order[~ablation]
    families = [(FAMILY_TITLES[0], main)]
    if ablation.any():  # grouped by method (best method first): the method, then its variants, best first
        parents = list(dict.fromkeys(_parent(label) for label in order["method_label"]))
        members = order[ablation | order["method_label"].isin(set(map(_parent, order.loc[ablation, "method_label"])))]
        rank = {label: (parents.index(_parent(label)), "[" in label, i)
                for i, label in enumerate(members["method_label"])}
        families.append((FAMILY_TITLES[1], members.iloc[sorted(range(len(members)),
                                                               key=lambda i: rank[members["method_label"].iloc[i]])]))
    return [(title, rows) for title, rows in families if len(rows)]


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


def _legend(ax: Any, styles: Mapping[str, Style], labels: Sequence[str], title: str, bars: bool = False) -> None:
    """A legend in its own (blank) axes beside a panel row, so it never covers a point: markers, or bar patches."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    def face(style: Style) -> Any:
        return style.colour if style.filled else "white"

    handles = [Patch(facecolor=face(styles[label]), edgecolor=styles[label].colour, hatch=styles[label].hatch)
               if bars else Line2D([], [], marker=styles[label].marker, color=styles[label].colour, linestyle="none",
                                   markerfacecolor=face(styles[label]), markersize=8, markeredgewidth=1.5)
               for label in labels]
    ax.legend(handles, labels, loc="center left", fontsize="small", title=title, title_fontsize="small",
              frameon=False)
    ax.axis("off")


def _cost_panel(ax: Any, rows: pd.DataFrame, column: str, styles: Mapping[str, Style], scale: float) -> None:
    """One cost axis of the Pareto plot: a point per row (CI bar faint behind it); a reference row far costlier than
    every other point is a dashed line at its score, its cost written at the right edge."""
    finite = rows[rows[column].map(math.isfinite)]
    others = finite[~finite["reference"]][column]
    limit = OFF_SCALE * float(others.max()) if len(others) else math.inf
    off = finite[finite["reference"] & (finite[column] > limit)].sort_values("mean", ascending=False)
    for k, row in enumerate(off.to_dict("records")):  # labels alternate above and below their lines
        style, mean = styles[row["method_label"]], row["mean"] * scale
        ax.axhline(mean, color=style.colour, linestyle="--", linewidth=1, zorder=1)
        cost = f"{row[column]:.2f} ms" if column == "latency_ms" else _si(row[column])
        ax.annotate(f"{row['method_label']} ({cost}) →", (1.0, mean), xycoords=("axes fraction", "data"),
                    xytext=(-3, 2 if k % 2 == 0 else -2), textcoords="offset points", ha="right",
                    va="bottom" if k % 2 == 0 else "top", fontsize="x-small", color=style.colour)
    for row in finite.drop(off.index).to_dict("records"):
        style, mean = styles[row["method_label"]], row["mean"] * scale
        has_ci = math.isfinite(row["ci_low"]) and math.isfinite(row["ci_high"])
        spread = row["std"] * scale if math.isfinite(row["std"]) else 0.0
        low, high = (row["ci_low"] * scale, row["ci_high"] * scale) if has_ci else (mean - spread, mean + spread)
        ax.vlines(row[column], low, high, color=style.colour, alpha=0.3, linewidth=2.5, zorder=2)
        ax.plot([row[column]], [mean], marker=style.marker, color=style.colour, markersize=8, linestyle="none",
                markerfacecolor=style.colour if style.filled else "white", markeredgewidth=1.5, zorder=3)
    ax.xaxis.set_major_formatter("{x:.1f}" if column == "latency_ms" else FuncFormatter(lambda x, _: _si(x)))
    ax.margins(x=0.08)
    ax.grid(True, alpha=0.3)


def _si(value: float) -> str:
    """20k, 1.25M: a count with a k/M suffix and at most three significant digits."""
    for factor, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= factor:
            return f"{value / factor:.3g}{suffix}"
    return f"{value:.3g}"


def pareto_png(table: pd.DataFrame, styles: Mapping[str, Style], title: str) -> bytes | None:
    """``pareto_figure`` as PNG bytes; None when empty."""
    fig = pareto_figure(table, styles, title)
    return None if fig is None else _png(fig)


def pareto_figure(table: pd.DataFrame, styles: Mapping[str, Style], title: str) -> Figure | None:
    """Main metric (mean, faint 95 % CI bar, else ± std) against params, MACs and latency, linear axes; one row of
    panels per family (methods with reference rows; ablation variants with their methods); None when empty."""
    rows = table[table["mean"].map(math.isfinite)]
    if not len(rows):
        return None
    metric = str(rows["main_metric"].iloc[0])
    scale = _scale(metric)
    families = _families(rows)
    fig = Figure(figsize=(16, 4.2 * len(families) + 0.4), layout="constrained")
    grid = fig.subplots(len(families), len(COST_AXES) + 1, squeeze=False,
                        gridspec_kw={"width_ratios": [1] * len(COST_AXES) + [0.62]})
    low = float((rows["ci_low"].where(rows["ci_low"].map(math.isfinite), rows["mean"])).min()) * scale
    high = float((rows["ci_high"].where(rows["ci_high"].map(math.isfinite), rows["mean"])).max()) * scale
    for axes, (family, members) in zip(grid, families, strict=True):
        for ax, (column, label) in zip(axes[:-1], COST_AXES, strict=True):
            _cost_panel(ax, members, column, styles, scale)
            ax.set(xlabel=label, ylabel=METRIC_TITLES.get(metric, metric), ylim=(low - 1, high + 1))
        axes[0].set_title(family, loc="left", fontsize="medium")
        _legend(axes[-1], styles, list(members["method_label"]), LEGEND_TITLES[family])
    fig.suptitle(f"{title} — mean over seeds; faint bars: 95 % CI (± std where no CI); hollow grey: reference rows, "
                 "dashed: off the scale")
    return fig


def per_class_png(table: pd.DataFrame, styles: Mapping[str, Style], title: str) -> bytes | None:
    """``per_class_figure`` as PNG bytes; None when the table has no per-class scores."""
    fig = per_class_figure(table, styles, title)
    return None if fig is None else _png(fig)


def per_class_figure(table: pd.DataFrame, styles: Mapping[str, Style], title: str) -> Figure | None:
    """Per-class sensitivity (Se) and positive predictivity (+P), mean over seeds, one bar per method; one row of
    panels per family, as in the Pareto plot."""
    present = {c.split(":", 1)[1] for c in table.columns if c.startswith("se:") and not c.endswith("_std")}
    order = [c for classes in table["classes"] for c in classes] if "classes" in table else []
    classes = [c for c in dict.fromkeys([*order, *sorted(present)]) if c in present]
    if not classes or not len(table):
        return None
    families = _families(table)
    fig = Figure(figsize=(max(10, 2.6 * len(classes) + 3), 3.4 * len(families) + 0.4), layout="constrained")
    grid = fig.subplots(len(families), 3, squeeze=False, gridspec_kw={"width_ratios": [1, 1, 0.45]})
    for axes, (family, members) in zip(grid, families, strict=True):
        width = 0.84 / len(members)
        for ax, (short, name) in zip(axes[:-1], (("se", "Se (%)"), ("ppv", "+P (%)")), strict=True):
            for i, row in enumerate(members.to_dict("records")):
                style = styles[row["method_label"]]
                values = [100 * row.get(f"{short}:{c}", math.nan) for c in classes]
                ax.bar([k + (i - (len(members) - 1) / 2) * width for k in range(len(classes))], values, width,
                       color=style.colour if style.filled else "white", edgecolor=style.colour, hatch=style.hatch,
                       linewidth=0.8)
            ax.set(ylabel=name, ylim=(0, 100))
            ax.set_xticks(range(len(classes)), classes)
            ax.grid(True, axis="y", alpha=0.3)
        axes[0].set_title(family, loc="left", fontsize="medium")
        _legend(axes[-1], styles, list(members["method_label"]), LEGEND_TITLES[family], bars=True)
    fig.suptitle(f"{title} — per-class Se and +P, mean over seeds (grey hatched: reference rows)")
    return fig


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
    styles = _styles(mine)
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
