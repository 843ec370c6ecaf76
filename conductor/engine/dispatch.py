"""Where task attempts run: the dispatch hook, with local thread and process implementations.

A Dispatcher takes an Invocation and a TaskContext and returns a future of the call's return
value. Remote workers (a later issue) plug in here as another implementation. A thread cannot be
killed: an attempt that overran its timeout keeps its thread until it returns, and its late
result is discarded by the runner.
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import Executor, Future
from multiprocessing.reduction import ForkingPickler
from typing import Any, Protocol

import futurist

from conductor.engine.decisions import EXECUTE, Invocation
from conductor.engine.graph import CompiledFlow
from conductor.flow.context import TaskContext
from conductor.flow.errors import FlowError
from conductor.flow.task import Task


class TaskNotSendable(FlowError):
    """A task cannot be sent to a worker process (e.g. a lambda or a nested function)."""


class Dispatcher(Protocol):
    def check(self, flow: CompiledFlow) -> None:
        """Raise a FlowError naming any task this dispatcher cannot run (before anything runs)."""
        ...

    def submit(self, invocation: Invocation, context: TaskContext) -> Future[Any]:
        """Start the call; the future gives its return value or its exception."""
        ...

    def shutdown(self, wait: bool) -> None:
        ...


def call_task(task: Task, action: str, kwargs: dict[str, Any], result: Any,
              context: TaskContext) -> Any:
    """Run one attempt (module level, so a process pool can run it)."""
    if action == EXECUTE:
        return task.call_execute(kwargs, context)
    task.call_revert(kwargs, result, context)
    return None


class LocalDispatcher:
    """Runs attempts on a futurist executor (threads by default)."""

    def __init__(self, executor: Executor | None = None,
                 max_workers: int = 16) -> None:
        self.executor: Executor = executor or futurist.ThreadPoolExecutor(
            max_workers=max_workers
        )

    def check(self, flow: CompiledFlow) -> None:
        pass

    def submit(self, invocation: Invocation, context: TaskContext) -> Future[Any]:
        future: Future[Any] = self.executor.submit(
            call_task, invocation.task, invocation.action, invocation.kwargs,
            invocation.result, context,
        )
        return future

    def shutdown(self, wait: bool) -> None:
        self.executor.shutdown(wait=wait)


class ProcessDispatcher(LocalDispatcher):
    """Runs attempts in worker processes (futurist.ProcessPoolExecutor, 'spawn' start method).

    Tasks, their arguments and results cross the process boundary, so tasks must be importable
    by name (module-level functions or classes): `check` names any that are not.
    """

    def __init__(self, max_workers: int = 2, start_method: str = "spawn") -> None:
        super().__init__(futurist.ProcessPoolExecutor(
            max_workers=max_workers, mp_context=multiprocessing.get_context(start_method),
        ))

    def check(self, flow: CompiledFlow) -> None:
        for task in flow.tasks():
            try:
                ForkingPickler.dumps(task)
            except Exception as exc:
                raise TaskNotSendable(
                    f"task {task.name!r} cannot be sent to a worker process: {exc}"
                ) from None
