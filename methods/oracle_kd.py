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
   student stays within the parameter budget (the paper searches under a fixed memory size).
4. Search: ENAS (Pham et al. 2018), on which the paper builds: an LSTM controller samples one op per block,
   children share weights in one supernet trained with the Oracle KD loss, the reward is the child's validation
   score, the controller is trained with REINFORCE. 5. The best of several architectures sampled from the trained
   controller is retrained from scratch with the Oracle KD loss.

Values: from ENAS's public code (the paper builds on ENAS and gives no controller settings in the text available
here): LSTM 100 hidden units, Adam lr 3.5e-4, tanh constant 2.5, logit temperature 5 (carpedm20/ENAS-pytorch),
baseline decay 0.99 and entropy weight 1e-4 added to the reward (melodyguan/enas). Assumed, with reasons: λ = 1 and
τ = 4 (the paper's values are not in the text available here; τ = 4 is the benchmark's Hinton-KD default, λ = 1
weighs KD and CE equally as the issue's loss writes them); ``controller_samples`` = 6 children evaluated after each
supernet epoch and ``derive_samples`` = 8 architectures sampled at the end (ENAS samples hundreds; the search budget
pays for tens); ``supernet_fraction`` = 0.5 of the training split per supernet epoch, so that the quick profile's
30 units pay for several supernet epochs and >= 30 evaluated children (planned on mitbih small quick under protocol
v1's split, from the MACs: 11 supernet epochs, 60 controller evaluations and >= 8 derived children, one child's
validation pass ~0.1-0.56 units with 8,835 validation beats against 42,141 training beats; protocol v2 validates on
18,374 beats against 32,602, so a child's pass costs ~2.7x as much per training epoch and the plan has fewer supernet
epochs; each record's search trace counts what was evaluated).

Deviations, each with its reason:
- Rewards are the protocol's selection signal (validation macro-F1 over the whole validation split, charged), not
  accuracy on a validation minibatch: the protocol has one selection signal.
- The supernet trains at the backbone's own width; a child's width is rescaled to the budget only when it is
  deployed (children of different widths cannot share one set of weights).
- The paper's search space also samples skip connections between added layers (its 2^(2L)·7^L); here only the op
  per block is searched (7^L): the staged backbone has no cell graph to rewire.
- With tens of controller updates at lr 3.5e-4 the policy moves little from uniform, so the final choice is mostly
  the best of the sampled children: the record's notes keep the controller's marginals to show it.
- The supernet is never selected on an (uncharged) validation pass: its latest weights are kept.
"""

from __future__ import annotations

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
from methods.spaces.kdas1d import OPS, KDASNet, block_shapes, fit_width, supernet


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
    }
    search: bool = True  # False: Oracle KD on the protocol's default student (no search)
    weight: float = 1.0  # λ
    temperature: float = 4.0  # τ
    combine: str = "logits"  # "logits" | "probs": what is averaged over the correct members
    if_none_correct: str = "ce"  # "ce" | "ensemble": the target when no member is correct
    controller_hidden: int = 100
    controller_lr: float = 3.5e-4
    baseline_decay: float = 0.99
    entropy_weight: float = 1e-4
    tanh_constant: float = 2.5
    controller_temperature: float = 5.0
    controller_samples: int = 6  # children evaluated (one REINFORCE step each) after every supernet epoch
    derive_samples: int = 8  # architectures sampled from the trained controller at the end (more if budget is left)
    supernet_fraction: float = 0.5  # share of the training split one supernet epoch sees
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
            ctx.notes["oracle"] = {
                "members": [m.teacher_id for m in members],
                "train_share_by_correct_members": {
                    str(k): float((n_correct == k).float().mean()) for k in range(len(members) + 1)},
                "train_share_with_kd_term": float(mask.float().mean()),
            }
            self._targets = {id(ctx): {"oracle_logits": target, "oracle_mask": mask}}
        return self._targets[id(ctx)]


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

    def evaluate(self, ops: list[str], stage: str) -> float:
        """The child's charged validation score with the supernet's shared weights; recorded in the trace."""
        before = self.ctx.search_meter.units
        self.net.set_active(ops)
        score = self.ctx.search_val_score(self.net)
        self.ctx.record_candidate({"ops": ops, "stage": stage}, f"shared weights after {self.epochs_done} supernet "
                                  f"epoch(s) of {self.cfg.supernet_fraction:g} of train", score,
                                  self.ctx.search_meter.units - before)
        return score

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
            mean_macs * len(self.ctx.val))
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
            score = self.evaluate(ops, "controller")
            self.updates.append({"epoch": epoch, "ops": ops, "score": score,
                                 **self.reinforce.update(sample, score)})

    def run(self) -> ArchSpec:
        ctx, cfg = self.ctx, self.cfg
        reserve = cfg.derive_samples * self.eval_cost()
        epochs = self.supernet_epochs(reserve)
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
        ctx.notes["search"] = {
            "supernet_epochs": fit.epochs_run, "planned_epochs": epochs, "stopped": fit.stopped,
            "controller_updates": self.updates, "derived": derived,
            "controller_marginals": self.controller.marginals(),
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
