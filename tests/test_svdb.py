"""The external test set svdb (issue 31, part C): the loader on generated WFDB records in svdb's format, the
``evaluate`` command writing per-patient confusions beside a record, the leaderboard's external column, and the real
records (marker ``data``)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from benchmark.aggregate import aggregate
from benchmark.cli import main
from benchmark.external import load_external_scores, sidecar_path
from benchmark.leaderboard import render_dataset
from benchmark.models import ModelSink, save_student
from benchmark.nn.arch import ArchSpec, build_model
from benchmark.results import ResultError, RunResult, read_result, results_path
from datasets.base import EXTERNAL_SETS, DataError
from datasets.mitbih import CLASSES, PREPROCESS, Source, build_arrays
from datasets.svdb import SOURCE

COMMITTED_STUDENT = Path(__file__).parents[1] / "results/mitbih/inter-patient/small/quick/student/seed0.json"
FS = 128


def write_svdb_record(folder: Path, name: str, seed: int, minutes: float = 3.0) -> list[str]:
    """A two-lead 128 Hz format-212 record with beat annotations (N, some S and V) as svdb ships them; returns the
    AAMI class of every annotated beat, in order."""
    import wfdb

    rng = np.random.default_rng(seed)
    n = int(minutes * 60 * FS)
    t = np.arange(n) / FS
    signal = 0.05 * np.sin(2 * np.pi * 0.3 * t)[:, None] + 0.02 * rng.standard_normal((n, 2))
    peaks, symbols, at = [], [], FS
    while at < n - FS:
        symbol = rng.choice(["N", "N", "N", "N", "S", "V"])
        peaks.append(at)
        symbols.append(str(symbol))
        width = 6 if symbol == "V" else 2
        signal[at - width:at + width, 0] += 1.5 if symbol != "V" else -1.0
        at += int(FS * (0.6 if symbol == "S" else 0.85))
    folder.mkdir(parents=True, exist_ok=True)
    wfdb.wrsamp(name, fs=FS, units=["mV", "mV"], sig_name=["ECG1", "ECG2"], p_signal=signal, fmt=["212", "212"],
                write_dir=str(folder))
    wfdb.wrann(name, "atr", np.asarray(peaks), symbol=symbols, write_dir=str(folder))
    return symbols


@pytest.fixture(scope="module")
def svdb_root(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, list[str]]]:
    root = tmp_path_factory.mktemp("data")
    labels = {name: write_svdb_record(root / "svdb", name, seed) for seed, name in enumerate(("800", "801"))}
    return root, labels


def test_the_loader_reads_generated_records_through_mitbihs_pipeline(svdb_root, tmp_path: Path) -> None:
    root, labels = svdb_root
    arrays, checksum = EXTERNAL_SETS.get("svdb")().load(root, tmp_path)
    assert arrays.x.shape[1:] == (4, PREPROCESS["window"])
    assert sorted(np.unique(arrays.groups).tolist()) == [800, 801]
    # every beat but the first and last of a record (no pre / post RR interval) is kept, with its AAMI class
    for record, symbols in labels.items():
        mine = arrays.y[arrays.groups == int(record)]
        assert [CLASSES[i] for i in mine] == symbols[1:-1]
    # the same arrays as MIT-BIH's build_arrays with svdb's source: no copy of the pipeline
    direct = build_arrays(root / "svdb", (800, 801), source=Source(lead="ECG1", fs_in=128))
    np.testing.assert_array_equal(arrays.x[:, 0], direct["wave"])
    assert SOURCE == Source(lead="ECG1", fs_in=128)
    # the window is 1.42 s at 180 Hz: each N or S beat's R peak (a positive spike here) sits at index 128
    centre = PREPROCESS["window"] // 2
    upright = np.isin(arrays.y, [CLASSES.index("N"), CLASSES.index("S")])
    peaks = np.argmax(arrays.x[upright, 0, centre - 20:centre + 20], axis=1) + centre - 20
    assert np.all(np.abs(peaks - centre) <= 2)
    assert EXTERNAL_SETS.get("svdb")().load(root, tmp_path)[1] == checksum  # from the cache, same key


def test_a_corrupt_signal_file_is_named(svdb_root, tmp_path: Path) -> None:
    root, _ = svdb_root
    bad = tmp_path / "bad"
    (bad / "svdb").mkdir(parents=True)
    for ext in ("hea", "dat", "atr"):
        (bad / "svdb" / f"800.{ext}").write_bytes((root / "svdb" / f"800.{ext}").read_bytes())
    data = bytearray((bad / "svdb" / "800.dat").read_bytes())
    data[3000] ^= 0x5A
    (bad / "svdb" / "800.dat").write_bytes(bytes(data))
    with pytest.raises(DataError, match=r"800\.dat: samples do not match the checksums"):
        EXTERNAL_SETS.get("svdb")().load(bad, tmp_path / "cache")
    with pytest.raises(DataError, match="svdb: missing"):
        EXTERNAL_SETS.get("svdb")().load(tmp_path / "nowhere", tmp_path / "cache")


def _record_with_student(results: Path) -> Path:
    """A copy of the committed seed-0 CE student record with a (randomly initialised) saved student of its arch."""
    record = read_result(COMMITTED_STUDENT)
    arch = ArchSpec.from_dict(record.arch)
    torch.manual_seed(0)
    model = build_model(arch, 4, len(CLASSES))
    path = results_path(results, record.key)
    record.model = save_student(model, arch, 4, len(CLASSES), ModelSink(str(results), str(results)), record.key)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(record.to_json(), encoding="utf-8")
    return path


def test_evaluate_writes_per_patient_confusions_and_the_table_shows_them(svdb_root, tmp_path: Path,
                                                                        capsys: pytest.CaptureFixture[str]) -> None:
    root, labels = svdb_root
    results = tmp_path / "results"
    path = _record_with_student(results)
    before = path.read_bytes()
    assert main(["evaluate", str(results), "--external", "svdb", "--data-root", str(root),
                 "--cache-dir", str(tmp_path / "cache")]) == 0
    assert "svdb macro-F1" in capsys.readouterr().out
    assert path.read_bytes() == before  # the record itself is never rewritten
    (score,) = load_external_scores(results)
    assert set(score.confusion_by_group) == {"800", "801"}
    for record, symbols in labels.items():
        matrix = np.asarray(score.confusion_by_group[record])
        assert matrix.sum() == len(symbols) - 2
        assert matrix.sum(axis=1).tolist() == [symbols[1:-1].count(c) for c in CLASSES]
    record = read_result(path)
    board = aggregate([record], [score])
    row = board.iloc[0]
    assert row["ext:svdb:mean"] == pytest.approx(score.metrics["macro_f1"])
    assert row["ext:svdb:n"] == 1
    page = render_dataset([record], "mitbih", board=board)
    assert "external: svdb macro-F1 (%)" in page
    # a student that no longer matches the score is not credited with it
    record.model = {**record.model, "sha256": "0" * 64}
    assert "ext:svdb:mean" not in aggregate([record], [score]).columns


def test_evaluate_skips_records_without_a_student(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    results = tmp_path / "results"
    target = results_path(results, read_result(COMMITTED_STUDENT).key)
    target.parent.mkdir(parents=True)
    target.write_bytes(COMMITTED_STUDENT.read_bytes())
    assert main(["evaluate", str(results), "--external", "svdb", "--data-root", str(tmp_path)]) != 0
    err = capsys.readouterr().err
    assert "no saved student" in err and "no OK mitbih record with a saved student" in err
    assert not sidecar_path(target, "svdb").exists()


def test_a_malformed_sidecar_is_named(tmp_path: Path) -> None:
    bad = tmp_path / "external-svdb-seed0.json"
    bad.write_text(json.dumps({"schema_version": 1, "external": "svdb"}), encoding="utf-8")
    with pytest.raises(ResultError, match=r"external-svdb-seed0\.json: not an external score"):
        load_external_scores(tmp_path)


REAL_RECORDS = (800, 801, 860, 879, 880, 881, 882, 883, 884, 886)  # what the project's data root holds


@pytest.mark.data
def test_the_real_svdb_records(require_data, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    root = require_data([f"svdb/{r}.{ext}" for r in REAL_RECORDS for ext in ("hea", "dat", "atr")], "SVDB")
    arrays, _ = EXTERNAL_SETS.get("svdb")().load(root, tmp_path)
    counts = dict(zip(CLASSES, np.bincount(arrays.y, minlength=len(CLASSES)).tolist(), strict=True))
    # the README's annotation counts (19,912 N, 1,191 S, 2,375 V) less the beats at the records' edges
    assert counts["N"] in range(19_880, 19_913) and counts["S"] in range(1_185, 1_192)
    assert counts["V"] in range(2_365, 2_376)
    assert len(np.unique(arrays.groups)) == 10


def test_record_type_is_unchanged() -> None:
    assert "model" in RunResult.__dataclass_fields__  # the saved student evaluate relies on
