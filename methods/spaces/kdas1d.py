"""KDAS-1D: the search space of Oracle KD's architecture search (Kang, Mun & Han, AAAI 2020), in 1-D.

The backbone is the protocol's default staged CNN and keeps its stages and blocks; at every block one operation
is *added* as a parallel branch from the block's input to its output (``out = block(x) + branch(x)``), chosen from
``OPS``: none, dense conv k, depthwise-separable conv k (k in {5, 9}) and 3-tap max / average pooling (followed by a
1x1 conv + BN where the block changes the channel count). The paper's seven 2-D ops (identity, 3x3 / 5x5 conv,
3x3 / 5x5 sep-conv, max / avg pool) become 1-D ones whose kernels cover 5 and 9 samples of a stage's feature map:
on 256-sample ECG beats (stem /2, then /2 per stage) 9 taps span 36-290 ms of signal, a QRS complex to a whole beat.

``KDASNet`` holds, per block, the branch of each allowed op: with every op it is the weight-sharing supernet (one
op active per block, ``set_active``); with one op per block it is a deployable child. ``fit_width`` rescales a
child's channels to the largest width that keeps it within the parameter budget (counted on the built module).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import torch
from torch import Tensor, nn

from benchmark.metrics import count_params
from benchmark.nn.arch import ArchSpec, register_architecture
from benchmark.nn.blocks import BLOCKS, conv_bn_act
from benchmark.nn.staged import StagedCNNSpec

OPS: tuple[str, ...] = ("none", "conv5", "conv9", "sep5", "sep9", "max3", "avg3")
WIDTH_FACTORS: tuple[float, ...] = tuple(round(0.25 + 0.05 * i, 2) for i in range(36))  # 0.25 .. 2.0


def make_branch(op: str, c_in: int, c_out: int, stride: int) -> nn.Module | None:
    """The parallel branch of ``op`` from a block's input (``c_in``) to its output (``c_out``, ``stride``)."""
    if op == "none":
        return None
    if op.startswith("conv"):
        return conv_bn_act(c_in, c_out, int(op[4:]), stride, act=False)
    if op.startswith("sep"):
        k = int(op[3:])
        return nn.Sequential(conv_bn_act(c_in, c_in, k, stride, groups=c_in), conv_bn_act(c_in, c_out, 1, act=False))
    if op in ("max3", "avg3"):
        pool: nn.Module = (nn.MaxPool1d(3, stride, padding=1) if op == "max3"
                           else nn.AvgPool1d(3, stride, padding=1, count_include_pad=False))
        return pool if c_in == c_out else nn.Sequential(pool, conv_bn_act(c_in, c_out, 1, act=False))
    raise ValueError(f"unknown KDAS op {op!r}; choose from {', '.join(OPS)}")


def block_shapes(spec: StagedCNNSpec) -> list[tuple[int, int, int, int]]:
    """(c_in, c_out, kernel, stride) of every block of the backbone, in order."""
    shapes, c_in = [], spec.stem_channels
    for stage in spec.stages:
        for i in range(stage.depth):
            shapes.append((c_in, stage.channels, stage.kernel, stage.stride if i == 0 else 1))
            c_in = stage.channels
    return shapes


class KDASNet(nn.Module):
    """The backbone with an added branch per block; ``choices[b]`` lists block ``b``'s ops, ``active`` the one used."""

    def __init__(self, spec: StagedCNNSpec, choices: Sequence[Sequence[str]], in_channels: int, n_classes: int) -> None:
        super().__init__()
        shapes = block_shapes(spec)
        if len(choices) != len(shapes):
            raise ValueError(f"KDAS: {len(choices)} op choices for a backbone of {len(shapes)} blocks")
        self.stem = conv_bn_act(in_channels, spec.stem_channels, spec.stem_kernel, spec.stem_stride)
        kinds = [stage.block for stage in spec.stages for _ in range(stage.depth)]
        stages = [(stage.expand, stage.se) for stage in spec.stages for _ in range(stage.depth)]
        self.blocks = nn.ModuleList(BLOCKS[kind](c_in, c_out, k, s, expand=e, se=se)
                                    for kind, (c_in, c_out, k, s), (e, se) in zip(kinds, shapes, stages, strict=True))
        self.branches = nn.ModuleList(
            nn.ModuleDict({op: branch for op in ops if (branch := make_branch(op, c_in, c_out, s)) is not None})
            for ops, (c_in, c_out, _, s) in zip(choices, shapes, strict=True))
        self.choices = [list(ops) for ops in choices]
        self.active = [ops[0] for ops in choices]
        self.classifier = nn.Linear(shapes[-1][1], n_classes)

    def set_active(self, ops: Sequence[str]) -> None:
        for op, allowed in zip(ops, self.choices, strict=True):
            if op not in allowed:
                raise ValueError(f"KDAS: op {op!r} is not among this block's choices {allowed}")
        self.active = list(ops)

    def forward(self, x: Tensor) -> Tensor:
        out = self.stem(x)
        for block, branches, op in zip(self.blocks, self.branches, self.active, strict=True):
            y = block(out)
            out = y + branches[op](out) if op in branches else y
        return self.classifier(out.mean(dim=-1))


def supernet(spec: StagedCNNSpec, in_channels: int, n_classes: int) -> KDASNet:
    """The weight-sharing supernet: every op's branch at every block of the backbone at its own width."""
    return KDASNet(spec, [OPS] * len(block_shapes(spec)), in_channels, n_classes)


def scale_spec(spec: StagedCNNSpec, factor: float) -> StagedCNNSpec:
    """The backbone with every channel count multiplied by ``factor`` (at least 4)."""
    def width(c: int) -> int:
        return max(4, round(c * factor))
    return replace(spec, stem_channels=width(spec.stem_channels),
                   stages=tuple(replace(stage, channels=width(stage.channels)) for stage in spec.stages))


def to_arch(spec: StagedCNNSpec, ops: Sequence[str]) -> ArchSpec:
    return ArchSpec("kdas1d", {"backbone": spec.to_dict(), "ops": list(ops)})


def child_params(spec: StagedCNNSpec, ops: Sequence[str], in_channels: int, n_classes: int) -> int:
    with torch.random.fork_rng(devices=[]):  # counting must not move the caller's random state
        return count_params(KDASNet(spec, [[op] for op in ops], in_channels, n_classes))


def fit_width(spec: StagedCNNSpec, ops: Sequence[str], in_channels: int, n_classes: int,
              max_params: int) -> tuple[ArchSpec, float] | None:
    """The child ``ops`` at the largest width factor in ``WIDTH_FACTORS`` within ``max_params`` (binary search:
    parameters grow with width), with that factor; None when even the narrowest is over budget."""
    lo, hi = 0, len(WIDTH_FACTORS) - 1
    if child_params(scale_spec(spec, WIDTH_FACTORS[lo]), ops, in_channels, n_classes) > max_params:
        return None
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if child_params(scale_spec(spec, WIDTH_FACTORS[mid]), ops, in_channels, n_classes) <= max_params:
            lo = mid
        else:
            hi = mid - 1
    factor = WIDTH_FACTORS[lo]
    return to_arch(scale_spec(spec, factor), ops), factor


@register_architecture("kdas1d")
def _build_kdas1d(params: dict[str, Any], in_channels: int, n_classes: int) -> nn.Module:
    """``{"backbone": <StagedCNNSpec dict>, "ops": [op per block]}``: a deployable KDAS child."""
    return KDASNet(StagedCNNSpec.from_dict(params["backbone"]), [[op] for op in params["ops"]], in_channels,
                   n_classes)
