"""1-D layers that also run on a "planar" input: (N, C, L) viewed as a channels-last 2-D map (N, C, 1, L).

Why: on the CPU, oneDNN's channels-last (NHWC) kernels make a whole network of ``(1, k)`` convolutions, batch norms
and pointwise convolutions train much faster than the same network in PyTorch's (N, C, L) layout; converting per
layer (what :class:`~benchmark.nn.depthwise.DepthwiseConv1d` does on its own) pays a copy in and out of every
depthwise conv. Measured on this project's 2-core CPU, torch 2.13, 1 thread, batch 128, one training step
(forward + backward + AdamW), side by side in one process (``tests/benchmarks/test_speed.py``): the default ECG
student 118 ms with plain ``nn.Conv1d``, 114 ms with per-layer conversion, 64 ms planar; the 364k-parameter
residual teacher 793, 785 and 651 ms.

The layers here subclass ``nn.Conv1d`` / ``nn.BatchNorm1d`` and keep their parameters and buffers exactly (a
(C_out, C_in/g, k) conv weight), so state dicts, parameter counts and MAC counts are those of the 1-D layers; given
a 3-D input they compute exactly what their parents do. A network opts in by converting its input once with
:func:`to_planar` and its outputs back with :func:`from_planar` (``StagedCNN1d`` does, on the CPU).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def to_planar(x: Tensor) -> Tensor:
    """(N, C, L) -> (N, C, 1, L) in channels-last memory."""
    return x.unsqueeze(2).contiguous(memory_format=torch.channels_last)


def from_planar(x: Tensor) -> Tensor:
    """(N, C, 1, L) -> (N, C, L), a view: no copy."""
    return x.squeeze(2)


def is_planar(x: Tensor) -> bool:
    return x.dim() == 4


class Conv1d(nn.Conv1d):
    """``nn.Conv1d`` that, given a planar (N, C, 1, L) input, runs as the equivalent ``(1, k)`` ``Conv2d``."""

    def forward(self, x: Tensor) -> Tensor:
        if not is_planar(x):
            return super().forward(x)
        if self.padding_mode != "zeros" or isinstance(self.padding, str):
            raise ValueError("planar Conv1d supports integer zero padding only")
        return F.conv2d(x, self.weight.unsqueeze(2), self.bias, (1, self.stride[0]), (0, self.padding[0]),
                        (1, self.dilation[0]), self.groups)


class BatchNorm1d(nn.BatchNorm1d):
    """``nn.BatchNorm1d`` that also accepts a planar (N, C, 1, L) input (statistics per channel, as for (N, C, L))."""

    def _check_input_dim(self, x: Tensor) -> None:
        if x.dim() not in (2, 3, 4):
            raise ValueError(f"expected 2D, 3D or planar 4D input (got {x.dim()}D input)")


class MaxPool1d(nn.MaxPool1d):
    """``nn.MaxPool1d`` that, given a planar (N, C, 1, L) input, runs as the equivalent ``(1, k)`` ``MaxPool2d``."""

    def forward(self, x: Tensor) -> Tensor:
        if not is_planar(x):
            return super().forward(x)
        if self.return_indices:
            raise ValueError("planar MaxPool1d does not return indices")
        return F.max_pool2d(x, (1, self.kernel_size), (1, self.stride), (0, self.padding), (1, self.dilation),
                            ceil_mode=self.ceil_mode)


class AvgPool1d(nn.AvgPool1d):
    """``nn.AvgPool1d`` that, given a planar (N, C, 1, L) input, runs as the equivalent ``(1, k)`` ``AvgPool2d``."""

    def forward(self, x: Tensor) -> Tensor:
        if not is_planar(x):
            return super().forward(x)
        return F.avg_pool2d(x, (1, self.kernel_size[0]), (1, self.stride[0]), (0, self.padding[0]),
                            ceil_mode=self.ceil_mode, count_include_pad=self.count_include_pad)


def pool_over_length(x: Tensor) -> Tensor:
    """Global average over the length: (N, C, L) or planar (N, C, 1, L) -> (N, C)."""
    return x.mean(dim=(-2, -1)) if is_planar(x) else x.mean(dim=-1)


def planar_input(x: Tensor, enabled: bool = True) -> Tensor:
    """A network's input made planar on the CPU (where the layout is measured faster), left as it is elsewhere."""
    return to_planar(x) if enabled and x.device.type == "cpu" and x.dim() == 3 else x
