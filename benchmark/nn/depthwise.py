"""Depthwise 1-D convolution with a fast CPU backward: an ``nn.Conv1d`` computed as a channels-last ``Conv2d``.

PyTorch's CPU kernel for ``Conv1d(C, C, k, groups=C)`` spends ~3-4x its forward time in the backward pass. The
same convolution as a ``(1, k)`` depthwise ``Conv2d`` on a ``channels_last`` input runs through oneDNN's NHWC
depthwise kernels, whose backward is ~1.3-2x faster (figures in ``tests/benchmarks/test_speed.py``).

:class:`DepthwiseConv1d` subclasses ``nn.Conv1d`` and keeps its parameters untouched (``weight`` (C, 1, k),
optional ``bias`` (C,)), so state dicts load both ways between it and a plain ``nn.Conv1d(groups=C)``, and
parameter and MAC counters that recognise ``nn.Conv1d`` count it unchanged. Only ``forward`` differs; its output
is an ordinary contiguous (N, C, L) tensor. On other devices than the CPU it runs ``nn.Conv1d.forward``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from benchmark.nn import planar


class DepthwiseConv1d(planar.Conv1d):
    """``nn.Conv1d(channels, channels, kernel_size, groups=channels)`` with a faster CPU backward.

    Takes ``nn.Conv1d``'s arguments but ``groups`` (always ``channels``) and ``padding_mode`` (always zeros);
    ``out_channels`` defaults to ``channels`` and may be any multiple of it (depth multiplier); padding is an int.
    """

    def __init__(self, channels: int, out_channels: int | None = None, kernel_size: int = 3, stride: int = 1,
                 padding: int = 0, dilation: int = 1, bias: bool = False, device: torch.device | str | None = None,
                 dtype: torch.dtype | None = None) -> None:
        out = channels if out_channels is None else out_channels
        if out % channels or not isinstance(padding, int):
            raise ValueError(f"DepthwiseConv1d: out_channels ({out}) must be a multiple of channels ({channels}) "
                             f"and padding an int (got {padding!r})")
        super().__init__(channels, out, kernel_size, stride=stride, padding=padding, dilation=dilation,
                         groups=channels, bias=bias, device=device, dtype=dtype)

    def forward(self, x: Tensor) -> Tensor:
        if planar.is_planar(x) or x.device.type != "cpu":  # planar: the network is channels-last already;
            return super().forward(x)  # not CPU: the stock kernel (measured on CPU only; cuDNN's is not slow)
        batched = x.dim() == 3
        x4 = (x if batched else x.unsqueeze(0)).unsqueeze(2).contiguous(memory_format=torch.channels_last)
        out = F.conv2d(x4, self.weight.unsqueeze(2), self.bias, (1, self.stride[0]), (0, self.padding[0]),
                       (1, self.dilation[0]), self.groups)
        out = out.squeeze(2).contiguous()
        return out if batched else out.squeeze(0)


def plain_layers(module: nn.Module) -> nn.Module:
    """``module`` with stock layers only, in place: every :class:`DepthwiseConv1d` and planar ``Conv1d`` becomes an
    equal ``nn.Conv1d``, every planar ``BatchNorm1d`` an ``nn.BatchNorm1d``, and networks that run planar
    (``planar`` attribute) run in (N, C, L). The reference implementation, for tests and the before/after benchmark;
    parameters and buffers are shared, not copied."""
    for name, child in module.named_children():
        if isinstance(child, planar.Conv1d):
            plain = nn.Conv1d(child.in_channels, child.out_channels, child.kernel_size[0], child.stride[0],
                              child.padding[0], child.dilation[0], child.groups, child.bias is not None,
                              device=child.weight.device, dtype=child.weight.dtype)
            plain.weight, plain.bias = child.weight, child.bias
            setattr(module, name, plain)
        elif isinstance(child, planar.BatchNorm1d):
            norm = nn.BatchNorm1d(child.num_features, child.eps, child.momentum, child.affine,
                                  child.track_running_stats)
            norm.weight, norm.bias = child.weight, child.bias
            norm.running_mean, norm.running_var = child.running_mean, child.running_var
            norm.num_batches_tracked = child.num_batches_tracked
            setattr(module, name, norm)
        else:
            plain_layers(child)
    if hasattr(module, "planar"):
        module.planar = False
    return module
