"""KD losses shared by methods. Each returns named terms that the engine sums and logs."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor


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
