"""PhysioNet download: served by a local HTTP server in PhysioNet's layout (<root>/<db>/<version>/<file>)."""

from __future__ import annotations

import hashlib
import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from benchmark.cli import main
from datasets import download, mitbih
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
    return not any(folder.rglob("*.part"))


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


# Concurrent downloads: a server that holds each file request for a while and records what it saw


class Recorder:
    """What a ``SlowHandler`` saw: files requested, most requests in flight at once; per-file delays (s)."""

    def __init__(self, delay: float, delays: dict[str, float] | None = None) -> None:
        self.delay, self.delays = delay, delays or {}
        self.lock = threading.Lock()
        self.active = self.peak = 0
        self.requested: list[str] = []


class SlowHandler(SimpleHTTPRequestHandler):
    """Serves files, sleeping before each data file (not SHA256SUMS.txt) and counting requests in flight.

    A request counts as in flight during its delay only: it leaves the count before its response is sent, so a client
    that asks for the next file once the previous one has arrived is never seen twice at once (leaving after the send
    raced that client's next request: peak 2 for one job, seen once in CI)."""

    recorder: Recorder

    def do_GET(self) -> None:
        name = self.path.rsplit("/", 1)[-1]
        if name == "SHA256SUMS.txt":
            super().do_GET()
            return
        rec = self.recorder
        with rec.lock:
            rec.active += 1
            rec.peak = max(rec.peak, rec.active)
            rec.requested.append(name)
        try:
            time.sleep(rec.delays.get(name, rec.delay))
        finally:
            with rec.lock:
                rec.active -= 1
        super().do_GET()

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def slow_server(served: Path, recorder: Recorder) -> Iterator[str]:
    """Base URL of a local server for ``served`` that answers through a ``SlowHandler`` reporting to ``recorder``."""
    handler = type("Handler", (SlowHandler,), {"recorder": recorder})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(handler, directory=str(served)))
    thread = threading.Thread(target=partial(httpd.serve_forever, poll_interval=0.05), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


@pytest.fixture
def many_files(tmp_path: Path) -> tuple[Path, list[str], dict[str, str]]:
    """(served root, file names, sums) of a fake 'fakedb' 1.0.0 with RECORDS and 8 records."""
    served = tmp_path / "served"
    folder = served / "fakedb" / "1.0.0"
    folder.mkdir(parents=True)
    for i in range(8):
        (folder / f"rec{i}.dat").write_bytes(bytes([i]) * 5000 + bytes(range(256)) * (100 + i))
    (folder / "RECORDS").write_text("".join(f"rec{i}\n" for i in range(8)))
    return served, ["RECORDS", *(f"rec{i}.dat" for i in range(8))], write_sums(folder)


def verified_files(dest: Path, sums: dict[str, str]) -> set[str]:
    """Names of the data files in ``dest``, after checking each one matches ``sums``."""
    names = {p.name for p in dest.iterdir() if p.name != "SHA256SUMS.txt"}
    assert all(sha256_file(dest / name) == sums[name] for name in names)
    return names


def test_jobs_download_at_once_and_verify(many_files: tuple[Path, list[str], dict[str, str]], tmp_path: Path) -> None:
    served, files, sums = many_files
    recorder = Recorder(delay=0.3)
    with slow_server(served, recorder) as base_url:
        got = fetch_physionet("fakedb", "1.0.0", tmp_path / "dest", files, sums, base_url, progress=True, jobs=4)
    assert got == files  # in the order of files, whatever order they finished in
    assert verified_files(tmp_path / "dest", sums) == set(files) and no_partial_files(tmp_path / "dest")
    assert sorted(recorder.requested) == sorted(files)
    assert recorder.peak >= 2  # the downloads overlapped (at most 4 at once)
    assert recorder.peak <= 4


def test_one_job_downloads_one_file_at_a_time(many_files: tuple[Path, list[str], dict[str, str]],
                                              tmp_path: Path) -> None:
    served, files, sums = many_files
    recorder = Recorder(delay=0.02)
    with slow_server(served, recorder) as base_url:
        got = fetch_physionet("fakedb", "1.0.0", tmp_path, files[:4], sums, base_url, progress=False, jobs=1)
    assert got == files[:4]
    assert recorder.requested == files[:4] and recorder.peak == 1


def test_corrupt_file_among_parallel_downloads(many_files: tuple[Path, list[str], dict[str, str]],
                                               tmp_path: Path) -> None:
    """A bad file in the middle, 3 at a time: it is named and removed; no download starts after it fails, those
    in flight finish and are kept; no temporary file is left; a second run fetches just what is missing."""
    served, files, sums = many_files
    bad = served / "fakedb" / "1.0.0" / "rec3.dat"
    good = bad.read_bytes()
    bad.write_bytes(good[:-1] + bytes([good[-1] ^ 0xFF]))
    dest = tmp_path / "dest"
    # rec3 (5th of 9) starts in the second round and fails at once; every other file takes 0.5 s
    recorder = Recorder(delay=0.5, delays={"rec3.dat": 0.0})
    with slow_server(served, recorder) as base_url, pytest.raises(DataError, match=r"rec3\.dat: checksum mismatch"):
        fetch_physionet("fakedb", "1.0.0", dest, files, sums, base_url, progress=False, jobs=3)
    kept = verified_files(dest, sums)
    assert "rec3.dat" not in kept and no_partial_files(dest)
    assert kept == set(recorder.requested) - {"rec3.dat"}  # whatever had started finished and was kept
    assert {"RECORDS", "rec0.dat", "rec1.dat"} <= kept  # the first round was done before rec3 started
    assert len(recorder.requested) < len(files)  # downloads not yet started were cancelled
    bad.write_bytes(good)  # the server is fixed: the rerun fetches only what is missing, in the order of files
    missing = [name for name in files if name not in kept]
    recorder = Recorder(delay=0.0)
    with slow_server(served, recorder) as base_url:
        assert fetch_physionet("fakedb", "1.0.0", dest, files, sums, base_url, progress=False, jobs=3) == missing
    assert sorted(recorder.requested) == sorted(missing)
    assert verified_files(dest, sums) == set(files) and no_partial_files(dest)


def test_interrupt_abandons_downloads_in_flight(many_files: tuple[Path, list[str], dict[str, str]],
                                                tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C (here: as the first file completes) stops the downloads in flight, leaving no temporary file."""
    served, files, sums = many_files

    def interrupt(self: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(download._Bars, "file_done", interrupt)
    dest = tmp_path / "dest"
    recorder = Recorder(delay=0.3, delays={"RECORDS": 0.0})
    with slow_server(served, recorder) as base_url, pytest.raises(KeyboardInterrupt):
        fetch_physionet("fakedb", "1.0.0", dest, files, sums, base_url, progress=False, jobs=3)
    assert verified_files(dest, sums) == {"RECORDS"} and no_partial_files(dest)
    assert len(recorder.requested) < len(files)


def test_jobs_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="jobs must be at least 1"):
        fetch_physionet("fakedb", "1.0.0", tmp_path, ["a"], {"a": "0" * 64}, "http://127.0.0.1:9/", jobs=0)


def test_cli_fetch_jobs(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    seen: dict[str, object] = {}

    def fake_fetch(self: MITBIH, data_root: Path, base_url: str | None = None, progress: bool = True,
                   records: object = None, *, jobs: int = 4) -> list[str]:
        seen.update(data_root=data_root, jobs=jobs)
        return []

    monkeypatch.setattr(MITBIH, "fetch", fake_fetch)
    assert main(["data", "fetch", "mitbih", "--jobs", "3", "--data-root", str(tmp_path)]) == 0
    assert seen == {"data_root": tmp_path, "jobs": 3}
    assert main(["data", "fetch", "mitbih", "--data-root", str(tmp_path)]) == 0 and seen["jobs"] == 4
    capsys.readouterr()
    assert main(["data", "fetch", "mitbih", "--jobs", "0", "--data-root", str(tmp_path)]) == 2
    captured = capsys.readouterr()
    output = " ".join((captured.out + captured.err).split())
    assert "--jobs: expected a number of parallel downloads >= 1, got 0" in output and "Traceback" not in output
