"""Leaderboard rendering on hand-made records: golden markdown, order independence and mean ± std arithmetic.

Rewrite the golden files after an intended change with ``KDNAS_UPDATE_GOLDEN=1 pytest tests/test_leaderboard.py``
and check the diff by eye before committing.
"""

from __future__ import annotations

import difflib
import os
import random
from pathlib import Path

import numpy as np
import pytest

from benchmark.leaderboard import (
    DASH,
    format_mean_std,
    render_dataset,
    render_index,
    results_frame,
    write_leaderboards,
)
from benchmark.results import JobKey, RunResult

GOLDEN = Path(__file__).parent / "golden"
HIGHLIGHT = ("S", "V")
BUDGETS = {"small": 1000, "large": 10000}


def _record(
    method: str,
    budget: str,
    seed: int,
    scores: tuple[float, float, float, float, float] = (0.0, 0.0, 0.0, 0.0, 0.0),
    params: int = 0,
    status: str = "ok",
    hardware: str = "cpu: test-cpu x4",
    error: str | None = None,
) -> RunResult:
    """A record of dataset ``toy``; ``scores`` = (macro-F1, accuracy, kappa, Se V, +P V)."""
    macro_f1, accuracy, kappa, se_v, ppv_v = scores
    metrics = {} if status != "ok" else {
        "macro_f1": macro_f1,
        "accuracy": accuracy,
        "kappa": kappa,
        "per_class": {
            "N": {"f1": 0.95, "sensitivity": 0.96, "ppv": 0.94, "support": 80},
            "S": {"f1": 0.5, "sensitivity": 0.4 + seed / 100, "ppv": 0.6, "support": 10},
            "V": {"f1": 2 * se_v * ppv_v / (se_v + ppv_v), "sensitivity": se_v, "ppv": ppv_v, "support": 10},
        },
        "n": 100,
    }  # fmt: skip
    return RunResult(
        key=JobKey("toy", "fixed", budget, "quick", method, seed),
        status=status,
        metrics=metrics,
        deployed_params=params if status == "ok" else None,
        param_budget=BUDGETS[budget],
        macs=params * 12 if status == "ok" else None,
        latency_ms=0.1 + params / 1e5 if status == "ok" else None,
        search_cost=4.0 if method in ("alpha", "beta") else 0.0,
        train_cost=1.0,
        search_wall_s=10.0,
        train_wall_s=5.0,
        provenance={"hardware": hardware, "git_commit": "abc123"},
        error=error,
    )


def synthetic_records() -> list[RunResult]:
    """2 methods + references, 1 to 3 seeds, two budgets, one failed record, two hardware strings."""
    return [
        _record("alpha", "small", 0, (0.80, 0.90, 0.70, 0.85, 0.80), 900),
        _record("alpha", "small", 1, (0.82, 0.91, 0.72, 0.87, 0.82), 950),
        _record("alpha", "small", 2, (0.84, 0.92, 0.74, 0.89, 0.84), 1000),
        _record("beta", "small", 0, (0.78, 0.89, 0.69, 0.80, 0.79), 800),
        _record("beta", "small", 1, (0.76, 0.88, 0.67, 0.78, 0.77), 800),
        _record("student", "small", 0, (0.70, 0.85, 0.60, 0.70, 0.70), 1000),
        _record("alpha", "large", 0, (0.88, 0.94, 0.80, 0.91, 0.90), 9000),
        _record("alpha", "large", 1, (0.90, 0.95, 0.82, 0.93, 0.92), 9000, hardware="gpu: test-gpu"),
        _record("beta", "large", 0, status="failed", error="RuntimeError: out of memory\nTraceback (most recent)"),
        _record("teacher", "large", 0, (0.95, 0.97, 0.90, 0.96, 0.95), 250000),
    ]


def _check_golden(name: str, text: str) -> None:
    """Compare ``text`` with ``tests/golden/<name>``; rewrite it instead when KDNAS_UPDATE_GOLDEN=1."""
    path = GOLDEN / name
    if os.environ.get("KDNAS_UPDATE_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return
    if not path.exists():
        pytest.fail(f"missing golden file {path}; create it with KDNAS_UPDATE_GOLDEN=1")
    expected = path.read_text(encoding="utf-8")
    if text != expected:
        diff = difflib.unified_diff(
            expected.splitlines(keepends=True), text.splitlines(keepends=True), f"golden/{name}", "rendered"
        )
        pytest.fail(
            f"rendered markdown differs from golden/{name} (KDNAS_UPDATE_GOLDEN=1 rewrites it):\n" + "".join(diff)
        )


def _table_row(markdown: str, heading_part: str, method_cell: str) -> list[str]:
    """Cells of the row with method cell ``method_cell`` in the first table after a heading with ``heading_part``."""
    section = markdown.split(heading_part, 1)[1].split("\n## ", 1)[0]
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and len(cells) > 1 and cells[1] == method_cell:
            return cells
    raise AssertionError(f"no row {method_cell!r} under {heading_part!r}")


def test_dataset_page_matches_golden() -> None:
    _check_golden("leaderboard_synthetic.md", render_dataset(synthetic_records(), "toy", HIGHLIGHT))


def test_index_matches_golden() -> None:
    _check_golden("leaderboard_index_synthetic.md", render_index(synthetic_records()))


def test_output_independent_of_record_order() -> None:
    records = synthetic_records()
    shuffled = records[:]
    random.Random(7).shuffle(shuffled)
    assert render_dataset(shuffled, "toy", HIGHLIGHT) == render_dataset(records, "toy", HIGHLIGHT)
    assert render_dataset(records[::-1], "toy", HIGHLIGHT) == render_dataset(records, "toy", HIGHLIGHT)
    assert render_index(shuffled) == render_index(records)


def test_mean_std_match_numpy() -> None:
    markdown = render_dataset(synthetic_records(), "toy", HIGHLIGHT)
    row = _table_row(markdown, "budget `small`", "alpha")
    f1 = np.array([0.80, 0.82, 0.84]) * 100
    se_v = np.array([0.85, 0.87, 0.89]) * 100
    kappa = np.array([0.70, 0.72, 0.74])
    assert row[2] == f"{np.mean(f1):.1f} ± {np.std(f1, ddof=1):.1f}" == "82.0 ± 2.0"
    assert row[4] == f"{np.mean(kappa):.3f} ± {np.std(kappa, ddof=1):.3f}"
    assert row[7] == f"{np.mean(se_v):.1f} ± {np.std(se_v, ddof=1):.1f}"  # Se V after Se S and +P S
    assert row[9] == f"{950:,} ± {round(np.std([900, 950, 1000], ddof=1)):,}"
    assert row[-2:] == ["3", "0, 1, 2"]


def test_ranking_references_and_single_seed() -> None:
    markdown = render_dataset(synthetic_records(), "toy", HIGHLIGHT)
    assert _table_row(markdown, "budget `small`", "alpha")[0] == "1"
    assert _table_row(markdown, "budget `small`", "beta")[0] == "2"
    student = _table_row(markdown, "budget `small`", "*student*")
    assert student[0] == "ref" and student[2] == f"70.0 ± {DASH}"
    teacher = _table_row(markdown, "budget `large`", "*teacher*")
    assert teacher[0] == "ref" and teacher[9] == "250,000"
    assert _table_row(markdown, "budget `large`", "alpha")[0] == "1"  # the reference above it takes no rank


def test_failed_record_listed_not_averaged() -> None:
    records = synthetic_records()
    frame = results_frame(records)
    assert len(frame) == 9
    assert frame[(frame["budget"] == "large") & (frame["method"] == "beta")].empty
    assert frame.attrs["n_failed"] == {"toy/fixed/large/quick/beta": 1}
    markdown = render_dataset(records, "toy", HIGHLIGHT)
    large = markdown.split("budget `large`", 1)[1]
    assert "- `beta` seed 0: RuntimeError: out of memory" in large
    with pytest.raises(AssertionError):
        _table_row(markdown, "budget `large`", "beta")
    assert "hardware: cpu: test-cpu x4, gpu: test-gpu" in large


def test_results_frame_columns() -> None:
    frame = results_frame(synthetic_records())
    for column in ("dataset", "split", "budget", "profile", "method", "seed", "main", "macro_f1", "params", "macs",
                   "latency_ms", "search_cost", "train_cost", "search_wall_s", "train_wall_s", "hardware",
                   "se:V", "ppv:V", "f1:N"):  # fmt: skip
        assert column in frame.columns, column
    assert frame["main"].equals(frame["macro_f1"])


def test_format_mean_std_edge_cases() -> None:
    assert format_mean_std([]) == DASH
    assert format_mean_std([None, float("nan")]) == DASH
    assert format_mean_std([0.5], 100, 1) == f"50.0 ± {DASH}"


def test_write_leaderboards(tmp_path: Path) -> None:
    records = synthetic_records()
    paths = write_leaderboards(records, tmp_path, highlight={"toy": HIGHLIGHT})
    names = [p.name for p in paths]
    assert names[0] == "toy.md" and names[-1] == "README.md"
    assert (tmp_path / "toy.md").read_text(encoding="utf-8") == render_dataset(records, "toy", HIGHLIGHT)
    assert (tmp_path / "README.md").read_text(encoding="utf-8") == render_index(records)
    if "toy_pareto.png" in names:  # only when matplotlib imports
        assert (tmp_path / "toy_pareto.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary files left behind


def test_empty_results() -> None:
    assert "No results." in render_dataset([], "toy")
    assert "No results." in render_index([])
