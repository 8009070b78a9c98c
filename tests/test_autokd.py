"""AutoKD and its NAGO-1D student family: graph generation, budget fitting, and the BOHB search under the budget."""

from __future__ import annotations

import json

import networkx as nx
import optuna
import pytest
import torch
from search_contexts import ContextFactory, synthetic_search_contexts

from benchmark.metrics import count_params
from benchmark.nn.arch import ArchSpec, build_model
from benchmark.protocol import BUDGET_TIERS
from methods import autokd
from methods.autokd import AutoKD, AutoKDConfig, pick_best
from methods.spaces.nago1d import (
    CONV_OPS,
    GeneratorParams,
    count_ops,
    fit_width,
    output_nodes,
    random_graph,
    sample_structure,
)

GENERATOR = GeneratorParams(top_nodes=5, top_k=4, top_p=0.5, mid_nodes=3, mid_p=0.6, bottom_nodes=4, bottom_k=2,
                            bottom_p=0.3)


@pytest.mark.parametrize(("kind", "nodes", "p", "k"), [("WS", 6, 0.5, 4), ("WS", 3, 1.0, 5), ("ER", 4, 0.3, 0)])
def test_graphs_become_dags_of_a_connected_graph(kind: str, nodes: int, p: float, k: int) -> None:
    inputs = random_graph(kind, nodes, p, k, seed=3)
    assert len(inputs) == nodes
    graph = nx.Graph()
    graph.add_nodes_from(range(nodes))
    graph.add_edges_from((j, i) for i, node in enumerate(inputs) for j in node)
    assert nx.is_connected(graph)
    assert all(j < i for i, node in enumerate(inputs) for j in node)  # NAGO's orientation: smaller index first
    assert inputs == random_graph(kind, nodes, p, k, seed=3)  # the seed fixes the graph


def test_small_graphs_and_output_nodes() -> None:
    assert random_graph("WS", 1, 0.5, 4, seed=0) == [[]]
    assert random_graph("ER", 2, 0.5, 0, seed=0) == [[], [0]]
    assert output_nodes([[], [0], [0], [1]]) == [2, 3]  # nodes no later node reads


def test_structure_is_reproducible_and_well_formed() -> None:
    structure = sample_structure(GENERATOR, seed=11)
    assert structure == sample_structure(GENERATOR, seed=11)
    assert structure != sample_structure(GENERATOR, seed=12)
    cells = structure["cells"]
    assert len(cells) == 5 and [c["stage"] for c in cells] == [0, 0, 1, 1, 2]  # thirds of the top graph, in order
    for cell in cells:
        assert len(cell["nodes"]) == 3
        for node in cell["nodes"]:
            ops = node["ops"]
            assert len(ops) == 4
            ends = set(output_nodes([op["inputs"] for op in ops]))
            for i, op in enumerate(ops):  # pooling only inside a graph: inputs and outputs are convolutions
                if i in ends or not op["inputs"]:
                    assert op["op"] in CONV_OPS
    assert count_ops(structure) == 5 * 3 * 4


@pytest.mark.parametrize("budget", [8_000, 32_000, 128_000])
def test_width_is_the_widest_that_fits_the_budget(budget: int) -> None:
    structure = sample_structure(GENERATOR, seed=5)
    arch = fit_width(structure, 7, 2, 4, 5, budget)
    assert arch is not None
    assert count_params(build_model(arch, 4, 5)) <= budget
    wider = ArchSpec(arch.family, {**arch.params, "base_width": arch.params["base_width"] + 1})
    assert count_params(build_model(wider, 4, 5)) > budget


def test_a_generator_too_big_for_the_budget_is_infeasible() -> None:
    assert fit_width(sample_structure(GENERATOR, seed=5), 7, 2, 4, 5, 2_000) is None


@pytest.mark.parametrize(("shape", "stem"), [((4, 256), (7, 2)), ((1, 3000), (25, 6))])
def test_built_networks_run_and_round_trip_through_json(shape: tuple[int, int], stem: tuple[int, int]) -> None:
    arch = fit_width(sample_structure(GENERATOR, seed=2), *stem, shape[0], 5, 64_000)
    assert arch is not None
    rebuilt = ArchSpec.from_dict(json.loads(json.dumps(arch.to_dict())))
    torch.manual_seed(0)
    a = build_model(arch, shape[0], 5).eval()
    torch.manual_seed(0)
    b = build_model(rebuilt, shape[0], 5).eval()
    x = torch.randn(3, *shape)
    assert a(x).shape == (3, 5)
    assert torch.equal(a(x), b(x))  # the record alone rebuilds the same network


def test_pick_best_prefers_full_fidelity_trials() -> None:
    trace = [{"epochs": 1, "score": 0.9}, {"epochs": 3, "score": 0.5}, {"epochs": 0, "score": 0.0},
             {"epochs": 3, "score": 0.6}]
    assert pick_best(trace, max_epochs=3) == 3
    assert pick_best(trace[:1], max_epochs=3) == 0  # no full-fidelity trial: the best trained one
    assert pick_best([{"epochs": 0, "score": 0.0}], max_epochs=3) is None


@pytest.fixture(scope="module")
def synthetic_context_factory(tmp_path_factory: pytest.TempPathFactory) -> ContextFactory:
    return synthetic_search_contexts(tmp_path_factory, "autokd")


@pytest.mark.slow  # a BOHB search to the end of its budget: the slowest test (384 s on a loaded 2-core machine)
def test_search_spends_its_budget_and_returns_a_feasible_student(synthetic_context_factory) -> None:  # type: ignore[no-untyped-def]
    # cost units are MACs (a NAGO net costs several default-student epochs per epoch here)
    ctx = synthetic_context_factory(search_budget=40.0, epochs=3)
    method = AutoKD(AutoKDConfig(trial_subset=1.0, max_resource=3, n_startup_trials=3))
    arch = method.search(ctx)
    search = ctx.notes["search"]
    trials = search["trials"]
    assert search["max_trial_epochs"] == 3 and len(trials) >= 2
    assert 40 <= ctx.search_meter.units < 40 * 1.25  # spent, overrun only by the last step and validation pass
    best = trials[search["best_trial"]]
    assert best["state"] == "complete" and best["score"] == max(t["score"] for t in trials if t["state"] == "complete")
    assert arch.family == "nago1d" and count_params(ctx.build(arch)) <= ctx.max_params
    assert method.kd == {"temperature": best["temperature"], "alpha": best["alpha"]}  # distill uses the winner's τ, α
    model = method.distill(arch, ctx)
    assert ctx.notes["kd"] == method.kd and ctx.train_meter.units > 0
    assert count_params(model) == count_params(ctx.build(arch))
    again = synthetic_context_factory(search_budget=40.0, epochs=3)
    config = AutoKDConfig(trial_subset=1.0, max_resource=3, n_startup_trials=3)
    assert AutoKD(config).search(again) == arch  # reproducible


def test_pruned_trials_stop_early_and_the_search_goes_on(synthetic_context_factory,  # type: ignore[no-untyped-def]
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    # a pruner that stops every trial at its first report, to check how AutoKD handles pruning
    monkeypatch.setattr(autokd, "make_pruner", lambda *_: optuna.pruners.ThresholdPruner(lower=1.1))
    ctx = synthetic_context_factory(search_budget=20.0, epochs=4)
    method = AutoKD(AutoKDConfig(trial_subset=1.0, max_resource=4, n_startup_trials=3))
    arch = method.search(ctx)
    trained = [t for t in ctx.notes["search"]["trials"] if t["epochs"]]
    assert len(trained) >= 2 and all(t["epochs"] == 1 for t in trained)
    assert all(t["state"] == "pruned" for t in trained[:-1])  # the last one ran out of budget in its first epoch
    assert trained[-1]["state"] in ("pruned", "stopped by budget")
    best = ctx.notes["search"]["trials"][ctx.notes["search"]["best_trial"]]  # no full-fidelity trial: best pruned one
    assert best["score"] == max(t["score"] for t in trained)
    assert count_params(ctx.build(arch)) <= ctx.max_params


def test_without_search_it_is_kd_of_the_default_student(synthetic_context_factory) -> None:  # type: ignore[no-untyped-def]
    ctx = synthetic_context_factory(search_budget=2.0, epochs=1)
    method = AutoKD(AutoKDConfig(search=False))
    assert method.search(ctx) == ctx.default_student
    assert ctx.search_meter.units == 0 and method.kd == {"temperature": 4.0, "alpha": 0.9}


def test_eeg_default_stem_is_used_for_30s_epochs() -> None:
    stem = BUDGET_TIERS["sleepedf20"]["small"].default_student.params
    arch = fit_width(sample_structure(GENERATOR, seed=1), stem["stem_kernel"], stem["stem_stride"], 1, 5, 64_000)
    assert arch is not None and (arch.params["stem_kernel"], arch.params["stem_stride"]) == (25, 6)
    assert count_params(build_model(arch, 1, 5)) <= 64_000



def test_at_a_quick_scaled_budget_it_runs_30_trials_past_tpes_startup(synthetic_context_factory) -> None:  # type: ignore[no-untyped-def]
    # quick: 30 units on MIT-BIH, where one trial epoch (10% of train + a validation pass of 8.8k/42.1k of its size)
    # costs (0.1 + 0.21 / 3) x 1.8 units (a NAGO net's MACs over the default student's, median of 20 draws); here
    # (0.1 + 0.33 / 3) x 4.0 (the toy default student is smaller): the same number of trial epochs costs 2.7x more
    mitbih, synthetic = (0.1 + 8_835 / 42_141 / 3) * 1.8, (0.1 + 200 / 600 / 3) * 4.0
    ctx = synthetic_context_factory(search_budget=30 * synthetic / mitbih, epochs=10)
    AutoKD().search(ctx)
    trained = [t for t in ctx.search_trace if t["cost"] > 0]
    distinct = {json.dumps(t["candidate"], sort_keys=True) for t in trained}
    assert len(distinct) >= 30
    search = ctx.notes["search"]
    assert search["random_trials"] == 10 and search["model_based_trials"] == len(search["trials"]) - 10 > 0
    assert search["trial_subset"] == pytest.approx(0.1, abs=1 / len(ctx.train))  # a whole number of rows
    assert {t["epochs"] for t in search["trials"]} <= {0, 1, 2, 3}  # 1-3 subset epochs; 0: over budget
