"""DepthwiseConv1d equals nn.Conv1d(groups=C): outputs, gradients, state dicts both ways, parameter and MAC counts."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from benchmark.metrics import count_macs, count_params
from benchmark.nn import build_model, planar
from benchmark.nn.blocks import MBConvBlock, SepBlock, conv1d
from benchmark.nn.depthwise import DepthwiseConv1d, plain_layers
from benchmark.protocol import BUDGET_TIERS, TEACHERS
from methods.spaces.nago1d import _Op

CASES = [  # channels, kernel, stride, padding, dilation, length, bias
    (8, 3, 1, 1, 1, 33, False), (16, 5, 1, 2, 1, 64, False), (12, 7, 2, 3, 1, 129, False),
    (24, 5, 2, 2, 1, 31, True), (4, 9, 3, 4, 1, 100, False), (6, 3, 1, 0, 1, 17, True),
    (10, 3, 2, 2, 2, 45, False), (5, 1, 1, 0, 1, 11, False),
]


def pair(channels: int, kernel: int, stride: int, padding: int, dilation: int,
         bias: bool) -> tuple[nn.Conv1d, DepthwiseConv1d]:
    """A plain depthwise nn.Conv1d and a DepthwiseConv1d holding the same random weights."""
    torch.manual_seed(0)
    ref = nn.Conv1d(channels, channels, kernel, stride, padding, dilation, groups=channels, bias=bias)
    fast = DepthwiseConv1d(channels, channels, kernel, stride, padding, dilation, bias=bias)
    fast.load_state_dict(ref.state_dict())
    return ref, fast


@pytest.mark.parametrize(("channels", "kernel", "stride", "padding", "dilation", "length", "bias"), CASES)
def test_outputs_and_gradients_match_conv1d(channels: int, kernel: int, stride: int, padding: int, dilation: int,
                                             length: int, bias: bool) -> None:
    ref, fast = pair(channels, kernel, stride, padding, dilation, bias)
    x = torch.randn(3, channels, length)
    x_ref, x_fast = x.clone().requires_grad_(), x.clone().requires_grad_()
    y_ref, y_fast = ref(x_ref), fast(x_fast)
    torch.testing.assert_close(y_fast, y_ref)
    assert y_fast.is_contiguous()
    grad = torch.randn_like(y_ref)
    y_ref.backward(grad)
    y_fast.backward(grad)
    torch.testing.assert_close(x_fast.grad, x_ref.grad)
    for p_fast, p_ref in zip(fast.parameters(), ref.parameters(), strict=True):
        torch.testing.assert_close(p_fast.grad, p_ref.grad)


def test_unbatched_input_and_non_contiguous_input() -> None:
    ref, fast = pair(8, 5, 2, 2, 1, True)
    x = torch.randn(8, 41)
    torch.testing.assert_close(fast(x), ref(x))
    x_t = torch.randn(2, 41, 8).transpose(1, 2)  # (2, 8, 41), channel stride 1
    torch.testing.assert_close(fast(x_t), ref(x_t))


def test_depth_multiplier_matches_conv1d() -> None:
    torch.manual_seed(0)
    ref = nn.Conv1d(6, 12, 5, stride=2, padding=2, groups=6)
    fast = DepthwiseConv1d(6, 12, 5, stride=2, padding=2, bias=True)
    fast.load_state_dict(ref.state_dict())
    x = torch.randn(2, 6, 37)
    torch.testing.assert_close(fast(x), ref(x))


def test_state_dicts_load_both_ways() -> None:
    """A checkpoint of the old layout (nn.Conv1d depthwise, weight (C, 1, k)) loads into the new model and back."""
    spec = BUDGET_TIERS["mitbih"]["small"].default_student
    torch.manual_seed(1)
    new = build_model(spec, 4, 5)
    old = plain_layers(build_model(spec, 4, 5))
    assert any(isinstance(m, DepthwiseConv1d) for m in new.modules())
    assert not any(isinstance(m, DepthwiseConv1d) for m in old.modules())
    old_state = {k: v.clone() for k, v in old.state_dict().items()}
    assert new.load_state_dict(old_state) and all(torch.equal(new.state_dict()[k], v) for k, v in old_state.items())
    torch.manual_seed(2)
    other = build_model(spec, 4, 5)
    old.load_state_dict(other.state_dict())
    new.eval(), old.eval()
    x = torch.randn(2, 4, 256)
    torch.testing.assert_close(old(x), other.eval()(x))


def test_conv1d_factory_picks_depthwise_only_for_depthwise() -> None:
    assert type(conv1d(16, 16, 5, groups=16)) is DepthwiseConv1d
    assert type(conv1d(16, 32, 5, groups=16)) is planar.Conv1d  # depth multiplier 2: a (planar) nn.Conv1d
    assert type(conv1d(16, 16, 5)) is planar.Conv1d
    assert type(conv1d(16, 16, 1, groups=4)) is planar.Conv1d
    with pytest.raises(ValueError, match="DepthwiseConv1d"):
        DepthwiseConv1d(4, 6, 3)


@pytest.mark.parametrize("block", [
    lambda: SepBlock(16, 24, 5, 2), lambda: MBConvBlock(16, 16, 7, 1, expand=3.0, se=True), lambda: _Op("conv5", 8, 12),
])
def test_blocks_use_depthwise_and_match_plain(block: object) -> None:
    """Every block with a depthwise conv gets the fast module, and computes what the plain-Conv1d version does."""
    torch.manual_seed(0)
    fast = block()  # type: ignore[operator]
    plain = plain_layers(copy.deepcopy(fast))
    assert sum(isinstance(m, DepthwiseConv1d) for m in fast.modules()) == 1
    x = torch.randn(4, next(m for m in fast.modules() if isinstance(m, nn.Conv1d)).in_channels, 50)
    torch.testing.assert_close(fast(x), plain(x))


@pytest.mark.parametrize("spec", [BUDGET_TIERS["mitbih"]["small"].default_student, TEACHERS["ecg"]])
def test_params_and_macs_unchanged(spec: object) -> None:
    """count_params / count_macs give the same figures as for the plain nn.Conv1d build of the same architecture."""
    torch.manual_seed(0)
    fast = build_model(spec, 4, 5)  # type: ignore[arg-type]
    plain = plain_layers(copy.deepcopy(fast))
    assert count_params(fast) == count_params(plain)
    assert count_macs(fast, (4, 256)) == count_macs(plain, (4, 256)) > 0


@pytest.mark.parametrize("spec", [BUDGET_TIERS["mitbih"]["small"].default_student, TEACHERS["ecg"],
                                  BUDGET_TIERS["mitbih"]["tiny"].default_student])
def test_planar_network_matches_the_plain_one_in_outputs_features_and_gradients(spec: object) -> None:
    """StagedCNN1d runs channels-last 2-D on the CPU: logits, stage features, input and parameter gradients and
    the BN running statistics equal those of the stock (N, C, L) network with the same weights."""
    torch.manual_seed(0)
    fast = build_model(spec, 4, 5)  # type: ignore[arg-type]
    plain = plain_layers(copy.deepcopy(fast))
    assert fast.planar and not plain.planar
    assert all(type(m) in (nn.Conv1d, nn.BatchNorm1d) for m in plain.modules() if isinstance(m, (nn.Conv1d,
                                                                                                  nn.BatchNorm1d)))
    x = torch.randn(6, 4, 256)
    x_fast, x_plain = x.clone().requires_grad_(), x.clone().requires_grad_()
    torch.manual_seed(1)  # the same dropout mask for both (the ECG teacher's classifier has dropout)
    logits_fast, feats_fast = fast.forward_features(x_fast)
    torch.manual_seed(1)
    logits_plain, feats_plain = plain.forward_features(x_plain)
    torch.testing.assert_close(logits_fast, logits_plain, rtol=1e-4, atol=1e-5)
    for a, b in zip(feats_fast, feats_plain, strict=True):
        assert a.shape == b.shape and a.dim() == 3
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    grad = torch.randn_like(logits_fast)
    logits_fast.backward(grad)
    logits_plain.backward(grad)
    torch.testing.assert_close(x_fast.grad, x_plain.grad, rtol=1e-4, atol=1e-5)
    for (name, p_fast), p_plain in zip(fast.named_parameters(), plain.parameters(), strict=True):
        torch.testing.assert_close(p_fast.grad, p_plain.grad, rtol=1e-3, atol=1e-5, msg=name)
    for (name, b_fast), b_plain in zip(fast.named_buffers(), plain.buffers(), strict=True):
        torch.testing.assert_close(b_fast, b_plain, msg=name)
    stages_fast, stages_plain = fast.eval().forward_stages(x), plain.eval().forward_stages(x)
    for a, b in zip(stages_fast, stages_plain, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_planar_layers_compute_what_their_parents_do() -> None:
    torch.manual_seed(0)
    conv, norm = planar.Conv1d(6, 10, 5, stride=2, padding=2, bias=True), planar.BatchNorm1d(6)
    x = torch.randn(3, 6, 40)
    torch.testing.assert_close(planar.from_planar(conv(planar.to_planar(x))), conv(x))
    torch.testing.assert_close(planar.from_planar(norm(planar.to_planar(x))), norm(x))
    with pytest.raises(ValueError, match="planar 4D"):
        norm(torch.randn(2, 6, 1, 1, 4))


def test_planar_nago_network_matches_the_plain_one() -> None:
    """AutoKD's NAGO nets (max-pool and separable-conv node ops) run planar too, with the plain network's results."""
    from methods.spaces import nago1d

    params = nago1d.GeneratorParams(top_nodes=4, top_k=2, top_p=0.5, mid_nodes=3, mid_p=0.6, bottom_nodes=5,
                                    bottom_k=2, bottom_p=0.5)
    arch = nago1d.fit_width(nago1d.sample_structure(params, seed=3), 7, 2, 4, 5, 32_000)
    assert arch is not None
    torch.manual_seed(0)
    fast = build_model(arch, 4, 5).double()  # float64: train-mode BN over a deep DAG amplifies float32 rounding
    plain = plain_layers(copy.deepcopy(fast))
    assert fast.planar and not plain.planar
    assert any(isinstance(m, planar.MaxPool1d) for m in fast.modules()) or "pool" not in str(arch.params)
    x = torch.randn(4, 4, 256, dtype=torch.float64)
    x_fast, x_plain = x.clone().requires_grad_(), x.clone().requires_grad_()
    out_fast, out_plain = fast(x_fast), plain(x_plain)
    torch.testing.assert_close(out_fast, out_plain)
    weights = torch.arange(5, dtype=torch.float64)
    (out_fast * weights).sum().backward()
    (out_plain * weights).sum().backward()
    torch.testing.assert_close(x_fast.grad, x_plain.grad)
    assert x_fast.grad.abs().max() > 0
    assert count_macs(fast.float(), (4, 256)) == count_macs(plain.float(), (4, 256))


def test_planar_pools_compute_what_their_parents_do() -> None:
    x = torch.randn(2, 5, 33)
    for pool in (planar.MaxPool1d(3, stride=2, padding=1), planar.AvgPool1d(3, 2, padding=1, count_include_pad=False)):
        torch.testing.assert_close(planar.from_planar(pool(planar.to_planar(x))), pool(x))
