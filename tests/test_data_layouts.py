"""The README's test command works with any data root: none (a fresh clone), one holding only ``mitdb/`` (what
`data fetch mitbih` makes), or a full one; a real-data test whose files are absent skips with a one-line reason."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
REAL_DATA_TESTS = ["tests/test_sleepedf.py", "tests/test_mitbih.py"]


def pytest_data_tests(data_root: Path | None, *tests: str) -> str:
    """Run the real-data tests of ``tests`` in a child pytest with ``data_root`` as KDNAS_DATA; its output."""
    env = {k: v for k, v in os.environ.items() if k != "KDNAS_DATA"}
    if data_root is not None:
        env["KDNAS_DATA"] = str(data_root)
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-m", "data", "-p", "no:cacheprovider", *tests],
                          cwd=REPO, env=env, capture_output=True, text=True, check=False, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


def test_without_a_data_root_every_real_data_test_skips_saying_why() -> None:
    output = pytest_data_tests(None, *REAL_DATA_TESTS)
    assert "passed" not in output and "failed" not in output
    assert "MIT-BIH: no data root (set KDNAS_DATA=DIR or pass --data-root DIR)" in output
    assert "Sleep-EDF metadata: no data root" in output


def test_a_partial_mitdb_skips_naming_the_first_missing_file(tmp_path: Path) -> None:
    (tmp_path / "mitdb").mkdir()
    (tmp_path / "mitdb" / "RECORDS").write_text("100\n")
    output = pytest_data_tests(tmp_path, *REAL_DATA_TESTS)
    assert "failed" not in output and "error" not in output.lower()
    assert f"MIT-BIH: {tmp_path} has no mitdb/100.hea" in output
    assert f"Sleep-EDF metadata: {tmp_path} has no sleep-edf/SHA256SUMS.txt (and 2 more)" in output


@pytest.mark.data
def test_a_root_holding_only_mitdb_skips_the_sleepedf_metadata_test(data_root: Path, tmp_path: Path) -> None:
    """The layout `data fetch mitbih` makes: the Sleep-EDF metadata test skips instead of failing on SHA256SUMS.txt."""
    (tmp_path / "mitdb").symlink_to(data_root / "mitdb", target_is_directory=True)
    output = pytest_data_tests(tmp_path, "tests/test_sleepedf.py::test_committed_lists_agree_with_physionet_metadata")
    assert "1 skipped" in output and f"{tmp_path} has no sleep-edf/SHA256SUMS.txt" in output


@pytest.mark.data
def test_the_metadata_fixture_checks_the_files_its_test_reads(sleepedf_metadata_root: Path) -> None:
    for name in ("SHA256SUMS.txt", "RECORDS", "RECORDS-v1"):
        assert (sleepedf_metadata_root / "sleep-edf" / name).is_file()


def test_require_data_skips_naming_the_first_missing_file(require_data, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from conftest import require_files

    monkeypatch.setenv("KDNAS_DATA", str(tmp_path))
    (tmp_path / "svdb").mkdir()
    (tmp_path / "svdb" / "800.hea").write_text("")
    config = type("Config", (), {"getoption": staticmethod(lambda name: None)})()
    assert require_files(config, ["svdb/800.hea"], "SVDB") == tmp_path
    with pytest.raises(pytest.skip.Exception, match=r"SVDB: .* has no svdb/800\.dat \(and 1 more\)"):
        require_files(config, ["svdb/800.hea", "svdb/800.dat", "svdb/800.atr"], "SVDB")
    assert callable(require_data)
