"""An ENAS-style LSTM controller over a sequence of categorical decisions, trained with REINFORCE.

Pham et al., "Efficient Neural Architecture Search via Parameter Sharing" (ICML 2018); defaults as in the public
ENAS code: an LSTM of 100 hidden units fed the embedding of the previous decision, logits squashed as
``tanh_constant · tanh(logits / temperature)`` (2.5 and 5.0, carpedm20/ENAS-pytorch), Adam lr 3.5e-4 (ENAS-pytorch),
a moving-average baseline with decay 0.99 and an entropy bonus 1e-4 added to the reward (melodyguan/enas scripts).
The baseline starts at the first reward (ENAS-pytorch, NAS-Bench-201's ENAS), so the first update is neutral.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn


@dataclass
class Sample:
    """One sampled sequence: the chosen indices, their summed log-probability and entropy (with gradients)."""

    choices: list[int]
    log_prob: Tensor
    entropy: Tensor


class LSTMController(nn.Module):
    """Samples ``n_decisions`` choices among ``n_options`` each, one LSTM step per decision."""

    def __init__(self, n_decisions: int, n_options: int, hidden: int = 100, tanh_constant: float = 2.5,
                 temperature: float = 5.0) -> None:
        super().__init__()
        self.n_decisions, self.n_options, self.hidden = n_decisions, n_options, hidden
        self.tanh_constant, self.temperature = tanh_constant, temperature
        self.embed = nn.Embedding(n_options + 1, hidden)  # the last row is the start token
        self.lstm = nn.LSTMCell(hidden, hidden)
        self.heads = nn.ModuleList(nn.Linear(hidden, n_options) for _ in range(n_decisions))

    def _logits(self, h: Tensor, decision: int) -> Tensor:
        return self.tanh_constant * torch.tanh(self.heads[decision](h) / self.temperature)

    def sample(self, generator: torch.Generator | None = None, greedy: bool = False) -> Sample:
        """Draw one sequence (``greedy``: the most probable choice at every step)."""
        h = c = torch.zeros(1, self.hidden)
        inp = self.embed(torch.tensor([self.n_options]))
        choices, log_prob, entropy = [], torch.zeros(()), torch.zeros(())
        for decision in range(self.n_decisions):
            h, c = self.lstm(inp, (h, c))
            log_p = torch.log_softmax(self._logits(h, decision), dim=1)[0]
            p = log_p.exp()
            choice = int(p.argmax()) if greedy else int(torch.multinomial(p.detach(), 1, generator=generator))
            choices.append(choice)
            log_prob = log_prob + log_p[choice]
            entropy = entropy - (p * log_p).sum()
            inp = self.embed(torch.tensor([choice]))
        return Sample(choices, log_prob, entropy)

    @torch.no_grad()
    def marginals(self, prefix: list[int] | None = None) -> list[list[float]]:
        """Per decision, the choice probabilities along the greedy path (or along ``prefix``): for logging."""
        h = c = torch.zeros(1, self.hidden)
        inp = self.embed(torch.tensor([self.n_options]))
        out = []
        for decision in range(self.n_decisions):
            h, c = self.lstm(inp, (h, c))
            p = torch.softmax(self._logits(h, decision), dim=1)[0]
            out.append([round(float(v), 4) for v in p])
            choice = prefix[decision] if prefix is not None else int(p.argmax())
            inp = self.embed(torch.tensor([choice]))
        return out


class Reinforce:
    """REINFORCE with a moving-average baseline: loss = -(R - b)·log π(a), R = score + entropy_weight·H(π)."""

    def __init__(self, controller: LSTMController, lr: float = 3.5e-4, baseline_decay: float = 0.99,
                 entropy_weight: float = 1e-4) -> None:
        self.controller = controller
        self.optimizer = torch.optim.Adam(controller.parameters(), lr=lr)
        self.baseline_decay, self.entropy_weight = baseline_decay, entropy_weight
        self.baseline: float | None = None

    def update(self, sample: Sample, score: float) -> dict[str, float]:
        """One policy-gradient step for ``sample`` with selection score ``score``; returns reward, baseline, loss."""
        reward = score + self.entropy_weight * float(sample.entropy.detach())
        if self.baseline is None:
            self.baseline = reward
        else:
            self.baseline = self.baseline_decay * self.baseline + (1 - self.baseline_decay) * reward
        loss = -(reward - self.baseline) * sample.log_prob
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return {"reward": reward, "baseline": self.baseline, "loss": float(loss.detach())}
