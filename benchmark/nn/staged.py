"""The staged 1-D CNN used for teachers and default students; exposes per-stage features."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from benchmark.nn.blocks import BLOCKS, conv_bn_act


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


class StagedCNN1d(nn.Module):
    """Stem -> stages -> pool -> linear. ``forward_features`` returns logits and each stage's output."""

    def __init__(self, spec: StagedCNNSpec, in_channels: int, n_classes: int) -> None:
        super().__init__()
        for stage in spec.stages:
            if stage.block not in BLOCKS:
                raise ValueError(f"unknown block {stage.block!r}; choose from {', '.join(BLOCKS)}")
        self.spec = spec
        self.stem = conv_bn_act(in_channels, spec.stem_channels, spec.stem_kernel, spec.stem_stride)
        stages: list[nn.Module] = []
        c_in = spec.stem_channels
        for stage in spec.stages:
            block = BLOCKS[stage.block]
            layers = [
                block(c_in if i == 0 else stage.channels, stage.channels, stage.kernel,
                      stage.stride if i == 0 else 1, expand=stage.expand, se=stage.se)
                for i in range(stage.depth)
            ]
            stages.append(nn.Sequential(*layers))
            c_in = stage.channels
        self.stages = nn.ModuleList(stages)
        self.feature_channels = [s.channels for s in spec.stages]
        self.dropout = nn.Dropout(spec.dropout) if spec.dropout > 0 else nn.Identity()
        self.classifier = nn.Linear(c_in, n_classes)

    def forward_features(self, x: Tensor) -> tuple[Tensor, list[Tensor]]:
        features = []
        out = self.stem(x)
        for stage in self.stages:
            out = stage(out)
            features.append(out)
        return self.classifier(self.dropout(out.mean(dim=-1))), features

    def forward_stages(self, x: Tensor) -> list[Tensor]:
        """The stem's output, then every stage's output (each stage's input and target, for block-wise KD)."""
        outputs = [self.stem(x)]
        for stage in self.stages:
            outputs.append(stage(outputs[-1]))
        return outputs

    def forward(self, x: Tensor) -> Tensor:
        out = self.stem(x)
        for stage in self.stages:
            out = stage(out)
        return self.classifier(self.dropout(out.mean(dim=-1)))


@torch.no_grad()
def stage_shapes(model: StagedCNN1d, input_shape: tuple[int, int]) -> list[tuple[int, int]]:
    """(channels, length) of every stage output for one input of ``input_shape``."""
    was_training = model.training
    model.eval()
    _, feats = model.forward_features(torch.zeros(1, *input_shape))
    model.train(was_training)
    return [tuple(f.shape[1:]) for f in feats]  # type: ignore[misc]
