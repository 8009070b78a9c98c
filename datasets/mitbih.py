"""MIT-BIH Arrhythmia Database, AAMI beat classes, de Chazal's inter-patient split (see ``MITBIH``'s card)."""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from datasets.base import DataError, Dataset, DatasetBundle, SplitArrays, register_dataset, stable_hash
from datasets.cache import Arrays, load_or_build, read_sha256sums, sha256_file

DB, VERSION = "mitdb", "1.0.0"
CHECKSUMS = Path(__file__).parent / "checksums" / f"{DB}-{VERSION}.sha256"

CLASSES = ("N", "S", "V", "F", "Q")
SCORED_CLASSES = ("N", "S", "V", "F")
# AAMI EC57 grouping of the MIT-BIH beat symbols; any other symbol is not a classified beat.
AAMI: dict[str, str] = {
    **dict.fromkeys("NLRej", "N"),
    **dict.fromkeys("AaJS", "S"),
    **dict.fromkeys("VE", "V"),
    "F": "F",
    **dict.fromkeys("/fQ", "Q"),
}
# Every beat annotation symbol (PhysioNet's QRS codes): all of them are R peaks for the RR features.
BEAT_SYMBOLS = frozenset("NLRBAaJSVrFejnE/fQ?")

# de Chazal, O'Dwyer & Reilly (2004), inter-patient split; the paced records 102, 104, 107, 217 are excluded.
DS1 = (101, 106, 108, 109, 112, 114, 115, 116, 118, 119, 122, 124, 201, 203, 205, 207, 208, 209, 215, 220, 223, 230)
DS2 = (100, 103, 105, 111, 113, 117, 121, 123, 200, 202, 210, 212, 213, 214, 219, 221, 222, 228, 231, 232, 233, 234)
PACED = (102, 104, 107, 217)
# Validation records, carved from DS1 by record so no patient is in two splits. AAMI counts of the DS1 records
# (all annotated beats, before the few edge beats are dropped) were computed from the .atr files:
#   DS1 total 51,021 beats: N 45,866, S 944, V 3,788, F 415, Q 8.
#   124: 1,619 (S 31, V 47, F 5)    201: 1,963 (S 128, V 198, F 2)   205: 2,656 (S 3, V 71, F 11)
#   223: 2,605 (S 73, V 473, F 14)  106: 2,027 (V 520)               114: 1,879 (S 12, V 43, F 4)
#   118: 2,278 (S 96, V 16)         215: 3,363 (S 3, V 164, F 1)
# Protocol v2 validates on these eight records (docs/protocol-v2.md): 18,390 beats = 36% of DS1, with 37% of its S,
# 40% of its V and 9% of its F beats. Protocol v1 used the first four only (8,843 beats, 235 S, 789 V): a signal so
# thin that its Spearman correlation with the test score over 25 runs was -0.10. 208 holds 373 of DS1's 415 F beats
# and 209 holds 383 of its S beats: both stay in training, otherwise training would lose most of a minority class.
VAL_RECORDS_V1 = (124, 201, 205, 223)
VAL_RECORDS = (*VAL_RECORDS_V1, 106, 114, 118, 215)
TRAIN_RECORDS = tuple(r for r in DS1 if r not in VAL_RECORDS)
TEST_RECORDS = DS2
RECORDS = tuple(sorted(DS1 + DS2))

PREPROCESS: dict[str, Any] = {
    "version": 1,
    "lead": "MLII",
    "fs_in": 360,
    "fs": 180,
    "bandpass_hz": (0.5, 40.0),
    "butter_order": 3,
    "window": 256,
    "rr_context": 10,
    "rr_clip": 3.0,
    "mad_scale": 1.4826,
    "aami": AAMI,
    "beat_symbols": "".join(sorted(BEAT_SYMBOLS)),
}
ARRAY_KEYS = ("wave", "rr", "label", "record", "sample")


def fetch_hint(data_root: Path) -> str:
    return f"run `python -m benchmark data fetch mitbih --data-root {data_root}`"


@cache
def committed_sums() -> dict[str, str]:
    """PhysioNet's SHA256SUMS.txt for mitdb 1.0.0, as committed in ``datasets/checksums``."""
    return read_sha256sums(CHECKSUMS)


def record_files(records: tuple[int, ...] = RECORDS) -> list[str]:
    """The .hea/.dat/.atr file names of ``records``."""
    return [f"{r}.{ext}" for r in records for ext in ("hea", "dat", "atr")]


def verify_sources(data_root: Path) -> dict[str, str]:
    """Check every needed file exists and matches the committed sha256; returns ``{name: sha256}``."""
    folder = Path(data_root) / DB
    if not folder.is_dir():
        raise DataError(f"{folder}: missing; {fetch_hint(data_root)}")
    sums = committed_sums()
    found: dict[str, str] = {}
    for name in record_files():
        path = folder / name
        if not path.is_file():
            raise DataError(f"{path}: missing; {fetch_hint(data_root)}")
        found[name] = sha256_file(path)
        if found[name] != sums[name]:
            raise DataError(f"{path}: checksum mismatch (corrupt or truncated); {fetch_hint(data_root)}")
    return found


@dataclass(frozen=True)
class Source:
    """Where beats come from: the lead to read and its sampling rate (MIT-BIH: MLII at 360 Hz). Another database read
    through the same pipeline (``datasets.svdb``) names its own; filtering, resampling to ``PREPROCESS["fs"]``,
    normalisation, windows, RR features and AAMI classes stay the protocol's."""

    lead: str = PREPROCESS["lead"]
    fs_in: int = PREPROCESS["fs_in"]


MITDB_SOURCE = Source()


def read_record(folder: Path, record: int, source: Source = MITDB_SOURCE) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The source lead's signal (mV, at ``source.fs_in``), annotation samples and symbols of one record; DataError
    naming a bad file."""
    import wfdb  # imported here: only a cold build needs it

    base = str(folder / str(record))
    try:
        header = wfdb.rdheader(base)
    except Exception as err:  # wfdb raises many types on bad input
        raise DataError(f"{base}.hea: cannot read header ({type(err).__name__}: {err})") from err
    if source.lead not in (header.sig_name or []):
        raise DataError(f"{base}.hea: no {source.lead!r} lead (leads: {', '.join(header.sig_name or [])})")
    if header.fs != source.fs_in:
        raise DataError(f"{base}.hea: sampling rate {header.fs} Hz, expected {source.fs_in}")
    try:
        signal = wfdb.rdrecord(base, channels=[header.sig_name.index(source.lead)]).p_signal[:, 0]
    except Exception as err:
        raise DataError(f"{base}.dat: cannot read signal ({type(err).__name__}: {err})") from err
    if len(signal) != header.sig_len:
        raise DataError(f"{base}.dat: {len(signal)} samples, header says {header.sig_len} (truncated?)")
    try:
        ann = wfdb.rdann(base, "atr")
    except Exception as err:
        raise DataError(f"{base}.atr: cannot read annotations ({type(err).__name__}: {err})") from err
    return signal, np.asarray(ann.sample, dtype=np.int64), np.asarray(ann.symbol)


def filter_resample(signal: np.ndarray, fs_in: int = PREPROCESS["fs_in"]) -> np.ndarray:
    """Zero-phase Butterworth band-pass over the whole record, then ``fs_in`` -> 180 Hz (polyphase)."""
    from scipy import signal as sps

    cfg = PREPROCESS
    sos = sps.butter(cfg["butter_order"], cfg["bandpass_hz"], btype="bandpass", fs=fs_in, output="sos")
    filtered = sps.sosfiltfilt(sos, np.nan_to_num(signal))
    return sps.resample_poly(filtered, cfg["fs"], fs_in)


def robust_standardise(x: np.ndarray) -> np.ndarray:
    """``(x - median) / (1.4826 * MAD)`` over the whole record."""
    median = np.median(x)
    mad = np.median(np.abs(x - median)) * PREPROCESS["mad_scale"]
    return (x - median) / max(float(mad), 1e-6)


def rr_features(peaks: np.ndarray) -> np.ndarray:
    """Per R peak: pre-RR/local - 1, post-RR/local - 1, local/record - 1 (NaN where a pre or post RR is lacking).

    ``local`` is the mean of the ~10 RR intervals around the beat (5 before, 5 after, fewer at the record edges).
    """
    rr = np.diff(peaks).astype(np.float64)
    n, half = len(peaks), PREPROCESS["rr_context"] // 2
    out = np.full((n, 3), np.nan)
    if len(rr) < 2:
        return out
    csum = np.concatenate([[0.0], np.cumsum(rr)])
    beat = np.arange(1, n - 1)  # beats with both a pre (rr[i-1]) and a post (rr[i]) interval
    lo, hi = np.maximum(beat - half, 0), np.minimum(beat + half, len(rr))
    local = (csum[hi] - csum[lo]) / (hi - lo)
    out[beat, 0] = rr[beat - 1] / local - 1
    out[beat, 1] = rr[beat] / local - 1
    out[beat, 2] = local / rr.mean() - 1
    return np.clip(out, -PREPROCESS["rr_clip"], PREPROCESS["rr_clip"])


def record_beats(folder: Path, record: int, source: Source = MITDB_SOURCE) -> Arrays:
    """Windows, RR features and AAMI labels of one record's classified beats."""
    signal, samples, symbols = read_record(folder, record, source)
    x = robust_standardise(filter_resample(signal, source.fs_in))
    is_peak = np.isin(symbols, list(BEAT_SYMBOLS))
    peaks, peak_symbols = samples[is_peak], symbols[is_peak]
    rr = rr_features(peaks)
    half = PREPROCESS["window"] // 2
    centre = peaks * PREPROCESS["fs"] // source.fs_in
    keep = (
        np.isin(peak_symbols, list(AAMI)) & ~np.isnan(rr).any(axis=1) & (centre - half >= 0) & (centre + half <= len(x))
    )
    index = centre[keep, None] + np.arange(-half, half)
    labels = [CLASSES.index(AAMI[s]) for s in peak_symbols[keep]]
    return {
        "wave": x[index].astype(np.float32),
        "rr": rr[keep].astype(np.float32),
        "label": np.asarray(labels, dtype=np.int64),
        "record": np.full(int(keep.sum()), record, dtype=np.int64),
        "sample": peaks[keep].astype(np.int64),
    }


def build_arrays(folder: Path, records: tuple[int, ...] = RECORDS, workers: int = 2,
                 source: Source = MITDB_SOURCE) -> Arrays:
    """Every record's beats, concatenated; two threads (filtering and file reads release the GIL in part).

    Measured on 2 cores: 4.6 s serial, 2.8 s with two threads; processes would not pay for their start-up.
    """
    with warnings.catch_warnings():
        # wfdb 4.3 calls pandas' set_index(inplace=True), which pandas 3 deprecates; not ours to fix.
        warnings.filterwarnings("ignore", message="The inplace keyword", category=DeprecationWarning)
        import scipy.signal  # noqa: F401  imported once here, not raced by the worker threads
        import wfdb  # noqa: F401

        with ThreadPoolExecutor(max_workers=workers) as pool:
            parts = list(pool.map(lambda r: record_beats(folder, r, source), records))
    return {key: np.concatenate([p[key] for p in parts]) for key in ARRAY_KEYS}


def split_arrays(arrays: Arrays, records: tuple[int, ...]) -> SplitArrays:
    """The beats of ``records`` as (N, 4, 256) inputs: channel 0 the ECG window, 1-3 the constant RR features."""
    mask = np.isin(arrays["record"], records)
    wave, rr = arrays["wave"][mask], arrays["rr"][mask]
    x = np.empty((len(wave), 4, wave.shape[1]), dtype=np.float32)
    x[:, 0] = wave
    x[:, 1:] = rr[:, :, None]
    return SplitArrays(x=x, y=arrays["label"][mask], groups=arrays["record"][mask])


def split_definition() -> dict[str, Any]:
    return {"train": TRAIN_RECORDS, "val": VAL_RECORDS, "test": TEST_RECORDS, "classes": CLASSES, "aami": AAMI}


@register_dataset("mitbih")
class MITBIH(Dataset):
    """MIT-BIH Arrhythmia Database (PhysioNet ``mitdb`` 1.0.0), beat classification with AAMI classes.

    Dataset card:

    - Source: 48 half-hour two-lead ambulatory ECG records, 360 Hz; reference beat annotations (``.atr``).
      Read with ``wfdb``; every source file is checked against PhysioNet's sha256 (committed copy in
      ``datasets/checksums/mitdb-1.0.0.sha256``) before use.
    - Lead: MLII (the channel named 'MLII' in the header; it is the second channel in record 114).
    - Filtering: Butterworth band-pass 0.5-40 Hz, order 3, zero-phase (``scipy.signal.sosfiltfilt``) over the
      whole record; then resampled 360 -> 180 Hz (``scipy.signal.resample_poly``).
    - Normalisation: per record, robust: subtract the record's median, divide by 1.4826 * MAD.
    - Input per beat: float32 (4, 256). Channel 0: 256 samples (1.42 s, so neighbouring beats are visible) with
      the annotated R peak at index 128. Channels 1-3 are constant rhythm features: pre-RR / local mean RR - 1,
      post-RR / local mean RR - 1, local mean RR / record mean RR - 1, where the local mean is over the ~10 RR
      intervals around the beat; clipped to [-3, 3]. Every beat symbol counts as an R peak for the RR intervals.
      Beats whose window leaves the record or that lack a pre or post RR (first/last beat) are dropped.
    - Classes (AAMI EC57), in order N, S, V, F, Q: N = N L R e j; S = A a J S; V = V E; F = F; Q = / f Q.
      Other symbols are not classified beats. ``scored_classes`` = N, S, V, F: macro metrics average these four,
      as in de Chazal et al. (2004); with the paced records excluded, Q has only a handful of beats, so it stays a
      class (reported per class) but is not averaged.
    - Splits ("inter-patient", de Chazal et al. 2004): test = DS2 (22 records); train = DS1 (22 records) less the
      validation records 106, 114, 118, 124, 201, 205, 215, 223 (protocol v2: chosen by record, 36% of DS1 beats
      holding 37% of its S and 40% of its V beats; protocol v1 used 124, 201, 205, 223).
      Paced records 102, 104, 107, 217 are excluded. ``groups`` holds the record number.
    - Cite: Moody GB, Mark RG. The impact of the MIT-BIH Arrhythmia Database. IEEE Eng Med Biol 20(3):45-50
      (2001). Goldberger AL et al. PhysioBank, PhysioToolkit, and PhysioNet. Circulation 101(23):e215-e220 (2000).
      de Chazal P, O'Dwyer M, Reilly RB. Automatic classification of heartbeats using ECG morphology and heartbeat
      interval features. IEEE Trans Biomed Eng 51(7):1196-1206 (2004).
    - License: ODC-By 1.0 (PhysioNet).
    """

    name = "mitbih"
    classes = CLASSES
    scored_classes = SCORED_CLASSES
    highlight_classes = ("S", "V")  # inter-patient S and V detection is what the literature reports
    citation = (
        "Moody & Mark, IEEE Eng Med Biol 20(3):45-50, 2001; Goldberger et al., Circulation 101(23):e215-e220, 2000; "
        "de Chazal et al., IEEE Trans Biomed Eng 51(7):1196-1206, 2004 (inter-patient split)"
    )

    def split_name(self, fold: int = 0) -> str:
        return "inter-patient"

    def missing_files(self, data_root: Path) -> list[str]:
        folder = Path(data_root) / DB
        return [f"{DB}/{name}" for name in record_files() if not (folder / name).is_file()]

    def verify(self, data_root: Path) -> None:
        verify_sources(data_root)

    def fetch(
        self,
        data_root: Path,
        base_url: str | None = None,
        progress: bool = True,
        records: Iterable[int | str] | None = None,
        *,
        jobs: int = 4,
    ) -> list[str]:
        """Download the missing or bad files (all needed records, or ``records``) plus RECORDS, ``jobs`` at a time;
        verify each."""
        from datasets.download import fetch_physionet

        chosen = RECORDS if records is None else tuple(int(r) for r in records)
        files = ["RECORDS", *record_files(chosen)]
        got = fetch_physionet(DB, VERSION, Path(data_root) / DB, files, committed_sums(), base_url, progress,
                              jobs=jobs)
        return [f"{DB}/{name}" for name in got]

    def load(self, data_root: Path, cache_dir: Path, fold: int = 0) -> DatasetBundle:
        if fold != 0:
            raise ValueError(f"mitbih has one fixed split; fold={fold}")
        sources = verify_sources(data_root)
        key = stable_hash({"preprocess": PREPROCESS, "sources": sources})
        path = Path(cache_dir) / self.name / f"{key}.npz"
        arrays = load_or_build(path, lambda: build_arrays(Path(data_root) / DB), required=ARRAY_KEYS)
        train, val, test = (split_arrays(arrays, recs) for recs in (TRAIN_RECORDS, VAL_RECORDS, TEST_RECORDS))
        return DatasetBundle(
            name=self.name,
            split=self.split_name(fold),
            classes=CLASSES,
            scored_classes=SCORED_CLASSES,
            train=train,
            val=val,
            test=test,
            split_hash=stable_hash(split_definition()),
            data_checksum=key,
            card=self.card({"train": train, "val": val, "test": test}),
        )

    def card(self, splits: dict[str, SplitArrays]) -> dict[str, Any]:
        """The dataset card as a dict (window, sampling rate, filtering, normalisation, classes, splits, counts)."""
        return {
            "source": f"PhysioNet {DB} {VERSION} (MIT-BIH Arrhythmia Database), doi:10.13026/C2F305",
            "license": "ODC-By 1.0",
            "lead": "MLII",
            "fs_hz": PREPROCESS["fs"],
            "window_samples": PREPROCESS["window"],
            "window_s": round(PREPROCESS["window"] / PREPROCESS["fs"], 3),
            "r_peak_index": PREPROCESS["window"] // 2,
            "filtering": "Butterworth band-pass 0.5-40 Hz, order 3, zero-phase sosfiltfilt over the record; "
            "resample_poly 360 -> 180 Hz",
            "normalisation": "per record: (x - median) / (1.4826 * MAD)",
            "channels": [
                "ECG MLII window",
                "pre-RR / local mean RR - 1",
                "post-RR / local mean RR - 1",
                "local mean RR / record mean RR - 1",
            ],
            "rr_context_intervals": PREPROCESS["rr_context"],
            "rr_clip": PREPROCESS["rr_clip"],
            "classes": {c: "".join(s for s, k in AAMI.items() if k == c) for c in CLASSES},
            "scored_classes": list(SCORED_CLASSES),
            "splits": {"train": TRAIN_RECORDS, "val": VAL_RECORDS, "test": TEST_RECORDS, "excluded": PACED},
            "class_counts": {
                name: dict(zip(CLASSES, s.class_counts(len(CLASSES)), strict=True)) for name, s in splits.items()
            },
            "citation": self.citation,
        }
