"""The staged 1-D CNN used for teachers and default students; exposes per-stage features."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from benchmark.nn.blocks import BLOCKS, conv_bn_act
from benchmark.nn.planar import from_planar, is_planar, planar_input, pool_over_length
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
        self.planar = True  # run channels-last 2-D on the CPU (same parameters and results; see ``_input``)

    def _input(self, x: Tensor) -> Tensor:
        """The stem's input: planar (channels-last 2-D, see ``benchmark.nn.planar``) on the CPU, where it trains
        ~1.2-1.8x faster; (N, C, L) elsewhere and when ``planar`` is off."""
        return planar_input(x, self.planar)

    @staticmethod
    def _output(out: Tensor) -> Tensor:
        return from_planar(out) if is_planar(out) else out

    def _head(self, out: Tensor) -> Tensor:
        return self.classifier(self.dropout(pool_over_length(out)))

    def forward_features(self, x: Tensor) -> tuple[Tensor, list[Tensor]]:
        features = []
        out = self.stem(self._input(x))
        for stage in self.stages:
            out = stage(out)
            features.append(self._output(out))
        return self._head(out), features

    def forward_stages(self, x: Tensor) -> list[Tensor]:
        """The stem's output, then every stage's output (each stage's input and target, for block-wise KD)."""
        outputs = [self.stem(self._input(x))]
        for stage in self.stages:
            outputs.append(stage(outputs[-1]))
        return [self._output(out) for out in outputs]

    def forward(self, x: Tensor) -> Tensor:
        out = self.stem(self._input(x))
        for stage in self.stages:
            out = stage(out)
        return self._head(out)


@torch.no_grad()
def stage_shapes(model: StagedCNN1d, input_shape: tuple[int, int]) -> list[tuple[int, int]]:
    """(channels, length) of every stage output for one input of ``input_shape``."""
    was_training = model.training
    model.eval()
    _, feats = model.forward_features(torch.zeros(1, *input_shape))
    model.train(was_training)
    return [tuple(f.shape[1:]) for f in feats]  # type: ignore[misc]
