import pytest
import torch

from benchmark.metrics import count_params
from benchmark.nn.arch import build_model
from benchmark.protocol import BUDGET_TIERS, DATASET_TEACHER, DEFAULT_BUDGET, TEACHERS, make_protocol

EEG_DATASETS = ("sleepedf20", "sleepedf78")
IN_CHANNELS = {"mitbih": 4, "synthetic": 2, "sleepedf20": 1, "sleepedf78": 1}  # input_shape[0] of each dataset


def test_every_dataset_has_a_default_budget_and_a_teacher() -> None:
    for dataset in BUDGET_TIERS:
        assert DEFAULT_BUDGET[dataset] in BUDGET_TIERS[dataset]
        assert DATASET_TEACHER[dataset] in TEACHERS
        protocol = make_protocol(dataset, "any", None, "smoke")
        assert protocol.budget.name == DEFAULT_BUDGET[dataset]


@pytest.mark.parametrize("dataset", sorted(BUDGET_TIERS))
def test_tiers_are_ordered_and_default_students_fit_them(dataset: str) -> None:
    tiers = list(BUDGET_TIERS[dataset].values())
    budgets = [t.max_params for t in tiers]
    assert budgets == sorted(budgets) and len(set(budgets)) == len(budgets)
    sizes = []
    for tier in tiers:
        model = build_model(tier.default_student, IN_CHANNELS.get(dataset, 1), 5)
        sizes.append(count_params(model))
        assert sizes[-1] <= tier.max_params, (tier.name, sizes[-1])
    assert sizes == sorted(sizes)


def test_the_eeg_datasets_share_tiers_and_teacher() -> None:
    assert BUDGET_TIERS["sleepedf20"] is BUDGET_TIERS["sleepedf78"]
    assert [t.max_params for t in BUDGET_TIERS["sleepedf20"].values()] == [16_000, 64_000, 256_000]
    assert {DATASET_TEACHER[d] for d in EEG_DATASETS} == {"eeg"}
    assert {DEFAULT_BUDGET[d] for d in EEG_DATASETS} == {"small"}


@pytest.mark.parametrize("name", ["teacher", *BUDGET_TIERS["sleepedf20"]])
def test_eeg_models_run_on_30s_epochs(name: str) -> None:
    torch.manual_seed(0)
    arch = TEACHERS["eeg"] if name == "teacher" else BUDGET_TIERS["sleepedf20"][name].default_student
    model = build_model(arch, 1, 5).eval()
    x = torch.randn(2, 1, 3000)
    with torch.no_grad():
        assert model(x).shape == (2, 5)
        logits, feats = model.forward_features(x)
    assert logits.shape == (2, 5)
    assert len(feats) >= 3  # methods attach heads to the last three stage outputs
    assert all(f.shape[0] == 2 and f.dim() == 3 for f in feats)
    if name == "teacher":
        assert 300_000 <= count_params(model) <= 1_000_000
