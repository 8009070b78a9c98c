"""``run --save-models`` and ``benchmark.models.load_student``: the rebuilt student scores what its record says."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from benchmark.cli import main
from benchmark.context import metrics_from_logits
from benchmark.engine import Engine
from benchmark.models import load_student
from benchmark.results import JobKey, ResultError, atomic_write_text, read_result, results_path
from datasets.base import DATASETS


def rescore(record_path: Path, data: Path, cache: Path) -> float:
    """Test macro-F1 of the student rebuilt from ``record_path`` (the runner's own predict + metrics)."""
    bundle = DATASETS.get("synthetic")().load(data, cache, 0)
    logits = Engine("cpu").predict(load_student(record_path), torch.as_tensor(bundle.test.x))
    return metrics_from_logits(bundle.test.y, logits.numpy(), bundle.classes, bundle.scored_classes)["macro_f1"]


@pytest.mark.parametrize(("methods", "models_dir"), [("student,teacher", None), ("vanilla_kd", "models")])
def test_saved_student_rebuilds_to_the_scored_predictions(tmp_path: Path, methods: str, models_dir: str | None
                                                          ) -> None:
    results, data, cache = tmp_path / "results", tmp_path / "data", tmp_path / "cache"
    argv = ["-q", "run", "--dataset", "synthetic", "--profile", "smoke", "--methods", methods, "--results-dir",
            str(results), "--data-root", str(data), "--cache-dir", str(cache), "--device", "cpu", "--save-models"]
    if models_dir:
        argv += ["--models-dir", str(tmp_path / models_dir)]
    assert main(argv) == 0
    for method in methods.split(","):
        path = results_path(results, JobKey("synthetic", "fixed", "small", "smoke", method, 0))
        record = read_result(path)
        assert record.model["sha256"] and not Path(record.model["path"]).is_absolute()
        model_file = path.parent / record.model["path"]
        assert model_file.is_file() and (tmp_path / models_dir in model_file.resolve().parents if models_dir
                                         else model_file.parent == path.parent)
        assert rescore(path, data, cache) == pytest.approx(record.metrics["macro_f1"], abs=1e-12)


def test_a_changed_model_file_is_refused_naming_it(tmp_path: Path) -> None:
    results = tmp_path / "results"
    assert main(["-q", "run", "--dataset", "synthetic", "--profile", "smoke", "--methods", "student", "--results-dir",
                 str(results), "--data-root", str(tmp_path / "d"), "--cache-dir", str(tmp_path / "c"),
                 "--device", "cpu", "--save-models"]) == 0
    path = results_path(results, JobKey("synthetic", "fixed", "small", "smoke", "student", 0))
    model_file = path.parent / read_result(path).model["path"]
    data = bytearray(model_file.read_bytes())
    data[-1] ^= 0xFF
    model_file.write_bytes(bytes(data))
    with pytest.raises(ResultError, match=f"{model_file}: sha256 does not match"):
        load_student(path)
    record = read_result(path)
    record.model = {}
    atomic_write_text(path, record.to_json())
    with pytest.raises(ResultError, match="no saved model"):
        load_student(path)


def test_models_dir_needs_save_models(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["run", "--dataset", "synthetic", "--models-dir", str(tmp_path), "--dry-run"])
    assert code == 2 and "--models-dir: only with --save-models" in capsys.readouterr().err
