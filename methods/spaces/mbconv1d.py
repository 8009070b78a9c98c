"""A 1-D MBConv search space (DNA's): candidate ops, a single-path block supernet and the deployed network.

Candidate ops follow DNA's official ``PRIMITIVES`` (``searching/dna/student_supernet.py``): inverted residuals
(MobileNetV2/EfficientNet) with expansion {3, 6} x depthwise kernel {3, 5, 7}, squeeze-excite 0.25 and swish
(SiLU), here with 1-D convolutions. SE reduces to ``int(0.25 * c_in)`` channels with a swish between its two
1x1 convs, as timm's ``InvertedResidual`` (``se_reduce_mid=False``) the official code builds on. A ``skip`` op
(identity) is offered on every layer but a block's first, so a block's depth is searched too.

A network of the space: a fixed stem (one strided conv-BN-swish), then blocks whose first layer changes width and
stride, then global average pooling and a linear classifier. Every op module is built by ``make_op``, both in the
supernet and in the deployed network, so a per-op parameter table built from instantiated ops is exact.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from functools import cache
from typing import Any

import torch
from torch import Tensor, nn

from benchmark.metrics import count_macs, count_params
from benchmark.nn.arch import ArchSpec, register_architecture
from benchmark.nn.blocks import conv_bn_act

FAMILY = "mbconv1d"
SKIP = "skip"
_MB = re.compile(r"^mb(\d+)_k(\d+)$")

Path = tuple[str, ...]  # one op name per layer of a block


def op_names(expansions: tuple[int, ...], kernels: tuple[int, ...]) -> tuple[str, ...]:
    """MBConv op names, e.g. ``mb6_k5`` (expansion 6, kernel 5), in the official PRIMITIVES order (6 first)."""
    bad = [k for k in kernels if k < 1 or k % 2 == 0]
    if bad:
        raise ValueError(f"kernels must be odd and positive (same-length padding), got {bad}")
    return tuple(f"mb{e}_k{k}" for e in sorted(expansions, reverse=True) for k in sorted(kernels))


class SqueezeExcite1d(nn.Module):
    """SE on (N, C, L): global mean, 1x1 reduce, swish, 1x1 expand, sigmoid gate (timm ``SqueezeExcite``)."""

    def __init__(self, channels: int, reduced: int) -> None:
        super().__init__()
        self.fc = nn.Sequential(nn.Conv1d(channels, reduced, 1), nn.SiLU(), nn.Conv1d(reduced, channels, 1))

    def forward(self, x: Tensor) -> Tensor:
        return x * self.fc(x.mean(dim=-1, keepdim=True)).sigmoid()


class MBConv1d(nn.Module):
    """Inverted residual: 1x1 expand-BN-swish, depthwise k-conv-BN-swish, SE, 1x1 project-BN; residual when the
    shape is kept."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, expand: int, se_ratio: float = 0.25) -> None:
        super().__init__()
        hidden = c_in * expand
        self.body = nn.Sequential(
            conv_bn_act(c_in, hidden, 1, act=False), nn.SiLU(),
            conv_bn_act(hidden, hidden, kernel, stride, groups=hidden, act=False), nn.SiLU(),
            SqueezeExcite1d(hidden, max(1, int(c_in * se_ratio))),
            conv_bn_act(hidden, c_out, 1, act=False),
        )
        self.residual = c_in == c_out and stride == 1

    def forward(self, x: Tensor) -> Tensor:
        out = self.body(x)
        return out + x if self.residual else out


def make_op(name: str, c_in: int, c_out: int, stride: int) -> nn.Module:
    """The op ``name`` (``mb<e>_k<k>`` or ``skip``) from ``c_in`` to ``c_out`` channels at ``stride``."""
    if name == SKIP:
        if c_in != c_out or stride != 1:
            raise ValueError(f"skip needs c_in == c_out and stride 1, got {c_in}->{c_out} stride {stride}")
        return nn.Identity()
    match = _MB.match(name)
    if not match:
        raise ValueError(f"unknown op {name!r}; expected 'mb<expansion>_k<kernel>' or 'skip'")
    return MBConv1d(c_in, c_out, int(match.group(2)), stride, int(match.group(1)))


@dataclass(frozen=True)
class BlockSpec:
    """One searchable block: output channels, stride of its first layer, number of searchable layers."""

    channels: int
    stride: int
    layers: int


@dataclass(frozen=True)
class MBConvSpace:
    """The stem (``stem_channels``, kernel, stride), the blocks, and the MBConv ops every layer chooses from
    (layers after a block's first may also be ``skip``)."""

    stem_channels: int
    stem_kernel: int
    stem_stride: int
    blocks: tuple[BlockSpec, ...]
    ops: tuple[str, ...]

    def layer_ops(self, layer: int) -> tuple[str, ...]:
        return self.ops if layer == 0 else (*self.ops, SKIP)

    def block_in(self, block: int) -> int:
        return self.stem_channels if block == 0 else self.blocks[block - 1].channels

    def layer_io(self, block: int, layer: int) -> tuple[int, int, int]:
        """(c_in, c_out, stride) of ``layer`` of ``block``."""
        spec = self.blocks[block]
        return (self.block_in(block), spec.channels, spec.stride) if layer == 0 else (spec.channels, spec.channels, 1)

    def block_paths(self, block: int) -> list[Path]:
        """Every single path through ``block`` (one op per layer), in a fixed order."""
        return list(itertools.product(*(self.layer_ops(j) for j in range(self.blocks[block].layers))))


def to_arch(space: MBConvSpace, paths: list[Path]) -> ArchSpec:
    """The deployed network with ``paths[i]`` in block i (``skip`` layers dropped)."""
    return ArchSpec(FAMILY, {
        "stem": [space.stem_channels, space.stem_kernel, space.stem_stride],
        "blocks": [{"channels": b.channels, "stride": b.stride, "ops": [op for op in path if op != SKIP]}
                   for b, path in zip(space.blocks, paths, strict=True)],
    })


class BlockSupernet(nn.Module):
    """Every candidate op of every layer of one block; ``set_path`` chooses the single path ``forward`` runs."""

    def __init__(self, space: MBConvSpace, block: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList()
        for j in range(space.blocks[block].layers):
            c_in, c_out, stride = space.layer_io(block, j)
            self.layers.append(nn.ModuleDict({op: make_op(op, c_in, c_out, stride) for op in space.layer_ops(j)}))
        self.path: Path = tuple(space.ops[0] for _ in self.layers)

    def set_path(self, path: Path) -> None:
        if len(path) != len(self.layers):
            raise ValueError(f"a path of this block has {len(self.layers)} ops, got {len(path)}")
        self.path = tuple(path)

    def forward(self, x: Tensor) -> Tensor:
        for layer, op in zip(self.layers, self.path, strict=True):
            x = layer[op](x)
        return x


class MBConvNet1d(nn.Module):
    """The deployed network: stem -> chosen ops -> global average pooling -> linear."""

    def __init__(self, params: dict[str, Any], in_channels: int, n_classes: int) -> None:
        super().__init__()
        stem_channels, kernel, stride = params["stem"]
        self.stem = nn.Sequential(conv_bn_act(in_channels, stem_channels, kernel, stride, act=False), nn.SiLU())
        layers: list[nn.Module] = []
        c_in = stem_channels
        for block in params["blocks"]:
            for j, op in enumerate(block["ops"]):
                layers.append(make_op(op, c_in, block["channels"], block["stride"] if j == 0 else 1))
                c_in = block["channels"]
        self.blocks = nn.Sequential(*layers)
        self.classifier = nn.Linear(c_in, n_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.blocks(self.stem(x)).mean(dim=-1))


@register_architecture(FAMILY)
def build_mbconv1d(params: dict[str, Any], in_channels: int, n_classes: int) -> nn.Module:
    return MBConvNet1d(params, in_channels, n_classes)


def _built(name: str, c_in: int, c_out: int, stride: int) -> nn.Module:
    with torch.random.fork_rng(devices=[]):  # building to count must not move the caller's random state
        return make_op(name, c_in, c_out, stride)


@cache
def op_params(name: str, c_in: int, c_out: int, stride: int) -> int:
    """Parameters of one op, counted on the instantiated module."""
    return count_params(_built(name, c_in, c_out, stride))


@cache
def op_macs(name: str, c_in: int, c_out: int, stride: int, length: int) -> int:
    """Forward MACs of one op on a (c_in, length) input."""
    return count_macs(_built(name, c_in, c_out, stride), (c_in, length))


def param_table(space: MBConvSpace) -> list[list[dict[str, int]]]:
    """``table[block][layer][op]``: parameters of that op at that position, from instantiated modules."""
    return [[{op: op_params(op, *space.layer_io(i, j)) for op in space.layer_ops(j)} for j in range(b.layers)]
            for i, b in enumerate(space.blocks)]


def fixed_params(space: MBConvSpace, in_channels: int, n_classes: int) -> int:
    """Parameters outside the searched blocks: the stem and the classifier."""
    with torch.random.fork_rng(devices=[]):
        stem = conv_bn_act(in_channels, space.stem_channels, space.stem_kernel, space.stem_stride, act=False)
        head = nn.Linear(space.blocks[-1].channels, n_classes)
    return count_params(stem) + count_params(head)


def path_params(table: list[list[dict[str, int]]], block: int, path: Path) -> int:
    return sum(table[block][j][op] for j, op in enumerate(path))


def mean_params(space: MBConvSpace, in_channels: int, n_classes: int) -> float:
    """Expected parameters of a network whose ops are drawn uniformly per layer (the supernet's sampling)."""
    table = param_table(space)
    return fixed_params(space, in_channels, n_classes) + sum(
        sum(layer.values()) / len(layer) for block in table for layer in block)


def min_params(space: MBConvSpace, in_channels: int, n_classes: int) -> int:
    """Parameters of the space's smallest network (the cheapest op on every layer)."""
    return fixed_params(space, in_channels, n_classes) + sum(
        min(layer.values()) for block in param_table(space) for layer in block)


def for_teacher(stem: tuple[int, int, int], teacher_widths: list[int], strides: list[int], ops: tuple[str, ...],
                layers: int, width_mult: float, max_params: int, in_channels: int, n_classes: int) -> MBConvSpace:
    """The space that mirrors the teacher: a stem of the teacher stem's kernel and stride, one block per teacher
    stage with the stage's stride, and every width (stem included) ``width_mult`` x the teacher's (multiples of 4,
    at least 8). ``stem`` is the teacher's (channels, kernel, stride), ``teacher_widths`` its stage widths.
    ``width_mult`` 0 picks the widest multiple of 1/16 whose smallest network (every layer its cheapest op) has at
    most half of ``max_params``: the other half buys expansions, kernels and depth, so the budget binds the search
    while every block keeps a choice."""
    def width(c: int, mult: float) -> int:
        return max(8, 4 * round(c * mult / 4))

    def space_at(mult: float) -> MBConvSpace:
        blocks = tuple(BlockSpec(width(c, mult), s, layers) for c, s in zip(teacher_widths, strides, strict=True))
        return MBConvSpace(width(stem[0], mult), stem[1], stem[2], blocks, ops)

    if width_mult > 0:
        return space_at(width_mult)
    for sixteenths in range(16, 0, -1):
        space = space_at(sixteenths / 16)
        if min_params(space, in_channels, n_classes) <= max_params / 2:
            return space
    return space_at(1 / 16)
