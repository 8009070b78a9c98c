"""NAGO-1D: a 1-D version of NAGO's hierarchical random-graph architecture generator (AutoKD's student family).

NAGO (Ru, Esperança & Carlucci, "Neural Architecture Generator Optimization", NeurIPS 2020; code
github.com/rubinxin/vega_NAGO, ``zeus/networks/pytorch/customs/utils/logical_graph.py``) describes a network by
the hyperparameters of three random-graph generators instead of by one architecture:

- top level: a Watts-Strogatz graph WS(N_t, K_t, P_t) whose nodes are *cells*, split into three stages in node
  order with channel ratios 1:2:4, at 1/2, 1/4 and 1/8 of the stem's output length;
- middle level: each cell is its own Erdős-Rényi graph ER(N_m, P_m) whose nodes are *op graphs*;
- bottom level: each op graph is its own WS(N_b, K_b, P_b) graph whose nodes are operations, each drawn
  uniformly from the op set (output nodes: convolutions only).

Every undirected graph becomes a DAG as in NAGO's ``get_graph_info``: node i takes the neighbours j < i as
inputs; nodes without smaller neighbours read the graph's input; nodes without larger neighbours are averaged
into its output. Graphs are drawn with networkx (``connected_watts_strogatz_graph``, ``erdos_renyi_graph``)
and retried with new seeds until connected, as NAGO's ``_init_graph`` does.

The sampled network is stored as explicit data (``ArchSpec("nago1d", ...)``: every graph's node inputs and
every op), so a record rebuilds its exact architecture without networkx or a seed. Width: the largest base
width C (stage channels C, 2C, 4C) whose network fits the parameter budget, found by counting the built
module's parameters (NAGO's ``n_param_limit`` scaling).

Deviations, each with its reason:
- 1-D ops: depthwise-separable convolutions with kernels 1, 3, 5, 7 and max-pooling 3 and 5 (NAGO's 2-D set
  is conv 1x1, 3x3, 5x5, 3x1, 1x3 and pool 3x3, 5x5; 3x1 and 1x3 have no 1-D counterpart, so kernel 7 takes
  their place for long biosignals). NAGO's ``depthwise_separable`` conv type is used because the budgets are
  tens of thousands of parameters. Each op is ReLU-op-BN, as in RandWire (Xie et al. 2019), NAGO's basis.
- Merging is a sum (NAGO samples SUM, CAT or ATTENTION per node; CAT changes widths per node, which makes
  the budget scaling unstable at these sizes).
- Node counts are narrower than NAGO's 3-10 at every level (see ``GeneratorRanges``): at ≤ 32k parameters,
  10 x 10 x 10 ops per network would leave about one channel per op.
- Cells that read a cell of an earlier stage resample it with a strided 1x1 conv + BN (NAGO's merging
  projections, here also carrying the stride); the stem is the protocol's default-student stem for the
  dataset (its kernel and stride), so long EEG epochs are shortened before the graph as every student does;
  the first stage already halves the stem's length (measured: about 1.4x faster training on 256-sample beats
  than at full length, where these many-small-op networks ran 3-6x slower than the default student).
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass
from typing import Any

import networkx as nx
import torch
from torch import Tensor, nn

from benchmark.nn import planar
from benchmark.nn.arch import ArchSpec, register_architecture
from benchmark.nn.blocks import conv1d, conv_bn_act

FAMILY = "nago1d"
CONV_OPS = ("conv1", "conv3", "conv5", "conv7")
POOL_OPS = ("pool3", "pool5")
ALL_OPS = CONV_OPS + POOL_OPS
CHANNEL_RATIOS = (1, 2, 4)
MIN_BASE_WIDTH = 4  # narrower stages do not learn; such a generator sample is infeasible under the budget
GRAPH_TRIES = 30  # NAGO's ``BasicNode.tollerance``


@dataclass(frozen=True)
class GeneratorParams:
    """NAGO's generator hyperparameters: WS(top), ER(middle), WS(bottom)."""

    top_nodes: int
    top_k: int
    top_p: float
    mid_nodes: int
    mid_p: float
    bottom_nodes: int
    bottom_k: int
    bottom_p: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class GeneratorRanges:
    """The search ranges of the generator hyperparameters (NAGO's ``nago.yml``: nodes 3-10, K 2-5, P 0.1-1,
    ER P 0.2-1; node counts narrowed here for budgets of tens of thousands of parameters)."""

    top_nodes: tuple[int, int] = (3, 6)
    mid_nodes: tuple[int, int] = (1, 3)
    bottom_nodes: tuple[int, int] = (1, 4)
    k: tuple[int, int] = (2, 5)
    ws_p: tuple[float, float] = (0.1, 1.0)
    er_p: tuple[float, float] = (0.2, 1.0)


def random_graph(kind: str, nodes: int, p: float, k: int, seed: int) -> list[list[int]]:
    """Draw a connected WS or ER graph and return, per node, its inputs (smaller neighbours) in NAGO's order."""
    if nodes <= 2:  # a single node, or one edge: the only connected graphs
        return [[]] if nodes == 1 else [[], [0]]
    for attempt in range(GRAPH_TRIES):
        graph_seed = seed * 1000 + attempt
        if kind == "WS":
            graph = nx.connected_watts_strogatz_graph(nodes, min(k, nodes), p, tries=200, seed=graph_seed)
        elif kind == "ER":
            graph = nx.erdos_renyi_graph(nodes, p, seed=graph_seed)
        else:
            raise ValueError(f"unknown graph model {kind!r}")
        if nx.is_connected(graph):
            return [sorted(j for j in graph.neighbors(i) if j < i) for i in range(nodes)]
    return [[i - 1] if i else [] for i in range(nodes)]  # never connected in time: a chain


def output_nodes(inputs: list[list[int]]) -> list[int]:
    """Nodes that no later node reads: their mean is the graph's output."""
    read = {j for node in inputs for j in node}
    return [i for i in range(len(inputs)) if i not in read]


def sample_structure(params: GeneratorParams, seed: int) -> dict[str, Any]:
    """One network drawn from the generator: top graph, a middle graph per cell, a bottom graph per node."""
    rng = random.Random(seed)
    counter = iter(range(1, 10**9))

    def next_seed() -> int:  # every graph gets its own seed, as NAGO's incrementing ``init_seed``
        return seed * 7919 + next(counter)

    top = random_graph("WS", params.top_nodes, params.top_p, params.top_k, next_seed())
    n_cells = len(top)
    cells = []
    for index, cell_inputs in enumerate(top):
        mid = random_graph("ER", params.mid_nodes, params.mid_p, 0, next_seed())
        nodes = []
        for node_inputs in mid:
            bottom = random_graph("WS", params.bottom_nodes, params.bottom_p, params.bottom_k, next_seed())
            outputs = set(output_nodes(bottom))
            ops = [rng.choice(CONV_OPS if i in outputs or not op_inputs else ALL_OPS)
                   for i, op_inputs in enumerate(bottom)]
            nodes.append({"inputs": node_inputs,
                          "ops": [{"op": op, "inputs": ins} for op, ins in zip(ops, bottom, strict=True)]})
        cells.append({"stage": min(2, 3 * index // n_cells), "inputs": cell_inputs, "nodes": nodes})
    return {"cells": cells}


def to_arch(structure: dict[str, Any], base_width: int, stem_kernel: int, stem_stride: int) -> ArchSpec:
    return ArchSpec(FAMILY, {"base_width": base_width, "stem_kernel": stem_kernel, "stem_stride": stem_stride,
                             **structure})


def count_ops(structure: dict[str, Any]) -> int:
    return sum(len(node["ops"]) for cell in structure["cells"] for node in cell["nodes"])


def fit_width(structure: dict[str, Any], stem_kernel: int, stem_stride: int, in_channels: int, n_classes: int,
              max_params: int) -> ArchSpec | None:
    """The widest network of this structure within ``max_params`` (None when even the narrowest is over)."""
    def params_at(width: int) -> int:
        with torch.random.fork_rng(devices=[]):  # counting must not move the caller's random state
            model = build_nago1d(to_arch(structure, width, stem_kernel, stem_stride).params, in_channels, n_classes)
        return sum(p.numel() for p in model.parameters())

    if params_at(MIN_BASE_WIDTH) > max_params:
        return None
    low, high = MIN_BASE_WIDTH, MIN_BASE_WIDTH
    while params_at(high * 2) <= max_params:
        low, high = high * 2, high * 2
    high *= 2  # params_at(high) > max_params >= params_at(low)
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (mid, high) if params_at(mid) <= max_params else (low, mid)
    return to_arch(structure, low, stem_kernel, stem_stride)


class _Op(nn.Module):
    """ReLU -> op -> BN (RandWire's node op); convs are depthwise-separable."""

    def __init__(self, op: str, c_in: int, c_out: int) -> None:
        super().__init__()
        kernel = int(op[4:])
        if op.startswith("pool"):
            if c_in != c_out:
                raise ValueError(f"pooling op {op} cannot change channels {c_in} -> {c_out}")
            body: nn.Module = planar.MaxPool1d(kernel, stride=1, padding=kernel // 2)
        else:
            body = nn.Sequential(
                conv1d(c_in, c_in, kernel, padding=kernel // 2, groups=c_in) if kernel > 1
                else nn.Identity(),
                conv1d(c_in, c_out, 1),
            )
        self.body = nn.Sequential(nn.ReLU(), body, planar.BatchNorm1d(c_out))

    def forward(self, x: Tensor) -> Tensor:
        return self.body(x)


def _run_dag(inputs: list[list[int]], modules: nn.ModuleList, x: Tensor) -> Tensor:
    """Evaluate a DAG whose node i sums its inputs (or reads ``x``); returns the mean of its output nodes."""
    outs: list[Tensor] = []
    for node_inputs, module in zip(inputs, modules, strict=True):
        feed = x if not node_inputs else _sum(outs[j] for j in node_inputs)
        outs.append(module(feed))
    last = output_nodes(inputs)
    return _sum(outs[i] for i in last) / len(last)


def _sum(tensors: Any) -> Tensor:
    total: Tensor | None = None
    for t in tensors:
        total = t if total is None else total + t
    assert total is not None
    return total


class _OpGraph(nn.Module):
    def __init__(self, spec: list[dict[str, Any]], c_in: int, c_out: int) -> None:
        super().__init__()
        self.inputs = [op["inputs"] for op in spec]
        self.ops = nn.ModuleList(
            _Op(op["op"], c_in if not op["inputs"] else c_out, c_out) for op in spec)

    def forward(self, x: Tensor) -> Tensor:
        return _run_dag(self.inputs, self.ops, x)


class _Cell(nn.Module):
    def __init__(self, spec: dict[str, Any], c_in: int, c_out: int) -> None:
        super().__init__()
        self.inputs = [node["inputs"] for node in spec["nodes"]]
        self.nodes = nn.ModuleList(
            _OpGraph(node["ops"], c_in if not node["inputs"] else c_out, c_out) for node in spec["nodes"])

    def forward(self, x: Tensor) -> Tensor:
        return _run_dag(self.inputs, self.nodes, x)


class NAGO1d(nn.Module):
    """Stem -> top-level graph of cells (3 stages, widths C/2C/4C, /2 per stage) -> pool -> linear."""

    def __init__(self, params: dict[str, Any], in_channels: int, n_classes: int) -> None:
        super().__init__()
        width = int(params["base_width"])
        widths = [width * r for r in CHANNEL_RATIOS]
        self.stem = conv_bn_act(in_channels, width, int(params["stem_kernel"]), int(params["stem_stride"]))
        cells = params["cells"]
        self.cell_inputs = [cell["inputs"] for cell in cells]
        self.stages = [int(cell["stage"]) for cell in cells]
        self.cells = nn.ModuleList()
        self.adapters = nn.ModuleDict()  # "<cell>_<source>" (source -1: the stem): strided 1x1 conv + BN
        for i, cell in enumerate(cells):
            stage = self.stages[i]
            sources = cell["inputs"] or [-1]
            for j in sources:
                source_stage = self.stages[j] if j >= 0 else 0
                source_width = widths[source_stage] if j >= 0 else width
                stride = 2 ** (stage - source_stage) if j >= 0 else 2 ** (stage + 1)
                if source_width != widths[stage] or stride != 1:
                    self.adapters[f"{i}_{j}"] = conv_bn_act(source_width, widths[stage], 1, stride, act=False)
            self.cells.append(_Cell(cell, widths[stage], widths[stage]))
        self.outputs = output_nodes(self.cell_inputs)
        for i in self.outputs:  # output cells of earlier stages are brought to the last stage's shape
            if self.stages[i] != 2:
                self.adapters[f"out_{i}"] = conv_bn_act(widths[self.stages[i]], widths[2], 1,
                                                        2 ** (2 - self.stages[i]), act=False)
        self.classifier = nn.Linear(widths[2], n_classes)
        self.planar = True  # channels-last 2-D on the CPU (benchmark.nn.planar): same parameters and results

    def _adapt(self, key: str, x: Tensor) -> Tensor:
        return self.adapters[key](x) if key in self.adapters else x

    def forward(self, x: Tensor) -> Tensor:
        stem = self.stem(planar.planar_input(x, self.planar))
        outs: list[Tensor] = []
        for i, cell in enumerate(self.cells):
            sources = self.cell_inputs[i] or [-1]
            feed = _sum(self._adapt(f"{i}_{j}", stem if j < 0 else outs[j]) for j in sources)
            outs.append(cell(feed))
        final = _sum(self._adapt(f"out_{i}", outs[i]) for i in self.outputs) / len(self.outputs)
        return self.classifier(planar.pool_over_length(torch.relu(final)))


@register_architecture(FAMILY)
def build_nago1d(params: dict[str, Any], in_channels: int, n_classes: int) -> nn.Module:
    return NAGO1d(params, in_channels, n_classes)


def describe(arch: ArchSpec) -> str:
    """A one-line summary of a NAGO-1D network, e.g. for logs: cells per stage, ops, widths."""
    cells = arch.params["cells"]
    per_stage = [sum(1 for c in cells if c["stage"] == s) for s in range(3)]
    width = arch.params["base_width"]
    return (f"{len(cells)} cells {per_stage}, {count_ops(arch.params)} ops, widths "
            f"{[width * r for r in CHANNEL_RATIOS]}")

