"""The staged 1-D CNN used for teachers and default students; exposes per-stage features."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from benchmark.nn.blocks import BLOCKS, conv_bn_act
from benchmark.nn.specs import StagedCNNSpec, StageSpec

__all__ = ["StageSpec", "StagedCNN1d", "StagedCNNSpec", "stage_shapes"]


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
