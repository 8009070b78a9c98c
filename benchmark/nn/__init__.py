"""Neural building blocks and the architecture specs every method builds models from.

Names are resolved on first use (PEP 562) so ``import benchmark.nn.arch`` does not import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "ARCHITECTURES": "benchmark.nn.arch", "ArchSpec": "benchmark.nn.arch", "build_model": "benchmark.nn.arch",
    "register_architecture": "benchmark.nn.arch", "StageSpec": "benchmark.nn.specs",
    "StagedCNNSpec": "benchmark.nn.specs", "StagedCNN1d": "benchmark.nn.staged",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'benchmark.nn' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
