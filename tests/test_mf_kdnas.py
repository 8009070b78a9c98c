"""Multi-fidelity KD-NAS: the grid and its exact sizes, the GP-UCB proposal, both fidelities under the budget."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from search_contexts import ContextFactory, synthetic_search_contexts

from benchmark.engine import Batch
from benchmark.metrics import count_params
from benchmark.nn.arch import build_model
from benchmark.nn.staged import StagedCNNSpec
from benchmark.protocol import BUDGET_TIERS
from methods.losses import hinton_kd
from methods.mf_kdnas import MFKDNAS, Candidate, MFKDConfig, feasible_grid, gp_ucb, staged_params, to_arch


@pytest.mark.parametrize(("dataset", "tier", "in_channels"),
                         [("mitbih", "tiny", 4), ("mitbih", "small", 4), ("sleepedf20", "small", 1)])
def test_grid_sizes_are_exact_and_within_budget(dataset: str, tier: str, in_channels: int) -> None:
    budget = BUDGET_TIERS[dataset][tier]
    base = StagedCNNSpec.from_dict(budget.default_student.params)
    grid = feasible_grid(base, in_channels, 5, budget.max_params)
    assert grid and len(set(grid)) == len(grid)
    for candidate in random.Random(0).sample(grid, 8):
        model = build_model(to_arch(base, candidate), in_channels, 5)
        assert count_params(model) == staged_params(base, candidate, in_channels, 5) <= budget.max_params
    default = Candidate(tuple(s.depth for s in base.stages), tuple(s.channels for s in base.stages))
    assert default in grid  # the protocol's default student is one of the candidates


def test_gp_ucb_proposes_an_unevaluated_point_near_the_best() -> None:
    features = np.linspace(-1.5, 1.5, 31)[:, None]
    scores = {0: 0.1, 10: 0.5, 20: 0.9}  # increasing along the line
    proposal = gp_ucb(features, scores, beta=0.5, rng=np.random.default_rng(0))
    assert proposal not in scores
    assert proposal > 20  # the mean rises towards the end, and UCB adds uncertainty away from evaluated points
    assert gp_ucb(features, scores, beta=0.5, rng=np.random.default_rng(0)) == proposal  # deterministic


def test_gp_ucb_breaks_ties_at_random_instead_of_walking_the_grid() -> None:
    # equal scores at two far ends: the noise term absorbs them and the middle of the line ties; the official
    # argmax returned the lowest unseen index every time, here the proposals spread over the tied points
    features = np.repeat(np.linspace(-1.5, 1.5, 4)[:, None], 10, axis=0)  # 40 points, 4 distinct locations
    scores = {0: 0.5, 39: 0.5}
    proposals = {gp_ucb(features, scores, beta=0.5, rng=np.random.default_rng(seed)) for seed in range(8)}
    assert len(proposals) > 3 and not proposals & set(scores)


def test_gp_length_scale_stays_above_its_bound_on_noisy_scores() -> None:
    from sklearn.gaussian_process import GaussianProcessRegressor

    fitted: list[GaussianProcessRegressor] = []
    original = GaussianProcessRegressor.fit

    def spy(self, x, y):  # type: ignore[no-untyped-def]
        fitted.append(self)
        return original(self, x, y)

    rng = np.random.default_rng(0)
    features = rng.normal(size=(60, 3))
    scores = {i: float(rng.uniform(0.3, 0.5)) for i in range(12)}  # pure noise: the official GP shrank to ~0
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(GaussianProcessRegressor, "fit", spy)
        gp_ucb(features, scores, beta=0.5, rng=rng, min_length_scale=0.5)
    params = fitted[0].kernel_.get_params()
    assert params["k1__k2__length_scale"] >= 0.5 - 1e-9


@pytest.fixture(scope="module")
def context_factory(tmp_path_factory: pytest.TempPathFactory) -> ContextFactory:
    return synthetic_search_contexts(tmp_path_factory, "mf_kdnas")


def test_low_then_high_fidelity_within_the_budget(context_factory) -> None:  # type: ignore[no-untyped-def]
    ctx = context_factory(search_budget=12.0)
    cfg = MFKDConfig(subset=0.25, low_samples=4, high_samples=4, init_samples=2, low_share=0.3)
    torch.manual_seed(0)
    arch = MFKDNAS(cfg).search(ctx)
    search = ctx.notes["search"]
    low, high = search["trace"]["low"], search["trace"]["high"]
    assert len(low) == 4 and 1 <= len(high) <= 4
    assert high[0]["depths"] == max(low, key=lambda t: t["score"])["depths"]  # high fidelity starts at the low best
    assert high[0]["widths"] == max(low, key=lambda t: t["score"])["widths"]
    assert search["chosen_by"] == "high"
    best = max(high, key=lambda t: t["score"])
    assert search["best"]["score"] == best["score"]
    assert [s["depth"] for s in arch.params["stages"]] == list(best["depths"])
    assert ctx.search_meter.units <= 12.0  # no evaluation starts that the budget cannot pay for
    assert count_params(ctx.build(arch)) <= ctx.max_params
    # every evaluation is in the search trace with what it cost (MACs of its model, in default-student epochs)
    trace = ctx.search_trace
    assert len(trace) == len(low) + len(high)
    assert sum(t["cost"] for t in trace) == pytest.approx(ctx.search_meter.units)
    assert [t["score"] for t in trace] == [t["score"] for t in low + high]
    low_costs, high_costs = [t["cost"] for t in trace[:len(low)]], [t["cost"] for t in trace[len(low):]]
    assert max(low_costs) < min(high_costs)  # a quarter of the data per low-fidelity epoch
    assert all(c <= 0.3 * 12.0 / 4 + 0.5 for c in low_costs)  # its share of the budget, overrun by one batch at most


def test_a_budget_too_small_for_any_evaluation_falls_back_to_the_default_student(context_factory) -> None:  # type: ignore[no-untyped-def]
    ctx = context_factory(search_budget=0.05)
    arch = MFKDNAS().search(ctx)
    assert arch == ctx.default_student and ctx.search_meter.units == 0
    assert ctx.notes["search"]["trace"] == {"low": [], "high": []}


def test_low_fidelity_loss_is_kd_by_default_and_ce_on_request(context_factory) -> None:  # type: ignore[no-untyped-def]
    ctx = context_factory(search_budget=1.0)
    teacher = ctx.teacher().train_logits[:8]
    batch = Batch(ctx.train.x[:8], ctx.train.y[:8], torch.arange(8), {"teacher_logits": teacher})
    model = ctx.build(ctx.default_student)
    kd_terms = MFKDNAS()._low_objective()(model, batch)
    assert set(kd_terms) == {"kd"}
    assert torch.allclose(kd_terms["kd"], hinton_kd(model(batch.x), teacher, 32.0))
    ce_terms = MFKDNAS(MFKDConfig(low_loss="ce"))._low_objective()(model, batch)
    assert torch.allclose(sum(ce_terms.values()), torch.nn.functional.cross_entropy(model(batch.x), batch.y))
    with pytest.raises(ValueError, match="low_loss must be"):  # MFKDConfig's check (ConfigError is a ValueError)
        MFKDNAS(MFKDConfig(low_loss="mse"))


def test_at_a_quick_scaled_budget_it_evaluates_at_least_30_architectures(context_factory,  # type: ignore[no-untyped-def]
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("methods.mf_kdnas.GP_RESTARTS", 0)  # the count does not depend on them; ~1 s per GP fit less
    # quick: 30 units on MIT-BIH, where a validation pass is 8.8k/42.1k = 0.21 of a training pass' samples; here
    # 200/600 = 0.33, so 30 x 0.33 / 0.21 = 47.6 units buy the same number of validation passes
    ctx = context_factory(search_budget=30 * (200 / 600) / (8_835 / 42_141))
    MFKDNAS().search(ctx)
    distinct = {(tuple(t["candidate"]["depths"]), tuple(t["candidate"]["widths"])) for t in ctx.search_trace}
    assert len(distinct) >= 30
    assert ctx.search_meter.units <= ctx.search_meter.limit
    high = [t for t in ctx.search_trace if "CE" in t["fidelity"]]
    assert high and all(not t["fidelity"].startswith("1 epoch") for t in high)  # high fidelity: >= 2 full epochs
