"""``show --by-patient CLASS`` and ``show --influence``: which test patients a score comes from.

``--by-patient CLASS``: per method, seeds pooled, each test patient's beats of the class and the method's Se / +P.
``--influence``: per method and table, the test patients whose leaving out moves the main metric most
(``benchmark.influence``).

A macro-F1 or a class sensitivity over MIT-BIH's 22 test patients can rest on one of them (record 232 holds three
quarters of DS2's S beats). This table sums each method's per-patient test confusion matrices
(``test_confusion_by_group``) over its records (seeds) and gives, per patient, the class's support and each method's
sensitivity (Se) and positive predictivity (+P) for it, plus the false alarms it raised there.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from rich.table import Table

from benchmark.results import ResultError, RunResult

TOP_PATIENTS = 3  # patients listed per row by ``influence_tables``


def pooled_confusions(results: Sequence[tuple[Path, RunResult]]) -> dict[str, dict[str, np.ndarray]]:
    """Method label -> patient -> its test confusion matrix summed over that method's records (seeds). One dataset,
    split, budget and profile; every record OK and with per-patient confusions, else a one-line error naming it."""
    cells = {(r.key.dataset, r.key.split, r.key.budget, r.key.profile) for _, r in results}
    if len(cells) > 1:
        shown = ", ".join("/".join(c) for c in sorted(cells))
        raise ResultError(f"--by-patient: the records span several datasets, splits, budgets or profiles ({shown}); "
                          "pass one")
    pooled: dict[str, dict[str, np.ndarray]] = {}
    for path, result in results:
        if not result.ok:
            raise ResultError(f"{path}: a failed record has no test predictions (--by-patient)")
        if not result.test_confusion_by_group:
            raise ResultError(f"{path}: no per-patient test confusions in this record (older than schema v2); "
                              "rerun it for --by-patient")
        per_method = pooled.setdefault(result.key.method_label, {})
        for patient, matrix in result.test_confusion_by_group.items():
            counts = np.asarray(matrix, dtype=np.int64)
            per_method[patient] = per_method.get(patient, np.zeros_like(counts)) + counts
    return pooled


def _ratio(hits: int, total: int) -> str:
    return f"{100 * hits / total:.0f}" if total else "–"


def by_patient_table(results: Sequence[tuple[Path, RunResult]], class_name: str) -> Table:
    """Rows: the patients with beats of ``class_name`` or false alarms of it, most beats first, then all patients;
    per method: Se / +P of the class (%) and false alarms, over its seeds pooled."""
    classes = list(results[0][1].metrics.get("classes") or [])
    if class_name not in classes:
        raise ResultError(f"--by-patient: {class_name!r} is not a class of these records ({', '.join(classes)})")
    c = classes.index(class_name)
    pooled = pooled_confusions(results)
    seeds = {label: sum(r.key.method_label == label for _, r in results) for label in pooled}
    patients = sorted({p for per in pooled.values() for p in per})

    def counts(label: str, patient: str) -> tuple[int, int, int]:
        """(true beats of the class, detected, false alarms) for one method and patient, over its seeds."""
        m = pooled[label].get(patient)
        if m is None:
            return 0, 0, 0
        return int(m[c].sum()), int(m[c, c]), int(m[:, c].sum() - m[c, c])

    support = {p: max(counts(label, p)[0] / seeds[label] for label in pooled) for p in patients}
    shown = [p for p in patients if support[p] or any(counts(label, p)[2] for label in pooled)]
    shown.sort(key=lambda p: (-support[p], p))
    total_support = sum(support.values())
    table = Table(title=f"class {class_name} by test patient: Se / +P (%) and false alarms, seeds pooled "
                        f"({len(shown)} of {len(patients)} patients have {class_name} beats or false alarms)")
    table.add_column("patient", style="bold")
    table.add_column(f"{class_name} beats", justify="right")
    table.add_column("share", justify="right")
    for label in pooled:
        table.add_column(f"{label} ({seeds[label]} seed{'s' * (seeds[label] != 1)})", justify="right")

    def cells(patient_list: Sequence[str]) -> list[str]:
        out = []
        for label in pooled:
            true, hit, false = (sum(v) for v in zip(*(counts(label, p) for p in patient_list), strict=True))
            out.append(f"{_ratio(hit, true)} / {_ratio(hit, hit + false)} · {false / seeds[label]:,.0f} FA")
        return out

    for patient in shown:
        share = f"{100 * support[patient] / total_support:.0f} %" if total_support else "–"
        table.add_row(patient, f"{support[patient]:,.0f}", share, *cells([patient]))
    table.add_row("all", f"{total_support:,.0f}", "100 %", *cells(patients), style="italic")
    return table


def influence_tables(results: Sequence[tuple[Path, RunResult]], top: int = TOP_PATIENTS) -> list[Table]:
    """One table per leaderboard table (dataset, split, budget, profile, protocol): each method's mean main metric
    and its ``top`` most influential test patients with the change when each is left out (points, mean over seeds)."""
    from benchmark.aggregate import TABLE_COLUMNS, row_influence, runs_frame

    runs = runs_frame([r for _, r in results])
    if not len(runs):
        raise ResultError("--influence: no successful records among these paths")
    tables = []
    for key, table in runs.groupby(list(TABLE_COLUMNS), sort=True, dropna=False):
        where = dict(zip(TABLE_COLUMNS, key, strict=True))
        metric = str(table["main_metric"].iloc[0])
        out = Table(title=f"{where['dataset']} · {where['split']} · budget {where['budget']} · profile "
                          f"{where['profile']}: change of {metric} (points) when one test patient is left out")
        out.add_column("method", style="bold", overflow="fold")
        out.add_column("seeds", justify="right")
        out.add_column(metric, justify="right")
        for i in range(top):
            out.add_column(f"#{i + 1} patient", justify="right")
        means = table.groupby("method_label")["main"].mean().sort_values(ascending=False, kind="stable")
        for label in means.index:
            rows = table[table["method_label"] == label]
            found = row_influence(rows)
            cells = [f"{p} ({100 * c:+.1f})" for p, c in zip(found.patients, found.changes, strict=True)][:top]
            cells += ["–"] * (top - len(cells))
            out.add_row(str(label), str(len(rows)), f"{100 * means[label]:.1f}", *cells)
        tables.append(out)
    return tables
