import torch
from torch import nn

from benchmark.engine import Batch, CostMeter, Engine, TensorSplit, class_balanced_weights
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
    meter = CostMeter(n_train=256, limit=1.5)
    result = Engine("cpu").fit(make_model(), ce, train, TrainRecipe(epochs=10, batch_size=32),
                               scorer=lambda m: 0.0, seed=0, meter=meter)
    assert result.stopped == "budget"
    assert meter.exhausted and 1.5 <= meter.units < 1.5 + 32 / 256
    assert result.epochs_run == 2


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
