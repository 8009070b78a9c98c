"""End to end: `python -m benchmark run --dataset sleepedf20 --profile smoke` on generated EDF files — the reference
rows on all 20 folds (the pooled 20-fold table), every method on two folds (a pooled subset table)."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmark.cli import main
from benchmark.results import load_results
from datasets.sleepedf import SleepEDF20, read_folds
from methods import METHODS

REFERENCES = "teacher,student"


@pytest.mark.slow  # the references on 20 folds, every method on 2: minutes
def test_references_on_all_20_folds_every_method_on_two_then_pooled_leaderboards(
        fake_sleepedf20: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    results, cache, boards = tmp_path / "results", tmp_path / "cache", tmp_path / "boards"
    common = ["--dataset", "sleepedf20", "--profile", "smoke", "--workers", "2", "--data-root", str(fake_sleepedf20),
              "--cache-dir", str(cache), "--results-dir", str(results)]
    assert main(["run", "--methods", REFERENCES, *common]) == 0, capsys.readouterr().out
    every_method = ["run", "--methods", "all", "--folds", "0,1", *common]
    assert main(every_method) == 0, capsys.readouterr().out
    records = load_results(results)
    methods = list(METHODS.select("all"))
    assert len(records) == 20 * 2 + 2 * (len(methods) - 2) and all(r.ok for r in records)

    folds = read_folds(SleepEDF20().folds_file)["folds"]
    for record in records:
        cv = record.config["dataset_card"]["cv"]
        fold = int(record.key.split.removeprefix("fold"))
        assert cv["fold"] == fold and cv["n_folds"] == 20
        assert record.fold == fold and record.cv is not None and record.cv.n_folds == 20
        assert sum(map(len, record.test_confusion_by_group.values())) > 0  # per-subject test confusions
        assert cv["test_subjects"] == folds[fold]["test"] and cv["val_subjects"] == folds[fold]["val"]
        assert record.metrics["n"] == 26 - (13 if fold == 13 else 0)  # 13 kept epochs a night; subject 13: 1 night
    assert len({r.split_hash for r in records}) == 20
    assert len({r.config["dataset_card"]["cv"]["folds_sha256"] for r in records}) == 1

    assert main(["leaderboard", "--results-dir", str(results), "--out", str(boards)]) == 0
    page = (boards / "sleepedf20.md").read_text()
    assert "## 20-fold CV (20 of 20 folds pooled)" in page
    assert "(2 of 20 folds pooled" in page
    for method in methods:
        assert f"| {method} |" in page or f"| *{method}* |" in page

    assert main(every_method) == 0  # resumes: nothing left to do
    captured = capsys.readouterr()
    said = " ".join((captured.out + captured.err).split())
    assert f"nothing to do: all {2 * len(methods)} job(s) already have results" in said
