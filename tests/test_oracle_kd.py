"""Oracle KD (Kang et al. 2020): the oracle targets, REINFORCE, the KDAS space's budget and the ensemble teachers."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from search_contexts import synthetic_search_contexts

from benchmark.engine import Engine
from benchmark.executors import InProcessExecutor
from benchmark.metrics import count_params
from benchmark.nn.arch import ArchSpec, build_model
from benchmark.nn.staged import StagedCNNSpec
from benchmark.protocol import BUDGET_TIERS
from benchmark.results import JobKey
from benchmark.runner import Job, _teacher_jobs, build_context, load_bundle, run_many
from benchmark.teachers import TeacherStore
from methods.enas_controller import LSTMController, Reinforce
from methods.losses import oracle_kd_terms, oracle_targets
from methods.oracle_kd import KDASSearch, OracleKD, OracleKDConfig, target_differs
from methods.spaces.kdas1d import OPS, WIDTH_FACTORS, child_params, fit_width, scale_spec, supernet

# three members, three classes; labels (0, 1, 2): sample 0 no member correct, sample 1 only member 0, sample 2 all
MEMBERS = torch.tensor([
    [[0.0, 3.0, 1.0], [1.0, 4.0, 0.0], [0.0, 1.0, 5.0]],  # member 0 predicts 1, 1, 2
    [[0.0, 1.0, 4.0], [2.0, 0.0, 1.0], [1.0, 0.0, 2.0]],  # member 1 predicts 2, 0, 2
    [[0.0, 2.0, 2.5], [0.0, 1.0, 3.0], [0.0, 0.0, 3.0]],  # member 2 predicts 2, 2, 2
])
LABELS = torch.tensor([0, 1, 2])


def test_oracle_logit_targets_average_the_correct_members() -> None:
    target, mask = oracle_targets(MEMBERS, LABELS, combine="logits", if_none_correct="ce")
    assert mask.tolist() == [False, True, True]
    assert torch.allclose(target[1], MEMBERS[0, 1])  # one correct member: its logits
    assert torch.allclose(target[2], MEMBERS[:, 2].mean(dim=0))  # all correct: the plain average
    target, mask = oracle_targets(MEMBERS, LABELS, combine="logits", if_none_correct="ensemble")
    assert mask.tolist() == [True, True, True]
    assert torch.allclose(target[0], MEMBERS[:, 0].mean(dim=0))  # none correct: the full-ensemble average
    assert torch.allclose(target[1], MEMBERS[0, 1])


def test_oracle_probability_targets_average_the_correct_members_softmax() -> None:
    tau = 3.0
    target, _ = oracle_targets(MEMBERS, LABELS, combine="probs", if_none_correct="ensemble", temperature=tau)
    probs = F.softmax(target / tau, dim=1)
    assert torch.allclose(probs[1], F.softmax(MEMBERS[0, 1] / tau, dim=0), atol=1e-6)
    assert torch.allclose(probs[2], F.softmax(MEMBERS[:, 2] / tau, dim=1).mean(dim=0), atol=1e-6)
    assert torch.allclose(probs[0], F.softmax(MEMBERS[:, 0] / tau, dim=1).mean(dim=0), atol=1e-6)


def test_oracle_loss_is_cross_entropy_only_where_no_member_is_correct() -> None:
    student = torch.tensor([[1.0, 0.0, -1.0], [0.5, 0.5, 0.0], [0.0, 0.0, 1.0]])
    target, mask = oracle_targets(MEMBERS, LABELS)
    terms = oracle_kd_terms(student, target, mask, LABELS, weight=2.0, temperature=4.0)
    assert torch.isclose(terms["ce"], F.cross_entropy(student, LABELS))
    kl = F.kl_div(F.log_softmax(student / 4, dim=1), F.log_softmax(target / 4, dim=1), reduction="none",
                  log_target=True).sum(dim=1)
    assert torch.isclose(terms["kd"], 2.0 * 16 * kl[1:].sum() / 3)  # sample 0 adds nothing, the mean is over 3
    none = oracle_kd_terms(student, target, torch.zeros(3, dtype=torch.bool), LABELS, 1.0, 4.0)
    assert float(none["kd"]) == 0.0


def test_oracle_targets_reject_unknown_options() -> None:
    with pytest.raises(ValueError, match="combine"):
        oracle_targets(MEMBERS, LABELS, combine="votes")
    with pytest.raises(ValueError, match="if_none_correct"):
        oracle_targets(MEMBERS, LABELS, if_none_correct="skip")


def test_reinforce_raises_the_probability_of_a_rewarded_op() -> None:
    torch.manual_seed(0)
    controller = LSTMController(n_decisions=3, n_options=len(OPS))
    reinforce = Reinforce(controller, lr=0.05)
    generator = torch.Generator().manual_seed(0)
    before = controller.marginals()[1][4]
    for _ in range(150):
        sample = controller.sample(generator)
        reinforce.update(sample, 1.0 if sample.choices[1] == 4 else 0.0)
    after = controller.marginals()[1][4]
    assert after > before + 0.3
    assert controller.sample(greedy=True).choices[1] == 4


@pytest.mark.parametrize("dataset,n_classes,shape", [("mitbih", 4, (1, 256)), ("synthetic", 3, (1, 128))])
def test_deployed_children_fit_the_budget_at_the_widest_width(dataset: str, n_classes: int,
                                                              shape: tuple[int, int]) -> None:
    tier = BUDGET_TIERS[dataset]["small"]
    spec = StagedCNNSpec.from_dict(tier.default_student.params)
    n_blocks = sum(stage.depth for stage in spec.stages)
    for op in OPS:
        ops = [op] * n_blocks
        arch, factor = fit_width(spec, ops, shape[0], n_classes, tier.max_params)  # type: ignore[misc]
        model = build_model(arch, shape[0], n_classes)
        assert count_params(model) <= tier.max_params
        assert model(torch.zeros(2, *shape)).shape == (2, n_classes)
        wider = WIDTH_FACTORS.index(factor) + 1
        if wider < len(WIDTH_FACTORS):  # the next width up would break the budget
            assert child_params(scale_spec(spec, WIDTH_FACTORS[wider]), ops, shape[0], n_classes) > tier.max_params


def test_supernet_runs_each_child_on_its_active_ops() -> None:
    spec = StagedCNNSpec.from_dict(BUDGET_TIERS["synthetic"]["small"].default_student.params)
    net = supernet(spec, 1, 3)
    x = torch.randn(2, 1, 128)
    net.eval()
    outputs = {}
    for op in ("none", "conv9", "avg3"):
        net.set_active([op] * len(net.choices))
        outputs[op] = net(x)
    assert not torch.allclose(outputs["none"], outputs["conv9"])
    with pytest.raises(ValueError, match="not among"):
        net.set_active(["skip"] * len(net.choices))


def _job(tmp_path: Path, method: str, seed: int = 0, **config: object) -> Job:
    key = JobKey("synthetic", "fixed", "small", "smoke", method, seed)
    return Job(key, str(tmp_path / "data"), str(tmp_path / "cache"), device="cpu", method_config=dict(config))


def test_teacher_preparation_prefers_the_ensemble_job(tmp_path: Path) -> None:
    jobs = [_job(tmp_path, "vanilla_kd"), _job(tmp_path, "ensemble"), _job(tmp_path, "student", seed=1)]
    prepared = _teacher_jobs(jobs)
    assert [j.key.method for j in prepared] == ["ensemble"]


def test_runner_prepares_every_member_once_and_records_them(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    trained: list[int] = []
    original = TeacherStore._train_and_store

    def counting(self: TeacherStore, folder: Path, tid: str, arch: object, recipe: object, seed: int,
                 *args: object) -> None:
        trained.append(seed)
        original(self, folder, tid, arch, recipe, seed, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(TeacherStore, "_train_and_store", counting)
    events: list[str] = []
    jobs = [_job(tmp_path, "vanilla_kd"), _job(tmp_path, "ensemble")]
    results = run_many(jobs, InProcessExecutor(), tmp_path / "results", on_event=lambda kind, j, _: events.append(kind))
    assert sorted(trained) == [0, 1000, 2000]  # M = 3 members, each trained once, before the sweep
    assert events.index("teacher") < events.index("result")
    by_method = {r.key.method: r for r in results}
    assert all(r.ok for r in results), [r.error for r in results]
    members = by_method["ensemble"].teacher["members"]
    assert [m["seed"] for m in members] == [0, 1000, 2000] and len({m["id"] for m in members}) == 3
    assert by_method["vanilla_kd"].teacher["id"] == members[0]["id"]
    view = build_context(jobs[1], load_bundle(jobs[1]), Engine("cpu").device).data
    member_params = count_params(build_model(ArchSpec.from_dict(members[0]["arch"]), view.input_shape[0],
                                             view.n_classes))
    assert by_method["ensemble"].deployed_params == 3 * member_params  # deployed: the sum of its members


def test_search_false_is_oracle_kd_on_the_default_student(tmp_path: Path) -> None:
    job = _job(tmp_path, "oracle_kd", search=False)
    ctx = build_context(job, load_bundle(job), Engine("cpu").device)
    method = OracleKD(OracleKDConfig(search=False))
    assert method.search(ctx) == ctx.default_student
    assert ctx.notes["oracle"]["members"] == [t.teacher_id for t in ctx.ensemble()]
    assert ctx.search_meter.units == 0.0  # the ensemble's cached logits are free


def test_the_oracle_target_differs_from_the_ensemble_where_some_or_no_member_is_correct() -> None:
    """Sample 0: no member correct (CE only, no KD term); sample 1: only member 0 correct; sample 2: all correct, so
    its oracle target is the plain ensemble's."""
    target, mask = oracle_targets(MEMBERS, LABELS, "logits", "ce")
    assert target_differs(MEMBERS, target, mask, "logits", 1.0).tolist() == [True, True, False]
    target, mask = oracle_targets(MEMBERS, LABELS, "probs", "ensemble", 4.0)
    assert target_differs(MEMBERS, target, mask, "probs", 4.0).tolist() == [False, True, False]


@pytest.fixture(scope="module")
def searched(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    make = synthetic_search_contexts(tmp_path_factory, "oracle_kd")
    ctx = make(search_budget=20.0)  # the smoke profile's budget
    torch.manual_seed(0)
    method = OracleKD()
    arch = method.search(ctx)
    return ctx, method, arch


def test_the_reward_penalises_children_over_the_budget_at_their_search_width(searched) -> None:  # type: ignore[no-untyped-def]
    ctx, method, _ = searched
    search = KDASSearch(method.config, ctx, {})
    blocks = len(search.controller.heads)
    assert search.size_factor(["none"] * blocks) == 1.0  # the backbone fits unshrunk: no penalty
    heavy = search.size_factor(["conv9"] * blocks)
    params = child_params(search.backbone, ["conv9"] * blocks, ctx.data.input_shape[0], ctx.data.n_classes)
    assert params > ctx.max_params and heavy == pytest.approx((ctx.max_params / params) ** 0.07) and heavy < 1.0
    assert all("reward = macro-F1" in t["fidelity"] for t in ctx.search_trace)


def test_the_controller_learns_within_the_budget_and_the_record_says_how_much(searched) -> None:  # type: ignore[no-untyped-def]
    """Smoke budget: tens of REINFORCE updates on cheap (20 % of validation) rewards; the policy's entropy at the
    start and end of the search and the oracle target's reach are in the notes and reported for the leaderboard."""
    ctx, _, _ = searched
    search = ctx.notes["search"]
    entropy = search["policy_entropy"]
    assert len(search["controller_updates"]) >= 30
    assert entropy["start"] == pytest.approx(entropy["uniform"], rel=0.05)  # starts near uniform
    assert entropy["end"] < entropy["start"] - 0.05, entropy  # and moves
    assert ctx.search_meter.units <= 1.5 * 20.0
    reported = ctx.notes["reported"]
    assert reported["controller policy entropy at the search's end (nats)"] == entropy["end"]
    share = ctx.notes["oracle"]["train_share_target_differs_from_ensemble"]
    assert 0.0 <= share <= 1.0
    assert reported["training beats whose oracle target differs from the ensemble's (%)"] == pytest.approx(100 * share)
