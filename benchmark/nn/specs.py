"""The staged CNN's spec dataclasses, free of torch so the protocol (and `list`) import them cheaply."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class StageSpec:
    """One stage: ``depth`` blocks of ``block`` type, the first with ``stride``."""

    channels: int
    depth: int = 1
    stride: int = 2
    kernel: int = 5
    block: str = "sep"
    expand: float = 1.0
    se: bool = False


@dataclass(frozen=True)
class StagedCNNSpec:
    """A stem (strided conv) then stages then global average pooling and a linear classifier."""

    stem_channels: int = 16
    stem_kernel: int = 7
    stem_stride: int = 2
    stages: tuple[StageSpec, ...] = field(default_factory=tuple)
    dropout: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> StagedCNNSpec:
        stages = tuple(StageSpec(**s) for s in raw.get("stages", ()))
        return cls(**{**raw, "stages": stages})
