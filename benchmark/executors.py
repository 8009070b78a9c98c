"""Where jobs run: in this process, in N local worker processes (one per GPU on GPU machines), or on Ray."""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import signal
from collections.abc import Callable, Iterable, Iterator
from multiprocessing.connection import Connection, wait
from typing import Any, Protocol, TypeVar

import torch

from benchmark.parent_watch import exit_with_parent, sigint_ignored_by_children

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


class WorkerDied(RuntimeError):
    """The worker process running a job died (killed, out of memory, a crash in native code)."""


def _worker_main(conn: Connection, fn: Callable[[Any], Any], parent_pid: int, initargs: tuple[Any, ...]) -> None:
    """A worker's loop: run each ``(index, item)`` received, send back ``(index, result or exception)``; stop on
    ``None``, or when the parent dies."""
    exit_with_parent(parent_pid)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle: it stops the workers quietly
    _init_worker(*initargs)
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):  # the parent closed the pipe
            return
        if message is None:
            return
        index, item = message
        try:
            reply = (index, fn(item))
        except Exception as err:  # the job's error goes back to the parent; this worker takes the next job
            reply = (index, err)
        try:
            conn.send(reply)
        except Exception as err:  # an unpicklable result or exception
            conn.send((index, RuntimeError(f"{type(err).__name__}: {err}")))


class _Worker:
    """One worker process and the pipe to it; ``job`` is the index of the item it runs, None when idle."""

    def __init__(self, ctx: Any, fn: Callable[[Any], Any], gpu: int | None, threads: int, log_level: int) -> None:
        self.gpu = gpu
        initargs = (_single(ctx, gpu), threads, log_level)
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=_worker_main, args=(child, fn, os.getpid(), initargs))
        with sigint_ignored_by_children():
            self.process.start()
        child.close()
        self.job: int | None = None

    def stop(self, kill: bool) -> None:
        if kill:
            self.process.terminate()
        else:
            try:
                self.conn.send(None)
            except OSError:
                pass
        self.process.join(timeout=10 if not kill else 5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
        self.conn.close()


class ProcessExecutor:
    """N worker processes (spawned). On CUDA machines worker i owns GPU i; on CPU each uses ``threads``.

    A worker that dies fails only the job it was running: it is replaced and the sweep goes on. Workers exit when
    this process dies (see ``exit_with_parent``), so a killed run leaves none behind.
    """

    def __init__(self, workers: int, threads: int = 1, gpus: int | None = None) -> None:
        self.workers = workers
        self.threads = threads
        self.gpus = torch.cuda.device_count() if gpus is None else gpus

    def map_unordered(self, fn: Callable[[T], R], items: Iterable[T]) -> Iterator[tuple[T, R | BaseException]]:
        items = list(items)
        if not items:
            return
        ctx = mp.get_context("spawn")
        level = logging.getLogger().getEffectiveLevel()
        pending = list(range(len(items)))[::-1]  # a stack: pop() gives the next item in order
        pool: list[_Worker] = []
        clean = False
        try:
            while pending or any(w.job is not None for w in pool):
                while pending and len(pool) < min(self.workers, len(items)):
                    pool.append(_Worker(ctx, fn, self._free_gpu(pool), self.threads, level))
                for worker in pool:
                    if worker.job is None and pending:
                        worker.job = pending.pop()
                        worker.conn.send((worker.job, items[worker.job]))
                busy = [w for w in pool if w.job is not None]
                ready = set(wait([w.conn for w in busy] + [w.process.sentinel for w in busy]))
                for worker in busy:
                    outcome = self._collect(worker, ready)
                    if outcome is None:
                        continue
                    index, result = outcome
                    if not worker.process.is_alive() or isinstance(result, WorkerDied):
                        worker.stop(kill=True)
                        pool.remove(worker)  # replaced by a fresh worker on the next round
                    yield items[index], result
            clean = True
        finally:  # normally: tell idle workers to exit; interrupted (Ctrl-C, SIGTERM) or abandoned: kill them
            for worker in pool:
                worker.stop(kill=not clean)

    def _free_gpu(self, pool: list[_Worker]) -> int | None:
        """The GPU with the fewest workers (a replacement worker takes the dead one's GPU); None on CPU."""
        if not self.gpus:
            return None
        return min(range(self.gpus), key=lambda gpu: sum(w.gpu == gpu for w in pool))

    @staticmethod
    def _collect(worker: _Worker, ready: set[Any]) -> tuple[int, Any] | None:
        """``(index, result)`` of a worker that answered or died; None while it still works."""
        index = worker.job
        if index is None:
            return None
        if worker.conn in ready:
            try:
                got, value = worker.conn.recv()
            except (EOFError, OSError):
                pass
            else:
                worker.job = None
                return got, value
        if worker.process.sentinel in ready or not worker.process.is_alive():
            worker.process.join(timeout=5)
            worker.job = None
            code = worker.process.exitcode
            how = f"killed by signal {-code}" if code is not None and code < 0 else f"exit code {code}"
            return index, WorkerDied(f"worker process {worker.process.pid} died ({how}) while running this job")
        return None


def _single(ctx: Any, gpu: int | None) -> Any:
    """A queue holding one GPU index for a worker's initializer (None on CPU)."""
    if gpu is None:
        return None
    queue = ctx.SimpleQueue()
    queue.put(gpu)
    return queue


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
