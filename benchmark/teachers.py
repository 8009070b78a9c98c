"""The shared teacher store: one teacher per (dataset, split, seed, arch, recipe), trained once and reused.

A stored teacher holds its weights, its validation metrics and its logits on the train and validation
splits, so that KD methods read cached logits instead of running the teacher every step. Training is
guarded by a file lock, so parallel workers asking for the same teacher train it once.

An entry is written whole or not at all (files fsynced, then the folder renamed into place); its ``meta.json``
holds the sha256 of each file, checked on every load. A damaged entry (truncated, overwritten, unreadable) is
rebuilt under the lock, with one warning naming its folder. Folders follow the umask, like the data cache.

A teacher is a function of its id: it is trained on ``TEACHER_THREADS`` CPU threads whatever the caller's thread
count (a CPU reduction's result depends on how many threads split it), and ``meta.json`` carries a checksum of its
own content; the validation scores a record copies are recomputed from the weights on every ``get``.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from benchmark.augment import Augment
from benchmark.engine import Batch, Engine, TensorSplit
from benchmark.nn.arch import ArchSpec, build_model
from benchmark.protocol import TrainRecipe
from datasets.base import stable_hash
from datasets.cache import sha256_file

log = logging.getLogger(__name__)
FILES = ("model.pt", "logits.pt")
TEACHER_THREADS = 1  # every teacher trains on this many CPU threads, so its weights depend on its id only
_UMASK = os.umask(0o022)  # read once at import (os.umask can only be read by setting it) and restored below
os.umask(_UMASK)


@contextmanager
def fixed_threads(n: int) -> Iterator[None]:
    """Run the block on ``n`` torch CPU threads, restoring the caller's count after."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def meta_digest(meta: dict[str, Any]) -> str:
    """sha256 of ``meta`` as canonical JSON, without its own ``meta_sha256`` entry."""
    body = json.loads(json.dumps({k: v for k, v in meta.items() if k != "meta_sha256"}, default=str))
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


class TeacherCacheError(RuntimeError):
    """A teacher store entry that cannot be used even after a rebuild; the message names its folder."""


class _Damaged(Exception):
    """An entry that fails its checks; the message says how (one line)."""


@dataclass
class Teacher:
    """A frozen, trained teacher with its cached logits on the train and validation splits."""

    teacher_id: str
    arch: ArchSpec
    seed: int
    model: nn.Module
    train_logits: Tensor
    val_logits: Tensor
    val_metrics: dict[str, Any]
    train_wall_s: float
    train_macs: float  # compute spent training it (forward + backward MACs); 0 for entries stored before it was kept

    def info(self) -> dict[str, Any]:
        """What a result record says about the teacher it used."""
        return {"id": self.teacher_id, "seed": self.seed, "arch": self.arch.to_dict(),
                "val_macro_f1": self.val_metrics.get("macro_f1"), "train_wall_s": self.train_wall_s,
                "train_macs": self.train_macs}


def freeze(model: nn.Module) -> nn.Module:
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def cross_entropy_objective(label_smoothing: float = 0.0, augment: Augment | None = None):
    """Plain cross-entropy on the model's logits, of an augmented copy of the batch when ``augment`` is given."""

    def objective(model: nn.Module, batch: Batch) -> dict[str, Tensor]:
        x = augment(batch.x) if augment is not None else batch.x
        return {"ce": F.cross_entropy(model(x), batch.y, label_smoothing=label_smoothing)}

    return objective


class TeacherStore:
    """Teachers on disk under ``root/<dataset>/<split>/<teacher id>/``."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    @classmethod
    def in_cache(cls, cache_dir: Path | str) -> TeacherStore:
        """The store inside a cache folder (``--cache-dir``), where the runner keeps it."""
        return cls(Path(cache_dir) / "teachers")

    def teacher_id(self, dataset: str, split: str, data_key: str, arch: ArchSpec, recipe: TrainRecipe,
                   seed: int) -> str:
        return stable_hash({"dataset": dataset, "split": split, "data": data_key, "arch": arch.to_dict(),
                            "recipe": asdict(recipe), "seed": seed})

    def get(self, *, dataset: str, split: str, data_key: str, arch: ArchSpec, recipe: TrainRecipe, seed: int,
            train: TensorSplit, val: TensorSplit, engine: Engine, val_metrics_fn: Any, in_channels: int,
            n_classes: int) -> Teacher:
        """Load the teacher, training and storing it first if it is not in the store."""
        tid = self.teacher_id(dataset, split, data_key, arch, recipe, seed)
        folder = self.folder(dataset, split, tid)
        # training or loading leaves the caller's random state alone: a run does not depend on the store's state
        with torch.random.fork_rng(devices=[]), self._lock(folder):
            args = (folder, tid, arch, seed, in_channels, n_classes, engine.device)
            try:
                return _rescored(self._load(*args), val_metrics_fn, folder)
            except _Damaged as problem:
                if folder.exists():
                    log.warning("teacher cache %s is damaged (%s); rebuilding it", folder, problem)
            with fixed_threads(TEACHER_THREADS):
                self._train_and_store(folder, tid, arch, recipe, seed, train, val, engine, val_metrics_fn,
                                      in_channels, n_classes)
            try:
                return self._load(*args)
            except _Damaged as problem:
                raise TeacherCacheError(f"teacher cache {folder}: unusable right after a rebuild ({problem})") from None

    def folder(self, dataset: str, split: str, teacher_id: str) -> Path:
        """Where the entry ``teacher_id`` of (dataset, split) lives."""
        return self.root / dataset / split / teacher_id

    def load_stored(self, dataset: str, split: str, teacher_id: str, arch: ArchSpec, seed: int, in_channels: int,
                    n_classes: int) -> Teacher:
        """A teacher already in the store, on the CPU, checked against its sha256s; nothing is trained.
        ``TeacherCacheError`` naming its folder if it is missing or damaged."""
        folder = self.folder(dataset, split, teacher_id)
        try:
            return self._load(folder, teacher_id, arch, seed, in_channels, n_classes, torch.device("cpu"))
        except _Damaged as problem:
            raise TeacherCacheError(f"teacher cache {folder}: {problem}") from None

    def _train_and_store(self, folder: Path, tid: str, arch: ArchSpec, recipe: TrainRecipe, seed: int,
                         train: TensorSplit, val: TensorSplit, engine: Engine, val_metrics_fn: Any,
                         in_channels: int, n_classes: int) -> None:
        start = time.perf_counter()
        torch.manual_seed(seed)
        model = build_model(arch, in_channels, n_classes)
        fit = engine.fit(model, cross_entropy_objective(recipe.label_smoothing, recipe.augment), train, recipe,
                         scorer=lambda m: val_metrics_fn(m)["macro_f1"], seed=seed)
        val_metrics = val_metrics_fn(model)
        train_logits = engine.predict(model, train.x)
        val_logits = engine.predict(model, val.x)
        meta = {"id": tid, "arch": arch.to_dict(), "seed": seed, "recipe": asdict(recipe),
                "val_metrics": val_metrics, "best_epoch": fit.best_epoch, "epochs_run": fit.epochs_run,
                "train_macs": fit.macs, "train_wall_s": time.perf_counter() - start}
        tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{tid}."))
        try:
            os.chmod(tmp, 0o777 & ~_UMASK)  # mkdtemp makes 0700; the store follows the umask like the data cache
            torch.save({k: v.cpu() for k, v in model.state_dict().items()}, tmp / "model.pt")
            torch.save({"train": train_logits, "val": val_logits}, tmp / "logits.pt")
            meta["sha256"] = {name: sha256_file(tmp / name) for name in FILES}
            meta["meta_sha256"] = meta_digest(meta)
            (tmp / "meta.json").write_text(json.dumps(meta, indent=2, default=str))
            for name in (*FILES, "meta.json"):
                _fsync(tmp / name)
            _fsync(tmp)
            if folder.exists():
                shutil.rmtree(folder)
            tmp.rename(folder)
            _fsync(folder.parent)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    def _load(self, folder: Path, tid: str, arch: ArchSpec, seed: int, in_channels: int, n_classes: int,
              device: torch.device) -> Teacher:
        """The stored teacher, after checking every file against the sha256 in its meta; _Damaged otherwise."""
        meta = _read_meta(folder)
        model = build_model(arch, in_channels, n_classes)
        try:
            model.load_state_dict(torch.load(folder / "model.pt", map_location="cpu", weights_only=True))
            logits = torch.load(folder / "logits.pt", map_location="cpu", weights_only=True)
            teacher = Teacher(tid, arch, seed, freeze(model.to(device)), logits["train"], logits["val"],
                              meta["val_metrics"], meta["train_wall_s"], meta.get("train_macs", 0.0))
        except Exception as err:
            raise _Damaged(f"cannot load it: {type(err).__name__}") from None
        return teacher

    @contextmanager
    def _lock(self, folder: Path) -> Iterator[None]:
        folder.parent.mkdir(parents=True, exist_ok=True)
        with open(folder.parent / f".{folder.name}.lock", "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


def _rescored(teacher: Teacher, val_metrics_fn: Any, folder: Path) -> Teacher:
    """``teacher`` with its validation metrics recomputed from its weights (not copied from meta.json); a warning
    when the stored score differs."""
    with fixed_threads(TEACHER_THREADS):
        metrics = val_metrics_fn(teacher.model)
    stored = teacher.val_metrics.get("macro_f1") if isinstance(teacher.val_metrics, dict) else None
    if stored != metrics.get("macro_f1"):
        log.warning("teacher cache %s: meta.json says validation macro-F1 %s, its weights score %s; using the "
                    "weights' score", folder, stored, metrics.get("macro_f1"))
    teacher.val_metrics = metrics
    return teacher


def _fsync(path: Path) -> None:
    """Flush a file's (or a folder's entries') data to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _read_meta(folder: Path) -> dict[str, Any]:
    """An entry's meta, once every file matches its recorded sha256; _Damaged (saying what is wrong) otherwise."""
    path = folder / "meta.json"
    if not path.exists():
        raise _Damaged("no meta.json")
    try:
        meta = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise _Damaged(f"meta.json unreadable: {type(err).__name__}") from None
    sums = meta.get("sha256") if isinstance(meta, dict) else None
    if not isinstance(sums, dict) or set(sums) != set(FILES):
        raise _Damaged("meta.json has no file checksums (an older or damaged entry)")
    for name in FILES:
        if not (folder / name).is_file():
            raise _Damaged(f"{name} missing")
        if sha256_file(folder / name) != sums[name]:
            raise _Damaged(f"{name} does not match its sha256")
    if "meta_sha256" in meta and meta["meta_sha256"] != meta_digest(meta):  # entries before it have none
        raise _Damaged("meta.json does not match its checksum (edited?)")
    if not all(k in meta for k in ("val_metrics", "train_wall_s", "train_macs")):
        raise _Damaged("meta.json lacks fields")
    return meta
