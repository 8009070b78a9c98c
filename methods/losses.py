"""KD losses shared by methods. Each returns named terms that the engine sums and logs."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from benchmark.engine import Batch, Objective


def hinton_kd(student_logits: Tensor, teacher_logits: Tensor, temperature: float) -> Tensor:
    """Hinton et al. (2015): τ² · KL(softmax(t/τ) ‖ softmax(s/τ)), batch mean."""
    log_p_student = F.log_softmax(student_logits / temperature, dim=1)
    log_p_teacher = F.log_softmax(teacher_logits / temperature, dim=1)
    return F.kl_div(log_p_student, log_p_teacher, reduction="batchmean", log_target=True) * temperature**2


def vanilla_kd_terms(student_logits: Tensor, teacher_logits: Tensor, labels: Tensor, alpha: float,
                     temperature: float, label_smoothing: float = 0.0) -> dict[str, Tensor]:
    """(1-α)·CE(s, y) + α·τ²·KL(softmax(t/τ) ‖ softmax(s/τ)), as two named terms."""
    ce = F.cross_entropy(student_logits, labels, label_smoothing=label_smoothing)
    return {"ce": (1 - alpha) * ce, "kd": alpha * hinton_kd(student_logits, teacher_logits, temperature)}


def hinton_kd_objective(alpha: float, temperature: float, label_smoothing: float = 0.0) -> Objective:
    """The engine objective of ``vanilla_kd_terms``, with the teacher's logits in ``batch.extras["teacher_logits"]``."""
    def objective(student: nn.Module, batch: Batch) -> dict[str, Tensor]:
        return vanilla_kd_terms(student(batch.x), batch.extras["teacher_logits"], batch.y, alpha, temperature,
                                label_smoothing)
    return objective


def wsl_weight(student_logits: Tensor, teacher_logits: Tensor, labels: Tensor) -> Tensor:
    """Weighted soft labels (Zhou et al., ICLR 2021): per sample w = 1 - exp(-max(CE_s / CE_t, 0)), with both
    cross-entropies on the hard labels at T=1 and on detached logits (official code: ``WSLDistiller``)."""
    ce_s = F.cross_entropy(student_logits.detach(), labels, reduction="none")
    ce_t = F.cross_entropy(teacher_logits.detach(), labels, reduction="none")
    return 1 - torch.exp(-(ce_s / (ce_t + 1e-7)).clamp(min=0))


def wsl_soft_loss(student_logits: Tensor, teacher_logits: Tensor, labels: Tensor, temperature: float,
                  weighted: bool = True) -> Tensor:
    """T² · mean_batch(w · H(softmax(t/T), log_softmax(s/T))): a soft cross-entropy (not a KL), weighted per
    sample by ``wsl_weight`` (w = 1 when ``weighted`` is False)."""
    soft = -(F.softmax(teacher_logits / temperature, dim=1) * F.log_softmax(student_logits / temperature, dim=1))
    soft = soft.sum(dim=1)
    if weighted:
        soft = wsl_weight(student_logits, teacher_logits, labels) * soft
    return temperature**2 * soft.mean()


def oracle_targets(member_logits: Tensor, labels: Tensor, combine: str = "logits", if_none_correct: str = "ce",
                   temperature: float = 1.0) -> tuple[Tensor, Tensor]:
    """Oracle KD targets (Kang, Mun & Han, AAAI 2020) from the ensemble members' logits ``(M, N, C)``.

    Per sample the members that classify it correctly form C(x); the target is the average over C(x) of their
    logits (``combine="logits"``) or of their softmax(·/τ) probabilities (``combine="probs"``, returned as τ·log p̄,
    so that softmax(target/τ) = p̄). When C(x) is empty: ``if_none_correct="ce"`` masks the sample out of the KD
    term (cross-entropy only), ``"ensemble"`` uses the average over all members. Returns (target logits (N, C),
    mask (N,) bool: the samples that get a KD term).
    """
    if combine not in ("logits", "probs"):
        raise ValueError(f"combine must be 'logits' or 'probs', not {combine!r}")
    if if_none_correct not in ("ce", "ensemble"):
        raise ValueError(f"if_none_correct must be 'ce' or 'ensemble', not {if_none_correct!r}")
    member_logits = member_logits.float()
    correct = member_logits.argmax(dim=2) == labels.unsqueeze(0)  # (M, N)
    any_correct = correct.any(dim=0)
    weights = torch.where(any_correct.unsqueeze(0), correct.float(), torch.ones_like(correct, dtype=torch.float))
    weights = (weights / weights.sum(dim=0, keepdim=True)).unsqueeze(2)  # (M, N, 1): uniform over C(x) or all
    if combine == "logits":
        target = (weights * member_logits).sum(dim=0)
    else:
        probs = (weights * F.softmax(member_logits / temperature, dim=2)).sum(dim=0)
        target = temperature * probs.clamp_min(1e-12).log()
    mask = any_correct if if_none_correct == "ce" else torch.ones_like(any_correct)
    return target, mask


def oracle_kd_terms(student_logits: Tensor, target_logits: Tensor, mask: Tensor, labels: Tensor, weight: float,
                    temperature: float, label_smoothing: float = 0.0) -> dict[str, Tensor]:
    """CE(y, s) + λ·τ²·KL(softmax(target/τ) ‖ softmax(s/τ)), the KL averaged over the batch with the masked-out
    samples (no correct member, ``if_none_correct="ce"``) contributing zero."""
    ce = F.cross_entropy(student_logits, labels, label_smoothing=label_smoothing)
    log_p_student = F.log_softmax(student_logits / temperature, dim=1)
    log_p_target = F.log_softmax(target_logits / temperature, dim=1)
    kl = F.kl_div(log_p_student, log_p_target, reduction="none", log_target=True).sum(dim=1)
    kd = (kl * mask.to(kl.dtype)).sum() / max(1, len(kl))
    return {"ce": ce, "kd": weight * temperature**2 * kd}


def oracle_kd_objective(weight: float, temperature: float, label_smoothing: float = 0.0) -> Objective:
    """The engine objective of ``oracle_kd_terms``, reading the precomputed ``batch.extras["oracle_logits"]`` and
    ``batch.extras["oracle_mask"]`` (from ``oracle_targets`` on the members' cached train logits)."""
    def objective(student: nn.Module, batch: Batch) -> dict[str, Tensor]:
        return oracle_kd_terms(student(batch.x), batch.extras["oracle_logits"], batch.extras["oracle_mask"], batch.y,
                               weight, temperature, label_smoothing)
    return objective
