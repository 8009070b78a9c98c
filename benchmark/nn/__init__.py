"""Neural building blocks and the architecture specs every method builds models from."""

from benchmark.nn.arch import ARCHITECTURES, ArchSpec, build_model, register_architecture
from benchmark.nn.staged import StagedCNN1d, StagedCNNSpec, StageSpec

__all__ = [
    "ARCHITECTURES", "ArchSpec", "StageSpec", "StagedCNN1d", "StagedCNNSpec", "build_model", "register_architecture",
]
