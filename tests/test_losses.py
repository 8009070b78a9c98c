import math

import torch

from methods.losses import hinton_kd, vanilla_kd_terms


def test_hinton_kd_matches_a_hand_computed_value() -> None:
    s = torch.tensor([[1.0, 0.0]])
    t = torch.tensor([[0.0, 1.0]])
    tau = 2.0
    ps = [math.exp(0.5) / (math.exp(0.5) + 1), 1 / (math.exp(0.5) + 1)]
    pt = [1 / (1 + math.exp(0.5)), math.exp(0.5) / (1 + math.exp(0.5))]
    kl = sum(p * math.log(p / q) for p, q in zip(pt, ps, strict=True))
    assert math.isclose(hinton_kd(s, t, tau).item(), tau**2 * kl, rel_tol=1e-6)


def test_hinton_kd_is_zero_for_identical_logits_and_batch_mean() -> None:
    logits = torch.randn(8, 5)
    assert hinton_kd(logits, logits, 4.0).abs().item() < 1e-6
    one = hinton_kd(logits[:1], logits[1:2], 4.0)
    doubled = hinton_kd(torch.cat([logits[:1]] * 2), torch.cat([logits[1:2]] * 2), 4.0)
    assert torch.isclose(one, doubled)


def test_vanilla_kd_terms_weight_ce_and_kd() -> None:
    s, t, y = torch.randn(4, 3), torch.randn(4, 3), torch.tensor([0, 1, 2, 1])
    terms = vanilla_kd_terms(s, t, y, alpha=0.25, temperature=3.0)
    assert set(terms) == {"ce", "kd"}
    assert torch.isclose(terms["ce"], 0.75 * torch.nn.functional.cross_entropy(s, y))
    assert torch.isclose(terms["kd"], 0.25 * hinton_kd(s, t, 3.0))
