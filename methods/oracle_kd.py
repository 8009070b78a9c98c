"""Oracle KD with architecture search (KDAS): Kang, Mun & Han, "Towards Oracle Knowledge Distillation with Neural
Architecture Search", AAAI 2020 (arXiv:1911.13019). No official code is public; this is, to our knowledge, the first
runnable implementation. Read from the paper (its text and its published summaries):

1. Teacher: an ensemble of independently trained networks (here the protocol's ``ensemble_size`` M = 3 shared
   teachers of seeds s, s+1000, s+2000; the paper uses up to 5 ResNets).
2. Oracle KD loss: per sample, the members that classify it correctly form C(x) (the paper's indicator u); the
   student distils from them, and from no member when none is correct (the paper then falls back to plain
   cross-entropy). The paper's ensemble averages *logits* (its independent ensemble is simple logit averaging),
   so the target is the average of C(x)'s logits (``combine="logits"``; ``"probs"`` averages softmax(·/τ)).
   Default ``if_none_correct="ce"``, the paper's choice: a sample no member gets right has no trustworthy soft
   target; ``"ensemble"`` distils the full-ensemble average there instead. L = CE(y, s) + λ·τ²·KL(target_τ ‖ s_τ).
   Targets are precomputed once from the members' cached train logits (free, like any cached teacher output).
3. Search space (``methods/spaces/kdas1d.py``): the backbone student keeps its structure and an operation is
   *added* at each block as a parallel branch — the paper's seven ops (identity/none, 3x3 and 5x5 conv, 3x3 and 5x5
   separable conv, max and average pooling) made 1-D (k = 5, 9; 3-tap pools); the width is rescaled so the deployed
   student stays within the parameter budget.
4. Search: ENAS (Pham et al. 2018), on which the paper builds: an LSTM controller samples one op per block,
   children share weights in one supernet trained with the Oracle KD loss, the controller is trained with REINFORCE
   on each child's reward. The paper searches under a fixed memory size ("fixing the network capacity"; the exact
   form of its constraint is not in the text available here); here the capacity is the protocol's parameter budget,
   imposed in the reward as a soft constraint in MnasNet's form (Tan et al., CVPR 2019): reward = validation
   macro-F1 · min(1, budget / P)^w, w = ``size_exponent`` 0.07 (MnasNet's), P the child's parameters at the width it
   is searched at. A child that fits unshrunk is not penalised; one that must be narrowed to fit is, in proportion to
   how much. 5. The best of several architectures sampled from the trained controller (by the same reward, scored on
   the whole validation split) is narrowed to the budget and retrained from scratch with the Oracle KD loss: the row
   "as published". The runner also retrains it with the protocol's one KD recipe (``vanilla_kd``'s from the
   protocol's KD source, ``Method.protocol_retrain``): the row "protocol retraining".

Values: from ENAS's public code (the paper gives no controller settings in the text available here): LSTM 100 hidden
units, tanh constant 2.5, logit temperature 5 (carpedm20/ENAS-pytorch), Adam lr 3.5e-3, baseline decay 0.99 and
entropy weight 1e-4 added to the reward (melodyguan/enas search scripts, ``--controller_lr=0.0035``; release 1 used
ENAS-pytorch's 3.5e-4, under which tens of updates left the policy near uniform). Assumed, with reasons: λ = 1 and
τ = 4 (not in the text available here; τ = 4 is the benchmark's Hinton-KD default, λ = 1 weighs KD and CE equally);
``controller_samples`` = 30 children rewarded after each supernet epoch (ENAS's ``controller_train_steps=30``), each
on ``reward_val_subset`` = 20 % of the validation split (a fixed class-stratified share, ``RunContext.val_rows``: ENAS
rewards each child on one validation minibatch), so the controller gets tens to hundreds of updates within the
budget; ``derive_samples`` = 8 architectures sampled at the end (ENAS samples hundreds; the budget pays for tens);
``supernet_fraction`` = 0.5: every supernet epoch trains on the same fixed random half of the training split, so the
budget pays for more supernet epochs and controller steps. The supernet epochs are planned from the MACs and the
budget; what each run did (supernet epochs, controller updates, the policy's entropy at the search's start and end,
evaluated children) is in its record's ``provenance.notes.search``, and the leaderboard's notes report it.
The Oracle KD loss's reach is measured too: the share of training samples whose oracle target differs from the plain
ensemble's (some but not all members correct, or none correct) is in ``notes.oracle`` and the leaderboard's method
notes; where the members nearly always agree, the loss is close to plain KD from the ensemble.

Deviations, each with its reason:
- Rewards are the protocol's selection signal (validation macro-F1, on a fixed share of the validation split during
  the search and on the whole split for the final choice, charged), not accuracy on a validation minibatch: the
  protocol has one selection signal.
- The supernet trains at the backbone's own width and the budget enters the reward (above), not a child scored at
  its deployed width: children of different widths cannot share one set of weights.
- The paper's search space also samples skip connections between added layers (its 2^(2L)·7^L); here only the op
  per block is searched (7^L): the staged backbone has no cell graph to rewire.
- The supernet is never selected on an (uncharged) validation pass: its latest weights are kept.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from benchmark.candidates import CandidatePool, TracePool, UnbuildableCandidate
from benchmark.context import RunContext
from benchmark.engine import TRAIN_PASSES, reserved
from benchmark.nn.arch import ArchSpec
from benchmark.nn.staged import StagedCNNSpec
from methods.base import Method, MethodConfig, register_method
from methods.config_checks import Check, at_least, between, one_of, positive
from methods.enas_controller import LSTMController, Reinforce
from methods.losses import oracle_kd_objective, oracle_targets
from methods.spaces.kdas1d import OPS, KDASNet, block_shapes, child_params, fit_width, supernet


@dataclass(frozen=True)
class OracleKDConfig(MethodConfig):
    checks: ClassVar[dict[str, Check]] = {
        "weight": at_least(0),
        "temperature": positive(),
        "combine": one_of("logits", "probs"),
        "if_none_correct": one_of("ce", "ensemble"),
        "controller_hidden": at_least(1),
        "controller_lr": positive(),
        "baseline_decay": between(0, 1),
        "entropy_weight": at_least(0),
        "tanh_constant": positive(),
        "controller_temperature": positive(),
        "controller_samples": at_least(1),
        "derive_samples": at_least(1),
        "supernet_fraction": between(0, 1, low_open=True),
        "max_supernet_epochs": at_least(1),
        "reward_val_subset": between(0, 1, low_open=True),
        "size_exponent": at_least(0),
    }
    search: bool = True  # False: Oracle KD on the protocol's default student (no search)
    weight: float = 1.0  # λ
    temperature: float = 4.0  # τ
    combine: str = "logits"  # "logits" | "probs": what is averaged over the correct members
    if_none_correct: str = "ce"  # "ce" | "ensemble": the target when no member is correct
    controller_hidden: int = 100
    controller_lr: float = 3.5e-3  # melodyguan/enas search scripts (--controller_lr=0.0035)
    baseline_decay: float = 0.99
    entropy_weight: float = 1e-4
    tanh_constant: float = 2.5
    controller_temperature: float = 5.0
    controller_samples: int = 30  # children evaluated (one REINFORCE step each) after every supernet epoch
    reward_val_subset: float = 0.2  # ... each on this class-stratified share of validation (``val_rows``)
    size_exponent: float = 0.07  # reward = score · min(1, budget / params at search width)^this (MnasNet's w)
    derive_samples: int = 8  # architectures sampled from the trained controller at the end (more if budget is left)
    supernet_fraction: float = 0.5  # the fixed random share of the training split every supernet epoch trains on
    max_supernet_epochs: int = 30


@register_method("oracle_kd")
class OracleKD(Method):
    """Oracle KD from the ensemble teacher, with ENAS-style search for ops added to the default student."""

    Config = OracleKDConfig
    uses_ensemble = True
    summary = "Kang et al. 2020 (KDAS): Oracle KD from an M-teacher ensemble + LSTM/REINFORCE search of added ops"
    ablations = ({"search": False},)  # the Oracle KD loss alone, on the default student

    def __init__(self, config: MethodConfig | None = None) -> None:
        super().__init__(config)
        self._targets: dict[int, dict[str, Tensor]] = {}  # the run context's id -> its oracle targets

    def search(self, ctx: RunContext) -> ArchSpec:
        extras = self._oracle_extras(ctx)
        if not self.config.search:
            return ctx.default_student
        if ctx.default_student.family != "staged_cnn":
            raise ValueError(f"oracle_kd searches on a staged_cnn backbone, not {ctx.default_student.family!r}")
        return KDASSearch(self.config, ctx, extras).run()

    def distill(self, arch: ArchSpec, ctx: RunContext) -> nn.Module:
        cfg = self.config
        model = ctx.build(arch)
        ctx.fit(model, oracle_kd_objective(cfg.weight, cfg.temperature, ctx.recipe.label_smoothing), phase="final",
                extras=self._oracle_extras(ctx))
        return model

    def candidate_pool(self, trace: list[dict[str, Any]], ctx: RunContext) -> CandidatePool:
        """One entry per distinct child (its ops), whether the controller or the final derivation sampled it."""
        return TracePool(trace, key=lambda candidate: candidate["ops"])

    def candidate_arch(self, candidate: dict[str, Any], ctx: RunContext) -> ArchSpec:
        """A traced child (``{"ops": [...]}``) with its width fitted to the budget, as the search derives its pick."""
        fitted = fit_width(StagedCNNSpec.from_dict(ctx.default_student.params), candidate["ops"],
                           ctx.data.input_shape[0], ctx.data.n_classes, ctx.max_params)
        if fitted is None:
            raise UnbuildableCandidate(f"child {candidate['ops']} is over the parameter budget at every width")
        return fitted[0]

    def _oracle_extras(self, ctx: RunContext) -> dict[str, Tensor]:
        """Per-sample Oracle KD targets on the training split, from the members' cached logits (computed once)."""
        if id(ctx) not in self._targets:
            members = ctx.ensemble()
            logits = torch.stack([m.train_logits for m in members])
            labels = ctx.train.y.cpu()
            target, mask = oracle_targets(logits, labels, self.config.combine, self.config.if_none_correct,
                                          self.config.temperature)
            n_correct = (logits.argmax(dim=2) == labels).sum(dim=0)
            differs = float(target_differs(logits, target, mask, self.config.combine,
                                           self.config.temperature).float().mean())
            ctx.notes["oracle"] = {
                "members": [m.teacher_id for m in members],
                "train_share_by_correct_members": {
                    str(k): float((n_correct == k).float().mean()) for k in range(len(members) + 1)},
                "train_share_with_kd_term": float(mask.float().mean()),
                "train_share_target_differs_from_ensemble": differs,
            }
            ctx.report("training beats whose oracle target differs from the ensemble's (%)", 100 * differs)
            self._targets = {id(ctx): {"oracle_logits": target, "oracle_mask": mask}}
        return self._targets[id(ctx)]


def target_differs(member_logits: Tensor, target: Tensor, mask: Tensor, combine: str, temperature: float) -> Tensor:
    """Per training sample, whether the Oracle KD target differs from the plain ensemble's (the same average over all
    members, with a KD term on every sample): some but not all members correct, or none correct and no KD term."""
    full, _ = oracle_targets(member_logits, torch.full(member_logits.shape[1:2], -1), combine, "ensemble",
                             temperature)
    return ~mask | ((target - full).abs().amax(dim=1) > 1e-5 * (1 + full.abs().amax(dim=1)))


class KDASSearch:
    """One ENAS-style search: supernet epochs with a child sampled per step, controller updates between epochs."""

    def __init__(self, cfg: OracleKDConfig, ctx: RunContext, extras: dict[str, Tensor]) -> None:
        self.cfg, self.ctx, self.extras = cfg, ctx, extras
        self.backbone = StagedCNNSpec.from_dict(ctx.default_student.params)
        in_channels, self.n_classes = ctx.data.input_shape[0], ctx.data.n_classes
        self.in_channels = in_channels
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(ctx.seed)
            self.net = supernet(self.backbone, in_channels, self.n_classes).to(ctx.engine.device)
            self.controller = LSTMController(len(block_shapes(self.backbone)), len(OPS), cfg.controller_hidden,
                                             cfg.tanh_constant, cfg.controller_temperature)
        self.reinforce = Reinforce(self.controller, cfg.controller_lr, cfg.baseline_decay, cfg.entropy_weight)
        self.generator = torch.Generator().manual_seed(ctx.seed)
        self.macs_cache: dict[tuple[str, ...], float] = {}
        self.params_cache: dict[tuple[str, ...], int] = {}
        self.reward_rows = ctx.val_rows(cfg.reward_val_subset)
        self.epochs_done = 0
        self.updates: list[dict[str, Any]] = []

    def ops(self, choices: list[int]) -> list[str]:
        return [OPS[i] for i in choices]

    def forward_macs(self, ops: list[str]) -> float:
        key = tuple(ops)
        if key not in self.macs_cache:
            self.net.set_active(ops)
            self.macs_cache[key] = float(self.ctx.macs(self.net))
        return self.macs_cache[key]

    def size_factor(self, ops: list[str]) -> float:
        """The reward's size term: ``min(1, budget / params)^size_exponent``, with the child's parameters counted at
        the width it is searched at (MnasNet's soft constraint; 1 for a child that fits the budget unshrunk)."""
        key = tuple(ops)
        if key not in self.params_cache:
            self.params_cache[key] = child_params(self.backbone, ops, self.in_channels, self.n_classes)
        return min(1.0, self.ctx.max_params / self.params_cache[key]) ** self.cfg.size_exponent

    def evaluate(self, ops: list[str], stage: str, rows: Any = None) -> float:
        """The child's reward: its charged validation score with the supernet's shared weights (on ``rows`` of the
        validation split, or all of it) times its size term; recorded in the trace."""
        before = self.ctx.search_meter.units
        self.net.set_active(ops)
        reward = self.ctx.search_val_score(self.net, rows) * self.size_factor(ops)
        share = "all" if rows is None else f"{self.cfg.reward_val_subset:.0%}"
        self.ctx.record_candidate({"ops": ops, "stage": stage}, f"shared weights after {self.epochs_done} supernet "
                                  f"epoch(s) on a fixed {self.cfg.supernet_fraction:g} of train; {share} of val; "
                                  f"reward = macro-F1 · min(1, budget / params)^{self.cfg.size_exponent:g}", reward,
                                  self.ctx.search_meter.units - before)
        return reward

    def policy_entropy(self, samples: int = 64) -> float:
        """The controller's policy entropy in nats (mean over sampled sequences of their summed per-decision
        entropies, an unbiased estimate of the joint entropy), from its own generator: the search's draws are
        untouched. The uniform policy's is ``decisions · ln(len(OPS))``."""
        generator = torch.Generator().manual_seed(self.ctx.seed + 7)
        with torch.no_grad():
            return sum(float(self.controller.sample(generator).entropy) for _ in range(samples)) / samples

    def eval_cost(self) -> float:
        """Upper estimate of one child's validation pass (the heaviest op everywhere)."""
        heaviest = max(OPS, key=lambda op: self.forward_macs([op] * len(self.controller.heads)))
        ops = [heaviest] * len(self.controller.heads)
        return self.ctx.search_meter.units_of(self.forward_macs(ops) * len(self.ctx.val))

    def supernet_epochs(self, reserve: float) -> int:
        """Supernet epochs the budget pays for, after the reserve, with the controller's evaluations included."""
        meter, cfg = self.ctx.search_meter, self.cfg
        probe = [self.ops(self.controller.sample(self.generator).choices) for _ in range(8)]
        mean_macs = sum(self.forward_macs(ops) for ops in probe) / len(probe)
        n_train = round(cfg.supernet_fraction * len(self.ctx.train))
        per_epoch = meter.units_of(TRAIN_PASSES * mean_macs * n_train) + cfg.controller_samples * meter.units_of(
            mean_macs * self.ctx.val_size(self.reward_rows))
        return max(1, min(cfg.max_supernet_epochs, int((meter.remaining - reserve) / per_epoch)))

    def train_controller(self, epoch: int, _: nn.Module) -> None:
        """Epoch hook: after each supernet epoch, REINFORCE steps on freshly evaluated children."""
        if epoch == 0:
            return
        self.epochs_done = epoch
        for _ in range(self.cfg.controller_samples):
            if self.ctx.search_meter.exhausted:
                return
            sample = self.controller.sample(self.generator)
            ops = self.ops(sample.choices)
            score = self.evaluate(ops, "controller", self.reward_rows)
            self.updates.append({"epoch": epoch, "ops": ops, "score": score,
                                 **self.reinforce.update(sample, score)})

    def run(self) -> ArchSpec:
        ctx, cfg = self.ctx, self.cfg
        reserve = cfg.derive_samples * self.eval_cost()
        epochs = self.supernet_epochs(reserve)
        entropy_start = self.policy_entropy()
        recipe = ctx.search_recipe(epochs)
        n_train = len(ctx.train)
        subset = torch.randperm(n_train, generator=self.generator)[:max(1, round(cfg.supernet_fraction * n_train))]
        subset = subset.sort().values

        def step_hook(step: int, _: nn.Module) -> None:
            with torch.no_grad():
                self.net.set_active(self.ops(self.controller.sample(self.generator).choices))

        def latest(_: nn.Module) -> float:  # keep the latest supernet weights; no uncharged validation pass
            return float(self.epochs_done + 1)

        with reserved(ctx.search_meter, reserve):
            fit = ctx.fit(self.net, oracle_kd_objective(cfg.weight, cfg.temperature, ctx.recipe.label_smoothing),
                          phase="search", recipe=recipe, extras=self.extras, subset=subset, step_hook=step_hook,
                          epoch_hook=self.train_controller, scorer=latest,
                          macs_per_sample=lambda: TRAIN_PASSES * self.forward_macs(self.net.active))
        self.epochs_done = fit.epochs_run
        derived = self.derive()
        entropy_end = self.policy_entropy()
        ctx.report("controller policy entropy at the search's start (nats)", entropy_start)
        ctx.report("controller policy entropy at the search's end (nats)", entropy_end)
        ctx.notes["search"] = {
            "supernet_epochs": fit.epochs_run, "planned_epochs": epochs, "stopped": fit.stopped,
            "controller_updates": self.updates, "derived": derived,
            "controller_marginals": self.controller.marginals(),
            "policy_entropy": {"start": entropy_start, "end": entropy_end,
                               "uniform": len(self.controller.heads) * math.log(len(OPS))},
            "candidates_evaluated": len(ctx.search_trace),
            "distinct_candidates": len({tuple(c["candidate"]["ops"]) for c in ctx.search_trace}),
        }
        if not derived:
            ctx.log.warning("oracle_kd: no budget left to evaluate a derived child; taking the controller's greedy one")
            best_ops = self.ops(self.controller.sample(greedy=True).choices)
        else:
            best_ops = max(derived, key=lambda d: d["score"])["ops"]
        fitted = fit_width(self.backbone, best_ops, self.in_channels, self.n_classes, ctx.max_params)
        if fitted is None:
            ctx.log.warning("oracle_kd: the chosen child is over budget at every width; using the default student")
            return ctx.default_student
        arch, factor = fitted
        ctx.notes["search"]["chosen"] = {"ops": best_ops, "width_factor": factor}
        return arch

    def derive(self) -> list[dict[str, Any]]:
        """Sample architectures from the trained controller and score each (at least ``derive_samples`` when the
        budget allows; more while it lasts, up to 4x)."""
        derived: list[dict[str, Any]] = []
        meter, cost = self.ctx.search_meter, self.eval_cost()
        with torch.no_grad():
            while len(derived) < 4 * self.cfg.derive_samples and meter.remaining >= cost:
                if len(derived) >= self.cfg.derive_samples and meter.remaining < 2 * cost:
                    break
                ops = self.ops(self.controller.sample(self.generator).choices)
                derived.append({"ops": ops, "score": self.evaluate(ops, "derive")})
        return derived


__all__ = ["KDASNet", "OracleKD", "OracleKDConfig"]
