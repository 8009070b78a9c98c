"""Speed benchmarks: ratios of two variants timed side by side, and MIT-BIH load times.

Timings on the 2-core reference machine drift by ±30% from run to run, so each training figure is a ratio of
two variants timed in alternation in one process (``time.perf_counter``), and the benchmark fixture times the
main variant. Training steps alternate step by step (B, A, B, A, …); the asserted ratio is the median of the
per-round ratios (each pair ran back to back, so drift in machine load cancels), with the ratio of the medians
stored beside it. Every benchmark here runs on ONE torch thread, as the sweep's workers do: two threads on two
busy cores slow a student's step ~10-20x (OpenMP threads wait on a descheduled peer; measured 2.3 s vs 0.12 s per
step), so absolute times are only meaningful on a quiet machine.

Measured and not adopted (side-by-side scripts, 1 thread, load ~10): ``torch.compile`` (inductor) of the ECG
teacher's training step took 351 s to compile for a 1.05x faster step, less than it saves over the quick
profile's ~12-minute teacher; the default student's did not finish compiling in 400 s. Adopted since: the whole
network in a channels-last 2-D layout on the CPU (``benchmark.nn.planar``: the input converted once, every conv and
BatchNorm run as its 2-D twin on (N, C, 1, L), stage features handed back as (N, C, L) views); for the 1x1 convs a
``F.linear`` on the channels-last view and, for the depthwise convs, a shifted-sum in that layout were both measured
slower than oneDNN's channels-last kernels (1.0-1.2x and 3-4x). Evaluation batch size (128-2048)
changed predict() time by < 10%, so ``Engine.eval_batch_size`` stays 2048. Run with::

    python -m pytest -m benchmark tests/benchmarks --data-root /work/shared/data -p no:cacheprovider
"""

from __future__ import annotations

import shutil
import statistics
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
import torch
import torch.nn.functional as F
from pytest_benchmark.fixture import BenchmarkFixture
from torch import Tensor, nn

from benchmark.engine import Batch, Engine, Objective, StepHook, TensorSplit, class_balanced_weights
from benchmark.metrics import count_macs
from benchmark.nn import ArchSpec, build_model
from benchmark.nn.depthwise import DepthwiseConv1d, plain_layers
from benchmark.optim import adamw
from benchmark.protocol import BUDGET_TIERS, TEACHERS, TrainRecipe
from benchmark.teachers import cross_entropy_objective, freeze
from methods.losses import vanilla_kd_terms

pytestmark = pytest.mark.benchmark

T = TypeVar("T")
Report = Callable[..., None]

IN_CHANNELS, WINDOW, N_CLASSES = 4, 256, 5  # MIT-BIH inputs: float32 (N, 4, 256), 5 AAMI classes
BATCH_SIZE = 128
N_TRAIN = 8_192
LOCKSTEP_ROUNDS = 5
SEED = 0
ALPHA, TEMPERATURE, GRAD_CLIP = 0.9, 4.0, 5.0  # vanilla_kd defaults; the recipes' default clip
LR, WEIGHT_DECAY = 3e-3, 1e-4


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """One torch thread, as each sweep worker has (overrides the conftest's two); restored after."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def interleaved(
    benchmark: BenchmarkFixture,
    variants: dict[str, Callable[[T], object]],
    make: Callable[[], T],
    rounds: int,
    warmup: int,
) -> dict[str, list[float]]:
    """Seconds per run of each variant, timed in alternation; the first variant is the one the benchmark fixture times.

    Each round runs the other variants (in the fixture's untimed setup), then the first; ``make`` builds every
    run's input (a fresh model, a batch index) outside the timings. Warm-up runs are not returned.
    """
    (main_name, main), *others = variants.items()
    times: dict[str, list[float]] = {name: [] for name in variants}

    def timed(name: str, fn: Callable[[T], object], arg: T) -> None:
        start = time.perf_counter()
        fn(arg)
        times[name].append(time.perf_counter() - start)

    for _ in range(warmup):
        for fn in variants.values():
            fn(make())

    def setup() -> tuple[tuple[T], dict[str, Any]]:
        for name, fn in others:
            timed(name, fn, make())
        return (make(),), {}

    benchmark.pedantic(lambda arg: timed(main_name, main, arg), setup=setup, rounds=rounds, iterations=1)
    return times


def ratios(times: dict[str, list[float]], num: str, den: str) -> tuple[float, float]:
    """``num``/``den`` as the median of the per-round ratios (paired, drift-robust), and as a ratio of medians."""
    paired = statistics.median(a / b for a, b in zip(times[num], times[den], strict=True))
    of_medians = statistics.median(times[num]) / statistics.median(times[den])
    return paired, of_medians


def synthetic_split(n: int = N_TRAIN, seed: int = SEED) -> TensorSplit:
    """Random inputs shaped like MIT-BIH with an imbalanced label mix (most beats N, as there)."""
    g = torch.Generator().manual_seed(seed)
    y = torch.multinomial(torch.tensor([0.85, 0.04, 0.08, 0.02, 0.01]), n, replacement=True, generator=g)
    return TensorSplit(torch.randn(n, IN_CHANNELS, WINDOW, generator=g), y)


def default_student(seed: int = SEED) -> nn.Module:
    """The mitbih small tier's default student, initialised from ``seed``."""
    torch.manual_seed(seed)
    return build_model(BUDGET_TIERS["mitbih"]["small"].default_student, IN_CHANNELS, N_CLASSES)


def engine_step(
    model: nn.Module, optimizer: torch.optim.Optimizer, objective: Objective, split: TensorSplit, index: Tensor
) -> None:
    """One optimiser step as ``Engine.fit`` takes it: slice the batch and its extras, sum the terms, clip, step."""
    batch = Batch(split.x[index], split.y[index], index, {k: v[index] for k, v in split.extras.items()})
    terms = objective(model, batch)
    loss = sum(terms.values())
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    nn.utils.clip_grad_norm_(model.parameters(), GRAD_CLIP)
    optimizer.step()


def test_kd_step_with_cached_teacher_logits(benchmark: BenchmarkFixture, report: Report) -> None:
    """KD step reading cached teacher logits vs a cross-entropy step, default mitbih student, batch 128.

    Target ≤ 1.1x; asserted ceiling 1.3x (running the teacher each step instead costs ~1.5x, reported as
    ``teacher_forward_ratio`` for information).
    """
    split = synthetic_split()
    teacher = freeze(build_model(TEACHERS["ecg_residual"], IN_CHANNELS, N_CLASSES))
    cached = split.with_extras(teacher_logits=Engine("cpu").predict(teacher, split.x))

    def kd_cached(model: nn.Module, batch: Batch) -> dict[str, Tensor]:
        return vanilla_kd_terms(model(batch.x), batch.extras["teacher_logits"], batch.y, ALPHA, TEMPERATURE)

    def kd_teacher(model: nn.Module, batch: Batch) -> dict[str, Tensor]:
        with torch.no_grad():
            teacher_logits = teacher(batch.x)
        return vanilla_kd_terms(model(batch.x), teacher_logits, batch.y, ALPHA, TEMPERATURE)

    def stepper(objective: Objective, data: TensorSplit) -> Callable[[Tensor], None]:
        model = default_student()  # same initial weights for every variant, each with its own optimiser
        optimizer = adamw(model.parameters(), LR, WEIGHT_DECAY)
        return lambda index: engine_step(model, optimizer, objective, data, index)

    g = torch.Generator().manual_seed(SEED)
    times = interleaved(
        benchmark,
        {
            "kd_cached": stepper(kd_cached, cached),
            "ce": stepper(cross_entropy_objective(), split),
            "kd_teacher": stepper(kd_teacher, split),
        },
        make=lambda: torch.randint(0, len(split), (BATCH_SIZE,), generator=g),
        rounds=40,
        warmup=3,
    )
    ratio, of_medians = ratios(times, "kd_cached", "ce")
    report(
        ratio=ratio,
        ratio_of_medians=of_medians,
        teacher_forward_ratio=ratios(times, "kd_teacher", "ce")[0],
        **{f"{name}_step_s": statistics.median(values) for name, values in times.items()},
    )
    assert ratio <= 1.3, f"KD step with cached logits is {ratio:.2f}x a CE step (target ≤ 1.1x)"


def bare_epoch_steps(model: nn.Module, split: TensorSplit, recipe: TrainRecipe, seed: int) -> Iterator[None]:
    """One epoch in plain PyTorch, the same work as ``Engine.fit``; yields after its set-up and after each step.

    AdamW (fused, as the engine's) + one-cycle, class-balanced draws with replacement, tensor-indexed batches,
    gradient clipping.
    """
    torch.manual_seed(seed)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = adamw(params, lr=recipe.lr, weight_decay=recipe.weight_decay)
    steps = len(split) // recipe.batch_size
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=recipe.lr, total_steps=steps, pct_start=0.15)
    generator = torch.Generator().manual_seed(seed)
    weights = (torch.bincount(split.y).clamp(min=1).double() ** -recipe.balance_power)[split.y]
    order = torch.multinomial(weights, len(split), replacement=True, generator=generator)
    yield
    for b in range(steps):
        index = order[b * recipe.batch_size : (b + 1) * recipe.batch_size]
        loss = F.cross_entropy(model(split.x[index]), split.y[index])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if recipe.grad_clip:
            nn.utils.clip_grad_norm_(params, recipe.grad_clip)
        optimizer.step()
        scheduler.step()
        yield


def bare_epoch(model: nn.Module, split: TensorSplit, recipe: TrainRecipe, seed: int) -> None:
    """The bare epoch, run through."""
    for _ in bare_epoch_steps(model, split, recipe, seed):
        pass


def lockstep_epochs(fit: Callable[[nn.Module, StepHook], object], bare: Iterator[None]) -> tuple[float, float]:
    """Seconds of an ``Engine.fit`` epoch and of a bare epoch run alternately step by step: (engine, bare).

    The engine's step hook advances the bare loop by one step, timed, and that time is taken out of the
    engine's, so the two alternate every ~40 ms and a change in machine load hits both alike.
    """
    inside_fit = 0.0

    def advance() -> float:
        start = time.perf_counter()
        next(bare, None)
        return time.perf_counter() - start

    def hook(step: int, model: nn.Module) -> None:
        nonlocal inside_fit
        inside_fit += advance()

    bare_s = advance()  # the bare loop's set-up: optimiser, scheduler, class-balanced draw
    start = time.perf_counter()
    fit(default_student(), hook)
    total = time.perf_counter() - start
    assert next(bare, "done") == "done", "the bare loop has steps left after the engine's epoch"
    return total - inside_fit, bare_s + inside_fit


def test_engine_fit_epoch_vs_bare_loop(benchmark: BenchmarkFixture, report: Report) -> None:
    """One ``Engine.fit`` epoch vs a bare PyTorch loop doing the same work, 8,192 synthetic samples, batch 128.

    The benchmark fixture times engine epochs; the ratio comes from rounds that run the engine and the bare loop
    alternately step by step (``lockstep_epochs``): a fresh default student each, same seed. Alternating whole
    epochs (~2.5 s each) proved too coarse: on a busy machine epoch times swing 3x and the ratio with them.
    Target ≤ 1.05x; asserted ceiling 1.25x (a per-step host sync or state copy, or a DataLoader, costs far more).
    """
    split = synthetic_split()
    recipe = TrainRecipe(epochs=1, batch_size=BATCH_SIZE, balance_power=0.5, patience=None)
    engine, objective = Engine("cpu"), cross_entropy_objective()

    def fit(model: nn.Module, step_hook: StepHook | None = None) -> None:
        engine.fit(model, objective, split, recipe, scorer=lambda m: 0.0, seed=SEED, step_hook=step_hook)

    def one_round() -> tuple[float, float]:
        return lockstep_epochs(fit, bare_epoch_steps(default_student(), split, recipe, SEED))

    one_round()  # warm-up
    rounds = [one_round() for _ in range(LOCKSTEP_ROUNDS)]
    benchmark.pedantic(fit, setup=lambda: ((default_student(),), {}), rounds=3, iterations=1)
    ratio = statistics.median(engine_s / bare_s for engine_s, bare_s in rounds)
    report(
        ratio=ratio,
        ratio_of_medians=statistics.median(r[0] for r in rounds) / statistics.median(r[1] for r in rounds),
        engine_epoch_s=statistics.median(r[0] for r in rounds),
        bare_epoch_s=statistics.median(r[1] for r in rounds),
    )
    assert ratio <= 1.25, f"an Engine.fit epoch is {ratio:.2f}x the bare loop (target ≤ 1.05x)"


def test_engine_and_bare_loop_train_alike() -> None:
    """Sanity for the benchmark above: from the same seed both end with the same weights (so the work is equal)."""
    split = synthetic_split(n=1_024)
    recipe = TrainRecipe(epochs=1, batch_size=BATCH_SIZE, balance_power=0.5, patience=None)
    weights = (torch.bincount(split.y).clamp(min=1).double() ** -0.5)[split.y]
    assert torch.equal(class_balanced_weights(split.y, 0.5), weights)  # bare_epoch's draw weights
    engine_model, bare_model = default_student(), default_student()
    Engine("cpu").fit(engine_model, cross_entropy_objective(), split, recipe, scorer=lambda m: 0.0, seed=SEED)
    bare_epoch(bare_model, split, recipe, SEED)
    for a, b in zip(engine_model.state_dict().values(), bare_model.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b)


DW_CHANNELS, DW_LENGTH, DW_KERNEL = 48, 64, 5  # the layer: a stage-2 depthwise conv of the default student


def depthwise_alternatives() -> dict[str, Callable[[Tensor], Tensor]]:
    """Ways to compute ``Conv1d(48, 48, 5, groups=48, padding=2)`` on (N, 48, L), all with the same weights."""
    torch.manual_seed(SEED)
    plain = nn.Conv1d(DW_CHANNELS, DW_CHANNELS, DW_KERNEL, padding=DW_KERNEL // 2, groups=DW_CHANNELS, bias=False)
    fast = DepthwiseConv1d(DW_CHANNELS, DW_CHANNELS, DW_KERNEL, padding=DW_KERNEL // 2)
    fast.load_state_dict(plain.state_dict())
    weight, pad = plain.weight, DW_KERNEL // 2

    def conv2d_nchw(x: Tensor) -> Tensor:
        return F.conv2d(x.unsqueeze(2), weight.unsqueeze(2), None, 1, (0, pad), 1, DW_CHANNELS).squeeze(2)

    def shifted_sum(x: Tensor) -> Tensor:
        padded = F.pad(x, (pad, pad))
        return sum(padded[..., j:j + x.shape[-1]] * weight[:, :, j] for j in range(DW_KERNEL))  # type: ignore[return-value]

    def unfold_einsum(x: Tensor) -> Tensor:
        return torch.einsum("nclk,ck->ncl", F.pad(x, (pad, pad)).unfold(2, DW_KERNEL, 1), weight[:, 0])

    return {"DepthwiseConv1d": fast, "nn.Conv1d": plain, "conv2d_nchw": conv2d_nchw, "shifted_sum": shifted_sum,
            "unfold_einsum": unfold_einsum}


def test_depthwise_conv_alternatives(benchmark: BenchmarkFixture, report: Report) -> None:
    """Forward + backward of one depthwise conv (batch 128, 48 channels, length 64, kernel 5), five ways.

    Measured by this test (1 thread, 2-core machine at load ~8; fwd+bwd time relative to ``nn.Conv1d(groups=C)``,
    median of 40 paired rounds)::

        DepthwiseConv1d: channels_last Conv2d (1, k)    0.73x  (19.7 ms vs 26.6 ms)  <- what conv_bn_act builds
        Conv2d (1, k), NCHW                             1.00x
        sum of k shifted slices (autograd)              1.76x
        unfold + einsum                                 2.24x

    A side-by-side script over the student's and MBConv/EEG shapes gave 0.56-0.94x for the channels_last form,
    and 1.0-1.5x for a custom ``autograd.Function`` (grad-input as a flipped-kernel conv, grad-weight as a grouped
    conv), which was dropped. On two threads of a busy machine ``nn.Conv1d``'s backward is far worse (the issue's
    9x), and the channels_last form wins by more. Target ≤ 0.6x; asserted ceiling 1.0x.
    """
    variants = depthwise_alternatives()
    g = torch.Generator().manual_seed(SEED)

    def run(fn: Callable[[Tensor], Tensor]) -> Callable[[Tensor], None]:
        return lambda x: fn(x).sum().backward()

    times = interleaved(
        benchmark,
        {name: run(fn) for name, fn in variants.items()},
        make=lambda: torch.randn(BATCH_SIZE, DW_CHANNELS, DW_LENGTH, generator=g).requires_grad_(),
        rounds=40,
        warmup=3,
    )
    ratio, of_medians = ratios(times, "DepthwiseConv1d", "nn.Conv1d")
    report(
        ratio=ratio,
        ratio_of_medians=of_medians,
        **{f"{name}_vs_conv1d": ratios(times, name, "nn.Conv1d")[0] for name in variants if name != "nn.Conv1d"},
        **{f"{name}_ms": 1e3 * statistics.median(values) for name, values in times.items()},
    )
    assert ratio <= 1.0, f"DepthwiseConv1d fwd+bwd is {ratio:.2f}x nn.Conv1d(groups=C) (target ≤ 0.6x)"


def student_stepper(spec: ArchSpec, plain_conv: bool, fused: bool, split: TensorSplit) -> Callable[[Tensor], None]:
    """Cross-entropy steps (as ``Engine.fit`` takes them) of a fresh model; "before": plain conv, foreach AdamW."""
    torch.manual_seed(SEED)
    model = build_model(spec, IN_CHANNELS, N_CLASSES)
    model = plain_layers(model) if plain_conv else model
    optimizer = (adamw(model.parameters(), LR, WEIGHT_DECAY) if fused
                 else torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=WEIGHT_DECAY))
    objective = cross_entropy_objective()
    return lambda index: engine_step(model, optimizer, objective, split, index)


def test_default_student_step_before_after(benchmark: BenchmarkFixture, report: Report) -> None:
    """Default mitbih student's training step, batch 128: now (planar channels-last network, fused AdamW) vs before
    (stock ``nn.Conv1d``/``nn.BatchNorm1d`` in (N, C, L), foreach AdamW), with each change alone reported beside it.

    Measured by this test (1 thread, 2-core machine at load ~4): ``speedup`` (before/now) 1.73x (124 vs 222 ms per
    step), the layout alone 1.60x, the fused optimiser alone 1.06x. With per-layer conversion of the depthwise
    convs only (the previous fix) it was 1.12x. On the idle machine (2026-12-02, two runs): 1.61x and 1.63x (36.7
    vs 59.0 ms); at load ~3 it ranged 1.43-1.89x over four runs, so quote idle figures. The issue's >= 2x target
    is not met: the profile of the planar step shows the conv backward passes at ~40 % (oneDNN's channels-last
    kernels at 16-96 channels), BatchNorm forward + backward ~25 % (ATen's kernel runs at its memory-bound speed
    there: a hand-written BN was 2-6x slower). Measured and not adopted: a custom autograd function computing the
    depthwise weight gradient as k shifted products summed in channels-last memory (no padded copy), with oneDNN
    for the input gradient. Alone it was 1.3-2.9x faster than oneDNN's weight gradient at 24-128 channels; in the
    student's six depthwise layers (fwd + bwd) it saved 8 % (11.5 vs 12.5 ms), and in the whole step, side by side,
    it was 3.7 % slower (38.4 vs 37.3 ms, idle). Target <= 0.5x; asserted ceiling 0.8x.
    """
    split = synthetic_split()
    spec = BUDGET_TIERS["mitbih"]["small"].default_student
    g = torch.Generator().manual_seed(SEED)
    times = interleaved(
        benchmark,
        {
            "now": student_stepper(spec, plain_conv=False, fused=True, split=split),
            "before": student_stepper(spec, plain_conv=True, fused=False, split=split),
            "depthwise_only": student_stepper(spec, plain_conv=False, fused=False, split=split),
            "fused_only": student_stepper(spec, plain_conv=True, fused=True, split=split),
        },
        make=lambda: torch.randint(0, len(split), (BATCH_SIZE,), generator=g),
        rounds=30,
        warmup=3,
    )
    ratio, of_medians = ratios(times, "now", "before")
    report(
        ratio=ratio,
        ratio_of_medians=of_medians,
        speedup=1 / ratio,
        depthwise_only_speedup=1 / ratios(times, "depthwise_only", "before")[0],
        fused_only_speedup=1 / ratios(times, "fused_only", "before")[0],
        **{f"{name}_step_ms": 1e3 * statistics.median(values) for name, values in times.items()},
    )
    assert ratio <= 0.8, f"the default student's step is {ratio:.2f}x what it was before the fix (target ≤ 0.5x)"


def test_student_vs_teacher_gmacs(benchmark: BenchmarkFixture, report: Report) -> None:
    """Training throughput per MAC: default mitbih student (now and before the fix) vs the residual ECG teacher
    (``TEACHERS["ecg_residual"]``, protocol v2's teacher until round 5), batch 128.

    GMAC/s = 3 x forward MACs (``count_macs``) x batch / step time (forward, grad-input and grad-weight passes).
    ``gap`` = student seconds per MAC / teacher seconds per MAC, median of paired rounds (both planar now). Measured
    by this test (1 thread, load ~4): gap 3.25x now vs 5.5x before (student 1.19 GMAC/s, 0.71 before; teacher 3.89
    GMAC/s); idle (2026-12-02, two runs): gap 2.95x and 3.05x vs 4.8x before (student 3.9-4.0 GMAC/s, teacher
    11.6-11.9 GMAC/s). The issue's target (gap <= 2x) is not met: the student's layers are 16-96 channels on
    8-128 samples, too small for oneDNN's kernels to reach the teacher's efficiency, and BatchNorm/ReLU cost per
    activation, not per MAC. Target <= 2x; asserted: smaller than before.
    """
    split = synthetic_split()
    student_spec, teacher_spec = BUDGET_TIERS["mitbih"]["small"].default_student, TEACHERS["ecg_residual"]
    macs = {name: count_macs(build_model(spec, IN_CHANNELS, N_CLASSES), (IN_CHANNELS, WINDOW))
            for name, spec in (("student", student_spec), ("teacher", teacher_spec))}
    g = torch.Generator().manual_seed(SEED)
    times = interleaved(
        benchmark,
        {
            "student": student_stepper(student_spec, plain_conv=False, fused=True, split=split),
            "student_before": student_stepper(student_spec, plain_conv=True, fused=False, split=split),
            "teacher": student_stepper(teacher_spec, plain_conv=False, fused=True, split=split),
        },
        make=lambda: torch.randint(0, len(split), (BATCH_SIZE,), generator=g),
        rounds=20,
        warmup=2,
    )
    per_mac = macs["student"] / macs["teacher"]
    gap = ratios(times, "student", "teacher")[0] / per_mac
    gap_before = ratios(times, "student_before", "teacher")[0] / per_mac

    def gmacs(name: str, model: str) -> float:
        return 3 * BATCH_SIZE * macs[model] / statistics.median(times[name]) / 1e9

    report(gap=gap, gap_before=gap_before, student_gmacs=gmacs("student", "student"),
           student_before_gmacs=gmacs("student_before", "student"), teacher_gmacs=gmacs("teacher", "teacher"))
    assert gap < gap_before, f"student per-MAC gap to the teacher {gap:.2f}x is not below before ({gap_before:.2f}x)"


COLD_ROUNDS, CACHED_ROUNDS = 3, 5


@pytest.fixture(scope="module")
def mitbih_cache(data_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache dir holding preprocessed MIT-BIH; building it first warms the imports and the OS file cache."""
    from datasets.mitbih import MITBIH

    cache = tmp_path_factory.mktemp("mitbih-cache")
    bundle = MITBIH().load(data_root, cache)
    assert bundle.train.x.shape[1:] == (IN_CHANNELS, WINDOW) and bundle.n_classes == N_CLASSES
    return cache


@pytest.mark.data
def test_mitbih_cold_preprocessing(
    benchmark: BenchmarkFixture, report: Report, data_root: Path, mitbih_cache: Path, tmp_path: Path
) -> None:
    """Cold MIT-BIH load: verify and preprocess all 48 records into an empty cache dir, fresh each round.

    Absolute time; target ≤ 15 s on 2 cores, asserted ceiling 30 s.
    """
    from datasets.mitbih import MITBIH

    times: list[float] = []
    caches = [tmp_path / f"round{i}" for i in range(COLD_ROUNDS)]

    def fresh_cache() -> tuple[tuple[Path], dict[str, Any]]:
        cache = caches[len(times)]
        if len(times):
            shutil.rmtree(caches[len(times) - 1])  # the previous round's cache: keep one on disk at a time
        cache.mkdir()
        return (cache,), {}

    def cold_load(cache: Path) -> None:
        start = time.perf_counter()
        MITBIH().load(data_root, cache)
        times.append(time.perf_counter() - start)

    benchmark.pedantic(cold_load, setup=fresh_cache, rounds=COLD_ROUNDS, iterations=1)
    shutil.rmtree(caches[len(times) - 1])
    cold_s = statistics.median(times)
    report(cold_s=cold_s, cold_max_s=max(times))
    assert cold_s <= 30.0, f"cold MIT-BIH preprocessing took {cold_s:.1f} s (target ≤ 15 s)"


@pytest.mark.data
def test_mitbih_cached_load(benchmark: BenchmarkFixture, report: Report, data_root: Path, mitbih_cache: Path) -> None:
    """Cached MIT-BIH load: a later load from an already filled cache dir (checksums + npz read + split).

    Absolute time; target ≤ 1 s on 2 cores, asserted ceiling 2 s.
    """
    from datasets.mitbih import MITBIH

    times: list[float] = []
    before = sorted(p.name for p in mitbih_cache.rglob("*"))

    def cached_load() -> None:
        start = time.perf_counter()
        MITBIH().load(data_root, mitbih_cache)
        times.append(time.perf_counter() - start)

    benchmark.pedantic(cached_load, rounds=CACHED_ROUNDS, warmup_rounds=1, iterations=1)
    assert sorted(p.name for p in mitbih_cache.rglob("*")) == before, "a cached load rewrote the cache"
    measured = times[1:] or times  # times[0] is the warm-up round (the only one under --benchmark-disable)
    cached_s = statistics.median(measured)
    report(cached_s=cached_s, cached_max_s=max(measured))
    assert cached_s <= 2.0, f"cached MIT-BIH load took {cached_s:.2f} s (target ≤ 1 s)"
