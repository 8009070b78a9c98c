"""Sleep-EDF-shaped EDF files written by the tests (the real signals are not available here).

PSGs carry 'EEG Fpz-Cz' and 'EEG Pz-Oz' at 100 Hz and 'Resp oro-nasal' at 1 Hz, like the sleep-cassette files;
hypnograms are EDF+ files holding only 'Sleep stage W/1/2/3/4/R/?' and 'Movement time' annotations. Both are
written with edfio (what mne uses to export EDF) and read back by the project's code with mne.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from edfio import Edf, EdfAnnotation, EdfSignal, Recording

from datasets.sleepedf import FOLDER, SUMS_NAME, Night, SleepEDF

EPOCH_S, FS = 30, 100
START = dt.datetime(1989, 4, 24, 16, 13)
Runs = Sequence[tuple[str, int]]  # (annotation text, number of 30-s epochs)

# A short night: every stage, movement inside the night, '?' running past the end of the PSG.
# Epochs: W W W N1 N2 N2 N2 S3 S4 R R Move W W ? ? | ? ... (the PSG stops after 16 epochs)
SHORT_NIGHT: Runs = (
    ("Sleep stage W", 3), ("Sleep stage 1", 1), ("Sleep stage 2", 3), ("Sleep stage 3", 1), ("Sleep stage 4", 1),
    ("Sleep stage R", 2), ("Movement time", 1), ("Sleep stage W", 2), ("Sleep stage ?", 30),
)
SHORT_NIGHT_PSG_EPOCHS = 16
# Hand-computed from SHORT_NIGHT: the kept epochs (all but movement and '?'; the wake edges are < 30 min) and labels.
SHORT_NIGHT_KEPT = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 13]
SHORT_NIGHT_LABELS = [0, 0, 0, 1, 2, 2, 2, 3, 3, 4, 4, 0, 0]

# Per stage: (frequency Hz, amplitude µV) of the dominant rhythm, so a model can learn the stages.
RHYTHM = {"W": (10.0, 20.0), "1": (6.0, 15.0), "2": (13.0, 15.0), "3": (1.5, 60.0), "4": (1.0, 80.0),
          "R": (5.0, 15.0), "?": (0.0, 0.0), "Movement time": (25.0, 40.0)}  # fmt: skip


def stage_annotations(runs: Runs) -> list[tuple[float, float, str]]:
    """Contiguous (onset s, duration s, text) annotations for ``runs``, starting at 0."""
    out, onset = [], 0.0
    for text, n in runs:
        out.append((onset, float(n * EPOCH_S), text))
        onset += n * EPOCH_S
    return out


def epoch_texts(runs: Runs) -> list[str]:
    return [text for text, n in runs for _ in range(n)]


def fake_eeg(runs: Runs, n_epochs: int, rng: np.random.Generator, gain: float = 1.0) -> np.ndarray:
    """µV EEG of ``n_epochs`` epochs whose rhythm follows the stages of ``runs`` (plus noise)."""
    texts = epoch_texts(runs)
    t = np.arange(EPOCH_S * FS) / FS
    epochs = []
    for i in range(n_epochs):
        text = texts[i] if i < len(texts) else "Sleep stage ?"
        freq, amp = RHYTHM[text.removeprefix("Sleep stage ")]
        phase = rng.uniform(0, 2 * np.pi)
        epochs.append(amp * np.sin(2 * np.pi * freq * t + phase) + rng.normal(0, 8, t.size))
    return np.clip(gain * np.concatenate(epochs), -480, 480)


def write_psg(path: Path, eeg: np.ndarray, start: dt.datetime = START, channel: str = "EEG Fpz-Cz",
              fs: int = FS) -> None:
    """A PSG EDF with ``eeg`` as ``channel`` plus a second EEG and a 1-Hz respiration channel."""
    seconds = len(eeg) // fs
    signals = [
        EdfSignal(eeg, fs, label=channel, physical_dimension="uV", physical_range=(-500, 500)),
        EdfSignal(0.5 * eeg, fs, label="EEG Pz-Oz", physical_dimension="uV", physical_range=(-500, 500)),
        EdfSignal(np.zeros(seconds), 1, label="Resp oro-nasal", physical_range=(-2048, 2047)),
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    Edf(signals, recording=Recording(startdate=start.date()), starttime=start.time(),
        data_record_duration=EPOCH_S).write(path)


def write_hypnogram(path: Path, annotations: Sequence[tuple[float, float, str]], start: dt.datetime = START) -> None:
    """An annotations-only EDF+ hypnogram."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Edf([], recording=Recording(startdate=start.date()), starttime=start.time(),
        annotations=[EdfAnnotation(onset, duration, text) for onset, duration, text in annotations]).write(path)


def write_night(folder: Path, night: Night, runs: Runs, psg_epochs: int, seed: int = 0, gain: float = 1.0) -> None:
    """The PSG and hypnogram of ``night`` under ``folder`` (the ``sleep-edf`` folder)."""
    rng = np.random.default_rng(seed)
    write_psg(folder / night.psg, fake_eeg(runs, psg_epochs, rng, gain))
    write_hypnogram(folder / night.hypnogram, stage_annotations(runs))


def write_sums(folder: Path) -> dict[str, str]:
    """PhysioNet-style SHA256SUMS.txt for every EDF under ``folder``; returns the sums."""
    sums = {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*.edf"))}
    (folder / SUMS_NAME).write_text("".join(f"{h} {n}\n" for n, h in sums.items()))
    return sums


def write_dataset(root: Path, dataset: SleepEDF, runs_for: Callable[[Night], Runs] = lambda night: SHORT_NIGHT,
                  psg_epochs_for: Callable[[Night], int] = lambda night: SHORT_NIGHT_PSG_EPOCHS) -> dict[str, str]:
    """Every night of ``dataset`` under ``root/sleep-edf`` plus its SHA256SUMS.txt; returns the sums."""
    folder = root / FOLDER
    for i, night in enumerate(dataset.nights()):
        write_night(folder, night, runs_for(night), psg_epochs_for(night), seed=i, gain=0.5 + (i % 4) * 0.5)
    return write_sums(folder)
