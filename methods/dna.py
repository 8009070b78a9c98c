"""DNA: block-wisely supervised neural architecture search with knowledge distillation.

Paper: Li, Peng, Yuan, Wang, Liang, Lin & Chang, "Block-wisely Supervised Neural Architecture Search with
Knowledge Distillation", CVPR 2020. Official code: github.com/changlin31/DNA (``searching/dna/distill_train.py``,
``student_supernet.py``, ``operations.py``, ``searching/process_potential.py``). Implemented here, on 1-D signals:

1. The shared teacher (a staged CNN) is split at its stages: block i's input is the teacher's output of stage
   i-1 (its stem's output for block 1), its target the teacher's stage-i output. The student space mirrors it
   (``methods/spaces/mbconv1d.py``): a stem of the teacher stem's kernel and stride, then one block per teacher
   stage with that stage's stride; each block is ``layers`` searchable layers whose ops are MBConv with expansion
   {3, 6} x kernel {3, 5, 7}, SE 0.25 and swish (official ``PRIMITIVES``), later layers also ``skip``.
2. Every block is trained separately (official ``guide_input``/``separate_train``) through the engine, one
   ``ctx.fit(phase="search")`` per block: MSE between the block's output and the teacher's block target (official
   ``feature_train``; the last block by MSE too), one uniformly random single path per step (a step hook; official
   ``uniform_random_op_encoding``). The teacher's stem and stage outputs on the training split are computed once and
   cached in float16 (its forward pass over the split is charged at 1 x its MACs; the cache's size is in the
   record's notes), so block i trains on exactly the teacher's features, never on a student block's output.
3. Every path of every block is scored by its potential on the validation split (a fixed random subset of
   ``potential_samples``; the official scores on a held-out part of train, the protocol gives a validation split
   for exactly this), after resetting the block's BN statistics and re-estimating them on ``bn_samples`` training
   samples (official ``reset_bn_eval``): ``cl = mean|Y_s - Y_t| / std(Y_t)`` per batch, averaged (the official
   ranking, ``potential['cl_loss']`` in ``process_potential.py``); ``rl = MSE / Var(Y_t)`` and
   ``gr = mean|Δ| / mean|Y_t|`` are computed and recorded too (``potential="rl"|"gr"`` ranks by them).
4. The architecture is the combination of one path per block with the smallest sum of potentials whose deployed
   network fits the parameter budget: exhaustive traversal of the per-block lists sorted by potential with
   branch-and-bound on the remaining budget and on the best sum so far (``traverse``), over an exact per-op
   parameter table built from instantiated modules (``mbconv1d.param_table``), so the table's count is the deployed
   network's.
5. The chosen network is retrained from scratch with the protocol's recipe: cross-entropy as in the paper
   (``retraining/train.py``), the row "as published". The runner also retrains the same pick with the protocol's one
   KD recipe (``vanilla_kd``'s from the protocol's KD source, ``Method.protocol_retrain``), the row "protocol
   retraining", which replaces release 1's ``final_kd=true`` ablation (the option stays, for its records).

Deviations, each with its reason:
- 1-D ops and kernels: the benchmark's inputs are 1-D signals. Kernels {3, 5, 7} are kept: on an ECG beat (256
  samples at 180 Hz, stem /2, then /2 per block) a 7-tap depthwise conv in block 1 spans 78 ms (about a QRS
  complex) and blocks 3-4 run on 16 and 8 positions, where longer kernels would only see padding; the teacher
  itself uses kernels 7/5/5/3.
- Widths and adapters: the teacher's widths (24 stem, 32-192) with expansion-6 MBConv + SE would need several
  times the ``small`` budget (32k parameters), so every student width, stem included, is ``width_mult`` x the
  teacher's (0: the widest multiple of 1/16 whose smallest network takes at most half the budget, so the budget
  binds the search; 4/16 on MIT-BIH small with round 5's separable teacher: stem 8, blocks 8/16/32/48; 5/16 with
  the residual teacher of rounds 1-4, 32-128: stem 8, blocks 8/20/32/40). During search, 1x1 convolutions map the
  teacher's block input to the student's width and the student's block output to the teacher's width (MSE is
  taken at the teacher's width); these adapters exist only during search and are not part of the deployed network
  or its parameter count.
- Depth: ``layers`` (2) searchable layers per block, all but the first with a ``skip`` op, so each block's depth
  (1-2 layers) is searched too; the official fixes 1-4 layers per block without skip.
- Budget: parameters (the protocol's), not the official FLOPs target; no stern (1x1 conv to 1280) and no
  MB1 stem layer, which would not fit 32k parameters.
- Supernet epochs: what the profile's search budget pays for, instead of the official 20-40 ImageNet epochs. The
  teacher's cache and the potentials' cost (fewer scored samples if it would pass ``potential_share`` of the budget)
  come first; each block then gets the budget left, less the later blocks' potentials, divided among the blocks
  still to train, in whole epochs, so what a block leaves (rounding, or ``max_block_epochs`` when set) passes to
  the later, dearer blocks; the last block plans one epoch more and is stopped by the budget where its potentials'
  reserve begins, so the search spends its budget (its one-cycle schedule then ends a fraction of an epoch short).
  No cap by default (``max_block_epochs=0``): the official trains block supernets longer than a final student;
  release 1 capped them at the retraining epochs and left about a fifth of the budget unspent. Each record keeps
  every block's epochs, share and cost under ``provenance.notes.search.blocks`` (the leaderboard's search notes
  count the networks and block paths evaluated). Each block keeps its last epoch's weights (the official scores
  the final supernet), trained with the engine's AdamW + one-cycle schedule.
- Potentials use recalibrated running BN statistics in eval mode (the official forwards in train-mode BN, i.e.
  with the scored batch's own statistics, after the reset); recalibration on training data keeps the score of a
  path independent of the composition of the scored batch.
"""

from __future__ import annotations

import itertools
import math
import random
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from benchmark.candidates import AuditUnsupported
from benchmark.context import RunContext
from benchmark.engine import TRAIN_PASSES, Batch, reserved
from benchmark.metrics import count_macs
from benchmark.nn.arch import ArchSpec
from benchmark.nn.staged import StagedCNN1d, StagedCNNSpec
from benchmark.teachers import cross_entropy_objective
from methods.base import Method, MethodConfig, register_method
from methods.block_combinations import BlockCombinationPool
from methods.config_checks import Check, at_least, between, one_of, positive
from methods.spaces.mbconv1d import (
    BlockSupernet,
    MBConvSpace,
    Path,
    fixed_params,
    for_teacher,
    op_macs,
    op_names,
    param_table,
    path_params,
    to_arch,
)
from methods.vanilla_kd import distill_with_hinton_kd

POTENTIALS = ("cl", "rl", "gr")


@dataclass(frozen=True)
class DNAConfig(MethodConfig):
    checks: ClassVar[dict[str, Check]] = {
        "layers": at_least(1),
        "width_mult": at_least(0),
        "max_block_epochs": at_least(0),
        "potential": one_of("cl", "rl", "gr"),
        "potential_samples": at_least(1),
        "bn_samples": at_least(1),
        "potential_share": between(0, 1, low_open=True),
        "alpha": between(0, 1),
        "temperature": positive(),
    }
    expansions: tuple[int, ...] = (3, 6)  # official PRIMITIVES
    kernels: tuple[int, ...] = (3, 5, 7)
    layers: int = 2  # searchable layers per block; all but the first may be "skip"
    width_mult: float = 0.0  # student width / teacher width; 0: the widest whose smallest network <= budget / 2
    max_block_epochs: int = 0  # most supernet epochs per block; 0: no cap but the search budget
    potential: str = "cl"  # the ranking score: "cl" (official), "rl" or "gr"
    potential_samples: int = 2048  # validation samples each path is scored on
    bn_samples: int = 256  # training samples BN statistics are re-estimated on before scoring a path
    potential_share: float = 0.25  # most of the search budget potentials may take (fewer samples beyond it)
    final_kd: bool = False  # retrain with Hinton KD instead of cross-entropy (the paper's retraining)
    alpha: float = 0.9  # Hinton KD, as vanilla_kd (final_kd only)
    temperature: float = 4.0


class BlockTrainer(nn.Module):
    """A block supernet between its two search-only adapters: teacher width -> student -> teacher width."""

    def __init__(self, space: MBConvSpace, block: int, teacher_in: int, teacher_out: int) -> None:
        super().__init__()
        c_in, c_out = space.block_in(block), space.blocks[block].channels
        self.adapt_in = nn.Conv1d(teacher_in, c_in, 1) if teacher_in != c_in else nn.Identity()
        self.block = BlockSupernet(space, block)
        self.adapt_out = nn.Conv1d(c_out, teacher_out, 1) if teacher_out != c_out else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        return self.adapt_out(self.block(self.adapt_in(x)))


@torch.no_grad()
def teacher_stages(teacher: StagedCNN1d, x: Tensor, batch_size: int) -> list[Tensor]:
    """The teacher's stem and stage outputs for every row of ``x``, float16 (no_grad tensors, usable as inputs),
    written chunk by chunk into preallocated tensors (peak memory: the cache plus one chunk)."""
    was_training = teacher.training
    teacher.eval()
    out: list[Tensor] = []
    for start in range(0, len(x), batch_size):
        chunk = teacher.forward_stages(x[start:start + batch_size])
        if not out:
            out = [torch.empty((len(x), *f.shape[1:]), dtype=torch.float16, device=f.device) for f in chunk]
        for cache, f in zip(out, chunk, strict=True):
            cache[start:start + len(f)] = f
    teacher.train(was_training)
    return out


def feature_mse_objective(model: nn.Module, batch: Batch) -> dict[str, Tensor]:
    """MSE between the block's output on the teacher's block input and the teacher's block output."""
    out = model(batch.extras["dna_in"].float())
    return {"feature_mse": F.mse_loss(out, batch.extras["dna_target"].float())}


@torch.no_grad()
def recalibrate_bn(model: nn.Module, x: Tensor, batch_size: int) -> None:
    """Reset every BN's running statistics and re-estimate them (cumulative average) on ``x``."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None
    model.train()
    for i in range(0, len(x), batch_size):
        model(x[i:i + batch_size].float())
    for m, momentum in zip(norms, momenta, strict=True):
        m.momentum = momentum
    model.eval()


@torch.no_grad()
def potentials(model: nn.Module, x: Tensor, target: Tensor, batch_size: int) -> dict[str, float]:
    """DNA's scores of ``model`` (eval mode) per batch, averaged weighted by batch size: cl = mean|Δ|/std(Y),
    rl = MSE/Var(Y), gr = mean|Δ|/mean|Y| (official ``_potential``)."""
    model.eval()
    sums = dict.fromkeys(POTENTIALS, 0.0)
    for i in range(0, len(x), batch_size):
        y = target[i:i + batch_size].float()
        delta = model(x[i:i + batch_size].float()) - y
        abs_div = delta.abs().mean()
        n = len(y)
        sums["cl"] += n * float(abs_div / (y.std() + 1e-9))
        sums["rl"] += n * float(delta.pow(2).mean() / (y.var() + 1e-9))
        sums["gr"] += n * float(abs_div / (y.abs().mean() + 1e-9))
    return {k: v / len(x) for k, v in sums.items()}


def traverse(candidates: list[list[tuple[float, int]]], budget: int) -> tuple[list[int] | None, dict[str, int]]:
    """The choice of one candidate per block (``(potential, params)`` each) minimising the summed potential with
    summed params <= ``budget``; exhaustive depth-first traversal of the lists sorted by potential, pruning a branch
    when even the cheapest completion breaks the budget or the smallest completion cannot beat the best sum.
    Returns the chosen index per block (None when nothing fits) and counts of nodes and complete combinations."""
    n = len(candidates)
    order = [sorted(range(len(c)), key=lambda j, c=c: c[j]) for c in candidates]
    min_params = [0] * (n + 1)
    min_potential = [0.0] * (n + 1)
    for i in range(n - 1, -1, -1):
        min_params[i] = min_params[i + 1] + min(p for _, p in candidates[i])
        min_potential[i] = min_potential[i + 1] + min(s for s, _ in candidates[i])
    best: dict[str, Any] = {"score": math.inf, "choice": None}
    stats = {"nodes": 0, "combinations": 0}

    def visit(i: int, score: float, params: int, choice: list[int]) -> None:
        if i == n:
            stats["combinations"] += 1
            if score < best["score"]:
                best.update(score=score, choice=list(choice))
            return
        for j in order[i]:
            potential, cost = candidates[i][j]
            if score + potential + min_potential[i + 1] >= best["score"]:
                break  # sorted by potential: every later candidate of this block is worse
            if params + cost + min_params[i + 1] > budget:
                continue
            stats["nodes"] += 1
            choice.append(j)
            visit(i + 1, score + potential, params + cost, choice)
            choice.pop()

    visit(0, 0.0, 0, [])
    return best["choice"], stats


@register_method("dna")
class DNA(Method):
    """DNA: block-wise supernets trained on the teacher's features, potentials, budgeted traversal (module doc)."""

    Config = DNAConfig
    summary = "Li et al. CVPR 2020: block-wise feature-MSE supernets, potential ranking, budgeted traversal, retrain"
    # no ablations: the protocol retraining of every search (Method.final_trainings) replaced ``final_kd=true``

    def __init__(self, config: MethodConfig | None = None) -> None:
        super().__init__(config)
        cfg = self.config
        if cfg.potential not in POTENTIALS:
            raise ValueError(f"dna potential must be one of {', '.join(POTENTIALS)}, not {cfg.potential!r}")
        if cfg.layers < 1 or cfg.max_block_epochs < 0 or cfg.potential_samples < 1 or cfg.bn_samples < 1:
            raise ValueError("dna layers, potential_samples and bn_samples must be positive, max_block_epochs >= 0")
        self.ops = op_names(tuple(cfg.expansions), tuple(cfg.kernels))

    def search(self, ctx: RunContext) -> ArchSpec:
        cfg = self.config
        teacher = ctx.teacher().model
        if not isinstance(teacher, StagedCNN1d):
            raise TypeError(f"dna needs a staged teacher (StagedCNN1d), got {type(teacher).__name__}")
        batch = ctx.recipe.batch_size
        teacher_macs = ctx.macs(teacher)
        train_feats = teacher_stages(teacher, ctx.train.x, ctx.engine.eval_batch_size)
        cache_units = ctx.charge_forward(len(ctx.train), teacher_macs)

        spec = teacher.spec
        space = for_teacher((spec.stem_channels, spec.stem_kernel, spec.stem_stride),
                            [s.channels for s in spec.stages], [s.stride for s in spec.stages], self.ops, cfg.layers,
                            cfg.width_mult, ctx.max_params, ctx.data.input_shape[0], ctx.data.n_classes)
        n_blocks = len(space.blocks)
        table = param_table(space)
        trainers = [BlockTrainer(space, i, train_feats[i].shape[1], train_feats[i + 1].shape[1]).to(ctx.engine.device)
                    for i in range(n_blocks)]
        macs = [self._macs_table(space, i, trainers[i], train_feats[i].shape[1:], train_feats[i + 1].shape[-1])
                for i in range(n_blocks)]
        paths = [space.block_paths(i) for i in range(n_blocks)]

        pot_rows, bn_rows = self._scoring_rows(ctx, macs, paths, teacher_macs)
        val_feats = teacher_stages(teacher, ctx.val.x[pot_rows.to(ctx.val.x.device)], ctx.engine.eval_batch_size)
        cache_units += ctx.charge_forward(len(pot_rows), teacher_macs)
        cache_bytes = sum(f.numel() * f.element_size() for f in train_feats + val_feats)
        n_scored = len(bn_rows) + len(pot_rows)
        # each block's potentials are reserved; a block's share is what is left, less the later blocks' potentials,
        # divided among the blocks still to train, so what a capped or rounded-down block leaves passes on
        reserves = [sum(ctx.search_meter.units_of(n_scored * macs[i](p)) for p in paths[i]) for i in range(n_blocks)]

        scores: list[list[dict[str, float]]] = []
        potential_units = 0.0
        block_notes = []
        for i, trainer in enumerate(trainers):
            reserve = sum(reserves[i:])
            share = (ctx.search_meter.remaining - reserve) / (n_blocks - i)
            fit_info = self._train_block(ctx, i, trainer, space, macs[i], train_feats, share,
                                         fill=reserve if i == n_blocks - 1 else None)
            block_notes.append(fit_info)
            scores.append([])
            for path in paths[i]:
                trainer.block.set_path(path)
                recalibrate_bn(trainer, train_feats[i][bn_rows], batch)
                score = potentials(trainer, val_feats[i], val_feats[i + 1], batch)
                scores[-1].append(score)
                cost = ctx.charge_forward(n_scored, macs[i](path))
                potential_units += cost
                ctx.record_candidate(
                    {"block": i, "ops": list(path), "params": path_params(table, i, path), "potentials": score},
                    f"block supernet, {fit_info['epochs']} epoch(s); potential on {len(pot_rows)} validation "
                    f"samples after BN re-estimation on {len(bn_rows)} training samples; score = -{cfg.potential}",
                    -score[cfg.potential], cost)

        fixed = fixed_params(space, ctx.data.input_shape[0], ctx.data.n_classes)
        candidates = [[(s[cfg.potential], path_params(table, i, p)) for s, p in zip(scores[i], paths[i], strict=True)]
                      for i in range(n_blocks)]
        choice, stats = traverse(candidates, ctx.max_params - fixed)
        ctx.notes["search"] = {
            "space": {"stem": space.stem_channels, "widths": [b.channels for b in space.blocks], "ops": list(self.ops),
                      "layers": cfg.layers, "teacher_widths": [f.shape[1] for f in train_feats],
                      "adapters": [[not isinstance(t.adapt_in, nn.Identity), not isinstance(t.adapt_out, nn.Identity)]
                                   for t in trainers]},
            "teacher_cache": {"dtype": "float16", "bytes": cache_bytes, "train_rows": len(ctx.train),
                              "val_rows": len(pot_rows), "cost_units": cache_units},
            "blocks": block_notes, "potential_data": f"validation split, {len(pot_rows)} samples",
            "potential_bn_samples": len(bn_rows), "potential_cost_units": potential_units,
            "ranked_by": cfg.potential, "paths_ranked": sum(len(p) for p in paths),
            "combinations_traversed": stats["combinations"], "nodes_visited": stats["nodes"],
            "combinations_total": math.prod(len(p) for p in paths), "fixed_params": fixed,
        }
        if choice is None:
            ctx.log.warning("dna: no combination of paths fits the parameter budget; using the default student")
            return ctx.default_student
        chosen = [paths[i][j] for i, j in enumerate(choice)]
        ctx.notes["search"]["chosen"] = [
            {"block": i, "ops": list(chosen[i]), "params": path_params(table, i, chosen[i]), "potentials": scores[i][j]}
            for i, j in enumerate(choice)]
        ctx.notes["search"]["params"] = fixed + sum(path_params(table, i, p) for i, p in enumerate(chosen))
        return to_arch(space, chosen)

    def search_size(self, ctx: RunContext) -> dict[str, int]:
        """Networks evaluated: the whole networks the traversal scored by their blocks' summed potentials; block paths
        (each block's paths, trained and scored on their own) are counted apart, being parts of networks."""
        search = ctx.notes.get("search", {})
        return {"networks": int(search.get("combinations_traversed", 0)), "block_paths": len(ctx.search_trace)}

    def _scoring_rows(self, ctx: RunContext, macs: list[Any], paths: list[list[Path]], teacher_macs: int
                      ) -> tuple[Tensor, Tensor]:
        """Validation rows the potentials are measured on and training rows BN is re-estimated on. Scoring every
        path costs (BN rows + scored rows) forward passes of it, plus the teacher on the scored rows: fewer rows
        (at least 8) when that would take more than ``potential_share`` of the budget left."""
        cfg = self.config
        path_units = sum(ctx.search_meter.units_of(m(p)) for m, block in zip(macs, paths, strict=True) for p in block)
        n_pot, n_bn = min(cfg.potential_samples, len(ctx.val)), min(cfg.bn_samples, len(ctx.train))
        full = (n_pot + n_bn) * path_units + n_pot * ctx.search_meter.units_of(teacher_macs)
        fraction = min(1.0, cfg.potential_share * ctx.search_meter.remaining / full)
        generator = torch.Generator().manual_seed(ctx.seed)
        pot_rows = torch.randperm(len(ctx.val), generator=generator)[:max(8, round(fraction * n_pot))]
        bn_rows = torch.randperm(len(ctx.train), generator=generator)[:max(8, round(fraction * n_bn))]
        return pot_rows, bn_rows

    def _macs_table(self, space: MBConvSpace, block: int, trainer: BlockTrainer, in_shape: tuple[int, ...],
                    out_length: int) -> Any:
        """``path -> forward MACs`` of one block trainer (adapters + the path's ops), from per-op counts."""
        adapters = count_macs(trainer.adapt_in, tuple(in_shape))
        c_out = space.blocks[block].channels
        adapters += count_macs(trainer.adapt_out, (c_out, out_length))
        per_layer = []
        for j in range(space.blocks[block].layers):
            c_in, c, stride = space.layer_io(block, j)
            length = in_shape[-1] if j == 0 else out_length
            per_layer.append({op: op_macs(op, c_in, c, stride, length) for op in space.layer_ops(j)})

        def path_macs(path: Path) -> float:
            return float(adapters + sum(per_layer[j][op] for j, op in enumerate(path)))
        return path_macs

    def _train_block(self, ctx: RunContext, block: int, trainer: BlockTrainer, space: MBConvSpace, macs: Any,
                     feats: list[Tensor], share: float, fill: float | None = None) -> dict[str, Any]:
        """Train one block supernet on the cached teacher features (uniform single path per step) for the whole
        epochs ``share`` pays for (at most ``max_block_epochs``). ``fill`` (the last block): plan one epoch more
        and stop where the budget less ``fill`` units (its potentials) ends, so the search spends its budget."""
        rng = random.Random(ctx.seed * 1000 + block)
        layer_ops = [space.layer_ops(j) for j in range(space.blocks[block].layers)]
        paths = list(itertools.product(*layer_ops))
        mean_macs = sum(macs(p) for p in paths) / len(paths)  # the expected MACs of a uniformly sampled path
        epoch_units = ctx.search_meter.units_of(TRAIN_PASSES * mean_macs * len(ctx.train))
        cap = self.config.max_block_epochs or (ctx.recipe.epochs if not math.isfinite(share) else math.inf)
        affordable = share / epoch_units if math.isfinite(share) else cap
        if fill is not None and math.isfinite(share) and affordable > math.floor(affordable):
            affordable = math.ceil(affordable)
        epochs = int(max(1, min(cap, math.floor(affordable))))

        def step_hook(step: int, model: nn.Module) -> None:
            trainer.block.set_path(tuple(rng.choice(ops) for ops in layer_ops))

        epoch_counter = itertools.count()
        recipe = ctx.search_recipe(epochs)
        with reserved(ctx.search_meter, fill or 0.0):
            fit = ctx.fit(trainer, feature_mse_objective, phase="search", recipe=recipe, step_hook=step_hook,
                          scorer=lambda _: float(next(epoch_counter)),  # keep the last epoch's weights (no val pass)
                          extras={"dna_in": feats[block], "dna_target": feats[block + 1]},
                          macs_per_sample=lambda: TRAIN_PASSES * macs(trainer.block.path))
        return {"block": block, "epochs": fit.epochs_run, "planned_epochs": epochs, "share_units": share,
                "stopped": fit.stopped, "cost_units": fit.cost_units,
                "feature_mse": [h.get("feature_mse") for h in fit.history], "wall_s": fit.wall_s}

    def audit_space(self, ctx: RunContext) -> MBConvSpace:
        """The search space of a run, rebuilt from the protocol's teacher architecture (the trained teacher's spec)."""
        if ctx.protocol.teacher_arch.family != "staged_cnn":
            raise AuditUnsupported(f"dna needs a staged teacher, not {ctx.protocol.teacher_arch.family!r}")
        spec = StagedCNNSpec.from_dict(ctx.protocol.teacher_arch.params)
        cfg = self.config
        return for_teacher((spec.stem_channels, spec.stem_kernel, spec.stem_stride), [s.channels for s in spec.stages],
                           [s.stride for s in spec.stages], self.ops, cfg.layers, cfg.width_mult, ctx.max_params,
                           ctx.data.input_shape[0], ctx.data.n_classes)

    def candidate_pool(self, trace: list[dict[str, Any]], ctx: RunContext) -> BlockCombinationPool:
        """Whole networks, one traced path per block, scored by the sum of the paths' scores (-potential) as the
        traversal ranks them, within the budget left after the stem and classifier."""
        space = self.audit_space(ctx)
        blocks: list[dict[tuple[str, ...], tuple[list[str], float, int]]] = [{} for _ in space.blocks]
        for row in trace:
            cand = row["candidate"]
            blocks[int(cand["block"])][tuple(cand["ops"])] = (list(cand["ops"]), float(row["score"]),
                                                               int(cand["params"]))
        fixed = fixed_params(space, ctx.data.input_shape[0], ctx.data.n_classes)
        return BlockCombinationPool([list(b.values()) for b in blocks], ctx.max_params - fixed,
                                    f"sum over blocks of -{self.config.potential} (block supernets)")

    def candidate_arch(self, candidate: dict[str, Any], ctx: RunContext) -> ArchSpec:
        """A combination ``{"paths": [[op, ...] per block]}`` in the run's space."""
        return to_arch(self.audit_space(ctx), [tuple(path) for path in candidate["paths"]])

    def distill(self, arch: ArchSpec, ctx: RunContext) -> nn.Module:
        if self.config.final_kd:
            return distill_with_hinton_kd(arch, ctx, self.config.alpha, self.config.temperature)
        model = ctx.build(arch)
        ctx.fit(model, cross_entropy_objective(ctx.recipe.label_smoothing), phase="final")
        return model
