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
