"""Issue 34, finding 6: the smaller faults (damaged records rerun without losing them or their history, empty paths,
an unverified `data info`, huge seeds, zero latency repeats, a record with status "OK")."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import datasets.mitbih as mitbih
from benchmark.cli import main
from benchmark.results import read_result
from datasets.cache import sha256_file

RUN = ["run", "--dataset", "synthetic", "--profile", "smoke", "--methods", "student", "-q", "--no-latency-step"]


def _run(tmp_path: Path, *extra: str) -> int:
    return main([*RUN, "--results-dir", str(tmp_path / "r"), "--cache-dir", str(tmp_path / "c"), *extra])


def _record(tmp_path: Path) -> Path:
    return tmp_path / "r" / "synthetic" / "fixed" / "small" / "smoke" / "student" / "seed0.json"


@pytest.fixture
def finished(tmp_path: Path) -> Path:
    """One OK record, rerun once with --no-resume, so that it has a history entry."""
    assert _run(tmp_path) == 0 and _run(tmp_path, "--no-resume") == 0
    assert len(read_result(_record(tmp_path)).history) == 1
    return _record(tmp_path)


def test_a_truncated_record_is_set_aside_not_replaced_silently(finished: Path, tmp_path: Path) -> None:
    text = finished.read_text()
    finished.write_text(text[: len(text) // 2])
    assert _run(tmp_path) == 0
    kept = finished.with_name("seed0.json.invalid")
    assert kept.read_text() == text[: len(text) // 2]  # the damaged file is kept, never deleted
    record = read_result(finished)
    assert record.ok and record.history[-1]["status"] == "invalid" and "not valid JSON" in record.history[-1]["error"]


def test_an_unknown_field_record_is_set_aside_and_its_history_kept(finished: Path, tmp_path: Path) -> None:
    raw = json.loads(finished.read_text())
    raw["surprise"] = 1
    finished.write_text(json.dumps(raw))
    assert _run(tmp_path) == 0
    assert json.loads(finished.with_name("seed0.json.invalid").read_text())["surprise"] == 1
    record = read_result(finished)
    assert record.history[:1] == raw["history"]  # the earlier attempts are carried over
    assert "unknown fields surprise" in record.history[-1]["error"]


def test_an_empty_results_dir_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    assert main([*RUN, "--results-dir", "", "--cache-dir", str(tmp_path / "c")]) == 2
    assert "--results-dir: an empty path" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []  # nothing written into the current folder
    assert main(["leaderboard", "--results-dir", ""]) == 2


@pytest.mark.parametrize("seeds", ["99999999999999999999", "0-99999999999999999999", "2147483648"])
def test_a_seed_too_large_is_refused_before_any_run(tmp_path: Path, seeds: str,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(tmp_path, "--seeds", seeds) == 2
    err = capsys.readouterr().err
    assert "--seeds:" in err and "too large (at most 2147483647)" in err
    assert not (tmp_path / "r").exists()


def test_zero_latency_repeats_is_refused_before_training(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*RUN[:-1], "--results-dir", str(tmp_path / "r"), "--cache-dir", str(tmp_path / "c"),
                 "--latency-repeats", "0"]) == 2
    assert "--latency-repeats: expected a number >= 1, got 0" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()
    assert main(["latency", "--repeats", "0", "--results-dir", str(tmp_path / "r")]) == 2


def test_data_info_checks_the_files_as_run_does(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "data" / mitbih.DB
    folder.mkdir(parents=True)
    for name in mitbih.record_files():
        (folder / name).write_bytes(b"some bytes " + name.encode())
    sums = {name: sha256_file(folder / name) for name in mitbih.record_files()}
    monkeypatch.setattr(mitbih, "committed_sums", lambda: sums)
    assert main(["data", "info", "mitbih", "--data-root", str(tmp_path / "data")]) == 0
    (folder / "100.dat").write_bytes(b"some")  # truncated
    assert main(["data", "info", "mitbih", "--data-root", str(tmp_path / "data")]) == 1
    assert "100.dat: checksum mismatch" in capsys.readouterr().err


def test_a_record_with_status_OK_is_refused_by_show(finished: Path, capsys: pytest.CaptureFixture[str]) -> None:
    raw = json.loads(finished.read_text())
    raw["status"] = "OK"
    finished.write_text(json.dumps(raw))
    assert main(["show", str(finished)]) == 2
    assert "status: Input should be 'ok' or 'failed'" in capsys.readouterr().err
