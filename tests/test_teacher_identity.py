"""Issue 34, finding 4 (and 6's edited meta.json): a teacher id names one set of weights whatever the thread count
that trained it, and the scores a record copies come from the weights, not from an editable meta.json."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import torch
from test_teacher_store_faults import _entry, _job

from benchmark.runner import prepare_teacher
from datasets.cache import sha256_file


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


@pytest.mark.parametrize(("drop_checksum", "warning"), [
    (False, "does not match its checksum"),  # an edited meta.json is caught by its checksum and rebuilt
    (True, "its weights score"),  # without a checksum, the record's teacher score is recomputed from the weights
])
def test_an_edited_meta_json_never_reaches_a_record(stored: tuple[Path, float], tmp_path: Path,
                                                    caplog: pytest.LogCaptureFixture, drop_checksum: bool,
                                                    warning: str) -> None:
    folder, score = stored
    _edit_meta(folder, drop_checksum=drop_checksum)
    with caplog.at_level(logging.WARNING, logger="benchmark.teachers"):
        info = prepare_teacher(_job(tmp_path))
    assert info["val_macro_f1"] == score != 0.999
    assert any(warning in r.getMessage() for r in caplog.records)
