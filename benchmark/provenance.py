"""Where a result came from: git commit, package versions, hardware, time."""

from __future__ import annotations

import datetime as dt
import platform
import subprocess
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

import torch

PACKAGES = ("torch", "numpy", "scipy", "pandas", "scikit-learn", "wfdb", "mne", "optuna")
REPO_ROOT = Path(__file__).resolve().parents[1]
CODE_PATHS = ("benchmark", "methods", "datasets", "pyproject.toml")  # what can change a result


@lru_cache(maxsize=1)
def git_commit() -> str:
    """HEAD's hash, with ``+dirty`` when tracked code differs from it; ``unknown`` outside a checkout."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True,
                              check=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", *CODE_PATHS],
                               cwd=REPO_ROOT, capture_output=True, text=True, timeout=10).stdout.strip()
        return head + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def package_versions() -> dict[str, str]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def hardware(device: torch.device) -> dict[str, Any]:
    """The device a run used; ``summary`` is the short label leaderboards show."""
    info: dict[str, Any] = {"device": str(device), "cpu": cpu_model(), "torch_threads": torch.get_num_threads()}
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
        info["summary"] = f"GPU {info['gpu']}"
    else:
        info["summary"] = f"CPU x{info['torch_threads']} thread(s)"
    return info


def provenance(device: torch.device) -> dict[str, Any]:
    return {
        "git_commit": git_commit(),
        "packages": package_versions(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "hardware": hardware(device)["summary"],
        "hardware_detail": hardware(device),
        "created_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }
