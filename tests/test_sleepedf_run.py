"""End to end: `python -m benchmark run --methods all --dataset sleepedf20 --profile smoke` on generated EDF files."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmark.cli import main
from benchmark.results import load_results
from datasets.sleepedf import SleepEDF20, read_folds
from methods import METHODS


@pytest.mark.slow  # every method on 20 folds: minutes
def test_every_method_on_all_20_folds_then_a_pooled_leaderboard(fake_sleepedf20: Path, tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    results, cache, boards = tmp_path / "results", tmp_path / "cache", tmp_path / "boards"
    argv = ["run", "--methods", "all", "--dataset", "sleepedf20", "--profile", "smoke", "--workers", "2",
            "--data-root", str(fake_sleepedf20), "--cache-dir", str(cache), "--results-dir", str(results)]
    assert main(argv) == 0, capsys.readouterr().out
    records = load_results(results)
    methods = list(METHODS.select("all"))
    assert len(records) == 20 * len(methods) and all(r.ok for r in records)

    folds = read_folds(SleepEDF20().folds_file)["folds"]
    for record in records:
        cv = record.config["dataset_card"]["cv"]
        fold = int(record.key.split.removeprefix("fold"))
        assert cv["fold"] == fold and cv["n_folds"] == 20
        assert cv["test_subjects"] == folds[fold]["test"] and cv["val_subjects"] == folds[fold]["val"]
        assert record.metrics["n"] == 26 - (13 if fold == 13 else 0)  # 13 kept epochs a night; subject 13: 1 night
    assert len({r.split_hash for r in records}) == 20
    assert len({r.config["dataset_card"]["cv"]["folds_sha256"] for r in records}) == 1

    assert main(["leaderboard", "--results-dir", str(results), "--out", str(boards)]) == 0
    page = (boards / "sleepedf20.md").read_text()
    assert "## 20-fold CV (20 of 20 folds pooled)" in page
    for method in methods:
        assert f"| {method} |" in page or f"| *{method}* |" in page

    assert main(argv) == 0  # resumes: nothing left to do
    captured = capsys.readouterr()
    said = " ".join((captured.out + captured.err).split())
    assert f"nothing to do: all {20 * len(methods)} job(s) already have results" in said
