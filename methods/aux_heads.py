"""Auxiliary classifiers on intermediate features (HSAKD / MPKD-NAS "multi-phase" heads).

A head is a small encoder + classifier over one phase's features (N, C, L): a 3-tap convolution to a fixed
width, BN, ReLU, global average pooling and a linear layer. The input convolution is sliceable, so one head
serves every sub-network of a weight-sharing supernet (narrower features use its leading input channels).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from methods.spaces.transformer1d import SliceConv1d


class AuxHead(nn.Module):
    def __init__(self, in_channels: int, n_classes: int, width: int = 32) -> None:
        super().__init__()
        self.encoder = SliceConv1d(in_channels, width, 3, padding=1, bias=False)
        self.post = nn.Sequential(nn.BatchNorm1d(width), nn.ReLU(inplace=True))
        self.classifier = nn.Linear(width, n_classes)

    def forward(self, features: Tensor) -> Tensor:
        return self.classifier(self.post(self.encoder(features)).mean(dim=-1))


class AuxHeads(nn.ModuleList):
    """One head per phase; ``forward`` maps a list of phase features to a list of logits."""

    def __init__(self, channels: Sequence[int], n_classes: int, width: int = 32) -> None:
        super().__init__(AuxHead(c, n_classes, width) for c in channels)

    def forward(self, features: Sequence[Tensor]) -> list[Tensor]:  # type: ignore[override]
        return [head(f) for head, f in zip(self, features, strict=True)]


def heads_macs(channels: Sequence[int], lengths: Sequence[int], n_classes: int, width: int = 32) -> int:
    """Forward MACs of ``AuxHeads`` on phases of ``channels`` x ``lengths`` (what ``count_macs`` counts: the 3-tap
    convolution and the classifier of each head)."""
    return sum(width * length * c * 3 + n_classes * width for c, length in zip(channels, lengths, strict=True))


def phase_features(model: nn.Module, x: Tensor, n_phases: int = 3) -> tuple[Tensor, list[Tensor]]:
    """Main logits and the last ``n_phases`` stage outputs of a model exposing ``forward_features``."""
    logits, features = model.forward_features(x)  # type: ignore[operator]
    if len(features) < n_phases:
        raise ValueError(f"{type(model).__name__} exposes {len(features)} stages; {n_phases} phases are needed")
    return logits, list(features[-n_phases:])


@torch.no_grad()
def feature_channels(model: nn.Module, input_shape: tuple[int, int], n_phases: int = 3) -> list[int]:
    """Channel count of each phase's features for one input of ``input_shape``."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    _, feats = phase_features(model, torch.zeros(1, *input_shape, device=device), n_phases)
    model.train(was_training)
    return [f.shape[1] for f in feats]


@torch.no_grad()
def feature_lengths(model: nn.Module, input_shape: tuple[int, int], n_phases: int = 3) -> list[int]:
    """Length (positions or tokens) of each phase's features for one input of ``input_shape``."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    _, feats = phase_features(model, torch.zeros(1, *input_shape, device=device), n_phases)
    model.train(was_training)
    return [f.shape[-1] for f in feats]
