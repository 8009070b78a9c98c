import pytest
import torch
from torch import nn

from benchmark.engine import FORWARD_PASSES, Batch, CostMeter, Engine, TensorSplit, class_balanced_weights
from benchmark.metrics import count_macs
from benchmark.protocol import TrainRecipe


def toy_split(n: int = 256, seed: int = 0) -> TensorSplit:
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 2, (n,), generator=g)
    x = torch.randn(n, 1, 8, generator=g) + y.view(-1, 1, 1) * 2.0
    return TensorSplit(x, y)


def ce(model: nn.Module, batch: Batch) -> dict[str, torch.Tensor]:
    return {"ce": nn.functional.cross_entropy(model(batch.x), batch.y)}


def make_model() -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(8, 2))


def test_fit_learns_and_restores_the_best_validation_epoch() -> None:
    train, val = toy_split(), toy_split(seed=1)
    engine = Engine("cpu")
    scores: list[float] = []

    def scorer(model: nn.Module) -> float:
        acc = (engine.predict(model, val.x).argmax(1) == val.y).float().mean().item()
        scores.append(acc)
        return acc if len(scores) != 2 else -1.0  # epoch 1 looks worst: must not be the one kept

    model = make_model()
    result = engine.fit(model, ce, train, TrainRecipe(epochs=4, batch_size=32, lr=0.1), scorer=scorer, seed=0)
    assert result.epochs_run == 4 and len(result.history) == 4
    assert result.best_score > 0.85
    final = (engine.predict(model, val.x).argmax(1) == val.y).float().mean().item()
    assert final == scores[result.best_epoch]
    assert {"ce", "val_score", "epoch"} <= set(result.history[0])


def test_fit_is_deterministic_for_a_seed() -> None:
    train = toy_split()
    weights = []
    for _ in range(2):
        model = make_model()
        torch.manual_seed(123)  # fit reseeds; the model's own init is seeded by the caller
        model = make_model()
        Engine("cpu").fit(model, ce, train, TrainRecipe(epochs=1, batch_size=32), scorer=lambda m: 0.0, seed=7)
        weights.append(model[1].weight.detach().clone())
    assert torch.equal(weights[0], weights[1])


def test_meter_stops_fit_when_the_search_budget_is_spent() -> None:
    train = toy_split(n=256)
    meter = CostMeter.for_student(count_macs(make_model(), (1, 8)), n_train=256, limit=1.5)
    result = Engine("cpu").fit(make_model(), ce, train, TrainRecipe(epochs=10, batch_size=32),
                               scorer=lambda m: 0.0, seed=0, meter=meter)
    assert result.stopped == "budget"
    assert meter.exhausted and 1.5 <= meter.units < 1.5 + 32 / 256
    assert result.epochs_run == 2
    assert result.cost_units == meter.units


def test_a_model_with_twice_the_macs_is_charged_twice_per_epoch() -> None:
    train = toy_split(n=256)
    small = make_model()  # 8*2 = 16 MACs
    large = nn.Sequential(nn.Flatten(), nn.Linear(8, 2), *(nn.Linear(2, 2) for _ in range(4)))  # 16 + 4*4 = 32
    small_macs, large_macs = count_macs(small, (1, 8)), count_macs(large, (1, 8))
    assert large_macs == 2 * small_macs
    charged = []
    for model in (small, large):
        meter = CostMeter.for_student(small_macs, n_train=256)
        Engine("cpu").fit(model, ce, train, TrainRecipe(epochs=1, batch_size=32), scorer=lambda m: 0.0, seed=0,
                          meter=meter)
        charged.append(meter.units)
    assert charged[0] == pytest.approx(1.0)  # the unit: one epoch of the reference model
    assert charged[1] == pytest.approx(2 * charged[0])


def test_forward_passes_cost_a_third_of_training_passes_and_callables_follow_the_active_path() -> None:
    meter = CostMeter.for_student(10, n_train=100)
    assert meter.charge(100, 10) == pytest.approx(1.0)
    assert meter.charge(100, 10, passes=FORWARD_PASSES) == pytest.approx(1 / 3)
    train = toy_split(n=64)
    path_macs = iter([10.0, 20.0] * 10)
    meter = CostMeter(unit_macs=64 * 10.0)
    Engine("cpu").fit(make_model(), ce, train, TrainRecipe(epochs=1, batch_size=16), scorer=lambda m: 0.0, seed=0,
                      meter=meter, macs_per_sample=lambda: next(path_macs))
    assert meter.units == pytest.approx((2 * 16 * 10 + 2 * 16 * 20) / 640)


def test_patience_stops_early() -> None:
    result = Engine("cpu").fit(make_model(), ce, toy_split(), TrainRecipe(epochs=20, batch_size=32, patience=2),
                               scorer=lambda m: 0.0, seed=0)
    assert result.stopped == "patience" and result.epochs_run == 3


def test_extras_are_sliced_with_the_batch() -> None:
    train = toy_split(n=64).with_extras(row=torch.arange(64).float())
    seen = []

    def objective(model: nn.Module, batch: Batch) -> dict[str, torch.Tensor]:
        assert torch.equal(batch.extras["row"].long(), batch.index)
        assert torch.equal(batch.y, train.y[batch.index])
        seen.append(len(batch.index))
        return ce(model, batch)

    Engine("cpu").fit(make_model(), objective, train, TrainRecipe(epochs=1, batch_size=16), scorer=lambda m: 0.0,
                      seed=0)
    assert seen == [16, 16, 16, 16]


def test_class_balanced_weights() -> None:
    y = torch.tensor([0, 0, 0, 0, 1])
    w = class_balanced_weights(y, 1.0)
    assert w is not None and torch.allclose(w, torch.tensor([0.25, 0.25, 0.25, 0.25, 1.0], dtype=w.dtype))
    assert class_balanced_weights(y, 0.0) is None


def test_final_weights_are_the_last_epochs_and_only_they_are_scored() -> None:
    train, calls = toy_split(), []

    def scorer(model: nn.Module) -> float:
        calls.append(model[1].weight.detach().clone())
        return 0.5

    model = make_model()
    result = Engine("cpu").fit(model, ce, train, TrainRecipe(epochs=3, batch_size=32, weights="final"),
                               scorer=scorer, seed=0)
    assert len(calls) == 1 and result.best_epoch == 2 and result.epochs_run == 3
    assert torch.equal(calls[0], model[1].weight)
    assert [("val_score" in h) for h in result.history] == [False, False, True]


def test_ema_weights_average_the_weights_after_every_step() -> None:
    """The returned weights equal an EMA (decay d) of the weights after each optimiser step, computed by hand from
    a replay of the same seeded run (the step hook sees the weights after every step but the last; the "final"
    replay supplies the last)."""
    train, decay = toy_split(n=128), 0.9

    def run(weights: str, hook=None) -> nn.Module:
        torch.manual_seed(5)
        model = make_model()
        Engine("cpu").fit(model, ce, train, TrainRecipe(epochs=2, batch_size=32, lr=0.1, weights=weights,
                                                        ema_decay=decay),
                          scorer=lambda m: 0.0, seed=0, step_hook=hook)
        return model

    seen: list[torch.Tensor] = []
    averaged = run("ema", lambda _step, m: seen.append(m[1].weight.detach().clone()))
    after_each_step = [*seen[1:], run("final")[1].weight.detach()]
    expected = after_each_step[0]
    for w in after_each_step[1:]:
        expected = decay * expected + (1 - decay) * w
    assert len(after_each_step) == 8
    assert torch.allclose(averaged[1].weight, expected, atol=1e-6)
    assert not torch.allclose(averaged[1].weight, after_each_step[-1], atol=1e-4)


@pytest.mark.parametrize("kwargs", [{"weights": "last"}, {"weights": "ema", "patience": 2}, {"ema_decay": 1.0}])
def test_recipe_rejects_bad_weight_rules(kwargs: dict) -> None:
    with pytest.raises(ValueError, match="TrainRecipe"):
        TrainRecipe(epochs=1, **kwargs)
