"""Training-time augmentation of 1-D biosignal windows (used by teacher recipes; students train un-augmented).

Every transform acts on the first ``signal_channels`` channels only: the other channels are per-beat features held
constant along time (MIT-BIH's three RR-interval channels), which no signal distortion should touch. Random draws
come from torch's global generator, which the engine seeds per run, so an augmented run is reproducible.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torch import Tensor

Augment = Callable[["Tensor"], "Tensor"]  # an augmented copy of a batch (N, C, L): SignalAugment, AugmentChain, ...


@dataclass(frozen=True)
class SignalAugment:
    """Per-sample random amplitude scaling, linear baseline drift, Gaussian noise and a small circular time shift.

    Values are in the units of the (robustly standardised) signal: ``noise=0.05`` adds noise with 5 % of a typical
    beat's scale. ``shift`` is in samples (MIT-BIH at 180 Hz: 4 samples = 22 ms, well inside the beat window).
    """

    scale: float = 0.15  # amplitude x U(1 - scale, 1 + scale)
    drift: float = 0.2  # + U(-drift, drift) x a ramp from -1 to 1 over the window
    noise: float = 0.05  # + N(0, noise^2)
    shift: int = 4  # circular shift by U{-shift..shift} samples
    signal_channels: int = 1

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def __call__(self, x: Tensor) -> Tensor:
        """An augmented copy of the batch ``x`` (N, C, L); ``x`` itself is left untouched."""
        import torch  # here, not at the top: the protocol (and with it `--help`, `list`, `show`) imports this module

        n, _, length = x.shape
        k = self.signal_channels
        signal = x[:, :k]
        scale = 1.0 + self.scale * (2 * torch.rand(n, 1, 1, device=x.device) - 1)
        ramp = torch.linspace(-1.0, 1.0, length, device=x.device).view(1, 1, length)
        drift = self.drift * (2 * torch.rand(n, 1, 1, device=x.device) - 1) * ramp
        signal = signal * scale + drift + self.noise * torch.randn_like(signal)
        if self.shift:
            offsets = torch.randint(-self.shift, self.shift + 1, (n, 1, 1), device=x.device)
            index = (torch.arange(length, device=x.device).view(1, 1, length) - offsets) % length
            signal = torch.gather(signal, 2, index.expand(n, k, length))
        return torch.cat([signal, x[:, k:]], dim=1)


@dataclass(frozen=True)
class SignalDropout:
    """Modality dropout (Neverova et al., "ModDrop", 2015): with probability ``p`` a sample's signal channels are
    zeroed (the standardised signal's baseline), so the network sees only its per-beat feature channels (MIT-BIH's RR
    intervals) and must classify some beats from the rhythm alone rather than from a patient's beat shape."""

    p: float = 0.3
    signal_channels: int = 1

    def to_dict(self) -> dict[str, Any]:
        return {"signal_dropout": asdict(self)}

    def __call__(self, x: Tensor) -> Tensor:
        import torch

        keep = (torch.rand(x.shape[0], 1, 1, device=x.device) >= self.p).to(x.dtype)
        k = self.signal_channels
        return torch.cat([x[:, :k] * keep, x[:, k:]], dim=1)


@dataclass(frozen=True)
class AugmentChain:
    """Augmentations applied in order (e.g. ``SignalAugment`` then ``SignalDropout``)."""

    steps: tuple[Any, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"chain": [step.to_dict() for step in self.steps]}

    def __call__(self, x: Tensor) -> Tensor:
        for step in self.steps:
            x = step(x)
        return x
