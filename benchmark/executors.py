"""Where jobs run: in this process, in N local worker processes (one per GPU on GPU machines), or on Ray."""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any, Protocol, TypeVar

import torch

T = TypeVar("T")
R = TypeVar("R")


class Executor(Protocol):
    """Runs ``fn`` over ``items``, yielding ``(item, result_or_exception)`` as each finishes."""

    def map_unordered(self, fn: Callable[[T], R], items: Iterable[T]) -> Iterator[tuple[T, R | BaseException]]: ...


class InProcessExecutor:
    """One job at a time in this process, with torch's default thread count."""

    def map_unordered(self, fn: Callable[[T], R], items: Iterable[T]) -> Iterator[tuple[T, R | BaseException]]:
        for item in items:
            try:
                outcome: R | BaseException = fn(item)
            except Exception as err:  # the same contract as the process pool: report, don't abort the sweep
                outcome = err
            yield item, outcome


def _init_worker(device_queue: Any, threads: int, log_level: int) -> None:
    """Pin a worker process to one GPU (if any) and to ``threads`` CPU threads; log at the parent's level to
    stderr (warnings such as a skipped night, and with ``-v`` the methods' progress, name their worker)."""
    logging.basicConfig(level=log_level, format="[%(processName)s] %(levelname)s %(name)s: %(message)s")
    torch.set_num_threads(threads)
    os.environ["OMP_NUM_THREADS"] = str(threads)
    gpu = device_queue.get() if device_queue is not None else None
    if gpu is not None:
        os.environ["KDNAS_DEVICE"] = f"cuda:{gpu}"
        torch.cuda.set_device(gpu)


class ProcessExecutor:
    """N worker processes (spawned). On CUDA machines worker i owns GPU i; on CPU each uses ``threads``."""

    def __init__(self, workers: int, threads: int = 1, gpus: int | None = None) -> None:
        self.workers = workers
        self.threads = threads
        self.gpus = torch.cuda.device_count() if gpus is None else gpus

    def map_unordered(self, fn: Callable[[T], R], items: Iterable[T]) -> Iterator[tuple[T, R | BaseException]]:
        items = list(items)
        if not items:
            return
        ctx = mp.get_context("spawn")
        queue = None
        if self.gpus:
            queue = ctx.Manager().Queue()
            for i in range(self.workers):
                queue.put(i % self.gpus)
        pool = ProcessPoolExecutor(self.workers, mp_context=ctx, initializer=_init_worker,
                                   initargs=(queue, self.threads, logging.getLogger().getEffectiveLevel()))
        futures: dict[Future, Any] = {pool.submit(fn, item): item for item in items}
        try:
            pending = set(futures)
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    error = future.exception()
                    yield futures[future], (error if error is not None else future.result())
        except BaseException:  # interrupted (Ctrl-C, SIGTERM) or abandoned: stop the jobs in flight, don't wait
            _terminate_workers(pool)
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


def _terminate_workers(pool: ProcessPoolExecutor) -> None:
    """Kill the pool's worker processes (their unfinished jobs leave no record: results are written atomically).
    ``ProcessPoolExecutor.terminate_workers`` exists from Python 3.14 on; before, the process table is private."""
    if hasattr(pool, "terminate_workers"):
        pool.terminate_workers()
        return
    for process in list(getattr(pool, "_processes", {}).values()):
        process.terminate()


class RayExecutor:
    """Jobs as Ray tasks on a cluster (``address``) or a local Ray instance; one GPU per task where present."""

    def __init__(self, address: str | None = None, gpus_per_job: float | None = None, cpus_per_job: float = 1) -> None:
        try:
            import ray
        except ImportError as err:
            raise RuntimeError("the ray executor needs Ray: pip install -e '.[ray]'") from err
        self.ray = ray
        if not ray.is_initialized():
            ray.init(address=address, ignore_reinit_error=True, log_to_driver=False)
        if gpus_per_job is None:
            gpus_per_job = 1.0 if ray.cluster_resources().get("GPU", 0) > 0 else 0.0
        self.options = {"num_gpus": gpus_per_job, "num_cpus": cpus_per_job}

    def map_unordered(self, fn: Callable[[T], R], items: Iterable[T]) -> Iterator[tuple[T, R | BaseException]]:
        remote = self.ray.remote(**self.options)(_ray_call)
        refs = {remote.remote(fn, item): item for item in items}
        pending = list(refs)
        while pending:
            done, pending = self.ray.wait(pending, num_returns=1)
            try:
                yield refs[done[0]], self.ray.get(done[0])
            except Exception as err:  # a task that crashed its worker
                yield refs[done[0]], err


def _ray_call(fn: Callable[[T], R], item: T) -> R:
    if torch.cuda.is_available():
        os.environ["KDNAS_DEVICE"] = "cuda:0"  # Ray sets CUDA_VISIBLE_DEVICES to the task's GPU
    torch.set_num_threads(1)
    return fn(item)


def make_executor(kind: str, workers: int, ray_address: str | None = None) -> Executor:
    """``local`` with 1 worker runs in-process; with more, spawned processes; ``ray`` uses Ray."""
    if kind == "ray":
        return RayExecutor(ray_address)
    if kind != "local":
        raise ValueError(f"unknown executor {kind!r}; choose from local, ray")
    if workers <= 1:
        return InProcessExecutor()
    threads = 1 if not torch.cuda.is_available() else max(1, (os.cpu_count() or 1) // workers)
    return ProcessExecutor(workers, threads=threads)
