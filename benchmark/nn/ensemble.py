"""An averaged-probability ensemble of networks, deployable like any model (its parameters are the members' sum)."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class ProbabilityEnsemble(nn.Module):
    """Averages the members' softmax outputs; ``forward`` returns log of the mean probability, so its argmax is the
    averaged-probability ensemble's prediction and it can be evaluated like a student's logits."""

    def __init__(self, members: list[nn.Module]) -> None:
        super().__init__()
        if not members:
            raise ValueError("an ensemble needs at least one member")
        self.members = nn.ModuleList(members)

    def forward(self, x: Tensor) -> Tensor:
        return mean_probability_logits([member(x) for member in self.members])


def mean_probability_logits(logits: list[Tensor]) -> Tensor:
    """Log of the mean softmax probability of several models' logits (one model: its logits, unchanged)."""
    if len(logits) == 1:
        return logits[0]
    probs = torch.stack([z.float().softmax(dim=1) for z in logits]).mean(dim=0)
    return probs.clamp_min(1e-12).log()
