"""The one aggregation: result records -> a per-run frame -> one row per method and table, with statistics.

``runs_frame(records)``: one row per OK run; the folds of a cross-validated run are pooled here, once (per-fold test
confusion matrices summed, then scored; per-patient confusions merged; costs averaged over the folds).
``failures_frame(records)``: one row per failed record, placed in the table of its run.
``aggregate(records)``: one row per (dataset, split, fold set, budget, profile, protocol version, method label) —
mean, std and a 95 % CI of the dataset's ``main_metric`` over seeds, per-class means, costs, paired comparisons with
``vanilla_kd`` and ``student``, the row's table (``ranked``, ``reference``, ``few_seeds``, ``ablation``) and its
rank. Everything is grouped on typed record fields; nothing parses a label. Pure: same records, same frame.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import astuple
from typing import Any

import numpy as np
import pandas as pd

from benchmark import final_rows, stats
from benchmark.estimate import teacher_train_wall_s
from benchmark.external import ExternalScore
from benchmark.influence import Influence, influence
from benchmark.metrics import metrics_from_confusion
from benchmark.record_versions import current_records
from benchmark.results import RunResult
from benchmark.scores import SCORABLE

MIN_SEEDS = 3  # fewer seeds: listed in their own table, never ranked
BASELINES = ("vanilla_kd", "student")  # every row is compared with these, on common seeds
TABLE_COLUMNS: tuple[str, ...] = ("dataset", "split", "n_folds", "folds", "folds_file", "folds_sha256", "budget",
                                  "profile", "protocol_version")  # fmt: skip
GROUP_COLUMNS: tuple[str, ...] = (*TABLE_COLUMNS, "method_label")
COST_FIELDS: tuple[str, ...] = ("deployed_params", "param_budget", "macs", "latency_ms", "search_cost", "train_cost",
                                "search_wall_s", "train_wall_s")  # fmt: skip
SCORE_COLUMNS: tuple[str, ...] = ("macro_f1", "accuracy", "kappa")
SPREAD_COLUMNS: tuple[str, ...] = (*SCORE_COLUMNS, "params", "macs")  # shown as mean ± std
MEAN_COLUMNS: tuple[str, ...] = ("param_budget", "latency_ms", "latency_iqr_ms", "search_cost", "train_cost",
                                 "search_wall_s", "train_wall_s", "wall_s", "teacher_wall_s", "search_candidates",
                                 "search_evaluations")  # fmt: skip
PER_CLASS_FIELDS: tuple[tuple[str, str], ...] = (("f1", "f1"), ("se", "sensitivity"), ("ppv", "ppv"))
RANKED, REFERENCE, FEW_SEEDS, ABLATION = "ranked", "reference", "few_seeds", "ablation"
# the row's most influential test patient and the second, each with the change of the mean score when left out
INFLUENCE_COLUMNS: tuple[str, ...] = ("influence_patient", "influence_change", "influence_second",
                                      "influence_second_change")
AGGREGATE_COLUMNS: tuple[str, ...] = (  # the fixed columns of ``aggregate``; per-class columns follow them
    *GROUP_COLUMNS, "cv_scheme", "method", "variant", "reference", "ablation", "table", "rank", "n_seeds", "seeds",
    "main_metric", "mean", "std", "ci_low", "ci_high", "ci_kind",
    *[c for s in SPREAD_COLUMNS for c in (s, f"{s}_std")], *MEAN_COLUMNS, "hardware", "latency_hw", "commits",
    "teacher_ids",
    "teacher_members", "classes", "n_failed", "reported",
    *[f"vs_{b}_{part}" for b in BASELINES for part in ("diff", "low", "high", "p", "p_holm", "test", "n")],
    *INFLUENCE_COLUMNS, *[f"vs_{b}_{part}_wo" for b in BASELINES for part in ("diff", "low", "high", "p")],
)  # fmt: skip


# ---------------------------------------------------------------------------------------------------------------------
# Small helpers


def table_key_values(frame: pd.DataFrame) -> set[tuple[Any, ...]]:
    """The distinct tables ``frame``'s rows belong to, each as its tuple of ``TABLE_COLUMNS`` values."""
    return {tuple(k) for k in frame[list(TABLE_COLUMNS)].itertuples(index=False)}


def in_table(frame: pd.DataFrame, key: Mapping[str, Any]) -> pd.DataFrame:
    """The rows of ``frame`` in the table ``key`` (a mapping of ``TABLE_COLUMNS`` to their values)."""
    mask = pd.Series(True, index=frame.index)
    for column in TABLE_COLUMNS:
        mask &= frame[column].map(lambda v, want=key[column]: v == want)
    return frame[mask]


def float_or_nan(value: Any) -> float:
    """A float, NaN for a missing or non-numeric value."""
    try:
        return float(value) if value is not None else math.nan
    except (TypeError, ValueError):
        return math.nan


def finite(values: Iterable[Any]) -> np.ndarray:
    """The finite values as a float array, in input order."""
    array = np.asarray([float_or_nan(v) for v in values], dtype=float)
    return array[np.isfinite(array)]


def hardware_label(provenance: Mapping[str, Any]) -> str:
    """A short one-line hardware string from ``provenance["hardware"]`` (a string, or a dict of strings)."""
    hardware = provenance.get("hardware")
    if isinstance(hardware, Mapping):
        named = [hardware[k] for k in ("name", "summary", "gpu", "cpu", "device") if hardware.get(k)]
        hardware = named[0] if named else ", ".join(f"{k}={hardware[k]}" for k in sorted(hardware))
    text = " ".join(str(hardware).split()) if hardware not in (None, "") else ""
    return text or "unknown"


def latency_hardware(record: RunResult) -> str:
    """The CPU the latency was measured on: the latency record's, else the provenance's CPU, else its label."""
    detail = record.provenance.get("hardware_detail")
    cpu = detail.get("cpu") if isinstance(detail, Mapping) else None
    return str(record.latency.get("hardware") or cpu or hardware_label(record.provenance))


def short_commit(provenance: Mapping[str, Any]) -> str:
    """The record's code version as a 7-character git hash ("" when not recorded)."""
    return str(provenance.get("git_commit") or "")[:7]


def sorted_records(results: Iterable[RunResult]) -> list[RunResult]:
    """Records in a canonical order (key, status, then full content), so output never depends on input order."""
    return sorted(results, key=lambda r: (astuple(r.key), r.status, r.to_json()))


def _joined(values: Iterable[str]) -> str:
    return ", ".join(sorted({v for v in values if v}))


# ---------------------------------------------------------------------------------------------------------------------
# Records -> runs (cross-validation folds pooled)

Unit = tuple[Any, ...]  # a run: key without split, protocol version, cv block


def _unit(record: RunResult) -> Unit:
    key = record.key
    return (key.dataset, key.budget, key.profile, key.method, key.variant, key.seed, record.protocol_version,
            record.cv)  # fmt: skip


def _is_fold(record: RunResult) -> bool:
    return record.cv is not None and record.fold is not None


def _class_order(records: Sequence[RunResult]) -> tuple[list[str], list[str]]:
    """The (classes, scored_classes) the records' confusion matrices use; raise when missing or when they disagree."""
    orders = set()
    for record in records:
        classes, scored = record.metrics.get("classes"), record.metrics.get("scored_classes")
        if not isinstance(classes, list) or "confusion" not in record.metrics:
            raise ValueError(f"{record.key.label()}: cannot pool a fold whose metrics lack 'confusion' and 'classes' "
                             "(the confusion matrix's class order); re-run it")  # fmt: skip
        orders.add((tuple(classes), tuple(scored) if isinstance(scored, list) else tuple(classes)))
    if len(orders) != 1:
        raise ValueError(f"{records[0].key.label()}: folds disagree on the class order {sorted(orders)}")
    classes, scored = orders.pop()
    return list(classes), list(scored)


def _merged_groups(folds: Sequence[RunResult]) -> dict[str, list[list[int]]] | None:
    """The folds' per-patient confusions merged (a patient in two folds: summed); None when a fold lacks them."""
    if not all(r.test_confusion_by_group for r in folds):
        return None
    merged: dict[str, np.ndarray] = {}
    for record in folds:
        for name, matrix in record.test_confusion_by_group.items():
            merged[name] = merged.get(name, 0) + np.asarray(matrix, dtype=np.int64)
    return {name: matrix.tolist() for name, matrix in sorted(merged.items())}


def _per_class(metrics: Mapping[str, Any]) -> dict[str, float]:
    """``f1:<class>``, ``se:<class>`` and ``ppv:<class>`` (fractions) from ``metrics["per_class"]``."""
    per_class = metrics.get("per_class") or {}
    return {f"{short}:{name}": float_or_nan(scores.get(field)) for name, scores in per_class.items()
            for short, field in PER_CLASS_FIELDS}  # fmt: skip


def distinct_candidates(record: RunResult) -> int:
    """How many distinct candidates the record's search evaluated (its ``search_trace``, by candidate)."""
    return len({json.dumps(entry.get("candidate"), sort_keys=True, default=str) for entry in record.search_trace})


def _teacher_wall_s(records: Sequence[RunResult]) -> float:
    """Seconds the run's teacher(s) took to train (an ensemble's members summed, a CV run's folds summed); NaN
    without a teacher or when a record lacks the time."""
    walls = [teacher_train_wall_s(r.teacher) for r in records]
    return float(sum(walls)) if all(w is not None for w in walls) else math.nan  # type: ignore[arg-type]


def _run_row(first: RunResult, records: Sequence[RunResult], metrics: Mapping[str, Any],
             groups: Mapping[str, Any] | None, folds: tuple[int, ...]) -> dict[str, Any]:
    """One runs-frame row: ``records`` are the run's folds (one record for a fixed split)."""
    key, cv = first.key, first.cv

    def mean_of(field: str) -> float:
        values = finite(getattr(r, field) for r in records)
        return float(values.mean()) if values.size else math.nan

    classes, scored = metrics.get("classes") or [], metrics.get("scored_classes") or metrics.get("classes") or []
    row: dict[str, Any] = {
        "dataset": key.dataset, "split": f"{cv.n_folds}-fold CV" if cv else key.split,
        "n_folds": cv.n_folds if cv else 0, "folds": folds, "folds_file": cv.folds_file if cv else "",
        "folds_sha256": cv.folds_sha256 if cv else "", "cv_scheme": cv.scheme if cv else "",
        "budget": key.budget, "profile": key.profile, "protocol_version": first.protocol_version,
        "method": key.method, "variant": key.variant, "method_label": key.method_label,
        "reference": any(r.reference for r in records), "seed": key.seed, "main_metric": first.main_metric,
        "main": float_or_nan(metrics.get(first.main_metric)),
        "val_main": float(val.mean()) if (val := finite(r.val_metrics.get(first.main_metric) for r in records)).size
        == len(records) else math.nan,
        **{name: float_or_nan(metrics.get(name)) for name in SCORE_COLUMNS},
        "params": mean_of("deployed_params"), **{f: mean_of(f) for f in COST_FIELDS if f != "deployed_params"},
        "latency_iqr_ms": float(np.mean(iqr)) if (iqr := finite(r.latency.get("iqr_ms") for r in records)).size
        else math.nan,
        "wall_s": float(walls.sum()) if (walls := finite(r.provenance.get("wall_s") for r in records)).size
        == len(records) else math.nan,
        "teacher_wall_s": _teacher_wall_s(records),
        "search_candidates": float(np.mean([distinct_candidates(r) for r in records])),
        "search_evaluations": float(np.mean([len(r.search_trace) for r in records])),
        "reported": final_rows.reported(records),
        "hardware": _joined(hardware_label(r.provenance) for r in records),
        "latency_hw": _joined(latency_hardware(r) for r in records),
        "commit": _joined(short_commit(r.provenance) for r in records),
        "teacher_ids": tuple(sorted({t for r in records for t in r.teacher_ids})),
        "classes": tuple(classes), "scored_classes": tuple(scored), "confusion_by_group": groups,
        "confusion": metrics.get("confusion"),
    }  # fmt: skip
    row.update(_per_class(metrics))
    return row


def _fold_units(records: Sequence[RunResult]) -> dict[Unit, list[RunResult]]:
    """The OK fold records of each cross-validated run, in ``records`` order; raise when a fold appears twice."""
    units: dict[Unit, list[RunResult]] = {}
    for record in records:
        if record.ok and _is_fold(record):
            units.setdefault(_unit(record), []).append(record)
    for folds in units.values():
        numbers = sorted(int(r.fold) for r in folds)  # type: ignore[arg-type]
        if len(set(numbers)) != len(numbers):
            raise ValueError(f"{folds[0].key.label()}: a fold appears twice among {numbers}")
    return units


def _folds_of(folds: Sequence[RunResult]) -> tuple[int, ...]:
    return tuple(sorted(int(r.fold) for r in folds))  # type: ignore[arg-type]


def _matching_external(record: RunResult, scores: Sequence[ExternalScore]) -> dict[str, ExternalScore]:
    """The external scores of ``record``'s key made from the student it names now (``benchmark.external``)."""
    sha = record.model.get("sha256") if record.model else None
    return {s.external: s for s in scores if sha and s.key == record.key and s.model_sha256 == sha}


def _runs(records: Sequence[RunResult], external: Sequence[ExternalScore] = ()) -> list[dict[str, Any]]:
    """Run rows of the OK records: a fixed-split record as it is, the folds of a cross-validated run pooled."""
    rows = [{**_run_row(r, [r], r.metrics, r.test_confusion_by_group or None, ()),
             "external": _matching_external(r, external)} for r in records if r.ok and not _is_fold(r)]
    for folds in _fold_units(records).values():
        classes, scored = _class_order(folds)
        total = sum(np.asarray(r.metrics["confusion"], dtype=np.int64) for r in folds)
        metrics = metrics_from_confusion(total, classes, scored)
        rows.append({**_run_row(folds[0], folds, metrics, _merged_groups(folds), _folds_of(folds)), "external": {}})
    return rows


def _ok_current(results: Iterable[RunResult]) -> tuple[list[RunResult], list[str]]:
    records, notes = current_records(results)
    return sorted_records(records), notes


def runs_frame(results: Iterable[RunResult], external: Sequence[ExternalScore] = ()) -> pd.DataFrame:
    """One row per OK run of the current data/protocol versions (``record_versions``); CV folds pooled per run.

    Columns: the table columns (``TABLE_COLUMNS``; ``n_folds`` 0 and ``folds`` () for a fixed split), method,
    variant, method_label, reference, seed, main_metric, main (its value), val_main (the main metric on the
    validation split of the weights the run kept; a CV run's folds averaged), macro_f1, accuracy, kappa, params, costs,
    hardware, latency_hw, commit (7-character git hash), teacher_ids, classes, scored_classes, confusion_by_group
    ({patient: matrix}, None when not recorded), confusion (the run's test confusion matrix, rows true), external
    ({external set: ExternalScore} of ``external`` that belong to the run's record and its saved student) and
    per-class ``f1:``/``se:``/``ppv:`` fractions. ``frame.attrs["notes"]``: records left out.
    """
    records, notes = _ok_current(results)
    rows = _runs(records, external)
    frame = pd.DataFrame(rows, columns=_run_columns(rows))
    frame.attrs["notes"] = notes
    return frame


def _run_columns(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    base = [*TABLE_COLUMNS, "cv_scheme", "method", "variant", "method_label", "reference", "seed", "main_metric",
            "main", "val_main", *SCORE_COLUMNS, "params", *[f for f in COST_FIELDS if f != "deployed_params"],
            "latency_iqr_ms", "wall_s", "teacher_wall_s", "search_candidates", "search_evaluations", "reported",
            "hardware", "latency_hw", "commit", "teacher_ids", "classes", "scored_classes", "confusion_by_group",
            "confusion", "external"]  # fmt: skip
    per_class = dict.fromkeys(c for row in rows for c in row if c.split(":")[0] in ("f1", "se", "ppv"))
    return [*base, *per_class]


# ---------------------------------------------------------------------------------------------------------------------
# Failed records, placed in their run's table


def _failure_table(record: RunResult, pooled: Mapping[Unit, tuple[int, ...]]) -> dict[str, Any]:
    """The table columns of a failed record: a failed fold joins its run's pooled table (the one run of the same key
    and fold set, or, for a fold that failed before its fold set was known, the one run of the same key whose folds
    include its fold number); otherwise its own."""
    key = record.key
    same = (key.dataset, key.budget, key.profile, key.method, key.variant, key.seed)
    if record.fold is not None:
        candidates = [u for u in pooled if u[:6] == same and (u[7] == record.cv if record.cv is not None
                                                              else record.fold < u[7].n_folds)]
        if len(candidates) == 1:
            unit = candidates[0]
            cv = unit[7]
            return {"split": f"{cv.n_folds}-fold CV", "n_folds": cv.n_folds, "folds": pooled[unit],
                    "folds_file": cv.folds_file, "folds_sha256": cv.folds_sha256, "protocol_version": unit[6]}
    cv = record.cv
    if cv is not None:
        return {"split": f"{cv.n_folds}-fold CV", "n_folds": cv.n_folds, "folds": (), "folds_file": cv.folds_file,
                "folds_sha256": cv.folds_sha256, "protocol_version": record.protocol_version}
    return {"split": key.split, "n_folds": 0, "folds": (), "folds_file": "", "folds_sha256": "",
            "protocol_version": record.protocol_version}


def _first_line(text: str | None, limit: int = 160) -> str:
    """The first non-empty line of ``text``, shortened to ``limit`` characters."""
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    line = lines[0] if lines else "(no error message)"
    return line if len(line) <= limit else line[: limit - 1] + "…"


FAILURE_COLUMNS: tuple[str, ...] = (*TABLE_COLUMNS, "method_label", "seed", "fold", "error", "hardware")


def failures_frame(results: Iterable[RunResult]) -> pd.DataFrame:
    """One row per failed record of the current versions: its table columns, method label, seed, fold (-1 for
    none), the first line of its error and its hardware."""
    records, _ = _ok_current(results)
    pooled = {unit: _folds_of(folds) for unit, folds in _fold_units(records).items()}
    rows = [{"dataset": r.key.dataset, "budget": r.key.budget, "profile": r.key.profile,
             **_failure_table(r, pooled), "method_label": r.key.method_label, "seed": r.key.seed,
             "fold": -1 if r.fold is None else r.fold, "error": _first_line(r.error),
             "hardware": hardware_label(r.provenance)} for r in records if not r.ok]  # fmt: skip
    return pd.DataFrame(rows, columns=list(FAILURE_COLUMNS))


# ---------------------------------------------------------------------------------------------------------------------
# Runs -> one row per method and table, with statistics


def _mean_std(values: Iterable[Any]) -> tuple[float, float]:
    """(mean, sample std with ddof=1) over the finite values; NaN where undefined."""
    array = finite(values)
    if array.size == 0:
        return math.nan, math.nan
    return float(array.mean()), float(np.std(array, ddof=1)) if array.size > 1 else math.nan


def _patients(runs: pd.DataFrame) -> list[str] | None:
    """The sorted patient names of the runs' per-patient confusions; None when a run lacks them."""
    groups = list(runs["confusion_by_group"])
    if not groups or any(g is None for g in groups):
        return None
    return sorted({name for g in groups for name in g})


def _scorable(runs: pd.DataFrame) -> tuple[str, list[int]] | None:
    """(main metric, scored class indices) when the runs agree on them and the metric is scorable from a confusion."""
    metrics, classes = set(runs["main_metric"]), set(runs["classes"])
    scored = set(runs["scored_classes"])
    if len(metrics) != 1 or len(classes) != 1 or len(scored) != 1:
        return None
    metric, (order,), (chosen,) = metrics.pop(), classes, scored
    if metric not in SCORABLE or not order:
        return None
    return metric, [order.index(c) for c in chosen]


def patient_scoring(runs: pd.DataFrame) -> tuple[np.ndarray, list[str], str, list[int]] | None:
    """(confusions (seeds, patients, K, K), patients, metric, scored class indices) when every run has per-patient
    confusions and the metric is scorable from them; None otherwise."""
    patients, scorable = _patients(runs), _scorable(runs)
    if patients is None or scorable is None:
        return None
    conf = stats.patient_array(list(runs["confusion_by_group"]), patients, len(runs["classes"].iloc[0]))
    return conf, patients, *scorable


def _interval(runs: pd.DataFrame) -> stats.Interval:
    """Patient bootstrap CI when every run has per-patient confusions, else a seed-level CI."""
    scoring = patient_scoring(runs)
    if scoring is not None:
        conf, _, metric, scored = scoring
        return stats.patient_interval(conf, metric, scored)
    return stats.seed_interval(list(runs["main"]))


def row_influence(runs: pd.DataFrame) -> Influence:
    """A row's test patients by influence on its main metric (``benchmark.influence``); empty without per-patient
    confusions."""
    scoring = patient_scoring(runs)
    return influence(*scoring) if scoring is not None else Influence()


def _influence(runs: pd.DataFrame) -> dict[str, Any]:
    """``INFLUENCE_COLUMNS`` of a row; None / NaN without per-patient confusions."""
    found = row_influence(runs)
    top = [(found.patients[i], found.changes[i]) if i < len(found.patients) else (None, math.nan) for i in (0, 1)]
    return {"influence_patient": top[0][0], "influence_change": top[0][1], "influence_second": top[1][0],
            "influence_second_change": top[1][1]}


def _compare(mine: pd.DataFrame, base: pd.DataFrame, without: str | None = None) -> stats.Comparison:
    """This row's runs minus the baseline's on their common seeds (a teacher is shared per seed, so common seeds
    also mean common teachers): patient-level when both have per-patient confusions, else seed-level. ``without``:
    a patient left out of both (patient-level only; an empty comparison otherwise)."""
    seeds = sorted(set(mine["seed"]) & set(base["seed"]))
    if not seeds:
        return stats.Comparison()
    a, b = mine.set_index("seed").loc[seeds], base.set_index("seed").loc[seeds]
    both = pd.concat([a, b])
    patients, scorable = _patients(both), _scorable(both)
    if patients is not None and scorable is not None:
        patients = [p for p in patients if p != without]
        n_classes = len(both["classes"].iloc[0])
        conf_a = stats.patient_array(list(a["confusion_by_group"]), patients, n_classes)
        conf_b = stats.patient_array(list(b["confusion_by_group"]), patients, n_classes)
        return stats.compare_patients(conf_a, conf_b, *scorable)
    return stats.compare_seeds(list(a["main"]), list(b["main"])) if without is None else stats.Comparison()


def external_columns(name: str) -> tuple[str, ...]:
    """The aggregate's columns of external test set ``name``: mean and std over seeds of its pooled macro-F1, the
    patient-bootstrap CI, and how many of the row's seeds were scored on it."""
    return tuple(f"ext:{name}:{part}" for part in ("mean", "std", "low", "high", "n"))


def _external(runs: pd.DataFrame) -> dict[str, Any]:
    """``external_columns`` of every external set some of the row's runs were scored on."""
    out: dict[str, Any] = {}
    for name in sorted({n for scores in runs["external"] for n in scores}):
        scored = [scores[name] for scores in runs["external"] if name in scores]
        first = scored[0]
        patients = sorted({p for s in scored for p in s.confusion_by_group})
        conf = stats.patient_array([s.confusion_by_group for s in scored], patients, len(first.classes))
        indices = [first.classes.index(c) for c in first.scored_classes]
        mean, std = _mean_std(s.metrics.get("macro_f1") for s in scored)
        interval = stats.patient_interval(conf, "macro_f1", indices)
        out.update(zip(external_columns(name), (mean, std, interval.low, interval.high, len(scored)), strict=True))
    return out


def _table_of(reference: bool, ablation: bool, n_seeds: int) -> str:
    if reference:
        return REFERENCE
    if ablation:
        return ABLATION
    return RANKED if n_seeds >= MIN_SEEDS else FEW_SEEDS


def _row(key: tuple[Any, ...], runs: pd.DataFrame, n_failed: int) -> dict[str, Any]:
    """One aggregate row: identity, seeds, main-metric statistics, means (± std) of scores, costs, per-class."""
    row: dict[str, Any] = dict(zip(GROUP_COLUMNS, key, strict=True))
    first = runs.iloc[0]
    seeds = tuple(sorted(int(s) for s in runs["seed"]))
    reference, ablation = bool(runs["reference"].any()), bool(first["variant"])
    mean, std = _mean_std(runs["main"])
    interval = _interval(runs)
    row.update(cv_scheme=first["cv_scheme"], method=first["method"], variant=first["variant"], reference=reference,
               ablation=ablation,
               table=_table_of(reference, ablation, len(seeds)), n_seeds=len(seeds), seeds=seeds,
               main_metric=first["main_metric"], mean=mean, std=std, ci_low=interval.low, ci_high=interval.high,
               ci_kind=interval.kind)
    for column in SPREAD_COLUMNS:
        row[column], row[f"{column}_std"] = _mean_std(runs[column])
    for column in MEAN_COLUMNS:
        row[column] = _mean_std(runs[column])[0]
    row.update(hardware=_joined(", ".join(runs["hardware"]).split(", ")),
               latency_hw=Counter(runs["latency_hw"]).most_common(1)[0][0],
               commits=dict(sorted(Counter(c for c in runs["commit"] if c).items())),
               teacher_ids=tuple(sorted({t for ids in runs["teacher_ids"] for t in ids})),
               teacher_members=max((len(ids) for ids in runs["teacher_ids"]), default=0), classes=first["classes"],
               n_failed=n_failed, reported=final_rows.mean_reported(runs["reported"]), **_influence(runs),
               **_external(runs))
    for column in [c for c in runs.columns if c.split(":")[0] in ("f1", "se", "ppv")]:
        row[column], row[f"{column}_std"] = _mean_std(runs[column])
    return row


def _with_comparisons(rows: list[dict[str, Any]], runs_of: Mapping[tuple[Any, ...], pd.DataFrame]) -> None:
    """Add ``vs_<baseline>_{diff,low,high,p,test,n}`` to each row (NaN / "none" where the baseline is absent), and
    ``vs_<baseline>_{diff,low,high,p}_wo``: the same without the row's most influential patient."""
    for row in rows:
        key = tuple(row[c] for c in GROUP_COLUMNS)
        for baseline in BASELINES:
            base_key = (*key[:-1], baseline)
            result = without = stats.Comparison()
            if base_key in runs_of and base_key != key:
                result = _compare(runs_of[key], runs_of[base_key])
                if row["influence_patient"] is not None:
                    without = _compare(runs_of[key], runs_of[base_key], without=row["influence_patient"])
            row.update({f"vs_{baseline}_diff": result.diff, f"vs_{baseline}_low": result.low,
                        f"vs_{baseline}_high": result.high, f"vs_{baseline}_p": result.p,
                        f"vs_{baseline}_test": result.test, f"vs_{baseline}_n": result.n_pairs,
                        f"vs_{baseline}_diff_wo": without.diff, f"vs_{baseline}_low_wo": without.low,
                        f"vs_{baseline}_high_wo": without.high, f"vs_{baseline}_p_wo": without.p})


def _with_adjusted_p(frame: pd.DataFrame) -> pd.DataFrame:
    """``vs_<baseline>_p_holm``: each comparison's p-value Holm-adjusted within its family, i.e. the rows of one
    sub-table (ranked methods, references, few-seed rows or ablations of one table) against the same baseline."""
    for baseline in BASELINES:
        column = f"vs_{baseline}_p"
        frame[f"{column}_holm"] = math.nan
        for _, rows in frame.groupby([*TABLE_COLUMNS, "table"], sort=False, dropna=False):
            frame.loc[rows.index, f"{column}_holm"] = stats.holm([float_or_nan(p) for p in rows[column]])
    return frame


def _with_ranks(frame: pd.DataFrame) -> pd.DataFrame:
    """A ``rank`` column: tied competition ranks within each table's ranked rows, "" for the others."""
    frame["rank"] = ""
    ranked = frame[frame["table"] == RANKED]
    for _, rows in ranked.groupby(list(TABLE_COLUMNS), sort=False, dropna=False):
        ranks = stats.tied_ranks(list(rows["mean"]), list(rows["ci_low"]), list(rows["ci_high"]))
        frame.loc[rows.index, "rank"] = ranks
    return frame


def aggregate(results: Iterable[RunResult], external: Sequence[ExternalScore] = ()) -> pd.DataFrame:
    """The leaderboard as a frame: one row per (dataset, split, fold set, budget, profile, protocol version, method
    label), sorted by table, then mean of the dataset's ``main_metric`` (best first), then label.

    Columns: ``GROUP_COLUMNS``, method, variant, reference, ablation (a non-default variant), table (``ranked`` |
    ``reference`` | ``few_seeds`` (< ``MIN_SEEDS`` seeds) | ``ablation``), rank (ranked rows only: ``1``, ``=1``
    for rows whose CI overlaps, see ``stats.tied_ranks``), n_seeds, seeds, main_metric, mean, std (over seeds),
    ci_low, ci_high, ci_kind (``patients``: patient bootstrap; ``seeds``: t-interval; ``none``), macro_f1/accuracy/
    kappa/params/macs with ``_std``, param_budget, latency_ms, latency_iqr_ms, costs, hardware, latency_hw, commits
    ({git hash: runs}: the code versions of the row's runs), teacher_ids, teacher_members (teachers one
    record distilled from: M for the ensemble teacher, 1 for the shared teacher, 0 without one), n_failed,
    per-class ``f1:``/``se:``/``ppv:`` means with ``_std``, and ``vs_vanilla_kd_*`` / ``vs_student_*`` paired
    comparisons (``stats.compare_patients`` / ``compare_seeds``; ``_p_holm``: the p-value Holm-adjusted over the
    row's sub-table, see ``_with_adjusted_p``).
    ``ext:<name>:{mean,std,low,high,n}`` (``external_columns``): the pooled macro-F1 of the row's saved students on
    external test set ``<name>`` (``external``: the sidecars ``benchmark.external`` wrote), where any was scored.
    ``frame.attrs["notes"]``: records left out as other data/protocol versions.
    """
    records = final_rows.expand(results)  # a searching run's protocol retraining becomes a row of its own
    runs = runs_frame(records, external)
    failed = failures_frame(records)
    runs_of = {key: group for key, group in runs.groupby(list(GROUP_COLUMNS), sort=True, dropna=False)}
    n_failed = Counter(tuple(r) for r in failed[list(GROUP_COLUMNS)].itertuples(index=False))
    rows = [_row(key, group, n_failed.get(key, 0)) for key, group in runs_of.items()]
    _with_comparisons(rows, runs_of)
    frame = pd.DataFrame(rows)
    if frame.empty:
        frame = pd.DataFrame(columns=list(AGGREGATE_COLUMNS))
    else:
        frame = _with_adjusted_p(_with_ranks(frame))
        order = {RANKED: 0, REFERENCE: 1, FEW_SEEDS: 2, ABLATION: 3}
        frame["_order"] = frame["table"].map(order)
        frame["_neg"] = -frame["mean"].fillna(-math.inf)
        frame = frame.sort_values([*TABLE_COLUMNS, "_order", "_neg", "method_label"], kind="stable")
        frame = frame.drop(columns=["_order", "_neg"]).reset_index(drop=True)
        per_class = [c for c in frame.columns if c not in AGGREGATE_COLUMNS]
        frame = frame[[*AGGREGATE_COLUMNS, *per_class]]
    frame.attrs["notes"] = runs.attrs["notes"]
    return frame
