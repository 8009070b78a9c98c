"""Saved students: ``run --save-models`` writes each run's deployed model, ``load_student`` rebuilds it from its record.

One file per run, ``<models dir>/<dataset>/<split>/<budget>/<profile>/<method>/seed<N>.pt`` (the record's layout; the
models dir defaults to the results dir, so the file sits beside its record), holding the state dict, the ArchSpec as
JSON and the input channels / classes needed to rebuild it. It is written atomically (temporary file, fsync, rename)
and the record's ``model`` field names it by a path relative to the record's folder, with its sha256, so a results
folder moved together with its models still loads. Reference rows are saved alike: the teacher's weights are *copied*
from the teacher store (a cache that is safe to delete), never linked.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from benchmark.nn.arch import ArchSpec, build_model
from benchmark.results import JobKey, ResultError, RunResult, read_result, results_path
from datasets.cache import sha256_file

FORMAT = "kdnas-student-v1"


@dataclass(frozen=True)
class ModelSink:
    """Where a run's deployed student goes: ``models_dir`` (mirroring the record layout) and the records' root."""

    models_dir: str
    results_dir: str

    def model_path(self, key: JobKey) -> Path:
        return results_path(Path(self.models_dir), key).with_suffix(".pt")

    def relative_path(self, key: JobKey) -> str:
        """The model file's path relative to the folder of ``key``'s record (what the record stores)."""
        record_dir = results_path(Path(self.results_dir), key).parent
        return Path(os.path.relpath(self.model_path(key).resolve(), record_dir.resolve())).as_posix()


def save_student(model: nn.Module, arch: ArchSpec, in_channels: int, n_classes: int, sink: ModelSink,
                 key: JobKey) -> dict[str, Any]:
    """Write ``model`` (after checking that ``arch`` rebuilds it exactly) and return the record's ``model`` entry."""
    state = {name: tensor.detach().cpu() for name, tensor in model.state_dict().items()}
    try:
        build_model(arch, in_channels, n_classes).load_state_dict(state, strict=True)
    except (RuntimeError, KeyError, ValueError) as err:
        raise RuntimeError(f"cannot save the deployed student: its weights do not fit its ArchSpec "
                           f"({str(err).splitlines()[0]})") from None
    path = sink.model_path(key)
    payload = {"format": FORMAT, "arch_json": json.dumps(arch.to_dict(), sort_keys=True),
               "in_channels": int(in_channels), "n_classes": int(n_classes), "record": key.label(),
               "state_dict": state}
    _atomic_torch_save(payload, path)
    return {"path": sink.relative_path(key), "sha256": sha256_file(path), "format": FORMAT,
            "in_channels": int(in_channels), "n_classes": int(n_classes)}


def _atomic_torch_save(payload: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            torch.save(payload, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def model_file(record: RunResult, record_dir: Path, source: str) -> Path:
    """The saved model file a record names (checked to exist and to match its sha256); ResultError otherwise."""
    entry = record.model
    if not entry or "path" not in entry:
        raise ResultError(f"{source}: the record has no saved model (rerun with `benchmark run --save-models`)")
    path = Path(record_dir) / entry["path"]
    if not path.is_file():
        raise ResultError(f"{path}: the saved model named by {source} is missing")
    if sha256_file(path) != entry.get("sha256"):
        raise ResultError(f"{path}: sha256 does not match the one in its record {source}")
    return path


def load_student(source: str | Path | RunResult, record_dir: str | Path | None = None,
                 device: str | torch.device = "cpu") -> nn.Module:
    """The trained student of a record (a record path, or a RunResult with ``record_dir``, the folder its path is
    relative to), rebuilt from its ArchSpec and weights after the file's sha256 is checked; in eval mode."""
    import methods  # noqa: F401  (registers the search spaces' architecture families)

    if isinstance(source, RunResult):
        if record_dir is None:
            raise ValueError("load_student: pass record_dir (the record's folder) with a RunResult")
        record, folder, name = source, Path(record_dir), source.key.label()
    else:
        record, folder, name = read_result(Path(source)), Path(source).parent, str(source)
    path = model_file(record, folder, name)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
        arch = ArchSpec.from_dict(json.loads(payload["arch_json"]))
        model = build_model(arch, int(payload["in_channels"]), int(payload["n_classes"]))
        model.load_state_dict(payload["state_dict"], strict=True)
    except (RuntimeError, KeyError, TypeError, ValueError) as err:
        raise ResultError(f"{path}: not a saved student ({type(err).__name__}: {str(err).splitlines()[0]})") from None
    return model.to(device).eval()
