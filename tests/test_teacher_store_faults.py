"""Teacher store faults: damaged entries are detected by their checksums and rebuilt, with one warning."""

from __future__ import annotations

import json
import logging
import stat
from pathlib import Path

import pytest
import torch

from benchmark import teachers
from benchmark.results import JobKey
from benchmark.runner import Job, prepare_teacher
from datasets.cache import sha256_file


def _job(tmp_path: Path) -> Job:
    return Job(JobKey("synthetic", "fixed", "small", "smoke", "vanilla_kd", 0), str(tmp_path / "data"),
               str(tmp_path / "cache"), device="cpu")


def _entry(tmp_path: Path) -> Path:
    (folder,) = [p for p in (tmp_path / "cache" / "teachers" / "synthetic" / "fixed").iterdir()
                 if p.is_dir() and not p.name.startswith(".")]
    return folder


@pytest.fixture
def stored(tmp_path: Path) -> tuple[Path, dict[str, torch.Tensor]]:
    """A freshly trained teacher entry and its logits."""
    prepare_teacher(_job(tmp_path))
    folder = _entry(tmp_path)
    return folder, torch.load(folder / "logits.pt", weights_only=True)


def test_meta_holds_each_files_sha256_and_folders_follow_the_umask(
        stored: tuple[Path, dict[str, torch.Tensor]]) -> None:
    folder, _ = stored
    meta = json.loads((folder / "meta.json").read_text())
    assert set(meta["sha256"]) == {"model.pt", "logits.pt"}
    assert meta["sha256"]["logits.pt"] == sha256_file(folder / "logits.pt")
    assert stat.S_IMODE(folder.stat().st_mode) == 0o777 & ~teachers._UMASK


def _overwrite_inside(path: Path) -> None:
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 400] = bytes(400)  # 400 bytes inside the tensor data: still a loadable file
    path.write_bytes(bytes(data))


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


@pytest.mark.parametrize(("name", "damage"), [
    ("logits.pt", _overwrite_inside),
    ("model.pt", _truncate),
    ("meta.json", _truncate),
    ("logits.pt", Path.unlink),
])
def test_a_damaged_entry_is_rebuilt_with_one_warning_naming_its_folder(
        stored: tuple[Path, dict[str, torch.Tensor]], tmp_path: Path, caplog: pytest.LogCaptureFixture,
        name: str, damage: object) -> None:
    folder, logits = stored
    damage(folder / name)  # type: ignore[operator]
    with caplog.at_level(logging.WARNING, logger="benchmark.teachers"):
        info = prepare_teacher(_job(tmp_path))
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and str(folder) in warnings[0] and "rebuilding" in warnings[0], warnings
    assert info["id"] == folder.name
    rebuilt = torch.load(folder / "logits.pt", weights_only=True)
    assert torch.equal(rebuilt["train"], logits["train"]) and torch.equal(rebuilt["val"], logits["val"])
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="benchmark.teachers"):
        prepare_teacher(_job(tmp_path))  # healed: no warning the next time
    assert not caplog.records


def test_load_stored_reads_a_verified_entry_and_names_the_folder_of_a_missing_or_damaged_one(
        tmp_path: Path, stored: tuple[Path, dict[str, torch.Tensor]]) -> None:
    folder, logits = stored
    meta = json.loads((folder / "meta.json").read_text())
    store = teachers.TeacherStore.in_cache(tmp_path / "cache")
    assert store.folder("synthetic", "fixed", folder.name) == folder
    arch = teachers.ArchSpec.from_dict(meta["arch"])
    in_channels = next(iter(torch.load(folder / "model.pt", weights_only=True).values())).shape[1]
    teacher = store.load_stored("synthetic", "fixed", folder.name, arch, meta["seed"], in_channels,
                                logits["train"].shape[1])
    assert teacher.teacher_id == folder.name and torch.equal(teacher.train_logits, logits["train"])
    with pytest.raises(teachers.TeacherCacheError, match=r"teacher cache .*nope: no meta.json"):
        store.load_stored("synthetic", "fixed", "nope", arch, 0, in_channels, logits["train"].shape[1])
    (folder / "logits.pt").write_bytes(b"damaged")
    with pytest.raises(teachers.TeacherCacheError, match=rf"teacher cache {folder}: .*logits.pt"):
        store.load_stored("synthetic", "fixed", folder.name, arch, meta["seed"], in_channels,
                          logits["train"].shape[1])
