"""Leaderboard rendering on hand-made records: golden markdown, order independence and mean ± std arithmetic.

Rewrite the golden files after an intended change with ``KDNAS_UPDATE_GOLDEN=1 pytest tests/test_leaderboard.py``
and check the diff by eye before committing.
"""

from __future__ import annotations

import difflib
import os
import random
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.metrics import cohen_kappa_score, f1_score, recall_score

from benchmark.aggregate import aggregate, failures_frame, runs_frame
from benchmark.leaderboard import (
    DASH,
    class_columns,
    format_mean_std,
    render_dataset,
    render_index,
    write_leaderboards,
)
from benchmark.metrics import classification_metrics, confusion_by_group
from benchmark.results import CrossValidation, JobKey, RunResult

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
        reference=method in ("teacher", "student"),
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
    assert row[5] == f"{np.mean(kappa):.3f} ± {np.std(kappa, ddof=1):.3f}"
    assert row[8] == f"{np.mean(se_v):.1f} ± {np.std(se_v, ddof=1):.1f}"  # Se V after Se S and +P S
    assert row[10] == f"{950:,} ± {round(np.std([900, 950, 1000], ddof=1)):,}"
    assert row[-2:] == ["3", "0, 1, 2"]


def test_seed_level_interval_when_records_lack_patient_confusions() -> None:
    row = _table_row(render_dataset(synthetic_records(), "toy", HIGHLIGHT), "budget `small`", "alpha")
    f1 = np.array([0.80, 0.82, 0.84]) * 100
    low, high = stats.t.interval(0.95, 2, loc=f1.mean(), scale=np.std(f1, ddof=1) / np.sqrt(3))
    assert row[3] == f"{low:.1f}{DASH}{high:.1f} (seeds)"


def test_ranking_references_and_few_seeds() -> None:
    markdown = render_dataset(synthetic_records(), "toy", HIGHLIGHT)
    assert _table_row(markdown, "budget `small`", "alpha")[0] == "1"
    small = markdown.split("budget `small`", 1)[1].split("\n## ", 1)[0]
    few = small.split("### Fewer than 3 seeds (not ranked)", 1)[1]
    assert _table_row(few, "|", "beta")[0] == DASH  # 2 seeds: its own table, never ranked
    student = _table_row(markdown, "budget `small`", "*student*")
    assert student[0] == "ref" and student[2] == f"70.0 ± {DASH}"
    teacher = _table_row(markdown, "budget `large`", "*teacher*")
    assert teacher[0] == "ref" and teacher[10] == "250,000"
    assert _table_row(markdown, "budget `large`", "alpha")[0] == DASH  # 2 seeds


def test_failed_record_listed_not_averaged() -> None:
    records = synthetic_records()
    board = aggregate(records)
    assert int(board["n_seeds"].sum()) == 9
    assert board[(board["budget"] == "large") & (board["method_label"] == "beta")].empty
    failed = failures_frame(records)
    assert failed[["budget", "method_label", "seed", "fold"]].values.tolist() == [["large", "beta", 0, -1]]
    markdown = render_dataset(records, "toy", HIGHLIGHT)
    large = markdown.split("budget `large`", 1)[1]
    assert "- `beta` seed 0: RuntimeError: out of memory" in large
    with pytest.raises(AssertionError):
        _table_row(markdown, "budget `large`", "beta")
    assert "hardware: cpu: test-cpu x4, gpu: test-gpu" in large


def test_runs_frame_columns() -> None:
    frame = runs_frame(synthetic_records())
    for column in ("dataset", "split", "n_folds", "folds", "budget", "profile", "protocol_version", "method",
                   "variant", "method_label", "reference", "seed", "main", "macro_f1", "params", "macs",
                   "latency_ms", "search_cost", "train_cost", "search_wall_s", "train_wall_s", "hardware",
                   "teacher_ids", "confusion_by_group", "se:V", "ppv:V", "f1:N"):  # fmt: skip
        assert column in frame.columns, column
    assert frame["main"].equals(frame["macro_f1"])
    assert set(frame.loc[frame["reference"], "method"]) == {"student", "teacher"}


def test_format_mean_std_edge_cases() -> None:
    assert format_mean_std(float("nan"), float("nan")) == DASH
    assert format_mean_std(0.5, float("nan"), 100, 1) == f"50.0 ± {DASH}"
    assert format_mean_std(0.5, 0.02, 100, 1) == "50.0 ± 2.0"


def test_write_leaderboards(tmp_path: Path) -> None:
    records = synthetic_records()
    paths = write_leaderboards(records, tmp_path, highlight={"toy": HIGHLIGHT})
    names = [p.name for p in paths]
    assert names[0] == "toy.md" and names[-1] == "README.md"
    page = (tmp_path / "toy.md").read_text(encoding="utf-8")
    assert (tmp_path / "README.md").read_text(encoding="utf-8") == render_index(records)
    images = [n for n in names if n.endswith(".png")]
    assert sorted(images) == sorted(["toy_small_quick_fixed_v1_pareto.png", "toy_small_quick_fixed_v1_classes.png",
                                     "toy_large_quick_fixed_v1_pareto.png", "toy_large_quick_fixed_v1_classes.png"])
    sections = {budget: page[page.index(f"budget `{budget}`"):] for budget in ("small", "large")}
    for budget, section in sections.items():  # each table shows its own pictures, before the next table starts
        section = section.split("\n## ", 1)[0]
        assert "### Plots" in section
        for name in images:
            assert (f"]({name})" in section) == name.startswith(f"toy_{budget}_"), (budget, name)
    for name in images:
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    pictures = re.compile(r"\n\n### Plots(\n\n!\[[^\]]*\]\([^)]*\))+")
    assert pictures.sub("", page) == render_dataset(records, "toy", HIGHLIGHT)  # render_dataset's page + pictures
    without = tmp_path / "no_plots"
    assert [p.name for p in write_leaderboards(records, without, plots=False)] == ["toy.md", "README.md"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary files left behind


def test_empty_results() -> None:
    assert "No results." in render_dataset([], "toy")
    assert "No results." in render_index([])


# ---------------------------------------------------------------------------------------------------------------------
# Cross-validated datasets: folds pooled per run

SLEEP_CLASSES = ("W", "N1", "N2", "N3", "REM")  # not alphabetical: per_class comes back sorted from JSON
FOLDS_SHA = "ab12cd34" + "5" * 56
OTHER_SHA = "ffee0011" + "6" * 56
SKILL = {"alpha": 0.8, "beta": 0.6, "student": 0.5, "vanilla_kd": 0.55}  # new names sort last: streams kept


def _fold_labels(method: str, seed: int, fold: int) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic test labels and predictions of one fold of ``sleep``; a more skilled method errs less."""
    rng = np.random.default_rng([sorted(SKILL).index(method), seed, fold])
    n = 40 + 7 * fold
    true = rng.integers(0, len(SLEEP_CLASSES), size=n)
    pred = np.where(rng.random(n) < SKILL[method], true, rng.integers(0, len(SLEEP_CLASSES), size=n))
    return true, pred


def _fold_subjects(fold: int) -> np.ndarray:
    """The test subject of each epoch of ``fold``: two subjects per fold (2 * fold, 2 * fold + 1), halves."""
    n = 40 + 7 * fold
    return np.where(np.arange(n) < n // 2, 2 * fold, 2 * fold + 1)


def _cv_record(
    method: str,
    seed: int,
    fold: int,
    status: str = "ok",
    n_folds: int = 20,
    sha: str = FOLDS_SHA,
    error: str | None = None,
) -> RunResult:
    """A fold record of dataset ``sleep`` (made by ``_record``), round-tripped through JSON like one read from disk."""
    scores = (0.0, 0.0, 0.0, 0.5, 0.5)  # replaced by metrics from the fold's labels
    base = _record(method, "small", seed, scores, params=900 + 10 * fold, status=status, error=error)
    cv = {"n_folds": n_folds, "fold": fold, "folds_file": "sleep-folds-v1.json", "folds_sha256": sha,
          "scheme": f"subject-wise {n_folds}-fold CV"}  # fmt: skip
    metrics = classification_metrics(*_fold_labels(method, seed, fold), SLEEP_CLASSES) if status == "ok" else {}
    groups = confusion_by_group(*_fold_labels(method, seed, fold), _fold_subjects(fold), len(SLEEP_CLASSES))
    record = replace(
        base,
        key=replace(base.key, dataset="sleep", split=f"fold{fold:02d}"),
        metrics=metrics,
        config={"dataset_card": {"cv": cv}, "main_metric": "macro_f1"},
        fold=fold,
        cv=CrossValidation(n_folds, "sleep-folds-v1.json", sha, f"subject-wise {n_folds}-fold CV"),
        test_confusion_by_group=groups if status == "ok" else {},
    )
    return RunResult.from_json(record.to_json())


def cv_records() -> list[RunResult]:
    """alpha: seeds 0, 1 on folds 0-2 (seed 1's fold 3 failed); student: seed 0 on folds 0-2; beta: folds 0-3."""
    return [
        *(_cv_record("alpha", seed, fold) for seed in (0, 1) for fold in range(3)),
        _cv_record("alpha", 1, 3, status="failed", error="RuntimeError: CUDA out of memory"),
        *(_cv_record("student", 0, fold) for fold in range(3)),
        *(_cv_record("beta", 0, fold) for fold in range(4)),
    ]


def _pooled_by_hand(method: str, seed: int, folds: range) -> tuple[np.ndarray, np.ndarray]:
    """The run's labels and predictions concatenated over ``folds``."""
    pairs = [_fold_labels(method, seed, fold) for fold in folds]
    return np.concatenate([t for t, _ in pairs]), np.concatenate([p for _, p in pairs])


def _pooled(records: list[RunResult], method: str, seed: int) -> dict:
    """The runs-frame row of ``method``'s pooled run of ``seed`` (exactly one)."""
    runs = runs_frame(records)
    (row,) = runs[(runs["method"] == method) & (runs["seed"] == seed)].to_dict("records")
    return row


def ranked_cv_records() -> list[RunResult]:
    """alpha, beta, student and vanilla_kd with 3 seeds each on folds 0-2: a ranked table with patient-level CIs."""
    return [_cv_record(method, seed, fold) for method in ("alpha", "beta", "student", "vanilla_kd")
            for seed in range(3) for fold in range(3)]


def test_cv_dataset_page_matches_golden() -> None:
    per_class_f1 = tuple(f"f1:{c}" for c in SLEEP_CLASSES)  # what the Sleep-EDF datasets show
    _check_golden("leaderboard_cv_synthetic.md", render_dataset(cv_records(), "sleep", per_class_f1))


def test_cv_ranked_page_matches_golden() -> None:
    _check_golden("leaderboard_cv_ranked_synthetic.md", render_dataset(ranked_cv_records(), "sleep", ("N1",)))


def test_cv_index_matches_golden() -> None:
    _check_golden("leaderboard_index_cv_synthetic.md", render_index([*cv_records(), *synthetic_records()]))


def test_cv_ranked_rows_have_patient_intervals_and_paired_tests() -> None:
    board = aggregate(ranked_cv_records())
    assert set(board["ci_kind"]) == {"patients"}
    alpha = board.set_index("method_label").loc["alpha"]
    assert alpha["rank"] == "1" and alpha["ci_low"] < alpha["mean"] < alpha["ci_high"]
    assert alpha["vs_student_test"] == "paired permutation over patients" and alpha["vs_student_p"] < 0.05
    assert alpha["vs_student_low"] > 0  # 0.8 vs 0.5 skill: the difference is real
    assert alpha["vs_student_n"] == 3
    page = render_dataset(ranked_cv_records(), "sleep")
    assert "(patients)" in _table_row(page, "folds pooled", "alpha")[3]
    assert "(perm., Holm " in _table_row(page, "folds pooled", "alpha")[-3]


def test_cv_pooled_metrics_score_the_summed_confusion() -> None:
    pooled = _pooled(cv_records(), "alpha", 0)
    true, pred = _pooled_by_hand("alpha", 0, range(3))
    labels = list(range(len(SLEEP_CLASSES)))
    assert pooled["macro_f1"] == pytest.approx(f1_score(true, pred, labels=labels, average="macro"), abs=1e-12)
    assert pooled["kappa"] == pytest.approx(cohen_kappa_score(true, pred), abs=1e-12)
    assert pooled["accuracy"] == pytest.approx(np.mean(true == pred), abs=1e-12)
    se = recall_score(true, pred, labels=labels, average=None)
    assert pooled["se:N1"] == pytest.approx(se[1], abs=1e-12)
    per_fold_mean = np.mean([_cv_record("alpha", 0, f).metrics["macro_f1"] for f in range(3)])
    assert pooled["macro_f1"] != pytest.approx(per_fold_mean, abs=1e-6)  # pooled, not a mean over folds
    assert pooled["params"] == pytest.approx(910)  # 900, 910, 920: the mean over the pooled folds
    assert pooled["macs"] == pytest.approx(910 * 12)
    assert pooled["folds"] == (0, 1, 2) and pooled["n_folds"] == 20
    groups = pooled["confusion_by_group"]
    assert sorted(groups, key=int) == [str(s) for s in range(6)]  # two subjects a fold, merged over the folds
    assert np.sum([np.asarray(m) for m in groups.values()]) == len(true) == 40 + 47 + 54


def test_cv_table_shows_pooled_mean_over_seeds() -> None:
    markdown = render_dataset(cv_records(), "sleep", ("N1",))
    f1 = [100 * f1_score(*_pooled_by_hand("alpha", seed, range(3)), average="macro") for seed in (0, 1)]
    row = _table_row(markdown, "3 of 20 folds pooled", "alpha")
    assert row[2] == f"{np.mean(f1):.1f} ± {np.std(f1, ddof=1):.1f}"
    assert row[-2:] == ["2", "0, 1"]
    assert row[8] == "910"  # params: mean over folds, equal for both seeds
    assert "metrics pooled over folds: per-fold confusion matrices summed, then scored; ± is over seeds" in markdown


def test_cv_label_names_the_pooled_folds() -> None:
    markdown = render_dataset(cv_records(), "sleep")
    heading = "## 20-fold CV (3 of 20 folds pooled: 0\u20132) · budget `small` (≤ 1,000 params) · profile `quick`"
    assert heading in markdown
    assert "## 20-fold CV (4 of 20 folds pooled: 0\u20133) · budget" in markdown
    assert "subject-wise 20-fold CV, folds file `sleep-folds-v1.json` (sha256 `ab12cd34`)" in markdown
    full = [_cv_record("alpha", 0, fold, n_folds=3) for fold in range(3)]
    assert "## 3-fold CV (3 of 3 folds pooled) · budget" in render_dataset(full, "sleep")
    gaps = [_cv_record("alpha", 0, fold) for fold in (0, 1, 5, 7, 8, 9, 10)]
    assert "## 20-fold CV (7 of 20 folds pooled: 0, 1, 5, 7\u201310) · " in render_dataset(gaps, "sleep")


def test_cv_different_fold_sets_land_in_different_tables() -> None:
    markdown = render_dataset(cv_records(), "sleep")
    assert _table_row(markdown, "4 of 20 folds pooled", "beta")[-2:] == ["1", "0"]
    with pytest.raises(AssertionError):
        _table_row(markdown, "4 of 20 folds pooled", "alpha")
    with pytest.raises(AssertionError):
        _table_row(markdown, "3 of 20 folds pooled", "beta")
    assert _table_row(markdown, "3 of 20 folds pooled", "alpha")[0] == DASH  # 2 seeds: not ranked
    assert markdown.index("4 of 20 folds pooled") < markdown.index("3 of 20 folds pooled")  # more folds first


def test_cv_failed_fold_listed_not_pooled() -> None:
    records = cv_records()
    pooled = _pooled(records, "alpha", 1)
    assert pooled["folds"] == (0, 1, 2)
    failed = failures_frame(records)
    assert failed[["method_label", "seed", "fold"]].values.tolist() == [["alpha", 1, 3]]
    assert failed[["n_folds", "folds"]].values.tolist() == [[20, (0, 1, 2)]]  # placed in its run's table
    markdown = render_dataset(records, "sleep")
    section = markdown.split("3 of 20 folds pooled", 1)[1]
    assert "- `alpha` seed 1, fold 3: RuntimeError: CUDA out of memory" in section
    assert "seeds: 0, 1 · 3 pooled runs, 1 failed fold ·" in section
    board = aggregate(records)
    assert board.set_index("method_label")["n_failed"].to_dict() == {"alpha": 1, "beta": 0, "student": 0}


def test_cv_run_without_ok_folds_gets_its_own_table() -> None:
    lost = _cv_record("beta", 5, 2, status="failed", error="RuntimeError: NaN loss")
    markdown = render_dataset([*cv_records(), lost], "sleep")
    section = markdown.split("## 20-fold CV (0 of 20 folds pooled) · budget", 1)[1]
    assert "No successful runs." in section and "- `beta` seed 5, fold 2: RuntimeError: NaN loss" in section
    assert markdown.index("3 of 20 folds pooled") < markdown.index("0 of 20 folds pooled")


def test_cv_failed_fold_without_fold_set_joins_its_run() -> None:
    early = _record("alpha", "small", 0, status="failed", error="DataError: missing file")  # failed before the data
    early = replace(early, key=replace(early.key, dataset="sleep", split="fold04"), fold=4)
    markdown = render_dataset([*cv_records(), early], "sleep")
    assert "- `alpha` seed 0, fold 4: DataError: missing file" in markdown.split("3 of 20 folds pooled", 1)[1]
    assert "## fold04" not in markdown


def test_cv_folds_files_are_not_pooled_together() -> None:
    mixed = [_cv_record("alpha", 0, 0), _cv_record("alpha", 0, 1), _cv_record("alpha", 0, 2, sha=OTHER_SHA)]
    runs = runs_frame(mixed)
    assert sorted(zip(runs["folds"], runs["folds_sha256"].str[:8], strict=True)) == [
        ((0, 1), "ab12cd34"), ((2,), "ffee0011")]
    other_seed = [_cv_record("alpha", 2, fold, sha=OTHER_SHA) for fold in range(3)]
    markdown = render_dataset([*cv_records(), *other_seed], "sleep")
    heading = "## 20-fold CV (3 of 20 folds pooled: 0\u20132) · budget"
    assert markdown.count(heading) == 2  # same folds, different folds file: two tables, not one
    other = markdown.split("(sha256 `ffee0011`)", 1)[1].split("\n## ", 1)[0]
    assert "seeds: 2 · 1 pooled run ·" in markdown.split("(sha256 `ffee0011`)", 1)[0].rsplit("\n", 1)[-1]
    assert _table_row(other, "|", "alpha")[-2:] == ["1", "2"]


def test_cv_output_independent_of_record_order() -> None:
    records = [*cv_records(), *synthetic_records()]
    shuffled = records[:]
    random.Random(3).shuffle(shuffled)
    assert render_dataset(shuffled, "sleep", ("N1",)) == render_dataset(records, "sleep", ("N1",))
    assert render_dataset(records[::-1], "sleep", ("N1",)) == render_dataset(records, "sleep", ("N1",))
    assert render_index(shuffled) == render_index(records)
    pd.testing.assert_frame_equal(aggregate(shuffled), aggregate(records))


def test_cv_index_names_the_tied_best_methods() -> None:
    index = render_index(ranked_cv_records())
    row = next(line for line in index.splitlines() if line.startswith("| [sleep](sleep.md) | `small`"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    board = aggregate(ranked_cv_records())
    best = board[board["rank"].isin(["1", "=1"])]
    assert cells[3] == "20-fold CV (3 of 20 folds pooled: 0–2)"
    assert cells[4].startswith(", ".join(best["method_label"]))
    alpha = [100 * f1_score(*_pooled_by_hand("alpha", seed, range(3)), average="macro") for seed in range(3)]
    assert cells[6] == f"{np.mean(alpha):.1f} ± {np.std(alpha, ddof=1):.1f}"
    assert "no method with ≥ 3 seeds" in render_index(cv_records())


def test_cv_fold_without_class_order_raises() -> None:
    legacy = _cv_record("alpha", 0, 0)
    legacy.metrics.pop("classes")
    with pytest.raises(ValueError, match="sleep/fold00/small/quick/alpha/seed0: cannot pool"):
        runs_frame([legacy, _cv_record("alpha", 0, 1)])


def test_class_columns_give_se_and_ppv_for_a_class_and_one_score_for_metric_class() -> None:
    assert class_columns(("S", "f1:N1")) == [("se:S", "Se S (%)"), ("ppv:S", "+P S (%)"), ("f1:N1", "F1 N1 (%)")]


def test_index_best_method_ignores_ablation_variants_and_few_seeds() -> None:
    default = [_record("alpha", "small", seed, (0.60 + seed / 100, 0.9, 0.5, 0.5, 0.5)) for seed in (0, 1)]
    variant = replace(_record("alpha", "small", 0, (0.90, 0.9, 0.5, 0.5, 0.5)),
                      key=JobKey("toy", "fixed", "small", "quick", "alpha", 0, "aux=false"))
    index = render_index([*default, variant])
    assert "no method with ≥ 3 seeds" in index  # the one-seed variant never wins
    assert "alpha[aux=false]" in render_dataset([*default, variant], "toy")  # it still has its own row there


def test_latency_spread_shown_and_header_names_the_results_folder() -> None:
    records = [_record("alpha", "small", seed, (0.8, 0.9, 0.7, 0.85, 0.8), 900) for seed in (0, 1)]
    for record, iqr in zip(records, (0.02, 0.04), strict=True):
        record.latency = {"median_ms": record.latency_ms, "iqr_ms": iqr, "repeats": 200, "hardware": "cpu: test-cpu"}
    page = render_dataset(records, "toy", HIGHLIGHT, source="elsewhere/")
    assert "from elsewhere/" in page and "from results/" not in page
    assert f"{records[0].latency_ms:.3f} (IQR 0.030)" in page
    assert "†" not in page


def test_confusion_images_show_the_best_method_teacher_and_student(tmp_path: Path) -> None:
    """With class order recorded, each table gets a confusion PNG: the best ranked method, the teacher and the
    student, each matrix summed over the method's seeds."""
    from benchmark.plots import confusion_labels

    classes = ("N", "S", "V")

    def with_confusion(record: RunResult, scale: int) -> RunResult:
        confusion = (np.eye(3, dtype=int) * 10 + 1) * scale
        return replace(record, metrics={**record.metrics, "classes": list(classes), "confusion": confusion.tolist()})

    records = [with_confusion(r, i + 1) for i, r in enumerate(synthetic_records()) if r.ok and r.key.budget == "small"]
    records += [with_confusion(_record("teacher", "small", 0, (0.9, 0.9, 0.9, 0.9, 0.9), 5000), 1)]
    board = aggregate(records)
    assert confusion_labels(board) == ["alpha", "teacher", "student"]
    runs = runs_frame(records)
    alpha = sum(np.asarray(c) for c in runs.loc[runs["method_label"] == "alpha", "confusion"])
    assert alpha.tolist() == ((np.eye(3, dtype=int) * 10 + 1) * (1 + 2 + 3)).tolist()  # three seeds summed
    names = [p.name for p in write_leaderboards(records, tmp_path)]
    assert "toy_small_quick_fixed_v1_confusion.png" in names
    assert (tmp_path / "toy_small_quick_fixed_v1_confusion.png").read_bytes()[:4] == b"\x89PNG"


def test_rows_distilled_from_the_ensemble_teacher_name_its_size() -> None:
    records = [replace(r, teacher_ids=["t0"]) for r in synthetic_records()]
    assert "Ensemble teacher" not in render_dataset(records, "toy", HIGHLIGHT)
    records += [replace(_record("oracle", "small", seed, (0.75, 0.9, 0.7, 0.8, 0.8), 900),
                        teacher_ids=[f"t{seed}", f"t{seed}a", f"t{seed}b"]) for seed in range(3)]
    small = render_dataset(records, "toy", HIGHLIGHT).split("budget `small`", 1)[1].split("\n## ", 1)[0]
    assert "Ensemble teacher: M = 3 members" in small and "for `oracle`;" in small
    assert aggregate(records).set_index("method_label").loc["oracle", "teacher_members"].max() == 3


def test_an_ensemble_kd_source_is_named_once_for_every_taught_row() -> None:
    """When every row with a teacher used all M members (MIT-BIH's KD source), the note says so instead of listing."""
    records = [replace(r, teacher_ids=[] if r.key.method == "student" else [f"t{r.key.seed}", f"t{r.key.seed}a",
                                                                             f"t{r.key.seed}b"])
               for r in synthetic_records()]  # the CE student uses no teacher
    small = render_dataset(records, "toy", HIGHLIGHT).split("budget `small`", 1)[1].split("\n## ", 1)[0]
    assert "KD source: the ensemble teacher, M = 3 members" in small and "Ensemble teacher:" not in small


def test_label_line_names_the_code_versions_most_runs_first() -> None:
    records = [_record("alpha", "small", seed, (0.8, 0.9, 0.7, 0.8, 0.8), 900) for seed in range(3)]
    records[0].provenance["git_commit"] = "0123456789abcdef"  # one run at another commit, cut to 7 characters
    markdown = render_dataset(records, "toy")
    assert "· 3 ok runs · code: `abc123` (2 runs), `0123456` (1 run)\n" in markdown
    assert aggregate(records)["commits"].tolist() == [{"0123456": 1, "abc123": 2}]
    for record in records:
        record.provenance.pop("git_commit")
    assert "code:" not in render_dataset(records, "toy")  # none recorded: nothing claimed


def test_wall_note_gives_each_rows_time_per_seed_and_the_shared_teachers() -> None:
    records = [_record("alpha", "small", seed, (0.8, 0.9, 0.7, 0.8, 0.8), 900) for seed in range(2)]
    records += [_record("student", "small", 0, (0.7, 0.85, 0.6, 0.7, 0.7), 1000)]
    for record, wall in zip(records, (600.0, 720.0, 90.0), strict=True):
        record.provenance["wall_s"] = wall
    for record in records[:2]:  # alpha distils from a 3-member ensemble trained in 100 + 110 + 120 s
        record.teacher = {"members": [{"train_wall_s": 100.0}, {"train_wall_s": 110.0}, {"train_wall_s": 120.0}]}
    note = [line for line in render_dataset(records, "toy").splitlines() if line.startswith("Wall time per seed")]
    assert note == ["Wall time per seed, one worker of the hardware above (mean over seeds, minutes): alpha 11.0, "
                    "student 1.5; 2 rows in all 12 min; plus the teachers' training, once per seed before the jobs "
                    "and shared by every row with a teacher: 5.5 min."]
    records[2].provenance.pop("wall_s")
    records[0].teacher["members"][0].pop("train_wall_s")  # a member without a time: that seed's teachers unknown
    note = [line for line in render_dataset(records, "toy").splitlines() if line.startswith("Wall time per seed")]
    assert note == ["Wall time per seed, one worker of the hardware above (mean over seeds, minutes): alpha 11.0; "
                    "1 row in all 11 min (1 row without a recorded time left out); plus the teachers' training, "
                    "once per seed before the jobs and shared by every row with a teacher: 5.5 min."]


def test_selection_note_correlates_validation_with_test_over_the_tables_runs() -> None:
    records = [_record("alpha", "small", seed, (0.70 + seed / 100, 0.9, 0.7, 0.8, 0.8), 900) for seed in range(6)]
    for record, val in zip(records, (0.50, 0.52, 0.51, 0.55, 0.53, 0.56), strict=True):
        record.val_metrics = {"macro_f1": val}
    note = [line for line in render_dataset(records, "toy").splitlines() if line.startswith("Selection signal")]
    tau = stats.kendalltau([0.50, 0.52, 0.51, 0.55, 0.53, 0.56], range(6))
    rho = stats.spearmanr([0.50, 0.52, 0.51, 0.55, 0.53, 0.56], range(6))
    assert note == [f"Selection signal: over the table's 6 runs (every row and seed), validation `macro_f1` against "
                    f"test `macro_f1`: Kendall τ-b {tau.statistic:+.2f} (p = {tau.pvalue:.2g}), Spearman ρ "
                    f"{rho.statistic:+.2f}. Every checkpoint, early choice and search score is made on validation; "
                    "a τ near 0 means it barely predicts the test."]
    assert f"{tau.statistic:+.2f}" == "+0.73"
    records[0].val_metrics = {}  # five runs with a validation score are still enough; four are not
    assert "Selection signal: over the table's 5 runs" in render_dataset(records, "toy")
    records[1].val_metrics = {}
    assert "Selection signal" not in render_dataset(records, "toy")


def test_search_note_counts_distinct_candidates_and_evaluations_per_seed() -> None:
    records = [_record("alpha", "small", seed, (0.8, 0.9, 0.7, 0.8, 0.8), 900) for seed in range(2)]
    records.append(_record("beta", "small", 0, (0.7, 0.9, 0.7, 0.8, 0.8), 900))
    records[0].search_trace = [{"candidate": {"w": w}, "score": 0.5, "fidelity": f, "cost": 1.0}
                               for w, f in [(1, "low"), (2, "low"), (1, "high")]]  # candidate 1 scored twice
    records[1].search_trace = [{"candidate": {"w": w}, "score": 0.5, "fidelity": "low", "cost": 1.0} for w in range(6)]
    note = [line for line in render_dataset(records, "toy").splitlines() if line.startswith("Search size")]
    assert len(note) == 1 and note[0].endswith(": alpha 4 / 4.") and "beta" not in note[0]  # (2 + 6) / 2, (3 + 6) / 2
    assert aggregate(records).set_index("method_label").loc["alpha", "search_evaluations"] == 4.5
