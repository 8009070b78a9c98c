"""Sleep-EDF preprocessing speed on a full-length generated night (the real signals are not available here).

A sleep-cassette PSG holds ~20-22 h; this one holds 22 h (EEG Fpz-Cz and Pz-Oz at 100 Hz, respiration at 1 Hz,
~32 MB) with a hypnogram of 4 h of evening wake, 7.5 h of sleep cycles and 3 h of morning wake. Run with::

    python -m pytest -m benchmark tests/benchmarks/test_sleepedf_speed.py -p no:cacheprovider
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
from pytest_benchmark.fixture import BenchmarkFixture
from sleepedf_fakes import write_night

from datasets.cache import read_npz, save_npz
from datasets.sleepedf import Night, preprocess_night

pytestmark = pytest.mark.benchmark

NIGHT = Night(0, 1, "sleep-cassette/SC4001E0-PSG.edf", "sleep-cassette/SC4001EC-Hypnogram.edf")
CYCLE = [("Sleep stage 1", 10), ("Sleep stage 2", 60), ("Sleep stage 3", 15), ("Sleep stage 4", 25),
         ("Sleep stage 2", 40), ("Sleep stage R", 30)]  # 180 epochs = 90 min
RUNS = [("Sleep stage W", 480), *CYCLE * 5, ("Sleep stage W", 360), ("Sleep stage ?", 600)]
PSG_EPOCHS = 22 * 120


@pytest.fixture(scope="module")
def full_night(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("sleepedf-night")
    write_night(folder, NIGHT, RUNS, PSG_EPOCHS)
    return folder


def test_sleepedf_night_cold_preprocessing(benchmark: BenchmarkFixture, report: Callable[..., None],
                                           full_night: Path, tmp_path: Path) -> None:
    """mne read of one channel + hypnogram, epoching, in-bed crop and scaling of a 22-h night; then its cache."""
    psg, hyp = full_night / NIGHT.psg, full_night / NIGHT.hypnogram
    arrays = benchmark.pedantic(preprocess_night, args=(psg, hyp), rounds=3, iterations=1, warmup_rounds=1)
    assert len(arrays["y"]) == 60 + 5 * 180 + 60  # 30 min of wake either side of the sleep period
    cache = tmp_path / "night.npz"
    save_npz(cache, arrays)
    t0 = time.perf_counter()
    for _ in range(5):
        assert read_npz(cache) is not None
    cached_s = (time.perf_counter() - t0) / 5
    cold_s = benchmark.stats.stats.median
    report(cold_s_per_night=cold_s, cached_read_s_per_night=cached_s, cold_min_edf78=153 * cold_s / 60,
           psg_mb=psg.stat().st_size / 1e6)
    assert cold_s < 10.0  # a sleep-cassette night must preprocess in seconds, not minutes
