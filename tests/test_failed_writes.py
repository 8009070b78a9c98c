"""Issue 34, finding 2: one failed record write (a read-only folder, a full disk) fails that job, not the sweep."""

from __future__ import annotations

import errno
import json
import tempfile
from pathlib import Path
from typing import Any

import pytest

import benchmark.resume
from benchmark.cli import main
from benchmark.results import read_result


@pytest.mark.parametrize("error", [PermissionError(errno.EACCES, "Permission denied"),
                                   OSError(errno.ENOSPC, "No space left on device")])
def test_a_failed_write_fails_one_job_and_the_sweep_goes_on(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture[str],
                                                            error: OSError) -> None:
    real_write = benchmark.resume.write_result

    def write(results_dir: Path, result: Any) -> Path:
        if result.key.seed == 1:
            raise error
        return real_write(results_dir, result)

    monkeypatch.setattr(benchmark.resume, "write_result", write)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    results = tmp_path / "r"
    code = main(["run", "--dataset", "synthetic", "--profile", "smoke", "--methods", "student", "--seeds", "0,1,2",
                 "-q", "--results-dir", str(results), "--cache-dir", str(tmp_path / "c")])
    output = capsys.readouterr()
    assert code == 1  # some job failed
    folder = results / "synthetic" / "fixed" / "small" / "smoke" / "student"
    assert read_result(folder / "seed0.json").ok and read_result(folder / "seed2.json").ok  # the others ran
    assert not (folder / "seed1.json").exists()
    saved = tmp_path / "tmp" / "kdnas-unsaved" / "synthetic__fixed__small__smoke__student__seed1.json"
    assert json.loads(saved.read_text())["status"] == "ok"  # the finished result is not lost
    assert "record not written" in output.out + output.err and str(saved) in output.out + output.err
