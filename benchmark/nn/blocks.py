"""1-D building blocks: conv-BN-act, residual, depthwise-separable and MBConv blocks with optional SE."""

from __future__ import annotations

from torch import Tensor, nn

from benchmark.nn import planar
from benchmark.nn.depthwise import DepthwiseConv1d


def conv_bn_act(c_in: int, c_out: int, kernel: int, stride: int = 1, groups: int = 1,
                act: bool = True) -> nn.Sequential:
    """Conv (no bias) -> BN [-> ReLU]; a depthwise conv (``groups == c_in == c_out``) is a fast DepthwiseConv1d.
    Every layer also runs on a planar input (``benchmark.nn.planar``)."""
    layers: list[nn.Module] = [
        conv1d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, groups=groups),
        planar.BatchNorm1d(c_out),
    ]
    if act:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


def conv1d(c_in: int, c_out: int, kernel: int, stride: int = 1, padding: int = 0, groups: int = 1,
           bias: bool = False) -> nn.Conv1d:
    """An ``nn.Conv1d`` that also runs planar, or its fast equivalent :class:`DepthwiseConv1d` when it is depthwise
    (the same state dict either way)."""
    if groups > 1 and groups == c_in == c_out:
        return DepthwiseConv1d(c_in, c_out, kernel, stride=stride, padding=padding, bias=bias)
    return planar.Conv1d(c_in, c_out, kernel, stride=stride, padding=padding, groups=groups, bias=bias)


class SqueezeExcite(nn.Module):
    """Channel attention (Hu et al. 2018) on (N, C, L) features."""

    def __init__(self, channels: int, ratio: float = 0.25) -> None:
        super().__init__()
        hidden = max(4, int(channels * ratio))
        self.fc = nn.Sequential(conv1d(channels, hidden, 1, bias=True), nn.ReLU(inplace=True),
                                conv1d(hidden, channels, 1, bias=True))

    def forward(self, x: Tensor) -> Tensor:
        return x * self.fc(x.mean(dim=-1, keepdim=True)).sigmoid()


class _Shortcut(nn.Module):
    """Identity, or a strided 1x1 conv + BN when the shape changes."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.proj = None if (c_in == c_out and stride == 1) else conv_bn_act(c_in, c_out, 1, stride, act=False)

    def forward(self, x: Tensor) -> Tensor:
        return x if self.proj is None else self.proj(x)


class ResBlock(nn.Module):
    """Basic residual block (He et al. 2016) in 1-D: two k-convs with a shortcut."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, expand: float = 1.0, se: bool = False) -> None:
        super().__init__()
        self.body = nn.Sequential(
            conv_bn_act(c_in, c_out, kernel, stride),
            conv_bn_act(c_out, c_out, kernel, act=False),
            SqueezeExcite(c_out) if se else nn.Identity(),
        )
        self.shortcut = _Shortcut(c_in, c_out, stride)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.body(x) + self.shortcut(x))


class SepBlock(nn.Module):
    """Depthwise-separable block: depthwise k-conv, pointwise conv; residual when shapes match."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, expand: float = 1.0, se: bool = False) -> None:
        super().__init__()
        self.body = nn.Sequential(
            conv_bn_act(c_in, c_in, kernel, stride, groups=c_in),
            SqueezeExcite(c_in) if se else nn.Identity(),
            conv_bn_act(c_in, c_out, 1, act=False),
        )
        self.residual = c_in == c_out and stride == 1

    def forward(self, x: Tensor) -> Tensor:
        out = self.body(x)
        return out + x if self.residual else out


class MBConvBlock(nn.Module):
    """Inverted residual (MobileNetV2/EfficientNet) in 1-D: expand, depthwise, [SE], project."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, expand: float = 4.0, se: bool = False) -> None:
        super().__init__()
        hidden = max(1, round(c_in * expand))
        layers: list[nn.Module] = [] if hidden == c_in else [conv_bn_act(c_in, hidden, 1)]
        layers += [
            conv_bn_act(hidden, hidden, kernel, stride, groups=hidden),
            SqueezeExcite(hidden) if se else nn.Identity(),
            conv_bn_act(hidden, c_out, 1, act=False),
        ]
        self.body = nn.Sequential(*layers)
        self.residual = c_in == c_out and stride == 1

    def forward(self, x: Tensor) -> Tensor:
        out = self.body(x)
        return out + x if self.residual else out


BLOCKS: dict[str, type[nn.Module]] = {"res": ResBlock, "sep": SepBlock, "mbconv": MBConvBlock}
