"""Sleep-EDF-20 and Sleep-EDF-78 (PhysioNet sleep-edfx 1.0.0, sleep-cassette): 5-stage scoring of 30-s EEG epochs.

What each module part does:

- the night list comes from the committed copy of PhysioNet's SHA256SUMS.txt (``datasets/checksums``);
- ``read_night`` reads one PSG + hypnogram pair with ``mne`` and turns it into labelled 30-s epochs;
- ``crop_in_bed`` and ``robust_scale`` are the DeepSleepNet-lineage preprocessing steps;
- every night is cached on its own (key: preprocessing config + the two files' sha256), so a changed file or
  config rebuilds only what it touches;
- the folds are versioned data files (``datasets/splits``), hashed into every result.
"""

from __future__ import annotations

import json
import logging
import re
import warnings
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from datasets.base import DataError, Dataset, DatasetBundle, SplitArrays, register_dataset, stable_hash
from datasets.cache import Arrays, atomic_open, read_npz, read_sha256sums, save_npz, sha256_file

log = logging.getLogger(__name__)

DB, VERSION = "sleep-edfx", "1.0.0"
FOLDER = "sleep-edf"  # under the data root; PhysioNet's database root (holds sleep-cassette/ and SHA256SUMS.txt)
SUMS_NAME = "SHA256SUMS.txt"
CHECKSUMS = Path(__file__).parent / "checksums" / f"{DB}-{VERSION}.sha256"
SPLITS = Path(__file__).parent / "splits"

CLASSES = ("W", "N1", "N2", "N3", "REM")
DROPPED = -1  # label of epochs that are not scored (movement, unknown)
# Rechtschaffen & Kales -> AASM: stages 3 and 4 merge into N3; movement and unscored epochs are dropped.
STAGE_LABELS: dict[str, int] = {
    "Sleep stage W": 0,
    "Sleep stage 1": 1,
    "Sleep stage 2": 2,
    "Sleep stage 3": 3,
    "Sleep stage 4": 3,
    "Sleep stage R": 4,
    "Movement time": DROPPED,
    "Sleep stage ?": DROPPED,
}
PREPROCESS: dict[str, Any] = {
    "version": 1,
    "channel": "EEG Fpz-Cz",
    "fs": 100,
    "epoch_s": 30,
    "stage_labels": STAGE_LABELS,
    "wake_edge_min": 30,
    "scale": "median/MAD over the night's kept epochs",
    "mad_scale": 1.4826,
    "clip": 20.0,
}
EPOCH_SAMPLES = PREPROCESS["fs"] * PREPROCESS["epoch_s"]
NIGHT_KEYS = ("x", "y", "epoch")
_NIGHT = re.compile(r"^sleep-cassette/SC4(\d\d)(\d)[A-Z]0-PSG\.edf$")  # SC4ssN + E0/F0/G0


class NoSleep(DataError):
    """A night whose hypnogram scores no sleep epoch: skipped with a warning naming the file."""


@dataclass(frozen=True)
class Night:
    """One sleep-cassette recording: subject, night (1 or 2), PSG and hypnogram paths under ``sleep-edf/``."""

    subject: int
    night: int
    psg: str
    hypnogram: str

    @property
    def name(self) -> str:
        return Path(self.psg).name.removesuffix("-PSG.edf")


@cache
def committed_sums() -> dict[str, str]:
    """PhysioNet's sha256 of RECORDS, RECORDS-v1 and every sleep-cassette file, as committed."""
    return read_sha256sums(CHECKSUMS)


def cassette_nights(names: Iterable[str]) -> list[Night]:
    """Pair every ``SC4ssN?0-PSG.edf`` in ``names`` with its ``SC4ssN??-Hypnogram.edf`` (sorted by subject, night)."""
    names = sorted(names)
    nights = []
    for name in names:
        match = _NIGHT.match(name)
        if not match:
            continue
        prefix = name[: -len("E0-PSG.edf")]  # sleep-cassette/SC4ssN
        hypnograms = [n for n in names if n.startswith(prefix) and n.endswith("-Hypnogram.edf")]
        if len(hypnograms) != 1:
            raise DataError(f"{CHECKSUMS}: {name} has {len(hypnograms)} hypnograms listed, expected 1")
        nights.append(Night(int(match.group(1)), int(match.group(2)), name, hypnograms[0]))
    return sorted(nights, key=lambda n: (n.subject, n.night))


# ---------------------------------------------------------------------------------------------------------------------
# Reading and preprocessing one night


def read_night(psg: Path, hypnogram: Path) -> tuple[np.ndarray, np.ndarray]:
    """The Fpz-Cz signal (µV, 100 Hz) cut into 30-s epochs (n, 3000) and their labels (n,), DROPPED if unscored.

    Epoch ``i`` starts at the hypnogram's first onset + 30·i s. Hypnogram epochs past the end of the signal are
    dropped (as DeepSleepNet does; the last annotation of a Sleep-EDF hypnogram usually runs past the PSG).
    """
    signal, start = read_psg(psg)
    labels, first_onset = hypnogram_labels(hypnogram, start, psg)
    offset = round(first_onset * PREPROCESS["fs"])
    n_signal = max(0, (len(signal) - offset) // EPOCH_SAMPLES)
    n = min(len(labels), n_signal)
    if n == 0:
        raise DataError(f"{hypnogram}: no scored epoch overlaps the signal of {psg.name}")
    past_end = int(np.sum(labels[n:] != DROPPED))
    if past_end:
        log.warning("%s: %d scored epoch(s) past the end of %s dropped", hypnogram, past_end, psg.name)
    epochs = signal[offset: offset + n * EPOCH_SAMPLES].reshape(n, EPOCH_SAMPLES)
    return epochs, labels[:n]


def _read_raw(psg: Path, include: list[str] | None = None) -> Any:
    import mne

    try:
        with warnings.catch_warnings():  # a hypnogram's stage annotations outlast its (empty) data: expected
            warnings.filterwarnings("ignore", message=".*annotation.*outside.*data range", category=RuntimeWarning)
            return mne.io.read_raw_edf(psg, include=include, preload=include is not None, verbose="error")
    except Exception as err:  # mne raises several types on damaged files
        raise DataError(f"{psg}: cannot read EDF ({type(err).__name__}: {err})".splitlines()[0]) from err


def read_psg(psg: Path) -> tuple[np.ndarray, Any]:
    """The configured EEG channel of ``psg`` in µV and the PSG's start (``meas_date``); DataError naming the file
    when the channel is absent or at another rate."""
    channel = PREPROCESS["channel"]
    header = _read_raw(psg)
    if channel not in header.ch_names:
        raise DataError(f"{psg}: no {channel!r} channel (channels: {', '.join(header.ch_names)})")
    raw = _read_raw(psg, include=[channel])
    if raw.info["sfreq"] != PREPROCESS["fs"]:
        raise DataError(f"{psg}: {channel!r} sampled at {raw.info['sfreq']:g} Hz, expected {PREPROCESS['fs']} Hz")
    return raw.get_data(picks=[channel], units="uV")[0], header.info["meas_date"]


def hypnogram_labels(hypnogram: Path, psg_start: Any, psg: Path) -> tuple[np.ndarray, float]:
    """Per-30-s-epoch labels from the hypnogram's stage annotations, and the first annotation's onset (s).

    The annotations must start when the PSG starts, be contiguous and last whole epochs; else DataError.
    """
    import mne

    try:
        annotations = mne.read_annotations(hypnogram)
    except Exception as err:
        raise DataError(f"{hypnogram}: cannot read annotations ({type(err).__name__}: {err})".splitlines()[0]) from err
    if len(annotations) == 0:
        raise DataError(f"{hypnogram}: no sleep-stage annotations")
    hypnogram_start = _read_raw(hypnogram).info["meas_date"]  # read_annotations leaves orig_time unset for EDF
    if hypnogram_start != psg_start:
        raise DataError(f"{hypnogram}: starts {hypnogram_start}, but its PSG {psg.name} starts {psg_start}: "
                        "the hypnogram does not belong to this recording")
    epoch_s = PREPROCESS["epoch_s"]
    labels: list[int] = []
    expected = float(annotations.onset[0])
    for onset, duration, text in zip(annotations.onset, annotations.duration, annotations.description, strict=True):
        if text not in STAGE_LABELS:
            raise DataError(f"{hypnogram}: unknown annotation {text!r} at {onset:g} s")
        if abs(onset - expected) > 1e-3:
            raise DataError(f"{hypnogram}: annotation at {onset:g} s, expected {expected:g} s (gap or overlap)")
        n_epochs = duration / epoch_s
        if n_epochs <= 0 or abs(n_epochs - round(n_epochs)) > 1e-6:
            raise DataError(f"{hypnogram}: {text!r} at {onset:g} s lasts {duration:g} s, not whole {epoch_s}-s epochs")
        labels += [STAGE_LABELS[text]] * round(n_epochs)
        expected = onset + duration
    return np.asarray(labels, dtype=np.int64), float(annotations.onset[0])


def crop_in_bed(labels: np.ndarray, edge_epochs: int) -> np.ndarray:
    """Indices of the epochs kept: from ``edge_epochs`` before the first to ``edge_epochs`` after the last sleep
    epoch (N1, N2, N3, REM), clipped to the night, without the unscored ones. NoSleep when there is no sleep."""
    sleep = np.flatnonzero(labels >= 1)
    if sleep.size == 0:
        raise NoSleep("no sleep epoch")
    lo, hi = max(0, sleep[0] - edge_epochs), min(len(labels) - 1, sleep[-1] + edge_epochs)
    window = np.arange(lo, hi + 1)
    return window[labels[window] != DROPPED]


def robust_scale(x: np.ndarray) -> np.ndarray:
    """``(x - median) / (1.4826·MAD)`` over all samples of ``x``, clipped to ±``clip``."""
    median = np.median(x)
    mad = np.median(np.abs(x - median)) * PREPROCESS["mad_scale"]
    return np.clip((x - median) / max(float(mad), 1e-6), -PREPROCESS["clip"], PREPROCESS["clip"])


def preprocess_night(psg: Path, hypnogram: Path) -> Arrays:
    """The kept epochs of one night: ``x`` (n, 3000) float32 scaled, ``y`` (n,) labels, ``epoch`` (n,) indices."""
    epochs, labels = read_night(psg, hypnogram)
    try:
        keep = crop_in_bed(labels, PREPROCESS["wake_edge_min"] * 60 // PREPROCESS["epoch_s"])
    except NoSleep:
        raise NoSleep(f"{hypnogram}: no sleep epoch scored; night {psg.name} skipped") from None
    return {"x": robust_scale(epochs[keep]).astype(np.float32), "y": labels[keep], "epoch": keep.astype(np.int64)}


# ---------------------------------------------------------------------------------------------------------------------
# Source files: which checksums, verification, per-night cache


def expected_sums(folder: Path, override: Mapping[str, str] | None = None,
                  warn: bool = True) -> tuple[dict[str, str], str]:
    """The checksums files are verified against, and where they come from.

    ``override`` (tests, mirrors) wins. Otherwise the committed PhysioNet list, unless the data folder holds a
    SHA256SUMS.txt that disagrees with it for sleep-cassette files: then the data is not PhysioNet's (e.g. files
    generated by the tests); that local list is used, and the dataset card says so.
    """
    if override is not None:
        return dict(override), "given checksum list"
    committed = committed_sums()
    local_path = Path(folder) / SUMS_NAME
    if local_path.is_file():
        local = read_sha256sums(local_path)
        differs = [n for n, h in local.items() if n.startswith("sleep-cassette/") and committed.get(n) != h]
        if differs:
            if warn:
                log.warning("%s differs from PhysioNet's %s %s checksums for %d file(s): not the published data",
                            local_path, DB, VERSION, len(differs))
            return local, f"local {local_path} (differs from PhysioNet's)"
    return committed, f"PhysioNet {DB} {VERSION} {SUMS_NAME}"


def verify_file(path: Path, sha256: str, stamps: dict[str, list[Any]], fetch_hint: str) -> str:
    """Check ``path`` against ``sha256``; a file unchanged (size, mtime) since it last matched is not re-hashed."""
    if not path.is_file():
        raise DataError(f"{path}: missing; {fetch_hint}")
    stat = path.stat()
    stamp = [stat.st_size, stat.st_mtime_ns, sha256]
    if stamps.get(str(path)) == stamp:
        return sha256
    if sha256_file(path) != sha256:
        raise DataError(f"{path}: checksum mismatch (corrupt or truncated); {fetch_hint}")
    stamps[str(path)] = stamp
    return sha256


def read_stamps(path: Path) -> dict[str, list[Any]]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def write_stamps(path: Path, stamps: dict[str, list[Any]]) -> None:
    with atomic_open(path) as handle:
        handle.write(json.dumps(stamps, sort_keys=True).encode())


def build_night(folder: Path, night: Night) -> Arrays:
    """Preprocess one night; a night without sleep gives empty arrays (logged, not an error)."""
    try:
        return preprocess_night(folder / night.psg, folder / night.hypnogram)
    except NoSleep as err:
        log.warning("%s", err)
        return {"x": np.zeros((0, EPOCH_SAMPLES), np.float32), "y": np.zeros(0, np.int64),
                "epoch": np.zeros(0, np.int64)}


# ---------------------------------------------------------------------------------------------------------------------
# Folds


def make_folds(subjects: Iterable[int], n_folds: int, seed: int) -> list[dict[str, Any]]:
    """Subject-wise folds: subjects shuffled with ``seed`` (not shuffled when there is one subject per fold) and
    split into ``n_folds`` near-equal groups; a fold's validation subjects are the test subjects of the next
    ``ceil(n_folds / 10)`` folds (about 10% of its training subjects)."""
    subjects = sorted(subjects)
    order = subjects if len(subjects) == n_folds else np.random.default_rng(seed).permutation(subjects).tolist()
    groups = [sorted(int(s) for s in g) for g in np.array_split(np.asarray(order), n_folds)]
    n_val = -(-n_folds // 10)
    return [
        {"fold": k, "test": groups[k], "val": sorted(s for j in range(1, n_val + 1) for s in groups[(k + j) % n_folds])}
        for k in range(n_folds)
    ]


def folds_spec(dataset: SleepEDF) -> dict[str, Any]:
    """The content of ``dataset``'s fold file, as ``make_folds`` derives it (the committed files are this output:
    ``python -c "from datasets.sleepedf import *; write_folds_file(SleepEDF78())"`` rewrites one)."""
    subjects = sorted({n.subject for n in dataset.nights()})
    return {
        "dataset": dataset.name,
        "version": 1,
        "scheme": f"subject-wise {dataset.n_folds}-fold cross-validation; both nights of a subject in the same fold",
        "rule": "datasets.sleepedf.make_folds(subjects, n_folds, seed): subjects shuffled with numpy "
                "default_rng(seed) (not shuffled with one subject per fold), split into n_folds near-equal groups; "
                "val = the test subjects of the next ceil(n_folds/10) folds; train = the other subjects",
        "seed": dataset.fold_seed,
        "subjects": subjects,
        "folds": make_folds(subjects, dataset.n_folds, dataset.fold_seed),
    }


def write_folds_file(dataset: SleepEDF) -> Path:
    """(Re)write ``dataset``'s fold file from ``folds_spec``; a changed fold file needs a new version number."""
    with atomic_open(dataset.folds_file) as handle:
        handle.write((json.dumps(folds_spec(dataset), indent=1) + "\n").encode())
    return dataset.folds_file


def read_folds(path: Path) -> dict[str, Any]:
    """A fold file, checked: every subject is a test subject exactly once; val never holds a test subject."""
    try:
        spec = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise DataError(f"{path}: cannot read fold file ({err})") from err
    tests = [s for fold in spec["folds"] for s in fold["test"]]
    if len(tests) != len(set(tests)):
        raise DataError(f"{path}: a subject is a test subject in two folds")
    for fold in spec["folds"]:
        if set(fold["val"]) & set(fold["test"]):
            raise DataError(f"{path}: fold {fold['fold']} validates on a test subject")
    return spec


# ---------------------------------------------------------------------------------------------------------------------
# The datasets


class SleepEDF(Dataset):
    """Sleep-EDF (sleep-cassette), single-channel EEG Fpz-Cz, 5 AASM stages, subject-wise cross-validation.

    Dataset card:

    - Source: PhysioNet Sleep-EDF Database Expanded (sleep-edfx 1.0.0), sleep-cassette study: healthy subjects aged
      25-101, two day-night PSG recordings each (some one), hypnograms scored by trained technicians (R&K). Files
      are verified against PhysioNet's sha256 (committed copy ``datasets/checksums/sleep-edfx-1.0.0.sha256``).
    - Reading: ``mne.io.read_raw_edf`` (EEG Fpz-Cz only, 100 Hz, µV) and ``mne.read_annotations`` (hypnogram EDF+).
      The hypnogram must start with its PSG and its stage annotations must be contiguous whole 30-s epochs.
    - Epochs: 30 s = 3000 samples from the first annotation on; labels R&K -> AASM: W, N1 (stage 1), N2 (stage 2),
      N3 (stages 3 and 4), REM (R). 'Movement time' and 'Sleep stage ?' epochs are dropped.
    - In-bed cropping (DeepSleepNet, TinySleepNet): only 30 minutes (60 epochs) of the night before the first and
      after the last sleep epoch (N1-REM) are kept; the recordings are ~20 h, mostly wake. The window is taken in the
      hypnogram's time line, then unscored epochs inside it are dropped (TinySleepNet's order; its window counts
      movement/unscored epochs as sleep, ours does not, as the issue and DeepSleepNet's paper state it).
    - Normalisation, per night (the published pipelines feed raw µV; we scale so one night's electrode gain does
      not matter): subtract the median and divide by 1.4826·MAD of all kept samples of the night, clip to ±20.
      No filtering (the EDF's own 0.5 Hz high-pass and anti-alias filter stand).
    - Input: float32 (1, 3000). ``groups`` holds the subject number.
    - Protocol: subject-wise k-fold cross-validation, both nights of a subject in one fold; fold k tests on its
      subjects, validates on the subjects of the next ceil(k/10) folds and trains on the rest. Fold files are
      ``datasets/splits/<name>-folds-v1.json``; their sha256 goes into every result (split hash, card).
      Metrics are pooled over folds by the leaderboard (summed confusion matrices), as the literature reports.
    - License: ODC-By 1.0 (PhysioNet).
    """

    n_folds: ClassVar[int]
    subjects: ClassVar[tuple[int, ...] | None]  # None: every sleep-cassette subject
    fold_seed: ClassVar[int] = 0
    classes = CLASSES
    scored_classes = CLASSES
    highlight_classes = tuple(f"f1:{c}" for c in CLASSES)  # per-class F1, as sleep-staging papers report
    citation = (
        "Kemp et al., IEEE Trans Biomed Eng 47(9):1185-1194, 2000; Goldberger et al., Circulation 101(23):"
        "e215-e220, 2000; PhysioNet sleep-edfx 1.0.0, doi:10.13026/C2X676"
    )

    def __init__(self, checksums: Mapping[str, str] | None = None) -> None:
        self.checksums = checksums  # None: committed PhysioNet list (or the data folder's own, see expected_sums)

    # -- file lists ---------------------------------------------------------------------------------------------

    def nights(self) -> list[Night]:
        """The nights of this dataset, from the committed PhysioNet checksum list."""
        every = cassette_nights(committed_sums())
        return [n for n in every if self.subjects is None or n.subject in self.subjects]

    def night_files(self) -> list[str]:
        return [name for night in self.nights() for name in (night.psg, night.hypnogram)]

    @property
    def folds_file(self) -> Path:
        return SPLITS / f"{self.name}-folds-v1.json"

    def fetch_hint(self, data_root: Path) -> str:
        return f"run `python -m benchmark data fetch {self.name} --data-root {data_root}`"

    def missing_files(self, data_root: Path) -> list[str]:
        folder = Path(data_root) / FOLDER
        return [f"{FOLDER}/{name}" for name in self.night_files() if not (folder / name).is_file()]

    def fetch(
        self, data_root: Path, base_url: str | None = None, progress: bool = True, *, jobs: int = 4
    ) -> list[str]:
        """Download the missing or bad PSG/hypnogram files (plus RECORDS) from PhysioNet, ``jobs`` at a time;
        verify each."""
        from datasets.download import fetch_physionet

        expected = dict(self.checksums) if self.checksums is not None else committed_sums()
        files = ["RECORDS", *self.night_files()]
        got = fetch_physionet(DB, VERSION, Path(data_root) / FOLDER, files, expected, base_url, progress, jobs=jobs)
        return [f"{FOLDER}/{name}" for name in got]

    # -- loading ------------------------------------------------------------------------------------------------

    def verify(self, data_root: Path, cache_dir: Path, rehash: bool) -> tuple[dict[str, str], str]:
        """``{file: sha256}`` of every night file after checking it; ``rehash`` ignores the verification stamps."""
        folder = Path(data_root) / FOLDER
        if not folder.is_dir():
            raise DataError(f"{folder}: missing; {self.fetch_hint(data_root)}")
        expected, source = expected_sums(folder, self.checksums, warn=rehash)  # warn once, in prepare
        stamps_path = Path(cache_dir) / "sleepedf" / "verified.json"
        stamps = {} if rehash else read_stamps(stamps_path)
        found = {}
        for name in self.night_files():
            if name not in expected:
                raise DataError(f"{folder / SUMS_NAME}: no checksum for {name}")
            found[name] = verify_file(folder / name, expected[name], stamps, self.fetch_hint(data_root))
        write_stamps(stamps_path, {**read_stamps(stamps_path), **stamps})
        return found, source

    def night_arrays(self, data_root: Path, cache_dir: Path, sources: Mapping[str, str],
                     workers: int = 2) -> dict[Night, Arrays]:
        """Every night's preprocessed arrays, each from its own cache file; missing ones are built in threads.

        Cache files are read in this thread only: numpy parses .npy headers with ``ast.literal_eval``, which
        CPython 3.11 cannot run in two threads at once ("AST constructor recursion depth mismatch")."""
        folder = Path(data_root) / FOLDER

        def cache_path(night: Night) -> Path:
            key = stable_hash({"preprocess": PREPROCESS, "psg": sources[night.psg],
                               "hypnogram": sources[night.hypnogram]})
            return Path(cache_dir) / "sleepedf" / "nights" / f"{night.name}-{key}.npz"

        def build(night: Night) -> Arrays:
            arrays = build_night(folder, night)
            save_npz(cache_path(night), arrays)
            return arrays

        found = {night: read_npz(cache_path(night)) for night in self.nights()}
        missing = [n for n, a in found.items() if a is None or any(k not in a for k in NIGHT_KEYS)]
        with ThreadPoolExecutor(max_workers=workers) as pool:
            found.update(zip(missing, pool.map(build, missing), strict=True))
        return found  # type: ignore[return-value]

    def prepare(self, data_root: Path, cache_dir: Path) -> None:
        """Verify every file by its full sha256 and build the per-night caches (once per command)."""
        sources, _ = self.verify(data_root, cache_dir, rehash=True)
        self.night_arrays(data_root, cache_dir, sources)

    def load(self, data_root: Path, cache_dir: Path, fold: int = 0) -> DatasetBundle:
        if not 0 <= fold < self.n_folds:
            raise ValueError(f"{self.name} has folds 0..{self.n_folds - 1}; fold={fold}")
        sources, source_label = self.verify(data_root, cache_dir, rehash=False)
        arrays = self.night_arrays(data_root, cache_dir, sources)
        folds = read_folds(self.folds_file)
        spec = folds["folds"][fold]
        test_subjects, val_subjects = set(spec["test"]), set(spec["val"])
        train_subjects = {n.subject for n in arrays} - test_subjects - val_subjects
        splits = {name: self._split(arrays, subjects) for name, subjects in
                  (("train", train_subjects), ("val", val_subjects), ("test", test_subjects))}
        for name, split in splits.items():
            if len(split) == 0:
                raise DataError(f"{self.folds_file}: fold {fold} has no usable {name} epochs")
        folds_sha = sha256_file(self.folds_file)
        cv = {"n_folds": self.n_folds, "fold": fold, "folds_file": self.folds_file.name, "folds_sha256": folds_sha,
              "scheme": f"subject-wise {self.n_folds}-fold CV", "test_subjects": sorted(test_subjects),
              "val_subjects": sorted(val_subjects)}
        skipped = sorted(n.name for n, a in arrays.items() if len(a["y"]) == 0)
        return DatasetBundle(
            name=self.name, split=self.split_name(fold), classes=CLASSES, scored_classes=CLASSES,
            train=splits["train"], val=splits["val"], test=splits["test"],
            split_hash=stable_hash({"folds_sha256": folds_sha, "fold": fold}),
            data_checksum=stable_hash({"preprocess": PREPROCESS, "sources": sources}),
            card=self.card(splits, cv, source_label, skipped),
        )

    @staticmethod
    def _split(arrays: Mapping[Night, Arrays], subjects: set[int]) -> SplitArrays:
        """The epochs of ``subjects`` (both nights), as (N, 1, 3000) inputs with the subject as group."""
        chosen = [(n, a) for n, a in arrays.items() if n.subject in subjects]
        if not chosen:
            return SplitArrays(np.zeros((0, 1, EPOCH_SAMPLES), np.float32), np.zeros(0, np.int64),
                               np.zeros(0, np.int64))
        x = np.concatenate([a["x"] for _, a in chosen])[:, None, :]
        y = np.concatenate([a["y"] for _, a in chosen]).astype(np.int64)
        groups = np.concatenate([np.full(len(a["y"]), n.subject, np.int64) for n, a in chosen])
        return SplitArrays(x=x, y=y, groups=groups)

    def card(self, splits: Mapping[str, SplitArrays], cv: dict[str, Any], source: str,
             skipped: list[str]) -> dict[str, Any]:
        """The dataset card as a dict: source, channel, epochs, labels, cropping, normalisation, folds, counts."""
        return {
            "source": f"PhysioNet {DB} {VERSION} (Sleep-EDF Database Expanded), sleep-cassette, doi:10.13026/C2X676",
            "checksums": source,
            "license": "ODC-By 1.0",
            "channel": PREPROCESS["channel"],
            "fs_hz": PREPROCESS["fs"],
            "epoch_s": PREPROCESS["epoch_s"],
            "window_samples": EPOCH_SAMPLES,
            "labels": "R&K -> AASM: W; 1 -> N1; 2 -> N2; 3, 4 -> N3; R -> REM; movement and '?' dropped",
            "cropping": f"{PREPROCESS['wake_edge_min']} min before the first and after the last sleep epoch",
            "normalisation": "per night: (x - median) / (1.4826 * MAD) over the kept epochs, clipped to ±20",
            "nights": len(self.nights()),
            "skipped_nights": skipped,
            "cv": cv,
            "class_counts": {
                name: dict(zip(CLASSES, s.class_counts(len(CLASSES)), strict=True)) for name, s in splits.items()
            },
            "citation": self.citation,
        }


@register_dataset("sleepedf20")
class SleepEDF20(SleepEDF):
    """Sleep-EDF-20: the 39 sleep-cassette nights of subjects 0-19 (the 2013 release; subject 13 has one night),
    20-fold subject-wise CV (one subject per fold). See ``SleepEDF`` for the card."""

    name = "sleepedf20"
    n_folds = 20
    subjects = tuple(range(20))


@register_dataset("sleepedf78")
class SleepEDF78(SleepEDF):
    """Sleep-EDF-78: all 153 sleep-cassette nights of 78 subjects (2018 release), 10-fold subject-wise CV.
    See ``SleepEDF`` for the card."""

    name = "sleepedf78"
    n_folds = 10
    subjects = None
