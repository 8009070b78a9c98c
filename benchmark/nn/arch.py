"""ArchSpec: an architecture as data (family + JSON-able params), built through a registry of families."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from benchmark.registry import Registry
from datasets.base import stable_hash

if TYPE_CHECKING:  # torch is imported by the builders, not here: the protocol and `list` stay light
    from torch import nn

Builder = Callable[[dict[str, Any], int, int], "nn.Module"]
ARCHITECTURES: Registry[Builder] = Registry("architecture family")
register_architecture = ARCHITECTURES.register


@dataclass(frozen=True)
class ArchSpec:
    """``family`` names a registered builder; ``params`` is its JSON-able configuration."""

    family: str
    params: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"family": self.family, "params": self.params}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> ArchSpec:
        return cls(family=raw["family"], params=dict(raw.get("params", {})))

    def digest(self) -> str:
        return stable_hash(self.to_dict(), length=12)

    def __hash__(self) -> int:
        return hash(self.digest())


def build_model(arch: ArchSpec, in_channels: int, n_classes: int) -> nn.Module:
    """Instantiate ``arch`` for inputs with ``in_channels`` channels and ``n_classes`` outputs."""
    return ARCHITECTURES.get(arch.family)(arch.params, in_channels, n_classes)


@register_architecture("staged_cnn")
def _build_staged_cnn(params: dict[str, Any], in_channels: int, n_classes: int) -> nn.Module:
    from benchmark.nn.staged import StagedCNN1d, StagedCNNSpec

    return StagedCNN1d(StagedCNNSpec.from_dict(params), in_channels, n_classes)


@register_architecture("prob_ensemble")
def _build_prob_ensemble(params: dict[str, Any], in_channels: int, n_classes: int) -> nn.Module:
    """``{"member": <ArchSpec dict>, "size": M}``: M untrained members of one architecture, probabilities averaged."""
    from benchmark.nn.ensemble import ProbabilityEnsemble

    member = ArchSpec.from_dict(params["member"])
    return ProbabilityEnsemble([build_model(member, in_channels, n_classes) for _ in range(int(params["size"]))])
