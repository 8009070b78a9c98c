"""PhysioNet download: served by a local HTTP server in PhysioNet's layout (<root>/<db>/<version>/<file>)."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

from datasets import mitbih
from datasets.base import DataError
from datasets.cache import read_sha256sums, sha256_file
from datasets.download import fetch_physionet
from datasets.mitbih import MITBIH


def write_sums(folder: Path) -> dict[str, str]:
    """Write a SHA256SUMS.txt for every file in ``folder``; returns the sums."""
    sums = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}
    (folder / "SHA256SUMS.txt").write_text("".join(f"{h}  {n}\n" for n, h in sums.items()))
    return sums


@pytest.fixture
def fake_db(server: tuple[str, Path]) -> tuple[str, Path, dict[str, str]]:
    """A small fake database 'fakedb' 1.0.0 on the server: (base URL, its folder, expected sums)."""
    base_url, served = server
    folder = served / "fakedb" / "1.0.0"
    folder.mkdir(parents=True)
    for i in range(3):
        (folder / f"rec{i}.dat").write_bytes(bytes(range(256)) * (1000 + i))
    (folder / "RECORDS").write_text("rec0\nrec1\nrec2\n")
    return base_url, folder, write_sums(folder)


def no_partial_files(folder: Path) -> bool:
    return not any(p.name.endswith(".part") for p in folder.iterdir())


FILES = ["RECORDS", "rec0.dat", "rec1.dat", "rec2.dat"]


def test_fetch_and_resume(fake_db: tuple[str, Path, dict[str, str]], tmp_path: Path) -> None:
    base_url, _, sums = fake_db
    dest = tmp_path / "root" / "fakedb"
    assert fetch_physionet("fakedb", "1.0.0", dest, FILES, sums, base_url, progress=True) == FILES
    assert all(sha256_file(dest / name) == sums[name] for name in FILES)
    assert read_sha256sums(dest / "SHA256SUMS.txt") == sums
    assert fetch_physionet("fakedb", "1.0.0", dest, FILES, sums, base_url, progress=False) == []
    (dest / "rec1.dat").write_bytes(b"half a file")  # an interrupted or damaged copy is fetched again
    (dest / "rec2.dat").unlink()
    assert fetch_physionet("fakedb", "1.0.0", dest, FILES, sums, base_url, progress=False) == ["rec1.dat", "rec2.dat"]
    assert sha256_file(dest / "rec1.dat") == sums["rec1.dat"] and no_partial_files(dest)


def test_corrupt_download_leaves_no_file(fake_db: tuple[str, Path, dict[str, str]], tmp_path: Path) -> None:
    base_url, served, sums = fake_db
    dest = tmp_path / "root" / "fakedb"
    dest.mkdir(parents=True)
    (dest / "rec1.dat").write_bytes(b"stale bad copy")
    blob = bytearray((served / "rec1.dat").read_bytes())
    blob[100] ^= 0xFF
    (served / "rec1.dat").write_bytes(bytes(blob))  # the served file no longer matches either list
    with pytest.raises(DataError, match=r"rec1\.dat: checksum mismatch"):
        fetch_physionet("fakedb", "1.0.0", dest, FILES, sums, base_url, progress=False)
    assert not (dest / "rec1.dat").exists() and no_partial_files(dest)
    assert sha256_file(dest / "rec0.dat") == sums["rec0.dat"]  # files before it are kept (resumable)


def test_server_sums_must_match_committed(fake_db: tuple[str, Path, dict[str, str]], tmp_path: Path) -> None:
    base_url, _, sums = fake_db
    wrong = {**sums, "rec2.dat": "0" * 64}
    with pytest.raises(DataError, match=r"rec2\.dat: the server's SHA256SUMS\.txt does not match"):
        fetch_physionet("fakedb", "1.0.0", tmp_path / "dest", FILES, wrong, base_url, progress=False)
    assert not (tmp_path / "dest" / "rec0.dat").exists()


def test_unreachable_server(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="download failed"):
        fetch_physionet("fakedb", "1.0.0", tmp_path, ["a"], {"a": "0" * 64}, "http://127.0.0.1:9/", progress=False)


def test_unknown_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no committed checksum for b"):
        fetch_physionet("fakedb", "1.0.0", tmp_path, ["b"], {"a": "0" * 64}, "http://127.0.0.1:9/", progress=False)


@pytest.mark.data
def test_fetch_mitbih_records(server: tuple[str, Path], data_root: Path, tmp_path: Path) -> None:
    base_url, served = server
    folder = served / "mitdb" / "1.0.0"
    folder.mkdir(parents=True)
    records = (100, 232)
    for name in ["RECORDS", "SHA256SUMS.txt", *mitbih.record_files(records)]:
        shutil.copyfile(data_root / "mitdb" / name, folder / name)
    root = tmp_path / "root"
    got = MITBIH().fetch(root, base_url=base_url, progress=False, records=records)
    assert got == ["mitdb/RECORDS", *(f"mitdb/{n}" for n in mitbih.record_files(records))]
    sums = mitbih.committed_sums()
    assert all(sha256_file(root / rel) == sums[rel.removeprefix("mitdb/")] for rel in got)
    assert MITBIH().fetch(root, base_url=base_url, progress=False, records=records) == []
    assert len(MITBIH().missing_files(root)) == 132 - 6
