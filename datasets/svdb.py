"""MIT-BIH Supraventricular Arrhythmia Database (PhysioNet ``svdb``) as an external test set for MIT-BIH models.

Used only to test students trained on MIT-BIH's DS1 (``python -m benchmark evaluate ... --external svdb``), never to
train or select. Its beats go through MIT-BIH's own pipeline (``datasets.mitbih.build_arrays`` with this database's
``Source``): the same zero-phase 0.5-40 Hz band-pass, resampling to 180 Hz, per-record robust normalisation, 256-sample
windows around the annotated R peak, RR features and AAMI classes. Only the source differs:

- **Rate**: 128 Hz. The band-pass runs at 128 Hz, then ``resample_poly`` takes the record to 180 Hz (up 45, down
  32), so a window is the same 1.42 s as on MIT-BIH; an R peak at sample ``n`` is centred at ``n * 180 // 128``.
- **Lead**: the first signal, ``ECG1``. SVDB's headers name no lead (``ECG1``, ``ECG2``); the first is taken as the
  counterpart of MIT-BIH's MLII. This was not checked against each record's documentation, and a lead that
  differs from MLII is part of what an external test measures.
- **Records**: those found under ``<data root>/svdb`` (every ``.hea`` with its ``.dat`` and ``.atr``): this project
  holds 10 of the 78 (800, 801, 860, 879-884, 886: 19,912 N, 1,191 S, 2,375 V annotated beats). Each record's
  signal is checked against the checksums in its WFDB header. PhysioNet's SHA256SUMS for svdb could not be had,
  so the files are not proven byte-identical to PhysioNet's and ``data fetch`` cannot verify (nor fetch) them.
- **Edges**: as on MIT-BIH, a beat without a pre or post RR interval or whose window leaves the record is dropped
  (record 860 has one annotation one sample past the end of its signal).

Cite: Greenwald SD, Patil RS, Mark RG. Improved detection and classification of arrhythmias in noise-corrupted
electrocardiograms using contextual information. Computers in Cardiology 1990:461-464; Goldberger et al. (2000).
Licence: ODC-By 1.0 (PhysioNet).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from datasets.base import DataError, ExternalTestSet, SplitArrays, register_external, stable_hash
from datasets.cache import load_or_build, sha256_file
from datasets.mitbih import ARRAY_KEYS, CLASSES, PREPROCESS, Source, build_arrays, split_arrays

DB, VERSION = "svdb", "1.0.0"
SOURCE = Source(lead="ECG1", fs_in=128)
EXTENSIONS = ("hea", "dat", "atr")


def available_records(folder: Path) -> tuple[int, ...]:
    """The records of ``folder`` with all three files, sorted; DataError when there are none."""
    if not folder.is_dir():
        raise DataError(f"{folder}: missing (the external test set svdb reads PhysioNet's svdb records from here)")
    records = sorted(int(p.stem) for p in folder.glob("*.hea") if p.stem.isdigit()
                     and all((folder / f"{p.stem}.{ext}").is_file() for ext in EXTENSIONS))
    if not records:
        raise DataError(f"{folder}: no svdb record with its .hea, .dat and .atr files")
    return tuple(records)


def check_signal_checksums(folder: Path, record: int) -> None:
    """Raise DataError naming the .dat file when its samples do not match the checksums in its header."""
    import wfdb

    base = str(folder / str(record))
    try:
        with warnings.catch_warnings():  # wfdb 4.3 uses pandas' inplace=True, which pandas deprecates
            warnings.filterwarnings("ignore", message="The inplace keyword")
            signal = wfdb.rdrecord(base, physical=False)
    except Exception as err:  # wfdb raises many types on bad input
        raise DataError(f"{base}.dat: cannot read signal ({type(err).__name__}: {err})") from err
    expected = [c % 65536 for c in (signal.checksum or [])]
    if expected and [c % 65536 for c in signal.calc_checksum()] != expected:
        raise DataError(f"{base}.dat: samples do not match the checksums in {base}.hea (corrupt or truncated)")


@register_external("svdb")
class SVDB(ExternalTestSet):
    """MIT-BIH Supraventricular Arrhythmia Database, beat classification with MIT-BIH's AAMI classes (module doc)."""

    name = "svdb"
    for_dataset = "mitbih"
    citation = ("Greenwald, Patil & Mark, Computers in Cardiology 1990:461-464; Goldberger et al., Circulation "
                "101(23):e215-e220, 2000")

    def load(self, data_root: Path, cache_dir: Path) -> tuple[SplitArrays, str]:
        folder = Path(data_root) / DB
        records = available_records(folder)
        sources = {f"{r}.{ext}": sha256_file(folder / f"{r}.{ext}") for r in records for ext in EXTENSIONS}
        key = stable_hash({"preprocess": PREPROCESS, "source": self.card(records), "sources": sources})

        def build() -> dict[str, Any]:
            for record in records:
                check_signal_checksums(folder, record)
            return build_arrays(folder, records, source=SOURCE)

        arrays = load_or_build(Path(cache_dir) / self.name / f"{key}.npz", build, required=ARRAY_KEYS)
        return split_arrays(arrays, records), key

    def card(self, records: tuple[int, ...] = ()) -> dict[str, Any]:
        return {"source": f"PhysioNet {DB} {VERSION} (MIT-BIH Supraventricular Arrhythmia Database), "
                          "doi:10.13026/C2V30W", "license": "ODC-By 1.0", "lead": SOURCE.lead,
                "fs_in_hz": SOURCE.fs_in, "fs_hz": PREPROCESS["fs"], "window_samples": PREPROCESS["window"],
                "classes": list(CLASSES), "records": list(records), "pipeline": "datasets.mitbih.build_arrays"}
