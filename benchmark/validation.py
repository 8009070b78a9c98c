"""Up-front checks of command-line values: everything that can be checked before compute is, each failure one
line naming the argument (the CLI exits 2), and nothing is written before they pass."""

from __future__ import annotations

import importlib.util
import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from benchmark.results import NewerSchemaError, read_result, results_path

# torch and the method registry are imported inside the checks that need them: the CLI imports this module at
# start-up, which must stay fast (tests/test_startup.py).


class UsageError(ValueError):
    """A bad command-line value; the message names the option."""


MAX_INDEX = 2**31 - 1  # seeds seed numpy, torch and the ensemble members (seed + 1000 k): well inside 32 bits
PATH_OPTIONS = ("results_dir", "cache_dir", "data_root", "models_dir", "out", "readme")


def check_paths_given(args: Any) -> None:
    """No path option is the empty string (which would mean the current folder without saying so)."""
    for name in PATH_OPTIONS:
        if getattr(args, name, None) == "":
            raise UsageError(f"--{name.replace('_', '-')}: an empty path; give a folder or file name")


def check_at_least_one(value: int, option: str) -> None:
    if value < 1:
        raise UsageError(f"{option}: expected a number >= 1, got {value}")


def _check_size(values: Sequence[int], option: str) -> None:
    if values and max(values) > MAX_INDEX:
        raise UsageError(f"{option}: {max(values)} is too large (at most {MAX_INDEX})")


def parse_index_list(text: str, option: str = "--seeds") -> list[int]:
    """``0,1,2`` or an ascending range ``0-4`` of numbers from 0 to ``MAX_INDEX``, without repeats."""
    form = f"{option}: expected numbers >= 0 as a list like 0,1,2 or an ascending range like 0-4, got {text!r}"
    parts = [p.strip() for p in text.split(",")]
    if "," not in text and "-" in text.strip().lstrip("-"):
        lo_text, _, hi_text = text.strip().partition("-")
        if not (lo_text.strip().isdigit() and hi_text.strip().isdigit()):
            raise UsageError(form)
        lo, hi = int(lo_text), int(hi_text)
        _check_size([lo, hi], option)
        if hi < lo:
            raise UsageError(f"{option}: the range {text!r} runs backwards; write {hi}-{lo}")
        return list(range(lo, hi + 1))
    if not parts or not all(p.isdigit() for p in parts):
        raise UsageError(form)
    values = [int(p) for p in parts]
    _check_size(values, option)
    repeated = sorted({v for v in values if values.count(v) > 1})
    if repeated:
        raise UsageError(f"{option}: {', '.join(map(str, repeated))} given twice in {text!r}")
    return values


def check_workers(workers: int) -> None:
    if workers < 1:
        raise UsageError(f"--workers: expected a number of worker processes >= 1, got {workers}")


def check_device(name: str) -> None:
    """``auto``, ``cpu``, or an available ``cuda``/``cuda:N`` (or ``mps``)."""
    import torch
    if name == "auto":
        return
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise UsageError(f"--device: expected auto, cpu, cuda or cuda:N, got {name!r}") from None
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise UsageError(f"--device {name}: no CUDA device is available here; use --device cpu (or auto)")
        if device.index is not None and device.index >= count:
            raise UsageError(f"--device {name}: this machine has {count} CUDA device(s), cuda:0..cuda:{count - 1}")
    elif device.type == "mps" and not torch.backends.mps.is_available():
        raise UsageError(f"--device {name}: MPS is not available here; use --device cpu (or auto)")
    elif device.type not in ("cpu", "cuda", "mps"):
        raise UsageError(f"--device: expected auto, cpu, cuda or cuda:N, got {name!r}")


def check_executor(kind: str) -> None:
    if kind == "ray" and importlib.util.find_spec("ray") is None:
        raise UsageError("--executor ray: Ray is not installed; pip install -e '.[ray]' (or use --executor local)")


def check_writable_dir(path: Path, option: str) -> None:
    """``path`` is, or can be created as, a folder this process may write in; nothing is created here."""
    path = Path(path)
    probe = path
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if not probe.is_dir():
        where = "is" if probe == path else f"is under {probe}, which is"
        raise UsageError(f"{option} {path}: {where} not a folder")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise UsageError(f"{option} {path}: {probe} is not writable")


def check_overrides(overrides: dict[str, dict[str, Any]], methods: Sequence[str]) -> None:
    """Each ``--set METHOD.OPTION=VALUE`` names a selected method and builds a valid config (names, types,
    ranges)."""
    from methods import METHODS
    from methods.base import ConfigError
    for method, options in overrides.items():
        shown = ", ".join(f"{method}.{k}={json.dumps(v) if not isinstance(v, str) else v}" for k, v in options.items())
        if method not in methods:
            raise UsageError(f"--set {shown}: {method} is not among the selected methods ({', '.join(methods)})")
        try:
            METHODS.get(method).Config.from_dict(options)
        except ConfigError as err:
            raise UsageError(f"--set {shown}: {err}") from None


def check_existing_records(results_dir: Path, keys: Iterable[Any]) -> None:
    """Refuse to run over a record written by a newer KD-NAS Bench (it is never overwritten)."""
    for key in keys:
        path = results_path(results_dir, key)
        if path.exists():
            try:
                read_result(path)
            except NewerSchemaError as err:
                raise UsageError(f"--results-dir: {err}") from None
            except ValueError:
                pass  # an unreadable record is rerun and replaced; that is what it is for


def validate_run(args: Any, jobs: Sequence[Any], overrides: dict[str, dict[str, Any]]) -> None:
    """Everything about ``run``'s arguments that can be checked before any data is read or any file written."""
    from methods import METHODS
    check_workers(args.workers)
    check_at_least_one(args.latency_repeats, "--latency-repeats")
    check_device(args.device)
    check_executor(args.executor)
    check_overrides(overrides, METHODS.select(args.methods))
    check_writable_dir(Path(args.results_dir), "--results-dir")
    for cache_dir in sorted({job.cache_dir for job in jobs}):
        check_writable_dir(Path(cache_dir), "--cache-dir")
    check_existing_records(Path(args.results_dir), (job.key for job in jobs))
