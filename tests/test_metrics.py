"""Metrics and model cost against values computed by hand."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from sklearn.metrics import cohen_kappa_score, f1_score
from torch import nn

from benchmark.metrics import (
    classification_metrics,
    count_macs,
    count_params,
    cpu_latency_ms,
    metrics_from_confusion,
    summarise_model,
)

CLASSES = ("N", "S", "V")
#                 true:  N  N  N  N  S  S  S  V  V  V
Y_TRUE = [0, 0, 0, 0, 1, 1, 1, 2, 2, 2]
Y_PRED = [0, 0, 0, 1, 1, 1, 0, 2, 2, 0]
# Confusion (rows true, columns predicted):   N  S  V
#                                         N [3, 1, 0]   support 4
#                                         S [1, 2, 0]   support 3
#                                         V [1, 0, 2]   support 3
#                           predicted totals  5  3  2
# N: Se 3/4, +P 3/5, F1 = 2*.75*.6/1.35 = 2/3
# S: Se 2/3, +P 2/3, F1 = 2/3
# V: Se 2/3, +P 2/2, F1 = 2*(2/3)*1/(5/3) = 4/5
# accuracy 7/10; macro-F1 (all) = (2/3 + 2/3 + 4/5)/3 = 32/45; over {S, V} = (2/3 + 4/5)/2 = 11/15
# kappa: p_o = 0.7, p_e = (4*5 + 3*3 + 3*2)/100 = 0.35, kappa = 0.35/0.65 = 7/13


def test_classification_metrics_by_hand() -> None:
    m = classification_metrics(Y_TRUE, Y_PRED, CLASSES)
    assert m["n"] == 10
    assert m["accuracy"] == pytest.approx(0.7)
    assert m["confusion"] == [[3, 1, 0], [1, 2, 0], [1, 0, 2]]
    expected = {"N": (3 / 4, 3 / 5, 2 / 3, 4), "S": (2 / 3, 2 / 3, 2 / 3, 3), "V": (2 / 3, 1.0, 4 / 5, 3)}
    for name, (se, ppv, f1, support) in expected.items():
        got = m["per_class"][name]
        assert got["sensitivity"] == pytest.approx(se)
        assert got["ppv"] == pytest.approx(ppv)
        assert got["f1"] == pytest.approx(f1)
        assert got["support"] == support
    assert m["macro_f1"] == pytest.approx(32 / 45)
    assert m["kappa"] == pytest.approx(7 / 13)


def test_macro_f1_over_scored_subset() -> None:
    m = classification_metrics(Y_TRUE, Y_PRED, CLASSES, scored_classes=("S", "V"))
    assert m["macro_f1"] == pytest.approx(11 / 15)
    assert m["accuracy"] == pytest.approx(0.7)  # only the macro average changes


def test_metrics_are_plain_json() -> None:
    m = classification_metrics(torch.tensor(Y_TRUE).numpy(), torch.tensor(Y_PRED).numpy(), CLASSES)
    assert json.loads(json.dumps(m)) == m
    assert all(type(v) is float for v in (m["accuracy"], m["macro_f1"], m["kappa"]))
    assert type(m["per_class"]["N"]["support"]) is int


def test_absent_class_scores_zero() -> None:
    m = classification_metrics([0, 1, 1], [0, 1, 0], ("a", "b", "c"))
    assert m["per_class"]["c"] == {"f1": 0.0, "sensitivity": 0.0, "ppv": 0.0, "support": 0}
    assert m["confusion"][2] == [0, 0, 0]


def test_metrics_record_class_order() -> None:
    m = classification_metrics(Y_TRUE, Y_PRED, CLASSES, scored_classes=("V", "S"))
    assert m["classes"] == ["N", "S", "V"]
    assert m["scored_classes"] == ["V", "S"]
    assert classification_metrics(Y_TRUE, Y_PRED, CLASSES)["scored_classes"] == ["N", "S", "V"]


def _random_predictions(seed: int, n: int, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Skewed true labels and predictions that are right about 60% of the time."""
    rng = np.random.default_rng(seed)
    true = rng.choice(n_classes, size=n, p=np.linspace(1, 3, n_classes) / np.linspace(1, 3, n_classes).sum())
    pred = np.where(rng.random(n) < 0.6, true, rng.integers(0, n_classes, size=n))
    return true, pred


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_metrics_from_confusion_equals_classification_metrics(seed: int) -> None:
    classes, scored = ("W", "N1", "N2", "N3", "REM"), ("N1", "N3", "REM")
    true, pred = _random_predictions(seed, 200 + 37 * seed, len(classes))
    direct = classification_metrics(true, pred, classes, scored)
    assert metrics_from_confusion(direct["confusion"], classes, scored) == direct
    unscored = classification_metrics(true, pred, classes)
    assert metrics_from_confusion(np.asarray(direct["confusion"]), classes) == unscored


def test_metrics_from_summed_fold_confusions_equal_concatenated_predictions() -> None:
    classes = ("W", "N1", "N2", "N3", "REM")
    (t1, p1), (t2, p2) = _random_predictions(10, 150, 5), _random_predictions(11, 90, 5)
    fold1, fold2 = classification_metrics(t1, p1, classes), classification_metrics(t2, p2, classes)
    summed = np.add(fold1["confusion"], fold2["confusion"])
    pooled = metrics_from_confusion(summed, classes)
    true, pred = np.concatenate([t1, t2]), np.concatenate([p1, p2])
    assert pooled == classification_metrics(true, pred, classes)
    # and against scikit-learn directly, not through classification_metrics
    assert pooled["n"] == 240
    assert pooled["macro_f1"] == pytest.approx(f1_score(true, pred, labels=range(5), average="macro"), abs=1e-12)
    assert pooled["kappa"] == pytest.approx(cohen_kappa_score(true, pred), abs=1e-12)
    assert pooled["accuracy"] == pytest.approx(np.mean(true == pred), abs=1e-12)
    assert pooled["per_class"]["N1"]["support"] == int(np.sum(true == 1))


def test_metrics_from_confusion_by_hand() -> None:
    m = metrics_from_confusion([[3, 1, 0], [1, 2, 0], [1, 0, 2]], CLASSES)
    assert m["macro_f1"] == pytest.approx(32 / 45)
    assert m["kappa"] == pytest.approx(7 / 13)
    assert m["n"] == 10 and m["per_class"]["V"]["ppv"] == 1.0


def test_metrics_from_bad_confusion_raise() -> None:
    with pytest.raises(ValueError, match="shape"):
        metrics_from_confusion([[1, 0], [0, 1]], CLASSES)
    with pytest.raises(ValueError, match="non-negative integers"):
        metrics_from_confusion([[1, 0, 0], [0, -1, 0], [0, 0, 1]], CLASSES)
    with pytest.raises(ValueError, match="non-negative integers"):
        metrics_from_confusion([[1, 0, 0], [0, 0.5, 0], [0, 0, 1]], CLASSES)
    with pytest.raises(ValueError, match="empty"):
        metrics_from_confusion(np.zeros((3, 3), dtype=int), CLASSES)


def test_bad_inputs_raise() -> None:
    with pytest.raises(ValueError, match="subset"):
        classification_metrics(Y_TRUE, Y_PRED, CLASSES, scored_classes=("X",))
    with pytest.raises(ValueError, match="length"):
        classification_metrics([0, 1], [0], CLASSES)
    with pytest.raises(ValueError, match="outside"):
        classification_metrics([0, 3], [0, 1], CLASSES)


def _small_net() -> nn.Module:
    return nn.Sequential(
        nn.Conv1d(2, 4, kernel_size=3, padding=1),  # (2, 16) -> (4, 16)
        nn.ReLU(),
        nn.Conv1d(4, 8, kernel_size=3, stride=2, dilation=2, groups=2),  # span 5: (16 - 5)//2 + 1 = 6 -> (8, 6)
        nn.Flatten(),
        nn.Linear(48, 5),
    )


# params: conv1 4*2*3 + 4 = 28; conv2 8*(4/2)*3 + 8 = 56; linear 48*5 + 5 = 245; total 329
# MACs:   conv1 4*16*2*3 = 384; conv2 8*6*(4/2)*3 = 288; linear 48*5 = 240; total 912
SMALL_INPUT = (2, 16)


def test_count_params_by_hand() -> None:
    assert count_params(_small_net()) == 329


def test_count_macs_by_hand_and_training_flag_restored() -> None:
    net = _small_net().train()
    assert count_macs(net, SMALL_INPUT) == 912
    assert net.training and all(m.training for m in net.modules())
    assert torch.is_grad_enabled()


class _SelfAttention(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(embed_dim=8, num_heads=2, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.attn(x, x, x, need_weights=False)[0]


# L = 4, E = 8: Q, K, V, out projections 4 * (4*8*8) = 1024; QK^T and attn.V 2 * (4*4*8) = 256; total 1280
def test_count_macs_attention() -> None:
    assert count_macs(_SelfAttention(), (4, 8)) == 1280


# encoder layer, d_model 8, ff 16, L 4: attention 1280 + linear1 4*8*16 = 512 + linear2 4*16*8 = 512 -> 2304
def test_count_macs_transformer_layer_bypasses_fast_path() -> None:
    layer = nn.TransformerEncoderLayer(d_model=8, nhead=2, dim_feedforward=16, batch_first=True)
    assert count_macs(layer, (4, 8)) == 2304
    assert torch.backends.mha.get_fastpath_enabled()


def test_cpu_latency_positive_and_model_untouched() -> None:
    net = _small_net().train()
    before = [p.detach().clone() for p in net.parameters()]
    latency = cpu_latency_ms(net, SMALL_INPUT, repeats=5, warmup=1)
    assert isinstance(latency, float) and latency > 0
    assert net.training
    assert all(torch.equal(a, b) for a, b in zip(before, net.parameters(), strict=True))


def test_summarise_model() -> None:
    net = _small_net().train()
    summary = summarise_model(net, SMALL_INPUT, repeats=3)
    assert summary["params"] == 329 and summary["macs"] == 912 and summary["latency_ms"] > 0
    assert net.training


def _hook_macs(module: nn.Module, input_shape: tuple[int, ...]) -> int:
    """The module-hook counter ``count_macs`` used before it counted operators: Conv1d and Linear layers only."""
    total = 0

    def on_layer(mod: nn.Module, _inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        nonlocal total
        per_output = mod.in_channels // mod.groups * mod.kernel_size[0] if isinstance(mod, nn.Conv1d) else \
            mod.in_features
        total += output.numel() * per_output

    handles = [m.register_forward_hook(on_layer) for m in module.modules() if isinstance(m, (nn.Conv1d, nn.Linear))]
    try:
        with torch.no_grad():
            module.eval()(torch.randn(1, *input_shape))
    finally:
        for handle in handles:
            handle.remove()
    return total


def test_count_macs_matches_hook_counter_on_staged_cnn() -> None:
    from benchmark.nn.arch import build_model
    from benchmark.protocol import get_budget

    for tier in ("tiny", "small"):
        model = build_model(get_budget("mitbih", tier).default_student, 4, 5)
        assert count_macs(model, (4, 256)) == _hook_macs(model, (4, 256)) > 0


def test_count_macs_counts_transformer_attention_products() -> None:
    from benchmark.nn.arch import build_model
    from methods.spaces.transformer1d import SearchSpace, SuperEncoderLayer, to_arch

    space = SearchSpace()
    choice = space.largest()
    model = build_model(to_arch(space, choice), 4, 5)
    lengths: list[tuple[int, int]] = []  # (sequence length, heads) of every encoder layer call
    handles = [layer.register_forward_hook(lambda _m, args, _out: lengths.append((args[0].shape[1], args[1])))
               for layer in model.modules() if isinstance(layer, SuperEncoderLayer)]
    total = count_macs(model, (4, 256))
    for handle in handles:
        handle.remove()
    # QK^T and attn·V: 2 · heads · n · n · head_dim per layer; the hook counter saw none of them
    attention = sum(2 * heads * n * n * space.head_dim for n, heads in lengths)
    assert len(lengths) == sum(s.depth for s in choice) and attention > 0
    assert total == _hook_macs(model, (4, 256)) + attention


def test_a_latency_measurement_reports_its_spread_and_repeats() -> None:
    """How far two measurements agree is timing, so it is checked in tests/benchmarks/test_latency_agreement.py."""
    from benchmark.metrics import measure_latency
    from benchmark.nn.arch import build_model
    from benchmark.protocol import get_budget

    model = build_model(get_budget("mitbih", "small").default_student, 4, 5)
    lat = measure_latency(model, (4, 256), repeats=20, warmup=3)
    assert 0 < lat.q1_ms <= lat.median_ms <= lat.q3_ms and lat.repeats == 20 and lat.threads == 1
    assert lat.iqr_ms == pytest.approx(lat.q3_ms - lat.q1_ms)
