"""MIT-BIH loader: protocol (classes, inter-patient split), preprocessing, cache and input checks."""

from __future__ import annotations

import os
import re
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from datasets import mitbih
from datasets.base import DataError, DatasetBundle, stable_hash
from datasets.mitbih import MITBIH

# Beat counts per split (N, S, V, F, Q) after dropping edge beats; regression values for mitdb 1.0.0.
EXPECTED_COUNTS = {
    "train": [29365, 597, 2255, 377, 8],
    "val": [16459, 346, 1532, 37, 0],
    "test": [44214, 1836, 3219, 388, 7],
}
SPLIT_HASH = "eddbb3b4beb11e90"  # protocol v2 (eight validation records); v1: 879db1618aa781ed
AAMI_INDEPENDENT = {"N": "NLRej", "S": "AaJS", "V": "VE", "F": "F", "Q": "/fQ"}
PEAK_SYMBOLS = set("NLRBAaJSVrFejnE/fQ?")


@pytest.fixture(scope="module")
def bundle(data_root: Path, session_cache: Path) -> DatasetBundle:
    """One bundle for the module, loaded twice so that it comes from the cache."""
    MITBIH().load(data_root, session_cache)
    return MITBIH().load(data_root, session_cache)


def independent_counts(data_root: Path, record: int) -> list[int]:
    """AAMI counts of one record from its .atr, applying the drop rules (edge window, no pre/post RR) by hand."""
    import wfdb

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # wfdb's pandas calls
        ann = wfdb.rdann(str(data_root / "mitdb" / str(record)), "atr")
    peaks = [(s, sym) for s, sym in zip(ann.sample, ann.symbol, strict=True) if sym in PEAK_SYMBOLS]
    counts = dict.fromkeys(AAMI_INDEPENDENT, 0)
    for i, (sample, sym) in enumerate(peaks):
        centre = sample // 2
        if i == 0 or i == len(peaks) - 1 or centre < 128 or centre + 128 > 325000:
            continue
        for cls, symbols in AAMI_INDEPENDENT.items():
            counts[cls] += sym in symbols
    return list(counts.values())


def record_counts(bundle: DatasetBundle, record: int) -> list[int]:
    for split in (bundle.train, bundle.val, bundle.test):
        if record in split.groups:
            return np.bincount(split.y[split.groups == record], minlength=5).tolist()
    raise AssertionError(f"record {record} in no split")


def copy_sources(data_root: Path, dest: Path, copied: str) -> Path:
    """A data root of symlinks to the real files, except ``copied``, which is a writable copy."""
    folder = dest / "mitdb"
    folder.mkdir(parents=True)
    for name in mitbih.record_files():
        target = folder / name
        if name == copied:
            shutil.copyfile(data_root / "mitdb" / name, target)
            os.chmod(target, 0o644)
        else:
            target.symlink_to(data_root / "mitdb" / name)
    return folder / copied


# --- no data needed -------------------------------------------------------------------------------------------------


def test_split_definition() -> None:
    train, val, test = set(mitbih.TRAIN_RECORDS), set(mitbih.VAL_RECORDS), set(mitbih.TEST_RECORDS)
    assert len(train) + len(val) + len(test) == 44
    assert not (train & val or train & test or val & test)
    assert train | val == set(mitbih.DS1) and test == set(mitbih.DS2)
    assert not set(mitbih.PACED) & (train | val | test)
    assert stable_hash(mitbih.split_definition()) == SPLIT_HASH


def test_class_map() -> None:
    assert MITBIH.classes == ("N", "S", "V", "F", "Q")
    assert MITBIH.scored_classes == ("N", "S", "V", "F")
    for cls, symbols in AAMI_INDEPENDENT.items():
        assert all(mitbih.AAMI[s] == cls for s in symbols)
    assert set(mitbih.AAMI) == set("".join(AAMI_INDEPENDENT.values()))
    assert MITBIH().split_name() == "inter-patient"


def test_committed_checksums_cover_needed_files() -> None:
    sums = mitbih.committed_sums()
    assert all(re.fullmatch(r"[0-9a-f]{64}", sums[name]) for name in mitbih.record_files())
    assert "RECORDS" in sums


def test_rr_features() -> None:
    peaks = np.arange(0, 20 * 360, 360)  # 1 s apart
    peaks[10] -= 120  # a premature beat
    rr = mitbih.rr_features(peaks)
    assert np.isnan(rr[0]).all() and np.isnan(rr[-1]).all()
    assert np.allclose(rr[3, :2], 0, atol=0.05)
    assert rr[10, 0] < -0.25 and rr[10, 1] > 0.25
    assert np.nanmax(np.abs(rr)) <= 3


def test_missing_data_root(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="data fetch") as err:
        MITBIH().load(tmp_path / "nowhere", tmp_path / "cache")
    assert str(tmp_path / "nowhere" / "mitdb") in str(err.value)
    assert len(MITBIH().missing_files(tmp_path)) == 132


# --- real data ------------------------------------------------------------------------------------------------------


@pytest.mark.data
def test_shapes_and_dtypes(bundle: DatasetBundle) -> None:
    assert bundle.name == "mitbih" and bundle.split == "inter-patient" and bundle.n_classes == 5
    assert bundle.input_shape == (4, 256)
    for split in (bundle.train, bundle.val, bundle.test):
        assert split.x.dtype == np.float32 and split.y.dtype == np.int64
        assert np.isfinite(split.x).all()
        assert np.ptp(split.x[:, 1:], axis=2).max() == 0  # RR channels are constant
        assert np.abs(split.x[:, 1:]).max() <= 3
    assert abs(float(np.median(bundle.train.x[:, 0]))) < 0.5
    assert bundle.card["fs_hz"] == 180 and bundle.card["window_samples"] == 256


@pytest.mark.data
def test_split_counts(bundle: DatasetBundle) -> None:
    for name, split in (("train", bundle.train), ("val", bundle.val), ("test", bundle.test)):
        assert split.class_counts(5) == EXPECTED_COUNTS[name], name
    assert bundle.card["class_counts"]["val"]["S"] == EXPECTED_COUNTS["val"][1]


@pytest.mark.data
@pytest.mark.parametrize("record", [100, 124, 208, 232])
def test_counts_match_annotations(bundle: DatasetBundle, data_root: Path, record: int) -> None:
    assert record_counts(bundle, record) == independent_counts(data_root, record)


@pytest.mark.data
def test_records_split_by_patient(bundle: DatasetBundle) -> None:
    groups = [set(np.unique(s.groups).tolist()) for s in (bundle.train, bundle.val, bundle.test)]
    assert groups == [set(mitbih.TRAIN_RECORDS), set(mitbih.VAL_RECORDS), set(mitbih.TEST_RECORDS)]
    assert not (groups[0] & groups[1] or groups[0] & groups[2] or groups[1] & groups[2])
    assert not set(mitbih.PACED) & set().union(*groups)


@pytest.mark.data
def test_val_holds_minority_classes(bundle: DatasetBundle) -> None:
    _, s, v, f, _ = bundle.val.class_counts(5)
    assert s > 100 and v > 100 and f > 0
    share = len(bundle.val) / (len(bundle.val) + len(bundle.train))
    assert 0.3 <= share <= 0.4


@pytest.mark.data
def test_hashes(bundle: DatasetBundle, data_root: Path, session_cache: Path) -> None:
    assert bundle.split_hash == SPLIT_HASH
    assert (session_cache / "mitbih" / f"{bundle.data_checksum}.npz").is_file()


@pytest.mark.data
def test_cached_equals_cold(bundle: DatasetBundle, data_root: Path) -> None:
    records = (100, 124, 208)
    cold = mitbih.build_arrays(data_root / "mitdb", records)
    for split in (bundle.train, bundle.val, bundle.test):
        expected = mitbih.split_arrays(cold, tuple(np.unique(split.groups).tolist()))
        mask = np.isin(split.groups, records)
        assert np.array_equal(split.x[mask], expected.x)
        assert np.array_equal(split.y[mask], expected.y)


@pytest.mark.data
@pytest.mark.slow  # preprocesses all 48 records again
def test_corrupt_cache_is_rebuilt(bundle: DatasetBundle, data_root: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    path = cache / "mitbih" / f"{bundle.data_checksum}.npz"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"PK\x03\x04 not a zip")
    again = MITBIH().load(data_root, cache)
    assert np.array_equal(again.val.x, bundle.val.x) and path.stat().st_size > 10**7


@pytest.mark.data
def test_truncated_dat(data_root: Path, tmp_path: Path) -> None:
    path = copy_sources(data_root, tmp_path / "root", "203.dat")
    with open(path, "r+b") as handle:
        handle.truncate(path.stat().st_size // 2)
    with pytest.raises(DataError, match=re.escape(str(path)) + ".*checksum mismatch"):
        MITBIH().load(tmp_path / "root", tmp_path / "cache")
    with pytest.raises(DataError, match=re.escape(str(path.with_suffix(""))) + r"\.dat"):
        mitbih.read_record(path.parent, 203)  # wfdb's own error is wrapped too


@pytest.mark.data
def test_flipped_byte(data_root: Path, tmp_path: Path) -> None:
    path = copy_sources(data_root, tmp_path / "root", "119.atr")
    blob = bytearray(path.read_bytes())
    blob[len(blob) // 2] ^= 0x01
    path.write_bytes(bytes(blob))
    with pytest.raises(DataError, match=re.escape(str(path)) + ".*checksum mismatch"):
        MITBIH().load(tmp_path / "root", tmp_path / "cache")


@pytest.mark.data
def test_missing_file(data_root: Path, tmp_path: Path) -> None:
    path = copy_sources(data_root, tmp_path / "root", "231.hea")
    path.unlink()
    assert MITBIH().missing_files(tmp_path / "root") == ["mitdb/231.hea"]
    with pytest.raises(DataError, match=re.escape(str(path)) + ": missing; run .*data fetch mitbih"):
        MITBIH().load(tmp_path / "root", tmp_path / "cache")


@pytest.mark.data
def test_no_mlii_lead(data_root: Path, tmp_path: Path) -> None:
    for ext in ("dat", "atr"):
        (tmp_path / f"100.{ext}").symlink_to(data_root / "mitdb" / f"100.{ext}")
    header = (data_root / "mitdb" / "100.hea").read_bytes().replace(b"MLII", b"ML2")
    (tmp_path / "100.hea").write_bytes(header)
    with pytest.raises(DataError, match=re.escape(str(tmp_path / "100.hea")) + ".*no 'MLII' lead"):
        mitbih.read_record(tmp_path, 100)


@pytest.mark.data
def test_smoke_profile_runs_every_reference_path_on_a_capped_training_split(data_root: Path,
                                                                            session_cache: Path) -> None:
    """The smoke profile on the real MIT-BIH trains on at most 500 beats per class (teacher included), so it checks
    every code path in minutes; validation and test stay whole."""
    from benchmark.protocol import PROFILES
    from benchmark.results import JobKey
    from benchmark.runner import Job, build_context, load_bundle, run_one

    cap = PROFILES["smoke"].max_train_per_class
    job = Job(JobKey("mitbih", "fixed", "small", "smoke", "vanilla_kd", 0), str(data_root), str(session_cache),
              device="cpu")
    bundle = load_bundle(job)
    ctx = build_context(job, bundle, torch.device("cpu"))
    counts = np.bincount(ctx.data.train.y, minlength=5)
    full = np.bincount(bundle.train.y, minlength=5)
    assert cap is not None and (counts == np.minimum(full, cap)).all()
    assert len(ctx.data.val) == len(bundle.val)
    result = run_one(job)
    assert result.ok, result.error
    assert result.metrics["n"] == len(bundle.test)
    # the ensemble teacher (MIT-BIH's KD source: M = 3 members) trained on the capped split, under its own cache keys
    members = result.teacher["members"]
    assert len(members) == 3 and len({m["id"] for m in members}) == 3 and all(m["id"] for m in members)
