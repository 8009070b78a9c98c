"""The one aggregation: tables, ranks with ties, the dataset's main metric, the Python API and the export."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest
from test_leaderboard import _record, synthetic_records

from benchmark import results
from benchmark.aggregate import aggregate
from benchmark.cli import main
from benchmark.export import flatten
from benchmark.results import SCHEMA_VERSION, JobKey, RunResult, load_results, read_result, write_result

REPO = Path(__file__).resolve().parents[1]


def _runs(method: str, f1s: list[float], variant: str = "", main_metric: str = "macro_f1",
          kappas: list[float] | None = None) -> list[RunResult]:
    """Records of ``method`` on seeds 0.. with the given macro-F1 (and kappa) values."""
    out = []
    for seed, f1 in enumerate(f1s):
        kappa = kappas[seed] if kappas else 0.5
        record = _record(method, "small", seed, (f1, 0.9, kappa, 0.5, 0.5), 900)
        out.append(replace(record, key=replace(record.key, variant=variant), main_metric=main_metric))
    return out


def _by_label(board: pd.DataFrame) -> pd.DataFrame:
    return board.set_index("method_label")


def test_rows_whose_seed_intervals_overlap_the_best_share_its_rank() -> None:
    board = _by_label(aggregate([*_runs("alpha", [0.80, 0.81, 0.82]), *_runs("beta", [0.79, 0.80, 0.815]),
                                 *_runs("gamma", [0.60, 0.61, 0.62])]))
    assert board.loc["alpha", "rank"] == "=1" and board.loc["beta", "rank"] == "=1"
    assert board.loc["gamma", "rank"] == "3"
    assert board.loc["alpha", "ci_kind"] == "seeds" and board.loc["alpha", "ci_low"] <= board.loc["beta", "ci_high"]


def test_few_seeds_ablations_and_references_are_never_ranked() -> None:
    records = [*_runs("alpha", [0.70, 0.71, 0.72]), *_runs("beta", [0.99, 0.98]),
               *_runs("alpha", [0.99], variant="aux=false"), *_runs("student", [0.95, 0.96, 0.97])]
    board = _by_label(aggregate(records))
    assert board.loc["alpha", ["table", "rank"]].tolist() == ["ranked", "1"]
    assert board.loc["beta", ["table", "rank"]].tolist() == ["few_seeds", ""]
    assert board.loc["alpha[aux=false]", ["table", "rank", "ablation"]].tolist() == ["ablation", "", True]
    assert board.loc["student", ["table", "rank", "reference"]].tolist() == ["reference", "", True]
    assert board.loc["alpha", "vs_student_diff"] == pytest.approx(-0.25)
    assert board.loc["alpha", "vs_student_test"] == "Wilcoxon over seeds"  # no per-patient confusions
    assert math.isnan(board.loc["student", "vs_student_diff"])


def test_ranks_by_the_datasets_main_metric() -> None:
    records = [*_runs("alpha", [0.9, 0.9, 0.9], main_metric="kappa", kappas=[0.30, 0.31, 0.32]),
               *_runs("beta", [0.5, 0.5, 0.5], main_metric="kappa", kappas=[0.80, 0.81, 0.82])]
    board = _by_label(aggregate(records))
    assert board.loc["beta", "rank"] == "1" and board.loc["alpha", "rank"] == "2"
    assert board.loc["beta", "mean"] == pytest.approx(0.81) and board.loc["beta", "main_metric"] == "kappa"


def test_a_version_1_record_upgrades(tmp_path: Path) -> None:
    """A protocol-v1, schema-1 record (a KD method's, as committed before the release reran it: a fixture) upgrades;
    so does the same record as a reference row."""
    path = REPO / "tests/fixtures/record_v1_mpkd_nas_seed0.json"
    raw = json.loads(path.read_text())
    assert raw["schema_version"] == 1
    kd = read_result(path)
    assert kd.schema_version == SCHEMA_VERSION and not kd.reference and kd.main_metric == "macro_f1"
    assert kd.protocol_final == {}
    assert (kd.fold, kd.cv, kd.test_confusion_by_group) == (None, None, {})
    assert kd.teacher_ids == [kd.teacher["id"]]
    raw["key"]["method"] = "student"
    (tmp_path / "seed0.json").write_text(json.dumps(raw))
    assert read_result(tmp_path / "seed0.json").reference


def test_an_older_fold_record_gets_its_fold_and_fold_set(tmp_path: Path) -> None:
    cv = {"n_folds": 20, "fold": 3, "folds_file": "f.json", "folds_sha256": "ab", "scheme": "subject-wise"}
    raw = json.loads(_record("alpha", "small", 0, (0.5,) * 5).to_json())
    for name in ("fold", "cv", "reference", "main_metric", "teacher_ids", "test_confusion_by_group"):
        raw.pop(name)
    raw.update(schema_version=2, config={"dataset_card": {"cv": cv}}, teacher={"members": [{"id": "t0"}, {"id": "t1"}]})
    raw["key"]["split"] = "fold03"
    (tmp_path / "seed0.json").write_text(json.dumps(raw))
    record = read_result(tmp_path / "seed0.json")
    assert record.fold == 3 and record.cv is not None and (record.cv.n_folds, record.cv.folds_file) == (20, "f.json")
    assert record.teacher_ids == ["t0", "t1"]
    raw.update(config={}, status="failed")  # a fold that failed before its data was loaded: fold from the split
    (tmp_path / "seed0.json").write_text(json.dumps(raw))
    assert (read_result(tmp_path / "seed0.json").fold, read_result(tmp_path / "seed0.json").cv) == (3, None)


def test_python_api_loads_the_aggregate_and_the_runs(tmp_path: Path) -> None:
    for record in synthetic_records():
        write_result(tmp_path, record)
    board = results.load(tmp_path)
    pd.testing.assert_frame_equal(board, aggregate(load_results(tmp_path)))
    runs = results.load_runs(str(tmp_path))
    assert len(runs) == 9 and int(board["n_seeds"].sum()) == 9


def test_export_round_trips_as_csv(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for record in synthetic_records():
        write_result(tmp_path / "r", record)
    out = tmp_path / "board.csv"
    assert main(["export", "--results-dir", str(tmp_path / "r"), "--out", str(out)]) == 0
    back = pd.read_csv(out, dtype=str, keep_default_na=False)
    expected = flatten(results.load(tmp_path / "r"))
    assert list(back.columns) == list(expected.columns) and len(back) == len(expected)
    for column in ("method_label", "table", "rank", "seeds", "ci_kind"):
        assert back[column].tolist() == expected[column].astype(str).tolist(), column
    pd.testing.assert_series_equal(back["mean"].astype(float), expected["mean"].astype(float), check_exact=False)
    assert main(["export", "--results-dir", str(tmp_path / "r"), "--out", str(tmp_path / "runs.csv"), "--runs"]) == 0
    assert len(pd.read_csv(tmp_path / "runs.csv")) == 9


def test_export_parquet(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_result(tmp_path / "r", _record("alpha", "small", 0, (0.5,) * 5, 900))
    out = tmp_path / "board.parquet"
    code = main(["export", "--results-dir", str(tmp_path / "r"), "--out", str(out)])
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        assert code == 2 and "pip install pyarrow" in capsys.readouterr().err and not out.exists()
        return
    assert code == 0
    pd.testing.assert_frame_equal(pd.read_parquet(out), flatten(results.load(tmp_path / "r")))


def test_export_names_a_missing_results_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["export", "--results-dir", str(tmp_path / "none"), "--out", str(tmp_path / "x.csv")]) == 2
    assert "--results-dir" in capsys.readouterr().err


def test_job_key_variant_label() -> None:
    assert JobKey("d", "s", "b", "p", "m", 0, "x=1").method_label == "m[x=1]"


def test_p_values_are_holm_adjusted_within_each_sub_table() -> None:
    student = _runs("student", [0.50, 0.52, 0.51, 0.49, 0.50])
    ranked = [*_runs("alpha", [0.60, 0.63, 0.61, 0.62, 0.64]), *_runs("beta", [0.55, 0.56, 0.54, 0.58, 0.53])]
    ablation = _runs("alpha", [0.61, 0.62, 0.60, 0.63, 0.65], variant="aux=false")
    board = _by_label(aggregate([*student, *ranked, *ablation]))
    # both ranked rows beat the student on all 5 seeds: Wilcoxon p = 0.0625 each; a family of two doubles them
    assert board.loc[["alpha", "beta"], "vs_student_p"].tolist() == pytest.approx([0.0625, 0.0625])
    assert board.loc[["alpha", "beta"], "vs_student_p_holm"].tolist() == pytest.approx([0.125, 0.125])
    # the ablation is a family of its own (one comparison): adjusted = raw
    assert board.loc["alpha[aux=false]", ["vs_student_p", "vs_student_p_holm"]].tolist() == pytest.approx(
        [0.0625, 0.0625])
