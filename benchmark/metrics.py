"""Test metrics and deployment cost of a model: classification scores, parameters, MACs and CPU latency.

All returned numbers are plain Python ``int``/``float`` so they go into a JSON result record unchanged.
"""

from __future__ import annotations

import copy
import platform
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from sklearn.exceptions import UndefinedMetricWarning
from sklearn.metrics import cohen_kappa_score, confusion_matrix, precision_recall_fscore_support
from torch import nn

# ---------------------------------------------------------------------------------------------------------------------
# Classification metrics


def classification_metrics(
    y_true: Sequence[int] | np.ndarray,
    y_pred: Sequence[int] | np.ndarray,
    classes: Sequence[str],
    scored_classes: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Accuracy, macro-F1 (over ``scored_classes``, default all), Cohen's kappa, per-class scores and confusion.

    ``y_true``/``y_pred`` hold class indices into ``classes``. ``per_class[name]`` has ``f1``, ``sensitivity``
    (recall), ``ppv`` (positive predictivity, precision) and ``support``; ``confusion`` rows are true classes and
    columns predicted classes, both in ``classes`` order, which ``classes`` and ``scored_classes`` (the class
    names the macro average ran over) record. A score with a zero denominator is 0.
    """
    true = np.asarray(y_true, dtype=np.int64).ravel()
    pred = np.asarray(y_pred, dtype=np.int64).ravel()
    if true.shape != pred.shape:
        raise ValueError(f"y_true and y_pred differ in length: {true.size} != {pred.size}")
    if true.size == 0:
        raise ValueError("cannot score an empty prediction")
    labels = list(range(len(classes)))
    _check_labels(true, pred, len(classes))
    scored = _scored_indices(classes, scored_classes)
    ppv, se, f1, support = precision_recall_fscore_support(true, pred, labels=labels, zero_division=0)
    per_class = {
        name: {"f1": float(f1[i]), "sensitivity": float(se[i]), "ppv": float(ppv[i]), "support": int(support[i])}
        for i, name in enumerate(classes)
    }
    return {
        "accuracy": float(np.mean(true == pred)),
        "macro_f1": float(np.mean([f1[i] for i in scored])),
        "kappa": _kappa(true, pred, labels),
        "per_class": per_class,
        "confusion": confusion_matrix(true, pred, labels=labels).astype(int).tolist(),
        "n": int(true.size),
        "classes": list(classes),
        "scored_classes": [classes[i] for i in scored],
    }


def metrics_from_confusion(
    confusion: Sequence[Sequence[int]] | np.ndarray,
    classes: Sequence[str],
    scored_classes: Sequence[str] | None = None,
) -> dict[str, Any]:
    """``classification_metrics`` of the predictions a confusion matrix (rows true, columns predicted) counts.

    The matrix is expanded back into (true, predicted) label pairs and scored by ``classification_metrics``, so
    both paths give identical numbers by construction. Summing per-fold matrices first gives pooled CV metrics.
    """
    counts = _confusion_counts(confusion, len(classes))
    true_idx, pred_idx = np.divmod(np.arange(counts.size), len(classes))
    flat = counts.ravel()
    return classification_metrics(np.repeat(true_idx, flat), np.repeat(pred_idx, flat), classes, scored_classes)


def confusion_by_group(y_true: Sequence[int] | np.ndarray, y_pred: Sequence[int] | np.ndarray,
                       groups: Sequence[Any] | np.ndarray, n_classes: int) -> dict[str, list[list[int]]]:
    """``{group: confusion matrix}`` of each group's rows (a patient: MIT-BIH record, Sleep-EDF subject), rows true
    classes and columns predicted ones; the matrices sum to the whole split's confusion matrix."""
    true = np.asarray(y_true, dtype=np.int64).ravel()
    pred = np.asarray(y_pred, dtype=np.int64).ravel()
    names = np.asarray(groups).ravel()
    if not (true.size == pred.size == names.size):
        raise ValueError(f"y_true, y_pred and groups differ in length: {true.size}, {pred.size}, {names.size}")
    if true.size:
        _check_labels(true, pred, n_classes)
    out: dict[str, list[list[int]]] = {}
    for name in np.unique(names):
        rows = names == name
        counts = np.zeros((n_classes, n_classes), dtype=np.int64)
        np.add.at(counts, (true[rows], pred[rows]), 1)
        out[str(name)] = counts.tolist()
    return out


def _confusion_counts(confusion: Sequence[Sequence[int]] | np.ndarray, n_classes: int) -> np.ndarray:
    """The matrix as a non-negative int64 array of shape (n_classes, n_classes); raise otherwise."""
    array = np.asarray(confusion)
    if array.shape != (n_classes, n_classes):
        raise ValueError(f"confusion matrix of shape {array.shape} does not match {n_classes} classes")
    if array.size and (not np.all(np.isfinite(array)) or np.any(array < 0) or np.any(array != np.round(array))):
        raise ValueError("confusion matrix entries must be non-negative integers")
    return array.astype(np.int64)


def _check_labels(true: np.ndarray, pred: np.ndarray, n_classes: int) -> None:
    """Raise when a label is not an index into the class list."""
    for name, arr in (("y_true", true), ("y_pred", pred)):
        if arr.min() < 0 or arr.max() >= n_classes:
            raise ValueError(f"{name} holds labels outside 0..{n_classes - 1}")


def _scored_indices(classes: Sequence[str], scored_classes: Sequence[str] | None) -> list[int]:
    """Indices (into ``classes``) of the classes a macro average runs over."""
    if scored_classes is None:
        return list(range(len(classes)))
    unknown = [c for c in scored_classes if c not in classes]
    if unknown or not scored_classes:
        raise ValueError(f"scored classes {list(scored_classes)} must be a non-empty subset of {list(classes)}")
    return [list(classes).index(c) for c in scored_classes]


def _kappa(true: np.ndarray, pred: np.ndarray, labels: list[int]) -> float:
    """Cohen's kappa; 0 when chance agreement is already perfect (kappa undefined)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        value = cohen_kappa_score(true, pred, labels=labels)
    return 0.0 if not np.isfinite(value) else float(value)


# ---------------------------------------------------------------------------------------------------------------------
# Model cost


def count_params(module: nn.Module) -> int:
    """Number of parameters of ``module`` as instantiated (trainable or not; buffers are not counted)."""
    return int(sum(p.numel() for p in module.parameters()))


@contextmanager
def _eval_mode(module: nn.Module) -> Iterator[None]:
    """Put ``module`` in eval mode and restore every submodule's training flag afterwards."""
    flags = {m: m.training for m in module.modules()}
    module.eval()
    try:
        yield
    finally:
        for sub, flag in flags.items():
            sub.training = flag


@contextmanager
def _no_mha_fastpath() -> Iterator[None]:
    """Disable the fused transformer fast path (one fused kernel the FLOP counter has no formula for)."""
    previous = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        yield
    finally:
        torch.backends.mha.set_fastpath_enabled(previous)


def _example_input(module: nn.Module, input_shape: tuple[int, ...]) -> torch.Tensor:
    """A batch-1 input on the module's device and dtype (float32 for a parameterless module)."""
    param = next(iter(module.parameters()), None)
    device = param.device if param is not None else torch.device("cpu")
    dtype = param.dtype if param is not None and param.is_floating_point() else torch.float32
    generator = torch.Generator().manual_seed(0)
    return torch.randn((1, *input_shape), generator=generator, dtype=dtype).to(device)


def _cpu_attention_formula() -> dict[Any, Callable[..., int]]:
    """The CPU flash-attention kernel (what ``scaled_dot_product_attention`` and ``nn.MultiheadAttention`` run on
    CPU) has no formula in torch's registry (2.13); it does the products of the CUDA kernels, so it gets theirs."""
    from torch.utils.flop_counter import sdpa_flop_count

    op = getattr(torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu", None)
    if op is None:
        return {}

    def formula(query: Any, key: Any, value: Any, *_args: Any, out_shape: Any = None, **_kwargs: Any) -> int:
        return sdpa_flop_count(query, key, value)

    return {op: formula}


def count_macs(module: nn.Module, input_shape: tuple[int, ...]) -> int:
    """Multiply-accumulates of one batch-1 forward pass; ``input_shape`` excludes the batch dimension.

    Counted at the operator level with ``torch.utils.flop_counter.FlopCounterMode`` (MACs = FLOPs / 2), so every
    convolution, matmul (``nn.Linear``, ``@``, ``bmm``, ``einsum``) and attention product
    (``scaled_dot_product_attention``, ``nn.MultiheadAttention``) is counted whatever module issues it. Not
    counted: biases, normalisation, activations, pooling and other element-wise ops.
    """
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False, custom_mapping=_cpu_attention_formula())
    with _eval_mode(module), _no_mha_fastpath(), torch.no_grad(), counter:
        module(_example_input(module, input_shape))
    return int(counter.get_total_flops()) // 2


def _time_call(fn: Callable[[], Any]) -> float:
    """Wall time of one call in milliseconds."""
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1000.0


@dataclass(frozen=True)
class Latency:
    """Batch-1 CPU latency: median and quartiles (ms) of ``repeats`` timed calls on ``threads`` thread(s)."""

    median_ms: float
    q1_ms: float
    q3_ms: float
    repeats: int
    threads: int
    hardware: str

    @property
    def iqr_ms(self) -> float:
        return self.q3_ms - self.q1_ms

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "iqr_ms": self.iqr_ms}


def cpu_hardware() -> str:
    """The CPU model name (what a latency figure depends on), e.g. ``Intel(R) Xeon(R) Processor``."""
    try:
        for line in open("/proc/cpuinfo", encoding="utf-8"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def measure_latency(module: nn.Module, input_shape: tuple[int, ...], repeats: int = 50, warmup: int = 5) -> Latency:
    """Latency of one batch-1 forward pass on CPU, eval mode, ``torch.inference_mode``, ONE thread.

    The model is deep-copied to the CPU, so the caller's model (device, mode, weights) is untouched. One thread:
    a wearable runs single-threaded, batch-1 inference gains nothing from more, and several threads on a busy
    machine inflate the figure many-fold; the caller's thread count is restored afterwards.
    """
    if repeats < 1:
        raise ValueError("repeats must be at least 1")
    model = copy.deepcopy(module).to("cpu").eval()
    x = _example_input(model, input_shape)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.inference_mode():
            for _ in range(warmup):
                model(x)
            times = [_time_call(lambda: model(x)) for _ in range(repeats)]
    finally:
        torch.set_num_threads(threads)
    q1, median, q3 = (float(v) for v in np.percentile(times, [25, 50, 75]))
    return Latency(median, q1, q3, repeats, 1, cpu_hardware())


def cpu_latency_ms(module: nn.Module, input_shape: tuple[int, ...], repeats: int = 50, warmup: int = 5) -> float:
    """Median of ``measure_latency`` (ms)."""
    return measure_latency(module, input_shape, repeats, warmup).median_ms


def summarise_model(module: nn.Module, input_shape: tuple[int, ...], repeats: int = 50,
                    timed: bool = True) -> dict[str, Any]:
    """``{"params", "macs", "latency_ms", "latency"}`` of ``module`` for a batch-1 input of ``input_shape``;
    ``latency`` is ``Latency.to_dict()`` (median, quartiles, repeats, threads, hardware); without ``timed``,
    ``latency_ms`` is None and ``latency`` empty (not measured)."""
    latency = measure_latency(module, input_shape, repeats=repeats) if timed else None
    return {
        "params": count_params(module),
        "macs": count_macs(module, input_shape),
        "latency_ms": latency.median_ms if latency else None,
        "latency": latency.to_dict() if latency else {},
    }
