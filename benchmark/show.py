"""``python -m benchmark show``: one record in full (scores, confusion matrix, method config), several as a table."""

from __future__ import annotations

import glob
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from rich.console import RenderableType
from rich.syntax import Syntax
from rich.table import Table

from benchmark.results import ResultError, RunResult, read_result

GLOB_CHARS = "*?["


def expand_paths(patterns: Sequence[str]) -> list[Path]:
    """Record files named by files, folders (every ``seed*.json`` below) or globs, in order, without repeats. A path
    that exists is taken as it is, so a variant's folder (``dna[final_kd=true]``) is not read as a glob."""
    found: list[Path] = []
    for pattern in patterns:
        if any(ch in pattern for ch in GLOB_CHARS) and not Path(pattern).exists():
            hits = [Path(p) for p in sorted(glob.glob(pattern, recursive=True))]
            if not hits:
                raise ResultError(f"{pattern}: no file matches")
        else:
            hits = [Path(pattern)]  # a missing file is reported by read_result, naming it
        for hit in hits:
            if hit.is_dir():
                records = sorted(hit.rglob("seed*.json"))
                if not records:
                    raise ResultError(f"{hit}: no result records (seed*.json) in this folder")
                found.extend(records)
            else:
                found.append(hit)
    return list(dict.fromkeys(found))


def show(patterns: Sequence[str], by_patient: str | None = None, influence: bool = False) -> Iterator[RenderableType]:
    """What ``show`` prints for these paths (with ``by_patient``, a class name: the per-patient table of that class;
    with ``influence``: each row's most influential test patients)."""
    paths = expand_paths(patterns)
    results = [(path, read_result(path)) for path in paths]
    if influence:
        from benchmark.per_patient import influence_tables

        yield from influence_tables(results)
    elif by_patient is not None:
        from benchmark.per_patient import by_patient_table

        yield by_patient_table(results, by_patient)
    elif len(results) == 1:
        path, result = results[0]
        yield result_table(result, str(path))
        if result.metrics.get("confusion"):
            yield confusion_table(result)
        if result.history:
            yield history_table(result)
        yield Syntax(json.dumps(result.config.get("method", {}), indent=2, sort_keys=True), "json",
                     background_color="default")
    else:
        yield records_table(results)


def _latency_text(result: RunResult) -> str:
    if result.latency_ms is None:
        return "–"
    lat = result.latency
    if lat.get("q1_ms") is not None:
        return f"{result.latency_ms:.3f} (IQR {lat['q1_ms']:.3f}–{lat['q3_ms']:.3f}, n={lat.get('repeats', '?')})"
    return f"{result.latency_ms:.3f}"


def records_table(results: Sequence[tuple[Path, RunResult]]) -> Table:
    """One row per record: which run, its test score (or error) and its costs."""
    table = Table(title=f"{len(results)} records")
    for col in ("record", "test score", "params", "MACs", "latency ms (IQR)", "wall"):
        table.add_column(col, overflow="fold", justify="left" if col == "record" else "right")
    for _path, r in results:
        main = r.config.get("main_metric", "macro_f1") if r.config else "macro_f1"
        score = f"{r.metrics[main]:.4f}" if r.ok and main in r.metrics else f"failed: {(r.error or '')[:60]}"
        wall = r.provenance.get("wall_s")
        latency = "" if r.latency_ms is None else f"{r.latency_ms:.3f}" + (
            f" ({r.latency['iqr_ms']:.3f})" if "iqr_ms" in r.latency else "")
        table.add_row(r.key.label(), score, f"{r.deployed_params:,}" if r.deployed_params is not None else "",
                      f"{r.macs:,}" if r.macs is not None else "", latency,
                      f"{wall:.0f} s" if isinstance(wall, (int, float)) else "")
    return table


def confusion_table(result: RunResult) -> Table:
    """Test confusion matrix: rows true classes, columns predicted."""
    classes = result.metrics.get("classes") or [str(i) for i in range(len(result.metrics["confusion"]))]
    table = Table(title="test confusion matrix (rows: true class, columns: predicted)")
    table.add_column("true \\ pred", style="bold")
    for name in classes:
        table.add_column(name, justify="right")
    for name, row in zip(classes, result.metrics["confusion"], strict=True):
        table.add_row(name, *(f"{v:,}" for v in row))
    return table


def history_table(result: RunResult) -> Table:
    """Earlier attempts of this job, oldest first (``benchmark.resume``: failed reruns kept beside an OK record,
    superseded records): when, at which commit and protocol, and how each ended."""
    table = Table(title=f"history: {len(result.history)} earlier attempt(s), oldest first")
    for col in ("#", "status", "finished", "commit", "protocol", "data checksum", "outcome"):
        table.add_column(col, overflow="fold")
    for i, entry in enumerate(result.history, 1):
        f1 = entry.get("macro_f1")
        outcome = str(entry.get("error") or "")
        if entry.get("status") == "ok":
            outcome = f"test macro-F1 {f1:.4f}" if isinstance(f1, (int, float)) else ""
        commit = entry.get("git_commit") or "?"
        table.add_row(str(i), str(entry.get("status", "?")), str(entry.get("finished_at") or "?"), str(commit)[:12],
                      f"v{entry['protocol_version']}" if entry.get("protocol_version") is not None else "?",
                      str(entry.get("data_checksum") or "?"), outcome)
    return table


def protocol_rows(result: RunResult) -> list[tuple[str, str]]:
    """The record's place in the protocol: version, role, fold, teacher(s), patients and search trace."""
    role = "reference row (not ranked with methods)" if result.reference else "method"
    rows = [("protocol", f"v{result.protocol_version} · {role} · ranked by {result.main_metric}")]
    if result.fold is not None:
        cv = result.cv
        of = f" of {cv.n_folds} ({cv.scheme or 'cross-validation'}, folds sha256 {cv.folds_sha256[:12]}…)" if cv else ""
        rows.append(("fold", f"{result.fold}{of}"))
    if result.teacher_ids:
        kind = f"ensemble of {len(result.teacher_ids)}" if len(result.teacher_ids) > 1 else "single"
        rows.append(("teacher", f"{kind}: {', '.join(tid[:12] for tid in result.teacher_ids)}"))
    if result.test_confusion_by_group:
        groups = sorted(result.test_confusion_by_group)
        shown = ", ".join(groups[:12]) + (" …" if len(groups) > 12 else "")
        rows.append(("test groups (patients)", f"{len(groups)}: {shown}"))
    if result.search_trace:
        fidelities = sorted({str(e.get("fidelity")) for e in result.search_trace if e.get("fidelity") is not None})
        rows.append(("search trace", f"{len(result.search_trace)} evaluations"
                     + (f" at fidelities {', '.join(fidelities)}" if fidelities else "")))
    return rows


def _score(value: Any, decimals: int = 3) -> str:
    """A score with ``decimals`` digits; "–" for one the record does not hold."""
    return f"{value:.{decimals}f}" if isinstance(value, (int, float)) and not isinstance(value, bool) else "–"


def result_table(result: RunResult, source: str) -> Table:
    table = Table(title=f"{source} — {result.key.label()} [{result.status}]", show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    if not result.ok:
        table.add_row("error", result.error or "")
    m = result.metrics
    if m and result.main_metric in m and result.main_metric != "macro_f1":
        table.add_row(f"test {result.main_metric} (ranked by)", f"{m[result.main_metric]:.4f}")
    if m:
        table.add_row("test macro-F1 / acc / κ", " / ".join(_score(m.get(k), 4) for k in ("macro_f1", "accuracy",
                                                                                          "kappa")))
        per_class = m.get("per_class", {})
        for cls in [c for c in m.get("classes", sorted(per_class)) if c in per_class]:
            pc = per_class[cls]
            table.add_row(f"  {cls}", f"F1 {_score(pc.get('f1'))}  Se {_score(pc.get('sensitivity'))}  "
                                      f"+P {_score(pc.get('ppv'))}  n={pc.get('support', '–')}")
    if result.val_metrics:
        table.add_row("val macro-F1", f"{result.val_metrics['macro_f1']:.4f}")
    if result.deployed_params is not None:
        table.add_row("deployed params / budget", f"{result.deployed_params:,} / {result.param_budget:,}")
    if result.macs is not None:
        table.add_row("MACs", f"{result.macs:,}")
    if result.latency_ms is not None:
        where = result.latency.get("hardware", result.provenance.get("hardware", "?"))
        step = result.latency.get("step", "end of job")
        table.add_row("CPU latency (ms/sample, 1 thread)", f"{_latency_text(result)} · {where} · {step}")
    table.add_row("search cost", f"{result.search_cost:.2f} units, {result.search_wall_s:.1f} s")
    table.add_row("train cost", f"{result.train_cost:.2f} units, {result.train_wall_s:.1f} s")
    table.add_row("arch", json.dumps(result.arch))
    if result.model:
        table.add_row("saved model", f"{result.model.get('path')} (sha256 {str(result.model.get('sha256'))[:12]}…)")
    for name, value in protocol_rows(result):
        table.add_row(name, value)
    table.add_row("split hash / data checksum", f"{result.split_hash} / {result.data_checksum}")
    prov = result.provenance
    table.add_row("provenance", f"{prov.get('git_commit', '?')} · {prov.get('hardware', '?')} · "
                                f"{prov.get('created_at', '?')}")
    return table
