"""Issue 34, finding 4 (and 6's edited meta.json): a teacher id names one set of weights whatever the thread count
that trained it, and the scores a record copies come from the weights, not from an editable meta.json."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import torch

from benchmark.results import JobKey
from benchmark.runner import Job, prepare_teacher
from datasets.cache import sha256_file


def _job(root: Path) -> Job:
    return Job(JobKey("synthetic", "fixed", "small", "smoke", "vanilla_kd", 0), str(root / "data"),
               str(root / "cache"), device="cpu")


def _entry(root: Path) -> Path:
    (folder,) = [p for p in (root / "cache" / "teachers" / "synthetic" / "fixed").iterdir()
                 if p.is_dir() and not p.name.startswith(".")]
    return folder


def test_a_teacher_trained_on_1_or_2_threads_has_the_same_weights(tmp_path: Path) -> None:
    before = torch.get_num_threads()
    shas, ids = [], []
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            info = prepare_teacher(_job(tmp_path / f"t{threads}"))
            assert torch.get_num_threads() == threads  # the caller's thread count is restored
            ids.append(info["id"])
            shas.append(sha256_file(_entry(tmp_path / f"t{threads}") / "model.pt"))
    finally:
        torch.set_num_threads(before)
    assert ids[0] == ids[1] and shas[0] == shas[1]


@pytest.fixture
def stored(tmp_path: Path) -> tuple[Path, float]:
    info = prepare_teacher(_job(tmp_path))
    return _entry(tmp_path), info["val_macro_f1"]


def _edit_meta(folder: Path, drop_checksum: bool) -> None:
    meta = json.loads((folder / "meta.json").read_text())
    meta["val_metrics"]["macro_f1"] = 0.999
    if drop_checksum:  # an entry written before meta.json had a checksum
        meta.pop("meta_sha256")
    (folder / "meta.json").write_text(json.dumps(meta))


def test_an_edited_meta_json_is_caught_by_its_checksum_and_rebuilt(stored: tuple[Path, float], tmp_path: Path,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    folder, score = stored
    _edit_meta(folder, drop_checksum=False)
    with caplog.at_level(logging.WARNING, logger="benchmark.teachers"):
        info = prepare_teacher(_job(tmp_path))
    assert info["val_macro_f1"] == score != 0.999
    assert any("does not match its checksum" in r.getMessage() for r in caplog.records)


def test_a_records_teacher_score_is_recomputed_from_the_weights(stored: tuple[Path, float], tmp_path: Path,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    folder, score = stored
    _edit_meta(folder, drop_checksum=True)
    with caplog.at_level(logging.WARNING, logger="benchmark.teachers"):
        info = prepare_teacher(_job(tmp_path))
    assert info["val_macro_f1"] == score != 0.999
    assert any("its weights score" in r.getMessage() for r in caplog.records)
