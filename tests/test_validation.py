"""Bad input is refused before any compute: one line naming the argument, exit 2, nothing written."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch

from benchmark.cli import main
from benchmark.results import JobKey, RunResult, results_path, write_result
from benchmark.validation import UsageError, parse_index_list


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, " ".join((captured.out + captured.err).split())


@pytest.mark.parametrize(("extra", "message"), [
    (["--workers", "0"], "--workers: expected a number of worker processes >= 1, got 0"),
    (["--workers", "-3"], "--workers: expected a number of worker processes >= 1, got -3"),
    (["--seeds", "0,-1"], "--seeds: expected numbers >= 0"),
    (["--seeds", "-1"], "--seeds: expected numbers >= 0"),
    (["--seeds", "3-1"], "--seeds: the range '3-1' runs backwards; write 1-3"),
    (["--seeds", "1,1"], "--seeds: 1 given twice"),
    (["--methods", "vanilla_kd", "--set", "vanilla_kd.alpah=0.5"],
     "--set vanilla_kd.alpah=0.5: VanillaKDConfig: unknown option(s) alpah; known: alpha, temperature"),
    (["--methods", "vanilla_kd", "--set", "vanilla_kd.alpha=5"],
     "--set vanilla_kd.alpha=5: VanillaKDConfig.alpha must be in [0, 1], got 5"),
    (["--methods", "vanilla_kd", "--set", "vanilla_kd.temperature=0"], "VanillaKDConfig.temperature must be > 0"),
    (["--methods", "vanilla_kd", "--set", "vanilla_kd.alpha=high"], "VanillaKDConfig.alpha must be float, got 'high'"),
    (["--methods", "mpkd_nas", "--set", "mpkd_nas.sampling=often"], "must be one of 'epoch', 'step'"),
    (["--methods", "student", "--set", "vanilla_kd.alpha=0.5"],
     "--set vanilla_kd.alpha=0.5: vanilla_kd is not among the selected methods (student)"),
    (["--device", "tpu"], "--device: expected auto, cpu, cuda or cuda:N, got 'tpu'"),
])
def test_bad_run_arguments_exit_2_before_anything_is_written(
        capsys: pytest.CaptureFixture[str], tmp_path: Path, extra: list[str], message: str) -> None:
    results, cache = tmp_path / "r", tmp_path / "c"
    code, output = run_cli(capsys, "run", "--dataset", "synthetic", "--profile", "smoke", "--results-dir",
                           str(results), "--cache-dir", str(cache), *extra)
    assert code == 2, output
    assert message in output and "Traceback" not in output
    assert not results.exists() and not cache.exists()  # no teacher trained, no junk record folder


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_on_a_cpu_machine_is_refused(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, output = run_cli(capsys, "run", "--dataset", "synthetic", "--device", "cuda", "--results-dir",
                           str(tmp_path / "r"), "--cache-dir", str(tmp_path / "c"))
    assert code == 2 and "--device cuda: no CUDA device is available here" in output
    assert not (tmp_path / "r").exists() and not (tmp_path / "c").exists()


def test_ray_executor_without_ray_is_refused(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "ray" else find_spec(name, *a))
    code, output = run_cli(capsys, "run", "--dataset", "synthetic", "--executor", "ray", "--results-dir",
                           str(tmp_path / "r"), "--cache-dir", str(tmp_path / "c"))
    assert code == 2 and "--executor ray: Ray is not installed" in output
    assert not (tmp_path / "c").exists()


def test_results_dir_under_a_file_is_refused_before_compute(capsys: pytest.CaptureFixture[str],
                                                            tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, output = run_cli(capsys, "run", "--dataset", "synthetic", "--profile", "smoke", "--results-dir",
                           str(blocker / "results"), "--cache-dir", str(tmp_path / "c"))
    assert code == 2 and f"--results-dir {blocker / 'results'}: is under {blocker}, which is not a folder" in output
    assert not (tmp_path / "c").exists()  # no teacher was trained


def test_cache_dir_under_a_file_is_refused_before_compute(capsys: pytest.CaptureFixture[str],
                                                         tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, output = run_cli(capsys, "run", "--dataset", "synthetic", "--profile", "smoke", "--results-dir",
                           str(tmp_path / "r"), "--cache-dir", str(blocker / "cache"))
    assert code == 2 and f"--cache-dir {blocker / 'cache'}: is under {blocker}, which is not a folder" in output
    assert not (tmp_path / "r").exists()


def test_leaderboard_out_under_a_file_is_refused(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    write_result(tmp_path / "r", RunResult(JobKey("synthetic", "fixed", "small", "smoke", "student", 0), "failed"))
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, output = run_cli(capsys, "leaderboard", "--results-dir", str(tmp_path / "r"), "--out", str(blocker))
    assert code == 2 and f"--out {blocker}: is not a folder" in output


def test_show_on_a_record_with_a_non_numeric_metric_is_one_line(capsys: pytest.CaptureFixture[str],
                                                                tmp_path: Path) -> None:
    record = RunResult(JobKey("synthetic", "fixed", "small", "smoke", "student", 0), "ok",
                       metrics={"macro_f1": "high", "accuracy": 0.5, "kappa": 0.1})
    path = write_result(tmp_path, record)
    code, output = run_cli(capsys, "show", str(path))
    # refused on reading (issue 34: records are validated), one line naming the file and the field
    assert code == 2 and f"{path}: an ok record without a numeric metrics.macro_f1" in output
    assert "Traceback" not in output


def test_a_record_of_a_newer_schema_is_refused_not_overwritten(capsys: pytest.CaptureFixture[str],
                                                               tmp_path: Path) -> None:
    key = JobKey("synthetic", "fixed", "small", "smoke", "student", 0)
    path = results_path(tmp_path / "r", key)
    path.parent.mkdir(parents=True)
    text = json.dumps({"schema_version": 99, "key": key.__dict__, "status": "ok", "new_field": 1})
    path.write_text(text)
    code, output = run_cli(capsys, "run", "--dataset", "synthetic", "--profile", "smoke", "--methods", "student",
                           "--results-dir", str(tmp_path / "r"), "--cache-dir", str(tmp_path / "c"))
    assert code == 2 and "schema_version 99 was written by a newer KD-NAS Bench" in output
    assert path.read_text() == text


def test_parse_index_list() -> None:
    assert parse_index_list("0,1,2") == [0, 1, 2] and parse_index_list("2-4") == [2, 3, 4]
    assert parse_index_list("5") == [5] and parse_index_list("3-3") == [3]
    for bad in ("", "a", "1-", "-1-2", "1,,2", "0.5"):
        with pytest.raises(UsageError, match="--seeds"):
            parse_index_list(bad)
