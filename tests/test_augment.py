from pathlib import Path

import torch

from benchmark.augment import AugmentChain, SignalAugment, SignalDropout


def batch(n: int = 16, length: int = 64) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    signal = torch.randn(n, 1, length, generator=g)
    features = torch.randn(n, 3, 1, generator=g).expand(n, 3, length)  # per-beat features, constant along time
    return torch.cat([signal, features], dim=1)


def test_feature_channels_and_the_input_are_untouched() -> None:
    x = batch()
    before = x.clone()
    out = SignalAugment()(x)
    assert torch.equal(x, before)
    assert torch.equal(out[:, 1:], x[:, 1:])
    assert not torch.allclose(out[:, :1], x[:, :1])


def test_each_transform_alone_does_what_it_says() -> None:
    x = batch()
    off = dict(scale=0.0, drift=0.0, noise=0.0, shift=0)
    assert torch.equal(SignalAugment(**off)(x), x)
    torch.manual_seed(1)
    shifted = SignalAugment(**{**off, "shift": 3})(x)[:, 0]
    rolls = [next(k for k in range(-3, 4) if torch.equal(torch.roll(x[i, 0], k), shifted[i])) for i in range(len(x))]
    assert len(set(rolls)) > 1  # a shift per sample, each a circular roll within +-3
    scaled = SignalAugment(**{**off, "scale": 0.2})(x)[:, 0]
    ratio = scaled / x[:, 0]
    assert torch.allclose(ratio, ratio[:, :1].expand_as(ratio), atol=1e-5)  # one factor per sample
    assert ((ratio[:, 0] >= 0.8 - 1e-6) & (ratio[:, 0] <= 1.2 + 1e-6)).all()
    drift = SignalAugment(**{**off, "drift": 0.5})(x)[:, 0] - x[:, 0]
    steps = drift.diff(dim=1)
    assert torch.allclose(steps, steps[:, :1].expand_as(steps), atol=1e-5)  # a straight line per sample
    assert drift.abs().max() <= 0.5 + 1e-6


def test_augmentation_is_reproducible_under_a_seed() -> None:
    x = batch()
    torch.manual_seed(3)
    a = SignalAugment()(x)
    torch.manual_seed(3)
    assert torch.equal(a, SignalAugment()(x))


def test_a_teacher_recipe_with_augmentation_trains_on_augmented_copies_and_gets_its_own_id() -> None:
    from dataclasses import replace

    from benchmark.engine import Batch
    from benchmark.nn.arch import ArchSpec
    from benchmark.protocol import TrainRecipe
    from benchmark.teachers import TeacherStore, cross_entropy_objective

    seen: list[torch.Tensor] = []

    class Recorder(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            seen.append(x)
            return x[:, :, 0].clone().requires_grad_()  # (N, 4) logits

    x = batch()
    data = Batch(x, torch.zeros(len(x), dtype=torch.long), torch.arange(len(x)), {})
    cross_entropy_objective(augment=SignalAugment())(Recorder(), data)
    cross_entropy_objective()(Recorder(), data)
    assert not torch.equal(seen[0], x) and torch.equal(seen[0][:, 1:], x[:, 1:]) and seen[1] is x

    plain = TrainRecipe(epochs=2)
    store, arch = TeacherStore(Path("unused")), ArchSpec("staged_cnn", {})
    ids = {store.teacher_id("d", "s", "k", arch, recipe, 0)
           for recipe in (plain, replace(plain, augment=SignalAugment()), replace(plain, augment=SignalAugment(0.1)))}
    assert len(ids) == 3


def test_signal_dropout_zeroes_whole_signals_of_about_p_of_the_samples_and_keeps_the_features() -> None:
    x = batch(n=4000, length=8)
    torch.manual_seed(0)
    out = SignalDropout(p=0.3)(x)
    dropped = (out[:, 0] == 0).all(dim=1)
    assert 0.27 < dropped.float().mean().item() < 0.33
    assert torch.equal(out[~dropped, 0], x[~dropped, 0])
    assert torch.equal(out[:, 1:], x[:, 1:])


def test_a_chain_applies_its_steps_in_order_and_names_them() -> None:
    x = batch()
    torch.manual_seed(1)
    chained = AugmentChain((SignalAugment(), SignalDropout(p=1.0)))(x)
    assert torch.equal(chained[:, 0], torch.zeros_like(x[:, 0])) and torch.equal(chained[:, 1:], x[:, 1:])
    assert AugmentChain((SignalDropout(p=0.5),)).to_dict() == {"chain": [{"signal_dropout": {"p": 0.5,
                                                                                           "signal_channels": 1}}]}
