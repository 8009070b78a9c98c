"""A weight-sharing 1-D transformer supernet (AutoFormer-style) for MPKD-NAS and other one-shot methods.

A fixed convolutional stem (two strided convs, chosen from the input length: ``stem_for_length``) turns the raw
(C, L) signal into tokens (L/4 of them for L <= 512, ~125 for a 3000-sample EEG epoch); three stages of transformer
encoder layers follow, each stage opened by a strided convolution that halves the token count and sets the
stage's width. Per stage the search chooses the embedding width, the number of attention heads (fixed head
width, so heads set the attention width as in AutoFormer), the MLP ratio and the depth. Every sub-network is a
slice of the largest one (AutoFormer's weight entanglement): a layer of width d uses the first d rows/columns
of the shared weights, and a stage of depth k uses its first k layers. Built with the chosen values as the
maxima, the same class is the standalone deployed student, so its parameter count is exact.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from benchmark.nn.arch import ArchSpec, register_architecture

FAMILY = "transformer1d"
DEFAULT_STEM = (7, 2, 5, 2)  # (kernel1, stride1, kernel2, stride2): L/4 tokens; what records without "stem" used


def stem_for_length(length: int | None, tokens: int = 128) -> tuple[int, int, int, int]:
    """The stem for inputs of ``length`` samples: ``DEFAULT_STEM`` up to 512 (ECG beats: 256 -> 64 tokens).

    Longer inputs get stride ``s1 * 4`` with ``s1 = max(2, round(length / (4 * tokens)))`` so about ``tokens``
    tokens reach the first attention stage (3000 -> (25, 6, 9, 4) -> 500 -> 125 tokens); each kernel is 4x its
    stride + 1 (odd, and wider than the stride, so no sample is skipped; 25 = 0.25 s of 100 Hz EEG).
    """
    if length is None or length <= 512:
        return DEFAULT_STEM
    s1 = max(2, round(length / (4 * tokens)))
    return (4 * s1 + 1, s1, 9, 4)


@dataclass(frozen=True)
class StageChoice:
    """One stage's sub-network: width, heads, MLP ratio, depth."""

    dim: int
    heads: int
    mlp_ratio: float
    depth: int


@dataclass(frozen=True)
class SearchSpace:
    """Candidate values per stage (three stages) plus the fixed stem and head width.

    ``stem`` is (kernel1, stride1, kernel2, stride2) of the two stem convolutions (``stem_channels`` wide)."""

    dims: tuple[tuple[int, ...], ...] = ((12, 16, 24), (16, 24, 32), (24, 32, 48))
    heads: tuple[int, ...] = (1, 2, 4)
    mlp_ratios: tuple[float, ...] = (1.0, 2.0, 3.0)
    depths: tuple[int, ...] = (1, 2, 3)
    head_dim: int = 8
    stem_channels: int = 16
    stem: tuple[int, int, int, int] = DEFAULT_STEM

    @classmethod
    def for_budget(cls, max_params: int, reference: int = 32_000, input_length: int | None = None) -> SearchSpace:
        """The default space with widths scaled by sqrt(max_params / reference) (rounded to multiples of 4) and
        the stem for ``input_length`` (``stem_for_length``; the L/4 default when not given).

        At the reference budget (the ``small`` ECG tier) about 43% of uniformly sampled sub-networks fit
        (measured on 2,000 samples; median 34.5k parameters, range 8.4k-124k). At the ``small`` EEG tier (64k,
        1 channel, 5 classes, stem (25, 6, 9, 4)) about 60% fit (2,000 samples; median 57k, range 16k-170k); at
        16k 19%, at 256k 73%."""
        base = cls()
        scale = (max_params / reference) ** 0.5
        dims = tuple(tuple(sorted({max(4, 4 * round(d * scale / 4)) for d in stage})) for stage in base.dims)
        return cls(dims=dims, stem=stem_for_length(input_length))

    def largest(self) -> tuple[StageChoice, ...]:
        return tuple(StageChoice(max(d), max(self.heads), max(self.mlp_ratios), max(self.depths)) for d in self.dims)

    def smallest(self) -> tuple[StageChoice, ...]:
        return tuple(StageChoice(min(d), min(self.heads), min(self.mlp_ratios), min(self.depths)) for d in self.dims)

    def sample(self, rng: random.Random) -> tuple[StageChoice, ...]:
        return tuple(StageChoice(rng.choice(d), rng.choice(self.heads), rng.choice(self.mlp_ratios),
                                 rng.choice(self.depths)) for d in self.dims)

    def size(self) -> int:
        per_stage = [len(d) * len(self.heads) * len(self.mlp_ratios) * len(self.depths) for d in self.dims]
        return int(torch.tensor(per_stage).prod())

    def mutate(self, arch: tuple[StageChoice, ...], prob: float, rng: random.Random) -> tuple[StageChoice, ...]:
        """Resample each choice with probability ``prob`` (AutoFormer's mutation)."""
        out = []
        for stage, dims in zip(arch, self.dims, strict=True):
            out.append(StageChoice(
                rng.choice(dims) if rng.random() < prob else stage.dim,
                rng.choice(self.heads) if rng.random() < prob else stage.heads,
                rng.choice(self.mlp_ratios) if rng.random() < prob else stage.mlp_ratio,
                rng.choice(self.depths) if rng.random() < prob else stage.depth,
            ))
        return tuple(out)

    @staticmethod
    def crossover(a: tuple[StageChoice, ...], b: tuple[StageChoice, ...], rng: random.Random
                  ) -> tuple[StageChoice, ...]:
        """Each stage's each choice from one parent at random (AutoFormer's crossover)."""
        return tuple(StageChoice(*(rng.choice(pair) for pair in zip(asdict(x).values(), asdict(y).values(),
                                                                       strict=True)))
                     for x, y in zip(a, b, strict=True))


def to_arch(space: SearchSpace, choice: tuple[StageChoice, ...]) -> ArchSpec:
    return ArchSpec(FAMILY, {"stem_channels": space.stem_channels, "stem": list(space.stem),
                             "head_dim": space.head_dim, "stages": [asdict(s) for s in choice]})


class SliceLinear(nn.Linear):
    """A linear layer whose sub-networks use its leading ``out`` rows and ``inp`` columns."""

    def forward(self, x: Tensor, inp: int | None = None, out: int | None = None) -> Tensor:  # type: ignore[override]
        inp, out = inp or self.in_features, out or self.out_features
        return F.linear(x, self.weight[:out, :inp], None if self.bias is None else self.bias[:out])


class SliceLayerNorm(nn.LayerNorm):
    def forward(self, x: Tensor) -> Tensor:  # type: ignore[override]
        d = x.shape[-1]
        return F.layer_norm(x, (d,), self.weight[:d], self.bias[:d], self.eps)


class SliceConv1d(nn.Conv1d):
    """A convolution whose sub-networks use its leading output and input channels."""

    def forward(self, x: Tensor, out: int | None = None) -> Tensor:  # type: ignore[override]
        out = out or self.out_channels
        inp = x.shape[1]
        bias = None if self.bias is None else self.bias[:out]
        return F.conv1d(x, self.weight[:out, :inp], bias, self.stride, self.padding)


class SuperEncoderLayer(nn.Module):
    """Pre-norm transformer encoder layer with sliceable width, heads and MLP ratio."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float, head_dim: int) -> None:
        super().__init__()
        self.head_dim = head_dim
        self.norm1, self.norm2 = SliceLayerNorm(dim), SliceLayerNorm(dim)
        self.q, self.k, self.v = (SliceLinear(dim, heads * head_dim) for _ in range(3))
        self.proj = SliceLinear(heads * head_dim, dim)
        self.fc1 = SliceLinear(dim, round(dim * mlp_ratio))
        self.fc2 = SliceLinear(round(dim * mlp_ratio), dim)

    def forward(self, x: Tensor, heads: int, mlp_ratio: float) -> Tensor:
        b, n, d = x.shape
        width = heads * self.head_dim
        h = self.norm1(x)
        q, k, v = (lin(h, d, width).view(b, n, heads, self.head_dim).transpose(1, 2)
                   for lin in (self.q, self.k, self.v))
        attn = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, n, width)
        x = x + self.proj(attn, width, d)
        hidden = round(d * mlp_ratio)
        return x + self.fc2(F.gelu(self.fc1(self.norm2(x), d, hidden)), hidden, d)


class Transformer1dSupernet(nn.Module):
    """Conv stem -> three (strided conv + transformer layers) stages -> mean pool -> linear classifier.

    ``set_active(choice)`` selects the sub-network used by ``forward``; ``forward_features`` also returns the
    output of every stage as (N, dim, tokens) — the three phases MPKD-NAS attaches auxiliary heads to.
    """

    def __init__(self, space: SearchSpace, in_channels: int, n_classes: int) -> None:
        super().__init__()
        self.space = space
        c = space.stem_channels
        k1, s1, k2, s2 = space.stem
        self.stem = nn.Sequential(
            nn.Conv1d(in_channels, c, k1, stride=s1, padding=k1 // 2, bias=False), nn.BatchNorm1d(c), nn.GELU(),
            nn.Conv1d(c, c, k2, stride=s2, padding=k2 // 2, bias=False), nn.BatchNorm1d(c), nn.GELU(),
        )
        largest = space.largest()
        self.downs = nn.ModuleList()
        self.stages = nn.ModuleList()
        for i, stage in enumerate(largest):
            self.downs.append(SliceConv1d(c if i == 0 else largest[i - 1].dim, stage.dim, 3, stride=1 if i == 0 else 2,
                                          padding=1))
            self.stages.append(nn.ModuleList(SuperEncoderLayer(stage.dim, stage.heads, stage.mlp_ratio, space.head_dim)
                                             for _ in range(stage.depth)))
        self.norm = SliceLayerNorm(largest[-1].dim)
        self.classifier = SliceLinear(largest[-1].dim, n_classes)
        self.active = largest

    def set_active(self, choice: tuple[StageChoice, ...]) -> None:
        self.active = choice

    def forward_features(self, x: Tensor) -> tuple[Tensor, list[Tensor]]:
        out = self.stem(x)
        features = []
        for down, layers, stage in zip(self.downs, self.stages, self.active, strict=True):
            tokens = down(out, stage.dim).transpose(1, 2)  # (N, tokens, dim)
            for layer in itertools.islice(layers, stage.depth):
                tokens = layer(tokens, stage.heads, stage.mlp_ratio)
            out = tokens.transpose(1, 2)
            features.append(out)
        pooled = self.norm(out.transpose(1, 2)).mean(dim=1)
        return self.classifier(pooled, self.active[-1].dim), features

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_features(x)[0]


def standalone_params(space: SearchSpace, choice: tuple[StageChoice, ...], in_channels: int, n_classes: int) -> int:
    """Exact parameter count of the deployed sub-network ``choice`` (closed form, no model built)."""
    c, hd = space.stem_channels, space.head_dim
    k1, _, k2, _ = space.stem
    total = in_channels * c * k1 + 2 * c + c * c * k2 + 2 * c  # stem convs (no bias) + BN affine
    prev = c
    for stage in choice:
        d, width, hidden = stage.dim, stage.heads * hd, round(stage.dim * stage.mlp_ratio)
        total += prev * d * 3 + d  # strided conv
        per_layer = 4 * d + 3 * (d * width + width) + (width * d + d) + (d * hidden + hidden) + (hidden * d + d)
        total += stage.depth * per_layer
        prev = d
    return total + 2 * prev + prev * n_classes + n_classes


def _conv_length(length: int, kernel: int, stride: int, padding: int) -> int:
    return (length + 2 * padding - kernel) // stride + 1


def token_lengths(space: SearchSpace, length: int) -> list[int]:
    """Tokens per stage for inputs of ``length`` samples (the stem's two convolutions, then each stage's)."""
    k1, s1, k2, s2 = space.stem
    tokens = _conv_length(_conv_length(length, k1, s1, k1 // 2), k2, s2, k2 // 2)
    lengths = []
    for i in range(len(space.dims)):
        tokens = _conv_length(tokens, 3, 1 if i == 0 else 2, 1)
        lengths.append(tokens)
    return lengths


def standalone_macs(space: SearchSpace, choice: tuple[StageChoice, ...], in_channels: int, length: int,
                    n_classes: int) -> int:
    """Forward MACs of the deployed sub-network ``choice`` for one input, in closed form: exactly what
    ``benchmark.metrics.count_macs`` counts on the built model (convolutions, linear layers and the two attention
    products QK^T and attn·V; not norms or activations), without building it — a supernet samples a new path every
    step."""
    c, hd = space.stem_channels, space.head_dim
    k1, s1, k2, s2 = space.stem
    l1 = _conv_length(length, k1, s1, k1 // 2)
    total = c * l1 * in_channels * k1 + c * _conv_length(l1, k2, s2, k2 // 2) * c * k2
    prev = c
    for stage, tokens in zip(choice, token_lengths(space, length), strict=True):
        d, width, hidden = stage.dim, stage.heads * hd, round(stage.dim * stage.mlp_ratio)
        total += d * tokens * prev * 3  # the stage's strided conv
        total += stage.depth * tokens * (3 * width * d + d * width + hidden * d + d * hidden)  # q, k, v, proj, MLP
        total += stage.depth * 2 * tokens * tokens * width  # QK^T and attn·V over all heads
        prev = d
    return total + n_classes * prev


@register_architecture(FAMILY)
def _build(params: dict[str, Any], in_channels: int, n_classes: int) -> nn.Module:
    """The standalone student of one architecture: the supernet whose only member is that architecture.

    Records written before the stem was configurable have no ``"stem"``: they used ``DEFAULT_STEM``."""
    stages = tuple(StageChoice(**s) for s in params["stages"])
    k1, s1, k2, s2 = (int(v) for v in params.get("stem", DEFAULT_STEM))  # a list once read back from JSON
    return StandaloneTransformer1d(stages, params["head_dim"], params["stem_channels"], in_channels, n_classes,
                                   stem=(k1, s1, k2, s2))


class StandaloneTransformer1d(Transformer1dSupernet):
    """A fixed architecture: per-stage heads/MLP ratios/depths may differ, so each stage is sized exactly."""

    def __init__(self, stages: tuple[StageChoice, ...], head_dim: int, stem_channels: int, in_channels: int,
                 n_classes: int, stem: tuple[int, int, int, int] = DEFAULT_STEM) -> None:
        space = SearchSpace(dims=tuple((s.dim,) for s in stages), heads=(1,), mlp_ratios=(1.0,), depths=(1,),
                            head_dim=head_dim, stem_channels=stem_channels, stem=stem)
        super().__init__(space, in_channels, n_classes)
        self.stages = nn.ModuleList(
            nn.ModuleList(SuperEncoderLayer(s.dim, s.heads, s.mlp_ratio, head_dim) for _ in range(s.depth))
            for s in stages)
        self.active = stages
