"""The batch engine shared by every prepare step.

A step is a `Task`: it names each source's output files and knows how to make them. The engine
skips sources whose outputs are newer than the input (a stat, no decoding), keeps this shard's
slice, runs the rest over `jobs` worker processes (or in-process batches for neural models),
counts failures without stopping, and returns a `Report`.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import sys
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from rich.console import Console

from gvc.errors import GvcError
from gvc.fileio import remove_stale_temps
from prepare.discover import Problem, Shard, Source
from prepare.report import ProgressSink, Report

log = logging.getLogger(__name__)


class Task(ABC):
    """One prepare step. Instances are pickled to worker processes: keep them small, and import
    heavy libraries inside methods (the no-op path must not pay for them)."""

    #: name shown in progress and summary lines
    name: str = "task"
    #: >0: the engine calls `run_batch` in-process with this many sources (neural models, GPU)
    batch_size: int = 0

    @abstractmethod
    def outputs(self, src: Source) -> tuple[Path, ...]:
        """Every file this source produces; the source counts as done when all are up to date."""

    def preload(self) -> None:  # noqa: B027 - optional hook
        """Called in the parent before workers fork: import heavy modules once, so that forked
        workers inherit them instead of each importing them again. Must not start threads."""

    def setup(self) -> None:  # noqa: B027 - optional hook
        """Called once in each process before its first `run` (load models here)."""

    @abstractmethod
    def run(self, src: Source) -> float:
        """Make the outputs of `src` (atomically); returns the seconds of audio processed."""

    def run_batch(self, srcs: Sequence[Source]) -> list[float | BaseException]:
        """Process several sources at once; one entry per source (a float or the error)."""
        results: list[float | BaseException] = []
        for src in srcs:
            try:
                results.append(self.run(src))
            except Exception as exc:  # noqa: BLE001 - reported per file
                results.append(exc)
        return results


def up_to_date(task: Task, src: Source) -> bool:
    """All outputs exist and none is older than the source (stat only)."""
    try:
        src_mtime = os.stat(src.path).st_mtime_ns
    except OSError:
        return False
    for out in task.outputs(src):
        try:
            if os.stat(out).st_mtime_ns < src_mtime:
                return False
        except OSError:
            return False
    return True


def describe_error(exc: BaseException) -> str:
    """One line for a per-file failure; unexpected exceptions keep their type name."""
    if isinstance(exc, GvcError):
        return str(exc)
    text = str(exc).split("\n")[0] or "no message"
    return f"{type(exc).__name__}: {text}"


_WORKER_TASK: Task | None = None


def _worker_init(task: Task) -> None:
    global _WORKER_TASK
    if "torch" in sys.modules:
        import torch

        torch.set_num_threads(1)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    task.setup()
    _WORKER_TASK = task


def _worker_run(src: Source) -> float:
    assert _WORKER_TASK is not None
    return _WORKER_TASK.run(src)


def _pool_context() -> mp.context.BaseContext:
    # fork is cheap and our parent process has not started any thread pools; spawn elsewhere.
    return mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")


def run_task(
    task: Task,
    sources: Sequence[Source],
    problems: Sequence[Problem] = (),
    *,
    jobs: int = 1,
    force: bool = False,
    shard: Shard = Shard(),
    console: Console | None = None,
    live: bool | None = None,
) -> Report:
    """Run `task` over `sources`; never raises for a single bad input.

    Args:
        task: the step.
        sources: every input of the corpus (the shard is applied here).
        problems: inputs already known to be bad (reported as failures).
        jobs: worker processes for `run`; 1 runs in-process.
        force: redo sources whose outputs are up to date.
        shard: the slice of the corpus this process owns.
        console: where progress and the summary go.
        live: force the live bar on/off (default: only on a terminal).
    """
    console = console or Console()
    report = Report(task.name)
    if shard.index == 1:  # problems found while walking are reported once, by the first shard
        report.failures.extend((p.path, p.reason) for p in problems)
    start = time.monotonic()
    mine = [s for s in sources if shard.owns(s.utt)]
    remove_stale_temps(sorted({out.parent for src in mine for out in task.outputs(src)}), task.name)
    todo = mine if force else [s for s in mine if not up_to_date(task, s)]
    report.skipped = len(mine) - len(todo)
    if todo:
        with ProgressSink(console, task.name, len(todo), live=live) as progress:
            for src, result in _execute(task, todo, jobs):
                if isinstance(result, BaseException):
                    if isinstance(result, KeyboardInterrupt):
                        raise result
                    report.failures.append((src.path, describe_error(result)))
                    log.debug("%s failed", src.path, exc_info=result)
                else:
                    report.done += 1
                    report.audio_seconds += result
                progress.advance()
    report.wall_seconds = time.monotonic() - start
    return report


def _execute(
    task: Task, todo: Sequence[Source], jobs: int
) -> Iterator[tuple[Source, float | BaseException]]:
    if task.batch_size > 0:
        task.setup()
        for i in range(0, len(todo), task.batch_size):
            chunk = todo[i : i + task.batch_size]
            yield from zip(chunk, task.run_batch(chunk), strict=True)
        return
    if jobs <= 1 or len(todo) == 1:
        task.setup()
        for src in todo:
            try:
                yield src, task.run(src)
            except Exception as exc:  # noqa: BLE001 - reported per file
                yield src, exc
        return
    task.preload()
    yield from _pool(task, todo, jobs)


def _pool(
    task: Task, todo: Sequence[Source], jobs: int
) -> Iterator[tuple[Source, float | BaseException]]:
    """Bounded in-flight submission so memory does not grow with the corpus."""
    pending: dict[Future, Source] = {}
    queue = iter(todo)
    window = max(2, jobs * 4)
    with ProcessPoolExecutor(
        max_workers=jobs, mp_context=_pool_context(), initializer=_worker_init, initargs=(task,)
    ) as pool:
        try:
            for src in queue:
                pending[pool.submit(_worker_run, src)] = src
                if len(pending) >= window:
                    break
            while pending:
                finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                for fut in finished:
                    src = pending.pop(fut)
                    try:
                        yield src, fut.result()
                    except BrokenProcessPool:
                        yield src, RuntimeError("a worker process died (out of memory or killed)")
                        for rest in list(pending.values()) + list(queue):
                            yield rest, RuntimeError("not run: a worker process died")
                        pending.clear()
                        return
                    except Exception as exc:  # noqa: BLE001 - reported per file
                        yield src, exc
                    nxt = next(queue, None)
                    if nxt is not None:
                        pending[pool.submit(_worker_run, nxt)] = nxt
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise
